/**
 * `npm run bench`: ftpfwd against OpenSSH's own way of carrying FTP
 * (`ssh -D` with curl's SOCKS5 support), side by side on loopback, through one
 * private sshd to one private vsftpd.
 *
 * Contenders, interleaved within every round (the order rotates per round):
 *   direct       curl straight to vsftpd, no SSH: the ceiling, for reference
 *   ftpfwd       `node bin/ftpfwd -L ... -q`, a child process
 *   ssh-default  `ssh -N -D` with OpenSSH's default cipher
 *   ssh-aes-gcm  `ssh -N -D -c aes128-gcm@openssh.com`
 *
 * Sections: one large file down and up (curl), many small files in one
 * session (a minimal FTP client in this file, see below), many concurrent
 * sessions (curl), a slow reader on either side (the large file at a limited
 * rate, the forwarder's RSS sampled meanwhile), and the forwarders' peak RSS.
 * Every transfer is checked by SHA-256; any wrong or failed transfer makes the
 * run exit 1.
 *
 * The slow reader shows whether backpressure holds: when the side that reads
 * is slower than the side that sends, a forwarder must stop reading from the
 * fast side rather than buffer the difference. Downloads are read slowly by
 * curl (--limit-rate); uploads go to a minimal FTP server in this file that
 * reads its data connections at the same rate (vsftpd stays fast, a slow
 * curl upload would only slow the sending side). Each of these transfers gets
 * a new forwarder process, so RSS growth is not hidden in memory that earlier
 * transfers freed.
 *
 * curl 7.88 sometimes sits idle for one second between a 229 reply and
 * connecting the data connection (seen with no SSH at all, more often the
 * faster the reply). For one large transfer that is noise; for a session of
 * many small files it is most of the time measured. So the small files go
 * through a minimal FTP client (EPSV, RETR/STOR, SOCKS5 for ssh -D) with no
 * such wait, and a curl measurement whose set-up took longer than
 * STALL_SECONDS is run again (at most MAX_ATTEMPTS times, counted in the report).
 *
 * MB = 10^6 bytes, MiB/GiB = 2^20/2^30 bytes. CPU is user+system time of the
 * forwarding process (ftpfwd's node process, or the ssh client) read from
 * /proc/<pid>/stat around each measurement; sshd's CPU is that of every
 * process under the sshd daemon over the same interval.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { readdirSync, readFileSync, statfsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as connectTcp, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { cpus, freemem, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { freePort } from '../helpers/ports.js';
import { run, startProcess, type ProcessHandle, type RunResult } from '../helpers/processes.js';
import { sshClientArgs, startSshd, type SshdInstance } from '../helpers/sshd.js';
import { waitForTcp } from '../helpers/tcp.js';
import { removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

// ---------------------------------------------------------------- settings

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const MB = 1_000_000;
const AES_GCM = 'aes128-gcm@openssh.com';
const FTPFWD_BIN = fileURLToPath(new URL('../../bin/ftpfwd', import.meta.url));
/** The whole run stops starting new rounds after this. */
const RUN_BUDGET_MS = 30 * 60_000;
/** Per transfer: a floor plus the time the bytes take at this (very low) rate. */
const TIMEOUT_FLOOR_MS = 60_000;
const SLOWEST_RATE_BYTES_PER_MS = 5 * MB / 1000;
const START_TIMEOUT_MS = 20_000;
/** After this many failed transfers the run gives up early. */
const MAX_FAILURES = 10;
/** curl's set-up (connect to the start of the transfer) longer than this is its one-second idle wait. */
const STALL_SECONDS = 0.9;
const MAX_ATTEMPTS = 3;
/** Every wait of the small-file client (and of the slow FTP server's control connections). */
const CLIENT_TIMEOUT_MS = 15_000;
/** How often the slow-reader section reads the forwarder's RSS. */
const RSS_SAMPLE_MS = 150;

interface Config {
  quick: boolean;
  sizeMiB: number;
  rounds: number;
  files: number;
  fileKiB: number;
  sessions: number;
  sessionMiB: number;
  slowRateMiB: number;
  jsonPath: string | undefined;
  tmpBase: string | undefined;
}

const USAGE = `usage: npm run bench -- [options]
  --quick               smoke run: 64 MiB, 1 round, 30 small files, 8 sessions of 8 MiB
  --size <MiB>          large file size (default 512)
  --rounds <n>          rounds; medians are reported (default 3)
  --files <n>           small files per session (default 100)
  --file-size <KiB>     small file size (default 4)
  --sessions <n>        concurrent sessions (default 16)
  --session-size <MiB>  file size per concurrent session (default 16)
  --slow-rate <MiB/s>   read rate of the slow-reader section, which moves the large file (default 50)
  --json <path>         also write the results as JSON
  --tmp <dir>           where to put the test files (default /dev/shm when it has room, else the OS temp dir)`;

function intOption(values: Record<string, string | boolean | undefined>, name: string, fallback: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, not ${String(raw)}`);
  }
  return value;
}

class UsageError extends Error {}

function parseConfig(argv: string[]): Config | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean' },
      size: { type: 'string' },
      rounds: { type: 'string' },
      files: { type: 'string' },
      'file-size': { type: 'string' },
      sessions: { type: 'string' },
      'session-size': { type: 'string' },
      'slow-rate': { type: 'string' },
      json: { type: 'string' },
      tmp: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  const quick = values.quick ?? false;
  return {
    quick,
    sizeMiB: intOption(values, 'size', quick ? 64 : 512, 1, 16 * 1024),
    rounds: intOption(values, 'rounds', quick ? 1 : 3, 1, 20),
    // Through sshd each small download has cost ~75 ms here (delayed ACKs), so
    // 100 files x 3 rounds x 3 SSH paths is already about a minute and a half.
    files: intOption(values, 'files', quick ? 30 : 100, 1, 2000),
    fileKiB: intOption(values, 'file-size', 4, 1, 64 * 1024),
    sessions: intOption(values, 'sessions', quick ? 8 : 16, 1, 64),
    sessionMiB: intOption(values, 'session-size', quick ? 8 : 16, 1, 1024),
    // 512 MiB at 50 MiB/s is ~10 s per transfer: long enough for a forwarder
    // that buffers to show it, short enough for six of them in a default run
    // of about four minutes.
    slowRateMiB: intOption(values, 'slow-rate', 50, 1, 10_000),
    jsonPath: values.json,
    tmpBase: values.tmp,
  };
}

// ---------------------------------------------------------------- /proc

let clockTicks = 100;

/** Fields of /proc/<pid>/stat after the command name, which may contain anything. */
function statFields(pid: number): string[] | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** user+system CPU seconds of one process (all its threads). Field 14 and 15 of stat, i.e. index 11 and 12 here. */
function cpuSeconds(pid: number): number | null {
  const fields = statFields(pid);
  if (fields === null) return null;
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** user+system CPU seconds summed over every descendant of `rootPid` (sshd's per-connection processes). */
function descendantsCpuSeconds(rootPid: number): number | null {
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const fields = statFields(pid);
    if (fields === null) continue;
    const ppid = Number(fields[1]);
    ticks.set(pid, Number(fields[11]) + Number(fields[12]));
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  let total = 0;
  const queue = [...(children.get(rootPid) ?? [])];
  const seen = new Set<number>();
  for (let pid = queue.shift(); pid !== undefined && seen.size < entries.length; pid = queue.shift()) {
    if (seen.has(pid)) continue;
    seen.add(pid);
    total += ticks.get(pid) ?? 0;
    queue.push(...(children.get(pid) ?? []));
  }
  return total / clockTicks;
}

/** A `Vm...` line of /proc/<pid>/status, in KiB. */
function memoryKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Runs `work` while reading the VmRSS of `pid` every RSS_SAMPLE_MS, at most
 * for `limitMs` (the transfer's own timeout; `work` must end by then too).
 */
async function traceRss<T>(pid: number, limitMs: number, work: () => Promise<T>): Promise<{ result: T; trace: RssTrace }> {
  const beforeKiB = memoryKiB(pid, 'VmRSS');
  const hwmBeforeKiB = memoryKiB(pid, 'VmHWM');
  let finished = false;
  const job = work().finally(() => {
    finished = true;
  });
  const settled = job.then(() => undefined, () => undefined);
  let maxKiB: number | null = null;
  const readingsKiB: number[] = [];
  const note = (value: number | null): void => {
    if (value === null) return;
    readingsKiB.push(value);
    maxKiB = Math.max(maxKiB ?? value, value);
  };
  const limit = Math.ceil(limitMs / RSS_SAMPLE_MS);
  for (let i = 0; i < limit && !finished; i++) {
    const tick = new AbortController();
    await Promise.race([settled, sleep(RSS_SAMPLE_MS, undefined, { signal: tick.signal }).catch(() => undefined)]);
    tick.abort();
    if (!finished) note(memoryKiB(pid, 'VmRSS'));
  }
  const result = await job;
  const afterKiB = memoryKiB(pid, 'VmRSS');
  note(afterKiB);
  const hwmAfterKiB = memoryKiB(pid, 'VmHWM');
  const sampledMaxKiB: number | null = maxKiB;
  const raised = hwmBeforeKiB !== null && hwmAfterKiB !== null && hwmAfterKiB > hwmBeforeKiB;
  const peakKiB = raised ? Math.max(sampledMaxKiB ?? hwmAfterKiB, hwmAfterKiB) : sampledMaxKiB;
  return {
    result,
    trace: {
      beforeKiB,
      sampledMaxKiB,
      maxKiB: peakKiB,
      growthKiB: peakKiB === null || beforeKiB === null ? null : peakKiB - beforeKiB,
      afterKiB,
      hwmBeforeKiB,
      hwmAfterKiB,
      samples: readingsKiB.length,
      readingsKiB,
    },
  };
}

// ---------------------------------------------------------------- contenders

type ContenderKey = 'direct' | 'ftpfwd' | 'ssh-default' | 'ssh-aes-gcm';
const FORWARDERS: readonly ContenderKey[] = ['ftpfwd', 'ssh-default', 'ssh-aes-gcm'];

interface Contender {
  key: ContenderKey;
  label: string;
  /** Where curl's FTP URLs point. */
  ftpHost: string;
  ftpPort: number;
  /** The SOCKS5 proxy (ssh -D) that carries the connections, if any. */
  socks: SocksProxy | null;
  /** Where curl's FTP URLs point for the slow FTP server (through the proxy, if any); null for `direct`. */
  slowServer: FtpAddress | null;
  /** The forwarding process; null for `direct`. */
  proc: ProcessHandle | null;
  /** Cipher negotiated client to server / server to client. */
  cipher: string;
  rssAtStartKiB: number | null;
}

interface SocksProxy {
  host: string;
  port: number;
}

interface FtpAddress {
  host: string;
  port: number;
}

/** curl arguments that route it like the contender. */
function curlRoute(contender: Contender): string[] {
  return contender.socks === null ? [] : ['--socks5-hostname', `${contender.socks.host}:${contender.socks.port}`];
}

function ftpUrl(contender: Contender, path: string): string {
  return `ftp://${contender.ftpHost}:${contender.ftpPort}/${path}`;
}

