import { isIPv4, isIPv6 } from 'node:net';

/** The address and port of a data connection, as carried by PORT/EPRT/227/229. */
export interface HostPort {
  /** Dotted IPv4 or IPv6 text; `null` for a 229 reply, which carries no address. */
  host: string | null;
  port: number;
}

export type AddressFamily = 4 | 6;

export interface ActiveTarget {
  family: AddressFamily;
  host: string;
  port: number;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const fail = <T>(reason: string): ParseResult<T> => ({ ok: false, reason });

// Six decimal numbers that are not part of a longer comma-separated run:
// `256,22` must never fold into a small port, nor `1,2,3,4,5,6,7` be cut short.
const SIX_NUMBERS = /(?<![\d,])(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})(?![\d,])/;

interface SixNumbers {
  bytes: number[];
  index: number;
  length: number;
}

function findSixNumbers(text: string): SixNumbers | null {
  const match = SIX_NUMBERS.exec(text);
  if (!match) return null;
  return { bytes: match.slice(1, 7).map(Number), index: match.index, length: match[0].length };
}

function validateSixNumbers(six: SixNumbers): ParseResult<{ host: string; port: number }> {
  if (six.bytes.some((n) => n > 255)) return fail('a number is above 255');
  const port = six.bytes[4]! * 256 + six.bytes[5]!;
  if (port === 0) return fail('port 0');
  return { ok: true, value: { host: six.bytes.slice(0, 4).join('.'), port } };
}

function formatSixNumbers(host: string, port: number): string {
  return `${host.split('.').join(',')},${port >> 8},${port & 0xff}`;
}

/**
 * A 227 reply (RFC 959; RFC 1123 section 4.1.2.6: scan for the numbers, do
 * not expect parentheses). Servers vary in every other respect.
 */
export function parsePasvReply(text: string): ParseResult<HostPort & { host: string }> {
  const six = findSixNumbers(text.slice(4));
  if (!six) return fail('no h1,h2,h3,h4,p1,p2 in the reply');
  return validateSixNumbers(six);
}

/** Rewrites only the six numbers of a 227 reply, keeping the server's wording. */
export function rewritePasvReply(text: string, host: string, port: number): string {
  const six = findSixNumbers(text.slice(4));
  if (!six || !isIPv4(host)) throw new RangeError('rewritePasvReply needs a parsed 227 and an IPv4 host');
  const start = 4 + six.index;
  return text.slice(0, start) + formatSixNumbers(host, port) + text.slice(start + six.length);
}

// RFC 2428: the delimiter is printable ASCII 33-126 other than a digit.
const EPSV_PORT = /([!-/:-~])\1\1(\d{1,5})\1/;

const SIX_NUMBERS_ALL = new RegExp(SIX_NUMBERS.source, 'g');
const EPSV_PORT_ALL = new RegExp(EPSV_PORT.source, 'g');

function isValidSix(numbers: readonly string[]): boolean {
  const bytes = numbers.map(Number);
  return bytes.every((n) => n <= 255) && bytes[4]! * 256 + bytes[5]! !== 0;
}

function isValidEpsvPort(digits: string): boolean {
  const port = Number(digits);
  return port >= 1 && port <= 65535;
}

/**
 * Every data address a line names, in the two forms a client acts on: six
 * numbers (227, PORT) and `(|||port|)` (229, EPSV). Each is replaced by
 * `replace`; text that only looks like one (a number above 255, port 0) is
 * left alone, since no client could use it.
 */
function replaceDataAddresses(text: string, six: (match: string) => string, epsv: (delimiter: string) => string): string {
  return text
    .replace(SIX_NUMBERS_ALL, (match: string, ...groups: unknown[]) => (isValidSix(groups.slice(0, 6) as string[]) ? six(match) : match))
    .replace(EPSV_PORT_ALL, (match: string, delimiter: string, digits: string) => (isValidEpsvPort(digits) ? epsv(delimiter) : match));
}

/**
 * Blanks every data address in a server line that is passed on without
 * being acted on (an unsolicited reply, an error text that quotes a 227, a
 * status listing), so that no line can point a client at the server's own
 * data port, outside the tunnel. Port 0 in the blanks is never usable.
 */
export function maskDataAddresses(text: string): string {
  return replaceDataAddresses(
    text,
    () => '0,0,0,0,0,0',
    (delimiter) => `${delimiter.repeat(3)}0${delimiter}`,
  );
}

