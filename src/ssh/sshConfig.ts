/**
 * OpenSSH client configuration (ssh_config(5)), resolved for one destination
 * the way `ssh -G` does it.
 *
 * Parsing of the file text is the `ssh-config` package's. Its `compute()` is
 * not used: it does not follow OpenSSH (`?` matches zero or one character,
 * `Host a,b` is split on the comma, `Include` is ignored, `Match` criteria
 * are kept in a record so repeats and `!negation` are lost, `Match host`
 * sees HostName before `%h` expansion, IdentityFile is not de-duplicated,
 * keyword case matters, and it runs `Match exec` commands and nslookup).
 * Instead the parsed lines are walked here, as readconf.c does:
 *
 * - every keyword keeps its first obtained value; IdentityFile accumulates
 *   (duplicates dropped), ProxyJump and ProxyCommand share one slot;
 * - `-l`/`-p`/user@ (userOverride, portOverride) and then `-o` options are
 *   applied before the file, so they win;
 * - `Host` patterns (whitespace-separated, `*`, `?`, `!`) are matched, case
 *   sensitively, against the alias as typed; `Match host` (comma pattern
 *   list, case-insensitive) against HostName with `%h` expanded;
 * - `Match final` or CanonicalizeHostname trigger a second pass in which
 *   `Host` matches the resolved host name and `final`/`canonical` match;
 * - `Include` is read at load time wherever it appears (so its syntax errors
 *   are reported like ssh's), relative paths under ~/.ssh, globbed, nested
 *   at most 16 deep; inside a block that does not apply, nothing in the
 *   included file applies either;
 * - value errors are reported for every line, applied or not, with file and
 *   line; unknown keywords are errors unless IgnoreUnknown names them.
 *
 * Not done: hostname canonicalisation (reported as unsupported),
 * `Match exec`/`tagged`/... (reported; the block is treated as not
 * matching), service names as Port, the permission check on the file, and
 * /etc/ssh/ssh_config (only the user file or -F is read).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile as readFileFromFs } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import SSHConfig, { LineType, type Directive, type Line } from 'ssh-config';
import { FtpfwdError } from '../errors.js';
import { matchSshPattern } from './patterns.js';

export type StrictHostKeyCheckingValue = 'yes' | 'accept-new' | 'no';

export interface UnsupportedSshOption {
  key: string;
  value: string;
  file: string;
  line?: number;
  securityRelevant: boolean;
}

export interface ResolvedSshConfig {
  /** HostName with `%h` expanded, else the alias; lower-cased as ssh does. */
  hostName: string;
  user?: string;
  port?: number;
  /** All IdentityFile values in order, `~`, `%` tokens and `${ENV}` expanded; `none` dropped. */
  identityFiles: string[];
  /** True when any IdentityFile (even `none`) applied: OpenSSH then adds none of its default files. */
  identityFilesConfigured: boolean;
  identitiesOnly?: boolean;
  /** 'none', 'SSH_AUTH_SOCK', or a socket path with `~`, `%` tokens and `${ENV}` expanded. */
  identityAgent?: string;
  /** The raw ProxyJump value; absent for `none`. */
  proxyJump?: string;
  /** Expanded like IdentityFile; `none` gives an empty list. */
  userKnownHostsFiles?: string[];
  globalKnownHostsFiles?: string[];
  strictHostKeyChecking?: StrictHostKeyCheckingValue;
  /** Seconds. */
  serverAliveInterval?: number;
  serverAliveCountMax?: number;
  /** Seconds. */
  connectTimeout?: number;
  batchMode?: boolean;
  passwordAuthentication?: boolean;
  kbdInteractiveAuthentication?: boolean;
  pubkeyAuthentication?: boolean;
  hashKnownHosts?: boolean;
  /** Keys present for this host that ftpfwd does not implement. */
  unsupported: UnsupportedSshOption[];
}

/** Where a line came from; `option` is set for `-o` overrides. */
export interface SshConfigSource {
  file: string;
  line?: number;
  option?: string;
}

export type SshMatchCriterion =
  | { attribute: 'all' | 'canonical' | 'final'; negate: boolean }
  | { attribute: 'host' | 'originalhost' | 'user' | 'localuser'; negate: boolean; patterns: string }
  /** Known to OpenSSH but not evaluated here (exec, tagged, localnetwork, ...). */
  | { attribute: 'unsupported'; name: string; negate: boolean; argument: string };

type FlagKey = 'identitiesOnly' | 'batchMode' | 'passwordAuthentication' | 'kbdInteractiveAuthentication' | 'pubkeyAuthentication' | 'hashKnownHosts';
type TimeKey = 'serverAliveInterval' | 'connectTimeout';
type ListKey = 'userKnownHostsFiles' | 'globalKnownHostsFiles';
type StringKey = 'hostName' | 'user' | 'identityAgent' | 'ignoreUnknown' | 'hostKeyAlias';

/** A line's value, checked when the file is loaded. */
export type SshOptionValue =
  | { kind: 'string'; key: StringKey; value: string }
  | { kind: 'port'; value: number }
  | { kind: 'flag'; key: FlagKey; value: boolean }
  /** undefined: `none`, which leaves the option unset. */
  | { kind: 'time'; key: TimeKey; value: number | undefined }
  | { kind: 'count'; value: number }
  | { kind: 'list'; key: ListKey; value: string[] }
  | { kind: 'strictHostKeyChecking'; value: StrictHostKeyCheckingValue }
  | { kind: 'identityFile'; value: string }
  | { kind: 'proxy'; command: boolean; value: string }
  | { kind: 'unsupported'; slot: string; name: string; securityRelevant: boolean; accumulates: boolean; inert: boolean }
  | { kind: 'ignored' }
  | { kind: 'unknown' };

export type SshConfigEntry =
  | { kind: 'host'; patterns: string[]; source: SshConfigSource }
  | { kind: 'match'; criteria: SshMatchCriterion[]; source: SshConfigSource }
  | { kind: 'include'; files: SshConfigFile[]; source: SshConfigSource }
  | { kind: 'option'; keyword: string; args: string[]; value: SshOptionValue; source: SshConfigSource };

export interface SshConfigFile {
  path: string;
  entries: SshConfigEntry[];
}

export interface ParsedSshConfig {
  /** The file read first (-F, or ~/.ssh/config). */
  path: string;
  /** False when the default file does not exist (or -F none). */
  found: boolean;
  entries: SshConfigEntry[];
  /** Every file read, included ones too, in reading order. */
  files: string[];
}

/** Returns the file's text, or null when it does not exist. */
export type ReadConfigFile = (path: string) => Promise<string | null>;
/** Returns the names in a directory, or null when it cannot be listed. */
export type ListConfigDirectory = (path: string) => Promise<string[] | null>;

export interface LoadSshConfigOptions {
  /** `-F`: must exist; `none` reads nothing. Default ~/.ssh/config, which may be missing. */
  file?: string;
  homeDir: string;
  readFile?: ReadConfigFile;
  /** For globbing Include paths. */
  listDirectory?: ListConfigDirectory;
}

