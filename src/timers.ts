/**
 * Node's timers hold a signed 32-bit number of milliseconds; a longer delay
 * is silently replaced by 1 ms, so "--idle-timeout 3000000" would close
 * every session at once. Every duration from a user is clamped to this.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The longest duration in whole seconds that a timer can hold (about 24.8 days). */
export const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

export function clampTimerMs(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`a duration must be a non-negative number of milliseconds, not ${ms}`);
  return Math.min(Math.round(ms), MAX_TIMER_MS);
}
