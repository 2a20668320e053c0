import { readFileSync } from 'node:fs';
import { chmod, chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { run, type ProcessHandle } from './processes.js';
import { removeDir } from './tmp.js';
import { waitForTcp } from './tcp.js';
import { withTimeout } from './time.js';

/** The options every FTP server helper takes (the same as startVsftpd's). */
export interface FtpServerOptions {
  /** Served as the anonymous root; uploads are allowed into `<root>/incoming`. */
  root: string;
  /** Default 127.0.0.1. */
  listenAddress?: string;
  /** Default: a free port on loopback, or 21 inside a network namespace. */
  port?: number;
  netns?: string;
  pasvMinPort?: number;
  pasvMaxPort?: number;
  /** FTPS, required for logins and for every data connection (servers that support it). */
  tls?: FtpServerTls;
}

/** FTPS settings for a server helper: its certificate, and what it insists on. */
export interface FtpServerTls {
  /** PEM files. */
  certFile: string;
  keyFile: string;
  /** Implicit TLS (TLS from the first byte) instead of AUTH TLS. */
  implicit?: boolean;
  /** Data connections must resume the control connection's TLS session (default true). */
  requireReuse?: boolean;
  /** Only this TLS version (default: 1.2 and 1.3). */
  version?: 'TLSv1.2' | 'TLSv1.3';
}

/** What every FTP server helper returns. */
export interface FtpServerInstance {
  host: string;
  port: number;
  root: string;
  /** `<root>/incoming`, where anonymous uploads are allowed (FTP path `/incoming`). */
  uploadDir: string;
  netns: string | undefined;
  /** The server process's PID (the listening daemon; some fork one child per session); undefined when it runs in this process. */
  pid: number | undefined;
  stop(): Promise<void>;
  /** Process output, then the server's own log files. */
  log(): string;
}

export const ANONYMOUS_USER = 'ftp';

export interface Account {
  uid: number;
  gid: number;
  home: string;
}

/** A local account from the passwd database. */
export async function lookupAccount(user: string): Promise<Account> {
  const result = await run('getent', ['passwd', user], { timeoutMs: 5_000 });
  const fields = result.stdout.trim().split(':');
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  const home = fields[5] ?? '';
  if (result.code !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new Error(`no local user ${user}: ${result.stderr.trim() || 'getent found nothing'}`);
  }
  return { uid, gid, home };
}

/** Whether a group exists in the group database. */
export async function groupExists(group: string): Promise<boolean> {
  const result = await run('getent', ['group', group], { timeoutMs: 5_000 });
  return result.code === 0;
}

/**
 * Makes `root` root-owned and 0755 (chrooting servers insist on it) and
 * `root/incoming` writable by `owner` and everyone; returns the upload dir.
 */
export async function prepareAnonymousTree(root: string, owner: { uid: number; gid: number } | undefined): Promise<string> {
  const uploadDir = join(root, 'incoming');
  await mkdir(root, { recursive: true });
  await mkdir(uploadDir, { recursive: true });
  if (owner !== undefined) {
    await chown(root, 0, 0);
    await chown(uploadDir, owner.uid, owner.gid);
  }
  await chmod(root, 0o755);
  await chmod(uploadDir, 0o777);
  return uploadDir;
}

/** The port to listen on: the caller's, 21 inside a namespace, else a free loopback port. */
export async function choosePort(opts: FtpServerOptions, host: string): Promise<number> {
  if (opts.port !== undefined) return opts.port;
  return opts.netns === undefined ? freePort(host) : 21;
}

export function readIfPresent(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * A command line that runs `argv` in a private mount namespace where
 * `source` is bind-mounted over `target` (an existing directory); nothing
 * outside the namespace sees the mount. Needs root. `unshare` and `sh` exec
 * in turn, so the spawned PID is the server's own.
 */
export function withBindMount(source: string, target: string, argv: readonly string[]): [string, string[]] {
  const script = 'mount --bind "$1" "$2" || exit 97; shift 2; exec "$@"';
  return ['unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'bind-mount-wrapper', source, target, ...argv]];
}

/** Resolves once host:port accepts connections; rejects if the process exits first or after `timeoutMs`. */
export async function waitUntilListening(
  proc: ProcessHandle,
  name: string,
  host: string,
  port: number,
  netns: string | undefined,
  timeoutMs: number,
): Promise<void> {
  const exitedEarly = proc.waitExit(timeoutMs).then(
    (status) => {
      throw new Error(`${name} exited during start-up (code ${String(status.code)}, signal ${String(status.signal)})`);
    },
    () => undefined,
  );
  await withTimeout(Promise.race([waitForTcp(host, port, timeoutMs, netns), exitedEarly]), timeoutMs, `${name} did not start`);
}

/** Where a launched server lives, for its log and its clean-up. */
export interface ServerLaunch {
  /** For messages: `vsftpd`, `proftpd`, ... */
  name: string;
  /** A directory of the server's own (configuration, logs), removed when it stops or fails to start. */
  dir?: string;
  /** The server's own log files, appended to its output in log(). */
  logFiles?: readonly string[];
}

/** What a server's start returns: the instance, less what launchFtpServer adds. */
export type StartedServer<Extra> = Omit<FtpServerInstance, 'pid' | 'stop' | 'log'> & Extra;

/**
 * The start, stop and log of every FTP server helper: `start` sets the
 * server up and starts its process, handing it to `adopt` as soon as it
 * exists, and waits until it serves. Should anything fail, the process is
 * stopped, the server's directory removed, and the error carries the log.
 */
export async function launchFtpServer<Extra extends object>(
  launch: ServerLaunch,
  start: (adopt: (proc: ProcessHandle) => ProcessHandle) => Promise<StartedServer<Extra>>,
): Promise<FtpServerInstance & Extra> {
  let proc: ProcessHandle | undefined;
  const log = (): string => `${proc?.stdout() ?? ''}${proc?.stderr() ?? ''}${(launch.logFiles ?? []).map(readIfPresent).join('')}`;
  const stop = async (): Promise<void> => {
    await proc?.stop();
    if (launch.dir !== undefined) await removeDir(launch.dir);
  };
  try {
    const started = await start((adopted) => (proc = adopted));
    return { ...started, pid: proc?.pid, log, stop };
  } catch (err) {
    const text = log();
    await stop();
    throw startupError(err, launch.name, text);
  }
}

/** Wraps a start-up failure with the server's log, so the cause is visible. */
export function startupError(err: unknown, name: string, log: string): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (log.trim() === '') return err instanceof Error ? err : new Error(message);
  return new Error(`${message}\n--- ${name} log ---\n${log.slice(-8000)}`, { cause: err });
}