export interface ResolveHostContext {
  localUser: string;
  homeDir: string;
  env: Record<string, string | undefined>;
  /** `-o Key=Value` options, applied before the file; an array for a key given several times. */
  overrides?: Record<string, string | string[]>;
  /** `-l user` or user@ in the destination; wins over everything. */
  userOverride?: string;
  /** `-p port`; wins over everything. */
  portOverride?: number;
  /** For `%l`/`%L`/`%C`; default os.hostname(). */
  localHostName?: string;
  /** For `%i`; default process.getuid(). */
  localUid?: number;
}

/** readconf.c READCONF_MAX_DEPTH */
const MAX_INCLUDE_DEPTH = 16;
/** SSH_MAX_IDENTITY_FILES */
const MAX_IDENTITY_FILES = 100;
/** SSH_MAX_HOSTS_FILES */
const MAX_HOSTS_FILES = 32;
const DEFAULT_PORT = 22;
const INT_MAX = 2 ** 31 - 1;

// ---------------------------------------------------------------------------
// Keywords

type UnsupportedSpec = { kind: 'unsupported'; name: string; securityRelevant: boolean; inert?: readonly string[]; accumulates?: boolean };
type KeywordSpec = { kind: 'supported' } | { kind: 'ignored' } | UnsupportedSpec;

const OFF = ['no', 'false'] as const;

function unsupported(name: string, securityRelevant: boolean, extra: { inert?: readonly string[]; accumulates?: boolean } = {}): UnsupportedSpec {
  return { kind: 'unsupported', name, securityRelevant, ...extra };
}

/**
 * Every client keyword of OpenSSH up to 10.x (plus Apple's UseKeychain), by
 * its lower-case name. Keys ftpfwd does not implement are:
 *
 * - reported with securityRelevant: true when honouring them changes who or
 *   what is trusted or run: commands (ProxyCommand, LocalCommand,
 *   KnownHostsCommand), host-key checking (HostKeyAlias, CheckHostIP,
 *   VerifyHostKeyDNS, RevokedHostKeys), algorithm restrictions, other key
 *   sources (CertificateFile, PKCS11Provider, SecurityKeyProvider), GSSAPI,
 *   agent forwarding, canonicalisation, RefuseConnection;
 * - reported with securityRelevant: false when the user may expect an effect
 *   a port forwarder does not give (forwards, bind address, address family,
 *   connection attempts, preferred authentications, ...);
 * - ignored silently when they cannot matter to a forwarder (terminal,
 *   session, X11, logging, multiplexing, SendEnv, Compression, keepalive
 *   socket options, AddKeysToAgent, deprecated keywords).
 *
 * A value listed as inert (e.g. `ForwardAgent no`) is what ftpfwd does
 * anyway, so it is not reported.
 */
const KEYWORDS: ReadonlyMap<string, KeywordSpec> = new Map<string, KeywordSpec>([
  // implemented
  ...[
    'host', 'match', 'include', 'hostname', 'user', 'port', 'identityfile', 'identityfile2', 'identitiesonly', 'identityagent',
    'proxyjump', 'proxycommand', 'userknownhostsfile', 'globalknownhostsfile', 'stricthostkeychecking', 'serveraliveinterval',
    'serveralivecountmax', 'connecttimeout', 'batchmode', 'passwordauthentication', 'kbdinteractiveauthentication',
    'challengeresponseauthentication', 'skeyauthentication', 'tisauthentication', 'pubkeyauthentication', 'dsaauthentication',
    'hashknownhosts', 'ignoreunknown', 'hostkeyalias',
  ].map((name): [string, KeywordSpec] => [name, { kind: 'supported' }]),
  // security relevant
  ['localcommand', unsupported('LocalCommand', true)],
  ['permitlocalcommand', unsupported('PermitLocalCommand', true, { inert: OFF })],
  ['forwardagent', unsupported('ForwardAgent', true, { inert: OFF })],
  ['certificatefile', unsupported('CertificateFile', true, { accumulates: true })],
  ['pkcs11provider', unsupported('PKCS11Provider', true, { inert: ['none'] })],
  ['smartcarddevice', unsupported('PKCS11Provider', true, { inert: ['none'] })],
  ['securitykeyprovider', unsupported('SecurityKeyProvider', true, { inert: ['internal'] })],
  ['knownhostscommand', unsupported('KnownHostsCommand', true, { inert: ['none'] })],
  ['checkhostip', unsupported('CheckHostIP', true, { inert: OFF })],
  ['verifyhostkeydns', unsupported('VerifyHostKeyDNS', true, { inert: OFF })],
  ['revokedhostkeys', unsupported('RevokedHostKeys', true, { inert: ['none'] })],
  ['ciphers', unsupported('Ciphers', true)],
  ['kexalgorithms', unsupported('KexAlgorithms', true)],
  ['macs', unsupported('MACs', true)],
  ['hostkeyalgorithms', unsupported('HostKeyAlgorithms', true)],
  ['casignaturealgorithms', unsupported('CASignatureAlgorithms', true)],
  ['pubkeyacceptedalgorithms', unsupported('PubkeyAcceptedAlgorithms', true)],
  ['pubkeyacceptedkeytypes', unsupported('PubkeyAcceptedAlgorithms', true)],
  ['hostbasedacceptedalgorithms', unsupported('HostbasedAcceptedAlgorithms', true)],
  ['hostbasedkeytypes', unsupported('HostbasedAcceptedAlgorithms', true)],
  ['requiredrsasize', unsupported('RequiredRSASize', true)],
  ['canonicalizehostname', unsupported('CanonicalizeHostname', true, { inert: OFF })],
  ['refuseconnection', unsupported('RefuseConnection', true, { inert: OFF })],
  // not security relevant, but the user may expect an effect
  ['localforward', unsupported('LocalForward', false, { accumulates: true })],
  ['remoteforward', unsupported('RemoteForward', false, { accumulates: true })],
  ['dynamicforward', unsupported('DynamicForward', false, { accumulates: true })],
  ['gatewayports', unsupported('GatewayPorts', false, { inert: OFF })],
  ['permitremoteopen', unsupported('PermitRemoteOpen', false, { inert: ['any'] })],
  ['tunnel', unsupported('Tunnel', false, { inert: OFF })],
  ['tunneldevice', unsupported('TunnelDevice', false)],
  ['connectionattempts', unsupported('ConnectionAttempts', false, { inert: ['1'] })],
  ['numberofpasswordprompts', unsupported('NumberOfPasswordPrompts', false)],
  ['preferredauthentications', unsupported('PreferredAuthentications', false)],
  ['hostbasedauthentication', unsupported('HostbasedAuthentication', false, { inert: OFF })],
  ['enablesshkeysign', unsupported('EnableSSHKeysign', false, { inert: OFF })],
  ['bindaddress', unsupported('BindAddress', false)],
  ['bindinterface', unsupported('BindInterface', false)],
  ['addressfamily', unsupported('AddressFamily', false, { inert: ['any'] })],
  ['rekeylimit', unsupported('RekeyLimit', false)],
  ['nohostauthenticationforlocalhost', unsupported('NoHostAuthenticationForLocalhost', false, { inert: OFF })],
  ['updatehostkeys', unsupported('UpdateHostKeys', false, { inert: OFF })],
  // irrelevant to a port forwarder
  ...[
    'addkeystoagent', 'kbdinteractivedevices', 'forwardx11', 'forwardx11trusted', 'forwardx11timeout', 'xauthlocation',
    'clearallforwardings', 'exitonforwardfailure', 'sendenv', 'setenv', 'controlmaster', 'controlpath', 'controlpersist',
    'compression', 'tcpkeepalive', 'keepalive', 'ipqos', 'loglevel', 'logverbose', 'syslogfacility', 'escapechar',
    'enableescapecommandline', 'requesttty', 'remotecommand', 'sessiontype', 'stdinnull', 'forkafterauthentication',
    'visualhostkey', 'fingerprinthash', 'streamlocalbindmask', 'streamlocalbindunlink', 'proxyusefdpass', 'canonicaldomains',
    'canonicalizemaxdots', 'canonicalizefallbacklocal', 'canonicalizepermittedcnames', 'channeltimeout',
    'obscurekeystroketiming', 'tag', 'warnweakcrypto', 'versionaddendum', 'usekeychain',
    // ignored or deprecated by OpenSSH itself
    'protocol', 'cipher', 'fallbacktorsh', 'globalknownhostsfile2', 'rhostsauthentication', 'userknownhostsfile2', 'useroaming',
    'usersh', 'useprivilegedport', 'afstokenpassing', 'kerberosauthentication', 'kerberostgtpassing', 'rsaauthentication',
    'rhostsrsaauthentication', 'compressionlevel',
  ].map((name): [string, KeywordSpec] => [name, { kind: 'ignored' }]),
]);

