import { checkActiveCommand, type ActiveVerb } from '../ftp/activeTarget.js';
import { parseCommandLine, stripTelnetInterrupt } from '../ftp/commands.js';
import { activeRefusalReply } from '../ftp/controlState.js';
import type { ActiveTarget } from '../ftp/dataAddresses.js';
import { featFacts, formatFacts, formatListLine, formatTimeVal, MLST_FACTS, parseTimeVal, selectFacts, fileKind, type ListEntry, type MlstFact } from './listing.js';
import { baseName, decodePathArgument, hasGlob, joinPath, parentPath, quoteForReply, resolvePath } from './paths.js';
import type { FsFailureKind } from './sftpErrors.js';

/**
 * The FTP server side of the bridge as a pure state machine: one complete
 * command line in, the replies to send and at most one effect (work with
 * SFTP or sockets) out. The session carries the effect out and reports
 * how it went; the reply to that comes from here too. No I/O, no timers:
 * every reply text and every rule about what may follow what lives here.
 *
 * Commands are handled one at a time: the session passes the next line
 * only after the effect of the previous one has been reported, except
 * while a transfer runs, when ABOR, STAT and NOOP are answered at once and
 * everything else waits (`defer`).
 */

export type PassiveVerb = 'PASV' | 'EPSV';
export type TransferCommand = 'RETR' | 'STOR' | 'APPE' | 'STOU' | 'LIST' | 'NLST' | 'MLSD';

/** How the data connection of the next transfer is made. */
export type DataSetup = { kind: 'none' } | { kind: 'passive' } | { kind: 'active'; target: ActiveTarget };

export interface TransferRequest {
  command: TransferCommand;
  /** Virtual path: the file, or the directory to list (for a glob, the directory it is in). */
  path: string;
  /** LIST/NLST: the pattern of the last component, when it has wildcards. */
  glob: string | null;
  /** NLST: what each name is prefixed with (the directory part of a pattern argument). */
  namePrefix: string;
  /** The path argument as the client gave it (decoded), or '' without one. */
  argument: string;
  /** REST: where RETR starts reading or STOR starts writing. */
  offset: number;
  ascii: boolean;
  data: DataSetup & { kind: 'passive' | 'active' };
  facts: readonly MlstFact[];
  /** STOU: whether the client proposed a name (tried first), or `path` only names the directory's default. */
  nameGiven: boolean;
}

export type FsOp =
  | { op: 'cwd'; path: string }
  | { op: 'size'; path: string; ascii: boolean }
  | { op: 'mdtm'; path: string }
  | { op: 'mlst'; path: string }
  | { op: 'stat'; path: string }
  | { op: 'mkdir'; path: string }
  | { op: 'rmdir'; path: string }
  | { op: 'delete'; path: string }
  | { op: 'rnfr'; path: string }
  | { op: 'rnto'; from: string; to: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'mfmt'; path: string; mtime: number };

/** What a file operation found; which fields are set depends on the op. */
export type FsResult =
  | { ok: true; entry?: ListEntry; size?: number; entries?: ListEntry[]; truncated?: boolean }
  | { ok: false; kind: FsFailureKind };

export type Effect =
  | { kind: 'login'; user: string; password: string }
  | { kind: 'passive'; verb: PassiveVerb }
  | { kind: 'fs'; op: FsOp }
  | { kind: 'transfer'; transfer: TransferRequest }
  /** ABOR during a transfer: stop it at once; its reply comes with transferFinished. */
  | { kind: 'abort' }
  /** STAT during a transfer: report progress with transferStatus. */
  | { kind: 'transfer-status' }
  /** Send the replies, then close the control connection. */
  | { kind: 'close' };

export interface Step {
  replies: string[];
  effect?: Effect;
  /** A transfer is running: hand this line in again once it has finished. */
  defer?: boolean;
}

