import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeAddress, sameAddress } from '../../src/net/addresses.js';
import {
  ControlState,
  LOCAL_REPLIES,
  REPLY_LIMITS,
  type Action,
  type ControlPolicy,
  type Step,
} from '../../src/ftp/controlState.js';

/** One thing that happens to the state machine: a line from either side, or the outcome of an action. */
type Event =
  | { client: string }
  | { server: string }
  | { passiveReady: { host: string; port: number } }
  | { passiveFailed: true }
  | { activeReady: { host: string; port: number } }
  | { activeFailed: true };

/** What one event produced, as text (latin1) with the CRLF of every line. */
interface Out {
  toServer: string[];
  toClient: string[];
  action: Action | null;
  pending?: number;
}

const CRLF = '\r\n';
const text = (buffers: Buffer[]): string[] => buffers.map((buffer) => buffer.toString('latin1'));
const bytes = (line: string): Buffer => Buffer.from(line, 'latin1');

function out(expected: { up?: string[]; down?: string[]; action?: Action; pending?: number }): Out {
  return {
    toServer: (expected.up ?? []).map((line) => line + CRLF),
    toClient: (expected.down ?? []).map((line) => line + CRLF),
    action: expected.action ?? null,
    ...(expected.pending === undefined ? {} : { pending: expected.pending }),
  };
}
const nothing = out({});
const up = (...lines: string[]): Out => out({ up: lines });
/** PASV/EPSV (or a converted PORT/EPRT) go upstream and void any earlier unused data set-up. */
const RELEASE: Action = { kind: 'release-data' };
const upPassive = (line: string): Out => out({ up: [line], action: RELEASE });
const down = (...lines: string[]): Out => out({ down: lines });

function apply(state: ControlState, event: Event): Step {
  if ('client' in event) return state.onClientLine(bytes(event.client));
  if ('server' in event) return state.onServerLine(bytes(event.server));
  if ('passiveReady' in event) return state.passiveListenerReady(event.passiveReady.host, event.passiveReady.port);
  if ('passiveFailed' in event) return state.passiveListenerFailed();
  if ('activeReady' in event) return state.activeForwardReady(event.activeReady.host, event.activeReady.port);
  return state.activeForwardFailed();
}

const POLICY: ControlPolicy = { clientAddress: '127.0.0.1', activeStrategy: 'forward', minimumActivePort: 1024 };
const GREETING = '220 Welcome';

interface Case {
  title: string;
  input: { events: Event[]; policy?: Partial<ControlPolicy>; /** Feed `220 Welcome` first (default). */ greet?: boolean };
  expected: Out[];
}

/**
 * Runs the events through a fresh ControlState and returns what each
 * produced. `pending` is recorded only where the expectation asks for it.
 */
function run(input: Case['input'], expected: Out[]): Out[] {
  const state = new ControlState({ ...POLICY, ...input.policy });
  if (input.greet !== false) {
    const step = apply(state, { server: GREETING });
    assert.deepEqual(text(step.toClient), [GREETING + CRLF], 'greeting');
    assert.equal(state.pendingCount, 0, 'greeting answered');
  }
  return input.events.map((event, index) => {
    const step = apply(state, event);
    const observed: Out = { toServer: text(step.toServer), toClient: text(step.toClient), action: step.action ?? null };
    if (expected[index]?.pending !== undefined) observed.pending = state.pendingCount;
    return observed;
  });
}

function table(cases: Case[]): void {
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.equal(input.events.length, expected.length, 'one expectation per event');
      assert.deepEqual(run(input, expected), expected);
    });
  }
}

// A server at 10.0.0.5:50000 (195 * 256 + 80), rewritten to a local listener at 127.0.0.1:40000 (156 * 256 + 64).
const PASV_REPLY = '227 Entering Passive Mode (10,0,0,5,195,80).';
const PASV_REWRITTEN = '227 Entering Passive Mode (127,0,0,1,156,64).';
const PASV_BLANKED = '227 Entering Passive Mode (0,0,0,0,0,0).';
const EPSV_REPLY = '229 Entering Extended Passive Mode (|||6446|)';
const EPSV_REWRITTEN = '229 Entering Extended Passive Mode (|||40000|)';
const LISTENER = { host: '127.0.0.1', port: 40000 };
const openPasv: Action = { kind: 'open-passive', verb: 'PASV', serverHost: '10.0.0.5', serverPort: 50000 };
const openEpsv: Action = { kind: 'open-passive', verb: 'EPSV', serverHost: null, serverPort: 6446 };

const AUTH_REFUSED = LOCAL_REPLIES.authRefused;
const LONG_REFUSED = LOCAL_REPLIES.longAddressRefused;
const BOUNCE = LOCAL_REPLIES.bounce;
const SYNTAX = LOCAL_REPLIES.syntax;
const BAD_CHARACTER = LOCAL_REPLIES.badCharacter;

describe('LOCAL_REPLIES carry the codes clients expect', () => {
  const cases: Array<{ title: string; input: string; expected: string }> = [
    { title: 'syntax error', input: LOCAL_REPLIES.syntax, expected: '500' },
    { title: 'NUL or CR', input: LOCAL_REPLIES.badCharacter, expected: '500' },
    { title: 'AUTH refused', input: LOCAL_REPLIES.authRefused, expected: '534' },
    { title: 'LPRT/LPSV refused', input: LOCAL_REPLIES.longAddressRefused, expected: '502' },
    { title: 'bad argument', input: LOCAL_REPLIES.badArgument('x'), expected: '501' },
    { title: 'bounce', input: LOCAL_REPLIES.bounce, expected: '501' },
    { title: 'privileged port', input: LOCAL_REPLIES.privilegedPort(1024), expected: '501' },
    { title: 'active setup failed', input: LOCAL_REPLIES.activeSetupFailed, expected: '425' },
    { title: 'passive setup failed', input: LOCAL_REPLIES.passiveSetupFailed, expected: '425' },
    { title: 'unusable passive reply', input: LOCAL_REPLIES.badPassiveReply, expected: '425' },
    { title: 'converted PORT', input: LOCAL_REPLIES.converted('PORT'), expected: '200' },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.match(input, /^\d{3} \S/);
      assert.equal(input.slice(0, 3), expected);
      assert.doesNotMatch(input, /[\r\n\0]/);
    });
  }
});

describe('ControlState: greeting', () => {
  table([
    {
      title: 'the greeting passes through',
      input: { greet: false, events: [{ server: '220 ProFTPD Server ready.' }] },
      expected: [out({ down: ['220 ProFTPD Server ready.'], pending: 0 })],
    },
    {
      title: 'a multi-line greeting passes through line by line',
      input: { greet: false, events: [{ server: '220-Welcome' }, { server: '220-  to the server' }, { server: '220 Ready' }] },
      expected: [out({ down: ['220-Welcome'], pending: 1 }), down('220-  to the server'), out({ down: ['220 Ready'], pending: 0 })],
    },
    {
      title: 'a 120 before the 220 does not answer the greeting',
      input: { greet: false, events: [{ server: '120 Service ready in 1 minute' }, { server: '220 Ready' }] },
      expected: [out({ down: ['120 Service ready in 1 minute'], pending: 1 }), out({ down: ['220 Ready'], pending: 0 })],
    },
    {
      title: 'a command sent before the greeting is answered after it',
      input: { greet: false, events: [{ client: 'USER anonymous' }, { server: '220 Ready' }, { server: '331 Password please' }] },
      expected: [out({ up: ['USER anonymous'], pending: 2 }), out({ down: ['220 Ready'], pending: 1 }), out({ down: ['331 Password please'], pending: 0 })],
    },
    {
      title: 'a local reply to a command sent before the greeting waits for the greeting',
      input: { greet: false, events: [{ client: 'AUTH TLS' }, { server: '220 Ready' }] },
      expected: [out({ pending: 2 }), down('220 Ready', AUTH_REFUSED)],
    },
    {
      title: 'a 421 greeting closes the session',
      input: { greet: false, events: [{ server: '421 Too many connections' }] },
      expected: [out({ down: ['421 Too many connections'], action: { kind: 'close-session', reason: 'FTP server sent 421' } })],
    },
  ]);

  it('starts with the greeting pending', () => {
    assert.equal(new ControlState(POLICY).pendingCount, 1);
  });
});

