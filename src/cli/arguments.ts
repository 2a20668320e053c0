import { FtpfwdError } from '../errors.js';
import type { ForwardSpec } from '../forwarder.js';
import { parseStrictHostKeyChecking, type StrictHostKeyChecking } from '../ssh/hostKeyVerifier.js';

function usage(message: string): FtpfwdError {
  return new FtpfwdError('ERR_FTPFWD_USAGE', message);
}

function parsePort(text: string, what: string, allowZero: boolean): number {
  if (!/^\d{1,5}$/.test(text)) throw usage(`bad ${what} ${JSON.stringify(text)}`);
  const port = Number(text);
  if (port > 65535 || (port === 0 && !allowZero)) throw usage(`bad ${what} ${text}`);
  return port;
}

/** The value of `-p`. */
export function parseSshPort(text: string): number {
  return parsePort(text, 'SSH port', false);
}

/** Splits `a:b:[::1]:c` on colons outside square brackets, as ssh does for -L. */
function splitHostPortFields(spec: string): string[] {
  const fields: string[] = [];
  let current = '';
  let inBrackets = false;
  for (const char of spec) {
    if (char === '[' && !inBrackets && current === '') inBrackets = true;
    else if (char === ']' && inBrackets) inBrackets = false;
    else if (char === ':' && !inBrackets) {
      fields.push(current);
      current = '';
    } else current += char;
  }
  if (inBrackets) throw usage(`unclosed [ in ${JSON.stringify(spec)}`);
  fields.push(current);
  return fields;
}

/** `-L [bind_address:]port:ftp_host:ftp_port`, with IPv6 addresses in brackets. */
export function parseForwardSpec(spec: string): ForwardSpec {
  const fields = splitHostPortFields(spec);
  if (fields.length !== 3 && fields.length !== 4) {
    throw usage(`bad forward ${JSON.stringify(spec)}: use [bind_address:]port:ftp_host:ftp_port`);
  }
  const [bindAddress, bindPort, ftpHost, ftpPort] = fields.length === 4 ? fields : ['', ...fields];
  if (!ftpHost) throw usage(`bad forward ${JSON.stringify(spec)}: no FTP host`);
  return {
    // Like ssh's default GatewayPorts=no: only this machine may connect unless asked otherwise.
    bindAddress: bindAddress === '' || bindAddress === 'localhost' ? '127.0.0.1' : bindAddress === '*' ? '0.0.0.0' : bindAddress!,
    bindPort: parsePort(bindPort!, 'listen port', true),
    ftpHost,
    ftpPort: parsePort(ftpPort!, 'FTP port', false),
  };
}

export interface Destination {
  user?: string;
  host: string;
  port?: number;
}

/** `[user@]host`, or `ssh://[user@]host[:port]` as ssh(1) accepts. */
export function parseDestination(text: string): Destination {
  let rest = text;
  let port: number | undefined;
  if (rest.startsWith('ssh://')) {
    const match = /^ssh:\/\/([^@]*@)?(\[[^\]]+\]|[^:@/]+)(?::(\d+))?\/?$/.exec(rest);
    if (!match) throw usage(`bad destination ${JSON.stringify(text)}`);
    rest = (match[1] ?? '') + match[2]!;
    if (match[3] !== undefined) port = parsePort(match[3], 'SSH port', false);
  }
  const at = rest.lastIndexOf('@');
  const user = at === -1 ? undefined : rest.slice(0, at);
  let host = at === -1 ? rest : rest.slice(at + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (!host || /[\s/]/.test(host)) throw usage(`bad destination ${JSON.stringify(text)}`);
  if (user === '') throw usage(`bad destination ${JSON.stringify(text)}: empty user name`);
  return { ...(user === undefined ? {} : { user }), host, ...(port === undefined ? {} : { port }) };
}

/** Settings that `-o Key=Value` may carry, named as in ssh_config(5). */
export interface SshOptionOverrides {
  user?: string;
  port?: number;
  identityFiles?: string[];
  knownHostsFiles?: string[];
  strictHostKeyChecking?: StrictHostKeyChecking;
  connectTimeoutSeconds?: number;
  serverAliveIntervalSeconds?: number;
  serverAliveCountMax?: number;
  batchMode?: boolean;
}

function parseYesNo(key: string, value: string): boolean {
  const lower = value.toLowerCase();
  if (lower === 'yes') return true;
  if (lower === 'no') return false;
  throw usage(`-o ${key} takes yes or no, not ${JSON.stringify(value)}`);
}

/** A bad value on the command line is a usage error (exit 2), like any other bad -o value. */
function parseStrictHostKeyCheckingOption(value: string): StrictHostKeyChecking {
  try {
    return parseStrictHostKeyChecking(value);
  } catch (error) {
    if (error instanceof FtpfwdError) throw usage(error.message);
    throw error;
  }
}

function parseCount(key: string, value: string): number {
  if (!/^\d{1,6}$/.test(value)) throw usage(`-o ${key} takes a whole number, not ${JSON.stringify(value)}`);
  return Number(value);
}

/**
 * Applies `-o` options in order. ssh(1) lets the first value of a key win;
 * for the command line we do the same so that `-o` behaves as users expect.
 */
export function parseSshOptions(entries: readonly string[]): SshOptionOverrides {
  const result: SshOptionOverrides = {};
  const seen = new Set<string>();
  for (const entry of entries) {
    const match = /^\s*([A-Za-z]+)\s*(?:=\s*|\s+)(.*?)\s*$/.exec(entry);
    if (!match) throw usage(`bad -o option ${JSON.stringify(entry)}: use Key=Value`);
    const key = match[1]!.toLowerCase();
    const value = match[2]!;
    if (value === '') throw usage(`-o ${match[1]} needs a value`);
    const repeatable = key === 'identityfile';
    if (seen.has(key) && !repeatable) continue;
    seen.add(key);
    switch (key) {
      case 'user':
        result.user = value;
        break;
      case 'port':
        result.port = parsePort(value, 'SSH port', false);
        break;
      case 'identityfile':
        result.identityFiles = [...(result.identityFiles ?? []), value];
        break;
      case 'userknownhostsfile':
        result.knownHostsFiles = value.split(/\s+/);
        break;
      case 'stricthostkeychecking':
        result.strictHostKeyChecking = parseStrictHostKeyCheckingOption(value);
        break;
      case 'connecttimeout':
        result.connectTimeoutSeconds = parseCount(match[1]!, value);
        break;
      case 'serveraliveinterval':
        result.serverAliveIntervalSeconds = parseCount(match[1]!, value);
        break;
      case 'serveralivecountmax':
        result.serverAliveCountMax = parseCount(match[1]!, value);
        break;
      case 'batchmode':
        result.batchMode = parseYesNo(match[1]!, value);
        break;
      default:
        throw usage(`unsupported -o option ${match[1]}`);
    }
  }
  return result;
}
