/**
 * A user-space delay line: a TCP relay that holds every chunk it reads for
 * half the round-trip time before writing it on, in each direction, so that
 * a loopback path behaves like a long link (the kernels here have no netem).
 *
 * It must not limit throughput, or it would measure itself:
 * - each direction is a queue of (due time, chunk), released by one timer
 *   armed for the head of the queue; when the timer fires late, everything
 *   that has fallen due goes out at once, so a late timer shifts bytes in
 *   time but never lowers the rate (no per-chunk wait, no waiting for a
 *   write to drain before the next chunk is released);
 * - reading stops only when one direction holds `maxBufferedBytes` (queued
 *   plus written but not yet taken by the kernel), which caps that direction
 *   at maxBufferedBytes / (rtt/2): 256 MiB at 50 ms is ~5 GB/s, far above
 *   anything it is used to measure; `pauses` in the stats says if it ever
 *   happened;
 * - both of its sockets have TCP_NODELAY, so it adds no Nagle wait of its own.
 *
 * The relay acknowledges TCP locally on both sides, so the TCP windows of the
 * two loopback legs are never what limits a transfer: the delay is seen by
 * what runs above TCP (SSH's channel windows, FTP's request and reply), which
 * is what it is for. It runs in-process (`startDelayLine`) or as a process of
 * its own (`startDelayLineProcess`, delayLineMain.ts), which keeps its CPU
 * apart from the process being measured.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startProcess, type ProcessHandle } from './processes.js';

const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 20_000;
/** Compact a queue's array once this many released entries sit at its front. */
const COMPACT_AFTER = 4096;

export interface DelayLineOptions {
  /** Default 127.0.0.1. */
  listenHost?: string;
  /** Default 0: a free port. */
  listenPort?: number;
  targetHost: string;
  targetPort: number;
  /** The round-trip time added; each direction gets half. */
  rttMs: number;
  /** Bytes one direction of one connection may hold before it stops reading. */
  maxBufferedBytes?: number;
}

export interface DelayLineProcessOptions extends DelayLineOptions {
  /**
   * Scheduling priority of the process (nice value, -20 to 19; below 0 needs
   * root). The delay line stands for the network: with the endpoints
   * keeping every core busy it should not be the one left waiting. Not
   * changed when not given, or when the system refuses.
   */
  priority?: number;
}

/** Per direction: `up` is client to target, `down` target to client. */
export interface DirectionStats {
  bytes: number;
  /** Times reading stopped because the direction held maxBufferedBytes. */
  pauses: number;
  /** The most this direction held at once, in bytes. */
  peakBufferedBytes: number;
  /** How much later than due a chunk was written, at worst and on average, in ms. */
  maxLateMs: number;
  meanLateMs: number;
  /** Chunks (and ends of stream) released. */
  releases: number;
}

export interface DelayLineStats {
  rttMs: number;
  connections: number;
  up: DirectionStats;
  down: DirectionStats;
}

export interface DelayLine {
  host: string;
  port: number;
  stats(): DelayLineStats;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

function emptyDirection(): DirectionStats {
  return { bytes: 0, pauses: 0, peakBufferedBytes: 0, maxLateMs: 0, meanLateMs: 0, releases: 0 };
}

interface Entry {
  due: number;
  /** null: the source's end of stream, passed on as a half-close. */
  chunk: Buffer | null;
}

/** One direction of one connection: reads `from`, writes to `to` `delayMs` later. */
class DelayedPipe {
  private readonly queue: Entry[] = [];
  private head = 0;
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private paused = false;
  private ended = false;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly delayMs: number,
    private readonly maxBufferedBytes: number,
    private readonly stats: DirectionStats,
  ) {
    from.on('data', (chunk: Buffer) => this.onData(chunk));
    from.once('end', () => this.push(null));
    to.on('drain', () => this.maybeResume());
  }

  /** Bytes read and not yet taken by the kernel on the other side. */
  private held(): number {
    return this.queuedBytes + this.to.writableLength;
  }

  private onData(chunk: Buffer): void {
    this.stats.bytes += chunk.length;
    this.queuedBytes += chunk.length;
    this.push(chunk);
    const held = this.held();
    if (held > this.stats.peakBufferedBytes) this.stats.peakBufferedBytes = held;
    if (held >= this.maxBufferedBytes && !this.paused) {
      this.paused = true;
      this.stats.pauses += 1;
      this.from.pause();
    }
  }

  private push(chunk: Buffer | null): void {
    this.queue.push({ due: performance.now() + this.delayMs, chunk });
    this.arm();
  }

  private arm(): void {
    if (this.timer !== null || this.head >= this.queue.length) return;
    const wait = Math.max(0, this.queue[this.head]!.due - performance.now());
    this.timer = setTimeout(() => this.release(), wait);
  }

