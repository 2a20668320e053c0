/**
 * Sizes the receive window of one channel that carries a download, the way
 * TCP's receive-buffer auto-tuning (and HPN-SSH) do: one channel moves at
 * most window / round trip, so a channel that delivers about a whole window
 * per round trip is held back by its window, and gets twice as much, as
 * long as its reader keeps up. A slow reader never earns a larger window,
 * so the memory it can make us hold stays at what it was given.
 *
 * Pure: it is told what was delivered and when, and says what the window
 * should now be.
 */
export interface WindowTuning {
  /** The window every channel starts with (ssh2's, and OpenSSH's, 2 MiB). */
  initialBytes: number;
  /** The most one channel may be given. */
  maxBytes: number;
  /**
   * A window that already lets a channel move this much per second (bytes)
   * is never grown: faster than one SSH channel is encrypted and decrypted
   * on one core, so the window cannot be what holds it back, and more of it
   * would only be memory. On loopback and a LAN (a round trip of a
   * millisecond or two) a 2 MiB window is past it already.
   */
  enoughBytesPerSecond: number;
}

export const DEFAULT_WINDOW_TUNING: WindowTuning = { initialBytes: 2 * 1024 * 1024, maxBytes: 32 * 1024 * 1024, enoughBytesPerSecond: 1_000_000_000 };

/** A measurement shorter than this says little (timer and scheduling noise). */
const MIN_INTERVAL_MS = 5;

export interface Delivery {
  bytes: number;
  nowMs: number;
  /**
   * What has been delivered and not yet taken by the reader. Within a burst
   * it grows; a reader that keeps up takes it all before the next round
   * trip, a slow one lets it build up towards the window.
   */
  backlogBytes: number;
  /** The path's round-trip time; 0 when unknown. */
  roundTripMs: number;
}

/** Where the extra window of all channels comes from: the total is bounded, whatever their number. */
export interface WindowBudget {
  /** Up to `bytes` more; returns how many were granted. */
  take(bytes: number): number;
  give(bytes: number): void;
}

export function windowBudget(totalBytes: number): WindowBudget {
  let left = totalBytes;
  return {
    take: (bytes) => {
      const granted = Math.max(0, Math.min(bytes, left));
      left -= granted;
      return granted;
    },
    give: (bytes) => {
      left = Math.min(totalBytes, left + bytes);
    },
  };
}

export class WindowTuner {
  private limit: number;
  private intervalStart: number | null = null;
  private intervalBytes = 0;
  /** What this tuner took from the budget, to give back at the end. */
  private borrowed = 0;

  constructor(
    private readonly tuning: WindowTuning,
    private readonly budget: WindowBudget,
  ) {
    this.limit = tuning.initialBytes;
  }

  get windowBytes(): number {
    return this.limit;
  }

  /** Returns the new window when it should change, else null. */
  onDelivered(delivery: Delivery): number | null {
    if (this.intervalStart === null) {
      this.intervalStart = delivery.nowMs;
      this.intervalBytes = 0;
    }
    this.intervalBytes += delivery.bytes;
    const elapsed = delivery.nowMs - this.intervalStart;
    if (delivery.roundTripMs <= 0 || elapsed < Math.max(MIN_INTERVAL_MS, delivery.roundTripMs)) return null;
    const perRoundTrip = (this.intervalBytes * delivery.roundTripMs) / elapsed;
    const keptUp = delivery.backlogBytes < this.limit / 4;
    this.intervalStart = null;
    // Held back by the window: about a whole window went by per round trip.
    const windowRate = (this.limit * 1000) / delivery.roundTripMs;
    if (!keptUp || perRoundTrip < this.limit / 2 || this.limit >= this.tuning.maxBytes || windowRate >= this.tuning.enoughBytesPerSecond) return null;
    const wanted = Math.min(this.tuning.maxBytes, this.limit * 2) - this.limit;
    const granted = this.budget.take(wanted);
    if (granted <= 0) return null;
    this.borrowed += granted;
    this.limit += granted;
    return this.limit;
  }

  /** The channel is done: its extra window goes back to the budget. */
  release(): void {
    this.budget.give(this.borrowed);
    this.borrowed = 0;
  }
}
