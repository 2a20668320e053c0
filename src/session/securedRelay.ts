import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { ClientChannel } from 'ssh2';
import { errorMessage } from '../errors.js';
import type { GarbagePacer } from './garbagePacer.js';
import { relay, type Relay, type RelayResult, type WindowSizing } from './relay.js';
import { describeTls } from './tls.js';

/** TLS for each end of one data connection; null: that end is plain. */
export interface DataTls {
  /** Wraps the SSH channel to the server's data port, ftpfwd being the TLS client. */
  server: ((channel: ClientChannel) => Promise<TLSSocket>) | null;
  /** Wraps the client's data socket, ftpfwd being the TLS server. */
  client: ((socket: Socket) => Promise<TLSSocket>) | null;
}

/**
 * A relay whose ends are first wrapped in TLS. The handshakes belong to the
 * transfer: aborting or orphaning it before they are done tears down both
 * sockets, and a failed handshake ends it with that error. Until they are
 * done nothing is read from either end (the client's socket stays paused).
 */
export function securedRelay(socket: Socket, channel: ClientChannel, tls: DataTls, lingerMs: number, sizing: WindowSizing, pacer: GarbagePacer, log: Logger): Relay {
  const startedAt = Date.now();
  let inner: Relay | null = null;
  let stopped: Error | null = null;
  let orphanMs = 0;
  const tearDown = (): void => {
    socket.destroy();
    channel.destroy();
  };
  const done = (async (): Promise<RelayResult> => {
    try {
      const [local, remote] = await Promise.all([tls.client ? tls.client(socket) : socket, tls.server ? tls.server(channel) : channel]);
      if (stopped) {
        local.destroy();
        remote.destroy();
        throw stopped;
      }
      if (log.isLevelEnabled('debug')) {
        log.debug({ client: local === socket ? 'plain' : describeTls(local as TLSSocket), server: remote === channel ? 'plain' : describeTls(remote as TLSSocket), resumed: remote === channel ? undefined : (remote as TLSSocket).isSessionReused() }, 'data connection TLS');
      }
      inner = relay({ local, localSocket: socket, remote, channel }, lingerMs, sizing, pacer);
      if (orphanMs > 0) inner.orphan(orphanMs);
      return await inner.done;
    } catch (error) {
      tearDown();
      sizing.tuner.release();
      return { bytesToRemote: 0, bytesToLocal: 0, durationMs: Date.now() - startedAt, error: new Error(`TLS on the data connection failed: ${errorMessage(error)}`) };
    }
  })();
  return {
    done,
    // Nothing moves before the handshakes are done.
    get bytesToRemote() {
      return inner?.bytesToRemote ?? 0;
    },
    get bytesToLocal() {
      return inner?.bytesToLocal ?? 0;
    },
    abort: (reason) => {
      if (inner) return inner.abort(reason);
      stopped ??= reason;
      tearDown();
    },
    orphan: (ms) => {
      if (inner) return inner.orphan(ms);
      orphanMs = ms;
    },
  };
}
