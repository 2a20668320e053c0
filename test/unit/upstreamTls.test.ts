import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ControlState, LOCAL_REPLIES, type ControlPolicy } from '../../src/ftp/controlState.js';
import { UpstreamTlsNegotiation, type FtpTlsMode, type NegotiationStep } from '../../src/ftp/upstreamTls.js';
import { formatFingerprint, formatFingerprintHex, parseFingerprint } from '../../src/net/fingerprint.js';

/** One event: a server line, or the handshake having succeeded. */
type Event = string | { tlsUp: true };
const TLS_UP = { tlsUp: true } as const;

/** What a step comes to, as text. */
function show(step: NegotiationStep): string {
  switch (step.kind) {
    case 'wait':
      return 'wait';
    case 'send':
      return `send ${step.line.toString('latin1').trimEnd()}`;
    case 'start-tls':
      return 'start-tls';
    case 'ready':
      return `ready ${step.greeting.map((line) => line.toString('latin1')).join(' / ')}`;
    case 'fail':
      return `fail ${step.reply}`;
  }
}

function replay(mode: FtpTlsMode, events: readonly Event[]): string[] {
  const negotiation = new UpstreamTlsNegotiation(mode);
  const steps = [show(negotiation.start())];
  for (const event of events) {
    steps.push(show(typeof event === 'string' ? negotiation.onServerLine(Buffer.from(event, 'latin1')) : negotiation.tlsUp()));
  }
  return steps;
}

