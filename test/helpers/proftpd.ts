import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { findServerBinary, unpackDebianPackage, type ServerBinary } from './debPackages.js';
import {
  ANONYMOUS_USER,
  choosePort,
  groupExists,
  lookupAccount,
  prepareAnonymousTree,
  launchFtpServer,
  waitUntilListening,
  withBindMount,
  type FtpServerInstance,
  type FtpServerOptions,
  type FtpServerTls,
} from './ftpServer.js';
import { startProcess } from './processes.js';
import { makeTempDir } from './tmp.js';

const PACKAGE = 'proftpd-core';
/** mod_tls lives in a package of its own, unpacked beside proftpd-core. */
const TLS_PACKAGE = 'proftpd-mod-crypto';
const INSTALLED_MODULES = '/usr/lib/proftpd';
const BINARY = '/usr/sbin/proftpd';
const START_TIMEOUT_MS = 15_000;

export type ProftpdOptions = FtpServerOptions;
export type ProftpdInstance = FtpServerInstance;

/** The proftpd binary: installed, or unpacked from proftpd-core (it conflicts with vsftpd). */
export function findProftpd(): Promise<ServerBinary> {
  return findServerBinary(PACKAGE, BINARY);
}

/** proftpd directive arguments here are paths and names: refuse anything that would need quoting. */
function bare(value: string): string {
  if (!/^[A-Za-z0-9_./:-]+$/.test(value)) throw new Error(`value not usable in proftpd.conf: ${JSON.stringify(value)}`);
  return value;
}

function proftpdConfig(o: {
  host: string;
  port: number;
  root: string;
  dir: string;
  group: string;
  pasvMinPort: number | undefined;
  pasvMaxPort: number | undefined;
  tls: { settings: FtpServerTls; modulePath: string } | undefined;
}): string {
  const passivePorts = o.pasvMinPort !== undefined && o.pasvMaxPort !== undefined ? [`PassivePorts ${o.pasvMinPort} ${o.pasvMaxPort}`] : [];
  return [
    'ServerName "ftpfwd test proftpd"',
    'ServerIdent on "ftpfwd test proftpd ready"',
    'ServerType standalone',
    // Bind the listening socket to DefaultAddress only (SocketBindTight), one server, no IPv6.
    ...tlsLines(o.tls, o.dir),
    `DefaultAddress ${bare(o.host)}`,
    'SocketBindTight on',
    `Port ${o.port}`,
    'UseIPv6 off',
    ...passivePorts,
    'User nobody',
    `Group ${bare(o.group)}`,
    'Umask 022',
    'MaxInstances 64',
    `PidFile ${bare(join(o.dir, 'proftpd.pid'))}`,
    `ScoreboardFile ${bare(join(o.dir, 'proftpd.scoreboard'))}`,
    `SystemLog ${bare(join(o.dir, 'system.log'))}`,
    `TransferLog ${bare(join(o.dir, 'xfer.log'))}`,
    'LogFormat commands "%a %r -> %s"',
    `ExtendedLog ${bare(join(o.dir, 'commands.log'))} ALL commands`,
    // No login delay (DelayEngine), no DNS, no utmp/wtmp, no /etc/ftpusers or /etc/shells checks.
    'DelayEngine off',
    'UseReverseDNS off',
    'WtmpLog off',
    'UseFtpUsers off',
    'RequireValidShell off',
    'AuthOrder mod_auth_unix.c',
    'TimesGMT on',
    'TimeoutIdle 600',
    // AllowForeignAddress stays at its default (off): PORT/EPRT must name the control peer's address.
    `<Anonymous ${bare(o.root)}>`,
    `  User ${ANONYMOUS_USER}`,
    `  Group ${bare(o.group)}`,
    `  UserAlias anonymous ${ANONYMOUS_USER}`,
    '  AnonRequirePassword off',
    '  RequireValidShell off',
    '  MaxClients 64',
    '  <Directory incoming>',
    '    AllowOverwrite on',
    '    <Limit STOR STOU APPE MKD WRITE>',
    '      AllowAll',
    '    </Limit>',
    '  </Directory>',
    '</Anonymous>',
    '',
  ].join('\n');
}