  /** Writes everything that has fallen due, then re-arms for the next entry. */
  private release(): void {
    this.timer = null;
    const now = performance.now();
    // One writev for everything released together, not one write per chunk.
    this.to.cork();
    // setTimeout counts whole milliseconds; an entry due within the next one is due now.
    while (this.head < this.queue.length && this.queue[this.head]!.due <= now + 1) {
      const entry = this.queue[this.head]!;
      this.head += 1;
      const late = Math.max(0, now - entry.due);
      if (late > this.stats.maxLateMs) this.stats.maxLateMs = late;
      this.stats.releases += 1;
      this.stats.meanLateMs += (late - this.stats.meanLateMs) / this.stats.releases;
      if (entry.chunk === null) {
        this.ended = true;
        this.to.end();
        continue;
      }
      this.queuedBytes -= entry.chunk.length;
      if (!this.to.destroyed) this.to.write(entry.chunk);
    }
    this.to.uncork();
    if (this.head >= COMPACT_AFTER || this.head === this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.maybeResume();
    this.arm();
  }

  private maybeResume(): void {
    if (this.paused && !this.ended && this.held() < this.maxBufferedBytes / 2) {
      this.paused = false;
      this.from.resume();
    }
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
    this.head = 0;
  }
}

/** Starts a delay line in this process. */
export async function startDelayLine(opts: DelayLineOptions): Promise<DelayLine> {
  if (!(opts.rttMs >= 0) || !Number.isFinite(opts.rttMs)) throw new RangeError(`bad round-trip time: ${opts.rttMs}`);
  const oneWayMs = opts.rttMs / 2;
  const maxBufferedBytes = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  const stats: DelayLineStats = { rttMs: opts.rttMs, connections: 0, up: emptyDirection(), down: emptyDirection() };
  const live = new Set<() => void>();

  const onConnection = (client: Socket): void => {
    stats.connections += 1;
    client.setNoDelay(true);
    client.pause();
    const server = connect({ host: opts.targetHost, port: opts.targetPort, allowHalfOpen: true });
    server.setNoDelay(true);
    const pipes: DelayedPipe[] = [];
    let closed = false;
    const teardown = (): void => {
      if (closed) return;
      closed = true;
      clearTimeout(connectTimer);
      live.delete(teardown);
      for (const pipe of pipes) pipe.stop();
      client.destroy();
      server.destroy();
    };
    live.add(teardown);
    const connectTimer = setTimeout(teardown, CONNECT_TIMEOUT_MS);
    // An error or reset on either side ends the connection; errors are not reported further.
    for (const socket of [client, server]) {
      socket.on('error', teardown);
      socket.once('close', (hadError) => {
        if (hadError || !client.readableEnded || !server.readableEnded) teardown();
        else if (client.closed && server.closed) teardown();
      });
    }
    server.once('connect', () => {
      clearTimeout(connectTimer);
      pipes.push(new DelayedPipe(client, server, oneWayMs, maxBufferedBytes, stats.up));
      pipes.push(new DelayedPipe(server, client, oneWayMs, maxBufferedBytes, stats.down));
      client.resume();
    });
  };

  const listener: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(opts.listenPort ?? 0, opts.listenHost ?? '127.0.0.1', () => {
      listener.off('error', reject);
      resolve();
    });
  });
  const address = listener.address() as AddressInfo;
  return {
    host: address.address,
    port: address.port,
    stats: () => structuredClone(stats),
    close: async () => {
      const closing = new Promise<void>((resolve) => listener.close(() => resolve()));
      for (const teardown of [...live]) teardown();
      await closing;
    },
  };
}

const MAIN = fileURLToPath(new URL('./delayLineMain.ts', import.meta.url));
/** What delayLineMain.ts prints once it listens, and its stats when it stops. */
export const LISTENING_LINE = /^delay line listening on (\S+):(\d+)$/m;
export const STATS_PREFIX = 'delay line stats ';

export interface DelayLineProcess {
  host: string;
  port: number;
  proc: ProcessHandle;
  /** The nice value it runs at, if it was set. */
  priority: number | null;
  /** Stops the process (SIGTERM) and returns its stats, or null if it printed none. */
  stop(): Promise<DelayLineStats | null>;
}

/** Starts a delay line as a process of its own (node with tsx), so its CPU is its own. */
export async function startDelayLineProcess(opts: DelayLineProcessOptions): Promise<DelayLineProcess> {
  const args = [
    '--import', 'tsx', MAIN,
    '--listen', `${opts.listenHost ?? '127.0.0.1'}:${opts.listenPort ?? 0}`,
    '--target', `${opts.targetHost}:${opts.targetPort}`,
    '--rtt', String(opts.rttMs),
    ...(opts.maxBufferedBytes === undefined ? [] : ['--max-buffered', String(opts.maxBufferedBytes)]),
  ];
  const proc = await startProcess(process.execPath, args);
  try {
    await proc.waitForOutput(LISTENING_LINE, START_TIMEOUT_MS);
  } catch (error) {
    await proc.stop();
    throw error;
  }
  const match = LISTENING_LINE.exec(proc.stdout())!;
  let priority: number | null = null;
  if (opts.priority !== undefined) {
    try {
      setPriority(proc.pid, opts.priority);
      priority = opts.priority;
    } catch {
      priority = null;
    }
  }
  return {
    host: match[1]!,
    port: Number(match[2]),
    proc,
    priority,
    stop: async () => {
      await proc.stop();
      const line = proc.stdout().split('\n').find((l) => l.startsWith(STATS_PREFIX));
      return line === undefined ? null : (JSON.parse(line.slice(STATS_PREFIX.length)) as DelayLineStats);
    },
  };
}
