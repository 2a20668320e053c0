import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, chmod, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it, type TestContext } from 'node:test';
import { curlDownload } from '../helpers/clients.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { isRoot } from '../helpers/netns.js';
import { freePort } from '../helpers/ports.js';
import { assertSucceeded, descendantPids, run, startProcess, type ProcessHandle, type RunResult } from '../helpers/processes.js';
import { escapeRegExp, knownHostsLine, logSince, startSshd, type SshdInstance } from '../helpers/sshd.js';
import { delay } from '../helpers/time.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'ftpfwd');
/** Bounds every run of the CLI that is expected to exit by itself. */
const RUN_TIMEOUT_MS = 20_000;
const LISTEN_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 10_000;
const CURL_TIMEOUT_MS = 15_000;
/** "Fails quickly": far below RUN_TIMEOUT_MS, and far below any prompt's patience. */
const QUICK_FAILURE_MS = 8_000;
const LISTENING_LINE = /^ftpfwd: listening on 127\.0\.0\.1:(\d+) -> (\S+) via (\S+)$/m;
/** A system user made for the password tests, and removed afterwards. */
const PASSWORD_USER = 'ftpfwdpw';
const DATA_FILE = 'data.bin';
const DATA_SIZE = 256 * 1024;

/** `ssh-keygen -lf`: the key's `SHA256:...` fingerprint, as sshd logs it. */
async function fingerprintOf(publicKeyFile: string): Promise<string> {
  const result = await run('ssh-keygen', ['-lf', publicKeyFile], { timeoutMs: 15_000 });
  assertSucceeded(result, `ssh-keygen -lf ${publicKeyFile}`);
  const match = /\bSHA256:[A-Za-z0-9+/]+/.exec(result.stdout);
  assert.ok(match, `no fingerprint in ssh-keygen output: ${result.stdout}`);
  return match[0];
}

async function generateKey(file: string, passphrase = ''): Promise<void> {
  assertSucceeded(await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'ftpfwd-ssh-side-test', '-f', file], { timeoutMs: 15_000 }), `ssh-keygen ${file}`);
}

/** Lets `sshd` accept the key whose public half is `publicKeyFile`, besides its own. */
async function authorize(sshd: SshdInstance, publicKeyFile: string): Promise<void> {
  await appendFile(join(sshd.dir, 'authorized_keys'), await readFile(publicKeyFile));
}

/** sshd's line for a successful public-key login with the key of this fingerprint. */
function acceptedPublickey(user: string, fingerprint: string): RegExp {
  return new RegExp(`Accepted publickey for ${escapeRegExp(user)} from 127\\.0\\.0\\.1 port \\d+ ssh2: ED25519 ${escapeRegExp(fingerprint)}`);
}

/** sshd (LogLevel DEBUG1) logs each direct-tcpip channel with its target. */
function directTcpipTo(port: number): RegExp {
  return new RegExp(`server_request_direct_tcpip: originator \\S+ port \\d+, target 127\\.0\\.0\\.1 port ${port}\\b`);
}

