/** The benchmark's settings: units, limits, and the command line. */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const MB = 1_000_000;
export const AES_GCM = 'aes128-gcm@openssh.com';
export const FTPFWD_BIN = fileURLToPath(new URL('../../bin/ftpfwd', import.meta.url));
/** The whole run stops starting new rounds after this. */
export const RUN_BUDGET_MS = 30 * 60_000;
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
  jsonPath: string | undefined;
  tmpBase: string | undefined;
}

export const USAGE = `usage: npm run bench -- [options]
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
