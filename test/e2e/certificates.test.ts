import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appendFile, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { isRoot } from '../helpers/netns.js';
import { assertSucceeded, run, startProcess, type ProcessHandle, type RunResult } from '../helpers/processes.js';
import { escapeRegExp, logSince, startSshd, type SshdInstance } from '../helpers/sshd.js';
import { delay } from '../helpers/time.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'ftpfwd');
const RUN_TIMEOUT_MS = 20_000;

async function keygen(args: string[]): Promise<void> {
  assertSucceeded(await run('ssh-keygen', ['-q', ...args], { timeoutMs: 15_000 }), `ssh-keygen ${args.join(' ')}`);
}

async function publicLine(file: string): Promise<string> {
  return (await readFile(file, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
}

/**
 * SSH certificates with a CA made by ssh-keygen at test time, against the
 * real sshd (TrustedUserCAKeys, HostCertificate) on loopback; each outcome
 * is read from sshd's own log or from ftpfwd's exit code and message.
 * `ftpfwd ... -- true`: it connects, runs the command and exits, so a
 * successful login is an exit 0.
 */
describe('SSH certificates through the real CLI and sshd', { skip: isRoot() ? false : 'needs root (sshd as the current user with fixed ports)' }, () => {
  let dir: string;
  let ca: string;
  /** Host certificates: valid for 127.0.0.1, expired, and for another host. */
  let valid: SshdInstance;
  let expired: SshdInstance;
  let elsewhere: SshdInstance;
  let agent: ProcessHandle | undefined;
  let counter = 0;

  const path = (name: string): string => join(dir, `${++counter}-${name}`);

  /** An sshd whose only host key is a new one with a certificate made with `validity` and `principals`. */
  async function sshdWithHostCertificate(validity: string, principals: string, extra: string[] = []): Promise<SshdInstance> {
    const key = path('host_key');
    await keygen(['-t', 'ed25519', '-N', '', '-f', key]);
    await keygen(['-s', ca, '-h', '-I', `host ${principals} ${validity}`, '-n', principals, '-V', validity, `${key}.pub`]);
    return startSshd({ extraConfig: [`HostKey ${key}`, `HostCertificate ${key}-cert.pub`, `TrustedUserCAKeys ${ca}.pub`, ...extra] });
  }

  /** A user key pair, not in any authorized_keys; with a certificate from the CA when `validity` is given. */
  async function userKey(validity?: string): Promise<string> {
    const key = path('user_key');
    await keygen(['-t', 'ed25519', '-N', '', '-f', key]);
    if (validity !== undefined) await keygen(['-s', ca, '-I', `user-${counter}`, '-n', valid.user, '-V', validity, `${key}.pub`]);
    return key;
  }

  async function knownHostsWith(lines: string[]): Promise<string> {
    const file = path('known_hosts');
    await writeFile(file, lines.map((line) => `${line}\n`).join(''));
    return file;
  }

  /** Trusts the CA for the loopback host on sshd's port (and, after it, `extra` lines). */
  async function caKnownHosts(sshd: SshdInstance, extra: string[] = []): Promise<string> {
    return knownHostsWith([`@cert-authority [127.0.0.1]:${sshd.port} ${await publicLine(`${ca}.pub`)}`, ...extra]);
  }

  function runCli(sshd: SshdInstance, knownHosts: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    const base: NodeJS.ProcessEnv = { ...process.env, HOME: join(dir, 'home') };
    delete base['SSH_AUTH_SOCK'];
    return run(
      'setsid',
      ['node', BIN, '-L', '0:127.0.0.1:21', '-p', String(sshd.port), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'BatchMode=yes', '-v', '--log-format', 'json', ...args, `${sshd.user}@127.0.0.1`, '--', 'true'],
      { env: { ...base, ...env }, cwd: ROOT, timeoutMs: RUN_TIMEOUT_MS },
    );
  }

  function assertExit(result: RunResult, code: number): void {
    assert.equal(result.timedOut, false, result.stderr);
    assert.equal(result.code, code, `exit ${String(result.code)}, expected ${code}\n${result.stderr}`);
  }

  /** The one `ftpfwd:` line among the (JSON) log lines on stderr. */
  function errorLine(result: RunResult): string {
    const lines = result.stderr.split('\n').filter((line) => line.startsWith('ftpfwd: '));
    assert.equal(lines.length, 1, result.stderr);
    return lines[0]!;
  }

  const acceptedCertificate = (sshd: SshdInstance, keyId: string): RegExp =>
    new RegExp(`Accepted publickey for ${escapeRegExp(sshd.user)} from 127\\.0\\.0\\.1 port \\d+ ssh2: ED25519-CERT SHA256:\\S+ ID ${escapeRegExp(keyId)} \\(serial 0\\) CA ED25519`);

  before(async () => {
    dir = await makeTempDir('ftpfwd-certs-');
    await mkdir(join(dir, 'home', '.ssh'), { recursive: true, mode: 0o700 });
    ca = join(dir, 'ca');
    await keygen(['-t', 'ed25519', '-N', '', '-C', 'test CA', '-f', ca]);
    valid = await sshdWithHostCertificate('-5m:+1h', '127.0.0.1', ['MaxAuthTries 3']);
    expired = await sshdWithHostCertificate('20200101:20200102', '127.0.0.1');
    elsewhere = await sshdWithHostCertificate('-5m:+1h', 'other.example.com');
  });

  after(async () => {
    await agent?.stop();
    await elsewhere?.stop();
    await expired?.stop();
    await valid?.stop();
    if (dir) await removeDir(dir);
  });

  describe('host certificates (@cert-authority)', () => {
    it('a host certificate from the listed CA is accepted, with nothing else in known_hosts', async () => {
      const result = await runCli(valid, await caKnownHosts(valid), ['-i', valid.identityFile]);
      assertExit(result, 0);
      assert.match(result.stderr, /"msg":"host certificate accepted"/);
      assert.match(result.stderr, /"keyId":"host 127\.0\.0\.1 -5m:\+1h"/);
    });

    it('an expired host certificate is refused with exit 6, saying it expired', async () => {
      const result = await runCli(expired, await caKnownHosts(expired), ['-i', expired.identityFile]);
      assertExit(result, 6);
      assert.match(errorLine(result), /host certificate for \[127\.0\.0\.1\]:\d+ \(ID "[^"]+", CA SHA256:\S+\) is refused: it expired at 2020-01-02T/);
    });

    it('a host certificate for another host is refused with exit 6, naming its principals', async () => {
      const result = await runCli(elsewhere, await caKnownHosts(elsewhere), ['-i', elsewhere.identityFile]);
      assertExit(result, 6);
      assert.match(errorLine(result), /is refused: it is not valid for 127\.0\.0\.1 \(principals: other\.example\.com\)/);
    });

    it('a CA marked @revoked is refused with exit 6, saying the CA is revoked', async () => {
      const knownHosts = await caKnownHosts(valid, [`@revoked * ${await publicLine(`${ca}.pub`)}`]);
      const result = await runCli(valid, knownHosts, ['-i', valid.identityFile]);
      assertExit(result, 6);
      assert.match(errorLine(result), new RegExp(`the CA of its certificate \\(SHA256:\\S+\\) is marked @revoked at ${escapeRegExp(knownHosts)}:2`));
    });
  });

  describe('user certificates (TrustedUserCAKeys)', () => {
    it('the -cert.pub beside the identity file is offered and accepted; the log names the certificate', async () => {
      const key = await userKey('-5m:+1h');
      const keyId = `user-${counter}`;
      const mark = valid.log();
      const result = await runCli(valid, await caKnownHosts(valid), ['-i', key]);
      assertExit(result, 0);
      assert.match(logSince(valid, mark), acceptedCertificate(valid, keyId));
      assert.match(result.stderr, new RegExp(`"keyId":"${keyId}".*"msg":"authenticated with a certificate"`));
    });

    it('CertificateFile names the certificate, and a certificate held by ssh-agent is used from there', async () => {
      const key = await userKey('-5m:+1h');
      const keyId = `user-${counter}`;
      const elsewhereCert = path('renamed-cert.pub');
      await copyFile(`${key}-cert.pub`, elsewhereCert);
      let mark = valid.log();
      assertExit(await runCli(valid, await caKnownHosts(valid), ['-i', key, '-o', `CertificateFile=${elsewhereCert}`]), 0);
      assert.match(logSince(valid, mark), acceptedCertificate(valid, keyId));

      const socket = path('agent.sock');
      agent = await startProcess('ssh-agent', ['-D', '-a', socket]);
      for (let attempt = 0; attempt < 100 && !existsSync(socket); attempt += 1) await delay(50);
      // ssh-add adds the certificate beside the key too.
      assertSucceeded(await run('ssh-add', [key], { env: { ...process.env, SSH_AUTH_SOCK: socket }, timeoutMs: 10_000 }), 'ssh-add');
      const listed = await run('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: socket }, timeoutMs: 10_000 });
      assert.match(listed.stdout, /ED25519-CERT/, listed.stdout);
      await rm(key);
      await rm(`${key}-cert.pub`);
      await rm(`${key}.pub`);
      mark = valid.log();
      const result = await runCli(valid, await caKnownHosts(valid), [], { SSH_AUTH_SOCK: socket });
      assertExit(result, 0);
      assert.match(logSince(valid, mark), acceptedCertificate(valid, keyId));
      assert.match(result.stderr, /"signedBy":"agent".*"msg":"authenticated with a certificate"/);
    });

    it('an expired user certificate is refused by sshd: exit 7, and ftpfwd warned before offering it', async () => {
      const key = await userKey('20200101:20200102');
      const mark = valid.log();
      const result = await runCli(valid, await caKnownHosts(valid), ['-i', key]);
      assertExit(result, 7);
      assert.match(logSince(valid, mark), /Certificate invalid: expired/);
      assert.match(result.stderr, /"validBefore":"2020-01-02T[^"]*".*"msg":"a certificate to be offered is not valid now/);
    });
  });

  describe('IdentitiesOnly', () => {
    let socket: string;
    let eight: ProcessHandle;
    let agentKeys: string[];
    const home = (): string => join(dir, 'home');

    before(async () => {
      socket = path('agent8.sock');
      eight = await startProcess('ssh-agent', ['-D', '-a', socket]);
      for (let attempt = 0; attempt < 100 && !existsSync(socket); attempt += 1) await delay(50);
      agentKeys = [];
      for (let index = 0; index < 8; index += 1) agentKeys.push(await userKey());
      for (const key of agentKeys) assertSucceeded(await run('ssh-add', [key], { env: { ...process.env, SSH_AUTH_SOCK: socket }, timeoutMs: 10_000 }), 'ssh-add');
    });
    after(async () => {
      await eight?.stop();
    });

    async function configFor(identityFile: string): Promise<string> {
      const config = path('ssh_config');
      await writeFile(config, `Host 127.0.0.1\n  IdentityFile ${identityFile}\n`);
      return config;
    }

    async function assertAccepted(mark: string, publicKeyFile: string): Promise<void> {
      const fingerprint = (await run('ssh-keygen', ['-lf', publicKeyFile], { timeoutMs: 10_000 })).stdout.split(/\s+/)[1]!;
      const log = logSince(valid, mark);
      assert.match(log, new RegExp(`Accepted publickey for ${escapeRegExp(valid.user)} from 127\\.0\\.0\\.1 port \\d+ ssh2: ED25519 ${escapeRegExp(fingerprint)}`), log);
    }

    it('a key file beside 8 agent keys, MaxAuthTries 3: without it the agent keys use up the tries; with it the file key logs in', async () => {
      const fileKey = await userKey();
      await appendFile(join(valid.dir, 'authorized_keys'), await readFile(`${fileKey}.pub`));
      const config = await configFor(fileKey);
      const knownHosts = await caKnownHosts(valid);
      const env = { SSH_AUTH_SOCK: socket, HOME: home() };

      assertExit(await runCli(valid, knownHosts, ['-F', config], env), 7);

      const mark = valid.log();
      const result = await runCli(valid, knownHosts, ['-F', config, '-o', 'IdentitiesOnly=yes'], env);
      assertExit(result, 0);
      await assertAccepted(mark, `${fileKey}.pub`);
      assert.equal((result.stderr.match(/"msg":"offering a public key"/g) ?? []).length, 1, result.stderr);
    });

    it('the agent still signs for a configured key it holds (only the public half on disk), the others left out', async () => {
      const configured = agentKeys[7]!;
      await appendFile(join(valid.dir, 'authorized_keys'), await readFile(`${configured}.pub`));
      await rm(configured);
      const mark = valid.log();
      const result = await runCli(valid, await caKnownHosts(valid), ['-F', await configFor(configured), '-o', 'IdentitiesOnly=yes'], { SSH_AUTH_SOCK: socket, HOME: home() });
      assertExit(result, 0);
      await assertAccepted(mark, `${configured}.pub`);
      assert.equal((result.stderr.match(/"msg":"offering a public key"/g) ?? []).length, 1, result.stderr);
      assert.match(result.stderr, /"signedBy":"agent".*"msg":"authenticated"/);
    });
  });

  describe('known_hosts appends', () => {
    it('two accept-new runs at once add one line', async () => {
      const knownHosts = await knownHostsWith([]);
      const results = await Promise.all([0, 1, 2].map(() => runCli(valid, knownHosts, ['-i', valid.identityFile, '-o', 'StrictHostKeyChecking=accept-new'])));
      for (const result of results) assertExit(result, 0);
      const lines = (await readFile(knownHosts, 'utf8')).split('\n').filter((line) => line !== '');
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.equal(existsSync(`${knownHosts}.lock`), false, 'the lock file was left behind');
    });
  });
});