/** Every failure is exactly one line on stderr, starting with `ftpfwd: `; returns that line. */
function singleErrorLine(stderr: string): string {
  assert.match(stderr, /^ftpfwd: [^\n]+\n$/, `stderr is not one "ftpfwd: " line:\n${stderr}`);
  return stderr.slice(0, -1);
}

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.timedOut, false, `ftpfwd did not exit by itself\n${result.stderr}`);
  assert.equal(result.code, code, `exit code ${String(result.code)}, expected ${code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
}

/** Quotes one word for `sh -c`. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

async function userExists(name: string): Promise<boolean> {
  return (await run('getent', ['passwd', name], { timeoutMs: 5_000 })).code === 0;
}

describe('ftpfwd SSH side through the real CLI, real OpenSSH and vsftpd', { skip: isRoot() ? false : 'needs root (vsftpd anonymous chroot, a system user for password logins): skipped' }, () => {
  let dir: string;
  let vsftpd: VsftpdInstance;
  let dataSum: string;
  /** Three servers for ProxyJump; the jump hosts log each direct-tcpip request (DEBUG1). */
  let jump1: SshdInstance;
  let jump2: SshdInstance;
  let target: SshdInstance;
  let counter = 0;
  const started = new Set<ProcessHandle>();

  before(async () => {
    dir = await makeTempDir('ftpfwd-sshside-');
    const root = join(dir, 'ftproot');
    await mkdir(root);
    await writeRandomFile(join(root, DATA_FILE), DATA_SIZE);
    dataSum = await sha256File(join(root, DATA_FILE));
    vsftpd = await startVsftpd({ root });
    jump1 = await startSshd({ extraConfig: ['LogLevel DEBUG1'] });
    jump2 = await startSshd({ extraConfig: ['LogLevel DEBUG1'] });
    target = await startSshd();
  });

  after(async () => {
    await stopAllClis();
    await target?.stop();
    await jump2?.stop();
    await jump1?.stop();
    await vsftpd?.stop();
    if (dir) await removeDir(dir);
  });

  const forwardSpec = (): string => `0:127.0.0.1:${vsftpd.port}`;

  /** A fresh path in the test directory. */
  function path(name: string): string {
    counter += 1;
    return join(dir, `${counter}-${name}`);
  }

  /** A new, empty home directory with an empty ~/.ssh: no config, keys or known_hosts. */
  async function newHome(): Promise<string> {
    const home = path('home');
    await mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 });
    return home;
  }

  /** The CLI's environment: HOME as given, no agent unless `extra` names one. */
  function cliEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
    delete env['SSH_AUTH_SOCK'];
    return { ...env, ...extra };
  }

  /**
   * The CLI in a session of its own (setsid), so it has no controlling
   * terminal to prompt on, however the tests themselves are run.
   */
  const cliCommand = (args: string[]): [string, string[]] => ['setsid', ['node', BIN, ...args]];

  /** Runs the CLI to completion, killed after RUN_TIMEOUT_MS. */
  function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
    const [cmd, argv] = cliCommand(args);
    return run(cmd, argv, { env, cwd: ROOT, timeoutMs: RUN_TIMEOUT_MS });
  }

  /** Starts the CLI and waits for its listening line; returns the handle and the local port. */
  async function startCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ handle: ProcessHandle; port: number; via: string }> {
    const [cmd, argv] = cliCommand(args);
    const handle = await startProcess(cmd, argv, { env, cwd: ROOT });
    started.add(handle);
    await handle.waitForOutput(LISTENING_LINE, LISTEN_TIMEOUT_MS);
    const match = LISTENING_LINE.exec(handle.stdout());
    assert.ok(match, handle.stdout());
    return { handle, port: Number(match[1]), via: match[3]! };
  }

  async function stopCli(handle: ProcessHandle): Promise<void> {
    process.kill(handle.pid, 'SIGTERM');
    const status = await handle.waitExit(EXIT_TIMEOUT_MS);
    started.delete(handle);
    assert.deepEqual(status, { code: 0, signal: null }, `ftpfwd did not stop cleanly:\n${handle.stderr()}`);
  }

  /** Downloads the test file with curl through the forwarder on `port` and compares SHA-256. */
  async function assertTransfer(port: number): Promise<void> {
    const out = path('download.bin');
    const result = await curlDownload(`ftp://127.0.0.1:${port}/${DATA_FILE}`, out, 'pasv', { timeoutMs: CURL_TIMEOUT_MS });
    assert.equal(result.code, 0, `curl failed (exit ${String(result.code)}):\n${result.stderr.slice(-3000)}`);
    assert.equal(await sha256File(out), dataSum, 'the downloaded file differs from the served one');
    await rm(out, { force: true });
  }

  /** Stops every CLI still running (its SSH connection keeps a per-user sshd process alive). */
  async function stopAllClis(): Promise<void> {
    for (const handle of started) await handle.stop();
    started.clear();
  }

  /** Starts the CLI, transfers the file through it, stops it (exit 0); returns the "via" of its listening line. */
  async function forwardAndTransfer(args: string[], env: NodeJS.ProcessEnv): Promise<{ via: string }> {
    const { handle, port, via } = await startCli(args, env);
    try {
      await assertTransfer(port);
    } catch (error) {
      await handle.stop();
      started.delete(handle);
      throw error;
    }
    await stopCli(handle);
    return { via };
  }

  /** -p, known_hosts and -L for a direct login to `sshd` (no key: add -i or an agent). */
  const directArgs = (sshd: SshdInstance): string[] => ['-L', forwardSpec(), '-p', String(sshd.port), '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`];

  describe('ssh_config and jump hosts', () => {
    let home: string;
    let labKnownHosts: string;
    const fingerprints = { jump1: '', jump2: '', target: '' };

    before(async () => {
      home = await newHome();
      const ssh = join(home, '.ssh');
      for (const [name, sshd] of [['jump1', jump1], ['jump2', jump2], ['target', target]] as const) {
        await copyFile(sshd.identityFile, join(ssh, `${name}_key`));
        await chmod(join(ssh, `${name}_key`), 0o600);
        fingerprints[name] = await fingerprintOf(`${sshd.identityFile}.pub`);
      }
      labKnownHosts = join(ssh, 'lab_known_hosts');
      await writeFile(labKnownHosts, [jump1, jump2, target].map((sshd) => knownHostsLine(sshd.host, sshd.port, sshd.hostPublicKey)).join(''));
      await writeFile(join(ssh, 'empty_known_hosts'), '');
      const user = target.user;
      await writeFile(
        join(ssh, 'config'),
        [
          '# Each server accepts only its own key; the target is reached through jump1, then jump2.',
          'Host ftp-target',
          '    HostName 127.0.0.1',
          `    Port ${target.port}`,
          '    IdentityFile ~/.ssh/target_key',
          '    ProxyJump ftp-jump1,ftp-jump2',
          '',
          'Host ftp-jump1',
          '    HostName 127.0.0.1',
          `    Port ${jump1.port}`,
          '    IdentityFile ~/.ssh/jump1_key',
          '',
          'Host ftp-jump2',
          '    HostName 127.0.0.1',
          `    Port ${jump2.port}`,
          '    IdentityFile ~/.ssh/jump2_key',
          '',
          '# A wildcard block for all three.',
          'Host ftp-*',
          `    User ${user}`,
          '    IdentitiesOnly yes',
          '    UserKnownHostsFile ~/.ssh/lab_known_hosts',
          '',
          '# First match wins: every value here is already set above, so none of these may apply.',
          'Host *',
          '    User nosuchuser',
          '    Port 1',
          '    UserKnownHostsFile ~/.ssh/empty_known_hosts',
          '',
        ].join('\n'),
      );
    });

    it('reaches the target through two ProxyJump hosts from ~/.ssh/config, each with its own block and key', async () => {
      const marks = { jump1: jump1.log(), jump2: jump2.log(), target: target.log() };
      const { via } = await forwardAndTransfer(['-L', forwardSpec(), 'ftp-target'], cliEnv(home));
      assert.equal(via, `${target.user}@127.0.0.1:${target.port}`, 'User/HostName/Port of the earlier blocks must win over "Host *"');

      const log1 = logSince(jump1, marks.jump1);
      const log2 = logSince(jump2, marks.jump2);
      const log3 = logSince(target, marks.target);
      assert.match(log1, acceptedPublickey(jump1.user, fingerprints.jump1), `jump1 did not accept its key:\n${log1}`);
      assert.match(log1, directTcpipTo(jump2.port), `jump1 did not open a channel to jump2:\n${log1}`);
      assert.doesNotMatch(log1, directTcpipTo(target.port), 'jump1 must not reach the target itself');
      assert.match(log2, acceptedPublickey(jump2.user, fingerprints.jump2), `jump2 did not accept its key:\n${log2}`);
      assert.match(log2, directTcpipTo(target.port), `jump2 did not open a channel to the target:\n${log2}`);
      assert.match(log3, acceptedPublickey(target.user, fingerprints.target), `the target did not accept its key:\n${log3}`);
    });

    it('-F reads another file, whose ProxyJump applies, and -J on the command line overrides it', async () => {
      const deadPort = await freePort();
      const config = path('ssh_config');
      await writeFile(
        config,
        [
          'Host ftp-target',
          '    HostName 127.0.0.1',
          `    Port ${target.port}`,
          `    IdentityFile ${target.identityFile}`,
          '    ProxyJump ftp-dead',
          'Host ftp-dead',
          '    HostName 127.0.0.1',
          `    Port ${deadPort}`,
          'Host ftp-jump2',
          '    HostName 127.0.0.1',
          `    Port ${jump2.port}`,
          `    IdentityFile ${jump2.identityFile}`,
          'Host *',
          `    User ${target.user}`,
          `    UserKnownHostsFile ${labKnownHosts}`,
          '    ConnectTimeout 5',
          '',
        ].join('\n'),
      );
      // An empty home: only -F can say where ftp-target is.
      const env = cliEnv(await newHome());

      const viaDeadJump = await runCli(['-L', forwardSpec(), '-F', config, 'ftp-target'], env);
      assertExit(viaDeadJump, 5);
      assert.match(singleErrorLine(viaDeadJump.stderr), new RegExp(`127\\.0\\.0\\.1:${deadPort} refused`));

      const marks = { jump1: jump1.log(), jump2: jump2.log(), target: target.log() };
      await forwardAndTransfer(['-L', forwardSpec(), '-F', config, '-J', 'ftp-jump2', 'ftp-target'], env);
      const log2 = logSince(jump2, marks.jump2);
      assert.match(log2, acceptedPublickey(jump2.user, fingerprints.jump2), `jump2 did not accept its key:\n${log2}`);
      assert.match(log2, directTcpipTo(target.port), `jump2 did not open a channel to the target:\n${log2}`);
      assert.doesNotMatch(logSince(jump1, marks.jump1), /Accepted publickey/, 'jump1 is not on the -J path');
      assert.match(logSince(target, marks.target), acceptedPublickey(target.user, fingerprints.target));
    });
  });

  describe('ssh-agent', () => {
    let agent: ProcessHandle | undefined;
    let socket: string;
    let agentKeyFingerprint: string;

    before(async () => {
      const key = path('agent_key');
      await generateKey(key);
      await authorize(target, `${key}.pub`);
      agentKeyFingerprint = await fingerprintOf(`${key}.pub`);
      socket = path('agent.sock');
      agent = await startProcess('ssh-agent', ['-D', '-a', socket]);
      for (let attempt = 0; attempt < 100 && !existsSync(socket); attempt += 1) await delay(50);
      assert.ok(existsSync(socket), `ssh-agent made no socket:\n${agent.stdout()}${agent.stderr()}`);
      assertSucceeded(await run('ssh-add', [key], { env: { ...process.env, SSH_AUTH_SOCK: socket }, timeoutMs: 10_000 }), 'ssh-add');
      // From now on only the agent holds the private key.
      await rm(key);
    });

    after(async () => {
      await agent?.stop();
    });

    it('logs in with the key held by ssh-agent (SSH_AUTH_SOCK, no -i)', async () => {
      const mark = target.log();
      await forwardAndTransfer([...directArgs(target), `${target.user}@127.0.0.1`], cliEnv(await newHome(), { SSH_AUTH_SOCK: socket }));
      assert.match(logSince(target, mark), acceptedPublickey(target.user, agentKeyFingerprint), 'the agent key was not the one accepted');
    });

    it('fails with exit 7 when -o IdentityAgent=none turns the agent off', async () => {
      const result = await runCli([...directArgs(target), '-o', 'IdentityAgent=none', `${target.user}@127.0.0.1`], cliEnv(await newHome(), { SSH_AUTH_SOCK: socket }));
      assertExit(result, 7);
      assert.match(singleErrorLine(result.stderr), /authentication to \S+ failed \(tried: [^)]*\)/);
    });
  });

  describe('encrypted private key', () => {
    const passphrase = `pass phrase ${randomBytes(6).toString('hex')}`;
    let key: string;
    let keyFingerprint: string;

    before(async () => {
      key = path('encrypted_key');
      await generateKey(key, passphrase);
      await authorize(target, `${key}.pub`);
      keyFingerprint = await fingerprintOf(`${key}.pub`);
    });

    it('is unlocked with --passphrase-file', async () => {
      const file = path('passphrase');
      await writeFile(file, `${passphrase}\n`, { mode: 0o600 });
      const mark = target.log();
      await forwardAndTransfer([...directArgs(target), '-i', key, '--passphrase-file', file, `${target.user}@127.0.0.1`], cliEnv(await newHome()));
      assert.match(logSince(target, mark), acceptedPublickey(target.user, keyFingerprint));
    });

    it('is unlocked with --passphrase-env NAME', async () => {
      const mark = target.log();
      await forwardAndTransfer(
        [...directArgs(target), '-i', key, '--passphrase-env', 'FTPFWD_TEST_PASSPHRASE', `${target.user}@127.0.0.1`],
        cliEnv(await newHome(), { FTPFWD_TEST_PASSPHRASE: passphrase }),
      );
      assert.match(logSince(target, mark), acceptedPublickey(target.user, keyFingerprint));
    });

    it('exits 7 with one line for a wrong passphrase', async () => {
      const file = path('wrong_passphrase');
      await writeFile(file, 'not the passphrase\n', { mode: 0o600 });
      const result = await runCli([...directArgs(target), '-i', key, '--passphrase-file', file, `${target.user}@127.0.0.1`], cliEnv(await newHome()));
      assertExit(result, 7);
      assert.ok(singleErrorLine(result.stderr).includes(key), result.stderr);
    });

    /** Runs the CLI under script(1): a pseudo-terminal is its controlling terminal, where it could prompt. */
    function runOnTerminal(args: string[], env: NodeJS.ProcessEnv, input: string): Promise<RunResult> {
      const command = ['node', BIN, ...args].map(shellQuote).join(' ');
      return run('script', ['-qec', command, '/dev/null'], { env, cwd: ROOT, timeoutMs: RUN_TIMEOUT_MS, input });
    }

    it('on a terminal, without BatchMode, asks for the passphrase there (and the transfer works)', async () => {
      const out = path('terminal-download.bin');
      const result = await runOnTerminal(
        [...directArgs(target), '-i', key, `${target.user}@127.0.0.1`, '--', 'curl', '-sS', '--fail', '--max-time', '15', '-o', out, `{url}${DATA_FILE}`],
        cliEnv(await newHome()),
        `${passphrase}\n`,
      );
      assertExit(result, 0);
      assert.ok(result.stdout.includes(`Enter passphrase for key '${key}': `), `no prompt on the terminal:\n${result.stdout}`);
      assert.equal(await sha256File(out), dataSum);
    });

    it('with BatchMode=yes fails at once with one line and exit 7, never prompting, even on a terminal', async () => {
      const startedAt = Date.now();
      const result = await runOnTerminal([...directArgs(target), '-i', key, '-o', 'BatchMode=yes', `${target.user}@127.0.0.1`], cliEnv(await newHome()), '');
      const elapsedMs = Date.now() - startedAt;
      assertExit(result, 7);
      assert.ok(elapsedMs < QUICK_FAILURE_MS, `took ${elapsedMs} ms to fail`);
      // The terminal carries stdout and stderr alike, with CR LF line ends.
      const line = singleErrorLine(result.stdout.replace(/\r\n/g, '\n'));
      assert.match(line, /encrypted/);
      assert.ok(line.includes(key), line);
      assert.doesNotMatch(result.stdout, /passphrase for key/i, 'BatchMode must never prompt');
    });
  });

  describe('password authentication', () => {
    const password = `pw-${randomBytes(9).toString('base64url')}`;
    let passwordFile: string;
    let passwordSshd: SshdInstance | undefined;
    let pamSshd: SshdInstance | undefined;

    before(async () => {
      // An earlier run that crashed may have left the user behind: reuse it, with a new password.
      if (!(await userExists(PASSWORD_USER))) {
        assertSucceeded(await run('useradd', ['-M', '-s', '/bin/sh', PASSWORD_USER], { timeoutMs: 10_000 }), 'useradd');
      }
      assertSucceeded(await run('chpasswd', [], { input: `${PASSWORD_USER}:${password}\n`, timeoutMs: 10_000 }), 'chpasswd');
      passwordFile = path('password');
      await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
      passwordSshd = await startSshd({
        extraConfig: ['PasswordAuthentication yes', 'KbdInteractiveAuthentication no', 'UsePAM no', `AllowUsers ${PASSWORD_USER}`],
      });
    });

    after(async () => {
      // userdel refuses while a process (sshd's, for a connection) runs as the user.
      await stopAllClis();
      await pamSshd?.stop();
      await passwordSshd?.stop();
      if (!(await userExists(PASSWORD_USER))) return;
      let result = await run('userdel', [PASSWORD_USER], { timeoutMs: 10_000 });
      for (let attempt = 0; attempt < 20 && (await userExists(PASSWORD_USER)); attempt += 1) {
        await delay(250);
        result = await run('userdel', [PASSWORD_USER], { timeoutMs: 10_000 });
      }
      assert.equal(await userExists(PASSWORD_USER), false, `could not remove the user ${PASSWORD_USER}: ${result.stderr}`);
    });

    const loginArgs = (sshd: SshdInstance): string[] => [...directArgs(sshd), `${PASSWORD_USER}@127.0.0.1`];

    it('logs in with --password-file', async () => {
      const sshd = passwordSshd!;
      const mark = sshd.log();
      await forwardAndTransfer([...loginArgs(sshd), '--password-file', passwordFile], cliEnv(await newHome()));
      assert.match(logSince(sshd, mark), new RegExp(`Accepted password for ${PASSWORD_USER} from 127\\.0\\.0\\.1`));
    });

    it('exits 7 for a wrong password, listing password among the methods tried', async () => {
      const wrong = path('wrong_password');
      await writeFile(wrong, 'not-the-password\n', { mode: 0o600 });
      const result = await runCli([...loginArgs(passwordSshd!), '--password-file', wrong], cliEnv(await newHome()));
      assertExit(result, 7);
      assert.match(singleErrorLine(result.stderr), /authentication to ftpfwdpw@127\.0\.0\.1:\d+ failed \(tried: (?:[a-z-]+, )*password(?:, [a-z-]+)*\)/);
    });

    it('logs in with keyboard-interactive (PAM) and --password-env', async (t: TestContext) => {
      if (!existsSync('/etc/pam.d/sshd')) {
        t.skip('no /etc/pam.d/sshd: sshd cannot use PAM here');
        return;
      }
      pamSshd = await startSshd({
        extraConfig: ['UsePAM yes', 'KbdInteractiveAuthentication yes', 'PasswordAuthentication no', `AllowUsers ${PASSWORD_USER}`],
      });
      const mark = pamSshd.log();
      try {
        await forwardAndTransfer([...loginArgs(pamSshd), '--password-env', 'FTPFWD_TEST_PASSWORD'], cliEnv(await newHome(), { FTPFWD_TEST_PASSWORD: password }));
      } catch (error) {
        // A container whose PAM stack cannot open a session (pam_loginuid, ...) is not ftpfwd's failure.
        const pamProblem = /PAM: (?:pam_open_session\(\)|pam_setcred\(\)|initialisation failed)[^\n]*/.exec(logSince(pamSshd, mark));
        if (pamProblem === null) throw error;
        t.skip(`sshd's PAM setup fails here (${pamProblem[0]}): keyboard-interactive not tested`);
        return;
      }
      assert.match(logSince(pamSshd, mark), new RegExp(`Accepted keyboard-interactive/pam for ${PASSWORD_USER} from 127\\.0\\.0\\.1`));
    });
  });

  describe('known_hosts', () => {
    const hostName = (): string => `[127.0.0.1]:${target.port}`;
    const hostKey = (): string => target.hostPublicKey.split(/\s+/).slice(0, 2).join(' ');
    const keyArgs = (knownHosts: string): string[] => ['-L', forwardSpec(), '-p', String(target.port), '-i', target.identityFile, '-o', `UserKnownHostsFile=${knownHosts}`, `${target.user}@127.0.0.1`];

    it('accepts a hashed entry for [127.0.0.1]:port', async () => {
      const knownHosts = path('known_hosts');
      await writeFile(knownHosts, knownHostsLine('127.0.0.1', target.port, target.hostPublicKey));
      assertSucceeded(await run('ssh-keygen', ['-H', '-f', knownHosts], { timeoutMs: 15_000 }), 'ssh-keygen -H');
      const hashed = await readFile(knownHosts, 'utf8');
      assert.match(hashed, /^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /, `not hashed:\n${hashed}`);
      assert.ok(!hashed.includes('127.0.0.1'), hashed);
      await forwardAndTransfer(keyArgs(knownHosts), cliEnv(await newHome()));
    });

    it('refuses a key marked @revoked with exit 6, even next to a plain entry for it', async () => {
      const knownHosts = path('known_hosts');
      await writeFile(knownHosts, `${hostName()} ${hostKey()}\n@revoked ${hostName()} ${hostKey()}\n`);
      const result = await runCli(keyArgs(knownHosts), cliEnv(await newHome()));
      assertExit(result, 6);
      const line = singleErrorLine(result.stderr);
      assert.match(line, /revoked/);
      assert.ok(line.includes(`${knownHosts}:2`), line);
    });

    it('refuses with exit 6 when only a @cert-authority covers the host, even with accept-new', async () => {
      const ca = path('ca_key');
      await generateKey(ca);
      const caKey = (await readFile(`${ca}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
      const knownHosts = path('known_hosts');
      const content = `@cert-authority ${hostName()} ${caKey}\n`;
      await writeFile(knownHosts, content);
      const result = await runCli([...keyArgs(knownHosts), '-o', 'StrictHostKeyChecking=accept-new'], cliEnv(await newHome()));
      assertExit(result, 6);
      assert.match(singleErrorLine(result.stderr), /cert-authority/);
      assert.equal(await readFile(knownHosts, 'utf8'), content, 'the plain key must not be added');
    });
  });

  describe('ServerAliveInterval', () => {
    let sshd: SshdInstance | undefined;
    let frozen: number[] = [];

    after(async () => {
      signalAll(frozen, 'SIGCONT');
      await stopAllClis();
      await sshd?.stop();
    });

    it('exits 5 with one line within seconds when the server stops answering (--exit-on-disconnect)', async () => {
      sshd = await startSshd();
      const logFile = path('keepalive.log');
      const { handle, port } = await startCli(
        [...directArgs(sshd), '-i', sshd.identityFile, '-o', 'ServerAliveInterval=1', '-o', 'ServerAliveCountMax=2', '--exit-on-disconnect', '--log-file', logFile, `${sshd.user}@127.0.0.1`],
        cliEnv(await newHome()),
      );
      await assertTransfer(port);

      const listener = Number((await readFile(join(sshd.dir, 'sshd.pid'), 'utf8')).trim());
      assert.ok(Number.isInteger(listener) && listener > 1, 'no sshd pid file');
      frozen = descendantPids(listener);
      assert.ok(frozen.length > 0, 'sshd has no per-connection process to freeze');
      signalAll(frozen, 'SIGSTOP');
      const frozenAt = Date.now();

      const status = await handle.waitExit(15_000);
      const elapsedMs = Date.now() - frozenAt;
      started.delete(handle);
      signalAll(frozen, 'SIGCONT');
      assert.deepEqual(status, { code: 5, signal: null }, `stderr:\n${handle.stderr()}`);
      // Two unanswered keepalives one second apart: about 3 s, certainly not 15.
      assert.ok(elapsedMs < 10_000, `took ${elapsedMs} ms to notice`);
      assert.match(singleErrorLine(handle.stderr()), /^ftpfwd: \S/);
    });
  });
});
