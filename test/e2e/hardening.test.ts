import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertNoStackTrace, BIN, recordOutput, runCli, startCli, waitForLog, type RunningCli } from '../helpers/cli.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { ControlClient } from '../helpers/ftpControl.js';
import { isRoot } from '../helpers/netns.js';
import { eventually, killLeftovers, pidsWithMarker } from '../helpers/procfs.js';
import { run, type RunResult } from '../helpers/processes.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { delay, withTimeout } from '../helpers/time.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

/**
 * The defects of issue "nothing lost, nothing crashes" that live in the
 * process and its command line, each reproduced as it was reported: every
 * one of these failed before its fix.
 */

const EXIT_TIMEOUT_MS = 20_000;

/** One `ftpfwd:` line on stderr and no stack trace: the only way ftpfwd may fail. */
function assertOneLineFailure(result: RunResult, code: number): string {
  assert.equal(result.timedOut, false, `ftpfwd did not exit\n${result.stderr}`);
  assert.equal(result.code, code, `exit ${String(result.code)}, expected ${code}\n${result.stdout}${result.stderr}`);
  assertNoStackTrace(result.stderr);
  assert.match(result.stderr, /^ftpfwd: [^\n]+\n$/, `not one ftpfwd: line:\n${result.stderr}`);
  return result.stderr.trim();
}

