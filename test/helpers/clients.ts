import { fileURLToPath } from 'node:url';
import { run, type RunResult } from './processes.js';

/** Data-connection setup: the command the client sends (PASV, EPSV, PORT, EPRT). */
export type FtpMode = 'pasv' | 'epsv' | 'port' | 'eprt';
/** lftp sends EPRT only over IPv6, so it has no IPv4 `eprt` mode. */
export type LftpMode = Exclude<FtpMode, 'eprt'>;

export const FTP_MODES: readonly FtpMode[] = ['pasv', 'epsv', 'port', 'eprt'];

export interface FtpTarget {
  host: string;
  port: number;
}

export interface ClientOptions {
  /** Run the client inside this network namespace. */
  netns?: string;
  /** Default 60 s; the client is killed after this. */
  timeoutMs?: number;
}

/** A client command line, for callers that start it themselves (to kill it, or watch it run). */
export interface ClientCommand {
  cmd: string;
  args: string[];
}

export interface CommandOptions {
  /** The client gives up after this; default 60 s. */
  timeoutMs?: number;
  /** Data-connection rate limit in bytes per second (the client reads no faster). */
  limitRate?: number;
}

/** Exit status and output; stderr carries the client's control-channel trace. */
export type ClientResult = RunResult;

const DEFAULT_TIMEOUT_MS = 60_000;
/** Extra time for the process to report its own timeout before it is killed. */
const KILL_MARGIN_MS = 5_000;
const FTPLIB_SCRIPT = fileURLToPath(new URL('./ftplib_client.py', import.meta.url));

export function ftpUrl(target: FtpTarget, remotePath: string): string {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const path = remotePath.startsWith('/') ? remotePath : `/${remotePath}`;
  return `ftp://${host}:${target.port}${path}`;
}

function runClient(cmd: string, args: readonly string[], opts: ClientOptions): Promise<ClientResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return run(cmd, args, { netns: opts.netns, timeoutMs: timeoutMs + KILL_MARGIN_MS });
}

function curlModeFlags(mode: FtpMode): string[] {
  switch (mode) {
    case 'pasv':
      return ['--ftp-pasv', '--disable-epsv'];
    case 'epsv':
      return ['--ftp-pasv'];
    case 'port':
      return ['--ftp-port', '-', '--disable-eprt'];
    case 'eprt':
      return ['--ftp-port', '-'];
  }
}

/**
 * curl falls back from EPSV to PASV and from EPRT to PORT when the server
 * refuses the extended command; check the `-v` trace in stderr to be sure.
 */
