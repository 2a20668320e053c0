import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it, type TestContext } from 'node:test';
import {
  curlDownloadCommand,
  ftpUrl,
  lftpDownloadCommand,
  type ClientCommand,
  type ClientResult,
  type FtpTarget,
} from '../helpers/clients.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { createBastionTopology, isRoot, type BastionTopology } from '../helpers/netns.js';
import { childPids, descendantPids, run, startProcess, type ExitStatus, type ProcessHandle } from '../helpers/processes.js';
import { memoryProbeArgs } from '../helpers/memoryProbe.js';
import { eventually, isRunning } from '../helpers/procfs.js';
import { startScriptedFtpServer, type ScriptedFtpServerInstance } from '../helpers/scriptedFtpServer.js';
import { runSessionDriver } from '../helpers/sessionDriver.js';
import { heldSockets, tcpSockets } from '../helpers/sockets.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { delay } from '../helpers/time.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

/**
 * The bad day, in the topology ftpfwd exists for (client / bastion with
 * OpenSSH sshd / FTP host, in network namespaces): faults in the middle of
 * rate-limited downloads, a soak of sequential sessions, and a load of
 * sessions at once. ftpfwd runs as the real CLI in the client namespace, so
 * "it stays up" means the same process. Needs root.
 */

const CLI = fileURLToPath(new URL('../../bin/ftpfwd', import.meta.url));
const MiB = 1024 * 1024;
const LARGE = 64 * MiB;
/** A rate-limited 64 MiB download would take 16 s: every fault lands in the middle of one. */
const RATE_LIMIT = 4 * MiB;
/** The fault is injected once this much has arrived. */
const UNDER_WAY = 4 * MiB;
/** The scripted server's 421 comes after this much of a RETR. */
const ABORT_AFTER = 8 * MiB;
/** ftpfwd's keepalive: one a second, dead after two unanswered, so the window is about 3 s. */
const KEEPALIVE = ['-o', 'ServerAliveInterval=1', '-o', 'ServerAliveCountMax=2', '-o', 'ConnectTimeout=3'];
const LINK_DOWN_MS = 7_000;
const SSHD_DOWN_MS = 3_000;
/** Bounds: the client's error after the fault, the cleanup after that, and the next download. */
const ERROR_BOUND_MS = 15_000;
/** A client that resumes by itself (lftp) must have the whole file by then. */
const CLIENT_EXIT_BOUND_MS = 40_000;
const CLEANUP_BOUND_MS = 30_000;
const NEXT_DOWNLOAD_BOUND_MS = 40_000;
const CLIENT_TIMEOUT_MS = 90_000;
const SOAK_SESSIONS = Number(process.env['FTPFWD_SOAK_SESSIONS'] || 2_000);
/** About 75 ms a session were measured (two streams, each about 150 ms a session, most of it sshd's Nagle delays). */
const SOAK_BOUND_MS = SOAK_SESSIONS * 250 + 60_000;
const SOAK_SAMPLE_EVERY = Math.min(500, Math.max(1, Math.floor(SOAK_SESSIONS / 4)));
/** "After warm-up": session 1,000, or half way through a shorter run. */
const SOAK_CHECKPOINT = Math.min(1_000, Math.max(1, Math.floor(SOAK_SESSIONS / 2 / SOAK_SAMPLE_EVERY)) * SOAK_SAMPLE_EVERY);
const LOAD_SESSIONS = 500;
const LOAD_FILE = 64 * 1024;
/**
 * ftpfwd's peak RSS during the load: about 150 MiB measured; 0.7-1.1 GiB
 * while every data connection's peer check read /proc/net/tcp on its own.
 */
const LOAD_PEAK_RSS_LIMIT_KIB = 400 * 1024;
/**
 * Flat after warm-up, between session 1,000 and the end: descriptors equal
 * give or take a few (a transfer's socket may still be closing), the live
 * heap after a full collection within 1 MiB, RSS within 10 MiB. At its
 * plateau RSS moves by up to 7 MiB from one sample to the next, with no
 * trend over 10,000 sessions: malloc keeping what the peer check's
 * /proc/net/tcp reads used, which follow the namespace's socket count.
 */
