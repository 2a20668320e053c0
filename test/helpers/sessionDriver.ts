import { fileURLToPath } from 'node:url';
import type { SessionMode } from './inProcessSessions.js';
import type { MemoryFigures } from './memoryProbe.js';
import { run } from './processes.js';

/*
 * Many FTP sessions in one process (sessionDriverMain.ts), so that they can
 * run inside a network namespace (Node cannot enter one itself).
 *
 * `soak`: sessions one after another, each login, one download, QUIT. Each
 * of `streams` runs its sessions in sequence, cycling through its targets,
 * alongside the other streams (one stream per ftpfwd process keeps every
 * process's sessions sequential). Every `sampleEvery` sessions in all, and
 * at the end, the streams stop between sessions and the watched processes'
 * descriptors and RSS and the bastion's listening sockets are sampled.
 * `load`: `sessions` sessions logged in at once over one listener, then each
 * downloads, lists and quits, all at the same time.
 *
 * The process prints one JSON object per line: `sample` records (soak),
 * then one `done` record (DriverReport).
 */

export interface DriverTarget {
  host: string;
  port: number;
  mode: SessionMode;
}

export interface CommonConfig {
  sessions: number;
  /** The file on disk that the FTP path `remotePath` serves. */
  localFile: string;
  remotePath: string;
  /** Per reply and per data connection. */
  timeoutMs: number;
}

export interface SoakConfig extends CommonConfig {
  kind: 'soak';
  streams: DriverTarget[][];
  sampleEvery: number;
  /** ftpfwd processes to sample. */
  pids: number[];
  /** Where they report their memory after a full collection: they were started with memoryProbeArgs(memoryProbeDir). */
  memoryProbeDir: string;
  bastionNetns: string;
  /** Stop after this many failed sessions. */
  maxFailures: number;
}

export interface LoadConfig extends CommonConfig {
  kind: 'load';
  host: string;
  port: number;
  /** Session i uses modes[i % modes.length]. */
  modes: SessionMode[];
  /**
   * Logins under way at once. vsftpd listens with a backlog of 32: a burst
   * of hundreds of connections overflows it, and the connections the
   * kernel then drops get no greeting, with or without ftpfwd.
   */
  loginConcurrency: number;
  pid: number;
}

export type DriverConfig = SoakConfig | LoadConfig;

export interface ResourceSample {
  session: number;
  elapsedMs: number;
  processes: Array<{ pid: number; fds: number } & MemoryFigures>;
  bastionListening: number;
}

export interface DriverReport {
  sessions: number;
  ok: number;
  /** The first few failures' messages. */
  failures: string[];
  failed: number;
  /** Failures in which some reply was a 421. */
  with421: number;
  durationMs: number;
  /** Per-session times in ms (soak: whole session; load: connect to 221). */
  sessionMs: { p50: number; p99: number; max: number };
  /** soak: the same per target, as `port mode`. */
  byTarget?: Record<string, { p50: number; p99: number; max: number }>;
  /** load: connect to logged in, and logged in to 221 (after all were logged in). */
  loginMs?: { p50: number; p99: number; max: number };
  workMs?: { p50: number; p99: number; max: number };
  /** load: the largest VmRSS seen while it ran, and VmHWM at the end (KiB). */
  peakRssKiB?: number;
  hwmKiB?: number;
}

const MAIN = fileURLToPath(new URL('./sessionDriverMain.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the driver inside `netns` and returns its report; throws with its output if it fails or outlives `timeoutMs`. */
export async function runSessionDriver(config: DriverConfig, netns: string, timeoutMs: number): Promise<{ report: DriverReport; samples: ResourceSample[] }> {
  const result = await run(process.execPath, ['--import', 'tsx', MAIN, JSON.stringify(config)], { netns, cwd: REPO_ROOT, timeoutMs });
  const records = result.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { event: string });
  const done = records.find((record) => record.event === 'done');
  if (done === undefined || result.code !== 0) {
    throw new Error(`session driver failed (${result.timedOut ? 'timed out' : `exit ${String(result.code)}`}):\n${result.stderr.slice(-3000)}\n${result.stdout.slice(-2000)}`);
  }
  return {
    report: done as unknown as DriverReport,
    samples: records.filter((record) => record.event === 'sample') as unknown as ResourceSample[],
  };
}