function curlCommand(args: readonly string[], mode: FtpMode, opts: CommandOptions): ClientCommand {
  const seconds = Math.ceil((opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000);
  const rate = opts.limitRate === undefined ? [] : ['--limit-rate', String(opts.limitRate)];
  return { cmd: 'curl', args: ['-sS', '--fail', '-v', '--max-time', String(seconds), ...rate, ...curlModeFlags(mode), ...args] };
}

function curl(args: readonly string[], mode: FtpMode, opts: ClientOptions): Promise<ClientResult> {
  const { cmd, args: argv } = curlCommand(args, mode, opts);
  return runClient(cmd, argv, opts);
}

export function curlDownloadCommand(url: string, outFile: string, mode: FtpMode, opts: CommandOptions = {}): ClientCommand {
  return curlCommand(['-o', outFile, url], mode, opts);
}

export function curlDownload(url: string, outFile: string, mode: FtpMode, opts: ClientOptions = {}): Promise<ClientResult> {
  return curl(['-o', outFile, url], mode, opts);
}

export function curlUpload(url: string, inFile: string, mode: FtpMode, opts: ClientOptions = {}): Promise<ClientResult> {
  return curl(['-T', inFile, url], mode, opts);
}

/** LIST of a directory; `url` should end with `/`. The listing is in stdout. */
export function curlList(url: string, mode: FtpMode, opts: ClientOptions = {}): Promise<ClientResult> {
  return curl([url], mode, opts);
}

/** Quotes one lftp command argument. */
function lftpQuote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** net:max-retries 1 means one try: lftp reports a failure instead of resuming behind the test's back. */
function lftpCommand(target: FtpTarget, mode: LftpMode, command: string, opts: CommandOptions): ClientCommand {
  const script = [
    'set cmd:fail-exit yes',
    'set net:max-retries 1',
    'set net:timeout 10',
    'set net:reconnect-interval-base 1',
    'set ftp:ssl-allow no',
    'set xfer:clobber on',
    ...(opts.limitRate === undefined ? [] : [`set net:limit-rate ${opts.limitRate}`]),
    `set ftp:passive-mode ${mode === 'port' ? 'off' : 'on'}`,
    `set ftp:prefer-epsv ${mode === 'epsv' ? 'yes' : 'no'}`,
    `open -u anonymous,x ${ftpUrl(target, '/')}`,
    command,
  ].join('; ');
  return { cmd: 'lftp', args: ['--norc', '-d', '-c', script] };
}

function lftp(target: FtpTarget, mode: LftpMode, command: string, opts: ClientOptions): Promise<ClientResult> {
  const { cmd, args } = lftpCommand(target, mode, command, opts);
  return runClient(cmd, args, opts);
}

function lftpGet(remotePath: string, localFile: string): string {
  return `get ${lftpQuote(remotePath)} -o ${lftpQuote(localFile)}`;
}

export function lftpDownloadCommand(target: FtpTarget, remotePath: string, localFile: string, mode: LftpMode, opts: CommandOptions = {}): ClientCommand {
  return lftpCommand(target, mode, lftpGet(remotePath, localFile), opts);
}

export function lftpDownload(
  target: FtpTarget,
  remotePath: string,
  localFile: string,
  mode: LftpMode,
  opts: ClientOptions = {},
): Promise<ClientResult> {
  return lftp(target, mode, lftpGet(remotePath, localFile), opts);
}

export function lftpUpload(
  target: FtpTarget,
  localFile: string,
  remotePath: string,
  mode: LftpMode,
  opts: ClientOptions = {},
): Promise<ClientResult> {
  return lftp(target, mode, `put ${lftpQuote(localFile)} -o ${lftpQuote(remotePath)}`, opts);
}

/** LIST of `remotePath`; the listing is in stdout. */
export function lftpList(target: FtpTarget, remotePath: string, mode: LftpMode, opts: ClientOptions = {}): Promise<ClientResult> {
  return lftp(target, mode, `ls ${lftpQuote(remotePath)}`, opts);
}

type FtplibAction = 'get' | 'put' | 'list';

function ftplib(
  target: FtpTarget,
  mode: FtpMode,
  action: FtplibAction,
  remotePath: string,
  localFile: string | undefined,
  opts: ClientOptions,
): Promise<ClientResult> {
  const args = [FTPLIB_SCRIPT, target.host, String(target.port), mode, action, remotePath];
  if (localFile !== undefined) args.push(localFile);
  return runClient('python3', args, opts);
}

export function ftplibDownload(
  target: FtpTarget,
  remotePath: string,
  localFile: string,
  mode: FtpMode,
  opts: ClientOptions = {},
): Promise<ClientResult> {
  return ftplib(target, mode, 'get', remotePath, localFile, opts);
}

export function ftplibUpload(
  target: FtpTarget,
  localFile: string,
  remotePath: string,
  mode: FtpMode,
  opts: ClientOptions = {},
): Promise<ClientResult> {
  return ftplib(target, mode, 'put', remotePath, localFile, opts);
}

/** LIST of `remotePath`; the listing is in stdout. */
export function ftplibList(target: FtpTarget, remotePath: string, mode: FtpMode, opts: ClientOptions = {}): Promise<ClientResult> {
  return ftplib(target, mode, 'list', remotePath, undefined, opts);
}
