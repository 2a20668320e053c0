import { existsSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { findServerBinary, type ServerBinary } from './debPackages.js';
import {
  ANONYMOUS_USER,
  choosePort,
  lookupAccount,
  prepareAnonymousTree,
  launchFtpServer,
  waitUntilListening,
  withBindMount,
  type FtpServerInstance,
  type FtpServerOptions,
} from './ftpServer.js';
import { startProcess } from './processes.js';
import { makeTempDir } from './tmp.js';

const PACKAGE = 'pure-ftpd';
const BINARY = '/usr/sbin/pure-ftpd';
const START_TIMEOUT_MS = 15_000;

export type PureFtpdOptions = FtpServerOptions;
export type PureFtpdInstance = FtpServerInstance;

/** The pure-ftpd binary: installed, or unpacked from the pure-ftpd package (it conflicts with vsftpd). */
export function findPureFtpd(): Promise<ServerBinary> {
  return findServerBinary(PACKAGE, BINARY);
}

/**
 * Starts an anonymous-only pure-ftpd in the foreground, bound with
 * `-S host,port`. Anonymous users may download anything and upload into
 * `/incoming` (pure-ftpd allows anonymous uploads wherever the directory is
 * writable by `ftp`, unless `-i`). Needs root (mount namespace, chroot).
 */
export async function startPureFtpd(opts: PureFtpdOptions): Promise<PureFtpdInstance> {
  if (userInfo().uid !== 0) throw new Error('pure-ftpd needs root for its mount namespace and anonymous chroot');
  const binary = await findPureFtpd();
  const host = opts.listenAddress ?? '127.0.0.1';
  const port = await choosePort(opts, host);
  const root = opts.root;
  const dir = await makeTempDir('ftpfwd-pureftpd-');
  const transferLog = join(dir, 'transfer.log');
  return launchFtpServer({ name: 'pure-ftpd', dir, logFiles: [transferLog] }, async (adopt) => {
    await chmod(dir, 0o755);
    const ftp = await lookupAccount(ANONYMOUS_USER);
    if (ftp.home === '' || !existsSync(ftp.home)) {
      throw new Error(`pure-ftpd serves the home directory of the ${ANONYMOUS_USER} account (${ftp.home || 'none'}), which does not exist`);
    }
    const uploadDir = await prepareAnonymousTree(root, ftp);
    const args = [
      '-S',
      `${host},${port}`,
      '-4', // IPv4 only
      '-e', // anonymous only
      '-M', // anonymous users may create directories
      '-H', // no reverse DNS
      '-c',
      '64', // clients in all
      '-C',
      '64', // clients per IP: every test client comes from one address
      '-g',
      join(dir, 'pure-ftpd.pid'),
      '-O',
      `clf:${transferLog}`,
      ...(opts.pasvMinPort !== undefined && opts.pasvMaxPort !== undefined ? ['-p', `${opts.pasvMinPort}:${opts.pasvMaxPort}`] : []),
      // -Y 2: TLS required for the control connection and for every data connection.
      ...(opts.tls === undefined ? [] : ['-Y', '2', '-2', `${opts.tls.certFile},${opts.tls.keyFile}`]),
    ];
    // pure-ftpd serves anonymous users from the ftp account's home directory
    // and has no option to change it: mount `root` over it, privately.
    const [cmd, argv] = withBindMount(root, ftp.home, [binary.path, ...args]);
    const proc = adopt(await startProcess(cmd, argv, { netns: opts.netns, env: binary.env }));
    await waitUntilListening(proc, 'pure-ftpd', host, port, opts.netns, START_TIMEOUT_MS);
    return { host, port, root, uploadDir, netns: opts.netns };
  });
}
