import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { freePort } from '../helpers/ports.js';
import { eventually, killLeftovers, pidsWithMarker } from '../helpers/procfs.js';
import { assertSucceeded, run, startProcess, type ProcessHandle, type RunResult } from '../helpers/processes.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { canConnect } from '../helpers/tcp.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'ftpfwd');
const EXAMPLES = join(ROOT, 'examples');
const RUN_TIMEOUT_MS = 40_000;

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.timedOut, false, `did not exit within ${RUN_TIMEOUT_MS} ms\n${result.stderr}`);
  assert.equal(result.code, code, `exit code ${String(result.code)}, expected ${code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
}

/** Every file under `top`, by relative path, with its SHA-256. */
async function treeSums(top: string): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  const walk = async (directory: string): Promise<void> => {
    for (const entry of await readdir(directory, { withFileTypes: true })) {
      const full = join(directory, entry.name);
      if (entry.isDirectory()) await walk(full);
      else sums[relative(top, full)] = await sha256File(full);
    }
  };
  await walk(top);
  return sums;
}

/** A unit file as systemd reads it: sections of key/value pairs, backslash continuations joined. */
function parseUnitFile(text: string): Map<string, Array<[string, string]>> {
  const sections = new Map<string, Array<[string, string]>>();
  let current: Array<[string, string]> | null = null;
  const logical = text.replace(/\\\n/g, ' ').split('\n');
  for (const [index, raw] of logical.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[([A-Za-z]+)\]$/.exec(line);
    if (section) {
      assert.equal(sections.has(section[1]!), false, `section [${section[1]}] twice`);
      current = [];
      sections.set(section[1]!, current);
      continue;
    }
    const entry = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    assert.ok(entry, `line ${index + 1} is neither a section, a comment nor Key=Value: ${raw}`);
    assert.ok(current, `line ${index + 1} comes before any section`);
    current.push([entry[1]!, entry[2]!.trim()]);
  }
  return sections;
}

function unitValues(sections: Map<string, Array<[string, string]>>, section: string, key: string): string[] {
  return (sections.get(section) ?? []).filter(([name]) => name === key).map(([, value]) => value);
}

/** ExecStart's words with ${NAME} and $NAME replaced from `variables`, as systemd does for whole words. */
function expandExecStart(command: string, variables: Record<string, string>): string[] {
  return command
    .split(/\s+/)
    .filter((word) => word !== '')
    .map((word) =>
      word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_whole: string, braced: string | undefined, bare: string | undefined) => {
        const name = (braced ?? bare)!;
        const value = variables[name];
        assert.ok(value !== undefined, `ExecStart uses ${name}, which the environment file does not set`);
        return value;
      }),
    );
}

describe('examples/ against a real sshd and vsftpd', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let sshd: SshdInstance;
  let vsftpd: VsftpdInstance;
  let counter = 0;
  const started = new Set<ProcessHandle>();

  before(async () => {
    dir = await makeTempDir('ftpfwd-examples-');
    const home = join(dir, 'home');
    await mkdir(home);
    // An empty home and no agent: only what a test passes is used.
    env = { ...process.env, HOME: home };
    delete env['SSH_AUTH_SOCK'];
    const root = join(dir, 'root');
    await mkdir(join(root, 'outgoing', 'sub', 'deeper'), { recursive: true });
    await writeFile(join(root, 'outgoing', 'a.txt'), 'first file\n');
    await writeRandomFile(join(root, 'outgoing', 'sub', 'b.bin'), 1024 * 1024);
    await writeRandomFile(join(root, 'outgoing', 'sub', 'deeper', 'c.bin'), 70_000);
    await writeRandomFile(join(root, 'download.bin'), 3 * 1024 * 1024);
    // A tree with one file that vsftpd's anonymous user cannot read.
    await mkdir(join(root, 'locked'));
    await writeFile(join(root, 'locked', 'readable.txt'), 'fine\n');
    await writeFile(join(root, 'locked', 'secret.txt'), 'no\n');
    await chmod(join(root, 'locked', 'secret.txt'), 0o600);
    sshd = await startSshd();
    vsftpd = await startVsftpd({ root });
  });

  after(async () => {
    for (const handle of started) await handle.stop();
    // What a failed test's script left running (ftpfwd -f, curl): their arguments name the test directory.
    if (dir) await killLeftovers(dir);
    await vsftpd?.stop();
    await sshd?.stop();
    if (dir) await removeDir(dir);
  });

  async function freshDir(name: string): Promise<string> {
    counter += 1;
    const path = join(dir, `${counter}-${name}`);
    await mkdir(path);
    return path;
  }

  const sshOptions = (knownHosts = sshd.knownHostsFile): string => ['-p', String(sshd.port), '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${knownHosts}`].join(' ');

  /** The scripts' settings, pointing at the test servers and at bin/ftpfwd. */
  function scriptEnv(tmp: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      ...env,
      FTPFWD: BIN,
      FTPFWD_SSH: `${sshd.user}@${sshd.host}`,
      FTPFWD_OPTS: sshOptions(),
      FTP_HOST: '127.0.0.1',
      FTP_PORT: String(vsftpd.port),
      TMPDIR: tmp,
      ...extra,
    };
  }

  function runScript(name: string, args: string[], scriptEnvironment: NodeJS.ProcessEnv): Promise<RunResult> {
    return run(join(EXAMPLES, name), args, { env: scriptEnvironment, cwd: dir, timeoutMs: RUN_TIMEOUT_MS });
  }

  /**
   * An ssh_config for -F that says where the example's hosts really are
   * (first value wins), then includes examples/ssh_config unchanged.
   */
  async function testSshConfig(server: SshdInstance, extraLines: string[] = []): Promise<string> {
    const file = join(await freshDir('ssh-config'), 'config');
    await writeFile(
      file,
      [
        'Host edge ftp-bastion',
        '    HostName 127.0.0.1',
        `    Port ${server.port}`,
        `    User ${server.user}`,
        `    UserKnownHostsFile ${server.knownHostsFile}`,
        ...extraLines.map((line) => `    ${line}`),
        'Host *',
        `Include ${join(EXAMPLES, 'ssh_config')}`,
        '',
      ].join('\n'),
    );
    return file;
  }

  describe('mirror-through-bastion.sh', () => {
    it('mirrors a remote tree with lftp through ftpfwd and exits 0', async () => {
      const tmp = await freshDir('tmp');
      const target = join(await freshDir('mirror'), 'copy');
      const result = await runScript('mirror-through-bastion.sh', ['/outgoing', target], scriptEnv(tmp));
      assertExit(result, 0);
      assert.deepEqual(await treeSums(target), await treeSums(join(vsftpd.root, 'outgoing')));
      assert.match(result.stderr, /mirrored \/outgoing to /);
    });

    it('fails loudly, with lftp\'s status, when a file cannot be read', async () => {
      const tmp = await freshDir('tmp');
      const target = join(await freshDir('mirror'), 'copy');
      const result = await runScript('mirror-through-bastion.sh', ['/locked', target], scriptEnv(tmp));
      assertExit(result, 1);
      assert.match(result.stderr, /550 .*secret\.txt/);
      assert.match(result.stderr, /mirror-through-bastion\.sh: FAILED \(exit status 1\)/);
      assert.equal(await readFile(join(target, 'readable.txt'), 'utf8'), 'fine\n');
    });

    it("fails with ftpfwd's exit code 6 when the host key is unknown, without running lftp", async () => {
      const tmp = await freshDir('tmp');
      const knownHosts = join(tmp, 'empty_known_hosts');
      await writeFile(knownHosts, '');
      const target = join(await freshDir('mirror'), 'copy');
      const result = await runScript('mirror-through-bastion.sh', ['/outgoing', target], scriptEnv(tmp, { FTPFWD_OPTS: sshOptions(knownHosts) }));
      assertExit(result, 6);
      assert.match(result.stderr, /^ftpfwd: host key for \S+ is not known/m);
      assert.match(result.stderr, /FAILED \(exit status 6\)/);
      assert.deepEqual(await readdir(target), []);
    });
  });

  describe('upload-with-curl.sh', () => {
    it('uploads through a background ftpfwd, renames the file into place, and cleans up', async () => {
      const tmp = await freshDir('tmp');
      // A name that must be percent-encoded in the URL.
      const source = join(await freshDir('upload'), 'daily report #1.bin');
      await writeRandomFile(source, 2 * 1024 * 1024);
      const result = await runScript('upload-with-curl.sh', [source, 'incoming/reports/2024 Q1'], scriptEnv(tmp));
      assertExit(result, 0);
      const uploaded = join(vsftpd.uploadDir, 'reports', '2024 Q1');
      assert.equal(await sha256File(join(uploaded, 'daily report #1.bin')), await sha256File(source));
      assert.deepEqual(await readdir(uploaded), ['daily report #1.bin'], 'a temporary .part file was left');
      assert.equal((result.stderr.match(/attempt \d\/3/g) ?? []).length, 1, result.stderr);
      assert.deepEqual(await readdir(tmp), [], 'the work directory was not removed');
      assert.deepEqual(pidsWithMarker(tmp), [], 'an ftpfwd started by the script is still running');
    });

    it('retries a failing upload with a growing pause, then exits with the last status', async () => {
      const tmp = await freshDir('tmp');
      const source = join(await freshDir('upload'), 'never.bin');
      await writeFile(source, 'x');
      // Nothing listens there: every session gets a 421 from ftpfwd.
      const closedPort = await freePort();
      const startedAt = Date.now();
      const result = await runScript('upload-with-curl.sh', [source, 'incoming'], scriptEnv(tmp, { FTP_PORT: String(closedPort), ATTEMPTS: '3', BACKOFF: '1' }));
      const elapsed = Date.now() - startedAt;
      assert.equal(result.timedOut, false);
      assert.notEqual(result.code, 0, result.stderr);
      assert.equal((result.stderr.match(/attempt \d\/3: uploading/g) ?? []).length, 3, result.stderr);
      assert.match(result.stderr, /retrying in 1s/);
      assert.match(result.stderr, /retrying in 2s/);
      assert.match(result.stderr, new RegExp(`FAILED: .* after 3 attempts \\(last status ${String(result.code)}\\)`));
      assert.ok(elapsed >= 3_000, `three attempts with pauses of 1 s and 2 s took only ${elapsed} ms`);
      assert.equal(existsSync(join(vsftpd.uploadDir, 'never.bin')), false);
      assert.deepEqual(await readdir(tmp), []);
      assert.deepEqual(pidsWithMarker(tmp), []);
    });

    it('does not retry an unknown host key: exit 6 after one attempt', async () => {
      const tmp = await freshDir('tmp');
      const knownHosts = join(await freshDir('kh'), 'known_hosts');
      await writeFile(knownHosts, '');
      const source = join(await freshDir('upload'), 'once.bin');
      await writeFile(source, 'x');
      const result = await runScript('upload-with-curl.sh', [source, 'incoming'], scriptEnv(tmp, { FTPFWD_OPTS: sshOptions(knownHosts), BACKOFF: '5' }));
      assertExit(result, 6);
      assert.equal((result.stderr.match(/attempt \d\/3: uploading/g) ?? []).length, 1, result.stderr);
      assert.match(result.stderr, /not retrying/);
      assert.deepEqual(await readdir(tmp), []);
      assert.equal(await eventually(() => pidsWithMarker(tmp).length === 0, 5_000), true);
    });

    it('on SIGTERM mid-upload stops curl and the tunnel and removes its work directory (exit 143)', async () => {
      const tmp = await freshDir('tmp');
      const source = join(await freshDir('upload'), 'slow.bin');
      await writeRandomFile(source, 4 * 1024 * 1024);
      const handle = await startProcess(join(EXAMPLES, 'upload-with-curl.sh'), [source, 'incoming/slow'], {
        env: scriptEnv(tmp, { CURL_OPTS: '--limit-rate 256K' }),
        cwd: dir,
      });
      started.add(handle);
      const partial = join(vsftpd.uploadDir, 'slow', 'slow.bin.part');
      assert.equal(await eventually(() => existsSync(partial), 20_000), true, `the upload did not start\n${handle.stderr()}`);
      const running = pidsWithMarker(tmp);
      assert.ok(running.length >= 2, `expected curl and ftpfwd, found ${running.length} processes`);
      process.kill(handle.pid, 'SIGTERM');
      const status = await handle.waitExit(15_000);
      started.delete(handle);
      assert.deepEqual(status, { code: 143, signal: null }, handle.stderr());
      assert.match(handle.stderr(), /terminated/);
      assert.deepEqual(pidsWithMarker(tmp), [], 'curl or ftpfwd outlived the script');
      assert.deepEqual(await readdir(tmp), []);
      assert.equal(existsSync(join(vsftpd.uploadDir, 'slow', 'slow.bin')), false, 'an incomplete upload was renamed into place');
    });
  });

  describe('ssh_config', () => {
    /** Its own sshd, so that its log holds only these tests' logins. */
    let bastion: SshdInstance;
    let agent: ProcessHandle;
    let agentSocket: string;

    before(async () => {
      bastion = await startSshd();
      agentSocket = join(await freshDir('agent'), 'agent.sock');
      agent = await startProcess('ssh-agent', ['-D', '-a', agentSocket], { env });
      started.add(agent);
      assert.equal(await eventually(() => existsSync(agentSocket), 10_000), true, `ssh-agent did not start\n${agent.stderr()}`);
      assertSucceeded(await run('ssh-add', [bastion.identityFile], { env: { ...env, SSH_AUTH_SOCK: agentSocket }, timeoutMs: 15_000 }), 'ssh-add');
    });

    it('with -F, reaches the bastion through the jump host with a key from the agent', async () => {
      const config = await testSshConfig(bastion);
      const out = join(await freshDir('out'), 'download.bin');
      const accepted = (): number => (bastion.log().match(/Accepted publickey for /g) ?? []).length;
      const before = accepted();
      const result = await run(
        BIN,
        ['-F', config, '--log-format', 'json', '-L', `127.0.0.1:0:127.0.0.1:${vsftpd.port}`, 'ftp-bastion', '--',
          'curl', '-sS', '--fail', '--max-time', '20', 'ftp://127.0.0.1:{port}/download.bin', '-o', out],
        { env: { ...env, SSH_AUTH_SOCK: agentSocket }, cwd: dir, timeoutMs: RUN_TIMEOUT_MS },
      );
      assertExit(result, 0);
      assert.equal(await sha256File(out), await sha256File(join(vsftpd.root, 'download.bin')));
      const established = result.stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((record) => record['msg'] === 'SSH connection established');
      assert.ok(established, result.stderr);
      assert.deepEqual(established['jumpHosts'], [`${bastion.user}@127.0.0.1:${bastion.port}`]);
      // One login for the jump host, one for the bastion behind it.
      await eventually(() => accepted() - before >= 2, 5_000);
      assert.equal(accepted() - before, 2, `sshd accepted ${accepted() - before} logins`);
    });

    it('has no other key: without the agent, authentication fails (exit 7)', async () => {
      const config = await testSshConfig(bastion);
      const result = await run(BIN, ['-F', config, '-L', `127.0.0.1:0:127.0.0.1:${vsftpd.port}`, 'ftp-bastion'], { env, cwd: dir, timeoutMs: RUN_TIMEOUT_MS });
      assertExit(result, 7);
      assert.match(result.stderr, /authentication to \S+ failed/);
    });

    it('is read the same way by OpenSSH (ssh -G, and a login through the jump host)', async () => {
      const config = await testSshConfig(bastion);
      const shown = await run('ssh', ['-G', '-F', config, 'ftp-bastion'], { env, timeoutMs: 15_000 });
      assertSucceeded(shown, 'ssh -G');
      for (const line of ['hostname 127.0.0.1', `port ${bastion.port}`, 'proxyjump edge', 'batchmode yes', 'identityagent SSH_AUTH_SOCK']) {
        assert.ok(shown.stdout.split('\n').includes(line), `ssh -G does not show "${line}"`);
      }
      const login = await run('ssh', ['-F', config, 'ftp-bastion', 'echo', 'through-the-jump-host'], { env: { ...env, SSH_AUTH_SOCK: agentSocket }, timeoutMs: 30_000 });
      assertSucceeded(login, 'ssh through the snippet');
      assert.equal(login.stdout, 'through-the-jump-host\n');
    });

    after(async () => {
      await agent?.stop();
      started.delete(agent);
      await bastion?.stop();
    });
  });

  describe('library.ts', () => {
    const libraryEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
      ...env,
      FTPFWD_SSH_HOST: sshd.host,
      FTPFWD_SSH_PORT: String(sshd.port),
      FTPFWD_SSH_USER: sshd.user,
      FTPFWD_SSH_KEY: sshd.identityFile,
      FTPFWD_KNOWN_HOSTS: sshd.knownHostsFile,
      FTP_HOST: '127.0.0.1',
      FTP_PORT: String(vsftpd.port),
      ...extra,
    });
    const runLibrary = (extra: Record<string, string>): Promise<RunResult> =>
      run('node', ['--import', 'tsx', join(EXAMPLES, 'library.ts')], { env: libraryEnv(extra), cwd: ROOT, timeoutMs: RUN_TIMEOUT_MS });

    it('downloads a file with basic-ftp through an embedded forwarder and prints its totals', async () => {
      const out = join(await freshDir('library'), 'download.bin');
      const result = await runLibrary({ REMOTE_FILE: 'download.bin', LOCAL_FILE: out });
      assertExit(result, 0);
      assert.equal(await sha256File(out), await sha256File(join(vsftpd.root, 'download.bin')));
      const summary = JSON.parse(result.stdout) as Record<string, unknown>;
      assert.deepEqual(
        [summary['direction'], summary['sessions'], summary['transfers'], summary['failedTransfers'], summary['bytesToClient'], summary['bytesToServer']],
        ['download', 1, 1, 0, 3 * 1024 * 1024, 0],
      );
    });

    it('uploads a file (DIRECTION=upload)', async () => {
      const source = join(await freshDir('library'), 'library-upload.bin');
      await writeRandomFile(source, 512 * 1024);
      const result = await runLibrary({ DIRECTION: 'upload', REMOTE_FILE: 'incoming/library-upload.bin', LOCAL_FILE: source });
      assertExit(result, 0);
      assert.equal(await sha256File(join(vsftpd.uploadDir, 'library-upload.bin')), await sha256File(source));
      const summary = JSON.parse(result.stdout) as Record<string, unknown>;
      assert.deepEqual([summary['transfers'], summary['bytesToServer']], [1, 512 * 1024]);
    });

    it("exits with ftpfwd's code (6) and one line when the host key is unknown", async () => {
      const knownHosts = join(await freshDir('library'), 'known_hosts');
      await writeFile(knownHosts, '');
      const result = await runLibrary({ FTPFWD_KNOWN_HOSTS: knownHosts, REMOTE_FILE: 'download.bin', LOCAL_FILE: join(dir, 'never') });
      assertExit(result, 6);
      assert.match(result.stderr, /^library: host key for \S+ is not known[^\n]*\n$/);
      assert.equal(result.stdout, '');
    });
  });

  // Last: it restarts the shared sshd.
  describe('ftpfwd.service', () => {
    let unitText: string;
    let unit: Map<string, Array<[string, string]>>;

    before(async () => {
      unitText = await readFile(join(EXAMPLES, 'ftpfwd.service'), 'utf8');
      unit = parseUnitFile(unitText);
    });

    it('parses as a unit file with the required sections and keys', () => {
      assert.deepEqual([...unit.keys()], ['Unit', 'Service', 'Install']);
      assert.equal(unitValues(unit, 'Unit', 'Description').length, 1);
      assert.ok(unitValues(unit, 'Unit', 'After').join(' ').split(/\s+/).includes('network-online.target'));
      assert.ok(unitValues(unit, 'Unit', 'Wants').join(' ').split(/\s+/).includes('network-online.target'));
      const [execStart, ...more] = unitValues(unit, 'Service', 'ExecStart');
      assert.ok(execStart !== undefined && more.length === 0, 'exactly one ExecStart');
      const words = execStart.split(/\s+/);
      assert.match(words[0]!, /^\/\S*\/ftpfwd$/, 'ExecStart needs an absolute path');
      assert.ok(words.includes('--exit-on-disconnect'));
      assert.ok(words.join(' ').includes('-o BatchMode=yes'));
      assert.ok(words.join(' ').includes('--log-format json'));
      assert.deepEqual(unitValues(unit, 'Service', 'Restart'), ['on-failure']);
      assert.equal(unitValues(unit, 'Service', 'RestartSec').length, 1);
      // Exit code 5 (SSH connection lost) must lead to a restart.
      assert.ok(!unitValues(unit, 'Service', 'RestartPreventExitStatus').join(' ').split(/\s+/).includes('5'));
      assert.deepEqual(unitValues(unit, 'Service', 'StandardError'), ['journal']);
      assert.deepEqual(unitValues(unit, 'Install', 'WantedBy'), ['multi-user.target']);
    });

    it('passes systemd-analyze verify', async (t) => {
      const which = await run('sh', ['-c', 'command -v systemd-analyze'], { timeoutMs: 5_000 });
      if (which.code !== 0) {
        t.skip('systemd-analyze is not installed');
        return;
      }
      // verify insists that ExecStart's program exists: point it at bin/ftpfwd.
      const copy = join(await freshDir('unit'), 'ftpfwd.service');
      await writeFile(copy, unitText.replace(/^ExecStart=\S+/m, `ExecStart=${BIN}`));
      const result = await run('systemd-analyze', ['verify', copy], { timeoutMs: 30_000 });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr.includes('ftpfwd.service'), false, `warnings about the unit:\n${result.stderr}`);
    });

    it("runs ExecStart as systemd would: serves, exits 5 when SSH drops (restarted), 0 on stop (not restarted)", async () => {
      const config = await testSshConfig(sshd, [`IdentityFile ${sshd.identityFile}`]);
      const execStart = unitValues(unit, 'Service', 'ExecStart')[0]!;
      const variables = { FTPFWD_LISTEN: `127.0.0.1:0:127.0.0.1:${vsftpd.port}`, FTPFWD_DESTINATION: 'ftp-bastion', FTPFWD_SSH_CONFIG: config };
      const [, ...args] = expandExecStart(execStart, variables);
      const start = async (): Promise<{ handle: ProcessHandle; port: number }> => {
        const handle = await startProcess(BIN, args, { env, cwd: dir });
        started.add(handle);
        await handle.waitForOutput(/^ftpfwd: listening on 127\.0\.0\.1:\d+ /m, 20_000);
        const port = Number(/^ftpfwd: listening on 127\.0\.0\.1:(\d+) /m.exec(handle.stdout())![1]);
        return { handle, port };
      };

      const first = await start();
      const out = join(await freshDir('service'), 'download.bin');
      const curl = await run('curl', ['-sS', '--fail', '--max-time', '20', `ftp://127.0.0.1:${first.port}/download.bin`, '-o', out], { timeoutMs: 30_000 });
      assert.equal(curl.code, 0, curl.stderr);
      assert.equal(await sha256File(out), await sha256File(join(vsftpd.root, 'download.bin')));
      await sshd.restart(200);
      const lost = await first.handle.waitExit(20_000);
      started.delete(first.handle);
      assert.deepEqual(lost, { code: 5, signal: null }, first.handle.stderr());
      assert.match(first.handle.stderr(), /"msg":"forwarder stopped"/, 'the log is not JSON on stderr');

      // What Restart=on-failure starts again; systemctl stop sends SIGTERM.
      const second = await start();
      assert.equal(await canConnect('127.0.0.1', second.port), true);
      process.kill(second.handle.pid, 'SIGTERM');
      assert.deepEqual(await second.handle.waitExit(15_000), { code: 0, signal: null });
      started.delete(second.handle);
    });
  });
});
