import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { connect, createServer, isIPv4, type AddressInfo, type Server, type Socket } from 'node:net';
import { join, posix } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { launchFtpServer, prepareAnonymousTree, type FtpServerInstance, type FtpServerOptions } from './ftpServer.js';
import { startProcess } from './processes.js';

/**
 * A small FTP server with real sockets whose reply wording is data, so the
 * tests can replay what servers that cannot run here say: WU-FTPD, FileZilla
 * Server, Serv-U, IIS, and the odd 227/229 forms from PROTOCOL.md. It serves
 * anonymous downloads from `root` and uploads into `root/incoming`, in
 * passive (PASV/EPSV) and active (PORT/EPRT) mode, one transfer at a time
 * per session, like a real server.
 */

/**
 * How a server words its replies. In `pasv` and `epsv` templates, `{h}` is
 * `h1,h2,h3,h4`, `{p}` is `p1,p2` and `{port}` the decimal port.
 */
export interface ScriptedVariant {
  /** Full greeting lines, code included (`220-...`, `220 ...`). */
  greeting: string[];
  /** Full SYST reply line. */
  syst: string;
  /** Full FEAT reply lines; undefined: FEAT is not understood (500). */
  feat?: string[];
  /** PASV reply template. */
  pasv: string;
  /** EPSV reply template; undefined: EPSV is not understood (500). */
  epsv?: string;
  /** Whether EPRT is understood. */
  eprt: boolean;
  /**
   * The address the 227 names: `own` (default) is the address the client
   * connected to; anything else (`0.0.0.0`, a third party) is named as is,
   * while the server still listens on its own address.
   */
  pasvAddress?: string;
  /** LIST format; default unix (`ls -l`). */
  listStyle?: 'unix' | 'dos';
  /** Answer PASV and EPSV before a login (default: 530, as for every command but the few a login needs). */
  passiveBeforeLogin?: boolean;
}

const VSFTPD_LIKE: ScriptedVariant = {
  greeting: ['220 ftpfwd scripted FTP server ready.'],
  syst: '215 UNIX Type: L8',
  feat: ['211-Features:', ' EPRT', ' EPSV', ' MDTM', ' PASV', ' REST STREAM', ' SIZE', ' TVFS', '211 End'],
  pasv: '227 Entering Passive Mode ({h},{p}).',
  epsv: '229 Entering Extended Passive Mode (|||{port}|)',
  eprt: true,
};