/** How a transfer ended, as far as the reply is concerned. */
export type TransferOutcome =
  | { kind: 'complete' }
  /** Refused before any data moved (no 150 was sent for it). */
  | { kind: 'refused'; reason: TransferRefusal }
  /** No data connection could be made after the 150. */
  | { kind: 'no-data-connection' }
  /** The client's data connection broke (or closed early on a download). */
  | { kind: 'data-connection-lost' }
  /** ABOR. */
  | { kind: 'aborted' }
  /** The server failed mid-transfer. */
  | { kind: 'server-failed'; failure: FsFailureKind }
  /** The SSH connection went away: 426 here, then 421 for the session. */
  | { kind: 'ssh-lost' };

export type TransferRefusal =
  | { kind: 'fs'; failure: FsFailureKind }
  | { kind: 'not-a-file' }
  | { kind: 'not-a-directory' }
  | { kind: 'rest-beyond-end'; size: number };

export interface ProtocolOptions {
  /** The control connection's peer, normalised: PORT/EPRT must name it. */
  clientAddress: string;
  /** The address family of the control connection, which PASV/EPSV/EPRT must match. */
  family: 4 | 6;
  /** PORT/EPRT below this port are refused. */
  minimumActivePort: number;
  /** Failed logins before the session is closed. */
  maxLoginFailures: number;
  /** `user@host` of the SSH server, for STAT. */
  serverDescription: string;
}

type Phase = 'user' | 'password' | 'logging-in' | 'ready';

export const REPLIES = {
  greeting: '220 ftpfwd FTP-to-SFTP bridge ready.',
  syntax: '500 Syntax error, command unrecognized.',
  badCharacter: '500 Command refused: it contains a NUL or CR byte.',
  notImplemented: '502 Command not implemented.',
  notLoggedIn: '530 Please login with USER and PASS.',
  loginIncorrect: '530 Login incorrect.',
  tooManyFailures: '421 Too many failed login attempts; closing control connection.',
  loginUnavailable: '421 Service not available: cannot log in to the SSH server now; try again later.',
  goodbye: '221 Goodbye.',
  badArgument: (detail: string) => `501 Syntax error in parameters or arguments: ${detail}.`,
  notUtf8: '553 File name not allowed: it is not valid UTF-8.',
  noDataSetup: '425 Use PORT, EPRT, PASV or EPSV first.',
  cannotOpenData: '425 Cannot open data connection.',
  passiveFailed: '425 Cannot open a passive data connection.',
  epsvAll: '501 EPSV ALL is in effect: only EPSV may set up data connections.',
  pasvIpv6: '425 PASV cannot name an IPv6 address; use EPSV.',
  transferAborted: '426 Connection closed; transfer aborted.',
  sshLost: '426 Transfer aborted: the SSH connection was lost.',
  sessionLost: '421 Service not available, closing control connection: the SSH connection was lost.',
  aborOk: '226 ABOR successful.',
  noTransfer: '225 No transfer to abort.',
} as const;

/** The commands FEAT announces; each is implemented below. */
const FEATURES = ['EPRT', 'EPSV', 'MDTM', 'MFMT', 'MLST', 'PASV', 'REST STREAM', 'SIZE', 'TVFS', 'UTF8'] as const;

/** Every verb the bridge implements, for HELP; anything else gets 502. */
const IMPLEMENTED = [
  'ABOR', 'ACCT', 'APPE', 'CDUP', 'CWD', 'DELE', 'EPRT', 'EPSV', 'FEAT', 'HELP', 'LIST', 'MDTM', 'MFMT', 'MKD', 'MLSD', 'MLST', 'MODE', 'NLST',
  'NOOP', 'OPTS', 'PASS', 'PASV', 'PORT', 'PWD', 'QUIT', 'REST', 'RETR', 'RMD', 'RNFR', 'RNTO', 'SITE', 'SIZE', 'STAT', 'STOR', 'STOU', 'STRU',
  'SYST', 'TYPE', 'USER', 'XCUP', 'XCWD', 'XMKD', 'XPWD', 'XRMD',
] as const;

/** Verbs answered before login: the rest get 530. */
const BEFORE_LOGIN = new Set(['USER', 'PASS', 'QUIT', 'FEAT', 'HELP', 'NOOP', 'OPTS', 'SYST', 'ACCT']);

/** Answered while a transfer runs; everything else waits for its end (RFC 959 4.1.3). */
const DURING_TRANSFER = new Set(['ABOR', 'STAT', 'NOOP']);

