import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, runCli } from '../helpers/cli.js';
import { createBastionTopology, isRoot, type BastionTopology } from '../helpers/netns.js';
import { freePort } from '../helpers/ports.js';
import { assertSucceeded, run, type RunResult } from '../helpers/processes.js';
import { startScriptedFtpServer, SCRIPTED_VARIANTS, type ScriptedFtpServerInstance } from '../helpers/scriptedFtpServer.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

/** A check should take a second or two; this only bounds a hang. */
const RUN_TIMEOUT_MS = 30_000;

interface StepLine {
  title: string;
  status: string;
  detail: string;
  /** The hint line that follows the step, if any. */
  hint: string | undefined;
}

const STEP_LINE = /^ftpfwd: check: (.+?) \.\.\. (ok|skipped|warning|failed) \(\d+ ms\)(?:: (.*))?$/;
const HINT_LINE = /^ftpfwd: check: {3}hint: (.*)$/;
const SUMMARY_LINE = /^ftpfwd: check: (passed|passed with warnings|failed) \(.*\)(?:; exit code \d+)?$/;

/** The step lines of a check's stdout; every line must be a step, a hint or the closing summary. */
function stepLines(result: RunResult): StepLine[] {
  const lines = result.stdout.split('\n').filter((line) => line !== '');
  const steps: StepLine[] = [];
  for (const [index, line] of lines.entries()) {
    const step = STEP_LINE.exec(line);
    const hint = HINT_LINE.exec(line);
    if (step) steps.push({ title: step[1]!, status: step[2]!, detail: step[3] ?? '', hint: undefined });
    else if (hint && steps.length > 0) steps.at(-1)!.hint = hint[1]!;
    else assert.ok(index === lines.length - 1 && SUMMARY_LINE.test(line), `unexpected line ${JSON.stringify(line)} in:\n${result.stdout}`);
  }
  assert.match(lines.at(-1) ?? '', SUMMARY_LINE, `no summary line:\n${result.stdout}`);
  return steps;
}

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.timedOut, false, `ftpfwd --check did not exit within ${RUN_TIMEOUT_MS} ms`);
  assert.equal(result.code, code, `exit code ${String(result.code)}, expected ${code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
}

function step(steps: StepLine[], title: RegExp): StepLine {
  const found = steps.find((candidate) => title.test(candidate.title));
  assert.ok(found, `no step ${String(title)} among ${JSON.stringify(steps.map((s) => s.title))}`);
  return found;
}

describe('ftpfwd --check against a real sshd and vsftpd', { skip: isRoot() ? false : 'needs root: vsftpd runs its anonymous chroot' }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let sshd: SshdInstance;
  let noForwarding: SshdInstance;
  let permitOpen: SshdInstance;
  let vsftpd: VsftpdInstance;
  /** Answers PASV before a login, so the data channel itself can be checked. */
  let passiveOpen: ScriptedFtpServerInstance;
  /** Refuses PASV (502), answers EPSV. */
  let epsvOnly: ScriptedFtpServerInstance;
  /** On IPv6 loopback, where PASV cannot work (425) and EPSV must come first. */
  let ipv6: ScriptedFtpServerInstance;
  /** Its 227 names a port where nothing listens. */
  let deadDataPort: ScriptedFtpServerInstance;
  /** Accepts connections and never says a word. */
  let silent: Server;
  const silentSockets = new Set<Socket>();

  const sshArgs = (server: SshdInstance, knownHosts = server.knownHostsFile): string[] => [
    '-F', 'none',
    '-p', String(server.port),
    '-i', server.identityFile,
    '-o', `UserKnownHostsFile=${knownHosts}`,
  ];
  const check = (args: string[], server: SshdInstance = sshd): Promise<RunResult> =>
    runCli(['--check', ...args, ...sshArgs(server), `${server.user}@${server.host}`], { env, cwd: ROOT, timeoutMs: RUN_TIMEOUT_MS });

  before(async () => {
    dir = await makeTempDir('ftpfwd-check-');
    const home = join(dir, 'home');
    await mkdir(home);
    env = { ...process.env, HOME: home };
    delete env['SSH_AUTH_SOCK'];
    vsftpd = await startVsftpd({ root: join(dir, 'vsftpd') });
    const scripted = (variant: typeof SCRIPTED_VARIANTS.standard, name: string): Promise<ScriptedFtpServerInstance> =>
      startScriptedFtpServer({ root: join(dir, name), variant: { ...variant, passiveBeforeLogin: true } });
    passiveOpen = await scripted(SCRIPTED_VARIANTS.standard, 'open');
    epsvOnly = await scripted({ ...SCRIPTED_VARIANTS.standard, pasv: '502 PASV not implemented; use EPSV.' }, 'epsv');
    ipv6 = await startScriptedFtpServer({ root: join(dir, 'ipv6'), listenAddress: '::1', variant: { ...SCRIPTED_VARIANTS.standard, passiveBeforeLogin: true } });
    const closedPort = await freePort();
    deadDataPort = await scripted({ ...SCRIPTED_VARIANTS.standard, pasv: `227 Entering Passive Mode (127,0,0,1,${closedPort >> 8},${closedPort & 255})` }, 'dead');
    silent = createServer((socket) => {
      silentSockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => silentSockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    sshd = await startSshd();
    noForwarding = await startSshd({ extraConfig: ['AllowTcpForwarding no'] });
    // The control port of one server only: neither vsftpd nor any data port.
    permitOpen = await startSshd({ extraConfig: [`PermitOpen 127.0.0.1:${passiveOpen.port}`] });
  });

  after(async () => {
    for (const socket of silentSockets) socket.destroy();
    if (silent) await new Promise<void>((resolve) => silent.close(() => resolve()));
    for (const server of [passiveOpen, epsvOnly, ipv6, deadDataPort, vsftpd, sshd, noForwarding, permitOpen]) await server?.stop();
    if (dir) await removeDir(dir);
  });

  it('all good: every step that can be checked without a login is ok, exit 0; no listener, no background, no files', async () => {
    // The listening address is taken: a normal run would exit 9. The
    // check opens no listener, and -f and the pid file are ignored.
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const takenPort = (taken.address() as { port: number }).port;
    const pidFile = join(dir, 'check.pid');
    try {
      const result = await check(['-L', `127.0.0.1:${takenPort}:127.0.0.1:${vsftpd.port}`, '-f', '--pid-file', pidFile]);
      assertExit(result, 0);
      const steps = stepLines(result);
      assert.deepEqual(
        steps.map((s) => [s.title, s.status]),
        [
          [`SSH connection to ${sshd.user}@127.0.0.1:${sshd.port}`, 'ok'],
          [`FTP control channel to 127.0.0.1:${vsftpd.port}`, 'ok'],
          [`FTP greeting from 127.0.0.1:${vsftpd.port}`, 'ok'],
          [`passive data channel for 127.0.0.1:${vsftpd.port}`, 'skipped'],
          ['remote forward on 127.0.0.1 for active mode', 'ok'],
        ],
      );
      assert.match(step(steps, /greeting/).detail, /^220 \(vsFTPd [\d.]+\)$/);
      // vsftpd answers everything but a login with 530 before one.
      assert.equal(step(steps, /passive/).detail, 'the server wants a login first (530 Please login with USER and PASS.)');
      assert.ok(steps.every((s) => s.hint === undefined));
      assert.match(result.stdout, /^ftpfwd: check: passed \(4 ok, 1 skipped\)$/m);
      assert.equal(result.stderr, '', 'a check that passes logs nothing');
      assert.equal(existsSync(pidFile), false);
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it('opens and closes a passive data channel when the server answers PASV before a login, falls back to EPSV, and asks EPSV first over IPv6', async () => {
    const result = await check(['-L', `0:127.0.0.1:${passiveOpen.port}`, '-L', `0:127.0.0.1:${epsvOnly.port}`, '-L', `0:[::1]:${ipv6.port}`, '--active-mode', 'convert']);
    assertExit(result, 0);
    const steps = stepLines(result);
    assert.match(step(steps, new RegExp(`passive data channel for \\[::1\\]:${ipv6.port}`)).detail, /^EPSV: 229, channel to \[::1\]:\d+ opened and closed$/);
    assert.doesNotMatch(ipv6.log(), /C: PASV/);
    assert.match(step(steps, new RegExp(`passive data channel for 127\\.0\\.0\\.1:${passiveOpen.port}`)).detail, /^PASV: 227, channel to 127\.0\.0\.1:\d+ opened and closed$/);
    assert.match(step(steps, new RegExp(`passive data channel for 127\\.0\\.0\\.1:${epsvOnly.port}`)).detail, /^EPSV: 229, channel to 127\.0\.0\.1:\d+ opened and closed$/);
    assert.match(epsvOnly.log(), /C: PASV\nS: 502 PASV not implemented; use EPSV\.\nC: EPSV\n/);
    assert.deepEqual(step(steps, /active mode/), { title: 'active mode (PORT/EPRT)', status: 'skipped', detail: 'converted to passive upstream, so no remote forward is needed', hint: undefined });
    // A polite end: QUIT, as a client would.
    assert.match(passiveOpen.log(), /C: QUIT\nS: 221 /);
  });

  it('connects through a jump host as a normal run does (ProxyJump from ssh_config)', async () => {
    const config = join(dir, 'ssh_config');
    const hostBlock = (name: string, server: SshdInstance, extra: string[] = []): string[] => [
      `Host ${name}`,
      '    HostName 127.0.0.1',
      `    Port ${server.port}`,
      `    User ${server.user}`,
      `    IdentityFile ${server.identityFile}`,
      `    UserKnownHostsFile ${server.knownHostsFile}`,
      ...extra,
    ];
    await writeFile(
      config,
      [...hostBlock('via-good', sshd, ['    ProxyJump good-jump']), ...hostBlock('good-jump', sshd), ...hostBlock('via-closed', sshd, ['    ProxyJump closed-jump']), ...hostBlock('closed-jump', noForwarding), ''].join('\n'),
    );
    const run = (target: string): Promise<RunResult> =>
      runCli(['--check', '-L', `0:127.0.0.1:${vsftpd.port}`, '--active-mode', 'convert', '-F', config, target], { env, cwd: ROOT, timeoutMs: RUN_TIMEOUT_MS });
    const good = await run('via-good');
    assertExit(good, 0);
    const [ssh] = stepLines(good);
    assert.deepEqual([ssh!.title, ssh!.status], [`SSH connection to ${sshd.user}@127.0.0.1:${sshd.port} via ${sshd.user}@127.0.0.1:${sshd.port}`, 'ok']);
    // A jump host that may not forward: the target is never reached.
    const closed = await run('via-closed');
    assertExit(closed, 5);
    const [failed, ...others] = stepLines(closed);
    assert.equal(others.length, 0);
    assert.match(failed!.detail, new RegExp(`^jump host could not reach 127\\.0\\.0\\.1:${sshd.port}: .*administratively prohibited`));
    assert.match(failed!.hint ?? '', /the jump host forbids forwarding to the next hop: its sshd_config needs AllowTcpForwarding/);
  });

  it('an unknown host key: exit 6, with how to check and record it', async () => {
    const knownHosts = join(dir, 'empty_known_hosts');
    await writeFile(knownHosts, '');
    const result = await runCli(['--check', '-L', `0:127.0.0.1:${vsftpd.port}`, ...sshArgs(sshd, knownHosts), `${sshd.user}@${sshd.host}`], { env, cwd: ROOT, timeoutMs: RUN_TIMEOUT_MS });
    assertExit(result, 6);
    const steps = stepLines(result);
    assert.equal(steps.length, 1, 'nothing else can be checked without SSH');
    const [ssh] = steps;
    assert.equal(ssh!.status, 'failed');
    assert.match(ssh!.detail, /host key for \[127\.0\.0\.1\]:\d+ is not known \(ssh-ed25519 SHA256:/);
    assert.match(ssh!.hint ?? '', /ssh-keygen -lf \/etc\/ssh\/ssh_host_ed25519_key\.pub.*-o StrictHostKeyChecking=accept-new/);
    assert.match(result.stdout, /^ftpfwd: check: failed \(1 failed\); exit code 6$/m);
  });

  it('authentication refused: exit 7, naming the methods tried, the agent and BatchMode', async () => {
    const stranger = join(dir, 'stranger_key');
    assertSucceeded(await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger], { timeoutMs: 15_000 }), 'ssh-keygen');
    const result = await runCli(
      ['--check', '-L', `0:127.0.0.1:${vsftpd.port}`, '-F', 'none', '-p', String(sshd.port), '-i', stranger, '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, '-o', 'BatchMode=yes', `${sshd.user}@${sshd.host}`],
      { env, cwd: ROOT, timeoutMs: RUN_TIMEOUT_MS },
    );
    assertExit(result, 7);
    const [ssh, ...others] = stepLines(result);
    assert.equal(others.length, 0);
    assert.match(ssh!.detail, /^authentication to \S+ failed \(tried: publickey\)$/);
    assert.match(ssh!.hint ?? '', /authorized_keys/);
    assert.match(ssh!.hint ?? '', /SSH_AUTH_SOCK is not set/);
    assert.match(ssh!.hint ?? '', /BatchMode=yes/);
  });

  it('an FTP port where nothing listens: exit 8, with where to look (the host and port as the bastion sees them)', async () => {
    const port = await freePort();
    const result = await check(['-L', `0:127.0.0.1:${port}`]);
    assertExit(result, 8);
    const steps = stepLines(result);
    const control = step(steps, /control channel/);
    assert.equal(control.status, 'failed');
    assert.equal(control.detail, `SSH server refused to connect to 127.0.0.1:${port}: connect failed: Connection refused`);
    assert.match(control.hint ?? '', /as the SSH server sees them/);
    assert.equal(steps.some((s) => /greeting|passive/.test(s.title)), false, 'nothing to greet without a control channel');
    // Independent of the forward: still checked.
    assert.equal(step(steps, /remote forward/).status, 'ok');
  });

  it('an FTP port that accepts and says nothing: exit 10 once ConnectTimeout has passed', async () => {
    const port = (silent.address() as { port: number }).port;
    const started = Date.now();
    const result = await check(['-L', `0:127.0.0.1:${port}`, '-o', 'ConnectTimeout=1', '--active-mode', 'convert']);
    assertExit(result, 10);
    const greeting = step(stepLines(result), /greeting/);
    assert.equal(greeting.status, 'failed');
    assert.equal(greeting.detail, `no FTP greeting from 127.0.0.1:${port} within 1000 ms`);
    assert.match(greeting.hint ?? '', /sent no FTP greeting/);
    assert.ok(Date.now() - started < 10_000, 'the wait is bounded by ConnectTimeout');
  });

  it('a passive port the bastion cannot reach: exit 8, naming the data port', async () => {
    const result = await check(['-L', `0:127.0.0.1:${deadDataPort.port}`, '--active-mode', 'convert']);
    assertExit(result, 8);
    const passive = step(stepLines(result), /passive/);
    assert.equal(passive.status, 'failed');
    assert.match(passive.detail, /^SSH server refused to connect to 127\.0\.0\.1:\d+: connect failed: Connection refused$/);
    assert.match(passive.hint ?? '', /reaches the FTP server's control port but not its passive port/);
  });

  it('AllowTcpForwarding no: exit 8 with the sshd_config fix; the active-mode probe is a warning under auto', async () => {
    const result = await check(['-L', `0:127.0.0.1:${vsftpd.port}`], noForwarding);
    assertExit(result, 8);
    const steps = stepLines(result);
    const control = step(steps, /control channel/);
    assert.equal(control.status, 'failed');
    assert.match(control.detail, /: administratively prohibited: open failed$/);
    assert.match(control.hint ?? '', /AllowTcpForwarding yes or local/);
    const active = step(steps, /remote forward/);
    assert.equal(active.status, 'warning');
    assert.match(active.detail, /PORT\/EPRT will be converted to passive upstream instead$/);
    assert.match(active.hint ?? '', /AllowTcpForwarding yes or remote/);
    assert.match(result.stdout, /^ftpfwd: check: failed \(1 ok, 1 warning, 1 failed\); exit code 8$/m);
  });

  it('PermitOpen without the FTP port, and without the passive ports: exit 8 with the PermitOpen fix for each', async () => {
    const result = await check(['-L', `0:127.0.0.1:${vsftpd.port}`, '-L', `0:127.0.0.1:${passiveOpen.port}`, '--active-mode', 'convert'], permitOpen);
    assertExit(result, 8);
    const steps = stepLines(result);
    const refused = step(steps, new RegExp(`control channel to 127\\.0\\.0\\.1:${vsftpd.port}$`));
    assert.equal(refused.status, 'failed');
    assert.match(refused.detail, /administratively prohibited/);
    assert.match(refused.hint ?? '', new RegExp(`PermitOpen \\(when set\\) must name 127\\.0\\.0\\.1:${vsftpd.port}`));
    assert.equal(step(steps, new RegExp(`control channel to 127\\.0\\.0\\.1:${passiveOpen.port}$`)).status, 'ok');
    const data = step(steps, /passive data channel/);
    assert.equal(data.status, 'failed');
    assert.match(data.detail, /administratively prohibited/);
    assert.match(data.hint ?? '', new RegExp(`PermitOpen 127\\.0\\.0\\.1:${passiveOpen.port} 127\\.0\\.0\\.1:\\*`));
  });
});

/**
 * Where the remote-forward probe really fails: the FTP server is on
 * another host than the bastion, and sshd there binds remote forwards to
 * loopback only (GatewayPorts no), so --active-address on the bastion's
 * FTP-side address cannot work.
 */
describe('ftpfwd --check in a bastion topology with GatewayPorts no', { skip: isRoot() ? false : 'needs root: creates network namespaces' }, () => {
  let dir: string;
  let net: BastionTopology;
  let sshd: SshdInstance;
  let vsftpd: VsftpdInstance;

  const check = (extra: string[]): Promise<RunResult> =>
    runCli(
      ['--check', '-L', `0:${net.ftpAddr}:21`, '-F', 'none', '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, '--active-address', net.bastionFtpSideAddr, ...extra, `${sshd.user}@${net.bastionClientSideAddr}`],
      { netns: net.client, env: { ...process.env, HOME: dir }, cwd: ROOT, timeoutMs: RUN_TIMEOUT_MS },
    );

  before(async () => {
    dir = await makeTempDir('ftpfwd-check-ns-');
    net = await createBastionTopology({ ipv6: false });
    sshd = await startSshd({ netns: net.bastion, listenAddress: net.bastionClientSideAddr, gatewayPorts: 'no' });
    vsftpd = await startVsftpd({ netns: net.ftp, listenAddress: net.ftpAddr, root: join(dir, 'root') });
  });

  after(async () => {
    await vsftpd?.stop();
    await sshd?.stop();
    await net?.destroy();
    if (dir) await removeDir(dir);
  });

  it('under --active-mode forward: exit 8, with GatewayPorts as the fix', async () => {
    const result = await check(['--active-mode', 'forward']);
    assertExit(result, 8);
    const steps = stepLines(result);
    assert.equal(step(steps, /greeting/).status, 'ok', 'the FTP server is reached as the bastion sees it');
    const active = step(steps, /remote forward/);
    assert.equal(active.title, `remote forward on ${net.bastionFtpSideAddr} for active mode`);
    assert.equal(active.status, 'failed');
    assert.match(active.detail, /^active mode through a remote forward cannot work: .*nothing listens there/);
    assert.match(active.hint ?? '', /set GatewayPorts clientspecified \(or yes\)/);
    assert.match(active.hint ?? '', /leave out --active-mode forward/);
  });

  it('under auto: a warning, exit 0', async () => {
    const result = await check([]);
    assertExit(result, 0);
    const active = step(stepLines(result), /remote forward/);
    assert.equal(active.status, 'warning');
    assert.match(active.detail, /GatewayPorts clientspecified or yes\); PORT\/EPRT will be converted to passive upstream instead$/);
    assert.match(active.hint ?? '', /set GatewayPorts clientspecified/);
    assert.match(result.stdout, /^ftpfwd: check: passed with warnings \(3 ok, 1 skipped, 1 warning\)$/m);
  });
});
