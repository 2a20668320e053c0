import pino, { type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'pretty' | 'json';

export interface LoggerOptions {
  level: LevelWithSilent;
  format: LogFormat;
  /** Where log lines go; stderr by default, so stdout stays free for scripts. */
  destination?: NodeJS.WritableStream;
}

/**
 * Paths to values that must never reach a log, whatever object they turn up
 * in (pino's redact): passwords, passphrases, key material.
 */
const REDACTED_PATHS = ['password', 'passphrase', 'privateKey', 'key', '*.password', '*.passphrase', '*.privateKey'];

export function createLogger(options: LoggerOptions): Logger {
  const base = { level: options.level, base: null, redact: { paths: REDACTED_PATHS, censor: '****' } } as const;
  const destination = options.destination ?? process.stderr;
  if (options.format === 'pretty') {
    // A synchronous stream rather than a transport: no worker thread, and
    // lines written just before exit are not lost.
    return pino(base, pretty({ destination, colorize: destination === process.stderr && process.stderr.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true }));
  }
  return pino(base, destination === process.stderr ? pino.destination({ dest: 2, sync: true }) : destination);
}

/** A logger that drops everything, for library users who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
