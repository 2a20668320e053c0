import { readFile } from 'node:fs/promises';
import { FtpfwdError } from '../errors.js';

/**
 * A password or passphrase for scripts: from a file (its first line) or an
 * environment variable named on the command line. Never from the command
 * line itself, where every user of the machine could read it in `ps`.
 */
export async function readSecret(what: string, file: string | undefined, envName: string | undefined, env: Record<string, string | undefined>): Promise<string | undefined> {
  if (file !== undefined && envName !== undefined) {
    throw new FtpfwdError('ERR_FTPFWD_USAGE', `give the ${what} either from a file or from the environment, not both`);
  }
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'read error';
      throw new FtpfwdError('ERR_FTPFWD_CONFIG', `cannot read the ${what} file ${file}: ${code}`, { cause: error });
    }
    return text.split(/\r?\n/, 1)[0] ?? '';
  }
  if (envName !== undefined) {
    const value = env[envName];
    if (value === undefined) throw new FtpfwdError('ERR_FTPFWD_CONFIG', `environment variable ${envName} (the ${what}) is not set`);
    return value;
  }
  return undefined;
}