describe('ControlState: ordinary commands', () => {
  table([
    { title: 'a command passes through', input: { events: [{ client: 'USER anonymous' }] }, expected: [up('USER anonymous')] },
    { title: 'lower case is kept', input: { events: [{ client: 'retr file.txt' }] }, expected: [up('retr file.txt')] },
    { title: 'odd spacing is kept', input: { events: [{ client: 'RETR   my  file.txt ' }] }, expected: [up('RETR   my  file.txt ')] },
    { title: 'mixed case verb is kept', input: { events: [{ client: 'Type I' }] }, expected: [up('Type I')] },
    { title: 'a doubled IAC in a path is kept', input: { events: [{ client: 'RETR a\xff\xffb' }] }, expected: [up('RETR a\xff\xffb')] },
    { title: 'latin1 bytes are kept', input: { events: [{ client: 'STOR caf\xe9.txt' }] }, expected: [up('STOR caf\xe9.txt')] },
    { title: 'an unknown but well-formed verb passes through', input: { events: [{ client: 'XYZZ 1' }] }, expected: [up('XYZZ 1')] },
    { title: 'EPSV ALL passes through', input: { events: [{ client: 'EPSV ALL' }, { server: '200 EPSV ALL ok.' }] }, expected: [upPassive('EPSV ALL'), down('200 EPSV ALL ok.')] },
    { title: 'lower-case epsv all passes through', input: { events: [{ client: 'epsv all' }, { server: '200 OK' }] }, expected: [upPassive('epsv all'), down('200 OK')] },
    {
      title: 'ABOR behind IAC IP IAC DM goes upstream as plain ABOR',
      input: { events: [{ client: '\xff\xf4\xff\xf2ABOR' }, { server: '226 Abort successful' }] },
      expected: [up('ABOR'), down('226 Abort successful')],
    },
    {
      title: 'ABOR behind IAC IP DM (the IAC was urgent data) goes upstream as plain ABOR',
      input: { events: [{ client: '\xff\xf4\xf2ABOR' }] },
      expected: [up('ABOR')],
    },
    {
      title: 'ABOR behind IAC IP IAC (the DM was urgent data) goes upstream as plain ABOR',
      input: { events: [{ client: '\xff\xf4\xffABOR' }] },
      expected: [up('ABOR')],
    },
    {
      title: 'a reply nobody asked for is forwarded',
      input: { events: [{ server: '200 Unsolicited' }] },
      expected: [out({ down: ['200 Unsolicited'], pending: 0 })],
    },
    {
      title: 'garbage from the server is forwarded',
      input: { events: [{ server: 'not a reply' }] },
      expected: [down('not a reply')],
    },
  ]);

  it('forwards the exact bytes of the line plus CRLF', () => {
    const state = new ControlState(POLICY);
    state.onServerLine(bytes(GREETING));
    const line = Buffer.from([0x53, 0x54, 0x4f, 0x52, 0x20, 0x20, 0xff, 0xff, 0x80, 0x20, 0x41]);
    const step = state.onClientLine(line);
    assert.deepEqual(step.toServer, [Buffer.concat([line, Buffer.from(CRLF)])]);
    assert.deepEqual(step.toClient, []);
  });
});

describe('ControlState: refused client lines', () => {
  table([
    { title: 'AUTH TLS is refused with 534', input: { events: [{ client: 'AUTH TLS' }] }, expected: [down(AUTH_REFUSED)] },
    { title: 'AUTH SSL is refused with 534', input: { events: [{ client: 'AUTH SSL' }] }, expected: [down(AUTH_REFUSED)] },
    { title: 'lower-case auth tls is refused', input: { events: [{ client: 'auth tls' }] }, expected: [down(AUTH_REFUSED)] },
    { title: 'LPRT is refused with 502', input: { events: [{ client: 'LPRT 4,4,127,0,0,1,2,4,51' }] }, expected: [down(LONG_REFUSED)] },
    { title: 'LPSV is refused with 502', input: { events: [{ client: 'LPSV' }] }, expected: [down(LONG_REFUSED)] },
    { title: 'lower-case lpsv is refused', input: { events: [{ client: 'lpsv' }] }, expected: [down(LONG_REFUSED)] },
    { title: 'an empty line gets 500', input: { events: [{ client: '' }] }, expected: [down(SYNTAX)] },
    { title: 'a bad verb gets 500', input: { events: [{ client: 'ABORT' }] }, expected: [down(SYNTAX)] },
    { title: 'Telnet option negotiation is not relayed', input: { events: [{ client: '\xff\xfb\x01' }] }, expected: [down(SYNTAX)] },
    { title: 'a NUL byte gets 500 and is not relayed', input: { events: [{ client: 'RETR a\0b' }] }, expected: [down(BAD_CHARACTER)] },
    { title: 'a lone CR gets 500 and is not relayed', input: { events: [{ client: 'RETR a\rDELE b' }] }, expected: [down(BAD_CHARACTER)] },
    {
      title: 'a bad PORT gets 501',
      input: { events: [{ client: 'PORT 127,0,0,1,4' }] },
      expected: [down(LOCAL_REPLIES.badArgument('PORT takes h1,h2,h3,h4,p1,p2'))],
    },
    {
      title: 'a PORT with a number above 255 gets 501',
      input: { events: [{ client: 'PORT 127,0,0,1,256,22' }] },
      expected: [down(LOCAL_REPLIES.badArgument('a number is above 255'))],
    },
    {
      title: 'a bad EPRT gets 501',
      input: { events: [{ client: 'EPRT |3|127.0.0.1|50000|' }] },
      expected: [down(LOCAL_REPLIES.badArgument('unsupported address family 3'))],
    },
    { title: 'PORT to a foreign address is the bounce attack: 501', input: { events: [{ client: 'PORT 10,0,0,9,195,80' }] }, expected: [down(BOUNCE)] },
    { title: 'EPRT to a foreign address is refused', input: { events: [{ client: 'EPRT |1|192.0.2.1|50000|' }] }, expected: [down(BOUNCE)] },
    { title: 'EPRT to a foreign IPv6 address is refused', input: { events: [{ client: 'EPRT |2|2001:db8::1|50000|' }] }, expected: [down(BOUNCE)] },
    { title: 'PORT to the server itself is refused', input: { events: [{ client: 'PORT 10,0,0,5,0,21' }] }, expected: [down(BOUNCE)] },
    {
      title: 'PORT to port 1023 is refused',
      input: { events: [{ client: 'PORT 127,0,0,1,3,255' }] },
      expected: [down(LOCAL_REPLIES.privilegedPort(1024))],
    },
    {
      title: 'PORT to port 21 is refused',
      input: { events: [{ client: 'PORT 127,0,0,1,0,21' }] },
      expected: [down(LOCAL_REPLIES.privilegedPort(1024))],
    },
    {
      title: 'EPRT to port 22 is refused',
      input: { events: [{ client: 'EPRT |1|127.0.0.1|22|' }] },
      expected: [down(LOCAL_REPLIES.privilegedPort(1024))],
    },
    {
      title: 'the bounce check comes before the port check',
      input: { events: [{ client: 'PORT 10,0,0,9,0,22' }] },
      expected: [down(BOUNCE)],
    },
    {
      title: 'refused lines are not pending',
      input: { events: [{ client: 'AUTH TLS' }, { client: 'PORT 10,0,0,9,195,80' }, { client: 'LPSV' }] },
      expected: [out({ down: [AUTH_REFUSED], pending: 0 }), out({ down: [BOUNCE], pending: 0 }), out({ down: [LONG_REFUSED], pending: 0 })],
    },
  ]);
});

