import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { logRecords, startCli, waitForLog, type RunningCli } from '../helpers/cli.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { ControlClient, type Reply } from '../helpers/ftpControl.js';
import { run } from '../helpers/processes.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { withTimeout } from '../helpers/time.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

const SMALL_SIZE = 256 * 1024;
/** Uploaded by curl at UPLOAD_RATE: long enough for progress lines every second. */
const UPLOAD_RATE = '1M';
const SLOW_SIZE = 3 * 1024 * 1024;
const EXIT_TIMEOUT_MS = 10_000;

/** The parts of a pretty line that change from run to run, masked. */
function mask(line: string): string {
  return line
    .replace(/^\d\d:\d\d:\d\d /, 'hh:mm:ss ')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
    .replace(/\(\|\|\|\d+\|\)/, '(|||PORT|)')
    .replace(/\(vsFTPd [\d.]+\)/, '(vsFTPd)')
    .replace(/ \([a-z0-9-]+(?:@openssh\.com)?\), listening/, ' (CIPHER), listening')
    .replace(/ (in|after) \d+(?:\.\d)? (?:ms|s|min)(?: \([\d.]+ [kMG]?B\/s\))?/g, ' $1 T');
}

const TRANSFER_LINE = /^hh:mm:ss #\d+ (?:RETR|STOR) .* [↓↑] /;

/**
 * A transfer's line comes when its data connection has closed, which may
 * be before or after the 150 and 226 replies reach the client: the test
 * waits for it before each next command, and it is compared as if it came
 * just before that command.
 */
function inCommandOrder(lines: string[]): string[] {
  const result: string[] = [];
  let held: string[] = [];
  for (const line of lines) {
    if (TRANSFER_LINE.test(line)) {
      held.push(line);
      continue;
    }
    if (/^hh:mm:ss #\d+ > /.test(line) || / closed /.test(line)) {
      result.push(...held);
      held = [];
    }
    result.push(line);
  }
  return [...result, ...held];
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function connectData(reply: Reply): Promise<Socket> {
  const port = Number(/\(\|\|\|(\d+)\|\)/.exec(reply.lines[0]!)?.[1]);
  assert.ok(port > 0, `not a 229 reply: ${reply.lines.join('\n')}`);
  return withTimeout(
    new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => resolve(socket));
      socket.once('error', reject);
    }),
    10_000,
    'connecting the data connection',
  );
}

function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return withTimeout(
    new Promise<Buffer>((resolve, reject) => {
      socket.once('error', reject);
      socket.once('close', () => resolve(Buffer.concat(chunks)));
    }),
    10_000,
    'the download did not end',
  );
}

