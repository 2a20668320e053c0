import type { Logger } from 'pino';
import { errorMessage, FtpfwdError } from '../errors.js';
import { clampTimerMs } from '../timers.js';
import { transferDirection, type TransferDirection } from './stats.js';

/** Bytes a transfer has moved so far. */
export interface TransferBytes {
  bytesToServer: number;
  bytesToClient: number;
}

/** One transfer under way, for progress lines and status reports. */
export interface TransferStatus extends TransferBytes {
  /** The command it carries out (`RETR big.iso`), when known. */
  command: string | null;
  direction: TransferDirection;
  elapsedMs: number;
  /** The current rate: over the last progress interval, or since the start. */
  bytesPerSecond: number;
}

/** What a watch reads from its transfer each time it reports. */
export interface TransferSource {
  command(): string | null;
  bytes(): TransferBytes;
}

/** A transfer still running this long logs a progress line, and again after each further interval. */
export const DEFAULT_PROGRESS_INTERVAL_MS = 10_000;

/** The progress interval a library user gave, defaulted and clamped to what a timer can hold. */
export function progressInterval(ms: number | undefined): number {
  try {
    return clampTimerMs(ms ?? DEFAULT_PROGRESS_INTERVAL_MS);
  } catch (error) {
    throw new FtpfwdError('ERR_FTPFWD_USAGE', `progressIntervalMs: ${errorMessage(error)}`);
  }
}

/** A window shorter than this gives a rate that jumps about: the one before it is used instead. */
const SHORTEST_RATE_WINDOW_MS = 1_000;

interface Mark {
  at: number;
  bytes: number;
}

/**
 * Watches one transfer under way: every `intervalMs` (0: never) it logs a
 * 'transfer progress' record, so that a long transfer shows it is alive,
 * and on request it reports the transfer's state. Its timer belongs to the
 * transfer: unref'd, and cleared by stop(), which the transfer's owner
 * calls on whatever path the transfer ends.
 */
export class TransferWatch {
  private readonly startedAt = Date.now();
  private readonly timer: NodeJS.Timeout | undefined;
  /** Where the current rate is measured from: the latest interval's start, and the one before. */
  private latest: Mark;
  private previous: Mark | null = null;

  constructor(
    private readonly source: TransferSource,
    private readonly log: Logger,
    intervalMs: number,
  ) {
    this.latest = { at: this.startedAt, bytes: 0 };
    if (intervalMs > 0) {
      this.timer = setInterval(() => this.report(), intervalMs);
      this.timer.unref();
    }
  }

  status(now = Date.now()): TransferStatus {
    const bytes = this.source.bytes();
    const total = bytes.bytesToServer + bytes.bytesToClient;
    const from = now - this.latest.at < SHORTEST_RATE_WINDOW_MS && this.previous !== null ? this.previous : this.latest;
    const windowMs = now - from.at;
    return {
      command: this.source.command(),
      direction: transferDirection(bytes),
      ...bytes,
      elapsedMs: now - this.startedAt,
      bytesPerSecond: windowMs > 0 ? Math.round(((total - from.bytes) * 1000) / windowMs) : 0,
    };
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private report(): void {
    const now = Date.now();
    const status = this.status(now);
    this.log.info({ ...status, command: status.command ?? undefined }, 'transfer progress');
    this.previous = this.latest;
    this.latest = { at: now, bytes: status.bytesToServer + status.bytesToClient };
  }
}

/** One FTP session, for status reports. */
export interface SessionStatus {
  id: number;
  /** The client's address and port. */
  client: string;
  /** When the session started (ms since the epoch). */
  startedAt: number;
  transfers: TransferStatus[];
}