const FD_TOLERANCE = 3;
const HEAP_TOLERANCE_KIB = 1024;
const RSS_TOLERANCE_KIB = 10 * 1024;
const STACK_FRAME = /^\s+at |\\n\s+at /m;

type ClientName = 'curl' | 'lftp';
/** A line of the client's trace saying the transfer broke (lftp may then reconnect and resume). */
const CLIENT_FAILURE: Record<ClientName, RegExp> = {
  curl: /^curl: \(\d+\)/m,
  lftp: /^(\*\*\*\* |<--- 4\d\d |---- Closing data socket)/m,
};
type FaultName = 'sshd-child-killed' | 'sshd-restarted' | 'ftp-session-killed' | 'client-killed' | 'link-cut' | 'server-421';

interface FaultFigures {
  fault: FaultName;
  client: ClientName;
  receivedBytes: number;
  /** From the fault to the client's error: its exit, or the first line of its trace saying the transfer broke. */
  errorMs: number;
  exit: string;
  /** From the client's exit until nothing of the session was left. */
  cleanupMs: number;
  /** How long the next download took, to its intact end (it may wait for ftpfwd to reconnect). */
  nextDownloadMs: number;
}

interface RunningFtpfwd {
  name: string;
  proc: ProcessHandle;
  ports: number[];
  logFile: string;
}

function describeExit(status: ExitStatus): string {
  return status.signal === null ? `exit ${String(status.code)}` : `signal ${status.signal}`;
}

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (info) => info.size,
    () => 0,
  );
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

function ms(figure: { p50: number; p99: number; max: number } | undefined): string {
  return figure ? `p50 ${figure.p50} ms, p99 ${figure.p99} ms, max ${figure.max} ms` : 'n/a';
}

