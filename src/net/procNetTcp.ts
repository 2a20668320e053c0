import { normalizeAddress } from './addresses.js';

/** One end of a TCP connection. */
export interface Endpoint {
  address: string;
  port: number;
}

/**
 * An address as /proc/net/tcp{,6} prints it: the bytes of each 32-bit word
 * in host order, which is little-endian on every machine Node runs ftpfwd
 * on in practice (x86, arm64).
 */
function decodeAddress(hex: string): string | null {
  if (hex.length === 8) {
    const word = Number.parseInt(hex, 16);
    if (Number.isNaN(word)) return null;
    return [word & 0xff, (word >>> 8) & 0xff, (word >>> 16) & 0xff, word >>> 24].join('.');
  }
  if (hex.length === 32) {
    const groups: string[] = [];
    for (let offset = 0; offset < 32; offset += 8) {
      const word = hex.slice(offset, offset + 8);
      // Little-endian word: bytes 3,2,1,0 of the text are bytes 0,1,2,3 of the address.
      const bytes = [word.slice(6, 8), word.slice(4, 6), word.slice(2, 4), word.slice(0, 2)].join('');
      groups.push(bytes.slice(0, 4), bytes.slice(4, 8));
    }
    const text = groups.map((group) => Number.parseInt(group, 16).toString(16)).join(':');
    if (text.includes('NaN')) return null;
    return compressIPv6(text);
  }
  return null;
}

/** `0:0:0:0:0:ffff:7f00:1` as Node writes it: `::ffff:127.0.0.1`, `::1`. */
function compressIPv6(full: string): string {
  const groups = full.split(':');
  if (groups.slice(0, 5).every((group) => group === '0') && groups[5] === 'ffff') {
    const high = Number.parseInt(groups[6]!, 16);
    const low = Number.parseInt(groups[7]!, 16);
    return `::ffff:${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  }
  // The longest run of zero groups becomes '::'.
  let bestStart = -1;
  let bestLength = 0;
  for (let start = 0; start < 8; start += 1) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === '0') length += 1;
    if (length > bestLength && length > 1) {
      bestStart = start;
      bestLength = length;
    }
  }
  if (bestStart === -1) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`;
}

function decodeEndpoint(field: string): Endpoint | null {
  const [hexAddress, hexPort] = field.split(':');
  if (hexAddress === undefined || hexPort === undefined) return null;
  const address = decodeAddress(hexAddress);
  const port = Number.parseInt(hexPort, 16);
  return address === null || Number.isNaN(port) ? null : { address: normalizeAddress(address), port };
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && normalizeAddress(a.address) === b.address;
}

/** The owner UID on one line of the table if it lists that socket, else undefined. */
function ownerOnLine(line: string, local: Endpoint, remote: Endpoint): number | null | undefined {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 8 || !/^\d+:$/.test(fields[0]!)) return undefined;
  const localEnd = decodeEndpoint(fields[1]!);
  const remoteEnd = decodeEndpoint(fields[2]!);
  if (!localEnd || !remoteEnd || !sameEndpoint(local, localEnd) || !sameEndpoint(remote, remoteEnd)) return undefined;
  const uid = Number(fields[7]);
  return Number.isInteger(uid) ? uid : null;
}

/**
 * The owner UID of the socket whose local end is `local` and whose peer is
 * `remote`, from the text of /proc/net/tcp or /proc/net/tcp6; null when no
 * such socket is listed.
 *
 * This runs for every data connection, and a busy forwarder's namespace
 * lists thousands of sockets: decoding every line made each lookup cost
 * milliseconds and a heap of garbage, so 500 sessions at once spent most of
 * their time here. Only lines that name the port (`:PPPP `, as the kernel
 * prints it) are decoded.
 */
export function findSocketOwner(table: string, local: Endpoint, remote: Endpoint): number | null {
  const needle = `:${local.port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (let at = table.indexOf(needle); at !== -1; at = table.indexOf(needle, at + needle.length)) {
    const lineEnd = table.indexOf('\n', at);
    const line = table.slice(table.lastIndexOf('\n', at) + 1, lineEnd === -1 ? table.length : lineEnd);
    const owner = ownerOnLine(line, local, remote);
    if (owner !== undefined) return owner;
  }
  return null;
}
