import { mkdir, writeFile } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import {
  ANONYMOUS_USER,
  choosePort,
  launchFtpServer,
  lookupAccount,
  prepareAnonymousTree,
  waitUntilListening,
  type FtpServerInstance,
  type FtpServerOptions,
  type FtpServerTls,
} from './ftpServer.js';
import { startProcess } from './processes.js';
import { makeTempDir } from './tmp.js';

const VSFTPD = '/usr/sbin/vsftpd';
const SECURE_CHROOT_DIR = '/var/run/vsftpd/empty';
const START_TIMEOUT_MS = 15_000;

/**
 * The root is made root-owned and 0755, as vsftpd insists; an IPv6
 * `listenAddress` makes vsftpd listen there only (`listen_ipv6`).
 */
export interface VsftpdOptions extends FtpServerOptions {
  /**
   * For many sessions at once: this many in all and from one address
   * (`max_clients`, `max_per_ip`; every session through an SSH tunnel comes
   * from the same address), and no network or PID namespace per session
   * (`isolate_network`, `isolate`): a set-up cost per log-in that has
   * nothing to do with what a benchmark of many sessions measures. Default:
   * vsftpd's own limits and isolation.
   */
  maxSessions?: number;
}

/**
 * FTPS as a hardened vsftpd does it: TLS required for logins and for every
 * data connection, and data connections must resume the control
 * connection's TLS session (require_ssl_reuse). debug_ssl logs each
 * handshake, session reuse included.
 */
export type VsftpdTls = FtpServerTls;

function tlsConfig(tls: VsftpdTls | undefined): Record<string, string | number | boolean> {
  if (tls === undefined) return {};
  return {
    ssl_enable: true,
    allow_anon_ssl: true,
    force_anon_logins_ssl: true,
    force_anon_data_ssl: true,
    force_local_logins_ssl: true,
    force_local_data_ssl: true,
    require_ssl_reuse: tls.requireReuse ?? true,
    implicit_ssl: tls.implicit ?? false,
    rsa_cert_file: tls.certFile,
    rsa_private_key_file: tls.keyFile,
    ssl_ciphers: 'HIGH',
    // vsftpd 3.0.3 has switches for TLS 1.0 to 1.2 only: TLS 1.3 stays on.
    ...(tls.version === 'TLSv1.2' ? { ssl_tlsv1: false, ssl_tlsv1_1: false } : {}),
    debug_ssl: true,
  };
}

/** The `pid` is the listening daemon's; it forks one child per session. */
export type VsftpdInstance = FtpServerInstance & { pid: number };

/** vsftpd rejects spaces around `=`, so every value is written bare, one option per line. */
function vsftpdConfig(entries: Record<string, string | number | boolean>): string {
  return Object.entries(entries)
    .map(([key, value]) => {
      const text = typeof value === 'boolean' ? (value ? 'YES' : 'NO') : String(value);
      if (/[\s=]/.test(key) || /[\r\n]/.test(text)) throw new Error(`bad vsftpd option ${key}=${text}`);
      return `${key}=${text}\n`;
    })
    .join('');
}

/** Starts an anonymous-only vsftpd in the foreground; uploads go to `/incoming`. */
export async function startVsftpd(opts: VsftpdOptions): Promise<VsftpdInstance> {
  if (userInfo().uid !== 0) throw new Error('vsftpd needs root for its anonymous chroot');
  const host = opts.listenAddress ?? '127.0.0.1';
  const port = await choosePort(opts, host);
  const root = opts.root;
  const dir = await makeTempDir('ftpfwd-vsftpd-');
  const logFile = join(dir, 'vsftpd.log');
  const instance = await launchFtpServer({ name: 'vsftpd', dir, logFiles: [logFile] }, async (adopt) => {
    const uploadDir = await prepareAnonymousTree(root, await lookupAccount(ANONYMOUS_USER));
    await mkdir(SECURE_CHROOT_DIR, { recursive: true, mode: 0o755 });
    const configFile = join(dir, 'vsftpd.conf');
    await writeFile(
      configFile,
      vsftpdConfig({
        // vsftpd listens on one family: `listen` for IPv4, `listen_ipv6` for IPv6.
        ...(isIPv6(host) ? { listen: false, listen_ipv6: true, listen_address6: host } : { listen: true, listen_ipv6: false, listen_address: host }),
        background: false,
        listen_port: port,
        anonymous_enable: true,
        local_enable: false,
        write_enable: true,
        anon_root: root,
        ftp_username: ANONYMOUS_USER,
        anon_upload_enable: true,
        anon_mkdir_write_enable: true,
        anon_other_write_enable: true,
        // Uploaded files stay world-readable, so they can be downloaded again and read by the test.
        anon_umask: '022',
        pasv_enable: true,
        port_enable: true,
        connect_from_port_20: false,
        ...(opts.pasvMinPort === undefined ? {} : { pasv_min_port: opts.pasvMinPort }),
        ...(opts.pasvMaxPort === undefined ? {} : { pasv_max_port: opts.pasvMaxPort }),
        ...(opts.maxSessions === undefined ? {} : { max_clients: opts.maxSessions, max_per_ip: opts.maxSessions, isolate_network: false, isolate: false }),
        seccomp_sandbox: false,
        hide_ids: true,
        secure_chroot_dir: SECURE_CHROOT_DIR,
        xferlog_enable: true,
        xferlog_file: join(dir, 'xferlog'),
        vsftpd_log_file: logFile,
        dual_log_enable: true,
        log_ftp_protocol: true,
        use_localtime: false,
        ...tlsConfig(opts.tls),
      }),
    );
    const proc = adopt(await startProcess(VSFTPD, [configFile], { netns: opts.netns }));
    await waitUntilListening(proc, 'vsftpd', host, port, opts.netns, START_TIMEOUT_MS);
    return { host, port, root, uploadDir, netns: opts.netns };
  });
  return { ...instance, pid: instance.pid! };
}