function assertOk(result: ClientResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed (${result.timedOut ? 'timed out' : `exit ${String(result.code)}`}):\n${result.stderr.slice(-3000)}`);
}

describe('faults, soak and load through the bastion', { skip: isRoot() ? false : 'needs root: creates network namespaces' }, () => {
  let dir: string;
  let net: BastionTopology;
  let sshd: SshdInstance;
  let vsftpd: VsftpdInstance;
  let scripted: ScriptedFtpServerInstance;
  /**
   * -L to vsftpd and to the scripted server; --active-address, so PORT
   * goes through a remote forward on the bastion; short keepalives. It
   * meets every fault, then serves half of the soak.
   */
  let main: RunningFtpfwd;
  /** Defaults: PORT converted to passive upstream. */
  let converting: RunningFtpfwd;
  const running: RunningFtpfwd[] = [];
  let largeFile: string;
  /** Where the ftpfwd processes report their memory (memoryProbeArgs). */
  let probeDir: string;
  let largeSum: string;
  const figures: FaultFigures[] = [];
  const timings: string[] = [];

  const vsftpdTarget: FtpTarget = { host: '127.0.0.1', port: 2121 };
  const scriptedTarget: FtpTarget = { host: '127.0.0.1', port: 2122 };

  async function startFtpfwd(name: string, forwards: Array<[number, number]>, extra: string[]): Promise<RunningFtpfwd> {
    const logFile = join(dir, `${name}.log`);
    const args = [
      CLI,
      ...forwards.flatMap(([listen, ftpPort]) => ['-L', `127.0.0.1:${listen}:${net.ftpAddr}:${ftpPort}`]),
      '-i', sshd.identityFile,
      '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`,
      '-o', 'BatchMode=yes',
      '-p', String(sshd.port),
      '--log-format', 'json',
      '--log-file', logFile,
      ...extra,
      `${sshd.user}@${net.bastionClientSideAddr}`,
    ];
    // The probe lets the soak read memory after a full collection; nothing else changes.
    const proc = await startProcess('node', [...memoryProbeArgs(probeDir), ...args], { netns: net.client });
    const started: RunningFtpfwd = { name, proc, ports: forwards.map(([listen]) => listen), logFile };
    running.push(started);
    await proc.waitForOutput(/ftpfwd: listening on/, 20_000);
    return started;
  }

  function logOf(ftpfwd: RunningFtpfwd): string {
    let log = '';
    try {
      log = readFileSync(ftpfwd.logFile, 'utf8');
    } catch {
      // Not written yet.
    }
    return `${log}${ftpfwd.proc.stderr()}`;
  }

  /**
   * What is left of finished sessions, as `ss` sees it in the three
   * namespaces: in the client's, ftpfwd may hold only its listeners and its
   * SSH connection; on the bastion, sshd only its listener and the SSH
   * connections of live ftpfwd processes (no channel to the FTP host, no
   * remote-forward listener, no stale connection); on the FTP host, the
   * servers only their listeners. Sockets no process holds (TIME-WAIT) are
   * the kernel's to finish.
   */
  async function leftovers(): Promise<string[]> {
    const live = running.filter((ftpfwd) => ftpfwd.proc.exitStatus() === undefined);
    const pids = new Set(live.map((ftpfwd) => ftpfwd.proc.pid));
    const listenPorts = new Set(live.flatMap((ftpfwd) => ftpfwd.ports));
    const problems: string[] = [];
    const sshPorts = new Set<number>();
    for (const socket of heldSockets(await tcpSockets(net.client))) {
      const ours = socket.pids.some((pid) => pids.has(pid));
      if (ours && socket.state === 'LISTEN' && listenPorts.has(socket.localPort)) continue;
      if (ours && socket.state === 'ESTAB' && socket.peerPort === sshd.port) {
        sshPorts.add(socket.localPort);
        continue;
      }
      problems.push(`client namespace: ${socket.line}`);
    }
    for (const socket of heldSockets(await tcpSockets(net.bastion))) {
      if (socket.state === 'LISTEN' && socket.localPort === sshd.port) continue;
      if (socket.state === 'ESTAB' && socket.localPort === sshd.port && sshPorts.has(socket.peerPort)) continue;
      problems.push(`bastion: ${socket.line}`);
    }
    for (const socket of heldSockets(await tcpSockets(net.ftp))) {
      if (socket.state !== 'LISTEN') problems.push(`FTP host: ${socket.line}`);
    }
    return problems;
  }

  async function waitForNoLeftovers(what: string): Promise<number> {
    const startedAt = Date.now();
    let last: string[] = [];
    const clean = await eventually(async () => {
      last = await leftovers();
      return last.length === 0;
    }, CLEANUP_BOUND_MS, 200);
    assert.ok(clean, `${what}: still left after ${CLEANUP_BOUND_MS} ms:\n${last.join('\n')}`);
    return Date.now() - startedAt;
  }

  function assertUp(ftpfwd: RunningFtpfwd): void {
    const status = ftpfwd.proc.exitStatus();
    assert.equal(status, undefined, `ftpfwd ${ftpfwd.name} exited (${status ? describeExit(status) : ''}):\n${logOf(ftpfwd).slice(-3000)}`);
    assert.ok(isRunning(ftpfwd.proc.pid), `ftpfwd ${ftpfwd.name} (pid ${ftpfwd.proc.pid}) is gone`);
  }

  function downloadCommand(client: ClientName, target: FtpTarget, out: string, limitRate?: number): ClientCommand {
    // curl in passive mode, lftp in active mode through a remote forward: both paths meet every fault.
    return client === 'curl'
      ? curlDownloadCommand(ftpUrl(target, '/large.bin'), out, 'epsv', { timeoutMs: CLIENT_TIMEOUT_MS, ...(limitRate ? { limitRate } : {}) })
      : lftpDownloadCommand(target, '/large.bin', out, 'port', { timeoutMs: CLIENT_TIMEOUT_MS, ...(limitRate ? { limitRate } : {}) });
  }

  /** The sshd process serving `ftpfwd`'s SSH connection: the listener's child that holds the connection's socket. */
  async function sshdConnectionProcess(ftpfwd: RunningFtpfwd): Promise<number> {
    const clientSide = heldSockets(await tcpSockets(net.client)).filter(
      (socket) => socket.state === 'ESTAB' && socket.peerPort === sshd.port && socket.pids.includes(ftpfwd.proc.pid),
    );
    assert.equal(clientSide.length, 1, `ftpfwd should hold one SSH connection: ${clientSide.map((socket) => socket.line).join('\n')}`);
    const localPort = clientSide[0]!.localPort;
    const children = new Set(childPids(sshd.pid()));
    const bastionSide = heldSockets(await tcpSockets(net.bastion)).find((socket) => socket.state === 'ESTAB' && socket.peerPort === localPort);
    const pid = bastionSide?.pids.find((candidate) => children.has(candidate));
    assert.ok(pid !== undefined, `no child of sshd (${sshd.pid()}) holds the connection from port ${localPort}: ${bastionSide?.line ?? 'no socket'}`);
    return pid;
  }

  /**
   * vsftpd's processes for the one session it serves: the per-session child
   * and the unprivileged process it forked, which does the transfer (it
   * carries on alone when only its parent dies).
   */
  function ftpSessionProcesses(): number[] {
    const children = childPids(vsftpd.pid);
    assert.equal(children.length, 1, `vsftpd should serve exactly one session, has ${children.length}`);
    return [children[0]!, ...descendantPids(children[0]!)];
  }

  async function setLink(state: 'up' | 'down'): Promise<void> {
    const result = await run('ip', ['-n', net.bastion, 'link', 'set', 'to-client', state], { timeoutMs: 10_000 });
    assert.equal(result.code, 0, `ip link set to-client ${state}: ${result.stderr}`);
  }

  /** Injects the fault; resolves once it is over (a restarted sshd listening, a link back up). */
  async function inject(fault: FaultName, client: ProcessHandle): Promise<void> {
    switch (fault) {
      case 'sshd-child-killed':
        process.kill(await sshdConnectionProcess(main), 'SIGKILL');
        return;
      case 'sshd-restarted':
        await sshd.restart(SSHD_DOWN_MS);
        return;
      case 'ftp-session-killed':
        for (const pid of ftpSessionProcesses()) process.kill(pid, 'SIGKILL');
        return;
      case 'client-killed':
        process.kill(client.pid, 'SIGKILL');
        return;
      case 'link-cut':
        await setLink('down');
        try {
          await delay(LINK_DOWN_MS);
        } finally {
          await setLink('up');
        }
        return;
      case 'server-421':
        throw new Error('the scripted server sends its 421 by itself');
    }
  }

  /** How many 421 replies the scripted server has sent. */
  function sent421(): number {
    return scripted.log().split('\nS: 421 ').length - 1;
  }

  async function runFault(t: TestContext, fault: FaultName, client: ClientName): Promise<void> {
    const out = join(dir, `${fault}-${client}.out`);
    await rm(out, { force: true });
    const target = fault === 'server-421' ? scriptedTarget : vsftpdTarget;
    const { cmd, args } = downloadCommand(client, target, out, RATE_LIMIT);
    const before421 = sent421();
    const proc = await startProcess(cmd, args, { netns: net.client });
    let injected: Promise<void> | undefined;
    try {
      let faultAt: number;
      if (fault === 'server-421') {
        assert.ok(await eventually(() => sent421() > before421, 30_000, 20), 'the scripted server sent no 421');
        faultAt = Date.now();
      } else {
        const underWay = await eventually(async () => (await sizeOf(out)) >= UNDER_WAY || proc.exitStatus() !== undefined, 20_000, 50);
        assert.ok(underWay && proc.exitStatus() === undefined, `the download did not get under way (${describeExit(proc.exitStatus() ?? { code: null, signal: null })}):\n${proc.stderr().slice(-2000)}`);
        faultAt = Date.now();
        injected = inject(fault, proc);
      }
      // The client's error: its exit, or the first line of its trace that says the transfer broke.
      let erroredAt: number | undefined;
      const watch = setInterval(() => {
        if (erroredAt === undefined && CLIENT_FAILURE[client].test(proc.stderr())) erroredAt = Date.now();
      }, 20);
      const status = await proc.waitExit(CLIENT_EXIT_BOUND_MS).catch((error: unknown) => {
        throw new Error(`${client} did not finish within ${CLIENT_EXIT_BOUND_MS} ms of ${fault}: ${error instanceof Error ? error.message : String(error)}\n--- ${client} ---\n${proc.stderr().slice(-3000)}\n--- ftpfwd ---\n${logOf(main).slice(-4000)}`);
      }).finally(() => clearInterval(watch));
      const errorMs = Math.max(0, (erroredAt ?? Date.now()) - faultAt);
      await injected;
      const received = await sizeOf(out);
      const trace = proc.stderr();
      let outcome = describeExit(status);
      if (fault === 'client-killed') {
        assert.equal(status.signal, 'SIGKILL');
      } else if (status.code === 0) {
        // lftp reconnects and resumes (REST) after a control connection
        // that closed without a reply: fine, if it then has the whole file.
        assert.match(trace, /^---> REST [1-9]\d*$/m, `${client} exited 0 after ${fault} without resuming, with ${received} of ${LARGE} bytes:\n${trace.slice(-3000)}`);
        assert.equal(received, LARGE, `${client} exited 0 after ${fault} with ${received} of ${LARGE} bytes`);
        assert.equal(await sha256File(out), largeSum, `${client} resumed after ${fault} into a corrupt file`);
        outcome = `resumed, ${outcome}`;
      } else {
        assert.ok(!status.signal, `${client} died of ${String(status.signal)}`);
        // What did arrive is the file's beginning, unaltered.
        assert.ok(received < LARGE, `${client} failed (${outcome}) after receiving all ${LARGE} bytes`);
        assert.equal(await sha256File(out), await sha256File(largeFile, received), `the ${received} bytes received are not the file's first bytes`);
      }
      if (fault !== 'client-killed') assert.ok(errorMs <= ERROR_BOUND_MS, `${client} noticed ${fault} only after ${errorMs} ms:\n${trace.slice(-2000)}`);
      if (fault === 'server-421') {
        if (client === 'curl') {
          // curl reads the data connection to its end: every byte the server sent before its 421 reached it.
          assert.equal(received, ABORT_AFTER, `${client} received ${received} bytes, the server sent ${ABORT_AFTER}`);
        } else {
          // lftp drops the data connection as soon as the 421 arrives.
          assert.match(trace, /^<--- 421 /m, `the 421 did not reach ${client}`);
        }
      }
      const cleanupMs = await waitForNoLeftovers(`${fault} (${client})`);
      assertUp(main);
      const next = join(dir, `${fault}-${client}.next`);
      const nextStart = Date.now();
      const { cmd: nextCmd, args: nextArgs } = downloadCommand(client, vsftpdTarget, next);
      const nextResult = await run(nextCmd, nextArgs, { netns: net.client, timeoutMs: NEXT_DOWNLOAD_BOUND_MS });
      assertOk(nextResult, `the download after ${fault}`);
      assert.equal(await sha256File(next), largeSum, `the download after ${fault} is not intact`);
      const nextDownloadMs = Date.now() - nextStart;
      await rm(next, { force: true });
      assertUp(main);
      const entry: FaultFigures = { fault, client, receivedBytes: received, errorMs, exit: outcome, cleanupMs, nextDownloadMs };
      figures.push(entry);
      t.diagnostic(`${fault} / ${client}: ${outcome}, error after ${errorMs} ms with ${(received / MiB).toFixed(1)} MiB; clean after ${cleanupMs} ms more; next 64 MiB download intact in ${nextDownloadMs} ms`);
    } finally {
      if (proc.exitStatus() === undefined) await proc.stop(1_000);
      // A failed check must not leave the link down or sshd stopped for the next test.
      await injected?.catch(() => undefined);
      await rm(out, { force: true });
    }
  }

  before(async () => {
    const startedAt = Date.now();
    dir = await makeTempDir('ftpfwd-faults-');
    const root = join(dir, 'root');
    await mkdir(root);
    probeDir = join(dir, 'memory');
    await mkdir(probeDir);
    largeFile = join(dir, 'large.bin');
    await writeRandomFile(largeFile, LARGE);
    largeSum = await sha256File(largeFile);
    await copyFile(largeFile, join(root, 'large.bin'));
    await writeRandomFile(join(root, 'small.bin'), 1024);
    await writeRandomFile(join(root, 'load.bin'), LOAD_FILE);
    net = await createBastionTopology({ ipv6: false });
    sshd = await startSshd({ netns: net.bastion, listenAddress: net.bastionClientSideAddr, gatewayPorts: 'clientspecified' });
    vsftpd = await startVsftpd({ netns: net.ftp, listenAddress: net.ftpAddr, root, maxSessions: LOAD_SESSIONS + 100 });
    scripted = await startScriptedFtpServer({ root, netns: net.ftp, listenAddress: net.ftpAddr, port: 2021, abortRetrieveAfterBytes: ABORT_AFTER });
    main = await startFtpfwd('main', [[vsftpdTarget.port, 21], [scriptedTarget.port, scripted.port]], ['--active-address', net.bastionFtpSideAddr, ...KEEPALIVE]);
    timings.push(`set-up ${Date.now() - startedAt} ms`);
  }, { timeout: 120_000 });

  after(async () => {
    for (const ftpfwd of running) await ftpfwd.proc.stop();
    await scripted?.stop();
    await vsftpd?.stop();
    await sshd?.stop();
    await net?.destroy();
    if (dir) await removeDir(dir);
  });

  it('starts clean: downloads are intact, the leftover check sees a session under way, and nothing is left after one', async () => {
    const out = join(dir, 'first.out');
    for (const client of ['curl', 'lftp'] as const) {
      const { cmd, args } = downloadCommand(client, vsftpdTarget, out);
      assertOk(await run(cmd, args, { netns: net.client, timeoutMs: CLIENT_TIMEOUT_MS }), `${client} download`);
      assert.equal(await sha256File(out), largeSum);
    }
    await rm(out);
    await waitForNoLeftovers('finished downloads');
    // The check can fail: while a download runs, each namespace holds some of it.
    const partial = join(dir, 'partial.out');
    const { cmd, args } = downloadCommand('lftp', vsftpdTarget, partial, RATE_LIMIT);
    const proc = await startProcess(cmd, args, { netns: net.client });
    try {
      assert.ok(await eventually(async () => (await sizeOf(partial)) >= UNDER_WAY, 20_000, 50), 'the download did not get under way');
      assert.equal(proc.exitStatus(), undefined, 'the download ended early');
      const seen = await leftovers();
      for (const where of ['client namespace', 'bastion', 'FTP host']) {
        assert.ok(seen.some((line) => line.startsWith(`${where}:`)), `nothing of a running download in the ${where}:\n${seen.join('\n')}`);
      }
    } finally {
      await proc.stop(1_000);
      await rm(partial, { force: true });
    }
    await waitForNoLeftovers('a stopped download');
  });

  const faults: FaultName[] = ['sshd-child-killed', 'sshd-restarted', 'ftp-session-killed', 'client-killed', 'link-cut', 'server-421'];
  for (const fault of faults) {
    for (const client of ['curl', 'lftp'] as const) {
      it(`${fault} during a rate-limited 64 MiB download with ${client}: an error in bounded time, nothing left, the next download intact`, { timeout: 120_000 }, async (t) => {
        const startedAt = Date.now();
        await runFault(t, fault, client);
        timings.push(`${fault}/${client} ${Date.now() - startedAt} ms`);
      });
    }
  }

  it(`soak: ${SOAK_SESSIONS} sequential sessions (login, 1 KiB download, QUIT), passive and active (converted and remote forward): descriptors, RSS and the bastion's listening sockets stay flat`, { timeout: SOAK_BOUND_MS + 60_000 }, async (t) => {
    const startedAt = Date.now();
    converting = await startFtpfwd('converting', [[2131, 21]], []);
    const { report, samples } = await runSessionDriver(
      {
        kind: 'soak',
        sessions: SOAK_SESSIONS,
        sampleEvery: SOAK_SAMPLE_EVERY,
        localFile: join(dir, 'root', 'small.bin'),
        remotePath: '/small.bin',
        timeoutMs: 15_000,
        // One stream per ftpfwd process: each serves its sessions one after another.
        streams: [
          [
            { host: '127.0.0.1', port: 2131, mode: 'pasv' },
            { host: '127.0.0.1', port: 2131, mode: 'port' },
          ],
          [
            { host: '127.0.0.1', port: vsftpdTarget.port, mode: 'epsv' },
            { host: '127.0.0.1', port: vsftpdTarget.port, mode: 'port' },
          ],
        ],
        pids: [converting.proc.pid, main.proc.pid],
        memoryProbeDir: probeDir,
        bastionNetns: net.bastion,
        maxFailures: 10,
      },
      net.client,
      SOAK_BOUND_MS,
    );
    const names = new Map([[converting.proc.pid, 'converting'], [main.proc.pid, 'forwarding']]);
    for (const sample of samples) {
      t.diagnostic(`after session ${sample.session} (${(sample.elapsedMs / 1000).toFixed(1)} s): bastion listening sockets: ${sample.bastionListening}`);
      for (const entry of sample.processes) {
        t.diagnostic(
          `  ${(names.get(entry.pid) ?? String(entry.pid)).padEnd(14)} ${entry.fds} fds, RSS ${mib(entry.rssKiB)} MiB (V8 heap ${mib(entry.heapTotalKiB)} MiB, ${mib(entry.heapUsedKiB)} MiB of it live; external ${mib(entry.externalKiB)} MiB)`,
        );
      }
    }
    t.diagnostic(`${report.ok}/${report.sessions} sessions in ${(report.durationMs / 1000).toFixed(1)} s: ${ms(report.sessionMs)}`);
    for (const [target, figure] of Object.entries(report.byTarget ?? {})) t.diagnostic(`  listener ${target}: ${ms(figure)}`);
    assert.deepEqual(report.failures, [], `${report.failed} sessions failed`);
    assert.equal(report.ok, SOAK_SESSIONS);
    const checkpoint = samples.find((sample) => sample.session === SOAK_CHECKPOINT);
    const last = samples.at(-1);
    assert.ok(checkpoint !== undefined && last !== undefined && last.session === SOAK_SESSIONS, 'samples missing');
    for (const [index, early] of checkpoint.processes.entries()) {
      const late = last.processes[index]!;
      const name = names.get(early.pid) ?? String(early.pid);
      assert.ok(Math.abs(late.fds - early.fds) <= FD_TOLERANCE, `${name}: ${early.fds} descriptors at session ${SOAK_CHECKPOINT}, ${late.fds} at ${SOAK_SESSIONS}`);
      const between = `between session ${SOAK_CHECKPOINT} and ${SOAK_SESSIONS}`;
      // JavaScript objects still alive after a full collection: what a leak in ftpfwd's own code would grow.
      assert.ok(late.heapUsedKiB - early.heapUsedKiB <= HEAP_TOLERANCE_KIB, `${name}: live heap grew ${between} from ${early.heapUsedKiB} to ${late.heapUsedKiB} KiB`);
      assert.ok(late.rssKiB - early.rssKiB <= RSS_TOLERANCE_KIB, `${name}: RSS grew ${between} from ${early.rssKiB} to ${late.rssKiB} KiB`);
    }
    assert.equal(last.bastionListening, checkpoint.bastionListening, "the bastion's listening sockets changed");
    await waitForNoLeftovers('the soak');
    assertUp(main);
    assertUp(converting);
    timings.push(`soak ${Date.now() - startedAt} ms`);
  });

  it(`load: ${LOAD_SESSIONS} sessions logged in at once over one SSH connection, each downloading and listing: all intact, no 421`, { timeout: 300_000 }, async (t) => {
    const startedAt = Date.now();
    const loaded = await startFtpfwd('load', [[2141, 21]], ['--max-sessions', String(LOAD_SESSIONS + 100)]);
    const { report } = await runSessionDriver(
      {
        kind: 'load',
        sessions: LOAD_SESSIONS,
        host: '127.0.0.1',
        port: 2141,
        modes: ['pasv', 'epsv', 'port'],
        loginConcurrency: 25,
        localFile: join(dir, 'root', 'load.bin'),
        remotePath: '/load.bin',
        timeoutMs: 60_000,
        pid: loaded.proc.pid,
      },
      net.client,
      240_000,
    );
    t.diagnostic(`${report.ok}/${report.sessions} sessions intact in ${(report.durationMs / 1000).toFixed(1)} s; session (connect to 221): ${ms(report.sessionMs)}`);
    t.diagnostic(`login: ${ms(report.loginMs)}; download + list + QUIT with all logged in: ${ms(report.workMs)}`);
    t.diagnostic(`ftpfwd peak RSS ${mib(report.peakRssKiB ?? 0)} MiB (VmHWM ${mib(report.hwmKiB ?? 0)} MiB)`);
    assert.deepEqual(report.failures, [], `${report.failed} sessions failed, ${report.with421} with a 421`);
    assert.equal(report.ok, LOAD_SESSIONS);
    assert.equal(report.with421, 0);
    assert.ok((report.peakRssKiB ?? 0) <= LOAD_PEAK_RSS_LIMIT_KIB, `ftpfwd's RSS reached ${mib(report.peakRssKiB ?? 0)} MiB`);
    await waitForNoLeftovers('the load');
    assertUp(loaded);
    await loaded.proc.stop();
    timings.push(`load ${Date.now() - startedAt} ms`);
  });

  it('ftpfwd stayed up through all of it, stops cleanly, and logged no stack trace', async (t) => {
    assertUp(main);
    for (const ftpfwd of running) {
      const status = await ftpfwd.proc.stop();
      assert.equal(status.code, 0, `ftpfwd ${ftpfwd.name} stopped with ${describeExit(status)}`);
      const log = logOf(ftpfwd);
      assert.ok(log.length > 0, `no log from ${ftpfwd.name}`);
      assert.doesNotMatch(log, STACK_FRAME, `${ftpfwd.name} logged a stack trace`);
      assert.doesNotMatch(log, /internal error/, `${ftpfwd.name} hit an internal error`);
    }
    for (const entry of figures) {
      t.diagnostic(`${entry.fault.padEnd(19)} ${entry.client.padEnd(5)} ${entry.exit.padEnd(14)} error after ${String(entry.errorMs).padStart(5)} ms, ${(entry.receivedBytes / MiB).toFixed(1).padStart(5)} MiB received, clean ${String(entry.cleanupMs).padStart(5)} ms later, next download ${String(entry.nextDownloadMs).padStart(5)} ms`);
    }
    t.diagnostic(`timings: ${timings.join('; ')}`);
  });
});