function slowServerUrl(contender: Contender, path: string): string {
  if (contender.slowServer === null) throw new Error(`${contender.label} has no route to the slow FTP server`);
  return `ftp://${contender.slowServer.host}:${contender.slowServer.port}/${path}`;
}

function cleanEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env['SSH_AUTH_SOCK'];
  return env;
}

/** `also`: further FTP servers (on loopback at the SSH server's side) to forward to, each on its own listener. */
function ftpfwdArgs(sshd: SshdInstance, vsftpd: VsftpdInstance, logging: string[], also: FtpAddress[] = []): string[] {
  return [
    FTPFWD_BIN,
    '-L', `127.0.0.1:0:127.0.0.1:${vsftpd.port}`,
    ...also.flatMap((target) => ['-L', `127.0.0.1:0:${target.host}:${target.port}`]),
    '-p', String(sshd.port),
    '-i', sshd.identityFile,
    '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`,
    '-o', 'StrictHostKeyChecking=yes',
    '--log-format', 'json',
    ...logging,
    `${sshd.user}@${sshd.host}`,
  ];
}

const LISTENING = /ftpfwd: listening on 127\.0\.0\.1:(\d+)/;

/** The local port of the listener that forwards to `target`, from ftpfwd's start-up lines. */
function listenerFor(output: string, target: FtpAddress): number | null {
  for (const line of output.split('\n')) {
    const match = /ftpfwd: listening on 127\.0\.0\.1:(\d+) -> (\S+) /.exec(line);
    if (match?.[2] === `${target.host}:${target.port}`) return Number(match[1]);
  }
  return null;
}

/** A short-lived ftpfwd with -v, to read which algorithms it negotiates. */
async function probeFtpfwdCipher(sshd: SshdInstance, vsftpd: VsftpdInstance, home: string): Promise<string> {
  const proc = await startProcess(process.execPath, ftpfwdArgs(sshd, vsftpd, ['-v']), { env: cleanEnv(home) });
  try {
    await proc.waitForOutput(LISTENING, START_TIMEOUT_MS);
    for (const line of proc.stderr().split('\n')) {
      if (!line.includes('SSH algorithms negotiated')) continue;
      const record = JSON.parse(line) as { cipher?: unknown; kex?: unknown };
      return typeof record.cipher === 'string' ? record.cipher : JSON.stringify(record.cipher);
    }
    return 'unknown (no "SSH algorithms negotiated" debug line)';
  } finally {
    await proc.stop();
  }
}