/** Reply wordings of real servers and of the odd forms clients must accept. */
export const SCRIPTED_VARIANTS = {
  /** vsftpd-like replies: the baseline. */
  standard: VSFTPD_LIKE,
  /** WU-FTPD 2.6: no FEAT, no EPSV/EPRT (RFC 2428 came later). */
  'wu-ftpd': {
    greeting: ['220 ftp.example.org FTP server (Version wu-2.6.2(1) Fri Jan 1 00:00:00 UTC 2010) ready.'],
    syst: '215 UNIX Type: L8',
    pasv: '227 Entering Passive Mode ({h},{p})',
    eprt: false,
  },
  /** FileZilla Server 0.9.x: multi-line greeting and FEAT, "UNIX emulated" SYST. */
  filezilla: {
    greeting: ['220-FileZilla Server 0.9.60 beta', '220-written by Tim Kosse (tim.kosse@filezilla-project.org)', '220 Please visit https://filezilla-project.org/'],
    syst: '215 UNIX emulated by FileZilla',
    feat: ['211-Features:', ' MDTM', ' REST STREAM', ' SIZE', ' MLST type*;size*;modify*;', ' MLSD', ' UTF8', ' CLNT', ' MFMT', ' EPSV', ' EPRT', '211 End'],
    pasv: '227 Entering Passive Mode ({h},{p})',
    epsv: '229 Entering Extended Passive Mode (|||{port}|)',
    eprt: true,
  },
  /** Serv-U 15. */
  'serv-u': {
    greeting: ['220 Serv-U FTP Server v15.1 ready...'],
    syst: '215 UNIX Type: L8',
    feat: ['211-Extensions supported', ' CLNT', ' EPRT', ' EPSV', ' MDTM', ' MLST type*;size*;create;modify*;', ' REST STREAM', ' SIZE', ' UTF8', '211 End (for details use "HELP commmand" where command is the command of interest)'],
    pasv: '227 Entering Passive Mode ({h},{p})',
    epsv: '229 Entering Extended Passive Mode (|||{port}|)',
    eprt: true,
  },
  /** Microsoft IIS FTP: 227 with a trailing dot, Windows_NT SYST, DOS listings. */
  iis: {
    greeting: ['220 Microsoft FTP Service'],
    syst: '215 Windows_NT',
    feat: ['211-Extended features supported:', ' LANG EN*', ' UTF8', ' HOST', ' SIZE', ' MDTM', ' REST STREAM', '211 END'],
    pasv: '227 Entering Passive Mode ({h},{p}).',
    epsv: '229 Entering Extended Passive Mode (|||{port}|)',
    eprt: true,
    listStyle: 'dos',
  },
  /** RFC 1123 says scan for the numbers: no parentheses at all. */
  'no-parentheses': { ...VSFTPD_LIKE, pasv: '227 Entering Passive Mode {h},{p}' },
  'trailing-dot': { ...VSFTPD_LIKE, pasv: '227 Entering Passive Mode ({h},{p}).' },
  'lower-case': {
    ...VSFTPD_LIKE,
    pasv: '227 entering passive mode ({h},{p})',
    epsv: '229 entering extended passive mode (|||{port}|)',
  },
  'passively-listen': { ...VSFTPD_LIKE, pasv: '227 Data transfer will passively listen to {h},{p}' },
  equals: { ...VSFTPD_LIKE, pasv: '227 ={h},{p}' },
  /** EPSV with `!` as the delimiter (seen on IBM i). */
  'epsv-bang': { ...VSFTPD_LIKE, epsv: '229 Entering Extended Passive Mode (!!!{port}!)' },
  /** A 227 naming 0.0.0.0: the client must use the control connection's host. */
  'zero-address': { ...VSFTPD_LIKE, pasvAddress: '0.0.0.0' },
  /** A 227 naming a third party (TEST-NET-1): the client must use the control connection's host. */
  'third-party': { ...VSFTPD_LIKE, pasvAddress: '192.0.2.7' },
} satisfies Record<string, ScriptedVariant>;

export type ScriptedVariantName = keyof typeof SCRIPTED_VARIANTS;
export const SCRIPTED_VARIANT_NAMES = Object.keys(SCRIPTED_VARIANTS) as ScriptedVariantName[];

export interface ScriptedFtpServerOptions extends FtpServerOptions {
  /** A named variant or a custom one; default `standard`. */
  variant?: ScriptedVariantName | ScriptedVariant;
  /**
   * Refuse PORT/EPRT to another address than the control peer's, and
   * passive data connections from another address, as real servers do.
   * Default true.
   */
  checkDataPeer?: boolean;
  /**
   * After this many bytes of every RETR, send `421` and close the control
   * and data connections, as a server that is shutting down does.
   */
  abortRetrieveAfterBytes?: number;
}

export interface ScriptedFtpServerInstance extends FtpServerInstance {
  variant: ScriptedVariant;
}

/** What the in-process server needs; JSON-serialisable so a child process can run it too. */
export interface ScriptedServerConfig {
  root: string;
  host: string;
  port: number;
  variant: ScriptedVariant;
  checkDataPeer: boolean;
  pasvMinPort?: number;
  pasvMaxPort?: number;
  abortRetrieveAfterBytes?: number;
}