/** Lines of a STAT listing sent over the control connection, at most. */
export const MAX_STAT_ENTRIES = 2000;

function multiLine(code: number, first: string, lines: readonly string[], last: string): string {
  // Every inner line starts with a space, so none can look like the end of the reply.
  return [`${code}-${first}`, ...lines.map((line) => ` ${line}`), `${code} ${last}`].join('\r\n');
}

const FS_TEXT: Record<FsFailureKind, string> = {
  'no-such-file': 'No such file or directory.',
  'permission-denied': 'Permission denied.',
  failure: 'Requested action not taken (the SSH server reported a failure).',
  unsupported: 'The SSH server does not support this operation.',
  'bad-message': 'The SSH server could not process the request.',
  'connection-lost': 'The SSH connection was lost.',
  timeout: 'The SSH server did not answer in time.',
  'outside-root': 'Permission denied: outside the served directory.',
};

/** The reply to a failed file operation (RFC 959: 550 for a file that is unavailable, 451 for local trouble). */
export function fsFailureReply(kind: FsFailureKind): string {
  switch (kind) {
    case 'no-such-file':
    case 'permission-denied':
    case 'outside-root':
    case 'failure':
      return `550 ${FS_TEXT[kind]}`;
    case 'unsupported':
      return `502 ${FS_TEXT[kind]}`;
    case 'bad-message':
    case 'timeout':
    case 'connection-lost':
      return `451 ${FS_TEXT[kind]}`;
  }
}

/** Splits `LIST -la path` into its options and its path (as ls does, options come first). */
export function splitListArgument(argument: string): { options: string; path: string } {
  let rest = argument;
  let options = '';
  while (rest.startsWith('-')) {
    const space = rest.indexOf(' ');
    options += space === -1 ? rest.slice(1) : rest.slice(1, space);
    rest = space === -1 ? '' : rest.slice(space + 1).replace(/^ +/, '');
  }
  return { options, path: rest };
}

export class BridgeProtocol {
  private phase: Phase = 'user';
  private user: string | null = null;
  private cwd = '/';
  private type: 'A' | 'I' = 'A';
  private restOffset = 0;
  private renameFrom: string | null = null;
  private data: DataSetup = { kind: 'none' };
  private epsvAll = false;
  private facts: MlstFact[] = [...MLST_FACTS];
  private loginFailures = 0;
  private transfer: { request: TransferRequest; abortRequested: boolean } | null = null;
  /** The effect whose outcome is awaited; guards against reports out of turn. */
  private awaiting: Effect['kind'] | null = null;

  constructor(private readonly options: ProtocolOptions) {}

  greeting(): string {
    return REPLIES.greeting;
  }

  get transferring(): boolean {
    return this.transfer !== null;
  }

  get loggedInUser(): string | null {
    return this.phase === 'ready' ? this.user : null;
  }

  get workingDirectory(): string {
    return this.cwd;
  }

  /** How the next transfer's data connection is to be made. */
  get dataSetup(): DataSetup['kind'] {
    return this.data.kind;
  }

  onLine(raw: Buffer): Step {
    const command = parseCommandLine(stripTelnetInterrupt(raw));
    if (command.kind === 'invalid') {
      return this.reply(command.reason === 'nul' || command.reason === 'lone-cr' ? REPLIES.badCharacter : REPLIES.syntax);
    }
    const { verb, argument } = command;
    if (this.transfer) return DURING_TRANSFER.has(verb) ? this.duringTransfer(verb, argument) : { replies: [], defer: true };
    if (this.awaiting !== null) throw new Error(`a line arrived while the outcome of ${this.awaiting} is awaited`);
    // RNTO must come straight after RNFR (RFC 959 4.1.3).
    const renameFrom = this.renameFrom;
    this.renameFrom = null;
    if (this.phase !== 'ready' && !BEFORE_LOGIN.has(verb)) {
      return this.reply(IMPLEMENTED.includes(verb as (typeof IMPLEMENTED)[number]) ? REPLIES.notLoggedIn : REPLIES.notImplemented);
    }
    return this.dispatch(verb, argument, renameFrom);
  }

