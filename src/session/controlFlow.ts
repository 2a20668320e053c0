import type { Duplex } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { LineBuffer } from '../ftp/lineFramer.js';

/** The two ends of one FTP control connection. */
export type Side = 'client' | 'server';

export interface ControlFlowHandlers {
  /** One line from `side`, without its terminator; the next line from that side waits until this settles. */
  onLine(side: Side, line: Buffer): Promise<void> | void;
  /** `side` sent a line longer than the cap: nothing more is read from it. */
  onOverflow(side: Side): void;
  /** `side` ended its stream and every line it sent has been handled. */
  onEnd(side: Side): void;
  /** Handling a line of `side` threw: a bug, reported rather than left as an unhandled rejection. */
  onFailure(side: Side, error: unknown): void;
}

/**
 * Unhandled input kept from one side before reading from it stops. With a
 * socket delivering chunks of up to 64 KiB, at most this plus one chunk is
 * ever held.
 */
export const MAX_BUFFERED_INPUT = 64 * 1024;
/** Lines handled for one side before the event loop gets a turn, so one session cannot starve the others. */
export const LINES_PER_TURN = 64;

interface Inbound {
  source: Duplex | null;
  /** The listeners on `source`, so that it can be swapped for another stream. */
  listeners: { data: (chunk: Buffer) => void; end: () => void } | null;
  readonly lines: LineBuffer;
  ended: boolean;
  /** Set while lines are being handled; the next chunk's lines join the same run. */
  running: Promise<void> | null;
  /** Reading stopped for good (overflow, or stop()). */
  closed: boolean;
}

/**
 * Flow control for one control connection, both directions, in one place:
 * what is read from each side, what is queued, what is written, and when to
 * stop reading. Lines are taken one at a time and handed to the session in
 * order; a side's lines wait while the streams they are written to are full
 * (so a client that sends and never reads stops being read), its socket is
 * paused while too much of its input waits, and long bursts give the event
 * loop a turn every few lines.
 *
 * Client lines may be answered to either side, so they wait for both
 * outputs; server lines only ever go to the client, so they wait only for
 * it: a server line never waits on the server, which could otherwise stop
 * reading our commands while we stop reading its replies.
 */
export class ControlFlow {
  private readonly inbound: Record<Side, Inbound>;
  private readonly outputs: Record<Side, Duplex | null>;
  private stopped = false;

  constructor(
    client: Duplex,
    maxLineLength: number,
    private readonly handlers: ControlFlowHandlers,
  ) {
    this.inbound = {
      client: { source: null, listeners: null, lines: new LineBuffer(maxLineLength), ended: false, running: null, closed: false },
      server: { source: null, listeners: null, lines: new LineBuffer(maxLineLength), ended: false, running: null, closed: false },
    };
    this.outputs = { client, server: null };
  }

  /**
   * The server side, once its channel is open: only then is the client read,
   * since its lines have nowhere to go before.
   */
  attachServer(channel: Duplex): void {
    this.outputs.server = channel;
    this.attach('server', channel);
    this.attach('client', this.outputs.client!);
    // A stream that was read before (TLS negotiated on it) may be paused.
    this.updateReading('server');
    this.updateReading('client');
  }

  /**
   * The client's bytes now travel in `stream` (TLS over the same socket,
   * after AUTH TLS or for implicit TLS): read and write that instead. The
   * caller makes sure nothing is left unread in plaintext.
   */
  replaceClient(stream: Duplex): void {
    const inbound = this.inbound.client;
    const previous = inbound.source;
    if (previous && inbound.listeners) {
      previous.removeListener('data', inbound.listeners.data);
      previous.removeListener('end', inbound.listeners.end);
    }
    this.outputs.client = stream;
    if (previous === null) return;
    this.attach('client', stream);
    this.updateReading('client');
  }

  /** Queues bytes for `side`; the caller never waits, the next line does. */
  send(side: Side, data: Buffer): void {
    const output = this.outputs[side];
    if (output && output.writable && !output.writableEnded) output.write(data);
  }

  /** Bytes received from `side` and not yet handled as lines. */
  bufferedInput(side: Side): number {
    return this.inbound[side].lines.bufferedBytes;
  }

  /** Resolves when every line received so far from `side` has been handled. */
  async idle(side: Side): Promise<void> {
    for (let running = this.inbound[side].running; running !== null; running = this.inbound[side].running) await running;
  }

  /** Stops reading and handling lines from both sides, for good. */
  stop(): void {
    this.stopped = true;
    for (const side of ['client', 'server'] as const) this.inbound[side].closed = true;
  }

  private attach(side: Side, source: Duplex): void {
    const inbound = this.inbound[side];
    inbound.source = source;
    inbound.listeners = {
      data: (chunk: Buffer) => {
        if (inbound.closed) return;
        inbound.lines.push(chunk);
        this.updateReading(side);
        this.run(side);
      },
      end: () => {
        inbound.ended = true;
        this.run(side);
      },
    };
    source.on('data', inbound.listeners.data);
    source.once('end', inbound.listeners.end);
  }

  private run(side: Side): void {
    const inbound = this.inbound[side];
    inbound.running ??= this.handleLines(side)
      .catch((error: unknown) => {
        inbound.closed = true;
        this.handlers.onFailure(side, error);
      })
      .finally(() => {
        inbound.running = null;
        if (this.stopped) return;
        this.updateReading(side);
        // Every whole line has been handled: what is left is an unfinished one.
        if (inbound.ended && !inbound.closed) {
          inbound.closed = true;
          this.handlers.onEnd(side);
        }
      });
  }

  private async handleLines(side: Side): Promise<void> {
    const inbound = this.inbound[side];
    const outputs: Side[] = side === 'client' ? ['client', 'server'] : ['client'];
    for (let handled = 1; !this.stopped && !inbound.closed; handled += 1) {
      await this.roomIn(outputs);
      if (this.stopped || inbound.closed) return;
      const next = inbound.lines.next();
      if (next.kind === 'none') return;
      if (next.kind === 'overflow') {
        inbound.closed = true;
        inbound.source?.pause();
        this.handlers.onOverflow(side);
        return;
      }
      this.updateReading(side);
      await this.handlers.onLine(side, next.line);
      if (handled % LINES_PER_TURN === 0) await nextTurn();
    }
  }

  /** Waits while any of `sides` has more queued than its stream wants. */
  private async roomIn(sides: readonly Side[]): Promise<void> {
    for (const side of sides) {
      const output = this.outputs[side];
      if (output && output.writableNeedDrain && !output.destroyed) await drained(output);
    }
  }

  private updateReading(side: Side): void {
    const inbound = this.inbound[side];
    const source = inbound.source;
    if (!source) return;
    if (inbound.closed || inbound.lines.bufferedBytes > MAX_BUFFERED_INPUT) source.pause();
    else if (source.isPaused()) source.resume();
  }
}

/** Resolves on 'drain', or when the stream is gone and will never drain. */
function drained(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.removeListener('drain', done);
      stream.removeListener('close', done);
      stream.removeListener('error', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}
