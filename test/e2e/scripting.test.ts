import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { ControlClient } from '../helpers/ftpControl.js';
import { commandLineOf, eventually, isRunning, killLeftovers, pidsWithMarker } from '../helpers/procfs.js';
import { run, startProcess, type ExitStatus, type ProcessHandle, type RunResult } from '../helpers/processes.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { canConnect } from '../helpers/tcp.js';
import { delay, withTimeout } from '../helpers/time.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'ftpfwd');
const RUN_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 20_000;
const EXIT_TIMEOUT_MS = 10_000;
const SMALL_SIZE = 256 * 1024;
/** Far more than loopback socket buffers and SSH windows can hold, so a reader that stops reading stalls the transfer. */
const LARGE_SIZE = 64 * 1024 * 1024;
const LISTENING_LINE = /^ftpfwd: listening on 127\.0\.0\.1:(\d+) -> \S+ via \S+$/gm;

type LogRecord = Record<string, unknown>;

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.timedOut, false, `ftpfwd did not exit within ${RUN_TIMEOUT_MS} ms\n${result.stderr}`);
  assert.equal(result.code, code, `exit code ${String(result.code)}, expected ${code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
}

/** Ports of the `ftpfwd: listening on` lines in `text`, in order. */
function listeningPorts(text: string): number[] {
  return [...text.matchAll(LISTENING_LINE)].map((match) => Number(match[1]));
}

/** The JSON log records among other lines (the listening lines, a command's output). */
function jsonRecords(text: string): LogRecord[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogRecord);
}

function recordsWith(records: LogRecord[], msg: string): LogRecord[] {
  return records.filter((record) => record['msg'] === msg);
}

function passivePort(line: string): number {
  const numbers = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(line);
  assert.ok(numbers, `not a 227 reply: ${line}`);
  return Number(numbers[5]) * 256 + Number(numbers[6]);
}

function connectSocket(host: string, port: number): Promise<Socket> {
  return withTimeout(
    new Promise<Socket>((resolvePromise, reject) => {
      const socket = connect({ host, port });
      socket.once('connect', () => resolvePromise(socket));
      socket.once('error', reject);
    }),
    10_000,
    `connecting to ${host}:${port}`,
  );
}

/** Reads a socket to its end (or error), hashing what arrives. */
function drain(socket: Socket, timeoutMs: number): Promise<{ bytes: number; sha256: string; error: Error | null }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const done = new Promise<{ bytes: number; sha256: string; error: Error | null }>((resolvePromise) => {
    let error: Error | null = null;
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    socket.on('error', (err) => {
      error = err;
    });
    socket.once('close', () => resolvePromise({ bytes, sha256: hash.digest('hex'), error }));
  });
  return withTimeout(done, timeoutMs, 'the data connection did not end');
}

describe('ftpfwd as a building block for shell scripts', () => {
  let dir: string;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let sshd: SshdInstance;
  let vsftpd: VsftpdInstance;
  let smallSum: string;
  let largeSum: string;
  let counter = 0;
  const started = new Set<ProcessHandle>();

  before(async () => {
    dir = await makeTempDir('ftpfwd-scripting-');
    home = join(dir, 'home');
    await mkdir(home);
    env = { ...process.env, HOME: home };
    delete env['SSH_AUTH_SOCK'];
    const root = join(dir, 'root');
    await mkdir(root);
    await writeRandomFile(join(root, 'small.bin'), SMALL_SIZE);
    await writeRandomFile(join(root, 'large.bin'), LARGE_SIZE);
    smallSum = await sha256File(join(root, 'small.bin'));
    largeSum = await sha256File(join(root, 'large.bin'));
    sshd = await startSshd();
    vsftpd = await startVsftpd({ root });
  });

  after(async () => {
    for (const handle of started) await handle.stop();
    // A background ftpfwd (-f) that a failed test did not stop: its arguments name the test directory.
    if (dir) await killLeftovers(dir);
    await vsftpd?.stop();
    await sshd?.stop();
    if (dir) await removeDir(dir);
  });

  /** A fresh path in the test directory. */
  function path(name: string): string {
    counter += 1;
    return join(dir, `${counter}-${name}`);
  }

  /** Options that reach the test sshd and forward to vsftpd: add the destination. */
  const sshArgs = (knownHosts = sshd.knownHostsFile): string[] => ['-p', String(sshd.port), '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${knownHosts}`];
  const forward = (): string[] => ['-L', `127.0.0.1:0:127.0.0.1:${vsftpd.port}`];
  const destination = (): string => `${sshd.user}@${sshd.host}`;

  function runCli(args: string[]): Promise<RunResult> {
    return run('node', [BIN, ...args], { env, cwd: dir, timeoutMs: RUN_TIMEOUT_MS });
  }

  async function startCli(args: string[], ready: RegExp = /^ftpfwd: listening on /m): Promise<ProcessHandle> {
    const handle = await startProcess('node', [BIN, ...args], { env, cwd: dir });
    started.add(handle);
    await handle.waitForOutput(ready, READY_TIMEOUT_MS);
    return handle;
  }

  async function signalAndWait(handle: ProcessHandle, signal: NodeJS.Signals, timeoutMs = EXIT_TIMEOUT_MS): Promise<ExitStatus> {
    process.kill(handle.pid, signal);
    const status = await handle.waitExit(timeoutMs);
    started.delete(handle);
    return status;
  }

  async function loggedIn(port: number): Promise<ControlClient> {
    const control = await ControlClient.open('127.0.0.1', port);
    assert.equal((await control.reply()).code, 220);
    assert.equal((await control.command('USER anonymous')).code, 331);
    assert.equal((await control.command('PASS x')).code, 230);
    return control;
  }

  /** RETR of `file` on a logged-in session: the data socket, not yet read from, and the 150 reply received. */
  async function startRetr(control: ControlClient, file: string): Promise<Socket> {
    assert.equal((await control.command('TYPE I')).code, 200);
    const pasv = await control.command('PASV');
    assert.equal(pasv.code, 227, pasv.lines.join('\n'));
    // No 'data' listener yet: nothing is read, so the transfer stalls once the buffers are full.
    const data = await connectSocket('127.0.0.1', passivePort(pasv.lines[0]!));
    const reply = await control.command(`RETR ${file}`);
    assert.equal(reply.code, 150, reply.lines.join('\n'));
    return data;
  }

  describe('run a command inside the tunnel (-- command)', () => {
    it('runs curl with FTPFWD_PORT, exits 0 and the file arrives intact', async () => {
      const out = path('small.out');
      const result = await runCli([
        ...sshArgs(), ...forward(), destination(), '--',
        'sh', '-c', 'curl -sS --fail --max-time 20 "ftp://127.0.0.1:$FTPFWD_PORT/small.bin" -o "$1"', 'sh', out,
      ]);
      assertExit(result, 0);
      assert.equal(await sha256File(out), smallSum);
      // With a command, stdout is the command's: the listening line goes to stderr.
      assert.equal(result.stdout, '');
      assert.equal(listeningPorts(result.stderr).length, 1, result.stderr);
    });

    it('replaces {port} in an argument, and {host} and {url}, and sets FTPFWD_HOST and FTPFWD_URL', async () => {
      const out = path('small.out');
      const result = await runCli([
        ...sshArgs(), ...forward(), destination(), '--',
        'sh', '-c', 'curl -sS --fail --max-time 20 "$1" -o "$2" && printf "%s\\n" "$3" "$4" "$FTPFWD_HOST" "$FTPFWD_PORT" "$FTPFWD_URL"',
        'sh', 'ftp://127.0.0.1:{port}/small.bin', out, '{host}', '{url}',
      ]);
      assertExit(result, 0);
      assert.equal(await sha256File(out), smallSum);
      const [port] = listeningPorts(result.stderr);
      assert.ok(port !== undefined, result.stderr);
      assert.deepEqual(result.stdout.split('\n'), ['127.0.0.1', `ftp://127.0.0.1:${port}/`, '127.0.0.1', String(port), `ftp://127.0.0.1:${port}/`, '']);
    });

    it('numbers FTPFWD_PORT_1, FTPFWD_PORT_2 (and {port2}) in -L order, and both listeners work', async () => {
      const first = path('first.out');
      const second = path('second.out');
      const result = await runCli([
        ...sshArgs(), ...forward(), ...forward(), destination(), '--',
        'sh', '-c',
        'curl -sS --fail --max-time 20 "ftp://127.0.0.1:$FTPFWD_PORT_1/small.bin" -o "$1" && ' +
          'curl -sS --fail --max-time 20 "ftp://127.0.0.1:$FTPFWD_PORT_2/small.bin" -o "$2" && ' +
          'printf "%s\\n" "$FTPFWD_PORT" "$FTPFWD_PORT_1" "$FTPFWD_PORT_2" "$FTPFWD_URL_2" "$3"',
        'sh', first, second, '{port2}',
      ]);
      assertExit(result, 0);
      const ports = listeningPorts(result.stderr);
      assert.equal(ports.length, 2, result.stderr);
      const [one, two] = ports as [number, number];
      assert.notEqual(one, two);
      assert.deepEqual(result.stdout.split('\n'), [String(one), String(one), String(two), `ftp://127.0.0.1:${two}/`, String(two), '']);
      assert.equal(await sha256File(first), smallSum);
      assert.equal(await sha256File(second), smallSum);
    });

    it("exits with the command's exit code (3)", async () => {
      const result = await runCli([...sshArgs(), ...forward(), destination(), '--', 'sh', '-c', 'exit 3']);
      assertExit(result, 3);
    });

    for (const [signal, number] of [['TERM', 15], ['KILL', 9]] as const) {
      it(`exits 128+${number} when a signal (SIG${signal}) kills the command`, async () => {
        const result = await runCli([...sshArgs(), ...forward(), destination(), '--', 'sh', '-c', `kill -${signal} $$`]);
        assertExit(result, 128 + number);
      });
    }

    it('passes SIGTERM on to the command, keeps the tunnel up while it cleans up, and exits with its code', async () => {
      const startedMarker = path('started');
      const out = path('in-trap.out');
      const handle = await startCli([
        ...sshArgs(), ...forward(), destination(), '--',
        'sh', '-c',
        // The trap itself transfers a file: the tunnel must still be there.
        'trap \'curl -sS --fail --max-time 20 "ftp://127.0.0.1:$FTPFWD_PORT/small.bin" -o "$2"; exit 42\' TERM; ' +
          ': > "$1"; while :; do sleep 0.1; done',
        'sh', startedMarker, out,
      ]);
      assert.equal(await eventually(() => existsSync(startedMarker), 10_000), true, 'the command did not start');
      const status = await signalAndWait(handle, 'SIGTERM', 20_000);
      assert.deepEqual(status, { code: 42, signal: null }, handle.stderr());
      assert.equal(await sha256File(out), smallSum);
    });

    it('never runs the command when setup fails (unknown host key): exit 6', async () => {
      const knownHosts = path('known_hosts');
      await writeFile(knownHosts, '');
      const marker = path('ran');
      const result = await runCli([...sshArgs(knownHosts), ...forward(), destination(), '--', 'sh', '-c', ': > "$1"', 'sh', marker]);
      assertExit(result, 6);
      assert.match(result.stderr, /^ftpfwd: host key for \S+ is not known/);
      assert.equal(existsSync(marker), false, 'the command ran although the tunnel was never set up');
    });
  });

  describe('readiness: --print-port, --ready-file, --pid-file', () => {
    it('--print-port prints only the port numbers, one per listener', async () => {
      const handle = await startCli([...sshArgs(), ...forward(), ...forward(), '--print-port', destination()], /^\d+\n\d+\n/);
      const stdout = handle.stdout();
      assert.match(stdout, /^\d+\n\d+\n$/);
      const ports = stdout.trim().split('\n').map(Number);
      for (const port of ports) assert.equal(await canConnect('127.0.0.1', port), true, `nothing listens on ${port}`);
      assert.deepEqual(await signalAndWait(handle, 'SIGTERM'), { code: 0, signal: null });
      assert.equal(handle.stdout(), stdout, 'more output on stdout after the ports');
    });

    it('--ready-file holds "host port" lines and --pid-file the PID, both removed at exit', async () => {
      const fileDir = path('ready');
      await mkdir(fileDir);
      const readyFile = join(fileDir, 'ready');
      const pidFile = join(fileDir, 'pid');
      const handle = await startCli([...sshArgs(), ...forward(), ...forward(), '--ready-file', readyFile, '--pid-file', pidFile, destination()]);
      assert.equal(await eventually(() => existsSync(readyFile) && existsSync(pidFile), 10_000), true, 'the files did not appear');
      const ports = listeningPorts(handle.stdout());
      assert.equal(ports.length, 2, handle.stdout());
      assert.equal(await readFile(readyFile, 'utf8'), ports.map((port) => `127.0.0.1 ${port}\n`).join(''));
      assert.equal(await readFile(pidFile, 'utf8'), `${handle.pid}\n`);
      // Written through a temporary file and a rename: nothing else is left in the directory.
      assert.deepEqual((await readdir(fileDir)).sort(), ['pid', 'ready']);
      assert.deepEqual(await signalAndWait(handle, 'SIGTERM'), { code: 0, signal: null });
      assert.deepEqual(await readdir(fileDir), [], 'the ready and pid files outlived ftpfwd');
    });
  });

  describe('-f: in the background once listening', () => {
    /** Runs `ftpfwd -f ...` and resolves the moment the foreground process has exited. */
    function runForeground(args: string[]): Promise<{ code: number | null; stdout: string; stderrFile: string }> {
      const stderrFile = path('foreground.err');
      const fd = openSync(stderrFile, 'w');
      const child = spawn('node', [BIN, '-f', ...args], { env, cwd: dir, stdio: ['ignore', 'pipe', fd] });
      closeSync(fd);
      let stdout = '';
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
      });
      const exited = new Promise<{ code: number | null; stdout: string; stderrFile: string }>((resolvePromise) => {
        child.once('close', (code) => resolvePromise({ code, stdout, stderrFile }));
      });
      return withTimeout(exited, RUN_TIMEOUT_MS, 'ftpfwd -f did not return').catch((error: unknown) => {
        child.kill('SIGKILL');
        throw error;
      });
    }

    it('returns once listening, leaves a live ftpfwd whose PID is in --pid-file, which stops on SIGTERM', async () => {
      const pidFile = path('pid');
      const out = path('small.out');
      const result = await runForeground([...sshArgs(), ...forward(), '--print-port', '--pid-file', pidFile, destination()]);
      // Checked before anything else: listening must already be true when -f returns.
      const port = Number(result.stdout.trim());
      const connected = await canConnect('127.0.0.1', port, { timeoutMs: 1_000 });
      const stderr = readFileSync(result.stderrFile, 'utf8');
      assert.equal(result.code, 0, stderr);
      assert.match(result.stdout, /^\d+\n$/);
      assert.equal(connected, true, `nothing listened on ${port} when -f returned\n${stderr}`);
      assert.equal(existsSync(pidFile), true, 'no pid file when -f returned');

      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      const commandLine = commandLineOf(pid);
      assert.ok(commandLine?.includes(BIN) && commandLine.includes(pidFile), `PID ${pid} is not the background ftpfwd: ${String(commandLine)}`);

      const curl = await run('curl', ['-sS', '--fail', '--max-time', '20', `ftp://127.0.0.1:${port}/small.bin`, '-o', out], { timeoutMs: 30_000 });
      assert.equal(curl.code, 0, curl.stderr);
      assert.equal(await sha256File(out), smallSum);

      process.kill(pid, 'SIGTERM');
      assert.equal(await eventually(() => !isRunning(pid), 10_000), true, `ftpfwd (PID ${pid}) did not stop on SIGTERM`);
      assert.equal(existsSync(pidFile), false, 'the pid file outlived ftpfwd');
      assert.equal(await canConnect('127.0.0.1', port), false, 'the listener outlived ftpfwd');
    });

    it('exits 6 when setup fails (unknown host key) and leaves no process behind', async () => {
      const knownHosts = path('known_hosts');
      await writeFile(knownHosts, '');
      const pidFile = path('pid');
      const result = await runForeground([...sshArgs(knownHosts), ...forward(), '--pid-file', pidFile, destination()]);
      const stderr = readFileSync(result.stderrFile, 'utf8');
      assert.equal(result.code, 6, stderr);
      assert.match(stderr, /^ftpfwd: host key for \S+ is not known/m);
      assert.equal(result.stdout, '');
      assert.equal(existsSync(pidFile), false);
      // The background copy may still be on its way out: allow it a moment, bounded.
      assert.equal(await eventually(() => pidsWithMarker(pidFile).length === 0, 5_000), true, `left behind: ${pidsWithMarker(pidFile).join(' ')}`);
    });
  });

  describe('graceful shutdown', () => {
    it('on SIGTERM stops listening at once, lets a transfer under way finish intact, then exits 0', async () => {
      const handle = await startCli([...sshArgs(), ...forward(), '--log-format', 'json', destination()]);
      const [port] = listeningPorts(handle.stdout());
      assert.ok(port !== undefined);
      const control = await loggedIn(port);
      try {
        const data = await startRetr(control, 'large.bin');
        await delay(300);
        const signalledAt = Date.now();
        process.kill(handle.pid, 'SIGTERM');
        await delay(700);
        assert.equal(handle.exitStatus(), undefined, `ftpfwd did not wait for the transfer:\n${handle.stderr()}`);
        assert.equal(await canConnect('127.0.0.1', port, { timeoutMs: 1_000 }), false, 'still accepting sessions after SIGTERM');

        const received = await drain(data, 30_000);
        assert.equal(received.bytes, LARGE_SIZE);
        assert.equal(received.sha256, largeSum);
        assert.equal((await control.reply()).code, 226);
        // Once the transfer is done, the session is closed with a 421.
        const goodbye = await control.reply();
        assert.equal(goodbye.code, 421, goodbye.lines.join('\n'));
        assert.deepEqual(await handle.waitExit(EXIT_TIMEOUT_MS), { code: 0, signal: null });
        started.delete(handle);

        const records = jsonRecords(handle.stderr());
        const [done] = recordsWith(records, 'transfer done');
        assert.ok(done, handle.stderr());
        assert.equal(done['bytesToClient'], LARGE_SIZE);
        assert.ok(Number(done['time']) >= signalledAt, 'the transfer had finished before the signal: the test proves nothing');
        assert.equal(recordsWith(records, 'shutting down: letting transfers finish').length, 1);
      } finally {
        control.close();
      }
    });

    it('on a second SIGTERM closes at once, without waiting for the transfer', async () => {
      const handle = await startCli([...sshArgs(), ...forward(), '--log-format', 'json', destination()]);
      const [port] = listeningPorts(handle.stdout());
      assert.ok(port !== undefined);
      const control = await loggedIn(port);
      try {
        const data = await startRetr(control, 'large.bin');
        await delay(300);
        process.kill(handle.pid, 'SIGTERM');
        await delay(300);
        assert.equal(handle.exitStatus(), undefined, 'ftpfwd exited on the first SIGTERM with a transfer under way');
        process.kill(handle.pid, 'SIGTERM');
        // The data socket is still not read from: only a forced close can end ftpfwd now.
        assert.deepEqual(await handle.waitExit(3_000), { code: 0, signal: null });
        started.delete(handle);
        const received = await drain(data, 10_000);
        assert.ok(received.bytes < LARGE_SIZE, 'the whole file arrived: the close was not immediate');
        assert.equal(recordsWith(jsonRecords(handle.stderr()), 'second signal: closing without waiting for transfers').length, 1);
      } finally {
        control.close();
      }
    });
  });

  describe('session limits', () => {
    it('--max-sessions 2: a third session gets 421 "Too many sessions" and is closed; the first two keep working', async () => {
      const handle = await startCli([...sshArgs(), ...forward(), '--max-sessions', '2', destination()]);
      const [port] = listeningPorts(handle.stdout());
      assert.ok(port !== undefined);
      const first = await loggedIn(port);
      const second = await loggedIn(port);
      const third = await ControlClient.open('127.0.0.1', port);
      try {
        const refused = await third.reply();
        assert.equal(refused.code, 421);
        assert.match(refused.lines[0]!, /Too many sessions/);
        assert.equal(await third.closedWithin(3_000), true, 'the refused session was left open');

        assert.equal((await first.command('NOOP')).code, 200);
        assert.equal((await second.command('NOOP')).code, 200);
        const data = await startRetr(second, 'small.bin');
        const received = await drain(data, 10_000);
        assert.equal(received.sha256, smallSum);
        assert.equal((await second.reply()).code, 226);

        // A slot freed by QUIT is available again.
        assert.equal((await first.command('QUIT')).code, 221);
        assert.equal(await first.closedWithin(5_000), true);
        const fourth = await ControlClient.open('127.0.0.1', port);
        try {
          assert.equal((await fourth.reply()).code, 220);
        } finally {
          fourth.close();
        }
      } finally {
        first.close();
        second.close();
        third.close();
      }
      assert.deepEqual(await signalAndWait(handle, 'SIGTERM'), { code: 0, signal: null });
    });

    it('--idle-timeout 1: an idle logged-in session gets 421 and is closed within a few seconds', async () => {
      const handle = await startCli([...sshArgs(), ...forward(), '--idle-timeout', '1', destination()]);
      const [port] = listeningPorts(handle.stdout());
      assert.ok(port !== undefined);
      const control = await loggedIn(port);
      const idleSince = Date.now();
      try {
        const reply = await control.reply(5_000);
        const waited = Date.now() - idleSince;
        assert.equal(reply.code, 421);
        assert.match(reply.lines[0]!, /Idle timeout/);
        assert.ok(waited >= 800, `closed after ${waited} ms, before the session was idle for 1 s`);
        assert.equal(await control.closedWithin(3_000), true, 'the idle session was left open');
      } finally {
        control.close();
      }
      assert.deepEqual(await signalAndWait(handle, 'SIGTERM'), { code: 0, signal: null });
    });
  });

  describe('logs for scripts', () => {
    /** Two downloads and an upload of small.bin, each its own curl and session. */
    const transfers = (uploadName: string): string[] => [
      'sh', '-c',
      'curl -sS --fail --max-time 20 "ftp://127.0.0.1:$FTPFWD_PORT/small.bin" -o /dev/null && ' +
        'curl -sS --fail --max-time 20 "ftp://127.0.0.1:$FTPFWD_PORT/small.bin" -o /dev/null && ' +
        'curl -sS --fail --max-time 20 -T "$1" "ftp://127.0.0.1:$FTPFWD_PORT/incoming/$2"',
      'sh', join(vsftpd.root, 'small.bin'), uploadName,
    ];

    function assertSummary(records: LogRecord[], uploadName: string): void {
      const done = recordsWith(records, 'transfer done');
      assert.deepEqual(
        done.map((record) => [record['command'], record['direction'], record['bytesToClient'], record['bytesToServer']]),
        [
          ['RETR small.bin', 'download', SMALL_SIZE, 0],
          ['RETR small.bin', 'download', SMALL_SIZE, 0],
          [`STOR ${uploadName}`, 'upload', 0, SMALL_SIZE],
        ],
      );
      for (const record of done) {
        assert.equal(typeof record['rateMBps'], 'number');
        assert.ok(Number(record['rateMBps']) >= 0);
        assert.equal(typeof record['durationMs'], 'number');
      }
      const stopped = recordsWith(records, 'forwarder stopped');
      assert.equal(stopped.length, 1);
      assert.deepEqual(
        {
          sessions: stopped[0]!['sessions'],
          refusedSessions: stopped[0]!['refusedSessions'],
          transfers: stopped[0]!['transfers'],
          failedTransfers: stopped[0]!['failedTransfers'],
          bytesToClient: stopped[0]!['bytesToClient'],
          bytesToServer: stopped[0]!['bytesToServer'],
        },
        { sessions: 3, refusedSessions: 0, transfers: 3, failedTransfers: 0, bytesToClient: 2 * SMALL_SIZE, bytesToServer: SMALL_SIZE },
      );
    }

    it('--log-format json: a "transfer done" line per transfer and a "forwarder stopped" summary with the totals', async () => {
      const name = `summary-${counter}.bin`;
      const result = await runCli([...sshArgs(), ...forward(), '--log-format', 'json', destination(), '--', ...transfers(name)]);
      assertExit(result, 0);
      assertSummary(jsonRecords(result.stderr), name);
      assert.equal(await sha256File(join(vsftpd.uploadDir, name)), smallSum);
    });

    it('--log-file: the log goes to the file (appended), not to stderr', async () => {
      const logFile = path('ftpfwd.log');
      await writeFile(logFile, '');
      const name = `logfile-${counter}.bin`;
      const result = await runCli([...sshArgs(), ...forward(), '--log-file', logFile, destination(), '--', ...transfers(name)]);
      assertExit(result, 0);
      assert.deepEqual(jsonRecords(result.stderr), [], 'log lines on stderr');
      assert.equal(result.stderr.split('\n').filter((line) => line !== '' && !line.startsWith('ftpfwd: listening on ')).length, 0, result.stderr);
      // The file holds JSON lines only (json is the default format for a log file).
      const text = await readFile(logFile, 'utf8');
      assert.ok(text.split('\n').every((line) => line === '' || line.startsWith('{')), text);
      assertSummary(jsonRecords(text), name);

      const again = await runCli([...sshArgs(), ...forward(), '--log-file', logFile, destination(), '--', 'true']);
      assertExit(again, 0);
      assert.equal(recordsWith(jsonRecords(await readFile(logFile, 'utf8')), 'forwarder stopped').length, 2, 'the second run did not append');
    });
  });
});