  private dispatch(verb: string, argument: string, renameFrom: string | null): Step {
    switch (verb) {
      case 'USER':
        return this.onUser(argument);
      case 'PASS':
        return this.onPass(argument);
      case 'ACCT':
        return this.reply('502 ACCT not implemented: no account is needed.');
      case 'QUIT':
        return { replies: [REPLIES.goodbye], effect: { kind: 'close' } };
      case 'NOOP':
        return this.reply('200 NOOP ok.');
      case 'SYST':
        return this.reply('215 UNIX Type: L8');
      case 'FEAT':
        return this.reply(multiLine(211, 'Features:', FEATURES.map((feature) => (feature === 'MLST' ? `MLST ${featFacts(this.facts)}` : feature)), 'End'));
      case 'HELP':
        return this.onHelp(argument);
      case 'OPTS':
        return this.onOpts(argument);
      case 'STAT':
        return argument === '' ? this.reply(this.status()) : this.pathOp(argument, (path) => ({ op: 'stat', path }), { allowGlob: false, list: true });
      case 'PWD':
      case 'XPWD':
        return this.reply(`257 ${quoteForReply(this.cwd)} is the current directory.`);
      case 'CWD':
      case 'XCWD':
        return this.pathOp(argument, (path) => ({ op: 'cwd', path }));
      case 'CDUP':
      case 'XCUP':
        return this.fs({ op: 'cwd', path: parentPath(this.cwd) });
      case 'TYPE':
        return this.onType(argument);
      case 'MODE':
        return this.reply(/^s$/i.test(argument) ? '200 Mode set to S.' : argument === '' ? REPLIES.badArgument('MODE takes S') : '504 Only MODE S is supported.');
      case 'STRU':
        return this.reply(/^f$/i.test(argument) ? '200 Structure set to F.' : argument === '' ? REPLIES.badArgument('STRU takes F') : '504 Only STRU F is supported.');
      case 'PASV':
        return this.onPassive('PASV', argument);
      case 'EPSV':
        return this.onPassive('EPSV', argument);
      case 'PORT':
      case 'EPRT':
        return this.onActive(verb, argument);
      case 'REST':
        return this.onRest(argument);
      case 'RETR':
      case 'STOR':
      case 'APPE':
      case 'STOU':
      case 'LIST':
      case 'NLST':
      case 'MLSD':
        return this.onTransfer(verb, argument);
      case 'MLST':
        return argument === '' ? this.fs({ op: 'mlst', path: this.cwd }) : this.pathOp(argument, (path) => ({ op: 'mlst', path }));
      case 'SIZE':
        return this.pathOp(argument, (path) => ({ op: 'size', path, ascii: this.type === 'A' }));
      case 'MDTM':
        return this.pathOp(argument, (path) => ({ op: 'mdtm', path }));
      case 'MFMT':
        return this.onMfmt(argument);
      case 'MKD':
      case 'XMKD':
        return this.pathOp(argument, (path) => ({ op: 'mkdir', path }), { notRoot: true });
      case 'RMD':
      case 'XRMD':
        return this.pathOp(argument, (path) => ({ op: 'rmdir', path }), { notRoot: true });
      case 'DELE':
        return this.pathOp(argument, (path) => ({ op: 'delete', path }), { notRoot: true });
      case 'RNFR':
        return this.pathOp(argument, (path) => ({ op: 'rnfr', path }), { notRoot: true });
      case 'RNTO':
        if (renameFrom === null) return this.reply('503 Bad sequence of commands: send RNFR first.');
        return this.pathOp(argument, (path) => ({ op: 'rnto', from: renameFrom, to: path }), { notRoot: true });
      case 'SITE':
        return this.onSite(argument);
      case 'ABOR':
        return this.reply(REPLIES.noTransfer);
      default:
        return this.reply(REPLIES.notImplemented);
    }
  }

  private reply(text: string): Step {
    return { replies: [text] };
  }

  private fs(op: FsOp): Step {
    this.awaiting = 'fs';
    return { replies: [], effect: { kind: 'fs', op } };
  }

