import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { findSocketOwner, type Endpoint } from '../net/procNetTcp.js';

/**
 * Reads one table, shared by the lookups that arrive together. A read
 * costs the kernel a walk of every socket bucket (milliseconds, however
 * short the table), and each data connection needs one: 500 sessions at
 * once queued a thousand reads on the thread pool, delaying every data
 * connection by seconds and holding hundreds of MiB of read buffers. Here
 * at most one read is under way, plus one queued for the lookups that
 * arrived during it; each lookup gets a read that began after it did, so
 * its socket is listed. Resolves null when the table cannot be read.
 */
function sharedTableReader(file: string): () => Promise<string | null> {
  let running: Promise<string | null> | null = null;
  let queued: Promise<string | null> | null = null;
  const start = (): Promise<string | null> => {
    const read = readFile(file, 'latin1').then(
      (text) => text,
      () => null,
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

const TABLES = ['/proc/net/tcp', '/proc/net/tcp6'].map(sharedTableReader);

/**
 * The local user who owns the other end of a loopback connection: on
 * 127.0.0.1 every user of the machine has the same address, so only the
 * owner of the peer's socket tells them apart. Linux lists every socket of
 * the network namespace, with its owner, in /proc/net/tcp{,6}.
 *
 * Resolves with the UID, null when the peer's socket is not listed (it
 * closed already), or 'unsupported' when the tables cannot be read (not
 * Linux), in which case only addresses can be compared.
 */
export async function peerOwner(socket: Socket): Promise<number | null | 'unsupported'> {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) return null;
  // The peer's socket has the addresses the other way round.
  const peerLocal: Endpoint = { address: remoteAddress, port: remotePort };
  const peerRemote: Endpoint = { address: localAddress, port: localPort };
  let readable = false;
  for (const readTable of TABLES) {
    const text = await readTable();
    if (text === null) continue;
    readable = true;
    const owner = findSocketOwner(text, peerLocal, peerRemote);
    if (owner !== null) return owner;
  }
  return readable ? null : 'unsupported';
}
