import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { ControlFlow, LINES_PER_TURN, MAX_BUFFERED_INPUT, type ControlFlowHandlers, type Side } from '../../src/session/controlFlow.js';

/**
 * One end of a control connection, in memory: what the test pushes is what
 * the peer sent, and the peer reads what is written only while `reading`.
 * Like a socket, it accepts what the peer sends only while its buffer has
 * room (push returns false once the flow stopped reading).
 */
class Peer extends Duplex {
  readonly received: Buffer[] = [];
  private reading = true;
  private held: Array<() => void> = [];

  constructor() {
    super({ highWaterMark: 16 * 1024 });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.received.push(chunk);
    if (this.reading) callback();
    else this.held.push(callback);
  }

  setReading(reading: boolean): void {
    this.reading = reading;
    if (reading) for (const callback of this.held.splice(0)) callback();
  }

  /** Sends as a peer would: returns false once the flow has stopped taking data. */
  send(text: string | Buffer): boolean {
    return this.push(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
  }

  text(): string {
    return Buffer.concat(this.received).toString('latin1');
  }
}

interface Recorded {
  lines: Array<{ side: Side; line: string }>;
  overflows: Side[];
  ends: Side[];
  failures: unknown[];
}

function recorder(onLine?: (side: Side, line: string) => Promise<void> | void): { handlers: ControlFlowHandlers; seen: Recorded } {
  const seen: Recorded = { lines: [], overflows: [], ends: [], failures: [] };
  return {
    seen,
    handlers: {
      onLine: (side, line) => {
        seen.lines.push({ side, line: line.toString('latin1') });
        return onLine?.(side, line.toString('latin1'));
      },
      onOverflow: (side) => seen.overflows.push(side),
      onEnd: (side) => seen.ends.push(side),
      onFailure: (_side, error) => seen.failures.push(error),
    },
  };
}

/** Lets the event loop run until `check` holds, at most `turns` turns. */
async function until(check: () => boolean, turns = 2_000): Promise<boolean> {
  for (let turn = 0; turn < turns; turn += 1) {
    if (check()) return true;
    await nextTurn();
  }
  return check();
}

describe('ControlFlow', () => {
  it('reads nothing from the client before the server side is attached, then handles lines in order', async () => {
    const client = new Peer();
    const server = new Peer();
    const { handlers, seen } = recorder();
    const flow = new ControlFlow(client, 4096, handlers);
    client.send('USER a\r\nPASS b\r\n');
    await sleep(10);
    assert.equal(seen.lines.length, 0);
    flow.attachServer(server);
    server.send('220 hi\r\n');
    assert.equal(await until(() => seen.lines.length === 3), true);
    assert.deepEqual(
      seen.lines.filter((entry) => entry.side === 'client').map((entry) => entry.line),
      ['USER a', 'PASS b'],
    );
  });

  it("handles one line of a side at a time: the next waits for the previous one's handler", async () => {
    const client = new Peer();
    const server = new Peer();
    let running = 0;
    let overlapped = false;
    const { handlers, seen } = recorder(async () => {
      running += 1;
      if (running > 1) overlapped = true;
      await sleep(2);
      running -= 1;
    });
    const flow = new ControlFlow(client, 4096, handlers);
    flow.attachServer(server);
    client.send('A\r\nB\r\n');
    client.send('C\r\n');
    assert.equal(await until(() => seen.lines.length === 3), true);
    await flow.idle('client');
    assert.equal(overlapped, false);
    assert.deepEqual(seen.lines.map((entry) => entry.line), ['A', 'B', 'C']);
  });

  it('a client that floods and never reads is stopped: its queued replies and buffered input stay bounded', async () => {
    const client = new Peer();
    const server = new Peer();
    const reply = Buffer.from('500 Syntax error, command unrecognized.\r\n');
    const flow = new ControlFlow(client, 4096, {
      ...recorder().handlers,
      // Every empty line is answered locally, as the forwarder answers them.
      onLine: (side) => {
        if (side === 'client') flow.send('client', reply);
      },
    });
    flow.attachServer(server);
    client.setReading(false);
    const chunk = Buffer.alloc(64 * 1024, 0x0a);
    let accepted = 0;
    let refused = false;
    // 200 chunks would be 13 MB of newlines; the flow must stop taking them long before.
    for (let attempt = 0; attempt < 200 && !refused; attempt += 1) {
      if (client.send(chunk)) accepted += 1;
      else refused = true;
      await until(() => false, 5);
    }
    await until(() => false, 50);
    const queuedReplies = client.writableLength;
    assert.equal(refused, true, 'the flow kept taking input from a client that does not read');
    assert.ok(accepted < 10, `accepted ${accepted} chunks of 64 KiB`);
    assert.ok(queuedReplies <= 16 * 1024 + reply.length, `${queuedReplies} bytes of replies queued for a client that does not read`);
    assert.ok(flow.bufferedInput('client') <= MAX_BUFFERED_INPUT + chunk.length, `${flow.bufferedInput('client')} bytes of input buffered`);
    // Once it reads again, it is served again.
    client.setReading(true);
    const before = client.received.length;
    assert.equal(await until(() => client.received.length > before + 100), true);
  });

  it('a burst of lines on one session gives another session its turn long before the burst ends', async () => {
    const order: string[] = [];
    const makeFlow = (name: string): Peer => {
      const client = new Peer();
      const server = new Peer();
      const flow = new ControlFlow(client, 4096, { ...recorder().handlers, onLine: (side) => void (side === 'client' && order.push(name)) });
      flow.attachServer(server);
      return client;
    };
    const flooded = makeFlow('flood');
    const other = makeFlow('other');
    const burst = 20 * LINES_PER_TURN;
    flooded.send(Buffer.alloc(burst, 0x0a));
    // The other session's line arrives as I/O does: in a later turn of the event loop.
    setImmediate(() => other.send('NOOP\r\n'));
    assert.equal(await until(() => order.length === burst + 1), true);
    const position = order.indexOf('other');
    assert.ok(position >= 0 && position <= 2 * LINES_PER_TURN, `the other session waited behind ${position} lines of the burst`);
  });

  it('server lines wait only for the client; client lines wait for both', async () => {
    const client = new Peer();
    const server = new Peer();
    const { handlers, seen } = recorder();
    const flow = new ControlFlow(client, 4096, handlers);
    flow.attachServer(server);
    // The server does not read, and its side is full.
    server.setReading(false);
    flow.send('server', Buffer.alloc(64 * 1024));
    assert.equal(server.writableNeedDrain, true);
    server.send('200 one\r\n200 two\r\n');
    client.send('NOOP\r\n');
    await until(() => seen.lines.length >= 2, 200);
    assert.deepEqual(seen.lines.map((entry) => `${entry.side}:${entry.line}`), ['server:200 one', 'server:200 two']);
    server.setReading(true);
    assert.equal(await until(() => seen.lines.length === 3), true);
    assert.equal(seen.lines[2]!.side, 'client');
  });

  it('a line over the cap is reported once and nothing more is read from that side', async () => {
    const client = new Peer();
    const server = new Peer();
    const { handlers, seen } = recorder();
    const flow = new ControlFlow(client, 16, handlers);
    flow.attachServer(server);
    client.send(`NOOP\r\n${'x'.repeat(17)}\r\nPWD\r\n`);
    assert.equal(await until(() => seen.overflows.length === 1), true);
    client.send('SYST\r\n');
    await until(() => false, 20);
    assert.deepEqual(seen.lines.map((entry) => entry.line), ['NOOP']);
    assert.deepEqual(seen.overflows, ['client']);
  });

  it('the end of a side is reported once, after every whole line it sent; an unfinished last line is dropped', async () => {
    const client = new Peer();
    const server = new Peer();
    const { handlers, seen } = recorder(() => sleep(1));
    const flow = new ControlFlow(client, 4096, handlers);
    flow.attachServer(server);
    server.send('226 done\r\n221 bye\r\nunfinished');
    server.push(null);
    assert.equal(await until(() => seen.ends.length === 1), true);
    assert.deepEqual(seen.lines.map((entry) => entry.line), ['226 done', '221 bye']);
    await until(() => false, 20);
    assert.deepEqual(seen.ends, ['server']);
  });

  it('a handler that throws is reported, not left as an unhandled rejection', async () => {
    const client = new Peer();
    const server = new Peer();
    const { handlers, seen } = recorder(() => {
      throw new Error('bug');
    });
    const flow = new ControlFlow(client, 4096, handlers);
    flow.attachServer(server);
    client.send('NOOP\r\n');
    assert.equal(await until(() => seen.failures.length === 1), true);
    assert.match(String(seen.failures[0]), /bug/);
  });
});
