import { prettyLine, type LogRecord, type PrettyOptions } from './prettyLines.js';

/** What pino writes to: one call per record, a JSON line. */
export interface LineSink {
  write(line: string): unknown;
}

/**
 * The pretty format as a stream of pino's own, in the same thread: each
 * JSON record is turned into its line and written on at once, so the
 * records keep every field (redaction included) and there is one logging
 * path whatever the format.
 */
export function prettySink(destination: LineSink, options: PrettyOptions): LineSink {
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