  /** A command on one path: decoded, resolved against the working directory, checked. */
  private pathOp(argument: string, makeOp: (path: string) => FsOp, rules: { notRoot?: boolean; allowGlob?: boolean; list?: boolean } = {}): Step {
    const text = rules.list ? splitListArgument(argument).path : argument;
    if (text === '' && !rules.list) return this.reply(REPLIES.badArgument('a path name is required'));
    const decoded = decodePathArgument(text);
    if (decoded === null) return this.reply(REPLIES.notUtf8);
    const path = resolvePath(this.cwd, decoded);
    if (rules.notRoot && path === '/') return this.reply('550 Permission denied: not allowed on the top directory.');
    return this.fs(makeOp(path));
  }

  private onUser(argument: string): Step {
    if (this.phase === 'ready') return this.reply("530 Can't change to another user.");
    if (argument === '') return this.reply(REPLIES.badArgument('USER takes a user name'));
    const user = decodePathArgument(argument);
    if (user === null) return this.reply(REPLIES.badArgument('the user name is not valid UTF-8'));
    this.user = user;
    this.phase = 'password';
    return this.reply(`331 Password required for ${user}.`);
  }

  private onPass(argument: string): Step {
    if (this.phase === 'ready') return this.reply('230 Already logged in.');
    if (this.phase !== 'password' || this.user === null) return this.reply('503 Bad sequence of commands: send USER first.');
    const password = decodePathArgument(argument);
    this.phase = 'logging-in';
    this.awaiting = 'login';
    // A password that is not UTF-8 cannot be right; it still takes the failure path and its delay.
    return { replies: [], effect: { kind: 'login', user: this.user, password: password ?? '\u0000' } };
  }

  /** The login succeeded; `home` is the virtual directory to start in. */
  loginSucceeded(home: string): Step {
    this.expect('login');
    this.phase = 'ready';
    this.cwd = home;
    this.loginFailures = 0;
    return this.reply('230 Login successful.');
  }

  /** The login failed: wrong credentials (`denied`), or the SSH side could not be reached. */
  loginFailed(reason: 'denied' | 'unavailable'): Step {
    this.expect('login');
    this.user = null;
    this.phase = 'user';
    if (reason === 'unavailable') return { replies: [REPLIES.loginUnavailable], effect: { kind: 'close' } };
    this.loginFailures += 1;
    if (this.loginFailures >= this.options.maxLoginFailures) return { replies: [REPLIES.loginIncorrect, REPLIES.tooManyFailures], effect: { kind: 'close' } };
    return this.reply(REPLIES.loginIncorrect);
  }

  private onHelp(argument: string): Step {
    if (argument !== '') {
      const verb = argument.trim().toUpperCase();
      const known = IMPLEMENTED.includes(verb as (typeof IMPLEMENTED)[number]);
      return this.reply(known ? `214 ${verb} is implemented.` : `502 Unknown command ${verb.replace(/[^A-Z]/g, '')}.`);
    }
    const rows: string[] = [];
    for (let index = 0; index < IMPLEMENTED.length; index += 8) rows.push(IMPLEMENTED.slice(index, index + 8).join(' '));
    return this.reply(multiLine(214, 'The following commands are recognized:', rows, 'Help OK.'));
  }

  private onOpts(argument: string): Step {
    const [name = '', ...rest] = argument.trim().split(/\s+/);
    const value = rest.join(' ');
    switch (name.toUpperCase()) {
      case 'UTF8':
      case 'UTF-8':
        if (/^on$/i.test(value) || value === '') return this.reply('200 Always in UTF8 mode.');
        return this.reply('504 UTF8 cannot be switched off: names are UTF-8 on the SFTP side.');
      case 'MLST':
        this.facts = selectFacts(value);
        return this.reply(`200 MLST OPTS ${this.facts.map((fact) => `${fact};`).join('')}`);
      default:
        return this.reply('501 Option not understood.');
    }
  }

  private status(): string {
    const lines = [
      'ftpfwd FTP-to-SFTP bridge',
      `Connected from ${this.options.clientAddress}`,
      this.phase === 'ready' ? `Logged in as ${this.user ?? ''}` : 'Not logged in',
      `Files served over SFTP by ${this.options.serverDescription}`,
      `TYPE: ${this.type === 'A' ? 'ASCII' : 'BINARY'}, MODE: Stream, STRU: File`,
      `Data connection: ${this.data.kind === 'none' ? 'none set up' : this.data.kind}`,
    ];
    return multiLine(211, 'FTP server status:', lines, 'End of status');
  }

