import { printableLine } from '../terminalText.js';
import { formatBytes, formatClock, formatDuration, formatRate, plural } from './units.js';

/** One log record as pino wrote it (JSON), parsed. */
export type LogRecord = Record<string, unknown>;

export interface PrettyOptions {
  /** ANSI colours for the time, the session number and warnings. */
  colors: boolean;
  /** Show the server's replies as they came, before rewriting (trace level), beside what the client got. */
  serverReplies: boolean;
}

/**
 * The pretty log format: one line per record, `08:17:08 #1 what happened`,
 * with sizes, rates and durations in human units. Records whose content
 * another line already shows get no line of their own (null). Whatever
 * the line quotes from a peer (file names, reply text, reasons) has its
 * control characters escaped, so that nobody can write escape sequences
 * to the terminal through the log.
 */
export function prettyLine(record: LogRecord, options: PrettyOptions): string | null {
  const body = describe(record, options);
  if (body === null) return null;
  const level = typeof record['level'] === 'number' ? record['level'] : 30;
  const time = formatClock(typeof record['time'] === 'number' ? record['time'] : Date.now());
  const session = typeof record['session'] === 'number' ? `#${record['session']}` : null;
  const label = level >= 50 ? 'error:' : level >= 40 ? 'warning:' : null;
  const paint = options.colors ? (code: string, text: string): string => `\u001b[${code}m${text}\u001b[0m` : (_code: string, text: string): string => text;
  const parts = [paint('2', time)];
  if (session !== null) parts.push(paint('36', session));
  if (label !== null) parts.push(paint(level >= 50 ? '31' : '33', label));
  parts.push(printableLine(body));
  return parts.join(' ');
}

type Describe = (record: LogRecord, options: PrettyOptions) => string | null;

