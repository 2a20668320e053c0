/**
 * What every section of the benchmark gets: the settings, the servers, the
 * contenders, the test files, and the place its measurements go. A section
 * is one module that measures (`run`) and then says what it found (`report`);
 * sections/index.ts lists them in the order they run.
 */
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import type { SshdInstance } from '../helpers/sshd.js';
import type { VsftpdInstance } from '../helpers/vsftpd.js';
import { MiB, type Config } from './config.js';
import type { Contender, ContenderKey, FtpAddress, SshEndpoint } from './contenders.js';
import type { Environment } from './environment.js';
import { inSession } from './ftpClient.js';
import { errorText, sha256, type Bench, type Kind } from './measure.js';
import type { SlowFtpServer } from './slowFtpServer.js';
import type { Summary } from './summary.js';

export interface Files {
  large: string;
  largeSum: string;
  conc: string;
  concSum: string;
  /** Small files: name (in the FTP folder `small/`) to contents. */
  small: Map<string, Buffer>;
  smallSums: Map<string, string>;
}

export async function prepareFiles(config: Config, root: string, work: string): Promise<Files> {
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

export interface RssPoint {
  after: string;
  kib: Partial<Record<ContenderKey, number | null>>;
}

export interface BenchContext {
  config: Config;
  env: Environment;
  bench: Bench;
  sshd: SshdInstance;
  vsftpd: VsftpdInstance;
  slowServer: SlowFtpServer;
  /** How long one slow-reader transfer may take (ms). */
  slowTimeoutMs: number;
  files: Files;
  /** The FTP server's root (sections may add files of their own), and the run's own directory. */
  ftpRoot: string;
  workDir: string;
  /** Where downloads are written. */
  clientDir: string;
  /** HOME of the contenders' processes. */
  home: string;
  /** The contenders that stay up for the whole run, `direct` first. */
  contenders: Contender[];
  byKey(key: ContenderKey): Contender;
  /**
   * Starts a new forwarder like `key` (one of FORWARDERS) through `endpoint`
   * (default: sshd itself), with a listener or route for `slow` if given;
   * it is stopped at the end of the run at the latest.
   */
  startContender(key: ContenderKey, endpoint?: SshEndpoint, slow?: FtpAddress): Promise<Contender>;
  /** False (and noted) when the run is interrupted, has failed too often or is out of time. */
  roundAllowed(section: string, round: number): boolean;
  /** Stopped at the end of the run, in reverse order, even when the run fails. */
  addCleanup(cleanup: () => Promise<void>): void;
}

/** Removes each file; a missing one is fine. */
export async function removeAll(paths: string[]): Promise<void> {
  for (const path of paths) await rm(path, { force: true });
}

/** What a section's report reads, and where it writes. */
export interface ReportContext {
  config: Config;
  contenders: Contender[];
  bench: Bench;
  /** The summary of one kind of measurement through one contender. */
  get(kind: Kind, key: ContenderKey): Summary;
  /** The section's heading; the report numbers it. */
  heading(text: string): void;
  /** A line of explanation under the heading or a table. */
  note(text: string): void;
  table(header: string[], rows: string[][]): void;
  /**
   * A row of the summary at the top of the report: the figure's name, then
   * one cell per forwarder (FORWARDERS), then ftpfwd's ratio to each of
   * BASELINES (see headlineRow in summary.ts).
   */
  headline(row: string[]): void;
  /** The forwarders' VmHWM after each section that has an rssLabel. */
  rss: RssPoint[];
  /** Their VmRSS at the end. */
  finalRss: Partial<Record<ContenderKey, number | null>>;
}

export interface Section {
  /** Short name, for progress lines and skipped rounds. */
  id: string;
  /** What it measures, for the JSON summaries and ratios, in report order. */
  kinds(config: Config): readonly Kind[];
  /** Kinds measured only for the forwarding processes (not `direct`). */
  forwardersOnly?: boolean;
  /** Measures. Problems go to ctx.bench; nothing is thrown for a failed transfer. */
  run(ctx: BenchContext): Promise<void>;
  /** Its part of the report, from the samples. */
  report(r: ReportContext): void;
  /** After it runs, the forwarders' VmHWM is recorded under this label, if given. */
  rssLabel?: string;
  /** Further top-level entries of the JSON results. */
  json?(r: ReportContext): Record<string, unknown>;
}

/** Logs in through `contender` and fetches the first small file; throws unless it arrives intact. */
export async function warmUp(ctx: BenchContext, contender: Contender): Promise<void> {
  const [name, contents] = [...ctx.files.small][0]!;
  let received: Buffer = Buffer.alloc(0);
  const outcome = await inSession(contender, async (session) => {
    received = await session.get(`small/${name}`);
  });
  if (outcome.problems.length > 0 || !received.equals(contents)) throw new Error(`warm-up via ${contender.label}: ${outcome.problems.join('; ') || 'wrong data'}`);
}

/**
 * Runs `measure` with a new forwarder like `key` (its memory not yet used by
 * earlier transfers), warmed up with one small file; stops it after. A
 * failure to start it is recorded as one of `kind`.
 */
export async function withFreshForwarder(
  ctx: BenchContext,
  key: ContenderKey,
  kind: Kind,
  slow: FtpAddress | undefined,
  measure: (contender: Contender, pid: number) => Promise<void>,
): Promise<void> {
  let fresh: Contender | undefined;
  try {
    fresh = await ctx.startContender(key, ctx.sshd, slow);
    await warmUp(ctx, fresh);
    await measure(fresh, fresh.proc!.pid);
  } catch (error) {
    ctx.bench.failures.push(`${kind} via ${fresh?.label ?? key}: ${errorText(error)}`);
  } finally {
    await fresh?.proc?.stop();
  }
}
