import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { errorCode } from '../errors.js';
import { findSocketOwner, type Endpoint } from '../net/procNetTcp.js';

const TABLES = ['/proc/net/tcp', '/proc/net/tcp6'];

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
  for (const table of TABLES) {
    let text: string;
    try {
      text = await readFile(table, 'latin1');
    } catch (error) {
      // Only a system without the table is "unsupported"; any other failure
      // (EMFILE, say, which a peer could provoke) refuses rather than lets in.
      if (errorCode(error) === 'ENOENT') continue;
      return null;
    }
    readable = true;
    const owner = findSocketOwner(text, peerLocal, peerRemote);
    if (owner !== null) return owner;
  }
  return readable ? null : 'unsupported';
}
