import { copyFile, link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ftpUrl, type ClientOptions, type FtpMode, type FtpTarget } from './clients.js';
import { commandsFromTrace, type FtpClientName, type MoreClientResult } from './moreClients.js';
import { run, type RunOptions, type RunResult } from './processes.js';

/**
 * Every FTP client of the matrix driving a whole session of operations
 * (with a login), rather than one transfer: downloads and uploads of
 * several files, listings, resume, append, rename, mkdir/rmdir, SIZE/MDTM,
 * SITE CHMOD and TYPE A, in as few client processes as each client
 * allows. Callers check the results on disk and in the traces.
 */

export type SessionOp =
  | { kind: 'get'; remote: string; local: string; ascii?: boolean; resume?: boolean }
  | { kind: 'put'; local: string; remote: string; ascii?: boolean; append?: boolean; resume?: boolean }
  | { kind: 'list'; remote: string }
  | { kind: 'mkdir' | 'rmdir' | 'delete' | 'size' | 'mdtm'; remote: string }
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'chmod'; mode: string; remote: string };

export interface FtpLogin {
  user: string;
  password: string;
}

export interface SessionTarget extends FtpTarget {
  login: FtpLogin;
}

export interface SessionOptions extends ClientOptions {
  /** A scratch directory of the caller's, for scripts, listings and renamed copies. */
  workDir: string;
}

export interface SessionResult extends MoreClientResult {
  /** The listings' text, as the client printed or saved it. */
  listings: string;
  /** Which client process failed and how, with the end of its output; null when all succeeded. */
  failure: string | null;
}