const DATA_TIMEOUT_MS = 15_000;
const MAX_LINE = 4096;
const LOG_LIMIT = 256 * 1024;
const START_TIMEOUT_MS = 20_000;
const RUNNER = fileURLToPath(new URL('./scriptedFtpServerMain.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LISTENING = /^listening (\S+) (\d+)$/m;

export function resolveVariant(variant: ScriptedVariantName | ScriptedVariant | undefined): ScriptedVariant {
  if (variant === undefined) return SCRIPTED_VARIANTS.standard;
  if (typeof variant !== 'string') return variant;
  const found: ScriptedVariant | undefined = SCRIPTED_VARIANTS[variant];
  if (found === undefined) throw new Error(`unknown scripted variant ${String(variant)}`);
  return found;
}

/** Fills `{h}`, `{p}` and `{port}` in a reply template. */
export function formatPassiveReply(template: string, address: string, port: number): string {
  const h = address.split('.').join(',');
  const p = `${port >> 8},${port & 255}`;
  return template.replaceAll('{h}', h).replaceAll('{p}', p).replaceAll('{port}', String(port));
}

/** Strict `h1,h2,h3,h4,p1,p2`. */
function parsePortArgument(arg: string): { host: string; port: number } | undefined {
  const parts = arg.trim().split(',');
  if (parts.length !== 6 || !parts.every((part) => /^\d{1,3}$/.test(part))) return undefined;
  const n = parts.map(Number);
  if (n.some((value) => value > 255)) return undefined;
  const port = n[4]! * 256 + n[5]!;
  return port === 0 ? undefined : { host: n.slice(0, 4).join('.'), port };
}

/** `|1|a.b.c.d|port|` with any delimiter from 33 to 126. */
function parseEprtArgument(arg: string): { host: string; port: number } | undefined {
  const text = arg.trim();
  const delimiter = text[0];
  if (delimiter === undefined || delimiter.charCodeAt(0) < 33 || delimiter.charCodeAt(0) > 126) return undefined;
  const fields = text.split(delimiter);
  if (fields.length !== 5 || fields[0] !== '' || fields[4] !== '' || fields[1] !== '1') return undefined;
  const host = fields[2]!;
  const port = Number(fields[3]);
  if (!isIPv4(host) || !/^\d{1,5}$/.test(fields[3]!) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

function normalizeAddress(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:/i, '');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function two(n: number): string {
  return String(n).padStart(2, '0');
}

function listLine(name: string, info: { isDirectory: boolean; size: number; mtime: Date }, style: 'unix' | 'dos'): string {
  const t = info.mtime;
  if (style === 'dos') {
    const hours = t.getUTCHours();
    const stamp = `${two(t.getUTCMonth() + 1)}-${two(t.getUTCDate())}-${two(t.getUTCFullYear() % 100)}  ${two(hours % 12 === 0 ? 12 : hours % 12)}:${two(t.getUTCMinutes())}${hours < 12 ? 'AM' : 'PM'}`;
    const size = info.isDirectory ? '<DIR>'.padEnd(14) : String(info.size).padStart(14);
    return `${stamp}       ${size} ${name}`;
  }
  const mode = info.isDirectory ? 'drwxr-xr-x' : '-rw-r--r--';
  const date = `${MONTHS[t.getUTCMonth()]} ${String(t.getUTCDate()).padStart(2)} ${two(t.getUTCHours())}:${two(t.getUTCMinutes())}`;
  return `${mode}    1 ftp      ftp      ${String(info.size).padStart(12)} ${date} ${name}`;
}

function mdtmStamp(t: Date): string {
  return `${t.getUTCFullYear()}${two(t.getUTCMonth() + 1)}${two(t.getUTCDate())}${two(t.getUTCHours())}${two(t.getUTCMinutes())}${two(t.getUTCSeconds())}`;
}

type DataSetup =
  | { kind: 'passive'; server: Server; accepted: Promise<Socket> }
  | { kind: 'active'; host: string; port: number };

/** One control connection. */
class Session {
  #buffered = '';
  #loggedIn = false;
  #cwd = '/';
  #type = 'A';
  #restart = 0;
  #data: DataSetup | undefined;
  #busy: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #sockets = new Set<Socket>();

  constructor(
    private readonly control: Socket,
    private readonly config: ScriptedServerConfig,
    private readonly trace: (line: string) => void,
    private readonly onClose: () => void,
  ) {
    control.setEncoding('latin1');
    control.on('data', (chunk: string) => this.#onData(chunk));
    control.on('error', () => this.close());
    control.on('close', () => this.close());
    for (const line of config.variant.greeting) this.#send(line);
  }

  get #peer(): string {
    return normalizeAddress(this.control.remoteAddress);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropData();
    for (const socket of this.#sockets) socket.destroy();
    this.control.destroy();
    this.onClose();
  }

  #send(line: string): void {
    if (this.#closed) return;
    this.trace(`S: ${line}`);
    this.control.write(`${line}\r\n`);
  }

  #onData(chunk: string): void {
    this.#buffered += chunk;
    for (let end = this.#buffered.indexOf('\n'); end !== -1; end = this.#buffered.indexOf('\n')) {
      const line = this.#buffered.slice(0, end).replace(/\r$/, '');
      this.#buffered = this.#buffered.slice(end + 1);
      // Commands run one after another, so a transfer's replies stay in order.
      this.#busy = this.#busy.then(() => this.#handle(line)).catch((err: unknown) => {
        this.trace(`E: ${err instanceof Error ? err.message : String(err)}`);
        this.#send('451 Requested action aborted: local error in processing.');
      });
    }
    if (this.#buffered.length > MAX_LINE) {
      this.#send('500 Command line too long.');
      this.close();
    }
  }

  /** An FTP path as a path under root. */
  #local(path: string): { ftpPath: string; file: string } {
    const ftpPath = posix.resolve(this.#cwd, path === '' ? '.' : path);
    return { ftpPath, file: join(this.config.root, ftpPath) };
  }

  async #handle(line: string): Promise<void> {
    if (this.#closed) return;
    const space = line.indexOf(' ');
    const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
    const arg = space === -1 ? '' : line.slice(space + 1);
    this.trace(`C: ${verb === 'PASS' ? 'PASS ****' : line}`);
    const variant = this.config.variant;
    const open = ['USER', 'PASS', 'QUIT', 'SYST', 'FEAT', 'NOOP', 'OPTS', 'AUTH', 'HELP', ...(variant.passiveBeforeLogin === true ? ['PASV', 'EPSV'] : [])];
    if (!this.#loggedIn && !open.includes(verb)) {
      this.#send('530 Please login with USER and PASS.');
      return;
    }
    switch (verb) {
      case 'USER':
        this.#send('331 Please specify the password.');
        return;
      case 'PASS':
        this.#loggedIn = true;
        this.#send('230 Login successful.');
        return;
      case 'SYST':
        this.#send(variant.syst);
        return;
      case 'FEAT':
        if (variant.feat === undefined) this.#send("500 'FEAT': command not understood.");
        else for (const featLine of variant.feat) this.#send(featLine);
        return;
      case 'NOOP':
        this.#send('200 NOOP ok.');
        return;
      case 'QUIT':
        this.#send('221 Goodbye.');
        this.control.end();
        return;
      case 'OPTS':
        this.#send(/^utf8 on$/i.test(arg.trim()) ? '200 Always in UTF8 mode.' : '501 Option not understood.');
        return;
      case 'TYPE': {
        const type = arg.trim().toUpperCase();
        if (type === 'I' || type === 'L 8') this.#type = 'I';
        else if (type === 'A' || type === 'A N') this.#type = 'A';
        else {
          this.#send('504 Bad TYPE command.');
          return;
        }
        this.#send(`200 Switching to ${this.#type === 'I' ? 'Binary' : 'ASCII'} mode.`);
        return;
      }
      case 'MODE':
        this.#send(arg.trim().toUpperCase() === 'S' ? '200 Mode set to S.' : '504 Bad MODE command.');
        return;
      case 'STRU':
        this.#send(arg.trim().toUpperCase() === 'F' ? '200 Structure set to F.' : '504 Bad STRU command.');
        return;
      case 'PWD':
      case 'XPWD':
        this.#send(`257 "${this.#cwd}" is the current directory`);
        return;
      case 'CWD':
      case 'XCWD':
      case 'CDUP':
        await this.#changeDirectory(verb === 'CDUP' ? '..' : arg);
        return;
      case 'SIZE':
      case 'MDTM':
        await this.#fileFact(verb, arg);
        return;
      case 'REST': {
        const offset = Number(arg.trim());
        if (!/^\d+$/.test(arg.trim()) || !Number.isSafeInteger(offset)) {
          this.#send('501 REST needs a numeric argument.');
          return;
        }
        this.#restart = offset;
        this.#send(`350 Restart position accepted (${offset}).`);
        return;
      }
      case 'PASV':
        await this.#passive('pasv');
        return;
      case 'EPSV':
        if (variant.epsv === undefined) this.#send("500 'EPSV': command not understood.");
        else if (arg.trim().toUpperCase() === 'ALL') this.#send('200 EPSV ALL ok.');
        else await this.#passive('epsv');
        return;
      case 'PORT':
        this.#active(parsePortArgument(arg), '200 PORT command successful. Consider using PASV.', '500 Illegal PORT command.');
        return;
      case 'EPRT':
        if (!variant.eprt) this.#send("500 'EPRT': command not understood.");
        else this.#active(parseEprtArgument(arg), '200 EPRT command successful. Consider using EPSV.', '500 Bad EPRT command.');
        return;
      case 'RETR':
        await this.#retrieve(arg);
        return;
      case 'STOR':
        await this.#store(arg);
        return;
      case 'LIST':
      case 'NLST':
        await this.#list(verb, arg);
        return;
      case 'ABOR':
        this.#send('225 No transfer to ABOR.');
        return;
      default:
        this.#send(`500 '${verb}': command not understood.`);
    }
  }

  async #changeDirectory(path: string): Promise<void> {
    const { ftpPath, file } = this.#local(path);
    const info = await stat(file).catch(() => undefined);
    if (info?.isDirectory() !== true) {
      this.#send('550 Failed to change directory.');
      return;
    }
    this.#cwd = ftpPath;
    this.#send('250 Directory successfully changed.');
  }

  async #fileFact(verb: 'SIZE' | 'MDTM', path: string): Promise<void> {
    const info = await stat(this.#local(path).file).catch(() => undefined);
    if (info?.isFile() !== true) {
      this.#send(`550 Could not get file ${verb === 'SIZE' ? 'size' : 'modification time'}.`);
      return;
    }
    this.#send(`213 ${verb === 'SIZE' ? String(info.size) : mdtmStamp(info.mtime)}`);
  }

  #dropData(): void {
    const data = this.#data;
    this.#data = undefined;
    if (data?.kind === 'passive') {
      data.server.close();
      data.accepted.then((socket) => socket.destroy(), () => undefined);
    }
  }

  async #passive(kind: 'pasv' | 'epsv'): Promise<void> {
    this.#dropData();
    const template = kind === 'pasv' ? this.config.variant.pasv : this.config.variant.epsv ?? '';
    // A template that is not a 227/229 is a refusal, sent as it is.
    if (!/^22[79]/.test(template)) {
      this.#send(template);
      return;
    }
    const own = normalizeAddress(this.control.localAddress);
    if (kind === 'pasv' && !isIPv4(own)) {
      this.#send('425 PASV needs IPv4; use EPSV.');
      return;
    }
    const server = createServer();
    const accepted = new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(() => {
        server.close();
        reject(new Error('no data connection'));
      }, DATA_TIMEOUT_MS);
      timer.unref();
      server.on('connection', (socket) => {
        socket.on('error', () => undefined);
        if (this.config.checkDataPeer && normalizeAddress(socket.remoteAddress) !== this.#peer) {
          this.trace(`E: refused a data connection from ${String(socket.remoteAddress)}`);
          socket.destroy();
          return;
        }
        clearTimeout(timer);
        server.close();
        this.#sockets.add(socket);
        socket.once('close', () => this.#sockets.delete(socket));
        socket.pause();
        resolve(socket);
      });
    });
    accepted.catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: own, port: this.#pickPassivePort() }, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    this.#data = { kind: 'passive', server, accepted };
    const variant = this.config.variant;
    if (kind === 'epsv') {
      this.#send(formatPassiveReply(variant.epsv ?? '', own, port));
    } else {
      const named = variant.pasvAddress === undefined || variant.pasvAddress === 'own' ? own : variant.pasvAddress;
      this.#send(formatPassiveReply(variant.pasv, named, port));
    }
  }

  #pickPassivePort(): number {
    const { pasvMinPort: min, pasvMaxPort: max } = this.config;
    if (min === undefined || max === undefined) return 0;
    return min + Math.floor(Math.random() * (max - min + 1));
  }

  #active(target: { host: string; port: number } | undefined, ok: string, bad: string): void {
    this.#dropData();
    if (target === undefined || (this.config.checkDataPeer && (target.host !== this.#peer || target.port < 1024))) {
      this.#send(bad);
      return;
    }
    this.#data = { kind: 'active', host: target.host, port: target.port };
    this.#send(ok);
  }

  /** The data connection of the current setup, consumed. */
  async #openData(): Promise<Socket | undefined> {
    const data = this.#data;
    this.#data = undefined;
    if (data === undefined) {
      this.#send('425 Use PORT or PASV first.');
      return undefined;
    }
    try {
      if (data.kind === 'passive') return await data.accepted;
      const socket = connect({ host: data.host, port: data.port, localAddress: normalizeAddress(this.control.localAddress) });
      socket.on('error', () => undefined);
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('connect timed out')), DATA_TIMEOUT_MS);
        timer.unref();
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
      return socket;
    } catch (err) {
      this.trace(`E: data connection failed: ${err instanceof Error ? err.message : String(err)}`);
      this.#send('425 Failed to establish connection.');
      return undefined;
    }
  }

  async #retrieve(path: string): Promise<void> {
    const { ftpPath, file } = this.#local(path);
    const offset = this.#restart;
    this.#restart = 0;
    const info = await stat(file).catch(() => undefined);
    if (info?.isFile() !== true) {
      this.#dropData();
      this.#send('550 Failed to open file.');
      return;
    }
    const socket = await this.#openData();
    if (socket === undefined) return;
    const mode = this.#type === 'I' ? 'BINARY' : 'ASCII';
    this.#send(`150 Opening ${mode} mode data connection for ${posix.basename(ftpPath)} (${info.size} bytes).`);
    const abortAfter = this.config.abortRetrieveAfterBytes;
    if (abortAfter !== undefined && info.size - offset > abortAfter) {
      await this.#abortMidTransfer(createReadStream(file, { start: offset, end: offset + abortAfter - 1 }), socket);
      return;
    }
    await this.#transfer(createReadStream(file, { start: offset }), socket, 'writing');
  }

  /**
   * Sends part of a file, then 421, and closes the data connection (what
   * was written still goes out, as when a server process exits) and the
   * control connection, without a 226 or 426.
   */
  async #abortMidTransfer(source: Readable, socket: Socket): Promise<void> {
    try {
      await pipeline(source, socket, { end: false });
    } catch {
      source.destroy();
    }
    this.trace('E: shutting down in the middle of a transfer');
    this.#send('421 Service not available, closing control connection.');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, DATA_TIMEOUT_MS);
      timer.unref();
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      socket.once('close', done);
      socket.end(done);
    });
    this.control.end(() => this.close());
  }

  /** Moves the bytes, then answers 226, or 426 when the data connection failed. */
  async #transfer(source: Readable, destination: Writable, direction: 'reading' | 'writing'): Promise<void> {
    try {
      await pipeline(source, destination);
      this.#send('226 Transfer complete.');
    } catch {
      source.destroy();
      destination.destroy();
      this.#send(`426 Failure ${direction} network stream.`);
    }
  }

  async #store(path: string): Promise<void> {
    const { ftpPath, file } = this.#local(path);
    this.#restart = 0;
    if (!ftpPath.startsWith('/incoming/') || posix.basename(ftpPath) === '') {
      this.#dropData();
      this.#send('553 Could not create file.');
      return;
    }
    const socket = await this.#openData();
    if (socket === undefined) return;
    this.#send('150 Ok to send data.');
    await this.#transfer(socket, createWriteStream(file, { mode: 0o644 }), 'reading');
  }

  async #list(verb: 'LIST' | 'NLST', arg: string): Promise<void> {
    // Flags such as `-a` or `-la` are accepted and ignored.
    const path = arg.split(' ').filter((word) => word !== '' && !word.startsWith('-')).join(' ');
    const { file } = this.#local(path);
    const info = await stat(file).catch(() => undefined);
    if (info === undefined) {
      this.#dropData();
      this.#send('550 No such file or directory.');
      return;
    }
    let lines: string[];
    const style = this.config.variant.listStyle ?? 'unix';
    if (info.isDirectory()) {
      lines = [];
      for (const name of (await readdir(file)).sort()) {
        const entry = await stat(join(file, name)).catch(() => undefined);
        if (entry === undefined) continue;
        lines.push(verb === 'NLST' ? name : listLine(name, { isDirectory: entry.isDirectory(), size: entry.size, mtime: entry.mtime }, style));
      }
    } else {
      const name = posix.basename(path);
      lines = [verb === 'NLST' ? name : listLine(name, { isDirectory: false, size: info.size, mtime: info.mtime }, style)];
    }
    const socket = await this.#openData();
    if (socket === undefined) return;
    this.#send('150 Here comes the directory listing.');
    await this.#transfer(Readable.from([lines.map((line) => `${line}\r\n`).join('')]), socket, 'writing');
  }
}