/** One ftpfwd process with a listener for vsftpd and, if `slow` is given, one for the slow FTP server. */
async function startFtpfwd(sshd: SshdInstance, vsftpd: VsftpdInstance, home: string, cipher: string, slow?: FtpAddress): Promise<Contender> {
  const proc = await startProcess(process.execPath, ftpfwdArgs(sshd, vsftpd, ['-q'], slow === undefined ? [] : [slow]), { env: cleanEnv(home) });
  let port: number | null = null;
  let slowPort: number | null = null;
  try {
    await proc.waitForOutput(LISTENING, START_TIMEOUT_MS);
    port = listenerFor(proc.stdout(), { host: '127.0.0.1', port: vsftpd.port });
    if (slow !== undefined) slowPort = listenerFor(proc.stdout(), slow);
    if (port === null || (slow !== undefined && slowPort === null)) throw new Error(`ftpfwd did not print its listeners: ${proc.stdout()}`);
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return {
    key: 'ftpfwd',
    label: 'ftpfwd',
    ftpHost: '127.0.0.1',
    ftpPort: port,
    socks: null,
    slowServer: slowPort === null ? null : { host: '127.0.0.1', port: slowPort },
    proc,
    cipher,
    rssAtStartKiB: memoryKiB(proc.pid, 'VmRSS'),
  };
}

function sshCipherArgs(cipher: string | undefined): string[] {
  return cipher === undefined ? [] : ['-c', cipher];
}

/** A one-command ssh -v connection, to read the ciphers OpenSSH negotiates. */
async function probeSshCipher(sshd: SshdInstance, cipher: string | undefined, home: string): Promise<string> {
  const result = await run('ssh', ['-v', ...sshCipherArgs(cipher), ...sshClientArgs(sshd), 'true'], { timeoutMs: START_TIMEOUT_MS, env: cleanEnv(home) });
  const down = /kex: server->client cipher: (\S+)/.exec(result.stderr)?.[1];
  const up = /kex: client->server cipher: (\S+)/.exec(result.stderr)?.[1];
  if (down === undefined) return `unknown (ssh exit ${String(result.code)})`;
  return up === undefined || up === down ? down : `${up} / ${down}`;
}

async function startSshSocks(sshd: SshdInstance, vsftpd: VsftpdInstance, slow: FtpAddress, home: string, key: ContenderKey, cipher: string | undefined, negotiated: string): Promise<Contender> {
  const socksPort = await freePort('127.0.0.1');
  const args = ['-N', '-D', `127.0.0.1:${socksPort}`, '-o', 'ExitOnForwardFailure=yes', ...sshCipherArgs(cipher), ...sshClientArgs(sshd)];
  const proc = await startProcess('ssh', args, { env: cleanEnv(home) });
  try {
    const exited = proc.waitExit(START_TIMEOUT_MS).then(
      (status) => {
        throw new Error(`ssh -D exited during start-up (code ${String(status.code)}): ${proc.stderr()}`);
      },
      () => undefined,
    );
    await Promise.race([waitForTcp('127.0.0.1', socksPort, START_TIMEOUT_MS), exited]);
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return {
    key,
    label: cipher === undefined ? 'ssh -D (default cipher)' : `ssh -D -c ${cipher}`,
    ftpHost: '127.0.0.1',
    ftpPort: vsftpd.port,
    socks: { host: '127.0.0.1', port: socksPort },
    slowServer: slow,
    proc,
    cipher: negotiated,
    rssAtStartKiB: memoryKiB(proc.pid, 'VmRSS'),
  };
}

// ---------------------------------------------------------------- measuring

type Kind = 'slow-down' | 'slow-up' | 'large-down' | 'large-up' | 'small-down' | 'small-up' | 'conc-down' | 'conc-up';

/** The forwarding process's memory around and during one transfer, in KiB. */
interface RssTrace {
  /** VmRSS just before the transfer started. */
  beforeKiB: number | null;
  /** The largest VmRSS read while it ran (every RSS_SAMPLE_MS) and right after it ended. */
  sampledMaxKiB: number | null;
  /**
   * The largest RSS during the transfer: sampledMaxKiB, or VmHWM after it if
   * the transfer raised VmHWM (the process's peak RSS, which a peak between
   * two readings raises too).
   */
  maxKiB: number | null;
  /** maxKiB - beforeKiB. */
  growthKiB: number | null;
  /** VmRSS right after the transfer ended. */
  afterKiB: number | null;
  /** VmHWM before and after the transfer. */
  hwmBeforeKiB: number | null;
  hwmAfterKiB: number | null;
  /** VmRSS readings taken (during the transfer and right after it). */
  samples: number;
  /** Those readings in order, RSS_SAMPLE_MS apart: a plateau is bounded buffering, a steady climb is not. */
  readingsKiB: number[];
}

interface Sample {
  kind: Kind;
  contender: ContenderKey;
  round: number;
  seconds: number;
  bytes: number;
  files: number;
  /** CPU seconds of the forwarding process over the measurement. */
  forwarderCpuSeconds: number | null;
  /** CPU seconds of sshd's per-connection processes over the measurement. */
  sshdCpuSeconds: number | null;
  /** Earlier attempts thrown away because curl stalled in its set-up. */
  stalledAttempts: number;
  /** This sample itself still has a stalled curl (after MAX_ATTEMPTS). */
  stalled: boolean;
  ok: boolean;
  problems: string[];
  /** Slow-reader section only. */
  rss?: RssTrace;
}

interface TransferOutcome {
  problems: string[];
  /** curl processes whose set-up took longer than STALL_SECONDS. */
  stalls: number;
}

interface Measurement {
  bytes: number;
  files: number;
  /** Untimed, before every attempt: remove what an earlier attempt left. */
  prepare: () => Promise<void>;
  transfer: () => Promise<TransferOutcome>;
  /** Untimed, after the transfer: problems with the result. */
  verify: () => Promise<string[]>;
  /** The RSS trace of the last attempt, if `transfer` took one. */
  rss?: () => RssTrace | null;
}

/** Set on SIGINT/SIGTERM: nothing more is measured or reported while clean-up runs. */
let interrupted = false;

class Bench {
  readonly samples: Sample[] = [];
  readonly failures: string[] = [];

  constructor(private readonly sshdPid: number | null) {}

  /** Times `transfer` and reads CPU around it; repeats it when curl stalled; then verifies. */
  async measure(contender: Contender, kind: Kind, round: number, m: Measurement): Promise<void> {
    const pid = contender.proc?.pid ?? null;
    let stalledAttempts = 0;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS && !interrupted; attempt++) {
      await m.prepare();
      const cpuBefore = pid === null ? null : cpuSeconds(pid);
      const sshdBefore = this.sshdPid === null || pid === null ? null : descendantsCpuSeconds(this.sshdPid);
      const started = performance.now();
      const outcome = await m.transfer();
      const seconds = (performance.now() - started) / 1000;
      const cpuAfter = pid === null ? null : cpuSeconds(pid);
      const sshdAfter = this.sshdPid === null || pid === null ? null : descendantsCpuSeconds(this.sshdPid);

      if (interrupted) return;
      const problems = [...outcome.problems];
      if (outcome.stalls > 0 && problems.length === 0 && attempt < MAX_ATTEMPTS) {
        stalledAttempts += 1;
        process.stderr.write(`  round ${round + 1} ${kind.padEnd(10)} ${contender.label.padEnd(33)} ${seconds.toFixed(2).padStart(7)} s  curl stalled in set-up, again\n`);
        continue;
      }
      if (problems.length === 0) problems.push(...(await m.verify()));
      if (contender.proc?.exitStatus() !== undefined) problems.push(`${contender.label} process has exited: ${contender.proc.stderr().slice(-500)}`);
      const ok = problems.length === 0;
      const rss = m.rss?.() ?? null;
      for (const problem of problems.slice(0, 3)) this.failures.push(`${kind} via ${contender.label}, round ${round + 1}: ${problem}`);
      if (problems.length > 3) this.failures.push(`${kind} via ${contender.label}, round ${round + 1}: ... and ${problems.length - 3} more`);
      this.samples.push({
        kind,
        contender: contender.key,
        round,
        seconds,
        bytes: m.bytes,
        files: m.files,
        forwarderCpuSeconds: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
        sshdCpuSeconds: sshdBefore === null || sshdAfter === null ? null : sshdAfter - sshdBefore,
        stalledAttempts,
        stalled: outcome.stalls > 0,
        ok,
        problems,
        ...(rss === null ? {} : { rss }),
      });
      const mark = (ok ? '' : '  FAILED') + (outcome.stalls > 0 ? '  (curl stalled)' : '');
      const rate = kind.startsWith('small') ? `${fmt(m.files / seconds)} files/s` : `${fmt(m.bytes / MB / seconds)} MB/s`;
      const memory = rss === null ? '' : `  RSS ${kib(rss.beforeKiB)} -> max ${kib(rss.maxKiB)} (${signedKib(rss.growthKiB)}, ${rss.samples} samples)`;
      process.stderr.write(`  round ${round + 1} ${kind.padEnd(10)} ${contender.label.padEnd(33)} ${seconds.toFixed(2).padStart(7)} s  ${rate}${memory}${mark}\n`);
      return;
    }
  }

  get tooManyFailures(): boolean {
    return this.failures.length >= MAX_FAILURES;
  }
}

function transferTimeoutMs(bytes: number): number {
  return TIMEOUT_FLOOR_MS + Math.ceil(bytes / SLOWEST_RATE_BYTES_PER_MS);
}

/** Printed by curl after each transfer: set-up time and total time, in seconds. */
const CURL_TIMES = '%{time_pretransfer} %{time_total}\\n';

/**
 * curl in passive mode (it sends EPSV first); `-sS` keeps its progress meter
 * quiet but shows errors; `-w` reports its set-up time on stdout.
 */
function curl(contender: Contender, args: string[], timeoutMs: number, verbose = false): Promise<RunResult> {
  const seconds = Math.ceil(timeoutMs / 1000);
  const flags = ['-sS', '--fail', '--ftp-pasv', '--max-time', String(seconds), '-w', CURL_TIMES, ...(verbose ? ['-v'] : [])];
  return run('curl', [...flags, ...curlRoute(contender), ...args], { timeoutMs: timeoutMs + 5_000 });
}

function curlOutcome(results: RunResult[]): TransferOutcome {
  const problems: string[] = [];
  let stalls = 0;
  for (const result of results) {
    if (result.code !== 0) {
      const why = result.timedOut ? 'timed out' : `exit ${String(result.code ?? result.signal)}`;
      problems.push(`curl ${why}: ${result.stderr.trim().split('\n').slice(-2).join(' | ')}`);
      continue;
    }
    const setUp = Number(result.stdout.trim().split(/\s+/)[0]);
    if (Number.isFinite(setUp) && setUp > STALL_SECONDS) stalls += 1;
  }
  return { problems, stalls };
}

async function checkFile(path: string, expected: string, what: string): Promise<string[]> {
  try {
    const actual = await sha256File(path);
    return actual === expected ? [] : [`${what}: SHA-256 mismatch (${actual.slice(0, 12)}... instead of ${expected.slice(0, 12)}...)`];
  } catch (error) {
    return [`${what}: ${error instanceof Error ? error.message : String(error)}`];
  }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Rotates the contenders so each round starts with a different one. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------- a minimal FTP client

/**
 * Everything a socket delivers, kept until asked for, so that a SOCKS reply,
 * FTP replies and data can be read exactly, each wait with a deadline.
 */
class SocketReader {
  private buffered: Buffer = Buffer.alloc(0);
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', (error) => {
      this.failure = error;
      this.notify();
    });
  }

  /** `n` bytes. */
  async take(n: number, what: string): Promise<Buffer> {
    const deadline = Date.now() + CLIENT_TIMEOUT_MS;
    while (this.buffered.length < n) await this.more(deadline, what, false);
    return this.consume(n);
  }

  /** One line, without its terminator. */
  async line(what: string): Promise<string> {
    const deadline = Date.now() + CLIENT_TIMEOUT_MS;
    for (let end = this.buffered.indexOf(10); ; end = this.buffered.indexOf(10)) {
      if (end !== -1) return this.consume(end + 1).toString('latin1').replace(/\r?\n$/, '');
      await this.more(deadline, what, false);
    }
  }

  /** Everything up to the peer's end of stream. */
  async rest(what: string): Promise<Buffer> {
    const deadline = Date.now() + CLIENT_TIMEOUT_MS;
    while (!this.ended) await this.more(deadline, what, true);
    if (this.failure) throw this.failure;
    return this.consume(this.buffered.length);
  }

  private consume(n: number): Buffer {
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Waits for more bytes or the end; throws on error, timeout, or an end that was not wanted. */
  private async more(deadline: number, what: string, endIsFine: boolean): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.ended) {
      if (endIsFine) return;
      throw new Error(`connection closed while waiting for ${what}`);
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

function tcpConnect(host: string, port: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = connectTcp({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${host}:${port} timed out`));
    }, CLIENT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      // As curl and lftp do.
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** A TCP connection to host:port, through a SOCKS5 CONNECT by host name (like curl --socks5-hostname) when a proxy is given. */
async function openConnection(socks: SocksProxy | null, host: string, port: number): Promise<SocketReader> {
  const socket = await tcpConnect(socks?.host ?? host, socks?.port ?? port);
  const reader = new SocketReader(socket);
  if (socks === null) return reader;
  try {
    socket.write(Buffer.from([5, 1, 0]));
    const method = await reader.take(2, 'the SOCKS5 greeting');
    if (method[0] !== 5 || method[1] !== 0) throw new Error('the SOCKS5 proxy wants authentication');
    const name = Buffer.from(host, 'latin1');
    socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]));
    const head = await reader.take(4, 'the SOCKS5 reply');
    if (head[0] !== 5 || head[1] !== 0) throw new Error(`SOCKS5 CONNECT to ${host}:${port} refused (reply ${String(head[1])})`);
    const type = head[3];
    const addressLength = type === 1 ? 4 : type === 4 ? 16 : type === 3 ? (await reader.take(1, 'the SOCKS5 reply'))[0]! : -1;
    if (addressLength < 0) throw new Error(`SOCKS5 reply with address type ${String(type)}`);
    await reader.take(addressLength + 2, 'the SOCKS5 reply');
    return reader;
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

interface Reply {
  code: number;
  text: string;
}

/**
 * One anonymous FTP session, commands one at a time, data connections by
 * EPSV. What curl does per file, minus SIZE and its one-second waits.
 */
class FtpClient {
  private constructor(
    private readonly control: SocketReader,
    private readonly socks: SocksProxy | null,
    private readonly host: string,
  ) {}

  static async login(socks: SocksProxy | null, host: string, port: number): Promise<FtpClient> {
    const client = new FtpClient(await openConnection(socks, host, port), socks, host);
    try {
      expect(await client.reply(), [220], 'greeting');
      const user = expect(await client.command('USER anonymous'), [230, 331], 'USER');
      if (user.code === 331) expect(await client.command('PASS bench@localhost'), [230], 'PASS');
      expect(await client.command('TYPE I'), [200], 'TYPE I');
      return client;
    } catch (error) {
      client.close();
      throw error;
    }
  }

  async get(path: string): Promise<Buffer> {
    const data = await this.openData();
    try {
      expect(await this.command(`RETR ${path}`), [125, 150], `RETR ${path}`);
      const [body, done] = await Promise.all([data.rest(`the data of ${path}`), this.reply()]);
      expect(done, [226], `RETR ${path}`);
      return body;
    } finally {
      data.socket.destroy();
    }
  }

  async put(path: string, body: Buffer): Promise<void> {
    const data = await this.openData();
    try {
      expect(await this.command(`STOR ${path}`), [125, 150], `STOR ${path}`);
      await new Promise<void>((resolve) => data.socket.end(body, resolve));
      expect(await this.reply(), [226], `STOR ${path}`);
    } finally {
      data.socket.destroy();
    }
  }

  async quit(): Promise<void> {
    expect(await this.command('QUIT'), [221], 'QUIT');
  }

  close(): void {
    this.control.socket.destroy();
  }

  private async openData(): Promise<SocketReader> {
    const reply = expect(await this.command('EPSV'), [229], 'EPSV');
    const port = /\(\|\|\|(\d+)\|\)/.exec(reply.text)?.[1];
    if (port === undefined) throw new Error(`unreadable EPSV reply: ${reply.text}`);
    return openConnection(this.socks, this.host, Number(port));
  }

  private command(line: string): Promise<Reply> {
    this.control.socket.write(`${line}\r\n`);
    return this.reply();
  }

  private async reply(): Promise<Reply> {
    const first = await this.control.line('a reply');
    const match = /^(\d{3})([ -])/.exec(first);
    if (!match) throw new Error(`not an FTP reply: ${JSON.stringify(first)}`);
    if (match[2] === '-') {
      let last = '';
      for (let lines = 0; lines < 1000 && !last.startsWith(`${match[1]} `); lines++) last = await this.control.line('the rest of a reply');
    }
    return { code: Number(match[1]), text: first };
  }
}

function expect(reply: Reply, codes: number[], what: string): Reply {
  if (!codes.includes(reply.code)) throw new Error(`${what}: unexpected reply ${reply.text}`);
  return reply;
}

/** One session: log in, run `work`, log out. Problems come back as text. */
async function inSession(contender: Contender, work: (client: FtpClient) => Promise<void>): Promise<TransferOutcome> {
  let client: FtpClient | undefined;
  try {
    client = await FtpClient.login(contender.socks, contender.ftpHost, contender.ftpPort);
    await work(client);
    await client.quit();
    return { problems: [], stalls: 0 };
  } catch (error) {
    return { problems: [`FTP session: ${errorText(error)}`], stalls: 0 };
  } finally {
    client?.close();
  }
}

// ---------------------------------------------------------------- a slow FTP server

/**
 * Reads `socket` to its end at no more than `bytesPerSecond` (pausing it
 * whenever it is ahead), hashing what it reads; keeps nothing.
 */
function readSlowly(socket: Socket, bytesPerSecond: number, timeoutMs: number): Promise<{ bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const started = performance.now();
    let bytes = 0;
    let settled = false;
    let resumeTimer: NodeJS.Timeout | undefined;
    const finish = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(resumeTimer);
      if (error === null) resolve({ bytes, sha256: hash.digest('hex') });
      else reject(error);
    };
    const deadline = setTimeout(() => {
      finish(new Error(`upload not finished after ${Math.round(timeoutMs / 1000)} s (${bytes} bytes read)`));
      socket.destroy();
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      const aheadMs = (bytes / bytesPerSecond) * 1000 - (performance.now() - started);
      if (aheadMs >= 1) {
        socket.pause();
        resumeTimer = setTimeout(() => socket.resume(), aheadMs);
      }
    });
    socket.once('end', () => finish(null));
    socket.once('error', (error) => finish(error));
    socket.once('close', () => finish(new Error(`data connection closed before its end (${bytes} bytes read)`)));
  });
}

type Received = { bytes: number; sha256: string } | { error: string };

/**
 * An anonymous FTP server for uploads only (USER, PASS, PWD, TYPE, EPSV, PASV,
 * STOR, QUIT) that reads each data connection slowly and keeps only its
 * SHA-256: the server side of the slow-reader section's uploads.
 */
class SlowFtpServer {
  /** STOR results by file name. */
  readonly received = new Map<string, Received>();
  private readonly sockets = new Set<Socket>();
  private readonly closers = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    readonly address: FtpAddress,
    private readonly bytesPerSecond: number,
    private readonly timeoutMs: number,
  ) {}

  static async start(bytesPerSecond: number, timeoutMs: number): Promise<SlowFtpServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    const slow = new SlowFtpServer(server, { host: '127.0.0.1', port }, bytesPerSecond, timeoutMs);
    server.on('connection', (socket) => {
      slow.track(socket);
      void slow.session(socket).catch(() => undefined).finally(() => socket.destroy());
    });
    return slow;
  }

  async close(): Promise<void> {
    for (const close of this.closers) close();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: Socket): void {
    // Errors are seen by whoever reads the socket; one before that must not be an unhandled 'error' event.
    socket.on('error', () => undefined);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private async session(socket: Socket): Promise<void> {
    socket.setNoDelay(true);
    const control = new SocketReader(socket);
    const send = (line: string): void => void socket.write(`${line}\r\n`);
    let data: Promise<Socket> | null = null;
    send('220 slow FTP server');
    for (let commands = 0; commands < 100; commands++) {
      const line = await control.line('a command');
      const space = line.indexOf(' ');
      const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
      const argument = space === -1 ? '' : line.slice(space + 1);
      if (verb === 'USER') send('331 Any password will do.');
      else if (verb === 'PASS') send('230 Logged in.');
      else if (verb === 'PWD') send('257 "/" is the current directory.');
      else if (verb === 'TYPE') send('200 Type set.');
      else if (verb === 'EPSV' || verb === 'PASV') {
        const listener = await this.listenOnce();
        data = listener.accepted;
        const { port } = listener;
        send(verb === 'EPSV' ? `229 Entering Extended Passive Mode (|||${port}|)` : `227 Entering Passive Mode (127,0,0,1,${port >> 8},${port & 0xff})`);
      } else if (verb === 'STOR') {
        const pending = data;
        data = null;
        if (pending === null) {
          send('425 Use EPSV or PASV first.');
          continue;
        }
        let connection: Socket;
        try {
          connection = await pending;
        } catch (error) {
          this.received.set(argument, { error: errorText(error) });
          send('425 No data connection.');
          continue;
        }
        send('150 Ok to send data.');
        try {
          this.received.set(argument, await readSlowly(connection, this.bytesPerSecond, this.timeoutMs));
          send('226 Transfer complete.');
        } catch (error) {
          this.received.set(argument, { error: errorText(error) });
          send('426 Transfer aborted.');
        } finally {
          connection.destroy();
        }
      } else if (verb === 'QUIT') {
        send('221 Goodbye.');
        socket.end();
        return;
      } else {
        send('502 Command not implemented.');
      }
    }
  }

  /** A listener for one data connection, closed once it has it or after CLIENT_TIMEOUT_MS. */
  private listenOnce(): Promise<{ port: number; accepted: Promise<Socket> }> {
    return new Promise((resolve, reject) => {
      const listener = createServer();
      listener.once('error', reject);
      listener.listen(0, '127.0.0.1', () => {
        listener.off('error', reject);
        const { port } = listener.address() as AddressInfo;
        const accepted = new Promise<Socket>((accept, fail) => {
          const close = (): void => {
            clearTimeout(timer);
            this.closers.delete(abandon);
            listener.close();
          };
          const abandon = (): void => {
            close();
            fail(new Error('the slow FTP server was closed'));
          };
          const timer = setTimeout(() => {
            close();
            fail(new Error('no data connection'));
          }, CLIENT_TIMEOUT_MS);
          this.closers.add(abandon);
          listener.once('connection', (socket) => {
            close();
            this.track(socket);
            accept(socket);
          });
        });
        // Handled where it is awaited; a session that never uses it must not leave an unhandled rejection.
        accepted.catch(() => undefined);
        resolve({ port, accepted });
      });
    });
  }
}

// ---------------------------------------------------------------- summaries

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

interface Summary {
  kind: Kind;
  contender: ContenderKey;
  rounds: number;
  failed: number;
  /** Median MB/s and the range over rounds. */
  mbPerSecond: number | null;
  mbPerSecondMin: number | null;
  mbPerSecondMax: number | null;
  filesPerSecond: number | null;
  /** Median forwarder CPU seconds per GiB moved, and per file. */
  forwarderCpuSecondsPerGiB: number | null;
  forwarderCpuMsPerFile: number | null;
  sshdCpuSecondsPerGiB: number | null;
  sshdCpuMsPerFile: number | null;
  /** curl attempts thrown away because curl stalled, and samples kept although stalled. */
  stalledAttempts: number;
  stalledSamples: number;
}

function summarize(samples: Sample[], kind: Kind, contender: ContenderKey): Summary {
  const all = samples.filter((s) => s.kind === kind && s.contender === contender);
  const good = all.filter((s) => s.ok);
  const rates = good.map((s) => s.bytes / MB / s.seconds);
  const perGiB = (pick: (s: Sample) => number | null): number | null =>
    median(good.flatMap((s) => (pick(s) === null || s.bytes === 0 ? [] : [pick(s)! / (s.bytes / GiB)])));
  const perFile = (pick: (s: Sample) => number | null): number | null =>
    median(good.flatMap((s) => (pick(s) === null ? [] : [(pick(s)! * 1000) / s.files])));
  return {
    kind,
    contender,
    rounds: all.length,
    failed: all.length - good.length,
    mbPerSecond: median(rates),
    mbPerSecondMin: rates.length > 0 ? Math.min(...rates) : null,
    mbPerSecondMax: rates.length > 0 ? Math.max(...rates) : null,
    filesPerSecond: median(good.map((s) => s.files / s.seconds)),
    forwarderCpuSecondsPerGiB: perGiB((s) => s.forwarderCpuSeconds),
    forwarderCpuMsPerFile: perFile((s) => s.forwarderCpuSeconds),
    sshdCpuSecondsPerGiB: perGiB((s) => s.sshdCpuSeconds),
    sshdCpuMsPerFile: perFile((s) => s.sshdCpuSeconds),
    stalledAttempts: all.reduce((sum, s) => sum + s.stalledAttempts, 0),
    stalledSamples: all.filter((s) => s.stalled).length,
  };
}

function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

function fmt(value: number | null, digits?: number): string {
  if (value === null || !Number.isFinite(value)) return '-';
  if (digits !== undefined) return value.toFixed(digits);
  const abs = Math.abs(value);
  return value.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : 2);
}

function fmtRatio(value: number | null): string {
  return value === null ? '-' : `${value.toFixed(2)}x`;
}

function fmtRange(s: Summary): string {
  if (s.mbPerSecondMin === null || s.mbPerSecondMax === null || s.rounds < 2) return '';
  return `${fmt(s.mbPerSecondMin)}-${fmt(s.mbPerSecondMax)}`;
}

/** Left-aligned first column, right-aligned others (or all left-aligned). */
function table(header: string[], rows: string[][], allLeft = false): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    '  ' + cells.map((c, i) => (i === 0 || allLeft ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const rule = '  ' + widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function kib(value: number | null): string {
  return value === null ? '-' : `${(value / 1024).toFixed(1)} MiB`;
}

function signedKib(value: number | null): string {
  return value === null ? '-' : `${value >= 0 ? '+' : '-'}${(Math.abs(value) / 1024).toFixed(1)} MiB`;
}

// ---------------------------------------------------------------- environment

interface Environment {
  node: string;
  ssh2: string;
  ssh2NativeBinding: boolean | null;
  ssh2DefaultCiphers: string[];
  openssh: string;
  curl: string;
  cpu: string;
  cpuCount: number;
  aesNi: boolean;
  kernel: string;
  /** 1-minute load average when the run started and when it ended: other work on the machine skews the figures. */
  loadAtStart: number;
  loadAtEnd: number | null;
  workDir: string;
  ciphers: Partial<Record<ContenderKey, string>>;
}

async function environment(workDir: string): Promise<Environment> {
  const require = createRequire(import.meta.url);
  const pkg = require('ssh2/package.json') as { version?: unknown };
  let binding: boolean | null = null;
  let defaults: string[] = [];
  try {
    binding = (require('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: unknown }).bindingAvailable === true;
    const constants = require('ssh2/lib/protocol/constants.js') as { DEFAULT_CIPHER?: unknown };
    if (Array.isArray(constants.DEFAULT_CIPHER)) defaults = constants.DEFAULT_CIPHER.filter((c): c is string => typeof c === 'string');
  } catch {
    binding = null;
  }
  const ssh = await run('ssh', ['-V'], { timeoutMs: 10_000 });
  const curlVersion = await run('curl', ['--version'], { timeoutMs: 10_000 });
  const ticks = await run('getconf', ['CLK_TCK'], { timeoutMs: 10_000 });
  if (/^\d+$/.test(ticks.stdout.trim())) clockTicks = Number(ticks.stdout.trim());
  let cpuInfo = '';
  try {
    cpuInfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    cpuInfo = '';
  }
  return {
    node: process.version,
    ssh2: typeof pkg.version === 'string' ? pkg.version : 'unknown',
    ssh2NativeBinding: binding,
    ssh2DefaultCiphers: defaults,
    openssh: (ssh.stderr || ssh.stdout).trim(),
    curl: curlVersion.stdout.split('\n')[0]?.split(' ').slice(0, 2).join(' ') ?? 'unknown',
    cpu: cpus()[0]?.model ?? 'unknown',
    cpuCount: cpus().length,
    aesNi: /^flags\s*:.*\baes\b/m.test(cpuInfo),
    kernel: release(),
    loadAtStart: loadavg()[0] ?? 0,
    loadAtEnd: null,
    workDir,
    ciphers: {},
  };
}

/** /dev/shm keeps the test files off the disk when it has room for them. */
async function makeWorkDir(config: Config, needBytes: number): Promise<string> {
  let base = config.tmpBase;
  if (base === undefined) {
    base = tmpdir();
    try {
      const fs = statfsSync('/dev/shm');
      if (fs.bavail * fs.bsize > needBytes * 1.5 && freemem() > needBytes * 2) base = '/dev/shm';
    } catch {
      // no /dev/shm: the OS temp dir it is
    }
  }
  return mkdtemp(join(base, 'ftpfwd-bench-'));
}

// ---------------------------------------------------------------- the run

interface Files {
  large: string;
  largeSum: string;
  conc: string;
  concSum: string;
  /** Small files: name (in the FTP folder `small/`) to contents. */
  small: Map<string, Buffer>;
  smallSums: Map<string, string>;
}

async function prepareFiles(config: Config, root: string, work: string): Promise<Files> {
  const large = join(root, 'large.bin');
  const conc = join(root, 'conc.bin');
  process.stderr.write(`generating ${config.sizeMiB} MiB, ${config.sessionMiB} MiB and ${config.files} x ${config.fileKiB} KiB of random data in ${work}\n`);
  await writeRandomFile(large, config.sizeMiB * MiB);
  await writeRandomFile(conc, config.sessionMiB * MiB);
  const smallDir = join(root, 'small');
  await mkdir(smallDir);
  await chmod(smallDir, 0o755);
  const small = new Map<string, Buffer>();
  const smallSums = new Map<string, string>();
  const width = String(config.files - 1).length;
  for (let i = 0; i < config.files; i++) {
    const name = `f${String(i).padStart(width, '0')}.bin`;
    await writeRandomFile(join(smallDir, name), config.fileKiB * 1024);
    const contents = await readFile(join(smallDir, name));
    small.set(name, contents);
    smallSums.set(name, sha256(contents));
  }
  return { large, largeSum: await sha256File(large), conc, concSum: await sha256File(conc), small, smallSums };
}

interface RssPoint {
  after: string;
  kib: Partial<Record<ContenderKey, number | null>>;
}

async function main(): Promise<number> {
  let config: Config | null;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
    return 2;
  }
  if (config === null) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const startedAt = new Date();
  const deadline = Date.now() + RUN_BUDGET_MS;
  const largeBytes = config.sizeMiB * MiB;
  const fileBytes = config.fileKiB * 1024;
  const sessionBytes = config.sessionMiB * MiB;
  // The source files plus a downloaded and an uploaded copy of each, with room to spare.
  const needBytes = 3 * largeBytes + 3 * config.sessions * sessionBytes + 3 * config.files * fileBytes;
  const work = await makeWorkDir(config, needBytes);

  const cleanups: Array<() => Promise<void>> = [];
  let cleaning: Promise<void> | null = null;
  const cleanUp = (): Promise<void> => {
    cleaning ??= (async () => {
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch (error) {
          process.stderr.write(`bench: clean-up: ${error instanceof Error ? error.message : String(error)}\n`);
        }
      }
      await removeDir(work);
    })();
    return cleaning;
  };
  const onSignal = (): void => {
    interrupted = true;
    process.stderr.write('bench: interrupted, stopping what it started\n');
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const env = await environment(work);
    const root = join(work, 'root');
    const client = join(work, 'client');
    const home = join(work, 'home');
    await mkdir(root);
    await mkdir(client);
    await mkdir(home);
    const files = await prepareFiles(config, root, work);

    const sshd = await startSshd();
    cleanups.push(() => sshd.stop());
    const vsftpd = await startVsftpd({ root });
    cleanups.push(() => vsftpd.stop());
    let sshdPid: number | null = null;
    try {
      sshdPid = Number(readFileSync(join(sshd.dir, 'sshd.pid'), 'utf8').trim()) || null;
    } catch {
      sshdPid = null;
    }

    const slowRate = config.slowRateMiB * MiB;
    const slowTimeout = transferTimeoutMs(largeBytes) + Math.ceil((largeBytes / slowRate) * 1000);
    const slowServer = await SlowFtpServer.start(slowRate, slowTimeout);
    cleanups.push(() => slowServer.close());

    env.ciphers.ftpfwd = await probeFtpfwdCipher(sshd, vsftpd, home);
    env.ciphers['ssh-default'] = await probeSshCipher(sshd, undefined, home);
    env.ciphers['ssh-aes-gcm'] = await probeSshCipher(sshd, AES_GCM, home);

    const direct: Contender = { key: 'direct', label: 'direct (no SSH)', ftpHost: vsftpd.host, ftpPort: vsftpd.port, socks: null, slowServer: null, proc: null, cipher: '-', rssAtStartKiB: null };
    const ftpfwd = await startFtpfwd(sshd, vsftpd, home, env.ciphers.ftpfwd);
    cleanups.push(async () => void (await ftpfwd.proc?.stop()));
    const sshDefault = await startSshSocks(sshd, vsftpd, slowServer.address, home, 'ssh-default', undefined, env.ciphers['ssh-default']);
    cleanups.push(async () => void (await sshDefault.proc?.stop()));
    const sshGcm = await startSshSocks(sshd, vsftpd, slowServer.address, home, 'ssh-aes-gcm', AES_GCM, env.ciphers['ssh-aes-gcm']);
    cleanups.push(async () => void (await sshGcm.proc?.stop()));
    const contenders = [direct, ftpfwd, sshDefault, sshGcm];
    const byKey = (key: ContenderKey): Contender => contenders.find((c) => c.key === key)!;

    // Warm-up, unmeasured: every path works with both clients, and curl really uses EPSV.
    const [firstSmall, firstContents] = [...files.small][0]!;
    for (const contender of contenders) {
      const out = join(client, `warmup-${contender.key}.bin`);
      const result = await curl(contender, ['-o', out, ftpUrl(contender, `small/${firstSmall}`)], transferTimeoutMs(fileBytes), true);
      const problems = result.code === 0 ? await checkFile(out, files.smallSums.get(firstSmall)!, 'warm-up download') : [`curl exit ${String(result.code)}: ${result.stderr.slice(-800)}`];
      if (result.code === 0 && !/^> EPSV/m.test(result.stderr)) problems.push('curl did not send EPSV');
      let received: Buffer = Buffer.alloc(0);
      problems.push(...(await inSession(contender, async (session) => {
        received = await session.get(`small/${firstSmall}`);
      })).problems);
      if (problems.length === 0 && !received.equals(firstContents)) problems.push('the small-file client received wrong data');
      if (problems.length > 0) throw new Error(`warm-up via ${contender.label} failed: ${problems.join('; ')}`);
      await rm(out, { force: true });
    }

    const bench = new Bench(sshdPid);
    const rss: RssPoint[] = [];
    const recordRss = (after: string): void => {
      const kib: Partial<Record<ContenderKey, number | null>> = {};
      for (const key of FORWARDERS) {
        const pid = byKey(key).proc?.pid;
        kib[key] = pid === undefined ? null : memoryKiB(pid, 'VmHWM');
      }
      rss.push({ after, kib });
    };
    recordRss('start-up and warm-up');
    const skipped: string[] = [];
    const roundAllowed = (section: string, round: number): boolean => {
      if (interrupted) return false;
      if (bench.tooManyFailures) {
        skipped.push(`${section} round ${round + 1}: too many failures`);
        return false;
      }
      if (Date.now() > deadline) {
        skipped.push(`${section} round ${round + 1}: run budget of ${RUN_BUDGET_MS / 60_000} min used up`);
        return false;
      }
      return true;
    };
    const removeAll = async (paths: string[]): Promise<void> => {
      for (const path of paths) await rm(path, { force: true });
    };

    // 1. One large file, down and up, one curl each.
    process.stderr.write(`\n1. large file, ${config.sizeMiB} MiB\n`);
    const largeTimeout = transferTimeoutMs(largeBytes);
    for (let round = 0; round < config.rounds; round++) {
      if (!roundAllowed('large', round)) break;
      for (const contender of rotate(contenders, round)) {
        const out = join(client, `large-${contender.key}.bin`);
        await bench.measure(contender, 'large-down', round, {
          bytes: largeBytes,
          files: 1,
          prepare: () => removeAll([out]),
          transfer: async () => curlOutcome([await curl(contender, ['-o', out, ftpUrl(contender, 'large.bin')], largeTimeout)]),
          verify: () => checkFile(out, files.largeSum, 'download'),
        });
        await removeAll([out]);
        const remoteName = `large-${contender.key}-${round}.bin`;
        const uploaded = join(vsftpd.uploadDir, remoteName);
        await bench.measure(contender, 'large-up', round, {
          bytes: largeBytes,
          files: 1,
          prepare: () => removeAll([uploaded]),
          transfer: async () => curlOutcome([await curl(contender, ['-T', files.large, ftpUrl(contender, `incoming/${remoteName}`)], largeTimeout)]),
          verify: () => checkFile(uploaded, files.largeSum, 'upload'),
        });
        await removeAll([uploaded]);
      }
    }
    recordRss('large file');

    // 2. Many small files in one session: one control connection, an EPSV data connection per file.
    process.stderr.write(`\n2. ${config.files} small files of ${config.fileKiB} KiB in one session\n`);
    const smallNames = [...files.small.keys()];
    for (let round = 0; round < config.rounds; round++) {
      if (!roundAllowed('small files', round)) break;
      for (const contender of rotate(contenders, round)) {
        const received = new Map<string, Buffer>();
        await bench.measure(contender, 'small-down', round, {
          bytes: config.files * fileBytes,
          files: config.files,
          prepare: async () => received.clear(),
          transfer: () => inSession(contender, async (session) => {
            for (const name of smallNames) received.set(name, await session.get(`small/${name}`));
          }),
          verify: async () => smallNames.flatMap((name) => {
            const data = received.get(name);
            if (data === undefined) return [`download ${name}: missing`];
            return sha256(data) === files.smallSums.get(name) ? [] : [`download ${name}: SHA-256 mismatch (${data.length} bytes)`];
          }),
        });
        const prefix = `small-${contender.key}-${round}-`;
        const uploaded = smallNames.map((name) => join(vsftpd.uploadDir, `${prefix}${name}`));
        await bench.measure(contender, 'small-up', round, {
          bytes: config.files * fileBytes,
          files: config.files,
          prepare: () => removeAll(uploaded),
          transfer: () => inSession(contender, async (session) => {
            for (const [name, contents] of files.small) await session.put(`incoming/${prefix}${name}`, contents);
          }),
          verify: async () => {
            const problems: string[] = [];
            for (const name of smallNames) problems.push(...(await checkFile(join(vsftpd.uploadDir, `${prefix}${name}`), files.smallSums.get(name)!, `upload ${name}`)));
            return problems;
          },
        });
        await removeAll(uploaded);
      }
    }
    recordRss('small files');

    // 3. Many sessions at once: one curl process (one control connection) per transfer.
    process.stderr.write(`\n3. ${config.sessions} concurrent sessions of ${config.sessionMiB} MiB\n`);
    const concTimeout = transferTimeoutMs(config.sessions * sessionBytes);
    const sessionIndexes = Array.from({ length: config.sessions }, (_, i) => i);
    for (let round = 0; round < config.rounds; round++) {
      if (!roundAllowed('concurrent', round)) break;
      for (const contender of rotate(contenders, round)) {
        const outs = sessionIndexes.map((i) => join(client, `conc-${contender.key}-${i}.bin`));
        await bench.measure(contender, 'conc-down', round, {
          bytes: config.sessions * sessionBytes,
          files: config.sessions,
          prepare: () => removeAll(outs),
          transfer: async () => curlOutcome(await Promise.all(outs.map((out) => curl(contender, ['-o', out, ftpUrl(contender, 'conc.bin')], concTimeout)))),
          verify: async () => {
            const problems: string[] = [];
            for (const [i, out] of outs.entries()) problems.push(...(await checkFile(out, files.concSum, `download ${i}`)));
            return problems;
          },
        });
        await removeAll(outs);
        const remoteNames = sessionIndexes.map((i) => `conc-${contender.key}-${round}-${i}.bin`);
        const uploaded = remoteNames.map((name) => join(vsftpd.uploadDir, name));
        await bench.measure(contender, 'conc-up', round, {
          bytes: config.sessions * sessionBytes,
          files: config.sessions,
          prepare: () => removeAll(uploaded),
          transfer: async () => curlOutcome(await Promise.all(remoteNames.map((name) => curl(contender, ['-T', files.conc, ftpUrl(contender, `incoming/${name}`)], concTimeout)))),
          verify: async () => {
            const problems: string[] = [];
            for (const [i, path] of uploaded.entries()) problems.push(...(await checkFile(path, files.concSum, `upload ${i}`)));
            return problems;
          },
        });
        await removeAll(uploaded);
      }
    }
    recordRss('concurrent sessions');

    // 4. Slow reader: the large file at a limited rate, the forwarder's RSS sampled meanwhile. Down,
    //    curl reads slowly; up, the slow FTP server does. Each transfer gets a forwarder process of its
    //    own, started for it (and warmed up with one small file), so that its RSS before is that of a
    //    process in its first use, not inflated by earlier transfers whose freed memory could hide
    //    growth. One round: the point is memory, not speed.
    process.stderr.write(`\n4. slow reader, ${config.sizeMiB} MiB at ${config.slowRateMiB} MiB/s, a new forwarder process per transfer\n`);
    const startForwarder = async (key: ContenderKey): Promise<Contender> => {
      const started = key === 'ftpfwd'
        ? await startFtpfwd(sshd, vsftpd, home, env.ciphers.ftpfwd ?? 'unknown', slowServer.address)
        : await startSshSocks(sshd, vsftpd, slowServer.address, home, key, key === 'ssh-aes-gcm' ? AES_GCM : undefined, env.ciphers[key] ?? 'unknown');
      cleanups.push(async () => void (await started.proc?.stop()));
      return started;
    };
    /** Runs `measure` with a new forwarder like `key`, warmed up; stops it after. */
    const withNewForwarder = async (key: ContenderKey, kind: Kind, measure: (contender: Contender, pid: number) => Promise<void>): Promise<void> => {
      let fresh: Contender | undefined;
      try {
        fresh = await startForwarder(key);
        const [warmName, warmContents] = [...files.small][0]!;
        let received: Buffer = Buffer.alloc(0);
        const warm = await inSession(fresh, async (session) => {
          received = await session.get(`small/${warmName}`);
        });
        if (warm.problems.length > 0 || !received.equals(warmContents)) throw new Error(`warm-up: ${warm.problems.join('; ') || 'wrong data'}`);
        await measure(fresh, fresh.proc!.pid);
      } catch (error) {
        bench.failures.push(`${kind} via ${fresh?.label ?? key}: ${errorText(error)}`);
      } finally {
        await fresh?.proc?.stop();
      }
    };
    if (roundAllowed('slow reader', 0)) {
      for (const key of FORWARDERS) {
        if (interrupted) break;
        const out = join(client, `slow-${key}.bin`);
        await withNewForwarder(key, 'slow-down', async (contender, pid) => {
          let trace: RssTrace | null = null;
          await bench.measure(contender, 'slow-down', 0, {
            bytes: largeBytes,
            files: 1,
            prepare: async () => {
              trace = null;
              await removeAll([out]);
            },
            transfer: async () => {
              const args = ['--limit-rate', `${config.slowRateMiB}M`, '-o', out, ftpUrl(contender, 'large.bin')];
              const traced = await traceRss(pid, slowTimeout + 5_000, () => curl(contender, args, slowTimeout));
              trace = traced.trace;
              return curlOutcome([traced.result]);
            },
            verify: () => checkFile(out, files.largeSum, 'download'),
            rss: () => trace,
          });
        });
        await removeAll([out]);
        const name = `slow-${key}.bin`;
        await withNewForwarder(key, 'slow-up', async (contender, pid) => {
          let trace: RssTrace | null = null;
          await bench.measure(contender, 'slow-up', 0, {
            bytes: largeBytes,
            files: 1,
            prepare: async () => {
              trace = null;
              slowServer.received.delete(name);
            },
            transfer: async () => {
              const args = ['-T', files.large, slowServerUrl(contender, name)];
              const traced = await traceRss(pid, slowTimeout + 5_000, () => curl(contender, args, slowTimeout));
              trace = traced.trace;
              return curlOutcome([traced.result]);
            },
            verify: async () => {
              const got = slowServer.received.get(name);
              if (got === undefined) return ['upload: the slow FTP server has no STOR of it'];
              if ('error' in got) return [`upload: ${got.error}`];
              return got.sha256 === files.largeSum ? [] : [`upload: SHA-256 mismatch (${got.sha256.slice(0, 12)}... instead of ${files.largeSum.slice(0, 12)}..., ${got.bytes} bytes)`];
            },
            rss: () => trace,
          });
        });
      }
    }

    const finalRss: Partial<Record<ContenderKey, number | null>> = {};
    for (const key of FORWARDERS) {
      const pid = byKey(key).proc?.pid;
      finalRss[key] = pid === undefined ? null : memoryKiB(pid, 'VmRSS');
    }

    env.loadAtEnd = loadavg()[0] ?? null;
    const report = buildReport(config, env, contenders, bench, rss, finalRss, skipped, startedAt);
    process.stdout.write(report.text);
    if (config.jsonPath !== undefined) {
      await writeFile(config.jsonPath, `${JSON.stringify(report.json, null, 2)}\n`);
      process.stdout.write(`\nJSON written to ${config.jsonPath}\n`);
    }
    return bench.failures.length > 0 || skipped.length > 0 ? 1 : 0;
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  } finally {
    await cleanUp();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

// ---------------------------------------------------------------- the report

function buildReport(
  config: Config,
  env: Environment,
  contenders: Contender[],
  bench: Bench,
  rss: RssPoint[],
  finalRss: Partial<Record<ContenderKey, number | null>>,
  skipped: string[],
  startedAt: Date,
): { text: string; json: unknown } {
  const kinds: Kind[] = ['slow-down', 'slow-up', 'large-down', 'large-up', 'small-down', 'small-up', 'conc-down', 'conc-up'];
  /** Measured for the forwarders only: `direct` has no process whose memory could grow. */
  const forwardersOnly = (kind: Kind): boolean => kind.startsWith('slow');
  const summaries = new Map<string, Summary>();
  for (const kind of kinds) for (const c of contenders) summaries.set(`${kind}/${c.key}`, summarize(bench.samples, kind, c.key));
  const get = (kind: Kind, key: ContenderKey): Summary => summaries.get(`${kind}/${key}`)!;
  const out: string[] = [];
  const say = (line = ''): void => void out.push(line);
  const roundsText = config.rounds === 1 ? '1 round' : `medians of ${config.rounds} interleaved rounds`;

  say();
  say(`ftpfwd benchmark${config.quick ? ' (--quick)' : ''}: loopback, passive mode (EPSV), ${roundsText}, contenders interleaved`);
  say('MB = 10^6 bytes. CPU = user+system seconds of the forwarding process (ftpfwd\'s node, or the ssh client);');
  say('sshd CPU = sshd\'s per-connection processes over the same interval. Ratios are ftpfwd divided by the other.');
  say();
  say('Environment');
  const binding = env.ssh2NativeBinding === null ? 'unknown' : env.ssh2NativeBinding ? 'yes' : 'NO (pure JS crypto)';
  say(table(['', ''], [
    ['node', env.node],
    ['ssh2', `${env.ssh2}, native crypto binding: ${binding}`],
    ['ssh2 cipher order', env.ssh2DefaultCiphers.join(', ')],
    ['OpenSSH', env.openssh],
    ['curl', env.curl],
    ['CPU', `${env.cpuCount} x ${env.cpu}, AES-NI: ${env.aesNi ? 'yes' : 'no'}`],
    ['kernel', env.kernel],
    ['load average (1 min)', `${env.loadAtStart.toFixed(2)} at start, ${env.loadAtEnd === null ? '-' : env.loadAtEnd.toFixed(2)} at end`],
    ['test files in', env.workDir],
    ...contenders.filter((c) => c.key !== 'direct').map((c) => [`cipher ${c.label}`, c.cipher]),
  ], true).split('\n').slice(2).join('\n'));

  const ratioRows = (kindA: Kind, kindB: Kind, pick: (s: Summary) => number | null, cpu: (s: Summary) => number | null): string[][] =>
    (['ssh-default', 'ssh-aes-gcm'] as const).map((other) => {
      const label = `ftpfwd / ${contenders.find((c) => c.key === other)!.label}`;
      return [
        label,
        fmtRatio(ratio(pick(get(kindA, 'ftpfwd')), pick(get(kindA, other)))),
        fmtRatio(ratio(pick(get(kindB, 'ftpfwd')), pick(get(kindB, other)))),
        fmtRatio(ratio(cpu(get(kindA, 'ftpfwd')), cpu(get(kindA, other)))),
        fmtRatio(ratio(cpu(get(kindB, 'ftpfwd')), cpu(get(kindB, other)))),
      ];
    });
  const failedNote = (a: Summary, b: Summary): string => (a.failed + b.failed > 0 ? ` (${a.failed + b.failed} FAILED)` : '');
  const stallNote = (kindA: Kind, kindB: Kind): void => {
    const list = contenders.flatMap((c) => [get(kindA, c.key), get(kindB, c.key)]);
    const redone = list.reduce((sum, s) => sum + s.stalledAttempts, 0);
    const kept = list.reduce((sum, s) => sum + s.stalledSamples, 0);
    if (redone + kept === 0) return;
    say(`  curl idled >${STALL_SECONDS} s in set-up: ${redone} measurement(s) repeated${kept > 0 ? `, ${kept} kept after ${MAX_ATTEMPTS} attempts` : ''}`);
  };

  say();
  say(`1. Large file, ${config.sizeMiB} MiB, one curl per transfer (wall time from starting curl to its exit)`);
  say(table(
    ['contender', 'down MB/s', 'range', 'up MB/s', 'range', 'CPU s/GiB down', 'up', 'sshd CPU s/GiB down', 'up'],
    contenders.map((c) => {
      const d = get('large-down', c.key);
      const u = get('large-up', c.key);
      return [c.label + failedNote(d, u), fmt(d.mbPerSecond), fmtRange(d), fmt(u.mbPerSecond), fmtRange(u), fmt(d.forwarderCpuSecondsPerGiB, 2), fmt(u.forwarderCpuSecondsPerGiB, 2), fmt(d.sshdCpuSecondsPerGiB, 2), fmt(u.sshdCpuSecondsPerGiB, 2)];
    }),
  ));
  stallNote('large-down', 'large-up');
  say();
  say(table(['ratio (MB/s: >1 = ftpfwd faster; CPU: >1 = ftpfwd costlier)', 'down MB/s', 'up MB/s', 'CPU/GiB down', 'CPU/GiB up'],
    ratioRows('large-down', 'large-up', (s) => s.mbPerSecond, (s) => s.forwarderCpuSecondsPerGiB)));

  say();
  say(`2. ${config.files} files of ${config.fileKiB} KiB in one session: log in, then EPSV + RETR (or STOR) per file, one at a time`);
  say('   (the benchmark\'s own minimal FTP client, SOCKS5 for ssh -D: curl 7.88 idles 1 s before some data connections)');
  say(table(
    ['contender', 'down files/s', 'up files/s', 'ms/file down', 'up', 'CPU ms/file down', 'up', 'sshd CPU ms/file down', 'up'],
    contenders.map((c) => {
      const d = get('small-down', c.key);
      const u = get('small-up', c.key);
      const msPerFile = (s: Summary): string => fmt(s.filesPerSecond === null ? null : 1000 / s.filesPerSecond, 2);
      return [c.label + failedNote(d, u), fmt(d.filesPerSecond), fmt(u.filesPerSecond), msPerFile(d), msPerFile(u), fmt(d.forwarderCpuMsPerFile, 2), fmt(u.forwarderCpuMsPerFile, 2), fmt(d.sshdCpuMsPerFile, 2), fmt(u.sshdCpuMsPerFile, 2)];
    }),
  ));
  say();
  say(table(['ratio', 'down files/s', 'up files/s', 'CPU/file down', 'CPU/file up'],
    ratioRows('small-down', 'small-up', (s) => s.filesPerSecond, (s) => s.forwarderCpuMsPerFile)));

  say();
  say(`3. ${config.sessions} concurrent sessions, ${config.sessionMiB} MiB each: ${config.sessions} curl processes at once, total MB/s`);
  say(table(
    ['contender', 'down MB/s', 'range', 'up MB/s', 'range', 'CPU s/GiB down', 'up', 'sshd CPU s/GiB down', 'up'],
    contenders.map((c) => {
      const d = get('conc-down', c.key);
      const u = get('conc-up', c.key);
      return [c.label + failedNote(d, u), fmt(d.mbPerSecond), fmtRange(d), fmt(u.mbPerSecond), fmtRange(u), fmt(d.forwarderCpuSecondsPerGiB, 2), fmt(u.forwarderCpuSecondsPerGiB, 2), fmt(d.sshdCpuSecondsPerGiB, 2), fmt(u.sshdCpuSecondsPerGiB, 2)];
    }),
  ));
  stallNote('conc-down', 'conc-up');
  say();
  say(table(['ratio', 'down MB/s', 'up MB/s', 'CPU/GiB down', 'CPU/GiB up'],
    ratioRows('conc-down', 'conc-up', (s) => s.mbPerSecond, (s) => s.forwarderCpuSecondsPerGiB)));

  // The slow reader: one transfer per direction and forwarder, so its sample is the figure.
  const forwarders = contenders.filter((c) => c.proc !== null);
  const slowSample = (kind: Kind, key: ContenderKey): Sample | undefined => bench.samples.find((s) => s.kind === kind && s.contender === key);
  const slowRss = (kind: Kind, key: ContenderKey): RssTrace | null => {
    const sample = slowSample(kind, key);
    return sample?.ok === true ? (sample.rss ?? null) : null;
  };
  const growthRatio = (kind: Kind, other: ContenderKey): number | null => {
    const a = slowRss(kind, 'ftpfwd')?.growthKiB ?? null;
    const b = slowRss(kind, other)?.growthKiB ?? null;
    // Below 1 MiB (or zero, or less: memory given back) a growth is noise, and a ratio to it meaningless.
    return a === null || b === null || a < 1024 || b < 1024 ? null : a / b;
  };
  const maxRatio = (kind: Kind, other: ContenderKey): number | null => ratio(slowRss(kind, 'ftpfwd')?.maxKiB ?? null, slowRss(kind, other)?.maxKiB ?? null);
  say();
  say(`4. Slow reader: ${config.sizeMiB} MiB at ${config.slowRateMiB} MiB/s; down, curl --limit-rate reads slowly; up, an FTP server in the benchmark does.`);
  say('   Each transfer has a forwarder process of its own, new and warmed up with one small file.');
  say(`   RSS of the forwarding process: just before; max = the largest of readings every ${RSS_SAMPLE_MS} ms during the transfer and at its end,`);
  say('   or VmHWM if the transfer raised it (a peak between readings); growth = max - before.');
  say('   Backpressure holds when growth stays bounded (MiB, not the size of the file).');
  say(table(
    ['contender', 'down RSS before', 'max', 'growth', 'MB/s', 'up RSS before', 'max', 'growth', 'MB/s'],
    forwarders.map((c) => {
      const d = get('slow-down', c.key);
      const u = get('slow-up', c.key);
      const dr = slowSample('slow-down', c.key)?.rss;
      const ur = slowSample('slow-up', c.key)?.rss;
      return [
        c.label + failedNote(d, u),
        kib(dr?.beforeKiB ?? null), kib(dr?.maxKiB ?? null), signedKib(dr?.growthKiB ?? null), fmt(d.mbPerSecond),
        kib(ur?.beforeKiB ?? null), kib(ur?.maxKiB ?? null), signedKib(ur?.growthKiB ?? null), fmt(u.mbPerSecond),
      ];
    }),
  ));
  stallNote('slow-down', 'slow-up');
  say();
  say(table(['ratio (growth, max RSS: >1 = ftpfwd more; MB/s: >1 = ftpfwd faster)', 'growth down', 'growth up', 'max RSS down', 'max RSS up', 'MB/s down', 'MB/s up'],
    (['ssh-default', 'ssh-aes-gcm'] as const).map((other) => [
      `ftpfwd / ${contenders.find((c) => c.key === other)!.label}`,
      fmtRatio(growthRatio('slow-down', other)),
      fmtRatio(growthRatio('slow-up', other)),
      fmtRatio(maxRatio('slow-down', other)),
      fmtRatio(maxRatio('slow-up', other)),
      fmtRatio(ratio(get('slow-down', 'ftpfwd').mbPerSecond, get('slow-down', other).mbPerSecond)),
      fmtRatio(ratio(get('slow-up', 'ftpfwd').mbPerSecond, get('slow-up', other).mbPerSecond)),
    ])));
  say('  (growth ratio "-": one of the two growths is under 1 MiB, too small for a meaningful ratio)');

  say();
  say('5. Memory of the forwarding processes: RSS at start, peak RSS (VmHWM) after each section, RSS at the end');
  say(table(
    ['process', 'RSS at start', ...rss.map((p) => `peak after ${p.after}`), 'RSS at end'],
    forwarders.map((c) => [c.label, kib(c.rssAtStartKiB), ...rss.map((p) => kib(p.kib[c.key] ?? null)), kib(finalRss[c.key] ?? null)]),
  ));
  const peak = (key: ContenderKey): number | null => rss.at(-1)?.kib[key] ?? null;
  say();
  say(table(['ratio', 'peak RSS'], (['ssh-default', 'ssh-aes-gcm'] as const).map((other) => [
    `ftpfwd / ${contenders.find((c) => c.key === other)!.label}`,
    fmtRatio(ratio(peak('ftpfwd'), peak(other))),
  ])));

  say();
  if (bench.failures.length === 0 && skipped.length === 0) {
    say(`All ${bench.samples.length} measured transfers verified by SHA-256.`);
  } else {
    say(`FAILED: ${bench.failures.length} problem(s)${skipped.length > 0 ? `, ${skipped.length} round(s) skipped` : ''}`);
    for (const failure of bench.failures) say(`  - ${failure}`);
    for (const skip of skipped) say(`  - skipped ${skip}`);
  }
  const elapsed = (Date.now() - startedAt.getTime()) / 1000;
  say(`Run took ${elapsed.toFixed(0)} s.`);

  const json = {
    startedAt: startedAt.toISOString(),
    elapsedSeconds: elapsed,
    config,
    environment: env,
    contenders: contenders.map((c) => ({ key: c.key, label: c.label, cipher: c.cipher, pid: c.proc?.pid ?? null, rssAtStartKiB: c.rssAtStartKiB })),
    summaries: [...summaries.values()].filter((s) => s.contender !== 'direct' || !forwardersOnly(s.kind)),
    ratios: Object.fromEntries(
      (['ssh-default', 'ssh-aes-gcm', 'direct'] as const).map((other) => [
        `ftpfwd/${other}`,
        Object.fromEntries(kinds.filter((kind) => other !== 'direct' || !forwardersOnly(kind)).map((kind) => {
          const a = get(kind, 'ftpfwd');
          const b = get(kind, other);
          return [kind, {
            throughput: kind.startsWith('small') ? ratio(a.filesPerSecond, b.filesPerSecond) : ratio(a.mbPerSecond, b.mbPerSecond),
            forwarderCpu: kind.startsWith('small') ? ratio(a.forwarderCpuMsPerFile, b.forwarderCpuMsPerFile) : ratio(a.forwarderCpuSecondsPerGiB, b.forwarderCpuSecondsPerGiB),
          }];
        })),
      ]),
    ),
    slowReader: {
      bytes: config.sizeMiB * MiB,
      rateMiBPerSecond: config.slowRateMiB,
      rssSampleMs: RSS_SAMPLE_MS,
      results: forwarders.flatMap((c) => (['slow-down', 'slow-up'] as const).map((kind) => {
        const sample = slowSample(kind, c.key);
        return {
          kind,
          contender: c.key,
          ok: sample?.ok ?? false,
          mbPerSecond: sample === undefined ? null : sample.bytes / MB / sample.seconds,
          ...(sample?.rss ?? {}),
        };
      })),
      ratios: Object.fromEntries((['ssh-default', 'ssh-aes-gcm'] as const).map((other) => [
        `ftpfwd/${other}`,
        Object.fromEntries((['slow-down', 'slow-up'] as const).map((kind) => [kind, {
          rssGrowth: growthRatio(kind, other),
          maxRss: maxRatio(kind, other),
          throughput: ratio(get(kind, 'ftpfwd').mbPerSecond, get(kind, other).mbPerSecond),
        }])),
      ])),
    },
    peakRssKiB: rss,
    finalRssKiB: finalRss,
    samples: bench.samples,
    failures: bench.failures,
    skipped,
    ok: bench.failures.length === 0 && skipped.length === 0,
  };
  return { text: `${out.join('\n')}\n`, json };
}

process.exitCode = await main();