describe('ControlState: passive mode', () => {
  table([
    {
      title: 'PASV: the 227 becomes an open-passive action, then the rewritten reply',
      input: { events: [{ client: 'PASV' }, { server: PASV_REPLY }, { passiveReady: LISTENER }] },
      expected: [upPassive('PASV'), out({ action: openPasv }), down(PASV_REWRITTEN)],
    },
    {
      title: 'lower-case pasv is recognised',
      input: { events: [{ client: 'pasv' }, { server: PASV_REPLY }, { passiveReady: LISTENER }] },
      expected: [upPassive('pasv'), out({ action: openPasv }), down(PASV_REWRITTEN)],
    },
    {
      title: 'the rewrite only touches the numbers',
      input: {
        events: [{ client: 'PASV' }, { server: '227 Data transfer will passively listen to 10,0,0,5,195,80' }, { passiveReady: { host: '192.168.7.1', port: 1075 } }],
      },
      expected: [upPassive('PASV'), out({ action: openPasv }), down('227 Data transfer will passively listen to 192,168,7,1,4,51')],
    },
    {
      title: 'the `=` form',
      input: { events: [{ client: 'PASV' }, { server: '227 =10,0,0,5,195,80' }, { passiveReady: LISTENER }] },
      expected: [upPassive('PASV'), out({ action: openPasv }), down('227 =127,0,0,1,156,64')],
    },
    {
      title: 'the address 0,0,0,0 is reported as it is, the session decides',
      input: { events: [{ client: 'PASV' }, { server: '227 Entering Passive Mode (0,0,0,0,195,80)' }, { passiveReady: LISTENER }] },
      expected: [upPassive('PASV'), out({ action: { ...openPasv, serverHost: '0.0.0.0' } }), down('227 Entering Passive Mode (127,0,0,1,156,64)')],
    },
    {
      title: 'EPSV: the 229 becomes an open-passive action, then the rewritten reply',
      input: { events: [{ client: 'EPSV' }, { server: EPSV_REPLY }, { passiveReady: LISTENER }] },
      expected: [upPassive('EPSV'), out({ action: openEpsv }), down(EPSV_REWRITTEN)],
    },
    {
      title: 'EPSV with a `!` delimiter keeps it',
      input: { events: [{ client: 'EPSV' }, { server: '229 Entering Extended Passive Mode (!!!6446!)' }, { passiveReady: LISTENER }] },
      expected: [upPassive('EPSV'), out({ action: openEpsv }), down('229 Entering Extended Passive Mode (!!!40000!)')],
    },
    {
      title: 'EPSV with a protocol argument',
      input: { events: [{ client: 'EPSV 1' }, { server: EPSV_REPLY }, { passiveReady: LISTENER }] },
      expected: [upPassive('EPSV 1'), out({ action: openEpsv }), down(EPSV_REWRITTEN)],
    },
    {
      title: 'a listener that cannot be opened gives 425',
      input: { events: [{ client: 'PASV' }, { server: PASV_REPLY }, { passiveFailed: true }] },
      expected: [upPassive('PASV'), out({ action: openPasv }), out({ down: [LOCAL_REPLIES.passiveSetupFailed], pending: 0 })],
    },
    {
      title: 'a 227 with a number above 255 is not folded into port 22: 425, no action',
      input: { events: [{ client: 'PASV' }, { server: '227 Entering Passive Mode (10,0,0,5,256,22)' }] },
      expected: [upPassive('PASV'), out({ down: [LOCAL_REPLIES.badPassiveReply], pending: 0 })],
    },
    {
      title: 'a 227 with seven numbers gives 425, no action',
      input: { events: [{ client: 'PASV' }, { server: '227 Entering Passive Mode (10,0,0,5,195,80,1)' }] },
      expected: [upPassive('PASV'), out({ down: [LOCAL_REPLIES.badPassiveReply], pending: 0 })],
    },
    {
      title: 'a 229 with port 65536 gives 425, no action',
      input: { events: [{ client: 'EPSV' }, { server: '229 Entering Extended Passive Mode (|||65536|)' }] },
      expected: [upPassive('EPSV'), out({ down: [LOCAL_REPLIES.badPassiveReply], pending: 0 })],
    },
    {
      title: 'a refusal of PASV is forwarded unchanged',
      input: { events: [{ client: 'PASV' }, { server: '502 PASV not allowed' }] },
      expected: [upPassive('PASV'), out({ down: ['502 PASV not allowed'], pending: 0 })],
    },
    {
      title: 'a 227 that nobody asked for is dropped, never passed on',
      input: { events: [{ server: PASV_REPLY }] },
      expected: [out({ down: [], pending: 0 })],
    },
    {
      title: 'a 227 while only NOOP awaits its reply is dropped, and the NOOP still gets its own',
      input: { events: [{ client: 'NOOP' }, { server: PASV_REPLY }, { server: '200 NOOP ok' }] },
      expected: [up('NOOP'), out({ down: [], pending: 1 }), out({ down: ['200 NOOP ok'], pending: 0 })],
    },
    {
      title: 'a 229 answering PASV gives 425, never the server port',
      input: { events: [{ client: 'PASV' }, { server: EPSV_REPLY }] },
      expected: [upPassive('PASV'), out({ down: [LOCAL_REPLIES.wrongPassiveReply('PASV')], pending: 0 })],
    },
    {
      title: 'a 227 answering EPSV gives 425, never the server address',
      input: { events: [{ client: 'EPSV' }, { server: PASV_REPLY }] },
      expected: [upPassive('EPSV'), out({ down: [LOCAL_REPLIES.wrongPassiveReply('EPSV')], pending: 0 })],
    },
    {
      title: 'a 227 line inside another multi-line reply is text, with its address blanked',
      input: { events: [{ client: 'STAT' }, { server: '211-Status' }, { server: PASV_REPLY }, { server: '211 End' }] },
      expected: [up('STAT'), down('211-Status'), down(PASV_BLANKED), out({ down: ['211 End'], pending: 0 })],
    },
    {
      title: 'a multi-line non-227 reply to PASV is held whole, then passed on with its address blanked',
      input: { events: [{ client: 'PASV' }, { server: '211-Odd' }, { server: PASV_REPLY }, { server: '211 End' }] },
      expected: [upPassive('PASV'), nothing, nothing, out({ down: ['211-Odd', PASV_BLANKED, '211 End'], pending: 0 })],
    },
    {
      title: 'a 227 echoed in an error text is not a passive reply, and its address is blanked',
      input: { events: [{ client: 'PASV' }, { server: '550 227 Entering Passive Mode (10,0,0,5,0,22)' }] },
      expected: [upPassive('PASV'), out({ down: ['550 227 Entering Passive Mode (0,0,0,0,0,0)'], pending: 0 })],
    },
    {
      title: "a 227 echoed from the client's own command is not a passive reply, and its address is blanked",
      input: { events: [{ client: 'SITE 227 Entering Passive Mode (10,0,0,5,0,22)' }, { server: '500 \'SITE 227 Entering Passive Mode (10,0,0,5,0,22)\': command not understood' }] },
      expected: [
        up('SITE 227 Entering Passive Mode (10,0,0,5,0,22)'),
        down('500 \'SITE 227 Entering Passive Mode (0,0,0,0,0,0)\': command not understood'),
      ],
    },
    {
      title: 'a second PASV in the same session is rewritten as well',
      input: {
        events: [
          { client: 'PASV' },
          { server: PASV_REPLY },
          { passiveReady: LISTENER },
          { client: 'PASV' },
          { server: '227 Entering Passive Mode (10,0,0,5,195,81).' },
          { passiveReady: { host: '127.0.0.1', port: 40001 } },
        ],
      },
      expected: [
        upPassive('PASV'),
        out({ action: openPasv }),
        down(PASV_REWRITTEN),
        upPassive('PASV'),
        out({ action: { ...openPasv, serverPort: 50001 } }),
        down('227 Entering Passive Mode (127,0,0,1,156,65).'),
      ],
    },
  ]);

  it('passiveListenerReady without a pending passive reply is a programming error', () => {
    const state = new ControlState(POLICY);
    assert.throws(() => state.passiveListenerReady('127.0.0.1', 40000), /no passive listener/);
    assert.throws(() => state.passiveListenerFailed(), /no passive listener/);
  });
});

