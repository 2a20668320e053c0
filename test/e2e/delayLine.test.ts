/**
 * The benchmark's delay line (test/helpers/delayLine.ts): each direction is
 * held back by half the round-trip time, bytes and half-closes arrive intact,
 * and what it holds stays within its bound when the reader is slow.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { startDelayLine, startDelayLineProcess, type DelayLineProcess } from '../helpers/delayLine.js';
import { delay, withTimeout } from '../helpers/time.js';

const RTT_MS = 100;
const WAIT_MS = 10_000;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function listen(onConnection: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

function connectTo(port: number): Promise<Socket> {
  return withTimeout(new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  }), WAIT_MS, `connecting to 127.0.0.1:${port}`);
}

/** Everything `socket` sends until its end of stream. */
function readAll(socket: Socket): Promise<Buffer> {
  return withTimeout(new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  }), WAIT_MS, 'reading to the end of stream');
}

function nextData(socket: Socket): Promise<number> {
  return withTimeout(new Promise((resolve) => socket.once('data', () => resolve(performance.now()))), WAIT_MS, 'waiting for data');
}

describe('delay line', () => {
  let line: DelayLineProcess | undefined;
  let target: Server | undefined;
  /** Hands the far end's side of the next connection to open(). */
  let accept: (socket: Socket) => void = (socket) => socket.destroy();

  before(async () => {
    const started = await listen((socket) => accept(socket));
    target = started.server;
    line = await startDelayLineProcess({ targetHost: '127.0.0.1', targetPort: started.port, rttMs: RTT_MS });
  });

  after(async () => {
    await line?.stop();
    await new Promise<void>((resolve) => (target === undefined ? resolve() : target.close(() => resolve())));
  });

  const open = async (): Promise<{ near: Socket; far: Socket }> => {
    const accepted = new Promise<Socket>((resolve) => {
      accept = resolve;
    });
    const near = await connectTo(line!.port);
    const far = await withTimeout(accepted, WAIT_MS, 'the relayed connection');
    return { near, far };
  };

  it('holds each direction back by half the round-trip time', async () => {
    const { near, far } = await open();
    try {
      const oneWay = RTT_MS / 2;
      for (let i = 0; i < 5; i++) {
        const sentUp = performance.now();
        const arrivedUp = nextData(far);
        near.write('u');
        const up = (await arrivedUp) - sentUp;
        const sentDown = performance.now();
        const arrivedDown = nextData(near);
        far.write('d');
        const down = (await arrivedDown) - sentDown;
        // Released by a millisecond timer: at most 1 ms early; late by the event loops of two processes.
        for (const [what, ms] of [['up', up], ['down', down]] as const) {
          assert.ok(ms >= oneWay - 1.5 && ms < oneWay + 25, `${what} took ${ms.toFixed(1)} ms, not about ${oneWay} ms`);
        }
      }
    } finally {
      near.destroy();
      far.destroy();
    }
  });

  it('passes 32 MiB each way intact, at once, and then each half-close', async () => {
    const { near, far } = await open();
    try {
      const upData = randomBytes(32 * 1024 * 1024);
      const downData = randomBytes(32 * 1024 * 1024);
      const started = performance.now();
      const gotUp = readAll(far);
      const gotDown = readAll(near);
      near.end(upData);
      far.end(downData);
      const [up, down] = await Promise.all([gotUp, gotDown]);
      const seconds = (performance.now() - started) / 1000;
      assert.equal(up.length, upData.length);
      assert.equal(sha256(up), sha256(upData));
      assert.equal(down.length, downData.length);
      assert.equal(sha256(down), sha256(downData));
      // No window of its own: 64 MiB at 100 ms RTT would take over 1.6 s if it moved 2 MiB per round trip.
      assert.ok(seconds < 1.5, `took ${seconds.toFixed(2)} s`);
    } finally {
      near.destroy();
      far.destroy();
    }
  });

  it('stops reading when one direction holds its bound, and carries on intact', async () => {
    const bound = 1024 * 1024;
    let far: Socket | undefined;
    const source = await listen((socket) => {
      far = socket;
    });
    const local = await startDelayLine({ targetHost: '127.0.0.1', targetPort: source.port, rttMs: 20, maxBufferedBytes: bound });
    const near = await connectTo(local.port);
    try {
      const data = randomBytes(16 * 1024 * 1024);
      for (let i = 0; i < 100 && far === undefined; i++) await delay(10);
      assert.ok(far !== undefined, 'no relayed connection');
      near.pause();
      far.end(data);
      await delay(300);
      const held = local.stats().down;
      assert.ok(held.pauses >= 1, 'never stopped reading');
      near.resume();
      const got = await readAll(near);
      assert.equal(sha256(got), sha256(data));
      const stats = local.stats().down;
      // One read beyond the bound at most (a socket read is at most 64 KiB).
      assert.ok(stats.peakBufferedBytes <= bound + 64 * 1024, `held ${stats.peakBufferedBytes} bytes`);
      assert.equal(stats.bytes, data.length);
    } finally {
      near.destroy();
      far?.destroy();
      await local.close();
      await new Promise<void>((resolve) => source.server.close(() => resolve()));
    }
  });
});