  private onType(argument: string): Step {
    const parts = argument.trim().toUpperCase().split(/\s+/);
    const [kind, format] = parts;
    if (kind === 'A' && (format === undefined || format === 'N') && parts.length <= 2) {
      this.type = 'A';
      return this.reply('200 Type set to A.');
    }
    if ((kind === 'I' && parts.length === 1) || (kind === 'L' && format === '8' && parts.length === 2)) {
      this.type = 'I';
      return this.reply('200 Type set to I.');
    }
    if (kind === undefined || kind === '') return this.reply(REPLIES.badArgument('TYPE takes A or I'));
    return this.reply('504 Only TYPE A (non-print) and TYPE I are supported.');
  }

  private onPassive(verb: PassiveVerb, argument: string): Step {
    if (verb === 'EPSV') {
      const arg = argument.trim().toUpperCase();
      if (arg === 'ALL') {
        this.epsvAll = true;
        return this.reply('200 EPSV ALL ok.');
      }
      if (arg !== '' && arg !== String(this.options.family === 4 ? 1 : 2)) {
        return this.reply(/^[12]$/.test(arg) ? `522 Network protocol not supported, use (${this.options.family === 4 ? 1 : 2}).` : REPLIES.badArgument('EPSV takes 1, 2 or ALL'));
      }
    } else {
      if (this.epsvAll) return this.reply(REPLIES.epsvAll);
      if (this.options.family === 6) return this.reply(REPLIES.pasvIpv6);
    }
    this.data = { kind: 'none' };
    this.awaiting = 'passive';
    return { replies: [], effect: { kind: 'passive', verb } };
  }

  /** The passive listener is up at host:port (host: the IPv4 address the client connected to). */
  passiveReady(verb: PassiveVerb, host: string, port: number): Step {
    this.expect('passive');
    this.data = { kind: 'passive' };
    if (verb === 'EPSV') return this.reply(`229 Entering Extended Passive Mode (|||${port}|).`);
    return this.reply(`227 Entering Passive Mode (${host.split('.').join(',')},${port >> 8},${port & 0xff}).`);
  }

  passiveFailed(): Step {
    this.expect('passive');
    return this.reply(REPLIES.passiveFailed);
  }

  private onActive(verb: ActiveVerb, argument: string): Step {
    if (this.epsvAll) return this.reply(REPLIES.epsvAll);
    if (verb === 'EPRT') {
      const family = /^(.)([12])\1/.exec(argument.trim())?.[2];
      const own = this.options.family === 4 ? '1' : '2';
      if (family !== undefined && family !== own) return this.reply(`522 Network protocol not supported, use (${own}).`);
    }
    const checked = checkActiveCommand(verb, argument, this.options.clientAddress, this.options.minimumActivePort);
    if (!checked.ok) return this.reply(activeRefusalReply(checked.refusal));
    this.data = { kind: 'active', target: checked.target };
    return this.reply(`200 ${verb} command successful.`);
  }

  private onRest(argument: string): Step {
    if (!/^\d{1,15}$/.test(argument.trim())) return this.reply(REPLIES.badArgument('REST takes a byte offset'));
    this.restOffset = Number(argument.trim());
    return this.reply(`350 Restarting at ${this.restOffset}. Send STOR or RETR to initiate transfer.`);
  }

  private onMfmt(argument: string): Step {
    const match = /^(\S+) (.+)$/.exec(argument);
    const mtime = match ? parseTimeVal(match[1]!) : null;
    if (!match || mtime === null) return this.reply(REPLIES.badArgument('MFMT takes YYYYMMDDHHMMSS and a path'));
    return this.pathOp(match[2]!, (path) => ({ op: 'mfmt', path, mtime }));
  }