const text = (record: LogRecord, key: string): string => {
  const value = record[key];
  return typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
};
const count = (record: LogRecord, key: string): number => {
  const value = record[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
};

const UPLOAD_VERBS = /^(STOR|APPE|STOU)\b/i;

/** `↓ 5.0 MiB`, `↑ 3 B`, `↓ 1.0 KiB ↑ 2.0 KiB`. */
function amount(record: LogRecord): string {
  const down = count(record, 'bytesToClient');
  const up = count(record, 'bytesToServer');
  if (down > 0 && up > 0) return `↓ ${formatBytes(down)} ↑ ${formatBytes(up)}`;
  if (up > 0) return `↑ ${formatBytes(up)}`;
  if (down > 0) return `↓ ${formatBytes(down)}`;
  return `${UPLOAD_VERBS.test(text(record, 'command')) ? '↑' : '↓'} 0 B`;
}

/** Below this, a rate says little, and the time only when it was long. */
const MEANINGFUL_BYTES = 64 * 1024;

/** ` in 47 ms (111.6 MB/s)` for a transfer worth timing, else nothing. */
function timing(record: LogRecord): string {
  const bytes = count(record, 'bytesToClient') + count(record, 'bytesToServer');
  const ms = count(record, 'durationMs');
  if (bytes < MEANINGFUL_BYTES && ms < 1000) return '';
  const rate = bytes >= MEANINGFUL_BYTES && ms > 0 ? ` (${formatRate((bytes * 1000) / ms)})` : '';
  return ` in ${formatDuration(ms)}${rate}`;
}

function command(record: LogRecord): string {
  return text(record, 'command') || 'transfer';
}

/** `RETR big.iso ↓ 1.1 GiB so far in 10 s (110.3 MB/s now)`: a transfer under way. */
function underWay(record: LogRecord): string {
  return `${command(record)} ${amount(record)} so far in ${formatDuration(count(record, 'elapsedMs'))} (${formatRate(count(record, 'bytesPerSecond'))} now)`;
}

const ACTIVE_MODE: Record<string, string> = { convert: 'converted to passive', forward: 'through a remote forward' };

function sessionClosed(record: LogRecord): string {
  const reason = text(record, 'reason');
  const how = reason === 'client closed the connection' ? 'closed by client' : reason === 'FTP server closed the connection' ? 'closed by server' : `closed (${reason})`;
  return `${how} after ${formatDuration(count(record, 'durationMs'))}, ${plural(count(record, 'transfers'), 'transfer')}`;
}

/** `↓ 5.0 MiB ↑ 3 B` of totals, both always shown. */
function totals(record: LogRecord): string {
  return `↓ ${formatBytes(count(record, 'bytesToClient'))} ↑ ${formatBytes(count(record, 'bytesToServer'))}`;
}

function stopped(record: LogRecord): string {
  const refused = count(record, 'refusedSessions');
  const failed = count(record, 'failedTransfers');
  const reason = text(record, 'reason');
  return (
    `stopped${reason === 'closed' ? '' : ` (${reason})`}: ${plural(count(record, 'sessions'), 'session')}${refused > 0 ? ` (${refused} refused)` : ''}, ` +
    `${plural(count(record, 'transfers'), 'transfer')}${failed > 0 ? ` (${failed} failed)` : ''}, ${totals(record)}`
  );
}

function linkStatus(record: LogRecord): string {
  const ssh = text(record, 'ssh');
  const reconnects = plural(count(record, 'reconnects'), 'reconnect');
  const state = text(record, 'state');
  if (state === 'closed') return `status: SSH connection to ${ssh} closed (${reconnects} before)`;
  if (state !== 'up') return `status: SSH connection to ${ssh} is down, reconnecting (${reconnects} so far)`;
  const upSince = count(record, 'upSince');
  const now = count(record, 'time') || Date.now();
  const roundTrip = record['keepaliveRoundTripMs'];
  const keepalive = typeof roundTrip === 'number' ? `last keepalive answered in ${formatDuration(roundTrip)}` : 'no keepalive answered yet';
  const cipher = text(record, 'cipher');
  return `status: SSH connection to ${ssh}${cipher ? ` (${cipher})` : ''} up since ${formatClock(upSince)} (${formatDuration(now - upSince)}), ${reconnects}, ${keepalive}`;
}

const DESCRIBE: Record<string, Describe> = {
  'forwarder ready': (record) => {
    const jumps = Array.isArray(record['jumpHosts']) ? record['jumpHosts'].map(String) : [];
    const cipher = text(record, 'cipher');
    const listeners = Array.isArray(record['listeners']) ? (record['listeners'] as LogRecord[]) : [];
    const listening = listeners.map((listener) => `listening on ${text(listener, 'listen')} → ${text(listener, 'ftp')}, active mode: ${ACTIVE_MODE[text(listener, 'activeStrategy')] ?? text(listener, 'activeStrategy')}`);
    return [`connected to ${text(record, 'ssh')}${jumps.length > 0 ? ` via ${jumps.join(', ')}` : ''}${cipher ? ` (${cipher})` : ''}`, ...listening].join(', ');
  },
  // Both are in the 'forwarder ready' line.
  'SSH connection established': () => null,
  listening: () => null,
  'SFTP bridge ready': (record) => {
    const how = `${text(record, 'login')}${text(record, 'root') ? `, root ${text(record, 'root')}` : ''}`;
    const cipher = text(record, 'cipher');
    // With a connection of its own (account logins) the bridge has connected already; else each session connects.
    return cipher ? `connected to ${text(record, 'ssh')} (${cipher}), SFTP bridge with ${how}` : `SFTP bridge to ${text(record, 'ssh')}: ${how}`;
  },
  'listening (SFTP bridge)': (record) => `listening on ${text(record, 'listen')} → SFTP on ${text(record, 'sftp')}`,
  'session opened': (record) => `new session from ${text(record, 'client')}`,
  'bridge session opened': (record) => `new session from ${text(record, 'client')}`,
  'session closed': sessionClosed,
  'bridge session closed': sessionClosed,
  'FTP login': (record) => `logged in as ${text(record, 'user')}`,
  'client command': (record) => `> ${text(record, 'command')}`,
  'reply to client': (record) => `< ${text(record, 'reply')}`,
  'server reply': (record, options) => (options.serverReplies ? `<< ${text(record, 'reply')} (from the server)` : null),
  'transfer done': (record) =>
    // A client that opens a data connection and then sends no transfer command (curl after a failed SIZE).
    text(record, 'command') === '' && count(record, 'bytesToClient') + count(record, 'bytesToServer') === 0 ? 'data connection closed unused' : `${command(record)} ${amount(record)}${timing(record)}`,
  'transfer failed': (record) => `${command(record)} failed after ${amount(record)}${timing(record)}: ${text(record, 'reason')}`,
  'transfer progress': underWay,
  'forwarder stopped': stopped,
  'SFTP bridge stopped': stopped,
  'SSH connection lost; reconnecting': (record) => `SSH connection lost (${text(record, 'reason')}); reconnecting`,
  'next SSH connection attempt scheduled': (record) => `next SSH connection attempt (${count(record, 'attempt')}) in ${formatDuration(count(record, 'delayMs'))}`,
  'SSH connection re-established': (record) => `SSH connection re-established after ${plural(count(record, 'attempts'), 'attempt')}`,
  'status: SSH': linkStatus,
  'status: sessions': (record) =>
    `status: ${text(record, 'kind') === 'sftp-bridge' ? 'SFTP bridge: ' : ''}${plural(count(record, 'open'), 'session')} open, ${plural(count(record, 'transfersUnderWay'), 'transfer')} under way; ` +
    `since start ${plural(count(record, 'sessions'), 'session')}, ${plural(count(record, 'transfers'), 'transfer')} done, ${totals(record)}`,
  'status: session': (record) => `status: from ${text(record, 'client')}, open ${formatDuration(count(record, 'durationMs'))}, ${plural(count(record, 'transfersUnderWay'), 'transfer')} under way`,
  'status: transfer': (record) => `status: ${underWay(record)}`,
};

/** Fields that are part of every line already, or of no interest on a terminal. */
const SHOWN_ELSEWHERE = new Set(['level', 'time', 'msg', 'session', 'data', 'mode', 'transfer', 'pid', 'hostname']);

function describe(record: LogRecord, options: PrettyOptions): string | null {
  const msg = text(record, 'msg');
  const special = DESCRIBE[msg];
  if (special) return special(record, options);
  const fields = Object.entries(record)
    .filter(([key, value]) => !SHOWN_ELSEWHERE.has(key) && value !== undefined)
    .map(([key, value]) => `${key}: ${fieldText(value)}`);
  return fields.length === 0 ? msg : `${msg} (${fields.join(', ')})`;
}

function fieldText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && typeof (value as LogRecord)['message'] === 'string') return String((value as LogRecord)['message']);
  return JSON.stringify(value) ?? String(value);
}