/** `written` is the keyword as the file spells it, to name the GSSAPI keywords. */
function keywordSpec(keyword: string, written: string): KeywordSpec | undefined {
  const spec = KEYWORDS.get(keyword);
  if (spec !== undefined) return spec;
  // GSSAPIAuthentication, GSSAPIDelegateCredentials and the distributions' GSSAPI key-exchange keywords.
  if (keyword.startsWith('gssapi')) return unsupported(written, true, { inert: OFF });
  return undefined;
}

// ---------------------------------------------------------------------------
// Errors

const COMMAND_LINE = 'command line';

function describeSource(source: SshConfigSource): string {
  if (source.option !== undefined) return `-o ${source.option}`;
  return source.line === undefined ? source.file : `${source.file} line ${source.line}`;
}

/** A bad `-o` value is a usage error, as for every other command-line option; a bad file is a config error. */
function lineError(source: SshConfigSource, message: string, cause?: unknown): FtpfwdError {
  const details: Record<string, string | number> = { file: source.file };
  if (source.line !== undefined) details['line'] = source.line;
  return new FtpfwdError(source.option === undefined ? 'ERR_FTPFWD_CONFIG' : 'ERR_FTPFWD_USAGE', `${describeSource(source)}: ${message}`, {
    details,
    ...(cause === undefined ? {} : { cause }),
  });
}

// ---------------------------------------------------------------------------
// Value parsing (readconf.c's rules)

function parseFlag(arg: string, source: SshConfigSource): boolean {
  switch (arg.toLowerCase()) {
    case 'yes':
    case 'true':
      return true;
    case 'no':
    case 'false':
      return false;
    default:
      throw lineError(source, `unsupported option "${arg}".`);
  }
}

function parseStrictHostKeyChecking(arg: string, source: SshConfigSource): StrictHostKeyCheckingValue {
  switch (arg.toLowerCase()) {
    case 'yes':
    case 'true':
    case 'ask': // ftpfwd never asks about host keys: ask behaves as yes
      return 'yes';
    case 'no':
    case 'false':
    case 'off':
      return 'no';
    case 'accept-new':
      return 'accept-new';
    default:
      throw lineError(source, `unsupported option "${arg}".`);
  }
}

function parsePubkeyAuthentication(arg: string, source: SshConfigSource): boolean {
  const lower = arg.toLowerCase();
  if (lower === 'unbound' || lower === 'host-bound') return true;
  return parseFlag(arg, source);
}

/** misc.c convtime(): `90`, `1m30s`, `2h`; s m h d w units. */
export function parseSshTime(text: string): number | undefined {
  if (text === '') return undefined;
  const units: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  const part = /(\d+)([smhdw]?)/iy;
  let total = 0;
  let index = 0;
  while (index < text.length) {
    part.lastIndex = index;
    const match = part.exec(text);
    if (match === null) return undefined;
    const unit = match[2]!.toLowerCase();
    index = part.lastIndex;
    if (unit === '' && index < text.length) return undefined;
    total += Number(match[1]) * units[unit]!;
    if (total > INT_MAX) return undefined;
  }
  return total;
}

