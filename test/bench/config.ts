/** The benchmark's settings: units, limits, and the command line. */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const MB = 1_000_000;
export const AES_GCM = 'aes128-gcm@openssh.com';
export const FTPFWD_BIN = fileURLToPath(new URL('../../bin/ftpfwd', import.meta.url));
/** The whole run stops starting new rounds after this. */
export const RUN_BUDGET_MS = 75 * 60_000;
/** Per transfer: a floor plus the time the bytes take at this (very low) rate. */
export const TIMEOUT_FLOOR_MS = 60_000;
export const SLOWEST_RATE_BYTES_PER_MS = 5 * MB / 1000;
export const START_TIMEOUT_MS = 20_000;
/** After this many failed transfers the run gives up early. */
export const MAX_FAILURES = 10;
/** curl's set-up (connect to the start of the transfer) longer than this is its one-second idle wait. */
export const STALL_SECONDS = 0.9;
export const MAX_ATTEMPTS = 3;
/** Every wait of the small-file client (and of the slow FTP server's control connections). */
export const CLIENT_TIMEOUT_MS = 15_000;
/** How often the slow-reader section reads the forwarder's RSS. */
export const RSS_SAMPLE_MS = 150;

export interface Config {
  quick: boolean;
  sizeMiB: number;
  rounds: number;
  files: number;
  fileKiB: number;
  sessions: number;
  sessionMiB: number;
  slowRateMiB: number;
  /** Round-trip times of the delay-line sections, in ms. */
  rttsMs: number[];
  /** The file moved through the delay line, each way, per contender and round. */
  delayMiB: number;
  /** The lftp mirror: how many files, of sizes spread evenly over this range. */
  mirrorFiles: number;
  mirrorMinKiB: number;
  mirrorMaxKiB: number;
  /** Sessions started at once in the time-to-first-byte section. */
  manySessions: number;
  /** The single transfer of the memory section. */
  memoryMiB: number;
  /** Only these sections (by id), or all. */
  only: string[] | null;
  markdown: boolean;
  jsonPath: string | undefined;
  tmpBase: string | undefined;
}

/** The help text; `sectionIds`: what --only accepts. */
export function usage(sectionIds: readonly string[]): string {
  return `usage: npm run bench -- [options]
  --quick               smoke run: 1 round and small sizes (64 MiB, 30 small files, 8 sessions of 8 MiB, 16 MiB
                        through the delay line, 100 files to mirror, 50 sessions at once, 64 MiB for memory)
  --size <MiB>          large file size on loopback (default 512)
  --rounds <n>          rounds, interleaved; medians and ranges are reported (default 3)
  --files <n>           small files per session (default 100)
  --file-size <KiB>     small file size (default 1)
  --sessions <n>        concurrent sessions (default 16)
  --session-size <MiB>  file size per concurrent session (default 16)
  --slow-rate <MiB/s>   read rate of the slow-reader section, which moves the large file (default 50)
  --rtt <ms,...>        round-trip times of the delay-line sections (default 20,50,100)
  --delay-size <MiB>    file moved each way through the delay line (default 256)
  --mirror-files <n>    files in the lftp mirror section (default 1000), of 1-16 KiB
  --many-sessions <n>   sessions at once in the time-to-first-byte section (default 200)
  --memory-size <MiB>   the single transfer of the memory section (default 1024)
  --only <id,...>       run only these sections: ${sectionIds.join(', ')}
  --markdown            print the results as Markdown tables instead of text
  --json <path>         also write the results as JSON (README: node --import tsx test/bench/renderReadme.ts <path>)
  --tmp <dir>           where to put the test files (default /dev/shm when it has room, else the OS temp dir)`;
}

export function intOption(values: Record<string, string | boolean | undefined>, name: string, fallback: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, not ${String(raw)}`);
  }
  return value;
}

export class UsageError extends Error {}

/** A comma-separated list of whole numbers, e.g. `--rtt 20,50,100`. */
function listOption(raw: string | undefined, name: string, fallback: number[], min: number, max: number): number[] {
  if (raw === undefined) return fallback;
  const items = raw.split(',');
  const values = items.map(Number);
  if (items.length === 0 || items.length > 10 || items.some((item, i) => !/^\d+$/.test(item) || values[i]! < min || values[i]! > max)) {
    throw new UsageError(`--${name} must be up to 10 whole numbers from ${min} to ${max}, separated by commas, not ${raw}`);
  }
  return values;
}

export function parseConfig(argv: string[]): Config | null {
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
      rtt: { type: 'string' },
      'delay-size': { type: 'string' },
      'mirror-files': { type: 'string' },
      'many-sessions': { type: 'string' },
      'memory-size': { type: 'string' },
      only: { type: 'string' },
      markdown: { type: 'boolean' },
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
    fileKiB: intOption(values, 'file-size', 1, 1, 64 * 1024),
    sessions: intOption(values, 'sessions', quick ? 8 : 16, 1, 64),
    sessionMiB: intOption(values, 'session-size', quick ? 8 : 16, 1, 1024),
    // 512 MiB at 50 MiB/s is ~10 s per transfer: long enough for a forwarder
    // that buffers to show it, short enough for six of them in a default run
    // of about four minutes.
    slowRateMiB: intOption(values, 'slow-rate', 50, 1, 10_000),
    rttsMs: listOption(values.rtt, 'rtt', [20, 50, 100], 1, 2_000),
    // 256 MiB at 20 MB/s (2 MiB window, 100 ms) is ~13 s a transfer.
    delayMiB: intOption(values, 'delay-size', quick ? 16 : 256, 1, 4 * 1024),
    mirrorFiles: intOption(values, 'mirror-files', quick ? 100 : 1000, 1, 20_000),
    mirrorMinKiB: 1,
    mirrorMaxKiB: 16,
    manySessions: intOption(values, 'many-sessions', quick ? 50 : 200, 1, 500),
    memoryMiB: intOption(values, 'memory-size', quick ? 64 : 1024, 1, 16 * 1024),
    only: values.only === undefined ? null : values.only.split(',').map((id) => id.trim()).filter((id) => id !== ''),
    markdown: values.markdown ?? false,
    jsonPath: values.json,
    tmpBase: values.tmp,
  };
}
