import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ControlState, REPLY_LIMITS, type ActiveStrategy, type Step } from '../../src/ftp/controlState.js';

/**
 * The control channel driven with random commands and random, malformed,
 * split and multi-line replies. Whatever the server says, the invariants
 * of the forwarder hold:
 * - no line to the client names the server's data address (10.99.88.77) or
 *   one of its data ports (50000-50999, as EPSV would name them);
 * - what the client receives parses as RFC 959 replies: a multi-line reply
 *   is never interrupted, and its last line carries its first line's code;
 * - no exception escapes, and nothing the state holds grows past its bounds.
 */

const SERVER = '10,99,88,77';
const serverPort = fc.integer({ min: 50_000, max: 50_999 });
const sixNumbers = serverPort.map((port) => `${SERVER},${port >> 8},${port & 0xff}`);
const epsvPort = fc.tuple(fc.constantFrom('|', '!', '#'), serverPort).map(([d, port]) => `${d}${d}${d}${port}${d}`);
/** Text that may carry the server's address in either form, among other text. */
const replyText = fc.oneof(
  fc.constant('OK'),
  sixNumbers.map((six) => `Entering Passive Mode (${six})`),
  epsvPort.map((epsv) => `Entering Extended Passive Mode (${epsv})`),
  fc.tuple(sixNumbers, epsvPort).map(([six, epsv]) => `both ${six} ${epsv}`),
  fc.string({ maxLength: 20 }).map((junk) => junk.replace(/[\r\n]/g, ' ')),
);
const code = fc.constantFrom(150, 200, 211, 214, 220, 221, 226, 227, 229, 230, 250, 331, 350, 425, 426, 500, 530, 550, 226);

/** One server reply: a single line, or a multi-line one (split into several events). */
const serverReply = fc.oneof(
  fc.tuple(code, replyText).map(([c, t]) => [`${c} ${t}`]),
  fc.tuple(code, fc.array(replyText, { minLength: 1, maxLength: 4 }), replyText).map(([c, middle, last]) => [`${c}-${middle[0]}`, ...middle.slice(1).map((t) => ` ${t}`), `${c} ${last}`]),
  replyText.map((t) => [t]),
);

const clientCommand = fc.constantFrom(
  'PASV',
  'EPSV',
  'PORT 127,0,0,1,195,80',
  'EPRT |1|127.0.0.1|50000|',
  'PORT 10,99,88,77,195,80',
  'RETR f',
  'LIST',
  'NOOP',
  'ABOR',
  'TYPE I',
  'AUTH TLS',
  'REIN',
  'LPSV',
  '',
  'XYZZY',
);

/**
 * `server` queues a reply's lines; `lines` delivers the next few queued
 * lines, so that client commands and outcomes fall between the lines of a
 * multi-line reply as they can on a real connection.
 */
type FuzzEvent = { client: string } | { server: string[] } | { lines: number } | { outcome: boolean; port: number };

const fuzzEvent: fc.Arbitrary<FuzzEvent> = fc.oneof(
  { weight: 3, arbitrary: clientCommand.map((client) => ({ client })) },
  { weight: 2, arbitrary: serverReply.map((server) => ({ server })) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }).map((lines) => ({ lines })) },
  { weight: 1, arbitrary: fc.tuple(fc.boolean(), fc.integer({ min: 40_000, max: 40_999 })).map(([outcome, port]) => ({ outcome, port })) },
);

/** What the client has seen, checked line by line as RFC 959 replies. */
class ClientView {
  private openCode: string | null = null;
  readonly lines: string[] = [];

  /** `fromServer`: the step handled a server line; any other step must not land inside a multi-line reply. */
  take(step: Step, fromServer: boolean): void {
    if (!fromServer && step.toClient.length > 0) {
      assert.equal(this.openCode, null, `a reply of ours was sent between the lines of a ${String(this.openCode)} reply: ${step.toClient.join('|')}`);
    }
    for (const buffer of step.toClient) {
      const line = buffer.toString('latin1');
      assert.ok(line.endsWith('\r\n'), `a line without CRLF: ${JSON.stringify(line)}`);
      const body = line.slice(0, -2);
      assert.doesNotMatch(body, /[\r\n]/);
      assert.ok(!body.includes(SERVER), `the server's address reached the client: ${body}`);
      assert.doesNotMatch(body, /([!-/:-~])\1\1(50\d\d\d)\1/, `a server data port reached the client: ${body}`);
      this.lines.push(body);
      const match = /^(\d{3})([ -])/.exec(body);
      if (this.openCode !== null) {
        if (match && match[1] === this.openCode && match[2] === ' ') this.openCode = null;
        continue;
      }
      if (match && match[2] === '-') this.openCode = match[1]!;
    }
  }
}

function drive(strategy: ActiveStrategy, events: FuzzEvent[]): void {
  const state = new ControlState({ clientAddress: '127.0.0.1', activeStrategy: strategy, minimumActivePort: 1024 });
  const view = new ClientView();
  let awaiting: 'passive' | 'active' | null = null;
  let commands = 0;
  const serverLines: string[] = [];
  const settle = (step: Step, fromServer = false): void => {
    view.take(step, fromServer);
    if (step.action?.kind === 'open-passive') awaiting = 'passive';
    else if (step.action?.kind === 'open-active-forward') awaiting = 'active';
  };
  for (const event of events) {
    if ('outcome' in event) {
      if (awaiting === 'passive') settle(event.outcome ? state.passiveListenerReady('127.0.0.1', event.port) : state.passiveListenerFailed());
      else if (awaiting === 'active') settle(event.outcome ? state.activeForwardReady('127.0.0.1', event.port) : state.activeForwardFailed());
      awaiting = null;
      continue;
    }
    // The session reports an outcome before it passes the next line of the
    // side that asked for it; the fuzzer keeps that contract for both sides.
    if (awaiting !== null) continue;
    if ('client' in event) {
      commands += 1;
      settle(state.onClientLine(Buffer.from(event.client, 'latin1')));
    } else if ('server' in event) {
      serverLines.push(...event.server);
    } else {
      for (let count = 0; count < event.lines && awaiting === null; count += 1) {
        const line = serverLines.shift();
        if (line === undefined) break;
        settle(state.onServerLine(Buffer.from(line, 'latin1')), true);
      }
    }
    assert.ok(state.pendingCount <= commands + 1, `pending (${state.pendingCount}) grew past the commands sent (${commands})`);
  }
}

describe('ControlState under random traffic', () => {
  for (const strategy of ['forward', 'convert'] as const) {
    it(`never leaks a server data address and keeps replies well-formed (${strategy})`, () => {
      fc.assert(
        fc.property(fc.array(fuzzEvent, { maxLength: 80 }), (events) => drive(strategy, events)),
        { numRuns: Number(process.env["FTPFWD_FUZZ_RUNS"] ?? 1500) },
      );
    });
  }

  it('the bounds it relies on are finite', () => {
    assert.ok(REPLY_LIMITS.heldLines > 0 && REPLY_LIMITS.heldLines < 1000);
    assert.ok(REPLY_LIMITS.lines < 1_000_000 && REPLY_LIMITS.bytes < 64 * 1024 * 1024);
  });
});