describe('ControlState: pipelining and local replies in order', () => {
  table([
    {
      title: 'PASV, NOOP, EPSV sent before any reply are answered in order',
      input: {
        events: [
          { client: 'PASV' },
          { client: 'NOOP' },
          { client: 'EPSV' },
          { server: PASV_REPLY },
          { passiveReady: LISTENER },
          { server: '200 NOOP ok' },
          { server: EPSV_REPLY },
          { passiveReady: { host: '127.0.0.1', port: 40001 } },
        ],
      },
      expected: [
        out({ up: ['PASV'], action: RELEASE, pending: 1 }),
        out({ up: ['NOOP'], pending: 2 }),
        out({ up: ['EPSV'], action: RELEASE, pending: 3 }),
        out({ action: openPasv, pending: 3 }),
        out({ down: [PASV_REWRITTEN], pending: 2 }),
        out({ down: ['200 NOOP ok'], pending: 1 }),
        out({ action: openEpsv, pending: 1 }),
        out({ down: ['229 Entering Extended Passive Mode (|||40001|)'], pending: 0 }),
      ],
    },
    {
      title: 'a 227 while NOOP, PASV are pipelined answers the PASV (the NOOP got none); a second 227 is dropped',
      input: { events: [{ client: 'NOOP' }, { client: 'PASV' }, { server: PASV_REPLY }, { passiveReady: LISTENER }, { server: PASV_REPLY }] },
      expected: [up('NOOP'), upPassive('PASV'), out({ action: openPasv, pending: 1 }), out({ down: [PASV_REWRITTEN], pending: 0 }), nothing],
    },
    {
      title: 'AUTH TLS sent after PASV, before the 227: the 534 comes after the rewritten 227',
      input: { events: [{ client: 'PASV' }, { client: 'AUTH TLS' }, { server: PASV_REPLY }, { passiveReady: LISTENER }] },
      expected: [upPassive('PASV'), out({ pending: 2 }), out({ action: openPasv }), out({ down: [PASV_REWRITTEN, AUTH_REFUSED], pending: 0 })],
    },
    {
      title: 'AUTH TLS sent while the passive listener opens: the 534 still comes after the rewritten 227',
      input: { events: [{ client: 'PASV' }, { server: PASV_REPLY }, { client: 'AUTH TLS' }, { passiveReady: LISTENER }] },
      expected: [upPassive('PASV'), out({ action: openPasv }), nothing, down(PASV_REWRITTEN, AUTH_REFUSED)],
    },
    {
      title: 'a local reply waits behind a failed passive listener too',
      input: { events: [{ client: 'PASV' }, { client: 'LPSV' }, { server: PASV_REPLY }, { passiveFailed: true }] },
      expected: [upPassive('PASV'), nothing, out({ action: openPasv }), down(LOCAL_REPLIES.passiveSetupFailed, LONG_REFUSED)],
    },
    {
      title: 'local replies are released behind an unusable 227',
      input: { events: [{ client: 'PASV' }, { client: 'AUTH TLS' }, { server: '227 Entering Passive Mode (1,2,3)' }] },
      expected: [upPassive('PASV'), nothing, down(LOCAL_REPLIES.badPassiveReply, AUTH_REFUSED)],
    },
    {
      title: 'NOOP, LPSV, NOOP: the 502 sits between the two 200s',
      input: { events: [{ client: 'NOOP' }, { client: 'LPSV' }, { client: 'NOOP' }, { server: '200 one' }, { server: '200 two' }] },
      expected: [up('NOOP'), nothing, up('NOOP'), down('200 one', LONG_REFUSED), down('200 two')],
    },
    {
      title: 'several local replies in a row are released together, in order',
      input: {
        events: [{ client: 'NOOP' }, { client: 'AUTH TLS' }, { client: 'LPRT 4,4,127,0,0,1,2,4,51' }, { client: 'PORT 10,0,0,9,195,80' }, { server: '200 ok' }],
      },
      expected: [up('NOOP'), nothing, nothing, nothing, out({ down: ['200 ok', AUTH_REFUSED, LONG_REFUSED, BOUNCE], pending: 0 })],
    },
    {
      title: 'a bad PORT behind a pending command waits for its reply',
      input: { events: [{ client: 'CWD /pub' }, { client: 'PORT 127,0,0,1,4' }, { server: '250 ok' }] },
      expected: [up('CWD /pub'), nothing, down('250 ok', LOCAL_REPLIES.badArgument('PORT takes h1,h2,h3,h4,p1,p2'))],
    },
    {
      title: 'a local reply waits for a multi-line reply to end, not for its first line',
      input: { events: [{ client: 'FEAT' }, { client: 'AUTH TLS' }, { server: '211-Features:' }, { server: ' EPSV' }, { server: '211 End' }] },
      expected: [up('FEAT'), nothing, down('211-Features:'), down(' EPSV'), down('211 End', AUTH_REFUSED)],
    },
    {
      title: 'a local reply waits behind a 150 until the 226',
      input: { events: [{ client: 'RETR f' }, { client: 'AUTH TLS' }, { server: '150 Opening' }, { server: '226 Done' }] },
      expected: [up('RETR f'), nothing, down('150 Opening'), down('226 Done', AUTH_REFUSED)],
    },
    {
      title: 'a refused line behind pending commands waits too (NUL)',
      input: { events: [{ client: 'NOOP' }, { client: 'RETR a\0b' }, { server: '200 ok' }] },
      expected: [up('NOOP'), nothing, down('200 ok', BAD_CHARACTER)],
    },
  ]);
});