/** Whether a line names a data address that maskDataAddresses would blank. */
export function namesDataAddress(text: string): boolean {
  return maskDataAddresses(text) !== text;
}

/**
 * Rewrites every six-number address of a 227 reply line to host:port and
 * blanks any `(|||port|)` in it: a multi-line 227 may repeat the address.
 */
export function rewritePasvLine(text: string, host: string, port: number): string {
  if (!isIPv4(host)) throw new RangeError('rewritePasvLine needs an IPv4 host');
  const address = formatSixNumbers(host, port);
  return replaceDataAddresses(
    text,
    () => address,
    (delimiter) => `${delimiter.repeat(3)}0${delimiter}`,
  );
}

/** Rewrites every `(|||port|)` of a 229 reply line to port and blanks any six-number address in it. */
export function rewriteEpsvLine(text: string, port: number): string {
  return replaceDataAddresses(
    text,
    () => '0,0,0,0,0,0',
    (delimiter) => `${delimiter.repeat(3)}${port}${delimiter}`,
  );
}

/** A 229 reply: `229 <text> (|||port|)`, with any valid delimiter. */
export function parseEpsvReply(text: string): ParseResult<HostPort & { host: null }> {
  const match = EPSV_PORT.exec(text.slice(4));
  if (!match) return fail('no (|||port|) in the reply');
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return fail(`port ${match[2]} out of range`);
  return { ok: true, value: { host: null, port } };
}

/** Rewrites only the port digits of a 229 reply. */
export function rewriteEpsvReply(text: string, port: number): string {
  const match = EPSV_PORT.exec(text.slice(4));
  if (!match) throw new RangeError('rewriteEpsvReply needs a parsed 229');
  const delimiter = match[1]!;
  const start = 4 + match.index;
  return `${text.slice(0, start)}${delimiter.repeat(3)}${port}${delimiter}${text.slice(start + match[0].length)}`;
}

const PORT_ARGUMENT = /^\d{1,3},\d{1,3},\d{1,3},\d{1,3},\d{1,3},\d{1,3}$/;

/** The argument of PORT, strictly: exactly six numbers of 1-3 digits. */
export function parsePortArgument(argument: string): ParseResult<ActiveTarget> {
  const trimmed = argument.trim();
  if (!PORT_ARGUMENT.test(trimmed)) return fail('PORT takes h1,h2,h3,h4,p1,p2');
  const six = findSixNumbers(trimmed);
  if (!six) return fail('PORT takes h1,h2,h3,h4,p1,p2');
  const parsed = validateSixNumbers(six);
  if (!parsed.ok) return parsed;
  return { ok: true, value: { family: 4, ...parsed.value } };
}

export function formatPortArgument(host: string, port: number): string {
  if (!isIPv4(host)) throw new RangeError(`PORT cannot carry ${host}`);
  return formatSixNumbers(host, port);
}

/** The argument of EPRT (RFC 2428): `<d><af><d><addr><d><port><d>`. */
export function parseEprtArgument(argument: string): ParseResult<ActiveTarget> {
  const trimmed = argument.trim();
  const delimiter = trimmed[0];
  if (delimiter === undefined || !/^[!-/:-~]$/.test(delimiter)) return fail('EPRT needs a delimiter');
  const fields = trimmed.split(delimiter);
  // `|1|addr|port|` splits into ['', '1', 'addr', 'port', ''].
  if (fields.length !== 5 || fields[0] !== '' || fields[4] !== '') {
    return fail('EPRT takes <d><af><d><addr><d><port><d>');
  }
  const [, af, host, portText] = fields as [string, string, string, string, string];
  if (af !== '1' && af !== '2') return fail(`unsupported address family ${af}`);
  const family: AddressFamily = af === '1' ? 4 : 6;
  if (family === 4 ? !isIPv4(host) : !isIPv6(host)) return fail(`bad IPv${family} address`);
  if (!/^\d{1,5}$/.test(portText)) return fail('bad port');
  const port = Number(portText);
  if (port < 1 || port > 65535) return fail(`port ${portText} out of range`);
  return { ok: true, value: { family, host, port } };
}

export function formatEprtArgument(host: string, port: number): string {
  const family = isIPv6(host) ? 2 : 1;
  return `|${family}|${host}|${port}|`;
}