  private onSite(argument: string): Step {
    const [sub = '', ...rest] = argument.split(' ');
    switch (sub.toUpperCase()) {
      case 'CHMOD': {
        const mode = rest[0] ?? '';
        const path = rest.slice(1).join(' ');
        if (!/^[0-7]{1,4}$/.test(mode) || path === '') return this.reply(REPLIES.badArgument('SITE CHMOD takes an octal mode and a path'));
        return this.pathOp(path, (resolved) => ({ op: 'chmod', path: resolved, mode: parseInt(mode, 8) }));
      }
      case 'HELP':
        return this.reply('214 SITE commands: CHMOD HELP');
      default:
        return this.reply('502 SITE command not implemented; SITE CHMOD and SITE HELP are.');
    }
  }

  private onTransfer(verb: TransferCommand, argument: string): Step {
    const offset = this.restOffset;
    this.restOffset = 0;
    const listing = verb === 'LIST' || verb === 'NLST' || verb === 'MLSD';
    const text = verb === 'LIST' || verb === 'NLST' ? splitListArgument(argument).path : argument;
    if (text === '' && !listing && verb !== 'STOU') return this.reply(REPLIES.badArgument(`${verb} takes a file name`));
    const decoded = text === '' ? '' : decodePathArgument(text);
    if (decoded === null) return this.reply(REPLIES.notUtf8);
    if (this.data.kind === 'none') return this.reply(REPLIES.noDataSetup);
    const data = this.data;
    this.data = { kind: 'none' };
    let path = decoded === '' ? this.cwd : resolvePath(this.cwd, decoded);
    let glob: string | null = null;
    let namePrefix = '';
    if ((verb === 'LIST' || verb === 'NLST') && decoded !== '' && hasGlob(baseName(path))) {
      glob = baseName(path);
      path = parentPath(path);
      const slash = decoded.lastIndexOf('/');
      namePrefix = slash === -1 ? '' : decoded.slice(0, slash + 1);
    }
    if (verb === 'STOU' && decoded === '') path = joinPath(this.cwd, 'ftpfwd');
    const transfer: TransferRequest = {
      command: verb,
      path,
      glob,
      namePrefix,
      argument: decoded,
      offset: verb === 'RETR' || verb === 'STOR' ? offset : 0,
      ascii: this.type === 'A',
      data,
      facts: this.facts,
      nameGiven: decoded !== '',
    };
    this.transfer = { request: transfer, abortRequested: false };
    return { replies: [], effect: { kind: 'transfer', transfer } };
  }

  private duringTransfer(verb: string, argument: string): Step {
    switch (verb) {
      case 'ABOR':
        if (this.transfer) this.transfer.abortRequested = true;
        return { replies: [], effect: { kind: 'abort' } };
      case 'STAT':
        if (argument !== '') return this.reply('425 A transfer is in progress; STAT of a path must wait.');
        return { replies: [], effect: { kind: 'transfer-status' } };
      default:
        return this.reply('200 NOOP ok.');
    }
  }

  /** STAT during a transfer: how far it got. */
  transferStatus(bytes: number): string {
    const command = this.transfer?.request.command ?? 'transfer';
    return multiLine(213, 'Status:', [`${command} in progress, ${bytes} bytes so far`], 'End of status');
  }

  /** The preliminary reply once the file is open and the data connection is next. */
  transferStarting(info: { size?: number; uniqueName?: string }): string {
    const request = this.transfer?.request;
    if (!request) throw new Error('no transfer is starting');
    const mode = request.ascii ? 'ASCII' : 'BINARY';
    switch (request.command) {
      case 'LIST':
      case 'NLST':
      case 'MLSD':
        return `150 Here comes the directory listing.`;
      case 'RETR': {
        const size = info.size !== undefined && !request.ascii ? ` (${info.size} bytes)` : '';
        return `150 Opening ${mode} mode data connection for ${baseName(request.path)}${size}.`;
      }
      case 'STOU':
        // RFC 1123 4.1.2.9: the name goes into the 150 reply.
        return `150 FILE: ${info.uniqueName ?? ''}`;
      case 'STOR':
      case 'APPE':
        return `150 Opening ${mode} mode data connection for ${baseName(request.path)}.`;
    }
  }