export interface SessionDriver {
  name: FtpClientName;
  modes: readonly FtpMode[];
  /** Whether the client can carry out this operation at all. */
  can(op: SessionOp): boolean;
  run(target: SessionTarget, mode: FtpMode, ops: readonly SessionOp[], opts: SessionOptions): Promise<SessionResult>;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const KILL_MARGIN_MS = 5_000;
const FTPLIB_SESSION = fileURLToPath(new URL('./ftplib_session.py', import.meta.url));
const BASIC_FTP_SESSION = fileURLToPath(new URL('./basicFtpSession.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ALL_MODES: readonly FtpMode[] = ['pasv', 'epsv', 'port', 'eprt'];

function timeoutOf(opts: ClientOptions): number {
  return opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
}

function seconds(opts: ClientOptions): string {
  return String(Math.max(1, Math.ceil(timeoutOf(opts) / 1000)));
}

function runClient(cmd: string, args: readonly string[], opts: ClientOptions, extra: Omit<RunOptions, 'netns' | 'timeoutMs'> = {}): Promise<RunResult> {
  return run(cmd, args, { ...extra, netns: opts.netns, timeoutMs: timeoutOf(opts) + KILL_MARGIN_MS });
}

/** A client process's result, named for messages. */
type Labelled = RunResult & { label: string };

function lastLines(text: string, count = 8): string {
  return text.split('\n').map((line) => line.trim()).filter(Boolean).slice(-count).join(' / ');
}

/** The combined result of several client processes: the first failure's code wins. */
function combine(results: readonly Labelled[], pattern: RegExp, listings: string): SessionResult {
  const failed = results.find((result) => result.code !== 0);
  const stderr = results.map((result) => result.stderr).join('\n');
  return {
    code: failed ? failed.code : 0,
    signal: failed?.signal ?? null,
    timedOut: results.some((result) => result.timedOut),
    stdout: results.map((result) => result.stdout).join('\n'),
    stderr,
    commands: commandsFromTrace(stderr, pattern),
    listings,
    failure: failed ? `${failed.label} exited ${String(failed.code)}${failed.timedOut ? ' (killed after its timeout)' : ''}: ${lastLines(failed.stderr)}` : null,
  };
}

function labelled(label: string, result: RunResult): Labelled {
  return { ...result, label };
}

/** Splits ops into runs of consecutive ops that `sameGroup` says can share one process. */
function groups<T>(items: readonly T[], key: (item: T) => string): T[][] {
  const out: T[][] = [];
  let lastKey: string | null = null;
  for (const item of items) {
    const itemKey = key(item);
    if (itemKey !== lastKey || out.length === 0) out.push([]);
    out.at(-1)!.push(item);
    lastKey = itemKey;
  }
  return out;
}

function remoteUrl(target: FtpTarget, remote: string): string {
  // Each path segment percent-encoded as UTF-8: spaces and non-ASCII names travel in URLs.
  const path = remote.split('/').map((segment) => encodeURIComponent(segment)).join('/');
  return ftpUrl(target, path.startsWith('/') ? path : `/${path}`);
}

function dirUrl(target: FtpTarget, remote: string): string {
  const url = remoteUrl(target, remote);
  return url.endsWith('/') ? url : `${url}/`;
}

// ---------------------------------------------------------------------------
// curl: every operation in one invocation, `--next` between them.

const CURL_MODE: Record<FtpMode, string[]> = {
  pasv: ['--ftp-pasv', '--disable-epsv'],
  epsv: ['--ftp-pasv'],
  port: ['--ftp-port', '-', '--disable-eprt'],
  eprt: ['--ftp-port', '-'],
};

function curlGroup(target: SessionTarget, mode: FtpMode, op: SessionOp, listFile: string): string[] {
  const common = ['-sS', '--fail', '-v', '-g', '--user', `${target.login.user}:${target.login.password}`, ...CURL_MODE[mode]];
  const quote = (command: string): string[] => [...common, '-Q', command, '-o', '/dev/null', dirUrl(target, '/')];
  switch (op.kind) {
    case 'get':
      return [...common, ...(op.resume ? ['-C', '-'] : []), '-o', op.local, `${remoteUrl(target, op.remote)}${op.ascii ? ';type=A' : ''}`];
    case 'put':
      return [...common, ...(op.resume ? ['-C', '-'] : []), ...(op.append ? ['--append'] : []), ...(op.ascii ? ['--use-ascii', '--crlf'] : []), '-T', op.local, remoteUrl(target, op.remote)];
    case 'list':
      return [...common, '-o', listFile, dirUrl(target, op.remote)];
    case 'mkdir':
      return quote(`MKD ${op.remote}`);
    case 'rmdir':
      return quote(`RMD ${op.remote}`);
    case 'delete':
      return quote(`DELE ${op.remote}`);
    case 'rename':
      return [...common, '-Q', `RNFR ${op.from}`, '-Q', `RNTO ${op.to}`, '-o', '/dev/null', dirUrl(target, '/')];
    case 'chmod':
      return quote(`SITE CHMOD ${op.mode} ${op.remote}`);
    case 'size':
    case 'mdtm':
      // -I: SIZE and MDTM, the file's length and date, and no transfer.
      return [...common, '-I', remoteUrl(target, op.remote)];
  }
}

const curlDriver: SessionDriver = {
  name: 'curl',
  modes: ALL_MODES,
  can: () => true,
  async run(target, mode, ops, opts) {
    const listFiles: string[] = [];
    const args: string[] = ['--fail-early', '--max-time', seconds(opts)];
    ops.forEach((op, index) => {
      const listFile = join(opts.workDir, `curl-list-${index}.txt`);
      if (op.kind === 'list') listFiles.push(listFile);
      if (index > 0) args.push('--next');
      args.push(...curlGroup(target, mode, op, listFile));
    });
    const result = await runClient('curl', args, opts);
    const listings = (await Promise.all(listFiles.map((file) => readFile(file, 'utf8').catch(() => '')))).join('\n');
    return combine([labelled('curl', result)], /^> (.*)$/, listings);
  },
};

// ---------------------------------------------------------------------------
// lftp: one script; cmd:fail-exit stops it at the first failure.

function lftpQuote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function lftpLine(op: SessionOp): string {
  switch (op.kind) {
    case 'get':
      return `get ${op.resume ? '-c ' : ''}${op.ascii ? '-a ' : ''}${lftpQuote(op.remote)} -o ${lftpQuote(op.local)}`;
    case 'put':
      return `put ${op.resume ? '-c ' : ''}${op.ascii ? '-a ' : ''}${lftpQuote(op.local)} -o ${lftpQuote(op.remote)}`;
    case 'list':
      return `echo "=== LIST"; cls -l ${lftpQuote(op.remote)}; ls ${lftpQuote(op.remote)}; echo "=== END"`;
    case 'mkdir':
      return `mkdir ${lftpQuote(op.remote)}`;
    case 'rmdir':
      return `rmdir ${lftpQuote(op.remote)}`;
    case 'delete':
      return `rm ${lftpQuote(op.remote)}`;
    case 'rename':
      return `mv ${lftpQuote(op.from)} ${lftpQuote(op.to)}`;
    case 'chmod':
      return `chmod ${op.mode} ${lftpQuote(op.remote)}`;
    case 'size':
      return `quote SIZE ${op.remote}`;
    case 'mdtm':
      return `quote MDTM ${op.remote}`;
  }
}

/** lftp's settings for a session in `mode`: no TLS, bounded retries, the data-connection mode forced. */
export function lftpSettings(mode: FtpMode): string[] {
  return [
    'set cmd:fail-exit yes',
    'set net:max-retries 1',
    'set net:timeout 20',
    'set net:reconnect-interval-base 1',
    'set ftp:ssl-allow no',
    'set xfer:clobber on',
    `set ftp:passive-mode ${mode === 'port' ? 'off' : 'on'}`,
    `set ftp:prefer-epsv ${mode === 'epsv' ? 'yes' : 'no'}`,
  ];
}

/** Runs lftp commands after logging in; the trace (`--->`, `<---`) is in stderr. */
export function lftpSession(target: SessionTarget, mode: FtpMode, commands: readonly string[], opts: ClientOptions): Promise<RunResult> {
  const script = [...lftpSettings(mode), `open -u ${lftpQuote(target.login.user)},${lftpQuote(target.login.password)} ${ftpUrl(target, '/')}`, ...commands].join('; ');
  return runClient('lftp', ['--norc', '-d', '-c', script], opts);
}

const lftpDriver: SessionDriver = {
  name: 'lftp',
  modes: ['pasv', 'epsv', 'port'],
  // lftp has no command that sends APPE.
  can: (op) => !(op.kind === 'put' && op.append === true),
  async run(target, mode, ops, opts) {
    const result = await lftpSession(target, mode, ops.map(lftpLine), opts);
    const listings = /=== LIST\n([\s\S]*?)=== END/g;
    const text = [...result.stdout.matchAll(listings)].map((match) => match[1]).join('\n');
    return combine([labelled('lftp', result)], /^---> (.*)$/, text);
  },
};

// ---------------------------------------------------------------------------
// ftplib and basic-ftp: their own session runners, operations as JSON.

function listingsBetweenMarkers(stdout: string): string {
  return [...stdout.matchAll(/=== LIST [^\n]*\n([\s\S]*?)=== END/g)].map((match) => match[1]).join('\n');
}

const ftplibDriver: SessionDriver = {
  name: 'ftplib',
  modes: ALL_MODES,
  can: () => true,
  async run(target, mode, ops, opts) {
    const result = await runClient('python3', [FTPLIB_SESSION, target.host, String(target.port), mode, target.login.user], opts, {
      input: JSON.stringify(ops),
      env: { ...process.env, FTP_PASSWORD: target.login.password },
    });
    return combine([labelled('ftplib', result)], /^--> (.*)$/, listingsBetweenMarkers(result.stdout));
  },
};

const basicFtpDriver: SessionDriver = {
  name: 'basic-ftp',
  modes: ['pasv', 'epsv'],
  // Its uploads always start at the beginning.
  can: (op) => !(op.kind === 'put' && op.resume === true),
  async run(target, mode, ops, opts) {
    const result = await runClient(process.execPath, ['--import', 'tsx', BASIC_FTP_SESSION, target.host, String(target.port), mode, target.login.user, String(timeoutOf(opts))], opts, {
      cwd: REPO_ROOT,
      input: JSON.stringify(ops),
      env: { ...process.env, FTP_PASSWORD: target.login.password },
    });
    return combine([labelled('basic-ftp', result)], /^> (.*)$/, listingsBetweenMarkers(result.stdout));
  },
};

// ---------------------------------------------------------------------------
// tnftp and GNU inetutils ftp: a script on stdin. Both exit 0 whatever
// happened, so success is read from the dialogue: no 4xx/5xx reply, and
// every transfer command answered 226/250.

const ARROW = /^---> (.*)$/;

/** The failed commands of an `---> ` dialogue, and transfers that never got their final reply. */
export function dialogueFailures(output: string): string[] {
  const failures: string[] = [];
  let command: string | null = null;
  let completed = true;
  const transfer = /^(RETR|STOR|APPE|STOU|LIST|NLST|MLSD)\b/i;
  const close = (): void => {
    if (command !== null && transfer.test(command) && !completed) failures.push(`${command}: no 226`);
  };
  for (const raw of output.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const sent = ARROW.exec(line);
    if (sent) {
      close();
      command = sent[1]!;
      completed = !transfer.test(command);
      continue;
    }
    if (/^[45]\d\d[ -]/.test(line)) failures.push(`${command ?? '(greeting)'}: ${line}`);
    if (/^(226|250)[ -]/.test(line)) completed = true;
  }
  close();
  return failures;
}

function scriptQuote(value: string): string {
  if (value.includes('"')) throw new Error(`a double quote cannot be scripted: ${value}`);
  return `"${value}"`;
}

function scriptedLines(op: SessionOp, listFile: string): string[] {
  switch (op.kind) {
    case 'get': {
      const line = `${op.resume ? 'reget' : 'get'} ${scriptQuote(op.remote)} ${scriptQuote(op.local)}`;
      return op.ascii ? ['ascii', line, 'binary'] : [line];
    }
    case 'put': {
      const line = `${op.append ? 'append' : 'put'} ${scriptQuote(op.local)} ${scriptQuote(op.remote)}`;
      return op.ascii ? ['ascii', line, 'binary'] : [line];
    }
    case 'list':
      return [`ls ${scriptQuote(op.remote)} ${scriptQuote(listFile)}`];
    case 'mkdir':
      return [`mkdir ${scriptQuote(op.remote)}`];
    case 'rmdir':
      return [`rmdir ${scriptQuote(op.remote)}`];
    case 'delete':
      return [`delete ${scriptQuote(op.remote)}`];
    case 'rename':
      return [`rename ${scriptQuote(op.from)} ${scriptQuote(op.to)}`];
    case 'chmod':
      return [`chmod ${op.mode} ${scriptQuote(op.remote)}`];
    case 'size':
      return [`size ${scriptQuote(op.remote)}`];
    case 'mdtm':
      return [`modtime ${scriptQuote(op.remote)}`];
  }
}

function scriptedDriver(name: 'tnftp' | 'inetutils-ftp', command: (mode: FtpMode, opts: ClientOptions) => string[], setup: (mode: FtpMode) => string[]): SessionDriver {
  return {
    name,
    modes: ALL_MODES,
    // Neither can resume an upload.
    can: (op) => !(op.kind === 'put' && op.resume === true),
    async run(target, mode, ops, opts) {
      const listFiles: string[] = [];
      const lines = ops.flatMap((op, index) => {
        const listFile = join(opts.workDir, `${name}-list-${index}.txt`);
        if (op.kind === 'list') listFiles.push(listFile);
        return scriptedLines(op, listFile);
      });
      const script = [`open ${target.host} ${target.port}`, `user ${target.login.user} ${target.login.password}`, 'binary', ...setup(mode), ...lines, 'bye', ''].join('\n');
      const result = await runClient(name, command(mode, opts), opts, { input: script, cwd: opts.workDir });
      const failures = dialogueFailures(result.stdout);
      const listings = (await Promise.all(listFiles.map((file) => readFile(file, 'utf8').catch(() => '')))).join('\n');
      const dialogue = `${result.stdout}${failures.length > 0 ? `\nfailed: ${failures.join('; ')}` : ''}\n${result.stderr}`;
      const judged = labelled(name, { ...result, stderr: dialogue, code: result.code !== 0 ? result.code : failures.length > 0 ? 1 : 0 });
      return { ...combine([judged], ARROW, listings), stdout: '', ...(failures.length > 0 ? { failure: `${name}: ${failures.join('; ')}` } : {}) };
    },
  };
}

const tnftpDriver = scriptedDriver(
  'tnftp',
  (_mode, opts) => ['-n', '-v', '-d', '-i', '-q', seconds(opts)],
  (mode) => [`passive ${mode === 'pasv' || mode === 'epsv' ? 'on' : 'off'}`, `epsv4 ${mode === 'epsv' || mode === 'eprt' ? 'on' : 'off'}`],
);

const inetutilsDriver = scriptedDriver(
  'inetutils-ftp',
  (mode) => ['-n', '-v', '-d', '-i', mode === 'pasv' || mode === 'epsv' ? '-p' : '-A'],
  // `epsv4` only toggles, from off.
  (mode) => (mode === 'epsv' || mode === 'eprt' ? ['epsv4'] : []),
);

// ---------------------------------------------------------------------------
// ncftp: ncftpget and ncftpput name files by their base names, so
// operations are grouped into invocations that share a directory and
// options, and files are moved to the names the operations ask for.

const NCFTP_TRACE = /(?:^|\s)Cmd: (.*)$/;

const ncftpDriver: SessionDriver = {
  name: 'ncftp',
  modes: ['pasv', 'port'],
  // ncftpput -z (3.2.6) sends REST n, then the whole file from its start (sendfile): the result is n bytes too long on any server.
  can: (op) => !(op.kind === 'put' && op.resume === true),
  async run(target, mode, ops, opts) {
    const home = join(opts.workDir, 'ncftp-home');
    await mkdir(home, { recursive: true });
    const env = { ...process.env, HOME: home };
    const flags = ['-u', target.login.user, '-p', target.login.password, '-P', String(target.port), '-t', seconds(opts), '-d', 'stderr', mode === 'pasv' ? '-F' : '-E'];
    const results: Labelled[] = [];
    const listings: string[] = [];
    const key = (op: SessionOp): string => {
      if (op.kind === 'get' || op.kind === 'put') return `${op.kind}:${op.resume ? 'z' : 'Z'}:${op.ascii ? 'a' : ''}:${op.kind === 'put' && op.append ? 'A' : ''}:${op.kind === 'get' ? '' : parentOf(op.remote)}`;
      return op.kind === 'list' ? `list:${op.remote}` : 'raw';
    };
    let sequence = 0;
    for (const group of groups(ops, key)) {
      const first = group[0]!;
      sequence += 1;
      const dir = join(opts.workDir, `ncftp-${sequence}`);
      await mkdir(dir, { recursive: true });
      if (first.kind === 'get') {
        const gets = group as Array<SessionOp & { kind: 'get' }>;
        // A resumed download continues the partial file already there.
        for (const op of gets) if (op.resume) await copyFile(op.local, join(dir, basename(op.remote))).catch(() => undefined);
        const args = [...flags, first.resume ? '-z' : '-Z', ...(first.ascii ? ['-a'] : []), '-V', target.host, dir, ...gets.map((op) => op.remote)];
        results.push(labelled(`ncftpget ${gets.map((op) => op.remote).join(' ')}`, await runClient('ncftpget', args, opts, { env })));
        for (const op of gets) await rename(join(dir, basename(op.remote)), op.local).catch(() => undefined);
      } else if (first.kind === 'put') {
        const puts = group as Array<SessionOp & { kind: 'put' }>;
        for (const op of puts) await link(op.local, join(dir, basename(op.remote))).catch(() => copyFile(op.local, join(dir, basename(op.remote))));
        const args = [...flags, first.resume ? '-z' : '-Z', ...(first.ascii ? ['-a'] : []), ...(first.append ? ['-A'] : []), '-V', target.host, parentOf(first.remote), ...puts.map((op) => join(dir, basename(op.remote)))];
        results.push(labelled(`ncftpput ${puts.map((op) => op.remote).join(' ')}`, await runClient('ncftpput', args, opts, { env })));
      } else if (first.kind === 'list') {
        // ncftpls takes the port from -P, not from the URL.
        const path = dirUrl(target, first.remote).slice(ftpUrl(target, '/').length - 1);
        const result = await runClient('ncftpls', [...flags, '-l', `ftp://${target.host}${path}`], opts, { env });
        results.push(labelled(`ncftpls ${first.remote}`, result));
        listings.push(result.stdout);
      } else {
        const raw = group.flatMap((op) => rawCommands(op).flatMap((command) => ['-W', command]));
        // With -Z (no listing) ncftpls exits 4 even when every command succeeded: a short listing instead.
        results.push(labelled('ncftpls -W (raw commands)', await runClient('ncftpls', [...flags, ...raw, '-1', `ftp://${target.host}/`], opts, { env })));
      }
      await rm(dir, { recursive: true, force: true });
    }
    return combine(results, NCFTP_TRACE, listings.join('\n'));
  },
};

function parentOf(remote: string): string {
  const slash = remote.lastIndexOf('/');
  return slash <= 0 ? '/' : remote.slice(0, slash);
}

function rawCommands(op: SessionOp): string[] {
  switch (op.kind) {
    case 'mkdir':
      return [`MKD ${op.remote}`];
    case 'rmdir':
      return [`RMD ${op.remote}`];
    case 'delete':
      return [`DELE ${op.remote}`];
    case 'rename':
      return [`RNFR ${op.from}`, `RNTO ${op.to}`];
    case 'chmod':
      return [`SITE CHMOD ${op.mode} ${op.remote}`];
    case 'size':
      return [`SIZE ${op.remote}`];
    case 'mdtm':
      return [`MDTM ${op.remote}`];
    default:
      throw new Error(`${op.kind} is not a raw command`);
  }
}

// ---------------------------------------------------------------------------
// wget: downloads and listings only.

const WGET_TRACE = /^--> (.*)$/;

const wgetDriver: SessionDriver = {
  name: 'wget',
  modes: ['pasv', 'port'],
  can: (op) => op.kind === 'get' || op.kind === 'list',
  async run(target, mode, ops, opts) {
    const base = ['-d', '--no-hsts', '--no-config', '--tries=1', `--timeout=${seconds(opts)}`, mode === 'pasv' ? '--passive-ftp' : '--no-passive-ftp', '--user', target.login.user, '--password', target.login.password];
    const results: Labelled[] = [];
    const listings: string[] = [];
    for (const op of ops) {
      if (op.kind === 'get') {
        results.push(labelled(`wget ${op.remote}`, await runClient('wget', [...base, ...(op.resume ? ['-c'] : []), '-O', op.local, `${remoteUrl(target, op.remote)}${op.ascii ? ';type=a' : ''}`], opts)));
      } else if (op.kind === 'list') {
        const cwd = join(opts.workDir, `wget-list-${results.length}`);
        await mkdir(cwd, { recursive: true });
        results.push(labelled(`wget ${op.remote} (listing)`, await runClient('wget', [...base, '--no-remove-listing', '-O', 'index.html', dirUrl(target, op.remote)], opts, { cwd })));
        listings.push(await readFile(join(cwd, '.listing'), 'utf8').catch(() => ''));
      } else throw new Error(`wget cannot ${op.kind}`);
    }
    return combine(results, WGET_TRACE, listings.join('\n'));
  },
};

export const SESSION_DRIVERS: readonly SessionDriver[] = [curlDriver, lftpDriver, ftplibDriver, tnftpDriver, inetutilsDriver, ncftpDriver, wgetDriver, basicFtpDriver];

/** Writes `text` to a fresh file in `dir`; for small fixtures. */
export async function writeText(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}
