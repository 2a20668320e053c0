import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { curlDownload, ftpUrl, type FtpTarget } from '../helpers/clients.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { startTestForwarder, type TestForwarder } from '../helpers/forwarder.js';
import { ControlClient } from '../helpers/ftpControl.js';
import { run } from '../helpers/processes.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { canConnect } from '../helpers/tcp.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

/** The ports sshd (the daemon and its per-connection children) listens on. */
async function sshdListeningPorts(): Promise<Set<number>> {
  const result = await run('ss', ['-Htlnp'], { timeoutMs: 10_000 });
  const ports = new Set<number>();
  for (const line of result.stdout.split('\n')) {
    if (!line.includes('"sshd')) continue;
    const match = /\s\S+:(\d+)\s+\S+:\*\s/.exec(line);
    if (match) ports.add(Number(match[1]));
  }
  return ports;
}

function passivePort(replyLine: string): number {
  const numbers = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(replyLine);
  assert.ok(numbers, `not a 227 reply: ${replyLine}`);
  return Number(numbers[5]) * 256 + Number(numbers[6]);
}

describe('session lifecycle and failure isolation', () => {
  let dir: string;
  let sshd: SshdInstance;
  /** An sshd that permits direct-tcpip only to the FTP control port. */
  let strictSshd: SshdInstance;
  let vsftpd: VsftpdInstance;
  let forwarder: TestForwarder;
  let dataRefused: TestForwarder;
  let fileSum: string;

  const target = (f: TestForwarder): FtpTarget => ({ host: f.host, port: f.port });

  async function loggedIn(f: TestForwarder): Promise<ControlClient> {
    const control = await ControlClient.open(f.host, f.port);
    assert.equal((await control.reply()).code, 220);
    assert.equal((await control.command('USER anonymous')).code, 331);
    assert.equal((await control.command('PASS x')).code, 230);
    return control;
  }

  before(async () => {
    dir = await makeTempDir('ftpfwd-lifecycle-');
    const root = join(dir, 'root');
    await mkdir(root);
    await writeRandomFile(join(root, 'file.bin'), 4 * 1024 * 1024);
    fileSum = await sha256File(join(root, 'file.bin'));
    await copyFile(join(root, 'file.bin'), join(dir, 'file.bin'));
    sshd = await startSshd();
    vsftpd = await startVsftpd({ root });
    strictSshd = await startSshd({ extraConfig: [`PermitOpen 127.0.0.1:${vsftpd.port}`] });
    forwarder = await startTestForwarder(sshd, '127.0.0.1', vsftpd.port);
    dataRefused = await startTestForwarder(strictSshd, '127.0.0.1', vsftpd.port);
  });

  after(async () => {
    await forwarder?.forwarder.close();
    await dataRefused?.forwarder.close();
    await vsftpd?.stop();
    await sshd?.stop();
    await strictSshd?.stop();
    if (dir) await removeDir(dir);
  });

  it('closes the passive data listener when the session ends', async () => {
    const control = await loggedIn(forwarder);
    const port = passivePort((await control.command('PASV')).lines[0]!);
    assert.equal((await control.command('QUIT')).code, 221);
    assert.equal(await control.closedWithin(5_000), true);
    control.close();
    assert.equal(await canConnect('127.0.0.1', port, { timeoutMs: 1_000 }), false, 'the data listener outlived its session');
  });

  it('replaces an unused passive listener when the client asks again', async () => {
    const control = await loggedIn(forwarder);
    try {
      const first = passivePort((await control.command('PASV')).lines[0]!);
      const second = passivePort((await control.command('PASV')).lines[0]!);
      assert.notEqual(first, second);
      assert.equal(await canConnect('127.0.0.1', first, { timeoutMs: 1_000 }), false);
    } finally {
      control.close();
    }
  });

  it('cancels the remote forward on the SSH server after an active transfer', async () => {
    const before = await sshdListeningPorts();
    const out = join(dir, 'active.out');
    const result = await curlDownload(ftpUrl(target(forwarder), '/file.bin'), out, 'port');
    assert.equal(result.code, 0, result.stderr.slice(-2000));
    assert.equal(await sha256File(out), fileSum);
    const bound = forwarder.logs().filter((record) => record['msg'] === 'remote forward bound for active mode').at(-1)?.['bound'];
    assert.equal(typeof bound, 'string', 'the remote forward was not logged');
    const forwardPort = Number(String(bound).split(':').at(-1));
    assert.ok(before.has(forwardPort) === false);
    // The forward is cancelled asynchronously: allow sshd a moment, bounded.
    for (let attempt = 0; attempt < 50 && (await sshdListeningPorts()).has(forwardPort); attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal((await sshdListeningPorts()).has(forwardPort), false, `sshd still listens on ${forwardPort}`);
    assert.ok(before.size > 0, 'could not see sshd listening at all: the check would be meaningless');
  });

  it('answers an over-long command line with 500 and closes that session only', async () => {
    const victim = await loggedIn(forwarder);
    const bystander = await loggedIn(forwarder);
    try {
      victim.send(`NOOP ${'x'.repeat(10_000)}\r\n`);
      const reply = await victim.reply();
      assert.equal(reply.code, 500);
      assert.equal(await victim.closedWithin(5_000), true);
      assert.equal((await bystander.command('NOOP')).code, 200);
      const out = join(dir, 'bystander.out');
      const result = await curlDownload(ftpUrl(target(forwarder), '/file.bin'), out, 'pasv');
      assert.equal(result.code, 0, result.stderr.slice(-2000));
      assert.equal(await sha256File(out), fileSum);
    } finally {
      victim.close();
      bystander.close();
    }
  });

  it('closes the data connection when the SSH server refuses the data channel, and keeps serving', async () => {
    const out = join(dir, 'refused.out');
    const refused = await curlDownload(ftpUrl(target(dataRefused), '/file.bin'), out, 'pasv', { timeoutMs: 30_000 });
    assert.notEqual(refused.code, 0, 'a transfer succeeded although sshd refused the data channel');
    // curl's own timeout (exit 28) would mean it waited for the server's accept timeout.
    assert.notEqual(refused.code, 28, 'the client hung instead of seeing the data connection fail');
    assert.equal(refused.timedOut, false, 'the client hung instead of seeing the data connection fail');
    // Either the refusal came first and the data listener was already
    // closed, or the client connected first and its RETR got our 425.
    assert.match(refused.stderr, /< 425 Cannot open data connection: the SSH server refused the data channel|connect to 127\.0\.0\.1 port \d+ failed: Connection refused/);
    const warnings = dataRefused.logs().filter((record) => record['msg'] === 'passive data channel could not be opened');
    assert.equal(warnings.length, 1, JSON.stringify(dataRefused.logs().slice(-10)));
    const control = await loggedIn(dataRefused);
    try {
      assert.equal((await control.command('NOOP')).code, 200);
    } finally {
      control.close();
    }
  });

  it('survives a client that disconnects in the middle of a transfer', async () => {
    const control = await loggedIn(forwarder);
    const port = passivePort((await control.command('PASV')).lines[0]!);
    control.send('RETR file.bin\r\n');
    // Connect to the data port and vanish without reading.
    const data = await new Promise<import('node:net').Socket>((resolve, reject) => {
      import('node:net').then(({ connect }) => {
        const socket = connect({ host: '127.0.0.1', port });
        socket.once('connect', () => resolve(socket));
        socket.once('error', reject);
      }, reject);
    });
    await control.reply();
    data.destroy();
    control.close();
    const out = join(dir, 'after-abort.out');
    const result = await curlDownload(ftpUrl(target(forwarder), '/file.bin'), out, 'epsv');
    assert.equal(result.code, 0, result.stderr.slice(-2000));
    assert.equal(await sha256File(out), fileSum);
  });
});
