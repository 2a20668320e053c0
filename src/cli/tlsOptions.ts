import { Option, type Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { errorCode, errorMessage, FtpfwdError } from '../errors.js';
import type { ClientTlsOptions, FtpTlsOptions } from '../session/tlsSettings.js';
import type { ListenerSpec } from '../tunnel.js';

/** The command line's TLS options (see addTlsOptions). */
export interface TlsCliOptions {
  ftpTls?: 'explicit' | 'implicit';
  ftpTlsCa?: string;
  ftpTlsFingerprint: string[];
  ftpTlsServername?: string;
  ftpTlsInsecure?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsImplicit?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function addTlsOptions(program: Command): Command {
  return program
    .addOption(new Option('--ftp-tls <mode>', 'speak TLS to the FTP servers (FTPS): "explicit" (AUTH TLS) or "implicit" (TLS from the first byte, usually port 990)').choices(['explicit', 'implicit']))
    .option('--ftp-tls-ca <file>', "PEM file of the CAs that sign the FTP server's certificate (default: the system CA store)")
    .option('--ftp-tls-fingerprint <SHA256:...>', "accept only the FTP server certificate with this SHA-256 fingerprint, whatever its CA and names (repeatable)", collect, [])
    .option('--ftp-tls-servername <name>', "the name the FTP server's certificate must carry (default: the FTP host of -L)")
    .option('--ftp-tls-insecure', "accept any FTP server certificate (every session logs a warning)")
    .option('--tls-cert <file>', 'PEM certificate (chain) to serve TLS to FTP clients with: AUTH TLS is then accepted')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--tls-implicit', 'serve implicit TLS (TLS from the first byte) to FTP clients instead of AUTH TLS');
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new FtpfwdError('ERR_FTPFWD_CONFIG', `cannot read the ${what} file ${file}: ${errorCode(error) ?? errorMessage(error)}`, { cause: error });
  }
}

function usage(message: string): FtpfwdError {
  return new FtpfwdError('ERR_FTPFWD_USAGE', message);
}

/** TLS to the FTP servers and from the clients, from the command line; options that make no sense together are refused. */
export async function toTlsSettings(options: TlsCliOptions, listeners: readonly ListenerSpec[]): Promise<{ ftpTls?: FtpTlsOptions; clientTls?: ClientTlsOptions }> {
  const hasForward = listeners.some((spec) => spec.kind === 'ftp');
  const serverDetails: Array<[string, boolean]> = [
    ['--ftp-tls-ca', options.ftpTlsCa !== undefined],
    ['--ftp-tls-fingerprint', options.ftpTlsFingerprint.length > 0],
    ['--ftp-tls-servername', options.ftpTlsServername !== undefined],
    ['--ftp-tls-insecure', options.ftpTlsInsecure !== undefined],
  ];
  const detail = serverDetails.find(([, given]) => given);
  if (options.ftpTls === undefined && detail !== undefined) throw usage(`${detail[0]} needs --ftp-tls explicit or implicit`);
  if (options.ftpTlsInsecure && (options.ftpTlsFingerprint.length > 0 || options.ftpTlsCa !== undefined)) {
    throw usage('--ftp-tls-insecure accepts any certificate: it cannot be combined with --ftp-tls-ca or --ftp-tls-fingerprint');
  }
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw usage('--tls-cert and --tls-key go together');
  if (options.tlsImplicit && options.tlsCert === undefined) throw usage('--tls-implicit needs --tls-cert and --tls-key');
  if (!hasForward && (options.ftpTls !== undefined || options.tlsCert !== undefined)) {
    throw usage(`${options.ftpTls !== undefined ? '--ftp-tls' : '--tls-cert'} is for FTP forwards, but only SFTP bridge listeners were given`);
  }
  const result: { ftpTls?: FtpTlsOptions; clientTls?: ClientTlsOptions } = {};
  if (options.ftpTls !== undefined) {
    result.ftpTls = {
      mode: options.ftpTls,
      ...(options.ftpTlsCa === undefined ? {} : { ca: await readPem(options.ftpTlsCa, 'CA certificate'), caSource: `--ftp-tls-ca ${options.ftpTlsCa}` }),
      ...(options.ftpTlsFingerprint.length === 0 ? {} : { fingerprints: options.ftpTlsFingerprint }),
      ...(options.ftpTlsServername === undefined ? {} : { servername: options.ftpTlsServername }),
      insecure: options.ftpTlsInsecure ?? false,
    };
  }
  if (options.tlsCert !== undefined && options.tlsKey !== undefined) {
    result.clientTls = { cert: await readPem(options.tlsCert, 'TLS certificate'), key: await readPem(options.tlsKey, 'TLS key'), implicit: options.tlsImplicit ?? false };
  }
  return result;
}
