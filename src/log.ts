import pino, { type Logger, type LevelWithSilent } from 'pino';
import type { LineSink } from './logging/prettySink.js';

export type LogFormat = 'pretty' | 'json';

export interface LoggerOptions {
  level: LevelWithSilent;
  format: LogFormat;
  /** Where log lines go; stderr by default, so stdout stays free for scripts. */
  destination?: NodeJS.WritableStream;
  /** Colours in the pretty format; by default when it goes to stderr and stderr is a terminal. */
  colors?: boolean;
}

/**
 * Paths to values that must never reach a log, whatever object they turn up
 * in (pino's redact): passwords, passphrases, key material.
 */
const REDACTED_PATHS = ['password', 'passphrase', 'privateKey', 'key', '*.password', '*.passphrase', '*.privateKey'];

/**
 * A logger writing JSON lines, or the pretty format's one line per record.
 * Asynchronous because the pretty format's code is loaded only when it is
 * asked for: a service logging JSON does not load it at start-up.
 */
export async function createLogger(options: LoggerOptions): Promise<Logger> {
  const base = { level: options.level, base: null, redact: { paths: REDACTED_PATHS, censor: '****' } } as const;
  // A synchronous write to stderr rather than a worker-thread transport:
  // lines written just before exit are not lost.
  const destination = options.destination === process.stderr ? undefined : options.destination;
  const sink: LineSink = destination ?? pino.destination({ dest: 2, sync: true });
  if (options.format === 'pretty') {
    const { prettySink } = await import('./logging/prettySink.js');
    const colors = options.colors ?? (destination === undefined && process.stderr.isTTY);
    return pino(base, prettySink(sink, { colors, serverReplies: options.level === 'trace' }));
  }
  return pino(base, sink);
}

/** A logger that drops everything, for library users who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
