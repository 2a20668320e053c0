import { Option, type Command } from 'commander';
import type { FtpLogin } from '../bridge/bridge.js';
import { FtpfwdError } from '../errors.js';
import type { BridgeSettings, ListenerSpec } from '../tunnel.js';
import { readSecret } from './secrets.js';

/** The command line's SFTP bridge options (see addBridgeOptions). */
export interface BridgeCliOptions {
  ftpAuth?: 'ssh' | 'password';
  ftpUser?: string;
  ftpPasswordFile?: string;
  ftpPasswordEnv?: string;
  sftpRoot?: string;
  sftpAtomicUploads?: boolean;
}

export function addBridgeOptions(program: Command): Command {
  return program
    .addOption(
      new Option('--ftp-auth <mode>', 'SFTP bridge logins: "ssh" (each FTP USER/PASS is the SSH login of its own connection) or "password" (--ftp-password-file/-env)').choices([
        'ssh',
        'password',
      ]),
    )
    .option('--ftp-user <name>', 'SFTP bridge: the FTP user name to accept with --ftp-password-file/-env (default: the SSH user)')
    .option('--ftp-password-file <file>', 'SFTP bridge: read the FTP password clients must give from this file (first line)')
    .option('--ftp-password-env <name>', 'SFTP bridge: read the FTP password clients must give from this environment variable')
    .option('--sftp-root <path>', 'SFTP bridge: confine sessions to this directory on the SSH server')
    .option('--sftp-atomic-uploads', 'SFTP bridge: upload to a temporary name and rename it into place when complete');
}

/**
 * The bridge's settings from the command line. Nobody gets files without
 * a credential: a bridge listener needs `--ftp-auth ssh` or an FTP
 * password, and the bridge options without a bridge listener are a
 * mistake worth pointing out.
 */
export async function toBridgeSettings(
  options: BridgeCliOptions,
  listeners: readonly ListenerSpec[],
  sshUser: string,
  env: Record<string, string | undefined>,
): Promise<BridgeSettings | undefined> {
  const hasBridge = listeners.some((spec) => spec.kind === 'sftp');
  const given = (['ftpAuth', 'ftpUser', 'ftpPasswordFile', 'ftpPasswordEnv', 'sftpRoot', 'sftpAtomicUploads'] as const).filter((key) => options[key] !== undefined);
  if (!hasBridge) {
    if (given.length > 0) throw new FtpfwdError('ERR_FTPFWD_USAGE', `--${given[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is for the SFTP bridge, but no -L [bind_address:]port:sftp: listener was given`);
    return undefined;
  }
  const password = await readSecret('FTP password', options.ftpPasswordFile, options.ftpPasswordEnv, env);
  const mode = options.ftpAuth ?? (password !== undefined ? 'password' : undefined);
  let login: FtpLogin;
  if (mode === 'ssh') {
    if (password !== undefined || options.ftpUser !== undefined) {
      throw new FtpfwdError('ERR_FTPFWD_USAGE', '--ftp-auth ssh logs each FTP user in to SSH with their own password: --ftp-user and --ftp-password-file/-env do not apply');
    }
    login = { kind: 'ssh' };
  } else if (mode === 'password') {
    if (password === undefined) throw new FtpfwdError('ERR_FTPFWD_USAGE', '--ftp-auth password needs --ftp-password-file or --ftp-password-env');
    if (password === '') throw new FtpfwdError('ERR_FTPFWD_CONFIG', 'the FTP password is empty');
    login = { kind: 'account', account: { user: options.ftpUser ?? sshUser, password } };
  } else {
    throw new FtpfwdError(
      'ERR_FTPFWD_USAGE',
      'an SFTP bridge listener must not serve files without a login: give --ftp-auth ssh (FTP users log in to SSH with their own password) or --ftp-password-file/--ftp-password-env',
    );
  }
  return { login, ...(options.sftpRoot === undefined ? {} : { root: options.sftpRoot }), atomicUploads: options.sftpAtomicUploads ?? false };
}
