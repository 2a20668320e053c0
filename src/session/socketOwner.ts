import { readFile } from 'node:fs/promises';
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
 * socket, so a busy machine's table costs milliseconds: reads are shared
 * by the lookups that arrive together, and searched for the line's exact
 * bytes rather than parsed.
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
export async function peerOwner(socket: Socket, { useSockDiag = true }: { useSockDiag?: boolean } = {}): Promise<number | null | 'unsupported'> {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) return null;
  // The peer's socket has the addresses the other way round.
  const peerLocal: Endpoint = { address: remoteAddress, port: remotePort };
  const peerRemote: Endpoint = { address: localAddress, port: localPort };
  const diag = useSockDiag ? sockDiag() : null;
  if (diag) {
    try {
      return ownerBySockDiag(diag, peerLocal, peerRemote);
    } catch {
      // A kernel without sock_diag for TCP: the tables below still work.
    }
  }
  const keys = socketKeys(peerLocal, peerRemote);
  let listed = false;
  for (const [read, key] of [[readTcp, keys.tcp], [readTcp6, keys.tcp6]] as const) {
    if (key === null) continue;
    const found = await searchTable(read, key);
    if (found === 'missing') continue;
    listed = true;
    if (found !== null) return found;
  }
  return listed ? null : 'unsupported';
}

/** Whether the native sock_diag lookup is in use (the addon was built and loads). */
export function sockDiagAvailable(): boolean {
  return sockDiag() !== null;
}

/**
 * Reads one table, shared by the lookups that arrive together. A read
 * costs the kernel a walk of every socket (milliseconds on a busy
 * machine), and each data connection needs one: 500 sessions at once would
 * queue a thousand reads on the thread pool and hold a buffer for each. At
 * most one read is under way, plus one queued for the lookups that arrived
 * during it; each lookup gets a read that began after it did, so its socket
 * is listed. Resolves 'missing' when there is no such table, null when it
 * cannot be read.
 */
function sharedTableReader(file: string): () => Promise<Buffer | null | 'missing'> {
  let running: Promise<Buffer | null | 'missing'> | null = null;
  let queued: Promise<Buffer | null | 'missing'> | null = null;
  const start = (): Promise<Buffer | null | 'missing'> => {
    const read = readFile(file).then(
      (bytes): Buffer => bytes,
      (error: unknown) => (errorCode(error) === 'ENOENT' ? 'missing' : null),
    );
    running = read;
    void read.then(() => {
      if (running === read) running = null;
    });
    return read;
  };
  return () => {
    if (running === null) return start();
    queued ??= running.then(() => {
      queued = null;
      return start();
    });
    return queued;
  };
}

const readTcp = sharedTableReader('/proc/net/tcp');
const readTcp6 = sharedTableReader('/proc/net/tcp6');

/** The peer's line in the tables, searched for its exact bytes rather than parsed. */
async function searchTable(read: () => Promise<Buffer | null | 'missing'>, key: string): Promise<number | null | 'missing'> {
  const table = await read();
  if (table === null || table === 'missing') return table;
  return ownerInBuffer(table, Buffer.from(key, 'latin1')) ?? null;
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
