import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isIPv4, type Socket } from 'node:net';
import { errorCode } from '../errors.js';
import { normalizeAddress } from '../net/addresses.js';
import { addressBytes, ownerInBuffer, socketKeys, type Endpoint } from '../net/procNetTcp.js';

/**
 * The local user who owns the other end of a loopback connection: on
 * 127.0.0.1 every user of the machine has the same address, so only the
 * owner of the peer's socket tells them apart. Linux lists every socket of
 * the network namespace, with its owner, in /proc/net/tcp{,6}.
 *
 * The kernel writes those tables as they are read, a few microseconds a
 * socket, so a busy machine's table costs milliseconds: it is read in
 * chunks and only up to the line wanted, into one buffer, and searched for
 * that line's exact bytes rather than parsed.
 *
 * Where the optional native addon ftpfwd-sockdiag could be built (Linux,
 * with a C compiler at install time), the kernel is asked for that one
 * socket through NETLINK_SOCK_DIAG instead, in microseconds.
 *
 * Resolves with the UID, null when the peer's socket is not listed (it
 * closed already) or the table could not be read (which refuses rather
 * than lets in), or 'unsupported' when there are no such tables (not
 * Linux), in which case only addresses can be compared.
 */
export async function peerOwner(socket: Socket): Promise<number | null | 'unsupported'> {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) return null;
  const diag = sockDiag();
  if (diag) {
    try {
      return ownerBySockDiag(diag, { address: remoteAddress, port: remotePort }, { address: localAddress, port: localPort });
    } catch {
      // A kernel without sock_diag for TCP: the tables below still work.
    }
  }
  // The peer's socket has the addresses the other way round.
  const keys = socketKeys({ address: remoteAddress, port: remotePort }, { address: localAddress, port: localPort });
  let listed = false;
  for (const [table, key] of [['/proc/net/tcp', keys.tcp], ['/proc/net/tcp6', keys.tcp6]] as const) {
    if (key === null) continue;
    const found = await searchTable(table, key);
    if (found === 'missing') continue;
    listed = true;
    if (found !== null) return found;
  }
  return listed ? null : 'unsupported';
}

/** Bytes read from a table at a time; a line is about 150 bytes. */
const CHUNK_BYTES = 64 * 1024;

async function searchTable(table: string, key: string): Promise<number | null | 'missing'> {
  let file;
  try {
    file = await open(table, 'r');
  } catch (error) {
    return errorCode(error) === 'ENOENT' ? 'missing' : null;
  }
  const keyBytes = Buffer.from(key, 'latin1');
  // Bytes, not text: the table is searched where it was read, with no copy.
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES * 2);
  let held = 0;
  try {
    for (;;) {
      const { bytesRead } = await file.read(buffer, held, buffer.length - held, null);
      const end = held + bytesRead;
      const owner = ownerInBuffer(buffer.subarray(0, end), keyBytes);
      if (typeof owner === 'number') return owner;
      if (bytesRead === 0) return null;
      // Keep the unfinished last line (or the whole line of the key) for the next read.
      const keep = owner === undefined ? buffer.indexOf(keyBytes) : buffer.lastIndexOf(0x0a, end - 1) + 1;
      buffer.copy(buffer, 0, keep, end);
      held = end - keep;
      if (held > CHUNK_BYTES) return null;
    }
  } catch {
    return null;
  } finally {
    await file.close();
  }
}

interface SockDiag {
  socketOwner(family: 4 | 6, localAddress: Buffer, localPort: number, remoteAddress: Buffer, remotePort: number): number;
}

let loadedSockDiag: SockDiag | null | undefined;

/** The native addon, loaded once; null where it is not installed or not built. */
function sockDiag(): SockDiag | null {
  if (loadedSockDiag === undefined) {
    try {
      loadedSockDiag = (createRequire(import.meta.url)('ftpfwd-sockdiag') as SockDiag | null) ?? null;
    } catch {
      loadedSockDiag = null;
    }
  }
  return loadedSockDiag;
}

/** The peer socket by its exact ends: as IPv4 for IPv4 addresses, then as the IPv4-mapped end of a dual-stack socket. */
function ownerBySockDiag(diag: SockDiag, local: Endpoint, remote: Endpoint): number | null {
  const localAddress = normalizeAddress(local.address);
  const remoteAddress = normalizeAddress(remote.address);
  const attempts: Array<[4 | 6, string, string]> =
    isIPv4(localAddress) && isIPv4(remoteAddress)
      ? [[4, localAddress, remoteAddress], [6, `::ffff:${localAddress}`, `::ffff:${remoteAddress}`]]
      : [[6, localAddress, remoteAddress]];
  for (const [family, from, to] of attempts) {
    const uid = diag.socketOwner(family, addressBytes(from), local.port, addressBytes(to), remote.port);
    if (uid >= 0) return uid;
  }
  return null;
}
