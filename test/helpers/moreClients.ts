import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  curlDownload,
  curlList,
  curlUpload,
  ftplibDownload,
  ftplibList,
  ftplibUpload,
  ftpUrl,
  lftpDownload,
  lftpList,
  lftpUpload,
  type ClientOptions,
  type ClientResult,
  type FtpMode,
  type FtpTarget,
} from './clients.js';
import { run, type RunOptions } from './processes.js';
import { makeTempDir, removeDir } from './tmp.js';

/**
 * More FTP clients, in the shape of the curl/lftp/ftplib helpers in
 * clients.ts: download, upload and list in a chosen data-connection mode,
 * `{ netns?, timeoutMs? }`, returning the exit status and output plus the
 * commands the client sent, read from its trace.
 *
 * Modes each client can be told to use (IPv4):
 *   tnftp (BSD ftp)   pasv epsv port eprt   (`passive on|off`, `epsv4 on|off`)
 *   inetutils-ftp     pasv epsv port eprt   (`-p` / `-A`, the `epsv4` toggle)
 *   ncftp             pasv port             (`-F` / `-E`; EPSV/EPRT only over IPv6)
 *   wget              pasv port             (download and list only; EPSV/EPRT only over IPv6)
 *   basic-ftp         pasv epsv             (passive only; `epsv` tries EPSV then PASV)
 * Like curl, tnftp, inetutils-ftp and basic-ftp fall back from EPSV/EPRT to
 * PASV/PORT when the server refuses the extended command, and wget from PASV
 * to PORT: check `commands` to be sure which was used.
 */

export interface MoreClientResult extends ClientResult {
  /** Commands the client sent, in order, from its trace (PASS argument masked). */
  commands: string[];
}

export type TnftpMode = FtpMode;
export type InetutilsFtpMode = FtpMode;
export type NcftpMode = 'pasv' | 'port';
export type WgetMode = 'pasv' | 'port';
export type BasicFtpMode = 'pasv' | 'epsv';

export const TNFTP_MODES: readonly TnftpMode[] = ['pasv', 'epsv', 'port', 'eprt'];
export const INETUTILS_FTP_MODES: readonly InetutilsFtpMode[] = ['pasv', 'epsv', 'port', 'eprt'];
export const NCFTP_MODES: readonly NcftpMode[] = ['pasv', 'port'];
export const WGET_MODES: readonly WgetMode[] = ['pasv', 'port'];
export const BASIC_FTP_MODES: readonly BasicFtpMode[] = ['pasv', 'epsv'];