function parsePortNumber(arg: string): number | undefined {
  if (!/^\d{1,5}$/.test(arg)) return undefined;
  const port = Number(arg);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** readconf.c parse_jump(), syntax only: `[user@]host[:port]` or `ssh://[user@]host[:port]`, comma-separated. */
function validProxyJump(value: string): boolean {
  if (value.toLowerCase() === 'none') return true;
  return value.split(',').every((hop) => {
    let rest = hop.startsWith('ssh://') ? hop.slice('ssh://'.length) : hop;
    const at = rest.lastIndexOf('@');
    if (at === 0) return false;
    if (at > 0) rest = rest.slice(at + 1);
    let host = rest;
    let port: string | undefined;
    if (rest.startsWith('[')) {
      const close = rest.indexOf(']');
      if (close === -1) return false;
      host = rest.slice(1, close);
      const after = rest.slice(close + 1);
      if (after !== '') {
        if (!after.startsWith(':')) return false;
        port = after.slice(1);
      }
    } else {
      const colon = rest.indexOf(':');
      if (colon !== -1) {
        host = rest.slice(0, colon);
        port = rest.slice(colon + 1);
      }
    }
    return host !== '' && !/[\s/]/.test(host) && (port === undefined || parsePortNumber(port) !== undefined);
  });
}

function expectArgs(keyword: string, args: readonly string[], source: SshConfigSource, max = 1): void {
  if (args.length > max) throw lineError(source, `keyword ${keyword} extra arguments at end of line`);
}

/** Interprets one option line; throws for values OpenSSH rejects (whether the line applies or not). */
function interpretOption(keyword: string, written: string, args: readonly string[], source: SshConfigSource): SshOptionValue {
  const spec = keywordSpec(keyword, written);
  if (spec === undefined) return { kind: 'unknown' };
  if (spec.kind === 'ignored') return { kind: 'ignored' };
  if (spec.kind === 'unsupported') {
    const joined = args.join(' ').toLowerCase();
    return {
      kind: 'unsupported',
      slot: spec.name.toLowerCase(),
      name: spec.name,
      securityRelevant: spec.securityRelevant,
      accumulates: spec.accumulates === true,
      inert: spec.inert?.includes(joined) === true,
    };
  }
  const arg = args[0]!;
  switch (keyword) {
    case 'hostname':
    case 'user':
    case 'identityagent':
    case 'ignoreunknown':
    case 'hostkeyalias': {
      expectArgs(keyword, args, source);
      const key: StringKey =
        keyword === 'hostname' ? 'hostName' : keyword === 'user' ? 'user' : keyword === 'identityagent' ? 'identityAgent' : keyword === 'ignoreunknown' ? 'ignoreUnknown' : 'hostKeyAlias';
      return { kind: 'string', key, value: arg };
    }
    case 'port': {
      expectArgs(keyword, args, source);
      const port = parsePortNumber(arg);
      if (port === undefined) throw lineError(source, `Bad port '${arg}'.`);
      return { kind: 'port', value: port };
    }
    case 'identityfile':
    case 'identityfile2':
      expectArgs(keyword, args, source);
      return { kind: 'identityFile', value: arg };
    case 'identitiesonly':
    case 'batchmode':
    case 'passwordauthentication':
    case 'hashknownhosts':
    case 'kbdinteractiveauthentication':
    case 'challengeresponseauthentication':
    case 'skeyauthentication':
    case 'tisauthentication': {
      expectArgs(keyword, args, source);
      const key: FlagKey =
        keyword === 'identitiesonly' ? 'identitiesOnly' : keyword === 'batchmode' ? 'batchMode' : keyword === 'passwordauthentication' ? 'passwordAuthentication' : keyword === 'hashknownhosts' ? 'hashKnownHosts' : 'kbdInteractiveAuthentication';
      return { kind: 'flag', key, value: parseFlag(arg, source) };
    }
    case 'pubkeyauthentication':
    case 'dsaauthentication':
      expectArgs(keyword, args, source);
      return { kind: 'flag', key: 'pubkeyAuthentication', value: parsePubkeyAuthentication(arg, source) };
    case 'stricthostkeychecking':
      expectArgs(keyword, args, source);
      return { kind: 'strictHostKeyChecking', value: parseStrictHostKeyChecking(arg, source) };
    case 'serveraliveinterval':
    case 'connecttimeout': {
      expectArgs(keyword, args, source);
      const key: TimeKey = keyword === 'connecttimeout' ? 'connectTimeout' : 'serverAliveInterval';
      if (arg === 'none') return { kind: 'time', key, value: undefined };
      const seconds = parseSshTime(arg);
      if (seconds === undefined) throw lineError(source, `invalid time value "${arg}".`);
      return { kind: 'time', key, value: seconds };
    }
    case 'serveralivecountmax': {
      expectArgs(keyword, args, source);
      const value = /^\d{1,10}$/.test(arg) ? Number(arg) : Number.NaN;
      if (!(value <= INT_MAX)) throw lineError(source, `integer value "${arg}" is invalid.`);
      return { kind: 'count', value };
    }
    case 'userknownhostsfile':
    case 'globalknownhostsfile': {
      if (args.length > 1 && args.some((a) => a.toLowerCase() === 'none')) {
        throw lineError(source, `keyword ${keyword} "none" argument must appear alone.`);
      }
      if (args.length > MAX_HOSTS_FILES) throw lineError(source, `keyword ${keyword} too many known hosts files.`);
      return { kind: 'list', key: keyword === 'userknownhostsfile' ? 'userKnownHostsFiles' : 'globalKnownHostsFiles', value: [...args] };
    }
    case 'proxyjump': {
      const value = args.join(' ');
      if (args.length > 1 || !validProxyJump(value)) throw lineError(source, `Invalid ProxyJump "${value}"`);
      return { kind: 'proxy', command: false, value };
    }
    case 'proxycommand':
      return { kind: 'proxy', command: true, value: args.join(' ') };
    default:
      throw new Error(`keyword ${keyword} has no interpretation`);
  }
}

const MATCH_ATTRIBUTES_WITH_ARGUMENT = new Set(['host', 'originalhost', 'user', 'localuser']);
/** Match attributes of OpenSSH (some newer than 9.x) that are not evaluated here. */
const MATCH_ATTRIBUTES_UNSUPPORTED = new Set(['exec', 'tagged', 'localnetwork', 'version', 'sessiontype', 'command']);

/** readconf.c match_cfg_line(), parsing half. */
function parseMatchCriteria(args: readonly string[], source: SshConfigSource): SshMatchCriterion[] {
  const criteria: SshMatchCriterion[] = [];
  let attributes = 0;
  for (let index = 0; index < args.length; index++) {
    const written = args[index]!;
    const negate = written.startsWith('!');
    const name = (negate ? written.slice(1) : written).toLowerCase();
    if (name === 'all') {
      if (attributes > 1 || index + 1 < args.length) throw lineError(source, `'${written}' cannot be combined with other Match attributes`);
      criteria.push({ attribute: 'all', negate });
      return criteria;
    }
    attributes++;
    if (name === 'canonical' || name === 'final') {
      criteria.push({ attribute: name, negate });
      continue;
    }
    const known = MATCH_ATTRIBUTES_WITH_ARGUMENT.has(name) || MATCH_ATTRIBUTES_UNSUPPORTED.has(name);
    if (!known) throw lineError(source, `Unsupported Match attribute ${written}`);
    const argument = args[index + 1];
    if (argument === undefined || argument === '') throw lineError(source, `Missing Match criteria for ${written}`);
    index++;
    if (name === 'host' || name === 'originalhost' || name === 'user' || name === 'localuser') {
      criteria.push({ attribute: name, negate, patterns: argument });
    } else {
      criteria.push({ attribute: 'unsupported', name, negate, argument });
    }
  }
  if (attributes === 0) throw lineError(source, 'One or more attributes required for Match');
  return criteria;
}

// ---------------------------------------------------------------------------
// Patterns (match.c)

export { matchSshPattern };

/** match_pattern_list(): comma-separated, `!` negates; 1 match, 0 no match, -1 negated match. */
export function matchSshPatternList(text: string, list: string, lowerCasePatterns: boolean): -1 | 0 | 1 {
  let positive = false;
  for (const item of list.split(',')) {
    const negated = item.startsWith('!');
    let pattern = negated ? item.slice(1) : item;
    if (lowerCasePatterns) pattern = pattern.toLowerCase();
    if (matchSshPattern(text, pattern)) {
      if (negated) return -1;
      positive = true;
    }
  }
  return positive ? 1 : 0;
}

/** A `Host` line: some pattern matches and no negated one does. */
function hostLineMatches(patterns: readonly string[], host: string): boolean {
  let active = false;
  for (const written of patterns) {
    const negated = written.startsWith('!');
    if (matchSshPattern(host, negated ? written.slice(1) : written)) {
      if (negated) return false;
      active = true;
    }
  }
  return active;
}

// ---------------------------------------------------------------------------
// Reading files

/** Keywords whose values the ssh-config package splits into words (its RE_MULTI_VALUE_DIRECTIVE); others come as one string. */
const LIBRARY_MULTI_VALUE = new Set([
  'globalknownhostsfile', 'host', 'ipqos', 'sendenv', 'userknownhostsfile', 'proxycommand', 'knownhostscommand', 'match', 'canonicaldomains', 'include',
]);

function directiveArgs(directive: Directive, keyword: string): string[] {
  const { value } = directive;
  if (Array.isArray(value)) return value.map((item) => item.val);
  if (LIBRARY_MULTI_VALUE.has(keyword) || directive.quoted === true) return [value];
  return value === '' ? [] : value.split(/[ \t]+/);
}

function countNewlines(text: string): number {
  let count = 0;
  for (const char of text) if (char === '\n' || char === '\r') count++;
  // \r\n is one line break
  return count - (text.match(/\r\n/g)?.length ?? 0);
}

/** The directives in file order with their line numbers (the package keeps the whitespace around each line). */
function directivesWithLines(config: readonly Line[]): Array<{ directive: Directive; line: number }> {
  const result: Array<{ directive: Directive; line: number }> = [];
  let breaks = 0;
  const visit = (lines: readonly Line[]): void => {
    for (const node of lines) {
      breaks += countNewlines(node.before);
      if (node.type === LineType.DIRECTIVE) {
        result.push({ directive: node, line: breaks + 1 });
        breaks += countNewlines(node.param);
      }
      breaks += countNewlines(node.after);
      if ('config' in node) visit(node.config);
    }
  };
  visit(config);
  return result;
}

function parseWithLibrary(text: string, path: string): SSHConfig {
  try {
    return SSHConfig.parse(text);
  } catch (error) {
    // The package does not say which line failed: find it by parsing line by line.
    const lines = text.split(/\r\n|\r|\n/);
    let line: number | undefined;
    for (let index = 0; index < lines.length && line === undefined; index++) {
      try {
        SSHConfig.parse(lines[index]!);
      } catch {
        line = index + 1;
      }
    }
    const message = error instanceof Error ? error.message : String(error);
    throw lineError(line === undefined ? { file: path } : { file: path, line }, `cannot parse: ${message}`, error);
  }
}

interface UnresolvedInclude {
  kind: 'pending-include';
  patterns: string[];
  source: SshConfigSource;
}

type PendingEntry = Exclude<SshConfigEntry, { kind: 'include' }> | UnresolvedInclude;

/**
 * OpenSSH reads `#` as a comment only at the start of a word and accepts
 * single quotes; the ssh-config package cuts a value at any `#` and keeps
 * single quotes. Lines whose values are used are refused rather than misread.
 */
function checkQuoting(rawLine: string, source: SshConfigSource): void {
  let quoted = false;
  for (let index = 0; index < rawLine.length; index++) {
    const char = rawLine[index]!;
    if (char === '\\') index++;
    else if (char === '"') quoted = !quoted;
    else if (!quoted && char === "'") throw lineError(source, 'single quotes are not supported: use double quotes');
    else if (!quoted && char === '#') {
      if (index === 0 || /[ \t=]/.test(rawLine[index - 1]!)) return; // a comment
      throw lineError(source, "a '#' inside a value must be in double quotes");
    }
  }
}

/** One file's lines as entries, values checked; Include left for the loader. */
function parseConfigText(text: string, path: string): PendingEntry[] {
  const entries: PendingEntry[] = [];
  const rawLines = text.split(/\r\n|\r|\n/);
  for (const { directive, line } of directivesWithLines(parseWithLibrary(text, path))) {
    const source: SshConfigSource = { file: path, line };
    const written = directive.param.split(/\s/)[0]!;
    if (written !== directive.param) throw lineError(source, `no argument after keyword "${written.toLowerCase()}"`);
    const keyword = written.toLowerCase();
    if (keywordSpec(keyword, written)?.kind === 'supported') checkQuoting(rawLines[line - 1] ?? '', source);
    entries.push(parseEntry(written, directiveArgs(directive, keyword), source));
  }
  return entries;
}

function parseEntry(written: string, args: string[], source: SshConfigSource): PendingEntry {
  const keyword = written.toLowerCase();
  if (args.length === 0) throw lineError(source, `no argument after keyword "${keyword}"`);
  if (args.some((arg) => arg === '')) throw lineError(source, `keyword ${keyword} empty argument`);
  switch (keyword) {
    case 'host':
      return { kind: 'host', patterns: args, source };
    case 'match':
      return { kind: 'match', criteria: parseMatchCriteria(args, source), source };
    case 'include':
      return { kind: 'pending-include', patterns: args, source };
    default:
      return { kind: 'option', keyword, args, value: interpretOption(keyword, written, args, source), source };
  }
}

async function readConfigFileFromDisk(path: string): Promise<string | null> {
  try {
    return await readFileFromFs(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new FtpfwdError('ERR_FTPFWD_CONFIG', `cannot read ssh config file ${path}: ${(error as Error).message}`, { cause: error, details: { file: path } });
  }
}

async function listDirectoryFromDisk(path: string): Promise<string[] | null> {
  try {
    return await readdir(path);
  } catch {
    return null;
  }
}

/** `~`, `~/x`, `~user` and `~user/x` (the local user only), as misc.c tilde_expand_filename(). */
function expandTilde(path: string, homeDir: string, localUser: string, source: SshConfigSource): string {
  if (!path.startsWith('~')) return path;
  const slash = path.indexOf('/');
  const user = path.slice(1, slash === -1 ? undefined : slash);
  if (user !== '' && user !== localUser) throw lineError(source, `cannot expand ~${user}: only the local user's home directory is known`);
  const rest = slash === -1 ? '' : path.slice(slash + 1).replace(/^\/+/, '');
  return `${homeDir}${homeDir.endsWith('/') ? '' : '/'}${rest}`;
}

const GLOB_MAGIC = /[*?[]/;

/** fnmatch() for one path component: `*`, `?`, `[...]`, `\` escapes; wildcards do not match a leading dot. */
function matchGlobComponent(name: string, pattern: string): boolean {
  if (name.startsWith('.') && !pattern.startsWith('.') && !pattern.startsWith('\\.')) return false;
  const match = (n: number, p: number): boolean => {
    while (p < pattern.length) {
      const char = pattern[p]!;
      if (char === '*') {
        for (let k = n; k <= name.length; k++) if (match(k, p + 1)) return true;
        return false;
      }
      if (n >= name.length) return false;
      if (char === '?') {
        n++;
        p++;
      } else if (char === '[') {
        const close = pattern.indexOf(']', p + 2);
        if (close === -1) {
          if (name[n] !== '[') return false;
          n++;
          p++;
          continue;
        }
        let set = pattern.slice(p + 1, close);
        const negated = set.startsWith('!') || set.startsWith('^');
        if (negated) set = set.slice(1);
        let found = false;
        for (let i = 0; i < set.length; i++) {
          if (set[i + 1] === '-' && i + 2 < set.length) {
            if (name[n]! >= set[i]! && name[n]! <= set[i + 2]!) found = true;
            i += 2;
          } else if (set[i] === name[n]) {
            found = true;
          }
        }
        if (found === negated) return false;
        n++;
        p = close + 1;
      } else {
        const literal = char === '\\' && p + 1 < pattern.length ? pattern[++p]! : char;
        if (name[n] !== literal) return false;
        n++;
        p++;
      }
    }
    return n === name.length;
  };
  return match(0, 0);
}

/** glob(3) for an Include path: sorted matches; a path without wildcards is returned as is (a missing file is skipped later). */
async function expandGlob(pattern: string, listDirectory: ListConfigDirectory): Promise<string[]> {
  if (!GLOB_MAGIC.test(pattern)) return [pattern.replace(/\\(.)/g, '$1')];
  const absolute = pattern.startsWith('/');
  let bases = [absolute ? '/' : ''];
  for (const part of pattern.split('/').filter((piece) => piece !== '')) {
    const next: string[] = [];
    for (const base of bases) {
      if (!GLOB_MAGIC.test(part)) {
        next.push(`${base}${part.replace(/\\(.)/g, '$1')}/`);
        continue;
      }
      const names = await listDirectory(base === '' ? '.' : base);
      for (const name of names ?? []) if (matchGlobComponent(name, part)) next.push(`${base}${name}/`);
    }
    bases = next;
  }
  return bases.map((path) => path.slice(0, -1)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Reads the user's ssh_config (or `-F file`) and every file it includes, and
 * checks each line's value. Host-independent: resolve with resolveHost().
 */
export async function loadSshConfig(options: LoadSshConfigOptions): Promise<ParsedSshConfig> {
  const readFile = options.readFile ?? readConfigFileFromDisk;
  const listDirectory = options.listDirectory ?? listDirectoryFromDisk;
  const explicit = options.file !== undefined;
  const path = options.file ?? join(options.homeDir, '.ssh', 'config');
  const files: string[] = [];
  if (explicit && path === 'none') return { path, found: false, entries: [], files };

  const load = async (text: string, file: string, depth: number): Promise<SshConfigEntry[]> => {
    files.push(file);
    const entries: SshConfigEntry[] = [];
    for (const entry of parseConfigText(text, file)) {
      if (entry.kind !== 'pending-include') {
        entries.push(entry);
        continue;
      }
      const included: SshConfigFile[] = [];
      for (const pattern of entry.patterns) {
        // Relative paths are under ~/.ssh, since every file read here is a user configuration file.
        const anchored = pattern.startsWith('/') || pattern.startsWith('~') ? pattern : `~/.ssh/${pattern}`;
        const expanded = anchored.startsWith('~') ? expandTildeForInclude(anchored, options.homeDir, entry.source) : anchored;
        for (const match of await expandGlob(expanded, listDirectory)) {
          if (depth + 1 > MAX_INCLUDE_DEPTH) throw lineError(entry.source, 'Too many recursive configuration includes');
          const includedText = await readFile(match);
          if (includedText === null) continue;
          included.push({ path: match, entries: await load(includedText, match, depth + 1) });
        }
      }
      entries.push({ kind: 'include', files: included, source: entry.source });
    }
    return entries;
  };

  const text = await readFile(path);
  if (text === null) {
    if (explicit) throw new FtpfwdError('ERR_FTPFWD_CONFIG', `Can't open user config file ${path}: No such file or directory`, { details: { file: path } });
    return { path, found: false, entries: [], files };
  }
  return { path, found: true, entries: await load(text, path, 0), files };
}

/** Include's `~` is glob(3)'s GLOB_TILDE: `~` and `~/` only mean the user's home here. */
function expandTildeForInclude(path: string, homeDir: string, source: SshConfigSource): string {
  const slash = path.indexOf('/');
  const user = path.slice(1, slash === -1 ? undefined : slash);
  if (user !== '') throw lineError(source, `bad include path ${path}: only ~/ is supported`);
  return `${homeDir.replace(/\/+$/, '')}${slash === -1 ? '' : path.slice(slash)}`;
}

// ---------------------------------------------------------------------------
// Resolution

interface Sourced<T> {
  value: T;
  source: SshConfigSource;
}

interface Obtained {
  strings: Partial<Record<StringKey, Sourced<string>>>;
  port?: number;
  flags: Partial<Record<FlagKey, boolean>>;
  times: Partial<Record<TimeKey, number>>;
  serverAliveCountMax?: number;
  lists: Partial<Record<ListKey, Sourced<string[]>>>;
  strictHostKeyChecking?: StrictHostKeyCheckingValue;
  identityFiles: Array<Sourced<string>>;
  proxy?: Sourced<{ command: boolean; value: string }>;
  /** Unsupported single-valued keywords already obtained, with whether the value was inert. */
  unsupportedSlots: Map<string, boolean>;
}

interface Walk {
  alias: string;
  /** What `Host` lines match: the alias, or the resolved host name in the final pass. */
  host: string;
  finalPass: boolean;
  wantFinalPass: boolean;
  localUser: string;
  obtained: Obtained;
  unsupported: UnsupportedSshOption[];
  reported: Set<string>;
}

function report(walk: Walk, key: string, value: string, source: SshConfigSource, securityRelevant: boolean): void {
  const file = source.option === undefined ? source.file : COMMAND_LINE;
  const id = `${key}\0${value}\0${file}\0${source.line ?? ''}`;
  if (walk.reported.has(id)) return;
  walk.reported.add(id);
  walk.unsupported.push({ key, value, file, ...(source.line === undefined ? {} : { line: source.line }), securityRelevant });
}

/** The host `Match host` sees: HostName with %h expanded, else the alias. */
function matchHostName(walk: Walk): string {
  const hostName = walk.obtained.strings.hostName;
  if (walk.finalPass || hostName === undefined) return hostName?.value ?? walk.alias;
  return expandPercent(hostName.value, { h: walk.alias }, undefined, hostName.source, 'HostName');
}

/** readconf.c match_cfg_line(), evaluation half. */
function evaluateMatch(criteria: readonly SshMatchCriterion[], source: SshConfigSource, walk: Walk, neverMatch: boolean): boolean {
  let result = true;
  for (const criterion of criteria) {
    let matched: boolean;
    switch (criterion.attribute) {
      case 'all':
        return result && !criterion.negate;
      case 'canonical':
      case 'final':
        if (criterion.attribute === 'final' && !walk.finalPass) walk.wantFinalPass = true;
        matched = walk.finalPass;
        break;
      case 'host':
        matched = matchSshPatternList(matchHostName(walk).toLowerCase(), criterion.patterns, true) === 1;
        break;
      case 'originalhost':
        matched = matchSshPatternList(walk.alias.toLowerCase(), criterion.patterns, true) === 1;
        break;
      case 'user':
        matched = matchSshPatternList(walk.obtained.strings.user?.value ?? walk.localUser, criterion.patterns, false) === 1;
        break;
      case 'localuser':
        matched = matchSshPatternList(walk.localUser, criterion.patterns, false) === 1;
        break;
      case 'unsupported':
        // OpenSSH skips `exec` once the line has already failed; otherwise the outcome is unknown here,
        // so the block is not applied and the line is reported.
        if (!result && criterion.name === 'exec') continue;
        if (!neverMatch) report(walk, 'Match', `${criterion.negate ? '!' : ''}${criterion.name} ${criterion.argument}`, source, true);
        result = false;
        continue;
    }
    if (matched === criterion.negate) result = false;
  }
  return result;
}

function applyOption(entry: Extract<SshConfigEntry, { kind: 'option' }>, walk: Walk, active: boolean): void {
  const { value, source } = entry;
  const obtained = walk.obtained;
  if (value.kind === 'unknown') {
    const ignored = obtained.strings.ignoreUnknown;
    if (ignored !== undefined && matchSshPatternList(entry.keyword, ignored.value, true) === 1) return;
    throw lineError(source, `Bad configuration option: ${entry.keyword}`);
  }
  if (!active) return;
  switch (value.kind) {
    case 'string':
      if (obtained.strings[value.key] !== undefined) return;
      obtained.strings[value.key] = { value: value.value, source };
      // Used for %k, but ftpfwd checks known_hosts under the host name.
      if (value.key === 'hostKeyAlias') report(walk, 'HostKeyAlias', value.value, source, true);
      return;
    case 'port':
      obtained.port ??= value.value;
      return;
    case 'flag':
      obtained.flags[value.key] ??= value.value;
      return;
    case 'time':
      if (value.value !== undefined) obtained.times[value.key] ??= value.value;
      return;
    case 'count':
      obtained.serverAliveCountMax ??= value.value;
      return;
    case 'list':
      obtained.lists[value.key] ??= { value: value.value, source };
      return;
    case 'strictHostKeyChecking':
      obtained.strictHostKeyChecking ??= value.value;
      return;
    case 'identityFile':
      // readconf.c add_identity_file(): an identical path is ignored.
      if (obtained.identityFiles.some((file) => file.value === value.value)) return;
      if (obtained.identityFiles.length >= MAX_IDENTITY_FILES) throw lineError(source, `Too many identity files specified (max ${MAX_IDENTITY_FILES})`);
      obtained.identityFiles.push({ value: value.value, source });
      return;
    case 'proxy':
      // ProxyJump and ProxyCommand compete: whichever comes first wins.
      if (obtained.proxy !== undefined) return;
      obtained.proxy = { value: { command: value.command, value: value.value }, source };
      if (value.command && value.value.toLowerCase() !== 'none') report(walk, 'ProxyCommand', value.value, source, true);
      return;
    case 'unsupported':
      if (!value.accumulates) {
        if (obtained.unsupportedSlots.has(value.slot)) return;
        obtained.unsupportedSlots.set(value.slot, value.inert);
      }
      if (!value.inert) report(walk, value.name, entry.args.join(' '), source, value.securityRelevant);
      return;
    case 'ignored':
      return;
  }
}

function walkEntries(entries: readonly SshConfigEntry[], walk: Walk, neverMatch: boolean): void {
  let active = !neverMatch;
  for (const entry of entries) {
    switch (entry.kind) {
      case 'host':
        active = !neverMatch && hostLineMatches(entry.patterns, walk.host);
        break;
      case 'match': {
        const matched = evaluateMatch(entry.criteria, entry.source, walk, neverMatch);
        active = !neverMatch && matched;
        break;
      }
      case 'include': {
        // An included file starts in the including line's state; its Host and Match lines do not leak out.
        const outer = active;
        for (const file of entry.files) walkEntries(file.entries, walk, neverMatch || !outer);
        active = outer;
        break;
      }
      case 'option':
        applyOption(entry, walk, active);
        break;
    }
  }
}

/** `-o Key=Value` options as entries, parsed by the same rules as the file. */
function overrideEntries(overrides: Record<string, string | string[]>): SshConfigEntry[] {
  const entries: SshConfigEntry[] = [];
  for (const [key, raw] of Object.entries(overrides)) {
    for (const value of Array.isArray(raw) ? raw : [raw]) {
      const source: SshConfigSource = { file: COMMAND_LINE, option: `${key}=${value}` };
      if (!/^[A-Za-z0-9]+$/.test(key)) throw lineError(source, `bad option name ${JSON.stringify(key)}`);
      if (/[\r\n]/.test(value)) throw lineError(source, 'line breaks are not allowed');
      const [directive] = directivesWithLines(parseWithLibraryForOption(`${key} ${value}`, source));
      if (directive === undefined) throw lineError(source, `no argument after keyword "${key.toLowerCase()}"`);
      const keyword = key.toLowerCase();
      if (keyword === 'host' || keyword === 'match' || keyword === 'include') {
        throw lineError(source, `${key} directive not supported as a command-line option`);
      }
      const entry = parseEntry(key, directiveArgs(directive.directive, keyword), source);
      if (entry.kind !== 'option') throw lineError(source, `${key} directive not supported as a command-line option`);
      entries.push(entry);
    }
  }
  return entries;
}

function parseWithLibraryForOption(text: string, source: SshConfigSource): SSHConfig {
  try {
    return SSHConfig.parse(text);
  } catch (error) {
    throw lineError(source, `cannot parse: ${error instanceof Error ? error.message : String(error)}`, error);
  }
}

/**
 * misc.c percent_expand() and, with `env`, dollar_expand() in the same pass:
 * `%%`, `%x` for each given token, `${NAME}`. Unknown tokens and unset
 * variables are errors, as in ssh.
 */
function expandPercent(text: string, tokens: Readonly<Record<string, string>>, env: Record<string, string | undefined> | undefined, source: SshConfigSource, what: string): string {
  let out = '';
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    if (char === '%') {
      const token = text[++index];
      if (token === undefined) throw lineError(source, `${what}: invalid format (trailing %)`);
      if (token === '%') {
        out += '%';
        continue;
      }
      const value = tokens[token];
      if (value === undefined) throw lineError(source, `${what}: unknown key %${token}`);
      out += value;
    } else if (char === '$' && env !== undefined && text[index + 1] === '{') {
      const close = text.indexOf('}', index + 2);
      if (close === -1) throw lineError(source, `${what}: environment variable without closing brace`);
      const name = text.slice(index + 2, close);
      const value = env[name];
      if (name === '' || value === undefined) throw lineError(source, `${what}: environment variable \${${name}} is not set`);
      out += value;
      index = close;
    } else {
      out += char;
    }
  }
  return out;
}

/** ssh.c valid_hostname(): characters a shell or ProxyCommand could misread. */
function validAlias(alias: string): boolean {
  return alias !== '' && !alias.startsWith('-') && !/['`"$\\;&<>|(){},\s\x00-\x1f\x7f]/.test(alias);
}

/**
 * Resolves the options for one destination (`ssh -G alias`): first obtained
 * value wins; command-line user/port, then `-o` options, then the file.
 * Pure apart from os.hostname()/process.getuid() when the context omits them.
 */
export function resolveHost(config: ParsedSshConfig, alias: string, context: ResolveHostContext): ResolvedSshConfig {
  if (!validAlias(alias)) {
    throw new FtpfwdError('ERR_FTPFWD_USAGE', `hostname ${JSON.stringify(alias)} contains invalid characters`, { details: { host: alias } });
  }
  const obtained: Obtained = { strings: {}, flags: {}, times: {}, lists: {}, identityFiles: [], unsupportedSlots: new Map() };
  const walk: Walk = {
    alias,
    host: alias,
    finalPass: false,
    wantFinalPass: false,
    localUser: context.localUser,
    obtained,
    unsupported: [],
    reported: new Set(),
  };
  if (context.userOverride !== undefined) obtained.strings.user = { value: context.userOverride, source: { file: COMMAND_LINE } };
  if (context.portOverride !== undefined) {
    if (!Number.isInteger(context.portOverride) || context.portOverride < 1 || context.portOverride > 65535) {
      throw new FtpfwdError('ERR_FTPFWD_USAGE', `Bad port '${context.portOverride}'`);
    }
    obtained.port = context.portOverride;
  }
  walkEntries(overrideEntries(context.overrides ?? {}), walk, false);
  walkEntries(config.entries, walk, false);

  const hostNameEntry = obtained.strings.hostName;
  const hostName = (hostNameEntry === undefined ? alias : expandPercent(hostNameEntry.value, { h: alias }, undefined, hostNameEntry.source, 'HostName')).toLowerCase();

  if (walk.wantFinalPass || obtained.unsupportedSlots.get('canonicalizehostname') === false) {
    // ssh.c re-parses the configuration with the resolved name (and `Match canonical`/`final` true).
    obtained.strings.hostName = { value: hostName, source: { file: COMMAND_LINE } };
    walk.finalPass = true;
    walk.host = hostName;
    walkEntries(config.entries, walk, false);
  }

  const port = obtained.port;
  const user = obtained.strings.user?.value;
  const localHostName = context.localHostName ?? osHostname();
  const proxy = obtained.proxy;
  const proxyJump = proxy !== undefined && !proxy.value.command && proxy.value.value.toLowerCase() !== 'none' ? proxy.value.value : undefined;
  const portText = String(port ?? DEFAULT_PORT);
  const remoteUser = user ?? context.localUser;
  const uid = context.localUid ?? process.getuid?.();
  // ssh.c DEFAULT_CLIENT_PERCENT_EXPAND_ARGS
  const tokens: Record<string, string> = {
    C: createHash('sha1').update(`${localHostName}${hostName}${portText}${remoteUser}${proxyJump ?? ''}`).digest('hex'),
    L: localHostName.split('.')[0]!,
    k: obtained.strings.hostKeyAlias?.value ?? alias,
    l: localHostName,
    n: alias,
    p: portText,
    d: context.homeDir,
    h: hostName,
    r: remoteUser,
    u: context.localUser,
    j: proxyJump ?? '',
    ...(uid === undefined ? {} : { i: String(uid) }),
  };
  const expandPath = (sourced: Sourced<string>, what: string): string =>
    expandPercent(expandTilde(sourced.value, context.homeDir, context.localUser, sourced.source), tokens, context.env, sourced.source, what);

  const resolved: ResolvedSshConfig = {
    hostName,
    identityFiles: obtained.identityFiles.filter((file) => file.value.toLowerCase() !== 'none').map((file) => expandPath(file, 'IdentityFile')),
    identityFilesConfigured: obtained.identityFiles.length > 0,
    unsupported: walk.unsupported,
  };
  if (user !== undefined) resolved.user = user;
  if (port !== undefined) resolved.port = port;
  const agent = obtained.strings.identityAgent;
  if (agent !== undefined) resolved.identityAgent = resolveIdentityAgent(agent, context, expandPath);
  if (proxyJump !== undefined) resolved.proxyJump = proxyJump;
  const userKnownHosts = obtained.lists.userKnownHostsFiles;
  if (userKnownHosts !== undefined) {
    resolved.userKnownHostsFiles = isNone(userKnownHosts.value) ? [] : userKnownHosts.value.map((file) => expandPath({ value: file, source: userKnownHosts.source }, 'UserKnownHostsFile'));
  }
  const globalKnownHosts = obtained.lists.globalKnownHostsFiles;
  if (globalKnownHosts !== undefined) resolved.globalKnownHostsFiles = isNone(globalKnownHosts.value) ? [] : [...globalKnownHosts.value];
  if (obtained.strictHostKeyChecking !== undefined) resolved.strictHostKeyChecking = obtained.strictHostKeyChecking;
  if (obtained.times.serverAliveInterval !== undefined) resolved.serverAliveInterval = obtained.times.serverAliveInterval;
  if (obtained.serverAliveCountMax !== undefined) resolved.serverAliveCountMax = obtained.serverAliveCountMax;
  if (obtained.times.connectTimeout !== undefined) resolved.connectTimeout = obtained.times.connectTimeout;
  const flags: readonly FlagKey[] = ['identitiesOnly', 'batchMode', 'passwordAuthentication', 'kbdInteractiveAuthentication', 'pubkeyAuthentication', 'hashKnownHosts'];
  for (const key of flags) {
    const flag = obtained.flags[key];
    if (flag !== undefined) resolved[key] = flag;
  }
  return resolved;
}

function isNone(list: readonly string[]): boolean {
  return list.length === 1 && list[0]!.toLowerCase() === 'none';
}

/** `none` and `SSH_AUTH_SOCK` as they are; `$NAME` is that variable's value (no agent when unset); else an expanded path. */
function resolveIdentityAgent(agent: Sourced<string>, context: ResolveHostContext, expandPath: (sourced: Sourced<string>, what: string) => string): string {
  const { value } = agent;
  if (value === 'none' || value === 'SSH_AUTH_SOCK') return value;
  if (value.startsWith('$') && !value.startsWith('${')) {
    const name = value.slice(1);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw lineError(agent.source, `Invalid environment name ${value}.`);
    return context.env[name] ?? 'none';
  }
  return expandPath(agent, 'IdentityAgent');
}