  /** The transfer ended: its final reply, and ABOR's if one came. */
  transferFinished(outcome: TransferOutcome): Step {
    const current = this.transfer;
    if (!current) throw new Error('no transfer is running');
    this.transfer = null;
    const listing = current.request.command === 'LIST' || current.request.command === 'NLST' || current.request.command === 'MLSD';
    const replies: string[] = [];
    switch (outcome.kind) {
      case 'complete':
        replies.push(listing ? '226 Directory send OK.' : '226 Transfer complete.');
        break;
      case 'refused':
        replies.push(refusalReply(outcome.reason));
        break;
      case 'no-data-connection':
        replies.push(REPLIES.cannotOpenData);
        break;
      case 'data-connection-lost':
      case 'aborted':
        replies.push(REPLIES.transferAborted);
        break;
      case 'server-failed':
        replies.push(`451 Transfer aborted: ${FS_TEXT[outcome.failure]}`);
        break;
      case 'ssh-lost':
        return { replies: [REPLIES.sshLost, ...(current.abortRequested ? [REPLIES.aborOk] : []), REPLIES.sessionLost], effect: { kind: 'close' } };
    }
    if (current.abortRequested) replies.push(REPLIES.aborOk);
    return { replies };
  }

  /** The outcome of an `fs` effect. */
  fsDone(op: FsOp, result: FsResult): Step {
    this.expect('fs');
    if (!result.ok) {
      if (result.kind === 'connection-lost') return { replies: [REPLIES.sessionLost], effect: { kind: 'close' } };
      return this.reply(fsFailureReply(result.kind));
    }
    const entry = result.entry;
    const kind = entry ? fileKind(entry.attrs.mode) : null;
    switch (op.op) {
      case 'cwd':
        if (kind !== 'dir') return this.reply('550 Failed to change directory: not a directory.');
        this.cwd = op.path;
        return this.reply('250 Directory successfully changed.');
      case 'size':
        if (kind !== 'file') return this.reply('550 Could not get file size: not a regular file.');
        if (result.size === undefined) return this.reply('550 Could not get file size in ASCII mode: the file is too large; use TYPE I.');
        return this.reply(`213 ${result.size}`);
      case 'mdtm':
        if (kind !== 'file' || entry?.attrs.mtime === undefined) return this.reply('550 Could not get file modification time.');
        return this.reply(`213 ${formatTimeVal(entry.attrs.mtime)}`);
      case 'mlst':
        if (!entry) return this.reply(fsFailureReply('no-such-file'));
        return this.reply(multiLine(250, `Listing ${op.path}`, [`${formatFacts(entry, this.facts)} ${op.path}`], 'End'));
      case 'stat': {
        const now = Math.floor(Date.now() / 1000);
        const lines = (result.entries ?? []).map((listed) => formatListLine(listed, now));
        if (result.truncated) lines.push(`(listing cut at ${MAX_STAT_ENTRIES} entries; use LIST)`);
        return this.reply(multiLine(213, `Status of ${op.path}:`, lines, 'End of status'));
      }
      case 'mkdir':
        return this.reply(`257 ${quoteForReply(op.path)} created.`);
      case 'rmdir':
        return this.reply('250 Remove directory operation successful.');
      case 'delete':
        return this.reply('250 Delete operation successful.');
      case 'rnfr':
        this.renameFrom = op.path;
        return this.reply('350 Ready for RNTO.');
      case 'rnto':
        return this.reply('250 Rename successful.');
      case 'chmod':
        return this.reply('200 SITE CHMOD command ok.');
      case 'mfmt':
        return this.reply(`213 Modify=${formatTimeVal(op.mtime)}; ${op.path}`);
    }
  }

  private expect(kind: Effect['kind']): void {
    if (this.awaiting !== kind) throw new Error(`the outcome of ${kind} was reported, but ${this.awaiting ?? 'nothing'} is awaited`);
    this.awaiting = null;
  }
}

function refusalReply(reason: TransferRefusal): string {
  switch (reason.kind) {
    case 'fs':
      return fsFailureReply(reason.failure);
    case 'not-a-file':
      return '550 Not a regular file.';
    case 'not-a-directory':
      return '501 Not a directory: MLSD lists directories; use MLST for a file.';
    case 'rest-beyond-end':
      return `554 Restart point is beyond the end of the file (${reason.size} bytes).`;
  }
}