/** The server itself, in this process. */
export class ScriptedFtpServer {
  readonly #server: Server;
  readonly #sessions = new Set<Session>();
  #log = '';

  private constructor(
    readonly config: ScriptedServerConfig,
    server: Server,
    private readonly echo: ((line: string) => void) | undefined,
  ) {
    this.#server = server;
    server.on('connection', (socket) => {
      socket.on('error', () => undefined);
      const session: Session = new Session(socket, config, (line) => this.#trace(line), () => this.#sessions.delete(session));
      this.#sessions.add(session);
    });
  }

  /** Listens on config.host:config.port (0: any free port). `echo` receives every trace line too. */
  static async listen(config: ScriptedServerConfig, echo?: (line: string) => void): Promise<ScriptedFtpServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: config.host, port: config.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new ScriptedFtpServer(config, server, echo);
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Every command received (`C:`) and reply line sent (`S:`), newest last. */
  log(): string {
    return this.#log;
  }

  #trace(line: string): void {
    this.#log += `${line}\n`;
    if (this.#log.length > LOG_LIMIT) this.#log = this.#log.slice(-LOG_LIMIT);
    this.echo?.(line);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const session of this.#sessions) session.close();
    await closed;
  }
}

/**
 * Starts the scripted server: in this process, or, with `netns`, as a child
 * process inside that namespace (Node cannot enter one itself). Uploads are
 * written as the calling user; root is not needed outside namespaces.
 */
export async function startScriptedFtpServer(opts: ScriptedFtpServerOptions): Promise<ScriptedFtpServerInstance> {
  const variant = resolveVariant(opts.variant);
  const host = opts.listenAddress ?? '127.0.0.1';
  const root = opts.root;
  const uploadDir = await prepareAnonymousTree(root, undefined);
  const config: ScriptedServerConfig = {
    root,
    host,
    port: opts.port ?? (opts.netns === undefined ? 0 : 21),
    variant,
    checkDataPeer: opts.checkDataPeer ?? true,
    ...(opts.pasvMinPort === undefined ? {} : { pasvMinPort: opts.pasvMinPort }),
    ...(opts.pasvMaxPort === undefined ? {} : { pasvMaxPort: opts.pasvMaxPort }),
    ...(opts.abortRetrieveAfterBytes === undefined ? {} : { abortRetrieveAfterBytes: opts.abortRetrieveAfterBytes }),
  };
  if (opts.netns === undefined) {
    const server = await ScriptedFtpServer.listen(config);
    return { host, port: server.port, root, uploadDir, netns: undefined, pid: undefined, variant, log: () => server.log(), stop: () => server.close() };
  }
  return launchFtpServer({ name: 'scripted FTP server' }, async (adopt) => {
    const proc = adopt(await startProcess(process.execPath, ['--import', 'tsx', RUNNER, JSON.stringify(config)], { netns: opts.netns, cwd: REPO_ROOT }));
    await proc.waitForOutput(LISTENING, START_TIMEOUT_MS);
    const port = Number(LISTENING.exec(proc.stdout())?.[2]);
    return { host, port, root, uploadDir, netns: opts.netns, variant };
  });
}
