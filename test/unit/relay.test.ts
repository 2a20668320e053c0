import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import type { ClientChannel } from 'ssh2';
import { plainEnds, relay } from '../../src/session/relay.js';

/** A loopback socket pair: what the relay sees as its local side, and the far end a test drives. */
async function socketPair(): Promise<{ near: Socket; far: Socket; close(): void }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const far = connect(address.port, '127.0.0.1');
  const [near] = await accepted;
  return { near, far, close: () => server.close() };
}

/** Stands in for an SSH channel: a duplex whose writes the test reads from `sent`, fed by `toLocal`. */
function fakeChannel(): { channel: ClientChannel; sent: PassThrough; toLocal: PassThrough } {
  const sent = new PassThrough();
  const toLocal = new PassThrough();
  const duplex = new Duplex({
    read: () => toLocal.resume(),
    write: (chunk: Buffer, _encoding, callback) => {
      sent.write(chunk);
      callback();
    },
    final: (callback) => {
      sent.end();
      callback();
    },
  });
  toLocal.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) toLocal.pause();
  });
  toLocal.on('end', () => duplex.push(null));
  return { channel: duplex as unknown as ClientChannel, sent, toLocal };
}

interface TrackedTimer {
  delayMs: number;
  cleared: boolean;
  fired: boolean;
}

/** Records the timers armed with `delayMs` while the test runs. */
function trackTimers(delayMs: number): { timers: TrackedTimer[]; restore(): void } {
  const originalSet = globalThis.setTimeout;
  const originalClear = globalThis.clearTimeout;
  const timers: TrackedTimer[] = [];
  const byHandle = new Map<unknown, TrackedTimer>();
  const trackedSet = ((callback: () => void, ms?: number) => {
    if (ms !== delayMs) return originalSet(callback, ms);
    const tracked: TrackedTimer = { delayMs: ms, cleared: false, fired: false };
    const handle = originalSet(() => {
      tracked.fired = true;
      callback();
    }, ms);
    timers.push(tracked);
    byHandle.set(handle, tracked);
    return handle;
  }) as typeof setTimeout;
  const trackedClear = ((handle?: NodeJS.Timeout | string | number) => {
    const tracked = byHandle.get(handle);
    if (tracked) tracked.cleared = true;
    originalClear(handle);
  }) as typeof clearTimeout;
  globalThis.setTimeout = trackedSet;
  globalThis.clearTimeout = trackedClear;
  return {
    timers,
    restore: () => {
      for (const [handle, tracked] of byHandle) if (!tracked.cleared && !tracked.fired) originalClear(handle as NodeJS.Timeout);
      globalThis.setTimeout = originalSet;
      globalThis.clearTimeout = originalClear;
    },
  };
}

describe('relay', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  /** A relay between a loopback socket pair and a fake channel, with the timers armed for `lingerMs` tracked. */
  async function startRelay(lingerMs: number) {
    const tracker = trackTimers(lingerMs);
    cleanups.push(tracker.restore);
    const pair = await socketPair();
    cleanups.push(() => {
      pair.far.destroy();
      pair.close();
    });
    const { channel, sent, toLocal } = fakeChannel();
    const channelClosed = once(channel, 'close');
    const running = relay(plainEnds(pair.near, channel), lingerMs);
    return { tracker, far: pair.far, channel, sent, toLocal, channelClosed, running };
  }

  // A linger timer left armed after the relay is done holds the session's
  // sockets, channel and state in memory until it fires: 30 s of every
  // session, the whole heap of a busy forwarder.
  it('leaves no linger timer armed once both directions are done and the channel has closed', async () => {
    const { tracker, far, sent, toLocal, channelClosed, running } = await startRelay(12_345);
    const upload: Buffer[] = [];
    sent.on('data', (chunk: Buffer) => upload.push(chunk));
    const download: Buffer[] = [];
    far.on('data', (chunk: Buffer) => download.push(chunk));
    far.end('up');
    toLocal.end('down');

    const result = await running.done;
    assert.equal(result.error, null);
    await channelClosed;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(Buffer.concat(upload).toString(), 'up');
    assert.equal(Buffer.concat(download).toString(), 'down');
    const armed = tracker.timers.filter((timer) => !timer.cleared && !timer.fired);
    assert.equal(armed.length, 0, `${armed.length} linger timer(s) still armed after the relay finished`);
  });

  it('still waits for the local side to drain when the channel closes first', async () => {
    const { tracker, far, channel, toLocal, channelClosed, running } = await startRelay(12_346);
    toLocal.write('last bytes');
    await new Promise((resolve) => setImmediate(resolve));
    (channel as unknown as Duplex).destroy();
    await channelClosed;
    assert.equal(tracker.timers.length, 1, 'a linger timer is armed while the local side may still drain');
    far.end();
    far.resume();
    const result = await running.done;
    assert.ok(result.bytesToLocal >= 'last bytes'.length);
    assert.equal(tracker.timers.filter((timer) => !timer.cleared && !timer.fired).length, 0);
  });
});
