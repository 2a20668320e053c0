import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import type { WindowTuner } from '../ssh/windowTuner.js';
import type { GarbagePacer } from './garbagePacer.js';

export interface RelayResult {
  /** Bytes that went from the local socket into the SSH channel. */
  bytesToRemote: number;
  /** Bytes that went from the SSH channel out to the local socket. */
  bytesToLocal: number;
  durationMs: number;
  error: Error | null;
}

export interface Relay {
  readonly done: Promise<RelayResult>;
  /** Bytes moved so far each way, as in RelayResult. */
  readonly bytesToRemote: number;
  readonly bytesToLocal: number;
  /**
   * Tears both ends down at once. The local socket is reset rather than
   * closed, so that a client reading a download sees an error, never an end
   * of file that looks like a complete transfer.
   */
  abort(reason: Error): void;
  /**
   * The session that owns the relay has ended: the transfer may still
   * finish (every byte the server sent still reaches the client), but from
   * now on it must keep moving, or it is aborted after `stallMs` without a
   * byte either way.
   */
  orphan(stallMs: number): void;
}

/**
 * The two ends of a data connection. Each is its raw stream, or TLS over
 * it: bytes are copied between `local` and `remote`, while resets go to the
 * client's TCP socket and the receive window is that of the SSH channel.
 */
export interface RelayEnds {
  /** What the client side reads and writes: its socket, or TLS over it. */
  local: Duplex;
  /** The client's TCP socket underneath `local`. */
  localSocket: Socket;
  /** The server side: the SSH channel, or TLS over it. */
  remote: Duplex;
  /** The SSH channel underneath `remote`. */
  channel: ClientChannel;
}

export function plainEnds(socket: Socket, channel: ClientChannel): RelayEnds {
  return { local: socket, localSocket: socket, remote: channel, channel };
}

/** Resets the client's TCP connection, so that it sees an error and not an end of file. */
function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    // Its handle belongs to a TLS socket now: a plain destroy is what is left.
    socket.destroy();
  }
}

/**
 * Copies bytes both ways between a local TCP socket and an SSH channel, with
 * backpressure (pipe pauses the source while the destination is full) and
 * half-close: the end of one direction is passed on as an EOF, never as a
 * close, so the other direction can still finish. Both ends are torn down
 * exactly once, on error or when both directions are done.
 *
 * The SSH channel needs care: once the server has closed it, writes into it
 * are silently dropped and never call back, so the socket's inbound side is
 * stopped then, while its outbound side is allowed to flush.
 */
/** How a relay sizes the receive window of its channel as it goes. */
export interface WindowSizing {
  tuner: WindowTuner;
  /** The SSH connection's current round-trip estimate, in ms. */
  roundTripMs(): number;
  /** Told of each new window, for the log. */
  onChange?(windowBytes: number): void;
}

export function relay(ends: RelayEnds, lingerMs: number, sizing?: WindowSizing, pacer?: GarbagePacer): Relay {
  const { local, localSocket, remote, channel } = ends;
  const startedAt = Date.now();
  let bytesToRemote = 0;
  let bytesToLocal = 0;
  let finished = false;
  let lingerTimer: NodeJS.Timeout | undefined;
  let stallTimer: NodeJS.Timeout | undefined;
  let stallMs = 0;
  let resolveDone!: (result: RelayResult) => void;
  const done = new Promise<RelayResult>((resolve) => {
    resolveDone = resolve;
  });

  const finish = (error: Error | null, reset = false): void => {
    if (finished) return;
    finished = true;
    clearTimeout(lingerTimer);
    clearTimeout(stallTimer);
    local.unpipe(remote);
    remote.unpipe(local);
    if (reset) resetSocket(localSocket);
    local.destroy();
    localSocket.destroy();
    remote.destroy();
    channel.destroy();
    sizing?.tuner.release();
    resolveDone({ bytesToRemote, bytesToLocal, durationMs: Date.now() - startedAt, error });
  };

  const progressed = (): void => {
    if (stallMs > 0) stallTimer?.refresh();
  };
  const onError = (error: Error): void => finish(error, true);
  for (const stream of new Set<Duplex>([local, localSocket, remote, channel])) stream.on('error', onError);
  local.on('data', (chunk: Buffer) => {
    bytesToRemote += chunk.length;
    progressed();
    pacer?.moved(chunk.length);
  });
  remote.on('data', (chunk: Buffer) => {
    bytesToLocal += chunk.length;
    progressed();
    pacer?.moved(chunk.length);
    if (sizing) {
      const backlogBytes = local.writableLength + remote.readableLength + (remote === channel ? 0 : channel.readableLength);
      const window = sizing.tuner.onDelivered({ bytes: chunk.length, nowMs: performance.now(), backlogBytes, roundTripMs: sizing.roundTripMs() });
      if (window !== null) {
        channel.setWindowLimit(window);
        sizing.onChange?.(window);
      }
    }
  });

  // Done when each direction has delivered its EOF and flushed its writes.
  let localReadEnded = false;
  let remoteReadEnded = false;
  let channelGone = false;
  const maybeDone = (): void => {
    const upstreamDone = channelGone || (localReadEnded && remote.writableFinished);
    const downstreamDone = remoteReadEnded && local.writableFinished;
    if (upstreamDone && downstreamDone) finish(null);
  };
  local.once('end', () => {
    localReadEnded = true;
    maybeDone();
  });
  remote.once('end', () => {
    remoteReadEnded = true;
    maybeDone();
  });
  local.once('finish', maybeDone);
  remote.once('finish', maybeDone);
  local.once('close', () => finish(local.writableFinished ? null : new Error('local socket closed before all data reached it')));

  channel.once('close', () => {
    // The channel is gone: nothing more can be sent into it, and writes
    // would never call back. Let what it already delivered reach the local
    // side, then close. After finish() (which destroys the channel, so this
    // fires then too) there is nothing left to wait for: a linger timer
    // armed now would hold the whole session in memory for lingerMs.
    if (finished) return;
    channelGone = true;
    local.unpipe(remote);
    local.pause();
    lingerTimer = setTimeout(() => finish(new Error('local side did not drain after the channel closed'), true), lingerMs);
    lingerTimer.unref();
    maybeDone();
  });

  local.pipe(remote);
  remote.pipe(local);

  return {
    done,
    get bytesToRemote() {
      return bytesToRemote;
    },
    get bytesToLocal() {
      return bytesToLocal;
    },
    abort: (reason) => finish(reason, true),
    orphan: (ms) => {
      if (finished || stallMs > 0) return;
      stallMs = ms;
      stallTimer = setTimeout(() => finish(new Error(`no data moved for ${Math.round(ms / 1000)} s after the session ended`), true), ms);
      stallTimer.unref();
    },
  };
}