describe('on a terminal: the pretty log, progress lines and the status on SIGUSR1', () => {
  let dir: string;
  let sshd: SshdInstance;
  let vsftpd: VsftpdInstance;
  let small: Buffer;
  let slowFile: string;
  const running = new Set<RunningCli>();

  before(async () => {
    dir = await makeTempDir('ftpfwd-terminal-');
    const root = join(dir, 'root');
    await mkdir(root);
    await writeRandomFile(join(root, 'small.bin'), SMALL_SIZE);
    small = await readFile(join(root, 'small.bin'));
    slowFile = join(dir, 'slow.bin');
    await writeRandomFile(slowFile, SLOW_SIZE);
    sshd = await startSshd();
    vsftpd = await startVsftpd({ root });
  });

  after(async () => {
    for (const cli of running) await cli.stop();
    await vsftpd?.stop();
    await sshd?.stop();
    if (dir) await removeDir(dir);
  });

  async function start(extra: string[]): Promise<RunningCli> {
    const cli = await startCli(['-p', String(sshd.port), '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, '-L', `127.0.0.1:0:127.0.0.1:${vsftpd.port}`, ...extra, `${sshd.user}@${sshd.host}`], {
      env: { ...process.env, HOME: dir, SSH_AUTH_SOCK: '' },
    });
    running.add(cli);
    return cli;
  }

  async function stop(cli: RunningCli): Promise<void> {
    process.kill(cli.handle.pid, 'SIGTERM');
    assert.deepEqual(await cli.handle.waitExit(EXIT_TIMEOUT_MS), { code: 0, signal: null }, cli.handle.stderr());
    await cli.stop();
    running.delete(cli);
  }

  /** `curl -T` at UPLOAD_RATE into /incoming/<name>; resolves when curl has exited. */
  function slowUpload(port: number, name: string): Promise<void> {
    return run('curl', ['-sS', '--fail', '--max-time', '30', '--limit-rate', UPLOAD_RATE, '-T', slowFile, `ftp://127.0.0.1:${port}/incoming/${name}`], { timeoutMs: 40_000 }).then((result) => {
      assert.equal(result.code, 0, result.stderr);
    });
  }

  it('-v: one line per event, commands and replies included, peer text escaped, as in the transcript', async () => {
    const cli = await start(['-v', '--log-format', 'pretty']);
    const control = await ControlClient.open('127.0.0.1', cli.ports[0]!);
    const transferLogged = (verb: string): Promise<void> => cli.handle.waitForOutput(new RegExp(`#1 ${verb} \\S+ [↓↑] `), 10_000);
    try {
      assert.equal((await control.reply()).code, 220);
      assert.equal((await control.command('USER anonymous')).code, 331);
      assert.equal((await control.command('PASS x')).code, 230);
      // Refused by ftpfwd itself: the address is not the client's (FTP bounce).
      assert.equal((await control.command('PORT 10,1,2,3,4,5')).code, 501);
      // A file name with an escape sequence (a window title and a bell), refused by the server.
      assert.equal((await control.command('RETR evil\u001b]0;owned\u0007.bin')).code, 425);
      assert.equal((await control.command('TYPE I')).code, 200);

      const download = await connectData(await control.command('EPSV'));
      const received = readAll(download);
      assert.equal((await control.command('RETR small.bin')).code, 150);
      assert.equal(sha256(await received), sha256(small));
      assert.equal((await control.reply()).code, 226);
      await transferLogged('RETR');

      const upload = await connectData(await control.command('EPSV'));
      assert.equal((await control.command('STOR incoming/transcript.bin')).code, 150);
      upload.end(small);
      assert.equal((await control.reply()).code, 226);
      await transferLogged('STOR');
      assert.equal(await sha256File(join(vsftpd.uploadDir, 'transcript.bin')), sha256(small));

      assert.equal((await control.command('QUIT')).code, 221);
      assert.equal(await control.closedWithin(5_000), true);
      await cli.handle.waitForOutput(/#1 closed /, 5_000);
    } finally {
      control.close();
    }
    await stop(cli);

    const stderr = cli.handle.stderr();
    const lines = stderr.split('\n');
    assert.equal(lines.pop(), '', 'the log does not end with a newline');
    for (const line of lines) assert.match(line, /^\d\d:\d\d:\d\d \S/, `not a pretty log line: ${JSON.stringify(line)}`);
    assert.doesNotMatch(stderr, /\u001b/, 'an escape character reached the terminal');
    const first = lines.findIndex((line) => / connected to /.test(line));
    assert.ok(first >= 0, stderr);
    assert.match(lines[first]!, / \((?:(?:aes|chacha)[a-z0-9-]*@openssh\.com|aes\d+-ctr)\), listening/, 'no cipher in the start-up line');
    const expected = [
      `hh:mm:ss connected to ${sshd.user}@127.0.0.1:PORT (CIPHER), listening on 127.0.0.1:PORT → 127.0.0.1:PORT, active mode: through a remote forward`,
      'hh:mm:ss #1 new session from 127.0.0.1:PORT',
      'hh:mm:ss #1 < 220 (vsFTPd)',
      'hh:mm:ss #1 > USER anonymous',
      'hh:mm:ss #1 < 331 Please specify the password.',
      'hh:mm:ss #1 > PASS ****',
      'hh:mm:ss #1 < 230 Login successful.',
      'hh:mm:ss #1 > PORT 10,1,2,3,4,5',
      'hh:mm:ss #1 < 501 Rejected: the data address must be your own address (FTP bounce protection).',
      'hh:mm:ss #1 > RETR evil\\033]0;owned\\007.bin',
      'hh:mm:ss #1 < 425 Use PORT or PASV first.',
      'hh:mm:ss #1 > TYPE I',
      'hh:mm:ss #1 < 200 Switching to Binary mode.',
      'hh:mm:ss #1 > EPSV',
      'hh:mm:ss #1 < 229 Entering Extended Passive Mode (|||PORT|)',
      'hh:mm:ss #1 > RETR small.bin',
      'hh:mm:ss #1 < 150 Opening BINARY mode data connection for small.bin (262144 bytes).',
      'hh:mm:ss #1 < 226 Transfer complete.',
      'hh:mm:ss #1 RETR small.bin ↓ 256.0 KiB in T',
      'hh:mm:ss #1 > EPSV',
      'hh:mm:ss #1 < 229 Entering Extended Passive Mode (|||PORT|)',
      'hh:mm:ss #1 > STOR incoming/transcript.bin',
      'hh:mm:ss #1 < 150 Ok to send data.',
      'hh:mm:ss #1 < 226 Transfer complete.',
      'hh:mm:ss #1 STOR incoming/transcript.bin ↑ 256.0 KiB in T',
      'hh:mm:ss #1 > QUIT',
      'hh:mm:ss #1 < 221 Goodbye.',
      'hh:mm:ss #1 closed by server after T, 2 transfers',
      'hh:mm:ss stopped: 1 session, 2 transfers, ↓ 256.0 KiB ↑ 256.0 KiB',
    ];
    assert.deepEqual(inCommandOrder(lines.slice(first).map(mask)), expected);
  });

  it('json: a long upload logs "transfer progress" records, SIGUSR1 logs the status, and the file arrives intact', async () => {
    const cli = await start(['--log-format', 'json', '--progress-interval', '1', '-o', 'ServerAliveInterval=1']);
    const uploaded = slowUpload(cli.ports[0]!, 'json.bin');
    try {
      const stderr = (): Array<Record<string, unknown>> => logRecords(cli.handle.stderr());
      const progress = (): Array<Record<string, unknown>> => stderr().filter((record) => record['msg'] === 'transfer progress');
      await waitForLog(cli.handle, 'transfer progress', 10_000);
      for (let attempt = 0; attempt < 100 && progress().length < 2; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(progress().length >= 2, cli.handle.stderr());
      process.kill(cli.handle.pid, 'SIGUSR1');
      const transfer = await waitForLog(cli.handle, 'status: transfer', 5_000);
      await uploaded;
      const done = await waitForLog(cli.handle, 'transfer done', 5_000);
      assert.equal(await sha256File(join(vsftpd.uploadDir, 'json.bin')), await sha256File(slowFile));

      const records = stderr();
      const link = records.find((record) => record['msg'] === 'status: SSH');
      assert.ok(link, cli.handle.stderr());
      assert.equal(link['state'], 'up');
      assert.equal(link['reconnects'], 0);
      assert.equal(typeof link['upSince'], 'number');
      assert.ok(Number(link['upSince']) <= Number(link['time']));
      assert.equal(typeof link['keepaliveRoundTripMs'], 'number', 'no keepalive round trip with ServerAliveInterval=1 after 2 s');
      assert.equal(typeof link['cipher'], 'string');
      const sessions = records.find((record) => record['msg'] === 'status: sessions');
      assert.deepEqual([sessions?.['open'], sessions?.['transfersUnderWay']], [1, 1]);
      const session = records.find((record) => record['msg'] === 'status: session');
      assert.equal(session?.['session'], 1);
      assert.match(String(session?.['client']), /^127\.0\.0\.1:\d+$/);

      assert.equal(transfer['session'], 1);
      assert.equal(transfer['command'], 'STOR json.bin');
      assert.equal(transfer['direction'], 'upload');
      const sent = Number(transfer['bytesToServer']);
      assert.ok(sent > 0 && sent < SLOW_SIZE, `status: ${sent} bytes sent`);
      assert.ok(Number(transfer['bytesPerSecond']) > 0);

      const steps = progress();
      for (const record of steps) {
        assert.equal(record['command'], 'STOR json.bin');
        assert.equal(record['direction'], 'upload');
        assert.equal(record['bytesToClient'], 0);
        assert.ok(Number(record['bytesToServer']) < SLOW_SIZE);
        // About 1 MiB/s, as curl sends: far from zero, and not the whole file at once.
        assert.ok(Number(record['bytesPerSecond']) > 200_000 && Number(record['bytesPerSecond']) < 3_000_000, `rate ${String(record['bytesPerSecond'])}`);
      }
      for (let index = 1; index < steps.length; index += 1) {
        assert.ok(Number(steps[index]!['bytesToServer']) > Number(steps[index - 1]!['bytesToServer']), 'progress went backwards');
        assert.ok(Number(steps[index]!['elapsedMs']) > Number(steps[index - 1]!['elapsedMs']));
      }
      assert.equal(done['bytesToServer'], SLOW_SIZE);
      assert.equal(done['command'], 'STOR json.bin');
      // No progress line after the transfer's end: its timer is gone.
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      const last = progress().at(-1)!;
      assert.ok(Number(last['time']) <= Number(done['time']), 'a progress record after "transfer done"');
    } finally {
      await uploaded.catch(() => undefined);
    }
    await stop(cli);
  });

  it('pretty: progress lines and the status in human units, the upload intact', async () => {
    const cli = await start(['--log-format', 'pretty', '--progress-interval', '1']);
    const uploaded = slowUpload(cli.ports[0]!, 'pretty.bin');
    try {
      await cli.handle.waitForOutput(/#1 STOR pretty\.bin ↑ .* so far in /, 10_000);
      process.kill(cli.handle.pid, 'SIGUSR1');
      await cli.handle.waitForOutput(/#1 status: STOR pretty\.bin/, 5_000);
      await uploaded;
      await cli.handle.waitForOutput(/#1 STOR pretty\.bin ↑ 3\.0 MiB in /, 5_000);
    } finally {
      await uploaded.catch(() => undefined);
    }
    assert.equal(await sha256File(join(vsftpd.uploadDir, 'pretty.bin')), await sha256File(slowFile));
    await stop(cli);
    const lines = cli.handle.stderr().split('\n').filter((line) => line !== '');
    for (const line of lines) assert.match(line, /^\d\d:\d\d:\d\d \S/, `not a pretty log line: ${JSON.stringify(line)}`);
    const time = String.raw`\d+(?:\.\d)? (?:ms|s|min)`;
    const rate = String.raw`\d+(?:\.\d)? [kMG]?B/s`;
    const size = String.raw`(?:\d+ B|\d+\.\d [KMG]iB)`;
    const matching = (pattern: string): string[] => lines.filter((line) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d ${pattern}$`).test(line));
    assert.ok(matching(`#1 STOR pretty\\.bin ↑ ${size} so far in ${time} \\(${rate} now\\)`).length >= 1, lines.join('\n'));
    assert.equal(matching(`status: SSH connection to \\S+ \\(\\S+\\) up since \\d\\d:\\d\\d:\\d\\d \\(${time}\\), 0 reconnects, (?:last keepalive answered in ${time}|no keepalive answered yet)`).length, 1, lines.join('\n'));
    assert.equal(matching(`status: 1 session open, 1 transfer under way; since start 1 session, 0 transfers done, ↓ 0 B ↑ 0 B`).length, 1, lines.join('\n'));
    assert.equal(matching(`#1 status: from 127\\.0\\.0\\.1:\\d+, open ${time}, 1 transfer under way`).length, 1, lines.join('\n'));
    assert.equal(matching(`#1 status: STOR pretty\\.bin ↑ ${size} so far in ${time} \\(${rate} now\\)`).length, 1, lines.join('\n'));
    assert.equal(matching(`#1 STOR pretty\\.bin ↑ 3\\.0 MiB in ${time} \\(${rate}\\)`).length, 1, lines.join('\n'));
  });
});
