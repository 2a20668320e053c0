import type { Socket } from 'node:net';
import { sameAddress } from '../net/addresses.js';

/**
 * Decides whether a connection that arrived on a passive data listener
 * belongs to the control connection's own client. Anyone else who reaches
 * the port (another user on the same host, a scanner) must not get the
 * download or the upload slot. May answer asynchronously, e.g. after
 * looking up the owner of a loopback socket.
 */
export type DataPeerCheck = (data: Socket, control: Socket) => boolean | Promise<boolean>;

/** The baseline rule: the data connection comes from the control connection's address. */
export const sameAddressPeer: DataPeerCheck = (data, control) => {
  const from = data.remoteAddress;
  const client = control.remoteAddress;
  return from !== undefined && client !== undefined && sameAddress(from, client);
};