describe('ControlState: preliminary replies', () => {
  table([
    {
      title: '150 then 226 for RETR: only the 226 answers it',
      input: { events: [{ client: 'RETR file' }, { server: '150 Opening BINARY mode data connection' }, { server: '226 Transfer complete' }] },
      expected: [out({ up: ['RETR file'], pending: 1 }), out({ down: ['150 Opening BINARY mode data connection'], pending: 1 }), out({ down: ['226 Transfer complete'], pending: 0 })],
    },
    {
      title: '125 then 226 for a pipelined RETR, PASV: the 227 still reaches the PASV',
      input: {
        events: [{ client: 'RETR file' }, { client: 'PASV' }, { server: '125 Data connection already open' }, { server: '226 Done' }, { server: PASV_REPLY }, { passiveReady: LISTENER }],
      },
      expected: [up('RETR file'), upPassive('PASV'), down('125 Data connection already open'), out({ down: ['226 Done'], pending: 1 }), out({ action: openPasv }), down(PASV_REWRITTEN)],
    },
    {
      title: 'a 150 while PASV is pending is forwarded and does not consume it',
      input: { events: [{ client: 'PASV' }, { server: '150 odd' }, { server: PASV_REPLY }, { passiveReady: LISTENER }] },
      expected: [upPassive('PASV'), out({ down: ['150 odd'], pending: 1 }), out({ action: openPasv }), down(PASV_REWRITTEN)],
    },
    {
      title: 'a multi-line 150 does not consume the command',
      input: { events: [{ client: 'RETR f' }, { server: '150-Opening' }, { server: '150 data connection' }, { server: '226 Done' }] },
      expected: [up('RETR f'), down('150-Opening'), out({ down: ['150 data connection'], pending: 1 }), out({ down: ['226 Done'], pending: 0 })],
    },
  ]);
});

describe('ControlState: active mode, forward strategy', () => {
  const target = { family: 4 as const, host: '127.0.0.1', port: 50000 };
  table([
    {
      title: 'PORT: an open-active-forward action, then PORT to the forward upstream',
      input: { events: [{ client: 'PORT 127,0,0,1,195,80' }, { activeReady: LISTENER }, { server: '200 PORT command successful' }] },
      expected: [
        out({ action: { kind: 'open-active-forward', verb: 'PORT', target }, pending: 0 }),
        out({ up: ['PORT 127,0,0,1,156,64'], pending: 1 }),
        out({ down: ['200 PORT command successful'], pending: 0 }),
      ],
    },
    {
      title: 'lower-case port with extra spaces',
      input: { events: [{ client: 'port   127,0,0,1,195,80' }, { activeReady: LISTENER }] },
      expected: [out({ action: { kind: 'open-active-forward', verb: 'PORT', target } }), up('PORT 127,0,0,1,156,64')],
    },
    {
      title: 'PORT to port 1024 is allowed',
      input: { events: [{ client: 'PORT 127,0,0,1,4,0' }] },
      expected: [out({ action: { kind: 'open-active-forward', verb: 'PORT', target: { ...target, port: 1024 } } })],
    },
    {
      title: 'EPRT: the forward goes upstream as EPRT',
      input: { events: [{ client: 'EPRT |1|127.0.0.1|50000|' }, { activeReady: LISTENER }, { server: '200 EPRT command successful' }] },
      expected: [
        out({ action: { kind: 'open-active-forward', verb: 'EPRT', target } }),
        up('EPRT |1|127.0.0.1|40000|'),
        down('200 EPRT command successful'),
      ],
    },
    {
      title: 'PORT with an IPv6 forward address goes upstream as EPRT',
      input: { events: [{ client: 'PORT 127,0,0,1,195,80' }, { activeReady: { host: '::1', port: 40000 } }] },
      expected: [out({ action: { kind: 'open-active-forward', verb: 'PORT', target } }), up('EPRT |2|::1|40000|')],
    },
    {
      title: 'EPRT with an IPv6 client address',
      input: { policy: { clientAddress: '::1' }, events: [{ client: 'EPRT |2|::1|50000|' }, { activeReady: { host: '::1', port: 40000 } }] },
      expected: [out({ action: { kind: 'open-active-forward', verb: 'EPRT', target: { family: 6, host: '::1', port: 50000 } } }), up('EPRT |2|::1|40000|')],
    },
    {
      title: 'a forward that cannot be bound gives 425 and sends nothing upstream',
      input: { events: [{ client: 'PORT 127,0,0,1,195,80' }, { activeFailed: true }] },
      expected: [out({ action: { kind: 'open-active-forward', verb: 'PORT', target } }), out({ down: [LOCAL_REPLIES.activeSetupFailed], pending: 0 })],
    },
    {
      title: 'a failed forward behind a pending command waits for its reply',
      input: { events: [{ client: 'TYPE I' }, { client: 'PORT 127,0,0,1,195,80' }, { activeFailed: true }, { server: '200 Type set to I' }] },
      expected: [
        up('TYPE I'),
        out({ action: { kind: 'open-active-forward', verb: 'PORT', target } }),
        nothing,
        down('200 Type set to I', LOCAL_REPLIES.activeSetupFailed),
      ],
    },
    {
      title: 'server replies keep flowing while a forward is being bound',
      input: { events: [{ client: 'TYPE I' }, { client: 'PORT 127,0,0,1,195,80' }, { server: '200 Type set to I' }, { activeReady: LISTENER }, { server: '200 PORT ok' }] },
      expected: [
        up('TYPE I'),
        out({ action: { kind: 'open-active-forward', verb: 'PORT', target } }),
        out({ down: ['200 Type set to I'], pending: 0 }),
        out({ up: ['PORT 127,0,0,1,156,64'], pending: 1 }),
        out({ down: ['200 PORT ok'], pending: 0 }),
      ],
    },
    {
      title: 'the IPv4-mapped client address ::ffff:127.0.0.1 may use PORT 127,0,0,1',
      input: { policy: { clientAddress: '::ffff:127.0.0.1' }, events: [{ client: 'PORT 127,0,0,1,195,80' }] },
      expected: [out({ action: { kind: 'open-active-forward', verb: 'PORT', target } })],
    },
    {
      title: 'the IPv4-mapped client address in upper case',
      input: { policy: { clientAddress: '::FFFF:127.0.0.1' }, events: [{ client: 'PORT 127,0,0,1,195,80' }] },
      expected: [out({ action: { kind: 'open-active-forward', verb: 'PORT', target } })],
    },
    {
      title: 'an IPv4-mapped EPRT address matches an IPv4 client',
      input: { events: [{ client: 'EPRT |2|::ffff:127.0.0.1|50000|' }] },
      expected: [out({ action: { kind: 'open-active-forward', verb: 'EPRT', target: { family: 6, host: '::ffff:127.0.0.1', port: 50000 } } })],
    },
    {
      title: 'EPRT naming the unspecified address :: means the client itself (lftp on ::1)',
      input: { policy: { clientAddress: '::1' }, events: [{ client: 'EPRT |2|::|50000|' }, { activeReady: { host: '::1', port: 40000 } }] },
      expected: [out({ action: { kind: 'open-active-forward', verb: 'EPRT', target: { family: 6, host: '::1', port: 50000 } } }), up('EPRT |2|::1|40000|')],
    },
    {
      title: 'the unspecified address in any spelling, converted: the data connection goes to the client address',
      input: { policy: { clientAddress: '::1', activeStrategy: 'convert' }, events: [{ client: 'EPRT |2|0:0:0::0|50000|' }] },
      expected: [upPassive('EPSV')],
    },
    {
      title: 'PORT 0,0,0,0 means the client itself',
      input: { events: [{ client: 'PORT 0,0,0,0,195,80' }] },
      expected: [out({ action: { kind: 'open-active-forward', verb: 'PORT', target } })],
    },
    {
      title: 'an unspecified address from an IPv4-mapped client becomes its IPv4 address',
      input: { policy: { clientAddress: '::ffff:127.0.0.1' }, events: [{ client: 'EPRT |2|::|50000|' }] },
      expected: [out({ action: { kind: 'open-active-forward', verb: 'EPRT', target: { family: 4, host: '127.0.0.1', port: 50000 } } })],
    },
    {
      title: 'an unspecified address is refused when the client address is unknown',
      input: { policy: { clientAddress: '' }, events: [{ client: 'EPRT |2|::|50000|' }] },
      expected: [down(BOUNCE)],
    },
    {
      title: 'an unspecified address still needs an unprivileged port',
      input: { policy: { clientAddress: '::1' }, events: [{ client: 'EPRT |2|::|22|' }] },
      expected: [down(LOCAL_REPLIES.privilegedPort(1024))],
    },
    {
      title: 'an IPv6 client may not name an IPv4 address',
      input: { policy: { clientAddress: '::1' }, events: [{ client: 'PORT 127,0,0,1,195,80' }] },
      expected: [down(BOUNCE)],
    },
    {
      title: 'the minimum port comes from the policy',
      input: { policy: { minimumActivePort: 50001 }, events: [{ client: 'PORT 127,0,0,1,195,80' }] },
      expected: [down(LOCAL_REPLIES.privilegedPort(50001))],
    },
  ]);

  it('activeForwardReady without a pending PORT/EPRT is a programming error', () => {
    const state = new ControlState(POLICY);
    assert.throws(() => state.activeForwardReady('127.0.0.1', 40000), /no active-mode forward/);
    assert.throws(() => state.activeForwardFailed(), /no active-mode forward/);
  });
});

