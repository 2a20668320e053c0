import { FtpfwdError } from '../errors.js';
import type { ForwardSpec } from '../forwarder.js';
import type { ListenerSpec } from '../tunnel.js';

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

/** Like ssh's default GatewayPorts=no: only this machine may connect unless asked otherwise. */
function bindAddressOf(field: string): string {
  return field === '' || field === 'localhost' ? '127.0.0.1' : field === '*' ? '0.0.0.0' : field;
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
    bindAddress: bindAddressOf(bindAddress!),
    bindPort: parsePort(bindPort!, 'listen port', true),
    ftpHost,
    ftpPort: parsePort(ftpPort!, 'FTP port', false),
  };
}

/**
 * A `-L` of either kind. `[bind_address:]port:sftp:` (the word `sftp` and
 * an empty port, which no FTP forward can have) is an SFTP bridge
 * listener; anything else is an FTP forward.
 */
export function parseListenerSpec(spec: string): ListenerSpec {
  const fields = splitHostPortFields(spec);
  const bridged = (fields.length === 3 || fields.length === 4) && fields.at(-2) === 'sftp' && fields.at(-1) === '';
  if (!bridged) return { kind: 'ftp', forward: parseForwardSpec(spec) };
  const [bindAddress, bindPort] = fields.length === 4 ? fields : ['', ...fields];
  return { kind: 'sftp', listener: { bindAddress: bindAddressOf(bindAddress!), bindPort: parsePort(bindPort!, 'listen port', true) } };
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
