/** Where a line came from, and errors that name it. */
import { FtpfwdError } from '../../errors.js';
import type { SshConfigSource } from './types.js';

export const COMMAND_LINE = 'command line';

function describeSource(source: SshConfigSource): string {
  if (source.option !== undefined) return `-o ${source.option}`;
  return source.line === undefined ? source.file : `${source.file} line ${source.line}`;
}

/** A bad `-o` value is a usage error, as for every other command-line option; a bad file is a config error. */
export function lineError(source: SshConfigSource, message: string, cause?: unknown): FtpfwdError {
  const details: Record<string, string | number> = { file: source.file };
  if (source.line !== undefined) details['line'] = source.line;
  return new FtpfwdError(source.option === undefined ? 'ERR_FTPFWD_CONFIG' : 'ERR_FTPFWD_USAGE', `${describeSource(source)}: ${message}`, {
    details,
    ...(cause === undefined ? {} : { cause }),
  });
}