describe('ControlState: active mode, convert strategy', () => {
  const convert: Partial<ControlPolicy> = { activeStrategy: 'convert' };
  const target = { family: 4 as const, host: '127.0.0.1', port: 50000 };
  table([
    {
      title: 'PORT goes upstream as PASV; the 227 becomes a 200 and a connect-converted action',
      input: { policy: convert, events: [{ client: 'PORT 127,0,0,1,195,80' }, { server: PASV_REPLY }] },
      expected: [
        out({ up: ['PASV'], action: RELEASE, pending: 1 }),
        out({ down: ['200 PORT command successful.'], action: { kind: 'connect-converted', target, serverHost: '10.0.0.5', serverPort: 50000 }, pending: 0 }),
      ],
    },
    {
      title: 'EPRT goes upstream as EPSV; the 229 becomes a 200',
      input: { policy: convert, events: [{ client: 'EPRT |1|127.0.0.1|50000|' }, { server: EPSV_REPLY }] },
      expected: [
        upPassive('EPSV'),
        out({ down: ['200 EPRT command successful.'], action: { kind: 'connect-converted', target, serverHost: null, serverPort: 6446 } }),
      ],
    },
    {
      title: 'a server that refuses PASV: an error reply with its code, no action',
      input: { policy: convert, events: [{ client: 'PORT 127,0,0,1,195,80' }, { server: '500 PASV not understood' }] },
      expected: [upPassive('PASV'), out({ down: ['500 Active mode through the tunnel needs passive mode on the server, which refused it.'], pending: 0 })],
    },
    {
      title: 'a server that answers PASV with a non-error, non-227 reply: 425',
      input: { policy: convert, events: [{ client: 'PORT 127,0,0,1,195,80' }, { server: '200 whatever' }] },
      expected: [upPassive('PASV'), down('425 Active mode through the tunnel needs passive mode on the server, which refused it.')],
    },
    {
      title: 'an unusable 227: 425',
      input: { policy: convert, events: [{ client: 'PORT 127,0,0,1,195,80' }, { server: '227 Entering Passive Mode (10,0,0,5,256,22)' }] },
      expected: [upPassive('PASV'), down(LOCAL_REPLIES.badPassiveReply)],
    },
    {
      title: 'a 150 before the 227 does not consume the conversion',
      input: { policy: convert, events: [{ client: 'PORT 127,0,0,1,195,80' }, { server: '150 odd' }, { server: PASV_REPLY }] },
      expected: [
        upPassive('PASV'),
        down('150 odd'),
        out({ down: ['200 PORT command successful.'], action: { kind: 'connect-converted', target, serverHost: '10.0.0.5', serverPort: 50000 } }),
      ],
    },
    {
      title: 'a converted PORT in a pipeline: replies stay in order, locals behind it',
      input: {
        policy: convert,
        events: [{ client: 'TYPE I' }, { client: 'PORT 127,0,0,1,195,80' }, { client: 'AUTH TLS' }, { client: 'RETR f' }, { server: '200 Type I' }, { server: PASV_REPLY }, { server: '150 Opening' }, { server: '226 Done' }],
      },
      expected: [
        up('TYPE I'),
        upPassive('PASV'),
        nothing,
        up('RETR f'),
        down('200 Type I'),
        out({ down: ['200 PORT command successful.', AUTH_REFUSED], action: { kind: 'connect-converted', target, serverHost: '10.0.0.5', serverPort: 50000 } }),
        down('150 Opening'),
        out({ down: ['226 Done'], pending: 0 }),
      ],
    },
    {
      title: 'the bounce check still applies',
      input: { policy: convert, events: [{ client: 'PORT 10,0,0,9,195,80' }] },
      expected: [out({ down: [BOUNCE], pending: 0 })],
    },
    {
      title: 'the port check still applies',
      input: { policy: convert, events: [{ client: 'EPRT |1|127.0.0.1|21|' }] },
      expected: [down(LOCAL_REPLIES.privilegedPort(1024))],
    },
    {
      title: 'a plain PASV from the client is still rewritten',
      input: { policy: convert, events: [{ client: 'PASV' }, { server: PASV_REPLY }, { passiveReady: LISTENER }] },
      expected: [upPassive('PASV'), out({ action: openPasv }), down(PASV_REWRITTEN)],
    },
  ]);
});

describe('ControlState: REIN and 421', () => {
  table([
    {
      title: 'REIN: the 220 resets the data connections',
      input: { events: [{ client: 'REIN' }, { server: '220 Service ready for new user.' }] },
      expected: [up('REIN'), out({ down: ['220 Service ready for new user.'], action: { kind: 'reset-data' }, pending: 0 })],
    },
    {
      title: 'REIN refused: no reset',
      input: { events: [{ client: 'REIN' }, { server: '502 REIN not implemented' }] },
      expected: [up('REIN'), out({ down: ['502 REIN not implemented'], pending: 0 })],
    },
    {
      title: 'REIN with a 120 first: the reset comes with the 220',
      input: { events: [{ client: 'rein' }, { server: '120 Wait' }, { server: '220 Ready' }] },
      expected: [up('rein'), down('120 Wait'), out({ down: ['220 Ready'], action: { kind: 'reset-data' } })],
    },
    {
      title: 'a 220 that answers something else is not a reset',
      input: { events: [{ client: 'NOOP' }, { server: '220 odd' }] },
      expected: [up('NOOP'), down('220 odd')],
    },
    {
      title: '421 with nothing pending closes the session',
      input: { events: [{ server: '421 Timeout.' }] },
      expected: [out({ down: ['421 Timeout.'], action: { kind: 'close-session', reason: 'FTP server sent 421' } })],
    },
    {
      title: '421 while PASV is pending: forwarded, close, no passive action',
      input: { events: [{ client: 'PASV' }, { server: '421 Shutting down' }] },
      expected: [upPassive('PASV'), out({ down: ['421 Shutting down'], action: { kind: 'close-session', reason: 'FTP server sent 421' } })],
    },
    {
      title: '421 during a transfer closes the session',
      input: { events: [{ client: 'RETR f' }, { server: '150 Opening' }, { server: '421 Service not available' }] },
      expected: [up('RETR f'), down('150 Opening'), out({ down: ['421 Service not available'], action: { kind: 'close-session', reason: 'FTP server sent 421' } })],
    },
    {
      title: 'a multi-line 421 closes the session at its last line',
      input: { events: [{ server: '421-Going down' }, { server: '421 Bye' }] },
      expected: [down('421-Going down'), out({ down: ['421 Bye'], action: { kind: 'close-session', reason: 'FTP server sent 421' } })],
    },
    {
      title: 'a 421 line inside another multi-line reply is text',
      input: { events: [{ client: 'HELP' }, { server: '214-Help' }, { server: '421 is a code' }, { server: '214 End' }] },
      expected: [up('HELP'), down('214-Help'), down('421 is a code'), out({ down: ['214 End'], pending: 0 })],
    },
  ]);
});