/**
 * mod_tls with TLS required for logins and data (TLSRequired on), data
 * connections resuming the control session (mod_tls's default), and a
 * log of every handshake.
 */
function tlsLines(tls: { settings: FtpServerTls; modulePath: string } | undefined, dir: string): string[] {
  if (tls === undefined) return [];
  const { settings } = tls;
  return [
    `ModulePath ${bare(tls.modulePath)}`,
    'LoadModule mod_tls.c',
    'TLSEngine on',
    'TLSRequired on',
    `TLSProtocol ${settings.version ?? 'TLSv1.2 TLSv1.3'}`,
    `TLSRSACertificateFile ${bare(settings.certFile)}`,
    `TLSRSACertificateKeyFile ${bare(settings.keyFile)}`,
    `TLSLog ${bare(join(dir, 'tls.log'))}`,
    'TLSVerifyClient off',
    'TLSRenegotiate none',
    ...(settings.implicit ? ['TLSOptions UseImplicitSSL'] : []),
    ...(settings.requireReuse === false ? ['TLSOptions NoSessionReuseRequired'] : []),
  ];
}

/** Where mod_tls.so is: installed, or unpacked from proftpd-mod-crypto. */
async function tlsModulePath(): Promise<string> {
  if (existsSync(join(INSTALLED_MODULES, 'mod_tls.so'))) return INSTALLED_MODULES;
  const unpacked = await unpackDebianPackage(TLS_PACKAGE);
  return join(unpacked.root, INSTALLED_MODULES);
}

/**
 * Starts proftpd in the foreground (`-n -c <conf>`) with anonymous login,
 * downloads from `root` and uploads into `root/incoming`. Needs root (mount
 * namespace, chroot and change of user for the anonymous session).
 */
export async function startProftpd(opts: ProftpdOptions): Promise<ProftpdInstance> {
  if (userInfo().uid !== 0) throw new Error('proftpd needs root for its anonymous chroot');
  const binary = await findProftpd();
  const host = opts.listenAddress ?? '127.0.0.1';
  const port = await choosePort(opts, host);
  const root = opts.root;
  const dir = await makeTempDir('ftpfwd-proftpd-');
  const logFiles = ['system.log', 'commands.log', 'xfer.log', 'tls.log'].map((name) => join(dir, name));
  return launchFtpServer({ name: 'proftpd', dir, logFiles }, async (adopt) => {
    await chmod(dir, 0o755);
    const ftp = await lookupAccount(ANONYMOUS_USER);
    const uploadDir = await prepareAnonymousTree(root, ftp);
    // proftpd checks the anonymous root as the ftp user before it chroots, so
    // every directory above it must be searchable by ftp; the caller's temp
    // dirs are not. It therefore sees `root` bind-mounted at <dir>/anon.
    const anonRoot = join(dir, 'anon');
    await mkdir(anonRoot, { mode: 0o755 });
    const group = (await groupExists('nogroup')) ? 'nogroup' : 'nobody';
    const configFile = join(dir, 'proftpd.conf');
    await writeFile(
      configFile,
      proftpdConfig({
        host,
        port,
        root: anonRoot,
        dir,
        group,
        pasvMinPort: opts.pasvMinPort,
        pasvMaxPort: opts.pasvMaxPort,
        tls: opts.tls === undefined ? undefined : { settings: opts.tls, modulePath: await tlsModulePath() },
      }),
    );
    const [cmd, argv] = withBindMount(root, anonRoot, [binary.path, '-n', '-c', configFile]);
    const proc = adopt(await startProcess(cmd, argv, { netns: opts.netns, env: binary.env }));
    await waitUntilListening(proc, 'proftpd', host, port, opts.netns, START_TIMEOUT_MS);
    return { host, port, root, uploadDir, netns: opts.netns };
  });
}
