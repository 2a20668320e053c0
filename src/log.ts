import pino, { type Logger, type LevelWithSilent } from 'pino';
import { prettyLine, type LogRecord, type PrettyOptions } from './logging/prettyLines.js';

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

/** What pino writes to: one call per record, a JSON line. */
interface LineSink {
  write(line: string): unknown;
}

export function createLogger(options: LoggerOptions): Logger {
  const base = { level: options.level, base: null, redact: { paths: REDACTED_PATHS, censor: '****' } } as const;
  // A synchronous write to stderr rather than a worker-thread transport:
  // lines written just before exit are not lost.
  const destination = options.destination === process.stderr ? undefined : options.destination;
  const sink: LineSink = destination ?? pino.destination({ dest: 2, sync: true });
  if (options.format === 'pretty') {
    const colors = options.colors ?? (destination === undefined && process.stderr.isTTY);
    return pino(base, prettySink(sink, { colors, serverReplies: options.level === 'trace' }));
  }
  return pino(base, sink);
}

/**
 * The pretty format as a stream of pino's own, in the same thread: each
 * JSON record is turned into its line and written on at once, so the
 * records keep every field (redaction included) and there is one logging
 * path whatever the format.
 */
function prettySink(destination: LineSink, options: PrettyOptions): LineSink {
  return {
    write(json: string): boolean {
      let record: LogRecord;
      try {
        record = JSON.parse(json) as LogRecord;
      } catch {
        destination.write(json);
        return true;
      }
      const line = prettyLine(record, options);
      if (line !== null) destination.write(`${line}\n`);
      return true;
    },
  };
}

/** A logger that drops everything, for library users who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
