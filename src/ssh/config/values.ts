/** Option typing: one line's arguments into a checked value, by readconf.c's rules. */
import { keywordSpec } from './keywords.js';
import { lineError } from './source.js';
import type { FlagKey, SshConfigSource, SshOptionValue, StrictHostKeyCheckingValue, StringKey, TimeKey } from './types.js';

/** SSH_MAX_HOSTS_FILES */
const MAX_HOSTS_FILES = 32;
const INT_MAX = 2 ** 31 - 1;

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

export function parsePortNumber(arg: string): number | undefined {
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
export function interpretOption(keyword: string, written: string, args: readonly string[], source: SshConfigSource): SshOptionValue {
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
    case 'certificatefile':
      expectArgs(keyword, args, source);
      return { kind: 'certificateFile', value: arg };
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