const DEFAULT_TIMEOUT_MS = 60_000;
/** Extra time for the process to report its own timeout before it is killed. */
const KILL_MARGIN_MS = 5_000;
const BASIC_FTP_RUNNER = fileURLToPath(new URL('./basicFtpRunner.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PASSWORD_COMMAND = /^(PASS)\s.*$/i;

function timeoutOf(opts: ClientOptions): number {
  return opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
}

function seconds(opts: ClientOptions): string {
  return String(Math.max(1, Math.ceil(timeoutOf(opts) / 1000)));
}

function runClient(cmd: string, args: readonly string[], opts: ClientOptions, extra: Omit<RunOptions, 'netns' | 'timeoutMs'> = {}): Promise<ClientResult> {
  return run(cmd, args, { ...extra, netns: opts.netns, timeoutMs: timeoutOf(opts) + KILL_MARGIN_MS });
}

/** Commands from a trace whose command lines match `pattern` (group 1 is the command), PASS masked. */
export function commandsFromTrace(trace: string, pattern: RegExp): string[] {
  const commands: string[] = [];
  for (const raw of trace.split('\n')) {
    const match = pattern.exec(raw.replace(/\r$/, ''));
    const command = match?.[1]?.trim();
    if (command === undefined || command === '') continue;
    commands.push(command.replace(PASSWORD_COMMAND, '$1 ****'));
  }
  return commands;
}

/** The data-connection commands (PASV, EPSV, PORT, EPRT) among `commands`, in order, without arguments. */
export function dataCommands(commands: readonly string[]): string[] {
  return commands.map((command) => command.split(' ')[0]!.toUpperCase()).filter((verb) => ['PASV', 'EPSV', 'PORT', 'EPRT'].includes(verb));
}

/** Names are passed to interactive clients unquoted: refuse what they would split or misread. */
function plainPath(path: string): string {
  if (path === '' || /[\s"'\\]/.test(path)) throw new Error(`path not usable in an ftp client script: ${JSON.stringify(path)}`);
  return path;
}

async function withTempDir<T>(prefix: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await makeTempDir(prefix);
  try {
    return await body(dir);
  } finally {
    await removeDir(dir);
  }
}

async function readOrEmpty(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------
// Script-driven clients: tnftp and GNU inetutils ftp.
//
// Both exit 0 whatever happened to the transfer, so success is read from the
// verbose output: the transfer command was sent, and its reply was 226 or 250
// with no 4xx/5xx in between.

const ARROW_TRACE = /^---> (.*)$/;

/** Did the last `verb` command in an `---> ` trace end in a 226/250 reply? */
export function scriptedTransferSucceeded(output: string, verb: string): boolean {
  const lines = output.split('\n').map((line) => line.replace(/\r$/, ''));
  let start = -1;
  lines.forEach((line, index) => {
    if (line.toUpperCase().startsWith(`---> ${verb} `) || line.toUpperCase() === `---> ${verb}`) start = index;
  });
  if (start === -1) return false;
  let completed = false;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('---> ')) break;
    if (/^[45]\d\d[ -]/.test(line)) return false;
    if (/^(226|250)[ -]/.test(line)) completed = true;
  }
  return completed;
}

type ScriptAction = { kind: 'get'; remote: string; local: string } | { kind: 'put'; local: string; remote: string } | { kind: 'list'; remote: string };

const VERB: Record<ScriptAction['kind'], string> = { get: 'RETR', put: 'STOR', list: 'LIST' };

function transferLine(action: ScriptAction, listFile: string): string {
  switch (action.kind) {
    case 'get':
      return `get ${plainPath(action.remote)} ${plainPath(action.local)}`;
    case 'put':
      return `put ${plainPath(action.local)} ${plainPath(action.remote)}`;
    case 'list':
      return `ls ${plainPath(action.remote)} ${plainPath(listFile)}`;
  }
}

async function runScripted(
  cmd: string,
  args: readonly string[],
  setupLines: readonly string[],
  action: ScriptAction,
  opts: ClientOptions,
): Promise<MoreClientResult> {
  return withTempDir('ftpfwd-ftpclient-', async (dir) => {
    const listFile = join(dir, 'listing.txt');
    const script = [...setupLines, transferLine(action, listFile), 'bye', ''].join('\n');
    const result = await runClient(cmd, args, opts, { input: script, cwd: dir });
    const output = result.stdout;
    const completed = scriptedTransferSucceeded(output, VERB[action.kind]);
    return {
      ...result,
      // A clean exit is not enough: the transfer's own reply decides.
      code: result.code !== 0 ? result.code : completed ? 0 : 1,
      // The listing, if any, is what callers look for in stdout; the whole dialogue is the trace.
      stdout: action.kind === 'list' ? await readOrEmpty(listFile) : '',
      stderr: `${output}${result.stderr}`,
      commands: commandsFromTrace(output, ARROW_TRACE),
    };
  });
}

function tnftp(target: FtpTarget, mode: TnftpMode, action: ScriptAction, opts: ClientOptions): Promise<MoreClientResult> {
  const passive = mode === 'pasv' || mode === 'epsv';
  const extended = mode === 'epsv' || mode === 'eprt';
  return runScripted(
    'tnftp',
    ['-n', '-v', '-d', '-i', '-q', seconds(opts)],
    [
      `open ${target.host} ${target.port}`,
      'user anonymous tnftp@example.com',
      'binary',
      // `passive on` also turns off the fallback to active mode.
      `passive ${passive ? 'on' : 'off'}`,
      `epsv4 ${extended ? 'on' : 'off'}`,
    ],
    action,
    opts,
  );
}

/** BSD ftp (tnftp) `get`, driven through stdin; the dialogue is in stderr. */
export function tnftpDownload(target: FtpTarget, remotePath: string, localFile: string, mode: TnftpMode, opts: ClientOptions = {}): Promise<MoreClientResult> {
  return tnftp(target, mode, { kind: 'get', remote: remotePath, local: localFile }, opts);
}

export function tnftpUpload(target: FtpTarget, localFile: string, remotePath: string, mode: TnftpMode, opts: ClientOptions = {}): Promise<MoreClientResult> {
  return tnftp(target, mode, { kind: 'put', local: localFile, remote: remotePath }, opts);
}

/** LIST of `remotePath`; the listing is in stdout. */
export function tnftpList(target: FtpTarget, remotePath: string, mode: TnftpMode, opts: ClientOptions = {}): Promise<MoreClientResult> {
  return tnftp(target, mode, { kind: 'list', remote: remotePath }, opts);
}

function inetutilsFtp(target: FtpTarget, mode: InetutilsFtpMode, action: ScriptAction, opts: ClientOptions): Promise<MoreClientResult> {
  const passive = mode === 'pasv' || mode === 'epsv';
  const extended = mode === 'epsv' || mode === 'eprt';
  return runScripted(
    'inetutils-ftp',
    ['-n', '-v', '-d', '-i', passive ? '-p' : '-A'],
    [
      `open ${target.host} ${target.port}`,
      'user anonymous inetutils@example.com',
      'binary',
      // `epsv4` only toggles; EPSV/EPRT are off by default on IPv4.
      ...(extended ? ['epsv4'] : []),
    ],
    action,
    opts,
  );
}

/** GNU inetutils `ftp` `get`, driven through stdin; the dialogue is in stderr. */
export function inetutilsFtpDownload(
  target: FtpTarget,
  remotePath: string,
  localFile: string,
  mode: InetutilsFtpMode,
  opts: ClientOptions = {},
): Promise<MoreClientResult> {
  return inetutilsFtp(target, mode, { kind: 'get', remote: remotePath, local: localFile }, opts);
}

export function inetutilsFtpUpload(
  target: FtpTarget,
  localFile: string,
  remotePath: string,
  mode: InetutilsFtpMode,
  opts: ClientOptions = {},
): Promise<MoreClientResult> {
  return inetutilsFtp(target, mode, { kind: 'put', local: localFile, remote: remotePath }, opts);
}

/** LIST of `remotePath`; the listing is in stdout. */
export function inetutilsFtpList(target: FtpTarget, remotePath: string, mode: InetutilsFtpMode, opts: ClientOptions = {}): Promise<MoreClientResult> {
  return inetutilsFtp(target, mode, { kind: 'list', remote: remotePath }, opts);
}

// ---------------------------------------------------------------------------
// ncftp: ncftpget / ncftpput / ncftpls. Exit codes are reliable.

const NCFTP_TRACE = /(?:^|\s)Cmd: (.*)$/;

function ncftpFlags(target: FtpTarget, mode: NcftpMode, opts: ClientOptions): string[] {
  return ['-d', 'stderr', '-t', seconds(opts), '-P', String(target.port), mode === 'pasv' ? '-F' : '-E'];
}

/** ncftp keeps preferences and history under $HOME/.ncftp: give each run a throw-away home. */
async function ncftp(cmd: string, args: readonly string[], opts: ClientOptions): Promise<MoreClientResult> {
  return withTempDir('ftpfwd-ncftp-', async (home) => {
    const result = await runClient(cmd, args, opts, { env: { ...process.env, HOME: home } });
    return { ...result, commands: commandsFromTrace(result.stderr, NCFTP_TRACE) };
  });
}

/** `ncftpget -C host remote local` (no resume). */
export function ncftpDownload(target: FtpTarget, remotePath: string, localFile: string, mode: NcftpMode, opts: ClientOptions = {}): Promise<MoreClientResult> {
  return ncftp('ncftpget', [...ncftpFlags(target, mode, opts), '-V', '-Z', '-C', target.host, remotePath, localFile], opts);
}

/** `ncftpput -C host local remote`. */
export function ncftpUpload(target: FtpTarget, localFile: string, remotePath: string, mode: NcftpMode, opts: ClientOptions = {}): Promise<MoreClientResult> {
  return ncftp('ncftpput', [...ncftpFlags(target, mode, opts), '-V', '-C', target.host, localFile, remotePath], opts);
}

/** `ncftpls -l` (LIST) of a directory; the listing is in stdout. */
export function ncftpList(target: FtpTarget, remoteDir: string, mode: NcftpMode, opts: ClientOptions = {}): Promise<MoreClientResult> {
  const dir = remoteDir.endsWith('/') ? remoteDir : `${remoteDir}/`;
  // ncftpls takes the port from -P, not from the URL.
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const url = `ftp://${host}${dir.startsWith('/') ? dir : `/${dir}`}`;
  return ncftp('ncftpls', [...ncftpFlags(target, mode, opts), '-l', url], opts);
}

// ---------------------------------------------------------------------------
// wget: downloads and listings only.

const WGET_TRACE = /^--> (.*)$/;

function wgetArgs(mode: WgetMode, opts: ClientOptions): string[] {
  return ['-d', '--no-hsts', '--no-config', '--tries=1', `--timeout=${seconds(opts)}`, mode === 'pasv' ? '--passive-ftp' : '--no-passive-ftp'];
}

export async function wgetDownload(target: FtpTarget, remotePath: string, localFile: string, mode: WgetMode, opts: ClientOptions = {}): Promise<MoreClientResult> {
  const result = await runClient('wget', [...wgetArgs(mode, opts), '-O', localFile, ftpUrl(target, remotePath)], opts);
  return { ...result, commands: commandsFromTrace(result.stderr, WGET_TRACE) };
}

/** LIST of a directory; stdout holds the raw listing (wget's `.listing` file). */
export async function wgetList(target: FtpTarget, remoteDir: string, mode: WgetMode, opts: ClientOptions = {}): Promise<MoreClientResult> {
  const dir = remoteDir.endsWith('/') ? remoteDir : `${remoteDir}/`;
  return withTempDir('ftpfwd-wget-', async (cwd) => {
    const result = await runClient('wget', [...wgetArgs(mode, opts), '--no-remove-listing', '-O', 'index.html', ftpUrl(target, dir)], opts, { cwd });
    return { ...result, stdout: await readOrEmpty(join(cwd, '.listing')), commands: commandsFromTrace(result.stderr, WGET_TRACE) };
  });
}

// ---------------------------------------------------------------------------
// basic-ftp, run as a child process so that it can run in a namespace.

const BASIC_FTP_TRACE = /^> (.*)$/;

export interface BasicFtpOptions extends ClientOptions {
  /** `epsv` mode without the PASV fallback. */
  strictEpsv?: boolean;
}

async function basicFtp(
  target: FtpTarget,
  mode: BasicFtpMode,
  action: 'get' | 'put' | 'list',
  remotePath: string,
  localFile: string,
  opts: BasicFtpOptions,
): Promise<MoreClientResult> {
  const args = ['--import', 'tsx', BASIC_FTP_RUNNER, target.host, String(target.port), mode, action, remotePath, localFile, String(timeoutOf(opts))];
  const env = { ...process.env, BASIC_FTP_STRICT_EPSV: opts.strictEpsv === true ? '1' : '0' };
  const result = await runClient(process.execPath, args, opts, { cwd: REPO_ROOT, env });
  return { ...result, commands: commandsFromTrace(result.stderr, BASIC_FTP_TRACE) };
}

export function basicFtpDownload(target: FtpTarget, remotePath: string, localFile: string, mode: BasicFtpMode, opts: BasicFtpOptions = {}): Promise<MoreClientResult> {
  return basicFtp(target, mode, 'get', remotePath, localFile, opts);
}

export function basicFtpUpload(target: FtpTarget, localFile: string, remotePath: string, mode: BasicFtpMode, opts: BasicFtpOptions = {}): Promise<MoreClientResult> {
  return basicFtp(target, mode, 'put', remotePath, localFile, opts);
}

/** LIST (or MLSD) of `remotePath`, parsed by basic-ftp; stdout has one line per entry. */
export function basicFtpList(target: FtpTarget, remotePath: string, mode: BasicFtpMode, opts: BasicFtpOptions = {}): Promise<MoreClientResult> {
  return basicFtp(target, mode, 'list', remotePath, '', opts);
}

// ---------------------------------------------------------------------------
// Every client behind one interface, for matrices.

export type FtpClientName = 'curl' | 'lftp' | 'ftplib' | 'tnftp' | 'inetutils-ftp' | 'ncftp' | 'wget' | 'basic-ftp';

export interface FtpClientDriver {
  name: FtpClientName;
  /** Modes the client can be told to use over IPv4. */
  modes: readonly FtpMode[];
  download(target: FtpTarget, remotePath: string, localFile: string, mode: FtpMode, opts?: ClientOptions): Promise<MoreClientResult>;
  /** Absent for download-only clients (wget). */
  upload?: (target: FtpTarget, localFile: string, remotePath: string, mode: FtpMode, opts?: ClientOptions) => Promise<MoreClientResult>;
  /** LIST of a directory; names appear in stdout. */
  list(target: FtpTarget, remoteDir: string, mode: FtpMode, opts?: ClientOptions): Promise<MoreClientResult>;
}

function checkedMode<M extends FtpMode>(client: string, modes: readonly M[], mode: FtpMode): M {
  const found = modes.find((candidate) => candidate === mode);
  if (found === undefined) throw new Error(`${client} has no ${mode} mode (it supports ${modes.join(', ')})`);
  return found;
}

function traced(pattern: RegExp): (result: ClientResult) => MoreClientResult {
  return (result) => ({ ...result, commands: commandsFromTrace(result.stderr, pattern) });
}

const CURL_TRACE = traced(/^> (.*)$/);
const LFTP_TRACE = traced(/^---> (.*)$/);
const FTPLIB_TRACE = traced(/^--> (.*)$/);
const LFTP_MODES = ['pasv', 'epsv', 'port'] as const;
const ALL_MODES: readonly FtpMode[] = ['pasv', 'epsv', 'port', 'eprt'];

function directoryUrl(target: FtpTarget, remoteDir: string): string {
  return ftpUrl(target, remoteDir.endsWith('/') ? remoteDir : `${remoteDir}/`);
}

export const FTP_CLIENTS: readonly FtpClientDriver[] = [
  {
    name: 'curl',
    modes: ALL_MODES,
    download: async (t, remote, local, mode, opts) => CURL_TRACE(await curlDownload(ftpUrl(t, remote), local, mode, opts)),
    upload: async (t, local, remote, mode, opts) => CURL_TRACE(await curlUpload(ftpUrl(t, remote), local, mode, opts)),
    list: async (t, dir, mode, opts) => CURL_TRACE(await curlList(directoryUrl(t, dir), mode, opts)),
  },
  {
    name: 'lftp',
    modes: LFTP_MODES,
    download: async (t, remote, local, mode, opts) => LFTP_TRACE(await lftpDownload(t, remote, local, checkedMode('lftp', LFTP_MODES, mode), opts)),
    upload: async (t, local, remote, mode, opts) => LFTP_TRACE(await lftpUpload(t, local, remote, checkedMode('lftp', LFTP_MODES, mode), opts)),
    list: async (t, dir, mode, opts) => LFTP_TRACE(await lftpList(t, dir, checkedMode('lftp', LFTP_MODES, mode), opts)),
  },
  {
    name: 'ftplib',
    modes: ALL_MODES,
    download: async (t, remote, local, mode, opts) => FTPLIB_TRACE(await ftplibDownload(t, remote, local, mode, opts)),
    upload: async (t, local, remote, mode, opts) => FTPLIB_TRACE(await ftplibUpload(t, local, remote, mode, opts)),
    list: async (t, dir, mode, opts) => FTPLIB_TRACE(await ftplibList(t, dir, mode, opts)),
  },
  {
    name: 'tnftp',
    modes: TNFTP_MODES,
    download: (t, remote, local, mode, opts) => tnftpDownload(t, remote, local, mode, opts),
    upload: (t, local, remote, mode, opts) => tnftpUpload(t, local, remote, mode, opts),
    list: (t, dir, mode, opts) => tnftpList(t, dir, mode, opts),
  },
  {
    name: 'inetutils-ftp',
    modes: INETUTILS_FTP_MODES,
    download: (t, remote, local, mode, opts) => inetutilsFtpDownload(t, remote, local, mode, opts),
    upload: (t, local, remote, mode, opts) => inetutilsFtpUpload(t, local, remote, mode, opts),
    list: (t, dir, mode, opts) => inetutilsFtpList(t, dir, mode, opts),
  },
  {
    name: 'ncftp',
    modes: NCFTP_MODES,
    download: (t, remote, local, mode, opts) => ncftpDownload(t, remote, local, checkedMode('ncftp', NCFTP_MODES, mode), opts),
    upload: (t, local, remote, mode, opts) => ncftpUpload(t, local, remote, checkedMode('ncftp', NCFTP_MODES, mode), opts),
    list: (t, dir, mode, opts) => ncftpList(t, dir, checkedMode('ncftp', NCFTP_MODES, mode), opts),
  },
  {
    name: 'wget',
    modes: WGET_MODES,
    download: (t, remote, local, mode, opts) => wgetDownload(t, remote, local, checkedMode('wget', WGET_MODES, mode), opts),
    list: (t, dir, mode, opts) => wgetList(t, dir, checkedMode('wget', WGET_MODES, mode), opts),
  },
  {
    name: 'basic-ftp',
    modes: BASIC_FTP_MODES,
    download: (t, remote, local, mode, opts) => basicFtpDownload(t, remote, local, checkedMode('basic-ftp', BASIC_FTP_MODES, mode), opts),
    upload: (t, local, remote, mode, opts) => basicFtpUpload(t, local, remote, checkedMode('basic-ftp', BASIC_FTP_MODES, mode), opts),
    list: (t, dir, mode, opts) => basicFtpList(t, dir, checkedMode('basic-ftp', BASIC_FTP_MODES, mode), opts),
  },
];
