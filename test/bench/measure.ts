/** Timing one measurement, verifying it, and the samples it leaves. */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sha256File } from '../helpers/files.js';
import { run, type RunResult } from '../helpers/processes.js';
import { MAX_ATTEMPTS, MAX_FAILURES, MB, SLOWEST_RATE_BYTES_PER_MS, STALL_SECONDS, TIMEOUT_FLOOR_MS } from './config.js';
import { curlRoute, type Contender, type ContenderKey } from './contenders.js';
import { cpuSeconds, descendantsCpuSeconds, type RssTrace } from './proc.js';
import { fmt, kib, signedKib } from './summary.js';

/** What was measured, e.g. 'large-down'; each section names its own. */
export type Kind = string;

export interface Sample {
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
  /** Further figures of this one measurement (e.g. time to first byte, peak RSS), by name. */
  metrics?: Record<string, number>;
}

export interface TransferOutcome {
  problems: string[];
  /** curl processes whose set-up took longer than STALL_SECONDS. */
  stalls: number;
}

export interface Measurement {
  bytes: number;
  files: number;
  /** Untimed, before every attempt: remove what an earlier attempt left. */
  prepare: () => Promise<void>;
  transfer: () => Promise<TransferOutcome>;
  /** Untimed, after the transfer: problems with the result. */
  verify: () => Promise<string[]>;
  /** The RSS trace of the last attempt, if `transfer` took one. */
  rss?: () => RssTrace | null;
  /** Further figures of the last attempt, read after `verify`. */
  metrics?: () => Record<string, number>;
}

/** Set on SIGINT/SIGTERM: nothing more is measured or reported while clean-up runs. */
let interrupted = false;

export function interrupt(): void {
  interrupted = true;
}

export function isInterrupted(): boolean {
  return interrupted;
}

export class Bench {
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
        ...(m.metrics === undefined ? {} : { metrics: m.metrics() }),
      });
      const mark = (ok ? '' : '  FAILED') + (outcome.stalls > 0 ? '  (curl stalled)' : '');
      const rate = `${fmt(m.bytes / MB / seconds)} MB/s${m.files > 1 ? `, ${fmt(m.files / seconds)} files/s` : ''}`;
      const memory = rss === null ? '' : `  RSS ${kib(rss.beforeKiB)} -> max ${kib(rss.maxKiB)} (${signedKib(rss.growthKiB)}, ${rss.samples} samples)`;
      process.stderr.write(`  round ${round + 1} ${kind.padEnd(10)} ${contender.label.padEnd(33)} ${seconds.toFixed(2).padStart(7)} s  ${rate}${memory}${mark}\n`);
      return;
    }
  }

  get tooManyFailures(): boolean {
    return this.failures.length >= MAX_FAILURES;
  }
}

export function transferTimeoutMs(bytes: number): number {
  return TIMEOUT_FLOOR_MS + Math.ceil(bytes / SLOWEST_RATE_BYTES_PER_MS);
}

/** Printed by curl after each transfer: set-up time and total time, in seconds. */
export const CURL_TIMES = '%{time_pretransfer} %{time_total} %{time_starttransfer}\\n';

/**
 * curl in passive mode (it sends EPSV first); `-sS` keeps its progress meter
 * quiet but shows errors; `-w` reports its set-up time on stdout.
 */
export function curl(contender: Contender, args: string[], timeoutMs: number, verbose = false): Promise<RunResult> {
  const seconds = Math.ceil(timeoutMs / 1000);
  const flags = ['-sS', '--fail', '--ftp-pasv', '--max-time', String(seconds), '-w', CURL_TIMES, ...(verbose ? ['-v'] : [])];
  return run('curl', [...flags, ...curlRoute(contender), ...args], { timeoutMs: timeoutMs + 5_000 });
}

/** `rttMs`: the round-trip time of the path, whose log-in round trips are not a stall. */
/** Round trips of curl's log-in and data set-up (greeting, USER, PASS, PWD, EPSV, TYPE, SIZE, the SSH channels...), generously. */
const SET_UP_ROUND_TRIPS = 12;

export function curlOutcome(results: RunResult[], rttMs = 0): TransferOutcome {
  const stallSeconds = STALL_SECONDS + (SET_UP_ROUND_TRIPS * rttMs) / 1000;
  const problems: string[] = [];
  let stalls = 0;
  for (const result of results) {
    if (result.code !== 0) {
      const why = result.timedOut ? 'timed out' : `exit ${String(result.code ?? result.signal)}`;
      problems.push(`curl ${why}: ${result.stderr.trim().split('\n').slice(-2).join(' | ')}`);
      continue;
    }
    const setUp = Number(result.stdout.trim().split(/\s+/)[0]);
    if (Number.isFinite(setUp) && setUp > stallSeconds) stalls += 1;
  }
  return { problems, stalls };
}

export async function checkFile(path: string, expected: string, what: string): Promise<string[]> {
  try {
    const actual = await sha256File(path);
    return actual === expected ? [] : [`${what}: SHA-256 mismatch (${actual.slice(0, 12)}... instead of ${expected.slice(0, 12)}...)`];
  } catch (error) {
    return [`${what}: ${error instanceof Error ? error.message : String(error)}`];
  }
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Rotates the contenders so each round starts with a different one. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