/** A TCP server that plays a broken SSH server: silent forever, or resetting every connection at once. */
async function brokenSshServer(mode: 'silent' | 'reset', port = 0): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    socket.on('error', () => undefined);
    if (mode === 'reset') socket.resetAndDestroy();
    else {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('ftpfwd hardening: the process and its command line', { skip: isRoot() ? false : 'needs root (vsftpd)' }, () => {
  let dir: string;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let sshd: SshdInstance;
  let vsftpd: VsftpdInstance;
  let fileSum: string;
  const clis = new Set<RunningCli>();

  before(async () => {
    dir = await makeTempDir('ftpfwd-hardening-');
    home = join(dir, 'home');
    await mkdir(home);
    env = { ...process.env, HOME: home };
    delete env['SSH_AUTH_SOCK'];
    const root = join(dir, 'root');
    await mkdir(root);
    await writeRandomFile(join(root, 'file.bin'), 256 * 1024);
    fileSum = await sha256File(join(root, 'file.bin'));
    sshd = await startSshd();
    vsftpd = await startVsftpd({ root });
  });

  after(async () => {
    for (const cli of clis) await cli.stop();
    if (dir) await killLeftovers(dir);
    await vsftpd?.stop();
    await sshd?.stop();
    if (dir) await removeDir(dir);
  });

  const sshArgs = (): string[] => ['-F', 'none', '-p', String(sshd.port), '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, '-o', 'BatchMode=yes'];
  const forward = (): string[] => ['-L', `127.0.0.1:0:127.0.0.1:${vsftpd.port}`];
  const destination = (): string => `${sshd.user}@${sshd.host}`;

  async function start(args: string[]): Promise<RunningCli> {
    const cli = await startCli([...sshArgs(), ...forward(), '--log-format', 'json', ...args, destination()], { env, cwd: dir });
    clis.add(cli);
    return cli;
  }

  async function download(port: number, name: string): Promise<void> {
    const out = join(dir, `${name}.out`);
    const curl = await run('curl', ['-sS', '--fail', '--max-time', '20', `ftp://127.0.0.1:${port}/file.bin`, '-o', out], { timeoutMs: 30_000 });
    assert.equal(curl.code, 0, curl.stderr);
    assert.equal(await sha256File(out), fileSum);
  }

  describe('-f combined with other short flags goes to the background exactly once', () => {
    for (const flags of [['-fv'], ['-vf'], ['-fq'], ['-f', '-v']]) {
      it(`ftpfwd ${flags.join(' ')}`, async () => {
        const marker = join(dir, `bg${flags.join('')}`);
        await mkdir(marker);
        const pidFile = join(marker, 'pid');
        const child = spawn('node', [BIN, ...flags, ...sshArgs(), ...forward(), '--print-port', '--pid-file', pidFile, destination()], {
          env,
          cwd: marker,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
        child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
        const code = await withTimeout(new Promise<number | null>((resolve) => child.once('exit', resolve)), EXIT_TIMEOUT_MS, 'ftpfwd -f did not return');
        recordOutput(`ftpfwd ${flags.join(' ')}`, output);
        assert.equal(code, 0, output);
        const port = Number(/^(\d+)$/m.exec(output)?.[1]);
        // A copy that forks again would show up as a second process with this directory in its arguments.
        await delay(1_500);
        const pids = pidsWithMarker(marker);
        try {
          assert.equal(pids.length, 1, `expected one background ftpfwd, found ${pids.length}: ${pids.join(' ')}`);
          assert.equal(Number((await readFile(pidFile, 'utf8')).trim()), pids[0]);
          await download(port, `bg${flags.join('')}`);
        } finally {
          await killLeftovers(marker);
        }
      });
    }
  });

  describe('a failed SSH handshake is a one-line failure, never a crash', () => {
    for (const mode of ['silent', 'reset'] as const) {
      it(`at start-up, a server that is ${mode === 'silent' ? 'silent (no banner)' : 'resetting before the banner'}: exit 5`, async () => {
        const broken = await brokenSshServer(mode);
        try {
          const result = await runCli(['-F', 'none', '-o', 'ConnectTimeout=1', '-o', 'BatchMode=yes', '-p', String(broken.port), '-L', '0:127.0.0.1:21', '127.0.0.1'], {
            env,
            timeoutMs: EXIT_TIMEOUT_MS,
          });
          const line = assertOneLineFailure(result, 5);
          assert.match(line, /127\.0\.0\.1:\d+/);
        } finally {
          await broken.close();
        }
      });
    }

    it('while reconnecting to a half-working bastion (hung, then resetting), the forwarder stays up and recovers', async () => {
      const cli = await start(['-o', 'ServerAliveInterval=1', '-o', 'ServerAliveCountMax=2', '-o', 'ConnectTimeout=1']);
      const [port] = cli.ports;
      assert.ok(port !== undefined);
      // sshd goes away; in its place, first a server that never speaks, then one that resets.
      const restarted = sshd.restart(7_000);
      await delay(500);
      const silent = await brokenSshServer('silent', sshd.port);
      await waitForLog(cli.handle, 'SSH connection attempt failed', 10_000);
      await silent.close();
      const reset = await brokenSshServer('reset', sshd.port);
      await delay(2_500);
      await reset.close();
      await restarted;
      assert.equal(cli.handle.exitStatus(), undefined, `ftpfwd exited:\n${cli.handle.stderr()}`);
      await waitForLog(cli.handle, 'SSH connection re-established', 70_000);
      await download(port, 'after-broken-bastion');
      assertNoStackTrace(cli.handle.stderr());
    });
  });

  it('a client that resets while the SSH link is reconnecting does not take the process down', async () => {
    const cli = await start(['-o', 'ServerAliveInterval=1', '-o', 'ServerAliveCountMax=2']);
    const [port] = cli.ports;
    assert.ok(port !== undefined);
    const restarted = sshd.restart(3_000);
    await waitForLog(cli.handle, 'SSH connection lost; reconnecting', 10_000);
    for (let index = 0; index < 5; index += 1) {
      const socket = connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.resetAndDestroy();
    }
    await restarted;
    await waitForLog(cli.handle, 'SSH connection re-established', 70_000);
    assert.equal(cli.handle.exitStatus(), undefined, cli.handle.stderr());
    await download(port, 'after-resets');
    assertNoStackTrace(cli.handle.stderr());
  });

  it('running out of file descriptors (EMFILE) on the listener and on a data listener: sessions fail, the process stays', async () => {
    // A low descriptor limit for ftpfwd alone, so that a few idle connections exhaust it.
    const cli = await startCli(['--max-sessions', '500', ...sshArgs(), ...forward(), '--log-format', 'json', destination()], {
      env,
      cwd: dir,
    });
    clis.add(cli);
    const limit = await run('prlimit', ['--pid', String(cli.handle.pid), '--nofile=64:64'], { timeoutMs: 10_000 });
    assert.equal(limit.code, 0, limit.stderr);
    const [port] = cli.ports;
    assert.ok(port !== undefined);
    const control = await ControlClient.open('127.0.0.1', port);
    assert.equal((await control.reply()).code, 220);
    assert.equal((await control.command('USER anonymous')).code, 331);
    assert.equal((await control.command('PASS x')).code, 230);
    const pasv = await control.command('PASV');
    assert.equal(pasv.code, 227);
    const numbers = /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(pasv.lines[0]!)!;
    const dataPort = Number(numbers[5]) * 256 + Number(numbers[6]);
    // Fill every descriptor it has left with idle connections to its listener.
    const hogs: Socket[] = [];
    for (let index = 0; index < 80; index += 1) {
      const socket = connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      hogs.push(socket);
    }
    await delay(1_000);
    const intruder = connect({ host: '127.0.0.1', port: dataPort });
    intruder.on('error', () => undefined);
    await delay(1_000);
    assert.equal(cli.handle.exitStatus(), undefined, `ftpfwd died:\n${cli.handle.stderr()}`);
    for (const socket of hogs) socket.destroy();
    intruder.destroy();
    control.close();
    await delay(1_000);
    await run('prlimit', ['--pid', String(cli.handle.pid), '--nofile=4096:4096'], { timeoutMs: 10_000 });
    await download(port, 'after-emfile');
    assert.equal(cli.handle.exitStatus(), undefined);
    assertNoStackTrace(cli.handle.stderr());
  });

  it('--log-file on a path that cannot be opened: one line, exit 3', async () => {
    const result = await runCli([...sshArgs(), ...forward(), '--log-file', join(dir, 'no', 'such', 'dir', 'ftpfwd.log'), destination()], { env });
    assert.match(assertOneLineFailure(result, 3), /log file/);
  });

  it('ftpfwd --help | head: no EPIPE, no stack trace', async () => {
    const child = spawn('node', [BIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    // The reader is gone before the first write, as when `head` has read its lines and exited.
    child.stdout.destroy();
    const code = await withTimeout(new Promise<number | null>((resolve) => child.once('exit', resolve)), EXIT_TIMEOUT_MS, 'ftpfwd --help did not exit');
    recordOutput('ftpfwd --help (reader gone)', stderr);
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });

  it('durations past what a timer holds are clamped: --idle-timeout 2147484 does not close sessions at once', async () => {
    const cli = await start(['--idle-timeout', '2147484', '--accept-timeout', '99999999', '-o', 'ServerAliveInterval=3000000', '-o', 'ConnectTimeout=3000000']);
    const [port] = cli.ports;
    const control = await ControlClient.open('127.0.0.1', port!);
    try {
      assert.equal((await control.reply()).code, 220);
      await delay(1_500);
      assert.equal((await control.command('USER anonymous')).code, 331);
    } finally {
      control.close();
    }
    await download(port!, 'long-durations');
  });

  it('a bad --shutdown-timeout is refused before anything starts (exit 2)', async () => {
    // Port 1 is closed: a forwarder that got as far as connecting would fail with exit 5 instead.
    const result = await runCli(['-F', 'none', '-p', '1', '--shutdown-timeout', 'soon', '-L', '0:127.0.0.1:21', '127.0.0.1'], { env });
    assert.match(assertOneLineFailure(result, 2), /--shutdown-timeout/);
  });

  it('pid and ready files never follow a symlink planted by another user', async () => {
    const shared = join(dir, 'shared');
    await mkdir(shared);
    const victim = join(dir, 'victim');
    await writeFile(victim, 'precious\n');
    const pidFile = join(shared, 'ftpfwd.pid');
    const readyFile = join(shared, 'ftpfwd.ready');
    // At the final names, and at the temporary names the next PIDs would have used.
    await symlink(victim, pidFile);
    await symlink(victim, readyFile);
    const lastPid = Number((await readFile('/proc/sys/kernel/ns_last_pid', 'utf8')).trim());
    for (let pid = lastPid + 1; pid <= lastPid + 512; pid += 1) {
      await symlink(victim, join(shared, `.ftpfwd.pid.${pid}.tmp`));
      await symlink(victim, join(shared, `.ftpfwd.ready.${pid}.tmp`));
    }
    const cli = await start(['--pid-file', pidFile, '--ready-file', readyFile]);
    assert.equal(await readFile(victim, 'utf8'), 'precious\n');
    assert.equal((await lstat(pidFile)).isFile(), true);
    assert.equal(Number((await readFile(pidFile, 'utf8')).trim()), cli.handle.pid);
    assert.match(await readFile(readyFile, 'utf8'), /^127\.0\.0\.1 \d+\n$/);
    await cli.stop();
    clis.delete(cli);
    assert.equal(await readFile(victim, 'utf8'), 'precious\n');
    assert.equal(await eventually(async () => (await lstat(pidFile).catch(() => null)) === null, 5_000), true, 'the pid file outlived ftpfwd');
  });

  it('the variable named by --password-env does not reach the command run after --', async () => {
    const result = await runCli(
      [...sshArgs(), ...forward(), '--password-env', 'FTPFWD_TEST_SECRET', destination(), '--', 'sh', '-c', 'echo "secret=${FTPFWD_TEST_SECRET-unset}"'],
      { env: { ...env, FTPFWD_TEST_SECRET: 'hunter2' } },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^secret=unset$/m);
    assert.doesNotMatch(result.stdout + result.stderr, /hunter2/);
  });
});