const CASES: Array<{ title: string; mode: FtpTlsMode; events: Event[]; expected: Array<string | RegExp> }> = [
  {
    title: 'explicit: AUTH TLS, the handshake, then PBSZ and PROT; the greeting is handed over at the end',
    mode: 'explicit',
    events: ['220 (vsFTPd 3.0.3)', '234 Proceed with negotiation.', TLS_UP, '200 PBSZ set to 0.', '200 PROT now Private.'],
    expected: ['wait', 'send AUTH TLS', 'start-tls', 'send PBSZ 0', 'send PROT P', 'ready 220 (vsFTPd 3.0.3)'],
  },
  {
    title: 'implicit: the handshake first, then the greeting arrives over TLS',
    mode: 'implicit',
    events: [TLS_UP, '220 ready', '200 PBSZ=0', '200 Protection set to Private'],
    expected: ['start-tls', 'wait', 'send PBSZ 0', 'send PROT P', 'ready 220 ready'],
  },
  {
    title: 'a multi-line greeting and a 120 before it',
    mode: 'explicit',
    events: ['120 Service ready in 1 minute.', '220-Welcome', ' to the server', '220 ready', '234 AUTH TLS OK.', TLS_UP, '200 ok', '200 ok'],
    expected: ['wait', 'wait', 'wait', 'wait', 'send AUTH TLS', 'start-tls', 'send PBSZ 0', 'send PROT P', 'ready 220-Welcome /  to the server / 220 ready'],
  },
  {
    title: 'a server without AUTH TLS: 421, no fallback to plain FTP',
    mode: 'explicit',
    events: ['220 scripted', "500 'AUTH': command not understood."],
    expected: ['wait', 'send AUTH TLS', /^fail 421 .*does not offer TLS.*500 'AUTH': command not understood.*will not fall back to plain FTP/],
  },
  {
    title: '530 to AUTH TLS is a refusal too',
    mode: 'explicit',
    events: ['220 x', '530 Please login with USER and PASS.'],
    expected: ['wait', 'send AUTH TLS', /^fail 421 /],
  },
  {
    title: 'a 334 (the old AUTH SSL answer) is not a 234',
    mode: 'explicit',
    events: ['220 x', '334 whatever'],
    expected: ['wait', 'send AUTH TLS', /^fail 421 /],
  },
  {
    title: 'plaintext where the handshake is due is refused',
    mode: 'explicit',
    events: ['220 x', '234 go', '230 Login successful.'],
    expected: ['wait', 'send AUTH TLS', 'start-tls', /^fail 421 .*plaintext/],
  },
  {
    title: 'a refusing greeting',
    mode: 'explicit',
    events: ['421 Too many connections.'],
    expected: ['wait', /^fail 421 .*closed the session.*Too many connections/],
  },
  {
    title: 'a 5xx greeting',
    mode: 'implicit',
    events: [TLS_UP, '530 Not allowed from your address'],
    expected: ['start-tls', 'wait', /^fail 421 .*refused the session/],
  },
  {
    title: 'PBSZ refused',
    mode: 'explicit',
    events: ['220 x', '234 go', TLS_UP, '502 no'],
    expected: ['wait', 'send AUTH TLS', 'start-tls', 'send PBSZ 0', /^fail 421 .*PBSZ/],
  },
  {
    title: 'PROT P refused: data would not be protected',
    mode: 'explicit',
    events: ['220 x', '234 go', TLS_UP, '200 ok', '534 no'],
    expected: ['wait', 'send AUTH TLS', 'start-tls', 'send PBSZ 0', 'send PROT P', /^fail 421 .*protect data connections/],
  },
  {
    title: 'something that is not FTP',
    mode: 'explicit',
    events: ['SSH-2.0-OpenSSH_9.2'],
    expected: ['wait', /^fail 421 .*did not answer as FTP/],
  },
  {
    title: 'control characters in a quoted reply are replaced',
    mode: 'explicit',
    events: ['220 x', '500 bad\x1b[31m'],
    expected: ['wait', 'send AUTH TLS', /^fail 421 [^\x1b]*500 bad\?\[31m/],
  },
];

describe('UpstreamTlsNegotiation', () => {
  for (const { title, mode, events, expected } of CASES) {
    it(title, () => {
      const steps = replay(mode, events);
      assert.equal(steps.length, expected.length, steps.join('\n'));
      expected.forEach((want, index) => {
        if (typeof want === 'string') assert.equal(steps[index], want);
        else assert.match(steps[index]!, want);
      });
    });
  }

  it('a greeting that never ends is bounded', () => {
    const negotiation = new UpstreamTlsNegotiation('explicit');
    let last: NegotiationStep = negotiation.onServerLine(Buffer.from('220-start'));
    for (let index = 0; index < 100 && last.kind === 'wait'; index++) last = negotiation.onServerLine(Buffer.from(` line ${index}`));
    assert.equal(last.kind, 'fail');
  });

  it('no line is taken after the end', () => {
    const negotiation = new UpstreamTlsNegotiation('explicit');
    negotiation.onServerLine(Buffer.from('421 bye'));
    assert.throws(() => negotiation.onServerLine(Buffer.from('220 hi')));
  });

  it('tlsUp() only when a handshake was asked for', () => {
    assert.throws(() => new UpstreamTlsNegotiation('explicit').tlsUp());
  });
});

describe('certificate fingerprints', () => {
  const digest = Buffer.from('f0'.repeat(32), 'hex');
  const forms = [
    formatFingerprint(digest),
    formatFingerprintHex(digest),
    `sha256 Fingerprint=${formatFingerprintHex(digest)}`,
    `SHA256:${formatFingerprintHex(digest)}`,
    'f0'.repeat(32),
    `SHA256:${digest.toString('base64')}`,
    `SHA256:${digest.toString('base64url')}`,
  ];
  for (const form of forms) {
    it(`parses ${form.slice(0, 40)}...`, () => assert.deepEqual(parseFingerprint(form), digest));
  }
  for (const bad of ['', 'SHA256:', 'SHA256:abc', 'f0'.repeat(31), 'f0'.repeat(33), digest.toString('base64'), 'MD5:00', `SHA256:${'!'.repeat(43)}`]) {
    it(`refuses ${JSON.stringify(bad.slice(0, 40))}`, () => assert.equal(parseFingerprint(bad), null));
  }
});

describe('ControlState with TLS', () => {
  const base: ControlPolicy = { clientAddress: '127.0.0.1', activeStrategy: 'convert', minimumActivePort: 1024 };
  const line = (text: string): Buffer => Buffer.from(text, 'latin1');
  const toClient = (state: ControlState, text: string): string[] => state.onClientLine(line(text)).toClient.map((b) => b.toString('latin1').trimEnd());
  const greeted = (policy: ControlPolicy): ControlState => {
    const state = new ControlState(policy);
    state.onServerLine(line('220 hi'));
    return state;
  };

  it('AUTH is refused without TLS for clients, whatever the server side', () => {
    assert.deepEqual(toClient(greeted({ ...base, serverTls: true }), 'AUTH TLS'), [LOCAL_REPLIES.authRefused]);
  });

  it('AUTH TLS with TLS for clients: a start-client-tls action carrying the 234, nothing upstream', () => {
    const state = greeted({ ...base, clientTls: true });
    const step = state.onClientLine(line('auth tls'));
    assert.deepEqual(step.toServer, []);
    assert.equal(step.action?.kind, 'start-client-tls');
    assert.equal(step.action?.kind === 'start-client-tls' ? step.action.reply.toString('latin1') : '', `${LOCAL_REPLIES.authAccepted}\r\n`);
    assert.deepEqual(toClient(state, 'AUTH TLS'), [LOCAL_REPLIES.authRepeated]);
  });

  it('AUTH TLS while a reply is still due waits its turn and is refused', () => {
    const state = greeted({ ...base, clientTls: true });
    state.onClientLine(line('NOOP'));
    const step = state.onClientLine(line('AUTH TLS'));
    assert.equal(step.action, undefined);
    assert.deepEqual(state.onServerLine(line('200 ok')).toClient.map((b) => b.toString('latin1').trimEnd()), ['200 ok', LOCAL_REPLIES.authPipelined]);
  });

  it('unknown AUTH mechanisms get 504', () => {
    assert.deepEqual(toClient(greeted({ ...base, clientTls: true }), 'AUTH KERBEROS_V4'), [LOCAL_REPLIES.authMechanism]);
  });

  it('PBSZ and PROT are answered locally once the client is secured, and PROT P protects its data connections', () => {
    const state = greeted({ ...base, clientTls: true, serverTls: true });
    assert.deepEqual(toClient(state, 'PROT P'), [LOCAL_REPLIES.protectionNeedsAuth]);
    state.onClientLine(line('AUTH TLS'));
    assert.equal(state.clientDataProtected, false);
    assert.deepEqual(toClient(state, 'PBSZ 0'), [LOCAL_REPLIES.protectionBuffer]);
    assert.deepEqual(toClient(state, 'PROT P'), [LOCAL_REPLIES.protectionPrivate]);
    assert.equal(state.clientDataProtected, true);
    assert.deepEqual(toClient(state, 'PROT C'), [LOCAL_REPLIES.protectionClear]);
    assert.equal(state.clientDataProtected, false);
    assert.deepEqual(toClient(state, 'PROT S'), [LOCAL_REPLIES.protectionLevel]);
    assert.deepEqual(toClient(state, 'PROT X'), [LOCAL_REPLIES.protectionArgument]);
  });

  it('implicit TLS counts as AUTH TLS done', () => {
    const state = greeted({ ...base, clientTls: true });
    state.clientTlsStarted();
    assert.deepEqual(toClient(state, 'PROT P'), [LOCAL_REPLIES.protectionPrivate]);
    assert.equal(state.clientDataProtected, true);
  });

  it('with TLS to the server, a client PROT C never reaches it, nor CCC or REIN', () => {
    const state = greeted({ ...base, serverTls: true });
    for (const [command, expected] of [['PROT C', LOCAL_REPLIES.protectionNeedsAuth], ['PBSZ 0', LOCAL_REPLIES.protectionNeedsAuth], ['CCC', LOCAL_REPLIES.clearControlRefused], ['REIN', LOCAL_REPLIES.reinitRefused]] as const) {
      const step = state.onClientLine(line(command));
      assert.deepEqual(step.toServer, [], command);
      assert.deepEqual(step.toClient.map((b) => b.toString('latin1').trimEnd()), [expected], command);
    }
  });

  it('without TLS on either side, PBSZ, PROT, CCC and REIN pass through as before', () => {
    const state = greeted(base);
    for (const command of ['PBSZ 0', 'PROT P', 'CCC', 'REIN']) assert.deepEqual(state.onClientLine(line(command)).toServer.map((b) => b.toString('latin1')), [`${command}\r\n`]);
  });
});
