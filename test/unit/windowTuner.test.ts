import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { DEFAULT_WINDOW_TUNING, WindowTuner, windowBudget, type Delivery } from '../../src/ssh/windowTuner.js';

const MiB = 1024 * 1024;

/** Delivers `rateBytesPerMs` for `durationMs`, in 1 ms chunks; returns every window the tuner asked for. */
function drive(tuner: WindowTuner, options: { rateBytesPerMs: (windowBytes: number) => number; durationMs: number; roundTripMs: number; keepingUp?: boolean; startMs?: number }): number[] {
  const windows: number[] = [];
  const start = options.startMs ?? 0;
  for (let now = start; now < start + options.durationMs; now += 1) {
    // A reader that does not keep up leaves most of a window waiting.
    const backlogBytes = options.keepingUp === false ? tuner.windowBytes / 2 : 0;
    const delivery: Delivery = { bytes: options.rateBytesPerMs(tuner.windowBytes), nowMs: now, backlogBytes, roundTripMs: options.roundTripMs };
    const changed = tuner.onDelivered(delivery);
    if (changed !== null) windows.push(changed);
  }
  return windows;
}

/** A path whose only limit is the window: one window per round trip. */
const windowLimited = (roundTripMs: number) => (windowBytes: number) => windowBytes / roundTripMs;

describe('WindowTuner', () => {
  it('a channel held back by its window at 50 ms doubles it every round trip, up to the maximum', () => {
    const tuner = new WindowTuner(DEFAULT_WINDOW_TUNING, windowBudget(256 * MiB));
    const windows = drive(tuner, { rateBytesPerMs: windowLimited(50), durationMs: 1_000, roundTripMs: 50 });
    assert.deepEqual(windows, [4 * MiB, 8 * MiB, 16 * MiB, 32 * MiB]);
    assert.equal(tuner.windowBytes, DEFAULT_WINDOW_TUNING.maxBytes);
  });

  it('a reader that does not keep up never earns a larger window', () => {
    const tuner = new WindowTuner(DEFAULT_WINDOW_TUNING, windowBudget(256 * MiB));
    assert.deepEqual(drive(tuner, { rateBytesPerMs: windowLimited(50), durationMs: 1_000, roundTripMs: 50, keepingUp: false }), []);
    assert.equal(tuner.windowBytes, 2 * MiB);
  });

  it('a path limited elsewhere (a quarter window per round trip) keeps the window', () => {
    const tuner = new WindowTuner(DEFAULT_WINDOW_TUNING, windowBudget(256 * MiB));
    assert.deepEqual(drive(tuner, { rateBytesPerMs: (w) => w / 4 / 50, durationMs: 1_000, roundTripMs: 50 }), []);
  });

  it('on loopback (0.2 ms round trip, 500 MB/s, CPU-bound) the window stays at 2 MiB', () => {
    const tuner = new WindowTuner(DEFAULT_WINDOW_TUNING, windowBudget(256 * MiB));
    assert.deepEqual(drive(tuner, { rateBytesPerMs: () => 500_000, durationMs: 2_000, roundTripMs: 0.2 }), []);
  });

  // The round trip ftpfwd measures on loopback is a channel open, about a
  // millisecond; data arriving in bursts after a busy moment then looks
  // like a whole window per round trip.
  it('on a busy loopback (1.4 ms round trip, 800 MB/s) the window stays at 2 MiB: it already allows 1.5 GB/s', () => {
    const tuner = new WindowTuner(DEFAULT_WINDOW_TUNING, windowBudget(256 * MiB));
    assert.deepEqual(drive(tuner, { rateBytesPerMs: () => 800_000, durationMs: 2_000, roundTripMs: 1.4 }), []);
  });

  it('at 4 ms a window-bound channel grows until its window allows 1 GB/s, then stops', () => {
    const tuner = new WindowTuner(DEFAULT_WINDOW_TUNING, windowBudget(256 * MiB));
    assert.deepEqual(drive(tuner, { rateBytesPerMs: windowLimited(4), durationMs: 1_000, roundTripMs: 4 }), [4 * MiB]);
  });

  it('with no round trip measured yet, nothing changes', () => {
    const tuner = new WindowTuner(DEFAULT_WINDOW_TUNING, windowBudget(256 * MiB));
    assert.deepEqual(drive(tuner, { rateBytesPerMs: windowLimited(50), durationMs: 500, roundTripMs: 0 }), []);
  });

  it('the budget bounds every channel together; a finished channel gives its share back', () => {
    const budget = windowBudget(10 * MiB);
    const first = new WindowTuner(DEFAULT_WINDOW_TUNING, budget);
    const second = new WindowTuner(DEFAULT_WINDOW_TUNING, budget);
    drive(first, { rateBytesPerMs: windowLimited(50), durationMs: 1_000, roundTripMs: 50 });
    assert.equal(first.windowBytes, 12 * MiB);
    assert.deepEqual(drive(second, { rateBytesPerMs: windowLimited(50), durationMs: 1_000, roundTripMs: 50 }), []);
    first.release();
    drive(second, { rateBytesPerMs: windowLimited(50), durationMs: 1_000, roundTripMs: 50, startMs: 1_000 });
    assert.equal(second.windowBytes, 12 * MiB);
  });
});

describe('the ssh2 patch', () => {
  it('is applied: channels have setWindowLimit, clients sendIgnore', () => {
    const require = createRequire(import.meta.url);
    const { Channel } = require('ssh2/lib/Channel.js') as { Channel: { prototype: Record<string, unknown> } };
    const { Client } = require('ssh2') as { Client: { prototype: Record<string, unknown> } };
    assert.equal(typeof Channel.prototype['setWindowLimit'], 'function', 'npm install did not apply src/patches/ssh2+1.17.0.patch');
    assert.equal(typeof Client.prototype['sendIgnore'], 'function');
  });
});
