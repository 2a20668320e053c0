import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../helpers/ports.js';
import { assertSucceeded, run, startProcess, type ExitStatus, type ProcessHandle, type RunResult } from '../helpers/processes.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { canConnect } from '../helpers/tcp.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'ftpfwd');
/** Bounds every run of the CLI that is expected to exit by itself. */
const RUN_TIMEOUT_MS = 30_000;
const LISTEN_TIMEOUT_MS = 20_000;
const EXIT_TIMEOUT_MS = 10_000;
const LISTENING_LINE = /^ftpfwd: listening on 127\.0\.0\.1:(\d+) -> (\S+) via (\S+)$/;

/** `ssh-keygen -lf` on a public key: its `SHA256:...` fingerprint. */
async function fingerprintOf(publicKeyFile: string): Promise<string> {
  const result = await run('ssh-keygen', ['-lf', publicKeyFile], { timeoutMs: 15_000 });
  assertSucceeded(result, `ssh-keygen -lf ${publicKeyFile}`);
  const match = /\bSHA256:[A-Za-z0-9+/]+/.exec(result.stdout);
  assert.ok(match, `no fingerprint in ssh-keygen output: ${result.stdout}`);
  return match[0];
}

async function generateKey(file: string): Promise<void> {
  assertSucceeded(await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ftpfwd-cli-test', '-f', file], { timeoutMs: 15_000 }), `ssh-keygen ${file}`);
}

/** Every failure is exactly one line on stderr, starting with `ftpfwd: `; returns that line. */
function singleErrorLine(result: RunResult): string {
  assert.match(result.stderr, /^ftpfwd: [^\n]+\n$/, `stderr is not one "ftpfwd: " line:\n${result.stderr}`);
  return result.stderr.slice(0, -1);
}

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.timedOut, false, `ftpfwd did not exit within ${RUN_TIMEOUT_MS} ms\n${result.stderr}`);
  assert.equal(result.code, code, `exit code ${String(result.code)}, expected ${code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
}

/** The `listening` lines ftpfwd printed, parsed. */
function listeningLines(stdout: string): Array<{ port: number; ftp: string; via: string }> {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const match = LISTENING_LINE.exec(line);
      assert.ok(match, `unexpected stdout line: ${line}`);
      return { port: Number(match[1]), ftp: match[2]!, via: match[3]! };
    });
}

describe('ftpfwd command line against a real sshd', () => {
  let sshd: SshdInstance;
  let dir: string;
  /** An empty home directory: no default keys, no ~/.ssh/known_hosts. */
  let home: string;
  let env: NodeJS.ProcessEnv;
  let fileCounter = 0;
  const started = new Set<ProcessHandle>();

  before(async () => {
    dir = await makeTempDir('ftpfwd-cli-');
    home = join(dir, 'home');
    await mkdir(home);
    env = { ...process.env, HOME: home };
    delete env['SSH_AUTH_SOCK'];
    sshd = await startSshd();
  });

  after(async () => {
    for (const handle of started) await handle.stop();
    await sshd?.stop();
    if (dir) await removeDir(dir);
  });

  /** A new file in the test directory, written with `content`. */
  async function file(name: string, content: string): Promise<string> {
    fileCounter += 1;
    const path = join(dir, `${fileCounter}-${name}`);
    await writeFile(path, content);
    return path;
  }

  const destination = (): string => `${sshd.user}@${sshd.host}`;
  /** Arguments that reach the test sshd and log in, with its own known_hosts unless `knownHosts` is given. */
  const sshArgs = (knownHosts?: string): string[] => [
    '-p', String(sshd.port),
    '-i', sshd.identityFile,
    '-o', `UserKnownHostsFile=${knownHosts ?? sshd.knownHostsFile}`,
  ];

  /** Runs the CLI to completion (stdin closed), killed after RUN_TIMEOUT_MS. */
  function runCli(args: string[]): Promise<RunResult> {
    return run('node', [BIN, ...args], { env, cwd: ROOT, timeoutMs: RUN_TIMEOUT_MS });
  }

  /** Starts the CLI and waits until it has printed `count` listening lines. */
  async function startCli(args: string[], count = 1): Promise<ProcessHandle> {
    const handle = await startProcess('node', [BIN, ...args], { env, cwd: ROOT });
    started.add(handle);
    const lines = new RegExp(`(?:^ftpfwd: listening on [^\\n]*\\n){${count}}`, 'm');
    await handle.waitForOutput(lines, LISTEN_TIMEOUT_MS);
    return handle;
  }

  /** Sends `signal` to the CLI (only to its PID) and waits for it to exit. */
  async function signalAndWait(handle: ProcessHandle, signal: NodeJS.Signals): Promise<ExitStatus> {
    process.kill(handle.pid, signal);
    const status = await handle.waitExit(EXIT_TIMEOUT_MS);
    started.delete(handle);
    return status;
  }

  describe('host keys', () => {
    it('refuses an unknown host key with exit 6 and the fingerprint ssh-keygen shows', async () => {
      const knownHosts = await file('known_hosts', '');
      const result = await runCli(['-L', '0:127.0.0.1:21', ...sshArgs(knownHosts), destination()]);
      assertExit(result, 6);
      const line = singleErrorLine(result);
      const expected = await fingerprintOf(await file('host.pub', `${sshd.hostPublicKey}\n`));
      assert.match(line, /SHA256:/);
      const shown = /SHA256:[A-Za-z0-9+/]+/.exec(line)?.[0];
      assert.equal(shown, expected, line);
      assert.match(line, new RegExp(`not known .* add it to ${knownHosts}`));
      assert.equal(await readFile(knownHosts, 'utf8'), '', 'the key must not be added without accept-new');
      assert.equal(result.stdout, '');
    });

    it('adds an unknown host key with accept-new, serves, and stops on SIGTERM with exit 0', async () => {
      const knownHosts = await file('known_hosts', '');
      const handle = await startCli(['-L', '0:127.0.0.1:21', ...sshArgs(knownHosts), '-o', 'StrictHostKeyChecking=accept-new', destination()]);
      const [listener, ...others] = listeningLines(handle.stdout());
      assert.equal(others.length, 0);
      assert.ok(listener);
      assert.equal(listener.ftp, '127.0.0.1:21');
      assert.equal(listener.via, `${sshd.user}@${sshd.host}:${sshd.port}`);

      const lookup = await run('ssh-keygen', ['-F', `[${sshd.host}]:${sshd.port}`, '-f', knownHosts], { timeoutMs: 15_000 });
      assert.equal(lookup.code, 0, `ssh-keygen -F found nothing in:\n${await readFile(knownHosts, 'utf8')}`);
      assert.match(lookup.stdout, /found: line 1/);
      const hostKeyBase64 = sshd.hostPublicKey.split(/\s+/)[1]!;
      assert.ok(lookup.stdout.includes(hostKeyBase64), `the entry holds another key:\n${lookup.stdout}`);

      assert.deepEqual(await signalAndWait(handle, 'SIGTERM'), { code: 0, signal: null });

      // The key now on record is accepted under the default StrictHostKeyChecking=yes.
      const again = await startCli(['-L', '0:127.0.0.1:21', ...sshArgs(knownHosts), destination()]);
      assert.deepEqual(await signalAndWait(again, 'SIGTERM'), { code: 0, signal: null });
    });

    it('refuses a changed host key with exit 6, naming the known_hosts file and line', async () => {
      const otherKey = join(dir, 'other_host_key');
      await generateKey(otherKey);
      const otherPublic = (await readFile(`${otherKey}.pub`, 'utf8')).trim().split(/\s+/);
      const recorded = `${otherPublic[0]} ${otherPublic[1]}`;
      const knownHosts = await file(
        'known_hosts',
        ['# a comment on line 1', `unrelated.example ${recorded}`, `[${sshd.host}]:${sshd.port} ${recorded}`, ''].join('\n'),
      );
      const result = await runCli(['-L', '0:127.0.0.1:21', ...sshArgs(knownHosts), '-o', 'StrictHostKeyChecking=accept-new', destination()]);
      assertExit(result, 6);
      const line = singleErrorLine(result);
      assert.match(line, /has changed/);
      assert.ok(line.includes(`${knownHosts}:3`), line);
      assert.ok(line.includes(await fingerprintOf(`${otherKey}.pub`)), `the recorded key's fingerprint is missing: ${line}`);
      assert.ok(line.includes(await fingerprintOf(await file('host.pub', `${sshd.hostPublicKey}\n`))), `the server's fingerprint is missing: ${line}`);
    });
  });

  describe('connection failures', () => {
    it('exits 7 when the identity is not accepted, listing the methods tried', async () => {
      const key = join(dir, 'stranger_key');
      await generateKey(key);
      const result = await runCli([
        '-L', '0:127.0.0.1:21',
        '-p', String(sshd.port),
        '-i', key,
        '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`,
        destination(),
      ]);
      assertExit(result, 7);
      const line = singleErrorLine(result);
      assert.match(line, /authentication to \S+ failed/);
      assert.match(line, /\(tried: publickey\)/);
    });

    it('exits 5 when the connection is refused', async () => {
      const port = await freePort();
      const result = await runCli(['-L', '0:127.0.0.1:21', '-p', String(port), '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, destination()]);
      assertExit(result, 5);
      assert.match(singleErrorLine(result), new RegExp(`connection to 127\\.0\\.0\\.1:${port} refused`));
    });

    it('exits 4 when the SSH host name does not resolve', async () => {
      const result = await runCli(['-L', '0:127.0.0.1:21', '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, 'nosuchhost.invalid']);
      assertExit(result, 4);
      assert.match(singleErrorLine(result), /nosuchhost\.invalid/);
    });
  });

  describe('bad command lines exit 2', () => {
    const cases: Array<{ title: string; args: string[]; message: RegExp }> = [
      { title: 'a -L spec with too few fields', args: ['-L', '2121:ftp', 'bastion'], message: /bad forward "2121:ftp"/ },
      { title: 'a -L spec with FTP port 0', args: ['-L', '2121:ftp:0', 'bastion'], message: /bad FTP port 0/ },
      { title: 'no -L at all', args: ['bastion'], message: /no forward given/ },
      { title: 'a missing destination', args: ['-L', '2121:ftp:21'], message: /missing required argument 'destination'/ },
      { title: 'an unknown -o key', args: ['-L', '2121:ftp:21', '-o', 'NoSuchOption=other', 'bastion'], message: /NoSuchOption/ },
      { title: 'a bad StrictHostKeyChecking value', args: ['-L', '2121:ftp:21', '-o', 'StrictHostKeyChecking=maybe', 'bastion'], message: /StrictHostKeyChecking/ },
      { title: 'an unknown flag', args: ['-L', '2121:ftp:21', '--no-such-flag', 'bastion'], message: /unknown option '--no-such-flag'/ },
      { title: 'a bad --active-mode', args: ['-L', '2121:ftp:21', '--active-mode', 'sideways', 'bastion'], message: /sideways/ },
      { title: 'a bad destination', args: ['-L', '2121:ftp:21', 'user@'], message: /bad destination "user@"/ },
    ];
    for (const { title, args, message } of cases) {
      it(title, async () => {
        const result = await runCli(args);
        assertExit(result, 2);
        assert.match(singleErrorLine(result), message);
        assert.equal(result.stdout, '');
      });
    }
  });

  describe('listeners', () => {
    it('prints the real port for -L 0 and accepts connections there', async () => {
      const handle = await startCli(['-L', '0:127.0.0.1:21', ...sshArgs(), destination()]);
      const [listener, ...others] = listeningLines(handle.stdout());
      assert.equal(others.length, 0);
      assert.ok(listener);
      assert.notEqual(listener.port, 0);
      assert.equal(listener.ftp, '127.0.0.1:21');
      assert.equal(await canConnect('127.0.0.1', listener.port), true, `nothing accepts connections on 127.0.0.1:${listener.port}`);
      // A client whose FTP server is unreachable costs its session, not the forwarder.
      assert.equal(handle.exitStatus(), undefined, `ftpfwd exited:\n${handle.stderr()}`);
      assert.deepEqual(await signalAndWait(handle, 'SIGTERM'), { code: 0, signal: null });
    });

    it('prints one line per -L option', async () => {
      const handle = await startCli(['-L', '0:127.0.0.1:21', '-L', '127.0.0.1:0:localhost:2121', ...sshArgs(), destination()], 2);
      const listeners = listeningLines(handle.stdout());
      assert.deepEqual(
        listeners.map((listener) => listener.ftp),
        ['127.0.0.1:21', 'localhost:2121'],
      );
      const [first, second] = listeners;
      assert.ok(first && second);
      assert.notEqual(first.port, second.port);
      for (const { port } of listeners) {
        assert.notEqual(port, 0);
        assert.equal(await canConnect('127.0.0.1', port), true, `nothing accepts connections on 127.0.0.1:${port}`);
      }
      assert.deepEqual(await signalAndWait(handle, 'SIGTERM'), { code: 0, signal: null });
    });

    it('stops on SIGINT with exit 0 and closes its listener', async () => {
      const handle = await startCli(['-L', '0:127.0.0.1:21', ...sshArgs(), destination()]);
      const [listener] = listeningLines(handle.stdout());
      assert.ok(listener);
      assert.deepEqual(await signalAndWait(handle, 'SIGINT'), { code: 0, signal: null });
      assert.equal(await canConnect('127.0.0.1', listener.port), false, 'the listener is still open after exit');
    });
  });

  describe('help and version', () => {
    it('--help exits 0 and prints the exit-code table', async () => {
      const result = await runCli(['--help']);
      assertExit(result, 0);
      assert.equal(result.stderr, '');
      assert.match(result.stdout, /^Usage: ftpfwd \[options\] \[user@\]sshhost/);
      assert.match(result.stdout, /^Exit codes:$/m);
      const table: Array<[number, RegExp]> = [
        [0, /stopped cleanly/],
        [1, /unexpected internal error/],
        [2, /bad command line/],
        [3, /bad configuration/],
        [4, /could not be resolved/],
        [5, /refused, timed out or lost/],
        [6, /host key unknown, changed or revoked/],
        [7, /authentication failed/],
        [8, /refused a forward/],
        [9, /listener could not be opened/],
      ];
      for (const [code, meaning] of table) {
        assert.match(result.stdout, new RegExp(`^ {2}${code} {2}.*${meaning.source}`, 'm'), `exit code ${code} is missing from --help`);
      }
    });

    for (const flag of ['--version', '-V']) {
      it(`${flag} prints the package version`, async () => {
        const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
        const result = await runCli([flag]);
        assertExit(result, 0);
        assert.equal(result.stdout, `${pkg.version}\n`);
        assert.equal(result.stderr, '');
      });
    }
  });
});