describe('ControlState: pendingCount', () => {
  table([
    {
      title: 'grows with every command sent upstream or answered locally behind others, shrinks with every final reply',
      input: {
        events: [
          { client: 'USER u' },
          { client: 'PASS p' },
          { client: 'AUTH TLS' },
          { client: 'SYST' },
          { server: '331 Password' },
          { server: '230 Logged in' },
          { server: '215 UNIX' },
          { client: 'AUTH TLS' },
        ],
      },
      expected: [
        out({ up: ['USER u'], pending: 1 }),
        out({ up: ['PASS p'], pending: 2 }),
        out({ pending: 3 }),
        out({ up: ['SYST'], pending: 4 }),
        out({ down: ['331 Password'], pending: 3 }),
        out({ down: ['230 Logged in', AUTH_REFUSED], pending: 1 }),
        out({ down: ['215 UNIX'], pending: 0 }),
        out({ down: [AUTH_REFUSED], pending: 0 }),
      ],
    },
    {
      title: 'a reply with nothing pending does not go below zero',
      input: { events: [{ server: '200 a' }, { server: '200 b' }, { client: 'NOOP' }, { server: '200 c' }] },
      expected: [out({ down: ['200 a'], pending: 0 }), out({ down: ['200 b'], pending: 0 }), out({ up: ['NOOP'], pending: 1 }), out({ down: ['200 c'], pending: 0 })],
    },
  ]);
});

describe('ControlState: multi-line passive replies are one reply', () => {
  table([
    {
      title: 'a multi-line 227 is held, then rewritten whole: first and last lines agree, every address is the listener',
      input: {
        events: [
          { client: 'PASV' },
          { server: '227-Entering Passive Mode (10,0,0,5,195,80)' },
          { server: ' the data port is 10,0,0,5,195,80' },
          { server: '227 OK' },
          { passiveReady: LISTENER },
        ],
      },
      expected: [
        upPassive('PASV'),
        nothing,
        nothing,
        out({ action: openPasv, pending: 1 }),
        out({ down: ['227-Entering Passive Mode (127,0,0,1,156,64)', ' the data port is 127,0,0,1,156,64', '227 OK'], pending: 0 }),
      ],
    },
    {
      title: 'a multi-line 227 whose address is only on its last line is found there',
      input: { events: [{ client: 'PASV' }, { server: '227-Entering Passive Mode' }, { server: PASV_REPLY }, { passiveReady: LISTENER }] },
      expected: [upPassive('PASV'), nothing, out({ action: openPasv }), down('227-Entering Passive Mode', PASV_REWRITTEN)],
    },
    {
      title: 'a multi-line 227 answering a converted PORT is replaced by one 200 line',
      input: {
        policy: { activeStrategy: 'convert' },
        events: [{ client: 'PORT 127,0,0,1,195,80' }, { server: '227-Entering Passive Mode (10,0,0,5,195,80)' }, { server: '227 OK' }],
      },
      expected: [
        upPassive('PASV'),
        nothing,
        out({
          down: ['200 PORT command successful.'],
          action: { kind: 'connect-converted', target: { family: 4, host: '127.0.0.1', port: 50000 }, serverHost: '10.0.0.5', serverPort: 50000 },
          pending: 0,
        }),
      ],
    },
    {
      title: 'a multi-line 227 whose listener cannot open is replaced by one 425 line',
      input: { events: [{ client: 'PASV' }, { server: '227-Entering Passive Mode (10,0,0,5,195,80)' }, { server: '227 OK' }, { passiveFailed: true }] },
      expected: [upPassive('PASV'), nothing, out({ action: openPasv }), down(LOCAL_REPLIES.passiveSetupFailed)],
    },
    {
      title: 'a multi-line 227 with no usable address is replaced by one 425 line',
      input: { events: [{ client: 'PASV' }, { server: '227-Entering Passive Mode (10,0,0,5,300,80)' }, { server: '227 OK' }] },
      expected: [upPassive('PASV'), nothing, out({ down: [LOCAL_REPLIES.badPassiveReply], pending: 0 })],
    },
    {
      title: 'a multi-line 229 is rewritten whole',
      input: { events: [{ client: 'EPSV' }, { server: '229-Entering Extended Passive Mode (|||6446|)' }, { server: '229 OK (|||6446|)' }, { passiveReady: LISTENER }] },
      expected: [upPassive('EPSV'), nothing, out({ action: openEpsv }), down('229-Entering Extended Passive Mode (|||40000|)', '229 OK (|||40000|)')],
    },
    {
      title: 'a 229 that also names a six-number address: the port is rewritten, the address blanked',
      input: { events: [{ client: 'EPSV' }, { server: '229 Entering Extended Passive Mode (|||6446|) at 10,0,0,5,25,46' }, { passiveReady: LISTENER }] },
      expected: [upPassive('EPSV'), out({ action: openEpsv }), down('229 Entering Extended Passive Mode (|||40000|) at 0,0,0,0,0,0')],
    },
  ]);
});

