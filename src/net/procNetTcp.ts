import { isIPv4, isIPv6 } from 'node:net';
import { normalizeAddress } from './addresses.js';

/** One end of a TCP connection. */
export interface Endpoint {
  address: string;
  port: number;
}

/** The 16 bytes of an IPv6 address (`::` compressed or not, IPv4-mapped allowed). */
function ipv6Bytes(address: string): number[] {
  let text = address;
  const mapped = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (mapped) {
    const [a, b, c, d] = mapped[2]!.split('.').map(Number) as [number, number, number, number];
    text = `${mapped[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head === '' ? [] : head!.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.flatMap((group) => {
    const value = Number.parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
}

/** An IPv4 or IPv6 address as its bytes, in network order. */
export function addressBytes(address: string): Buffer {
  return Buffer.from(isIPv4(address) ? address.split('.').map(Number) : ipv6Bytes(address));
}

const hex2 = (byte: number): string => byte.toString(16).toUpperCase().padStart(2, '0');

/**
 * An address as /proc/net/tcp{,6} prints it: each 32-bit word of the
 * address in host byte order (little-endian on the machines that run
 * ftpfwd: x86, arm64), upper-case hex, then `:` and the port.
 */
function procText(bytes: readonly number[], port: number): string {
  let text = '';
  for (let word = 0; word < bytes.length; word += 4) text += [3, 2, 1, 0].map((index) => hex2(bytes[word + index]!)).join('');
  return `${text}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * How the socket with this local and remote end is written in each table:
 * `tcp` lists IPv4 sockets, `tcp6` IPv6 ones, where an IPv4 peer of a
 * dual-stack socket appears IPv4-mapped.
 */
export function socketKeys(local: Endpoint, remote: Endpoint): { tcp: string | null; tcp6: string } {
  const localAddress = normalizeAddress(local.address);
  const remoteAddress = normalizeAddress(remote.address);
  const v4 = isIPv4(localAddress) && isIPv4(remoteAddress);
  const v6Bytes = (address: string): number[] => ipv6Bytes(isIPv4(address) ? `::ffff:${address}` : address);
  const v4Bytes = (address: string): number[] => address.split('.').map(Number);
  if (!v4 && !(isIPv6(localAddress) || isIPv4(localAddress))) throw new RangeError(`not an IP address: ${local.address}`);
  return {
    tcp: v4 ? ` ${procText(v4Bytes(localAddress), local.port)} ${procText(v4Bytes(remoteAddress), remote.port)} ` : null,
    tcp6: ` ${procText(v6Bytes(localAddress), local.port)} ${procText(v6Bytes(remoteAddress), remote.port)} `,
  };
}

/**
 * The owner UID on the line of `table` that holds `key` (from socketKeys),
 * or null: undefined when the line is cut off before its UID field (the
 * caller reads on). `table` is the whole table or a run of whole lines.
 */
export function findSocketOwner(table: string | Buffer, key: string): number | null {
  const found = ownerInBuffer(typeof table === 'string' ? Buffer.from(table, 'latin1') : table, Buffer.from(key, 'latin1'));
  return found ?? null;
}

/** As findSocketOwner, on bytes: null when `key` is not there, undefined when its line is not complete. */
export function ownerInBuffer(table: Buffer, key: Buffer): number | null | undefined {
  const at = table.indexOf(key);
  if (at === -1) return null;
  const lineEnd = table.indexOf(0x0a, at);
  const rest = table.toString('latin1', at + key.length, lineEnd === -1 ? table.length : lineEnd);
  // Fields after the two addresses: st, tx:rx, tr:when, retrnsmt, uid.
  const fields = rest.trim().split(/\s+/);
  if (fields.length < 5) return lineEnd === -1 ? undefined : null;
  const uid = Number(fields[4]);
  return Number.isInteger(uid) ? uid : null;
}