describe('ControlState: replies that no longer match the commands are realigned', () => {
  table([
    {
      title: 'ABOR during a transfer, answered 426 then 226: each reply answers its command',
      input: { events: [{ client: 'RETR f' }, { server: '150 Opening' }, { client: 'ABOR' }, { server: '426 Aborted' }, { server: '226 ABOR ok' }, { client: 'PASV' }, { server: PASV_REPLY }] },
      expected: [up('RETR f'), down('150 Opening'), up('ABOR'), out({ down: ['426 Aborted'], pending: 1 }), out({ down: ['226 ABOR ok'], pending: 0 }), upPassive('PASV'), out({ action: openPasv })],
    },
    {
      title: 'ABOR after a transfer completed, answered with one more 226: it is the ABOR reply',
      input: { events: [{ client: 'RETR f' }, { client: 'ABOR' }, { server: '226 Transfer complete' }, { server: '226 ABOR ok' }, { client: 'NOOP' }, { server: '200 NOOP ok' }] },
      expected: [up('RETR f'), up('ABOR'), out({ down: ['226 Transfer complete'], pending: 0 }), down('226 ABOR ok'), up('NOOP'), out({ down: ['200 NOOP ok'], pending: 0 })],
    },
    {
      title: 'ABOR answered once only (no reply of its own): the next reply still answers the next command',
      input: { events: [{ client: 'RETR f' }, { client: 'ABOR' }, { server: '226 ABOR successful' }, { client: 'TYPE I' }, { server: '200 Type set to I' }] },
      expected: [up('RETR f'), up('ABOR'), out({ down: ['226 ABOR successful'], pending: 0 }), up('TYPE I'), out({ down: ['200 Type set to I'], pending: 0 })],
    },
    {
      title: 'ABOR answered once only, then PASV: the 227 is acted on and rewritten',
      input: { events: [{ client: 'RETR f' }, { client: 'ABOR' }, { server: '226 ABOR successful' }, { client: 'PASV' }, { server: PASV_REPLY }, { passiveReady: LISTENER }] },
      expected: [up('RETR f'), up('ABOR'), out({ down: ['226 ABOR successful'], pending: 0 }), upPassive('PASV'), out({ action: openPasv, pending: 1 }), out({ down: [PASV_REWRITTEN], pending: 0 })],
    },
    {
      title: 'a local reply after an ABOR that may never be answered is not held back by it',
      input: { events: [{ client: 'RETR f' }, { client: 'ABOR' }, { server: '226 Transfer complete' }, { client: 'AUTH TLS' }] },
      expected: [up('RETR f'), up('ABOR'), out({ down: ['226 Transfer complete'], pending: 0 }), down(AUTH_REFUSED)],
    },
    {
      title: 'a server that skipped the reply to TYPE before PASV: the 227 still answers PASV, and locals behind are released',
      input: { events: [{ client: 'TYPE I' }, { client: 'PASV' }, { client: 'AUTH TLS' }, { server: PASV_REPLY }, { passiveReady: LISTENER }] },
      expected: [up('TYPE I'), upPassive('PASV'), out({ pending: 3 }), out({ action: openPasv, pending: 2 }), out({ down: [PASV_REWRITTEN, AUTH_REFUSED], pending: 0 })],
    },
    {
      title: 'an unsolicited 227 in the middle of a session is dropped and matching goes on',
      input: { events: [{ client: 'PWD' }, { server: PASV_REPLY }, { server: '257 "/"' }, { client: 'PASV' }, { server: PASV_REPLY }, { passiveReady: LISTENER }] },
      expected: [up('PWD'), nothing, out({ down: ['257 "/"'], pending: 0 }), upPassive('PASV'), out({ action: openPasv }), down(PASV_REWRITTEN)],
    },
    {
      title: 'an extra reply with nothing pending is passed on with its addresses blanked',
      input: { events: [{ server: '200 see 10,0,0,5,195,80 and (|||6446|)' }] },
      expected: [down('200 see 0,0,0,0,0,0 and (|||0|)')],
    },
    {
      title: 'a line outside any reply is passed on with its addresses blanked',
      input: { events: [{ server: 'junk 10,0,0,5,195,80' }] },
      expected: [down('junk 0,0,0,0,0,0')],
    },
    {
      title: 'numbers that are no address (above 255, port 0) are left alone',
      input: { events: [{ client: 'STAT' }, { server: '211 1,2,3,4,0,0 and 1,2,3,400,5,6' }] },
      expected: [up('STAT'), down('211 1,2,3,4,0,0 and 1,2,3,400,5,6')],
    },
  ]);
});

describe('ControlState: data set-ups', () => {
  table([
    {
      title: 'an error reply to a forwarded PORT releases its remote forward at once',
      input: { events: [{ client: 'PORT 127,0,0,1,195,80' }, { activeReady: { host: '127.0.0.1', port: 41000 } }, { server: '530 Please login with USER and PASS.' }] },
      expected: [
        out({ action: { kind: 'open-active-forward', verb: 'PORT', target: { family: 4, host: '127.0.0.1', port: 50000 } } }),
        up('PORT 127,0,0,1,160,40'),
        out({ down: ['530 Please login with USER and PASS.'], action: RELEASE, pending: 0 }),
      ],
    },
    {
      title: 'a successful reply to a forwarded PORT keeps it',
      input: { events: [{ client: 'PORT 127,0,0,1,195,80' }, { activeReady: { host: '127.0.0.1', port: 41000 } }, { server: '200 PORT ok' }] },
      expected: [
        out({ action: { kind: 'open-active-forward', verb: 'PORT', target: { family: 4, host: '127.0.0.1', port: 50000 } } }),
        up('PORT 127,0,0,1,160,40'),
        out({ down: ['200 PORT ok'], pending: 0 }),
      ],
    },
  ]);
});

describe('ControlState: every reply is bounded', () => {
  const flood = (first: string, line: string, count: number): Event[] => [{ server: first }, ...Array.from({ length: count }, () => ({ server: line }))];

  it(`a multi-line 227 longer than ${REPLY_LIMITS.heldLines} lines ends the session with 421`, () => {
    const state = new ControlState(POLICY);
    state.onServerLine(bytes(GREETING));
    state.onClientLine(bytes('PASV'));
    let last: Step | undefined;
    for (const event of flood('227-Entering', ' text', REPLY_LIMITS.heldLines + 1)) {
      last = apply(state, event);
      if (last.action) break;
    }
    assert.equal(last?.action?.kind, 'close-session');
    assert.deepEqual(text(last!.toClient), [LOCAL_REPLIES.replyTooLong + CRLF]);
  });

  it('a held reply over the byte bound ends the session with 421', () => {
    const state = new ControlState(POLICY);
    state.onServerLine(bytes(GREETING));
    state.onClientLine(bytes('PASV'));
    state.onServerLine(bytes('227-Entering'));
    const step = state.onServerLine(bytes(' ' + 'x'.repeat(REPLY_LIMITS.heldBytes)));
    assert.equal(step.action?.kind, 'close-session');
  });

  it(`an endless multi-line reply of any other code is passed on until ${REPLY_LIMITS.lines} lines, then 421`, () => {
    const state = new ControlState(POLICY);
    state.onServerLine(bytes(GREETING));
    state.onClientLine(bytes('HELP'));
    assert.equal(state.onServerLine(bytes('214-Help')).toClient.length, 1);
    assert.equal(state.replyInProgress, true);
    let passed = 0;
    let closing: Step | undefined;
    for (let index = 0; index < REPLY_LIMITS.lines + 10; index += 1) {
      const step = state.onServerLine(bytes(' more'));
      if (step.action) {
        closing = step;
        break;
      }
      passed += step.toClient.length;
    }
    assert.equal(closing?.action?.kind, 'close-session');
    assert.equal(passed, REPLY_LIMITS.lines - 1);
  });

  it('replyInProgress is false again once a multi-line reply ended', () => {
    const state = new ControlState(POLICY);
    state.onServerLine(bytes('220-Hello'));
    assert.equal(state.replyInProgress, true);
    state.onServerLine(bytes('220 Ready'));
    assert.equal(state.replyInProgress, false);
  });
});

describe('sameAddress and normalizeAddress', () => {
  const cases: Array<{ title: string; input: [string, string]; expected: boolean }> = [
    { title: 'equal IPv4', input: ['127.0.0.1', '127.0.0.1'], expected: true },
    { title: 'different IPv4', input: ['127.0.0.1', '127.0.0.2'], expected: false },
    { title: 'IPv4-mapped and IPv4', input: ['::ffff:127.0.0.1', '127.0.0.1'], expected: true },
    { title: 'IPv4 and upper-case IPv4-mapped', input: ['127.0.0.1', '::FFFF:127.0.0.1'], expected: true },
    { title: 'IPv6 loopback and IPv4 loopback', input: ['::1', '127.0.0.1'], expected: false },
    { title: 'equal IPv6 in different case', input: ['2001:DB8::1', '2001:db8::1'], expected: true },
    { title: 'a mapped prefix on something that is not IPv4', input: ['::ffff:abcd', 'abcd'], expected: false },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.equal(sameAddress(...input), expected);
    });
  }

  it('normalizeAddress strips the IPv4-mapped prefix only', () => {
    assert.deepEqual(
      ['::ffff:10.0.0.1', '::FFFF:10.0.0.1', '10.0.0.1', '::1', 'FE80::1'].map(normalizeAddress),
      ['10.0.0.1', '10.0.0.1', '10.0.0.1', '::1', 'fe80::1'],
    );
  });
});
