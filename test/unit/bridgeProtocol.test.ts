import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BridgeProtocol, REPLIES, splitListArgument, type Effect, type FsResult, type ProtocolOptions, type Step, type TransferOutcome } from '../../src/bridge/protocol.js';
import type { ListEntry } from '../../src/bridge/listing.js';

const FILE = 0o100644;
const DIR = 0o040755;
const OPTIONS: ProtocolOptions = { clientAddress: '127.0.0.1', family: 4, minimumActivePort: 1024, maxLoginFailures: 3, serverDescription: 'deploy@sftp.example.com:22' };

/** What a scenario feeds the protocol: a client line, or the outcome of the effect it asked for. */
type Event =
  | { client: string | Buffer }
  | { login: 'ok' | 'denied' | 'unavailable'; home?: string }
  | { passive: { host: string; port: number } | 'failed' }
  | { fs: FsResult }
  | { starting: { size?: number; uniqueName?: string } }
  | { finished: TransferOutcome }
  | { status: number };

/** One output: a reply line (exact text), or an effect (compared on the fields given). */
type Output = string | { effect: Partial<Effect> & Record<string, unknown> } | { defer: true };

class Scenario {
  readonly protocol: BridgeProtocol;
  private lastEffect: Effect | undefined;
  readonly outputs: Output[] = [];

  constructor(options: Partial<ProtocolOptions> = {}) {
    this.protocol = new BridgeProtocol({ ...OPTIONS, ...options });
  }

  private record(step: Step): void {
    if (step.defer) this.outputs.push({ defer: true });
    for (const reply of step.replies) this.outputs.push(reply);
    if (step.effect) {
      this.lastEffect = step.effect;
      this.outputs.push({ effect: step.effect });
    }
  }

  feed(event: Event): this {
    if ('client' in event) this.record(this.protocol.onLine(typeof event.client === 'string' ? Buffer.from(event.client, 'latin1') : event.client));
    else if ('login' in event) {
      this.record(event.login === 'ok' ? this.protocol.loginSucceeded(event.home ?? '/') : this.protocol.loginFailed(event.login));
    } else if ('passive' in event) {
      const effect = this.lastEffect;
      assert.ok(effect?.kind === 'passive', 'a passive outcome without a passive effect');
      this.record(event.passive === 'failed' ? this.protocol.passiveFailed() : this.protocol.passiveReady(effect.verb, event.passive.host, event.passive.port));
    } else if ('fs' in event) {
      const effect = this.lastEffect;
      assert.ok(effect?.kind === 'fs', 'an fs outcome without an fs effect');
      this.record(this.protocol.fsDone(effect.op, event.fs));
    } else if ('starting' in event) this.outputs.push(this.protocol.transferStarting(event.starting));
    else if ('finished' in event) this.record(this.protocol.transferFinished(event.finished));
    else this.outputs.push(this.protocol.transferStatus(event.status));
    return this;
  }

  /** Logged in (outputs so far dropped). */
  loggedIn(home = '/'): this {
    this.feed({ client: 'USER alice' }).feed({ client: 'PASS secret' }).feed({ login: 'ok', home });
    this.outputs.length = 0;
    return this;
  }

  passiveReady(): this {
    this.feed({ client: 'PASV' }).feed({ passive: { host: '127.0.0.1', port: 40000 } });
    this.outputs.length = 0;
    return this;
  }
}

function expectOutputs(actual: readonly Output[], expected: readonly Output[]): void {
  assert.equal(actual.length, expected.length, `outputs:\n${JSON.stringify(actual, null, 1)}`);
  expected.forEach((want, index) => {
    const got = actual[index];
    if (typeof want === 'string' || 'defer' in want) return assert.deepEqual(got, want, `output ${index}`);
    assert.ok(got !== undefined && typeof got === 'object' && 'effect' in got, `output ${index} is not an effect: ${JSON.stringify(got)}`);
    for (const [key, value] of Object.entries(want.effect)) assert.deepEqual((got.effect as Record<string, unknown>)[key], value, `output ${index}: effect.${key}`);
  });
}

const entry = (mode: number, extra: Partial<ListEntry['attrs']> = {}): ListEntry => ({ name: 'x', attrs: { mode, size: 1234, mtime: Date.UTC(2024, 0, 2, 3, 4, 5) / 1000, ...extra } });
const ok = (result: Omit<FsResult & { ok: true }, 'ok'> = {}): FsResult => ({ ok: true, ...result });

interface Case {
  title: string;
  setup?: (scenario: Scenario) => Scenario;
  options?: Partial<ProtocolOptions>;
  events: Event[];
  expected: Output[];
}

function run(cases: readonly Case[]): void {
  for (const { title, setup, options, events, expected } of cases) {
    it(title, () => {
      const scenario = new Scenario(options);
      setup?.(scenario);
      for (const event of events) scenario.feed(event);
      expectOutputs(scenario.outputs, expected);
    });
  }
}

const loggedIn = (scenario: Scenario): Scenario => scenario.loggedIn();

describe('bridge protocol: login', () => {
  it('greets with 220', () => assert.match(new BridgeProtocol(OPTIONS).greeting(), /^220 /));

  run([
    {
      title: 'USER, PASS, then the login effect and 230',
      events: [{ client: 'USER alice' }, { client: 'PASS s3cret' }, { login: 'ok', home: '/home/alice' }, { client: 'PWD' }],
      expected: ['331 Password required for alice.', { effect: { kind: 'login', user: 'alice', password: 's3cret' } }, '230 Login successful.', '257 "/home/alice" is the current directory.'],
    },
    {
      title: 'a wrong password is 530, and USER starts over',
      events: [{ client: 'USER alice' }, { client: 'PASS nope' }, { login: 'denied' }, { client: 'PASS again' }],
      expected: ['331 Password required for alice.', { effect: { kind: 'login' } }, '530 Login incorrect.', '503 Bad sequence of commands: send USER first.'],
    },
    {
      title: 'the third failure closes the session with 421',
      events: [
        { client: 'USER a' }, { client: 'PASS 1' }, { login: 'denied' },
        { client: 'USER a' }, { client: 'PASS 2' }, { login: 'denied' },
        { client: 'USER a' }, { client: 'PASS 3' }, { login: 'denied' },
      ],
      expected: [
        '331 Password required for a.', { effect: { kind: 'login' } }, '530 Login incorrect.',
        '331 Password required for a.', { effect: { kind: 'login' } }, '530 Login incorrect.',
        '331 Password required for a.', { effect: { kind: 'login' } }, '530 Login incorrect.', REPLIES.tooManyFailures, { effect: { kind: 'close' } },
      ],
    },
    {
      title: 'the SSH side unreachable is 421, not 530',
      events: [{ client: 'USER a' }, { client: 'PASS b' }, { login: 'unavailable' }],
      expected: ['331 Password required for a.', { effect: { kind: 'login' } }, REPLIES.loginUnavailable, { effect: { kind: 'close' } }],
    },
    { title: 'PASS before USER', events: [{ client: 'PASS x' }], expected: ['503 Bad sequence of commands: send USER first.'] },
    { title: 'USER without a name', events: [{ client: 'USER' }], expected: ['501 Syntax error in parameters or arguments: USER takes a user name.'] },
    { title: 'another USER after login is refused', setup: loggedIn, events: [{ client: 'USER bob' }], expected: ["530 Can't change to another user."] },
    {
      title: 'a password that is not UTF-8 still takes the failure path',
      events: [{ client: 'USER a' }, { client: Buffer.from([0x50, 0x41, 0x53, 0x53, 0x20, 0xff, 0xfe]) }],
      expected: ['331 Password required for a.', { effect: { kind: 'login', password: '\u0000' } }],
    },
    {
      title: 'file commands before login get 530; unknown ones 502',
      events: [{ client: 'RETR x' }, { client: 'CWD /' }, { client: 'PASV' }, { client: 'XYZZ' }, { client: 'AUTH TLS' }],
      expected: [REPLIES.notLoggedIn, REPLIES.notLoggedIn, REPLIES.notLoggedIn, REPLIES.notImplemented, REPLIES.notImplemented],
    },
    {
      title: 'FEAT, SYST, NOOP, OPTS UTF8, HELP and QUIT work before login',
      events: [{ client: 'SYST' }, { client: 'NOOP' }, { client: 'OPTS UTF8 ON' }, { client: 'QUIT' }],
      expected: ['215 UNIX Type: L8', '200 NOOP ok.', '200 Always in UTF8 mode.', '221 Goodbye.', { effect: { kind: 'close' } }],
    },
    { title: 'ACCT is not needed', events: [{ client: 'ACCT x' }], expected: ['502 ACCT not implemented: no account is needed.'] },
  ]);
});

describe('bridge protocol: line hygiene', () => {
  run([
    { title: 'an empty line', events: [{ client: '' }], expected: [REPLIES.syntax] },
    { title: 'a NUL byte', events: [{ client: 'RETR a\0b' }], expected: [REPLIES.badCharacter] },
    { title: 'a lone CR', events: [{ client: 'RETR a\rb' }], expected: [REPLIES.badCharacter] },
    { title: 'a long verb', events: [{ client: 'RETRIEVE x' }], expected: [REPLIES.syntax] },
    { title: 'lower-case verbs', setup: loggedIn, events: [{ client: 'pwd' }], expected: ['257 "/" is the current directory.'] },
    { title: 'the Telnet interrupt before ABOR is stripped', setup: loggedIn, events: [{ client: '\xff\xf4\xff\xf2ABOR' }], expected: [REPLIES.noTransfer] },
    { title: 'LPSV and LPRT are not implemented', setup: loggedIn, events: [{ client: 'LPSV' }, { client: 'LPRT 4,4,127,0,0,1,2,4,1' }], expected: [REPLIES.notImplemented, REPLIES.notImplemented] },
    { title: 'REIN, ALLO, PBSZ, PROT: 502', setup: loggedIn, events: [{ client: 'REIN' }, { client: 'ALLO 100' }, { client: 'PBSZ 0' }, { client: 'PROT P' }], expected: Array(4).fill(REPLIES.notImplemented) },
  ]);
});

describe('bridge protocol: FEAT and HELP', () => {
  it('FEAT lists exactly the extensions, each one implemented', () => {
    const scenario = new Scenario().feed({ client: 'FEAT' });
    const feat = scenario.outputs[0] as string;
    const lines = feat.split('\r\n');
    assert.equal(lines[0], '211-Features:');
    assert.equal(lines.at(-1), '211 End');
    const features = lines.slice(1, -1).map((line) => line.trim());
    assert.deepEqual(features.map((line) => line.split(' ')[0]), ['EPRT', 'EPSV', 'MDTM', 'MFMT', 'MLST', 'PASV', 'REST', 'SIZE', 'TVFS', 'UTF8']);
    assert.ok(lines.slice(1, -1).every((line) => line.startsWith(' ')), 'each feature line starts with a space');
    assert.ok(features.includes('REST STREAM'));
    assert.ok(features.includes('MLST type*;size*;modify*;perm*;unix.mode*;unix.owner*;unix.group*;unix.ownername*;unix.groupname*;'));
    // Every announced command answers something other than 500/502 once logged in.
    const probe = new Scenario().loggedIn();
    for (const verb of ['EPRT |1|127.0.0.1|5000|', 'MDTM x', 'MFMT 20240101000000 x', 'MLST x', 'SIZE x', 'OPTS UTF8 ON']) {
      const step = probe.protocol.onLine(Buffer.from(verb));
      assert.ok(!step.replies.some((reply) => /^50[02]/.test(reply)), `${verb}: ${step.replies.join(' | ')}`);
      if (step.effect?.kind === 'fs') probe.protocol.fsDone(step.effect.op, { ok: false, kind: 'no-such-file' });
    }
  });

  it('OPTS MLST changes the facts FEAT marks and MLST sends', () => {
    const scenario = new Scenario().loggedIn().feed({ client: 'OPTS MLST size;type;' }).feed({ client: 'FEAT' });
    assert.equal(scenario.outputs[0], '200 MLST OPTS type;size;');
    assert.match(scenario.outputs[1] as string, / MLST type\*;size\*;modify;perm;/);
    scenario.feed({ client: 'MLST x' }).feed({ fs: ok({ entry: entry(FILE) }) });
    assert.equal(scenario.outputs.at(-1), '250-Listing /x\r\n type=file;size=1234; /x\r\n250 End');
  });

  it('HELP lists the commands; HELP verb answers for one', () => {
    const scenario = new Scenario().feed({ client: 'HELP' }).feed({ client: 'HELP retr' }).feed({ client: 'HELP BOGUS' });
    assert.match(scenario.outputs[0] as string, /^214-The following commands are recognized:\r\n ABOR ACCT APPE/);
    assert.match(scenario.outputs[0] as string, /\r\n214 Help OK\.$/);
    assert.equal(scenario.outputs[1], '214 RETR is implemented.');
    assert.equal(scenario.outputs[2], '502 Unknown command BOGUS.');
  });

  it('STAT without an argument is a multi-line status without secrets', () => {
    const scenario = new Scenario().loggedIn().feed({ client: 'STAT' });
    const status = scenario.outputs[0] as string;
    assert.match(status, /^211-FTP server status:\r\n/);
    assert.match(status, / Logged in as alice\r\n/);
    assert.match(status, / Files served over SFTP by deploy@sftp\.example\.com:22\r\n/);
    assert.match(status, /\r\n211 End of status$/);
    assert.doesNotMatch(status, /secret/);
  });
});

describe('bridge protocol: settings', () => {
  run([
    { title: 'TYPE I, TYPE A, TYPE A N, TYPE L 8', setup: loggedIn, events: [{ client: 'TYPE I' }, { client: 'type a' }, { client: 'TYPE A N' }, { client: 'TYPE L 8' }], expected: ['200 Type set to I.', '200 Type set to A.', '200 Type set to A.', '200 Type set to I.'] },
    { title: 'TYPE E, TYPE A T, TYPE L 7: 504', setup: loggedIn, events: [{ client: 'TYPE E' }, { client: 'TYPE A T' }, { client: 'TYPE L 7' }], expected: Array(3).fill('504 Only TYPE A (non-print) and TYPE I are supported.') },
    { title: 'TYPE without argument: 501', setup: loggedIn, events: [{ client: 'TYPE' }], expected: ['501 Syntax error in parameters or arguments: TYPE takes A or I.'] },
    { title: 'MODE S and STRU F; others 504', setup: loggedIn, events: [{ client: 'MODE S' }, { client: 'MODE B' }, { client: 'STRU F' }, { client: 'STRU R' }], expected: ['200 Mode set to S.', '504 Only MODE S is supported.', '200 Structure set to F.', '504 Only STRU F is supported.'] },
    { title: 'REST takes a byte offset', setup: loggedIn, events: [{ client: 'REST 100' }, { client: 'REST -1' }, { client: 'REST 1e9' }, { client: 'REST 9999999999999999' }], expected: ['350 Restarting at 100. Send STOR or RETR to initiate transfer.', ...Array(3).fill('501 Syntax error in parameters or arguments: REST takes a byte offset.')] },
    { title: 'OPTS UTF8 OFF cannot be honoured; unknown options: 501', events: [{ client: 'OPTS UTF8 OFF' }, { client: 'OPTS FOO' }], expected: ['504 UTF8 cannot be switched off: names are UTF-8 on the SFTP side.', '501 Option not understood.'] },
  ]);
});

describe('bridge protocol: data connection set-up', () => {
  run([
    {
      title: 'PASV: 227 with the listener address',
      setup: loggedIn,
      events: [{ client: 'PASV' }, { passive: { host: '127.0.0.1', port: 50000 } }],
      expected: [{ effect: { kind: 'passive', verb: 'PASV' } }, '227 Entering Passive Mode (127,0,0,1,195,80).'],
    },
    {
      title: 'EPSV: 229 with the port only',
      setup: loggedIn,
      events: [{ client: 'EPSV' }, { passive: { host: '127.0.0.1', port: 50000 } }],
      expected: [{ effect: { kind: 'passive', verb: 'EPSV' } }, '229 Entering Extended Passive Mode (|||50000|).'],
    },
    { title: 'a listener that cannot open: 425', setup: loggedIn, events: [{ client: 'EPSV' }, { passive: 'failed' }], expected: [{ effect: { kind: 'passive' } }, REPLIES.passiveFailed] },
    { title: 'EPSV 1 on IPv4 is fine', setup: loggedIn, events: [{ client: 'EPSV 1' }], expected: [{ effect: { kind: 'passive' } }] },
    { title: 'EPSV 2 on IPv4: 522', setup: loggedIn, events: [{ client: 'EPSV 2' }], expected: ['522 Network protocol not supported, use (1).'] },
    { title: 'EPSV 3: 501', setup: loggedIn, events: [{ client: 'EPSV 3' }], expected: ['501 Syntax error in parameters or arguments: EPSV takes 1, 2 or ALL.'] },
    {
      title: 'after EPSV ALL only EPSV sets up data connections',
      setup: loggedIn,
      events: [{ client: 'EPSV ALL' }, { client: 'PASV' }, { client: 'PORT 127,0,0,1,19,136' }, { client: 'EPRT |1|127.0.0.1|5000|' }, { client: 'EPSV' }],
      expected: ['200 EPSV ALL ok.', REPLIES.epsvAll, REPLIES.epsvAll, REPLIES.epsvAll, { effect: { kind: 'passive', verb: 'EPSV' } }],
    },
    { title: 'PASV on an IPv6 control connection: use EPSV', setup: loggedIn, options: { family: 6, clientAddress: '::1' }, events: [{ client: 'PASV' }], expected: [REPLIES.pasvIpv6] },
    { title: 'EPSV 2 on IPv6 is fine', setup: loggedIn, options: { family: 6, clientAddress: '::1' }, events: [{ client: 'EPSV 2' }], expected: [{ effect: { kind: 'passive' } }] },
    { title: 'PORT to the client itself', setup: loggedIn, events: [{ client: 'PORT 127,0,0,1,19,136' }], expected: ['200 PORT command successful.'] },
    { title: 'PORT to another host is the bounce attack: 501', setup: loggedIn, events: [{ client: 'PORT 10,0,0,9,19,136' }], expected: ['501 Rejected: the data address must be your own address (FTP bounce protection).'] },
    { title: 'PORT to a privileged port: 501', setup: loggedIn, events: [{ client: 'PORT 127,0,0,1,0,22' }], expected: ['501 Rejected: data port must be 1024 or above.'] },
    { title: 'PORT with a number above 255: 501', setup: loggedIn, events: [{ client: 'PORT 127,0,0,1,256,22' }], expected: ['501 Syntax error in parameters or arguments: a number is above 255.'] },
    { title: 'PORT with seven numbers: 501', setup: loggedIn, events: [{ client: 'PORT 1,127,0,0,1,19,136' }], expected: ['501 Syntax error in parameters or arguments: PORT takes h1,h2,h3,h4,p1,p2.'] },
    { title: 'EPRT to the client itself', setup: loggedIn, events: [{ client: 'EPRT |1|127.0.0.1|5000|' }], expected: ['200 EPRT command successful.'] },
    { title: 'EPRT naming 0.0.0.0 means the client itself', setup: loggedIn, events: [{ client: 'EPRT |1|0.0.0.0|5000|' }], expected: ['200 EPRT command successful.'] },
    { title: 'EPRT to another host: 501', setup: loggedIn, events: [{ client: 'EPRT |1|192.0.2.1|5000|' }], expected: ['501 Rejected: the data address must be your own address (FTP bounce protection).'] },
    { title: 'EPRT of the other family: 522', setup: loggedIn, events: [{ client: 'EPRT |2|::1|5000|' }], expected: ['522 Network protocol not supported, use (1).'] },
    { title: 'EPRT over IPv6 to ::1', setup: loggedIn, options: { family: 6, clientAddress: '::1' }, events: [{ client: 'EPRT |2|::1|5000|' }], expected: ['200 EPRT command successful.'] },
    { title: 'a transfer without a data set-up: 425', setup: loggedIn, events: [{ client: 'RETR x' }, { client: 'LIST' }], expected: [REPLIES.noDataSetup, REPLIES.noDataSetup] },
  ]);

  it('an active set-up goes with the transfer, and is used once', () => {
    const scenario = new Scenario().loggedIn().feed({ client: 'PORT 127,0,0,1,19,136' }).feed({ client: 'RETR a' });
    const effect = (scenario.outputs[1] as { effect: Effect }).effect;
    assert.ok(effect.kind === 'transfer');
    assert.deepEqual(effect.transfer.data, { kind: 'active', target: { family: 4, host: '127.0.0.1', port: 5000 } });
    scenario.feed({ starting: { size: 3 } }).feed({ finished: { kind: 'complete' } }).feed({ client: 'RETR a' });
    assert.equal(scenario.outputs.at(-1), REPLIES.noDataSetup);
  });
});

describe('bridge protocol: transfers', () => {
  const transfer = (outputs: readonly Output[], index: number): Extract<Effect, { kind: 'transfer' }>['transfer'] => {
    const output = outputs[index] as { effect: Effect };
    assert.ok(output.effect.kind === 'transfer');
    return output.effect.transfer;
  };

  it('RETR: 150 with the size in binary mode, then 226', () => {
    const scenario = new Scenario().loggedIn().passiveReady().feed({ client: 'TYPE I' }).feed({ client: 'RETR dir/file name.txt' });
    const request = transfer(scenario.outputs, 1);
    assert.deepEqual({ command: request.command, path: request.path, offset: request.offset, ascii: request.ascii }, { command: 'RETR', path: '/dir/file name.txt', offset: 0, ascii: false });
    scenario.feed({ starting: { size: 5 } }).feed({ finished: { kind: 'complete' } });
    assert.deepEqual(scenario.outputs.slice(2), ['150 Opening BINARY mode data connection for file name.txt (5 bytes).', '226 Transfer complete.']);
  });

  it('RETR in ASCII mode names no size (the wire size differs)', () => {
    const scenario = new Scenario().loggedIn().passiveReady().feed({ client: 'RETR a.txt' }).feed({ starting: { size: 5 } });
    assert.equal(scenario.outputs.at(-1), '150 Opening ASCII mode data connection for a.txt.');
    assert.equal(transfer(scenario.outputs, 0).ascii, true);
  });

  it('REST applies to the next RETR or STOR, and only once', () => {
    const scenario = new Scenario().loggedIn().feed({ client: 'REST 500' }).passiveReady().feed({ client: 'RETR a' });
    assert.equal(transfer(scenario.outputs, 0).offset, 500);
    scenario.feed({ starting: {} }).feed({ finished: { kind: 'complete' } }).passiveReady().feed({ client: 'RETR a' });
    assert.equal(transfer(scenario.outputs, 0).offset, 0);
  });

  it('APPE ignores REST; STOU without a name proposes none', () => {
    const scenario = new Scenario().loggedIn('/in').feed({ client: 'REST 9' }).passiveReady().feed({ client: 'APPE log' });
    assert.deepEqual([transfer(scenario.outputs, 0).command, transfer(scenario.outputs, 0).offset], ['APPE', 0]);
    scenario.feed({ starting: {} }).feed({ finished: { kind: 'complete' } }).passiveReady().feed({ client: 'STOU' });
    const stou = transfer(scenario.outputs, 0);
    assert.deepEqual([stou.path, stou.nameGiven], ['/in/ftpfwd', false]);
    scenario.feed({ starting: { uniqueName: 'ftpfwd.1a2b' } });
    assert.equal(scenario.outputs.at(-1), '150 FILE: ftpfwd.1a2b');
  });

  it('LIST options are dropped; a pattern lists its directory, filtered', () => {
    const scenario = new Scenario().loggedIn('/home').passiveReady().feed({ client: 'LIST -la' });
    assert.deepEqual([transfer(scenario.outputs, 0).path, transfer(scenario.outputs, 0).glob], ['/home', null]);
    scenario.feed({ starting: {} }).feed({ finished: { kind: 'complete' } }).passiveReady().feed({ client: 'NLST -l sub/*.txt' });
    const nlst = transfer(scenario.outputs, 0);
    assert.deepEqual([nlst.path, nlst.glob, nlst.namePrefix], ['/home/sub', '*.txt', 'sub/']);
  });

  it('splits LIST arguments like ls', () => {
    assert.deepEqual(splitListArgument('-la /dir'), { options: 'la', path: '/dir' });
    assert.deepEqual(splitListArgument('-a -l'), { options: 'al', path: '' });
    assert.deepEqual(splitListArgument('my dir'), { options: '', path: 'my dir' });
  });

  const finishing: Array<{ outcome: TransferOutcome; replies: string[]; closes?: boolean }> = [
    { outcome: { kind: 'complete' }, replies: ['226 Transfer complete.'] },
    { outcome: { kind: 'refused', reason: { kind: 'fs', failure: 'no-such-file' } }, replies: ['550 No such file or directory.'] },
    { outcome: { kind: 'refused', reason: { kind: 'fs', failure: 'permission-denied' } }, replies: ['550 Permission denied.'] },
    { outcome: { kind: 'refused', reason: { kind: 'fs', failure: 'outside-root' } }, replies: ['550 Permission denied: outside the served directory.'] },
    { outcome: { kind: 'refused', reason: { kind: 'not-a-file' } }, replies: ['550 Not a regular file.'] },
    { outcome: { kind: 'refused', reason: { kind: 'rest-beyond-end', size: 10 } }, replies: ['554 Restart point is beyond the end of the file (10 bytes).'] },
    { outcome: { kind: 'no-data-connection' }, replies: ['425 Cannot open data connection.'] },
    { outcome: { kind: 'data-connection-lost' }, replies: ['426 Connection closed; transfer aborted.'] },
    { outcome: { kind: 'server-failed', failure: 'failure' }, replies: ['451 Transfer aborted: Requested action not taken (the SSH server reported a failure).'] },
    { outcome: { kind: 'ssh-lost' }, replies: [REPLIES.sshLost, REPLIES.sessionLost], closes: true },
  ];
  for (const { outcome, replies, closes } of finishing) {
    it(`a RETR that ends ${outcome.kind}${'reason' in outcome ? ` (${outcome.reason.kind})` : ''}: ${replies[0]!.slice(0, 3)}`, () => {
      const scenario = new Scenario().loggedIn().passiveReady().feed({ client: 'RETR a' });
      scenario.outputs.length = 0;
      scenario.feed({ finished: outcome });
      expectOutputs(scenario.outputs, [...replies, ...(closes ? [{ effect: { kind: 'close' } } as Output] : [])]);
      assert.ok(!(outcome.kind !== 'complete' && scenario.outputs.some((reply) => typeof reply === 'string' && reply.startsWith('226'))), 'a failed transfer must never get 226');
    });
  }

  it('listings end with "Directory send OK"', () => {
    const scenario = new Scenario().loggedIn().passiveReady().feed({ client: 'MLSD' }).feed({ starting: {} }).feed({ finished: { kind: 'complete' } });
    assert.deepEqual(scenario.outputs.slice(1), ['150 Here comes the directory listing.', '226 Directory send OK.']);
  });

  it('MLSD of a file: 501', () => {
    const scenario = new Scenario().loggedIn().passiveReady().feed({ client: 'MLSD f' }).feed({ finished: { kind: 'refused', reason: { kind: 'not-a-directory' } } });
    assert.match(scenario.outputs.at(-1) as string, /^501 /);
  });
});

describe('bridge protocol: while a transfer runs', () => {
  const running = (scenario: Scenario): Scenario => {
    scenario.loggedIn().passiveReady().feed({ client: 'RETR big' }).feed({ starting: { size: 100 } });
    scenario.outputs.length = 0;
    return scenario;
  };
  run([
    { title: 'ABOR stops it: 426 for the transfer, then 226 for ABOR', setup: running, events: [{ client: 'ABOR' }, { finished: { kind: 'aborted' } }], expected: [{ effect: { kind: 'abort' } }, REPLIES.transferAborted, REPLIES.aborOk] },
    { title: 'ABOR after the Telnet interrupt', setup: running, events: [{ client: '\xff\xf4\xf2ABOR' }, { finished: { kind: 'aborted' } }], expected: [{ effect: { kind: 'abort' } }, REPLIES.transferAborted, REPLIES.aborOk] },
    { title: 'ABOR as the SSH connection drops: 426, 226, then 421', setup: running, events: [{ client: 'ABOR' }, { finished: { kind: 'ssh-lost' } }], expected: [{ effect: { kind: 'abort' } }, REPLIES.sshLost, REPLIES.aborOk, REPLIES.sessionLost, { effect: { kind: 'close' } }] },
    { title: 'STAT reports progress', setup: running, events: [{ client: 'STAT' }, { status: 4096 }], expected: [{ effect: { kind: 'transfer-status' } }, '213-Status:\r\n RETR in progress, 4096 bytes so far\r\n213 End of status'] },
    { title: 'STAT of a path must wait', setup: running, events: [{ client: 'STAT /' }], expected: ['425 A transfer is in progress; STAT of a path must wait.'] },
    { title: 'NOOP is answered', setup: running, events: [{ client: 'NOOP' }], expected: ['200 NOOP ok.'] },
    { title: 'other commands wait (defer), QUIT included', setup: running, events: [{ client: 'PWD' }, { client: 'QUIT' }], expected: [{ defer: true }, { defer: true }] },
  ]);

  it('after the transfer, deferred commands are answered normally', () => {
    const scenario = running(new Scenario()).feed({ client: 'PWD' }).feed({ finished: { kind: 'complete' } }).feed({ client: 'PWD' });
    expectOutputs(scenario.outputs, [{ defer: true }, '226 Transfer complete.', '257 "/" is the current directory.']);
  });

  it('ABOR with no transfer: 225', () => {
    expectOutputs(new Scenario().loggedIn().feed({ client: 'ABOR' }).outputs, [REPLIES.noTransfer]);
  });
});

describe('bridge protocol: file commands', () => {
  run([
    {
      title: 'CWD to a directory: 250, and PWD follows',
      setup: loggedIn,
      events: [{ client: 'CWD sub dir' }, { fs: ok({ entry: entry(DIR) }) }, { client: 'PWD' }],
      expected: [{ effect: { kind: 'fs', op: { op: 'cwd', path: '/sub dir' } } }, '250 Directory successfully changed.', '257 "/sub dir" is the current directory.'],
    },
    { title: 'CWD to a file: 550', setup: loggedIn, events: [{ client: 'CWD f' }, { fs: ok({ entry: entry(FILE) }) }], expected: [{ effect: { kind: 'fs' } }, '550 Failed to change directory: not a directory.'] },
    { title: 'CWD outside the root is refused by the I/O layer: 550', setup: loggedIn, events: [{ client: 'CWD /x' }, { fs: { ok: false, kind: 'outside-root' } }], expected: [{ effect: { kind: 'fs' } }, '550 Permission denied: outside the served directory.'] },
    { title: 'CWD .. at the top stays at the top', setup: loggedIn, events: [{ client: 'CWD ../../..' }], expected: [{ effect: { kind: 'fs', op: { op: 'cwd', path: '/' } } }] },
    { title: 'CDUP and XCUP', setup: (s) => s.loggedIn('/a/b'), events: [{ client: 'CDUP' }, { fs: ok({ entry: entry(DIR) }) }, { client: 'XPWD' }], expected: [{ effect: { kind: 'fs', op: { op: 'cwd', path: '/a' } } }, '250 Directory successfully changed.', '257 "/a" is the current directory.'] },
    { title: 'a quote in the directory name is doubled', setup: (s) => s.loggedIn('/say "hi"'), events: [{ client: 'PWD' }], expected: ['257 "/say ""hi""" is the current directory.'] },
    { title: 'SIZE of a file', setup: loggedIn, events: [{ client: 'SIZE f' }, { fs: ok({ entry: entry(FILE), size: 1234 }) }], expected: [{ effect: { kind: 'fs', op: { op: 'size', path: '/f', ascii: true } } }, '213 1234'] },
    { title: 'SIZE of a directory: 550', setup: loggedIn, events: [{ client: 'SIZE d' }, { fs: ok({ entry: entry(DIR), size: 4096 }) }], expected: [{ effect: { kind: 'fs' } }, '550 Could not get file size: not a regular file.'] },
    { title: 'SIZE in ASCII mode of a file too large to count', setup: loggedIn, events: [{ client: 'SIZE big' }, { fs: ok({ entry: entry(FILE) }) }], expected: [{ effect: { kind: 'fs' } }, '550 Could not get file size in ASCII mode: the file is too large; use TYPE I.'] },
    { title: 'SIZE of a missing file: 550', setup: loggedIn, events: [{ client: 'SIZE nope' }, { fs: { ok: false, kind: 'no-such-file' } }], expected: [{ effect: { kind: 'fs' } }, '550 No such file or directory.'] },
    { title: 'MDTM', setup: loggedIn, events: [{ client: 'MDTM f' }, { fs: ok({ entry: entry(FILE) }) }], expected: [{ effect: { kind: 'fs' } }, '213 20240102030405'] },
    { title: 'MFMT sets the time', setup: loggedIn, events: [{ client: 'MFMT 20240102030405 f' }, { fs: ok() }], expected: [{ effect: { kind: 'fs', op: { op: 'mfmt', path: '/f', mtime: Date.UTC(2024, 0, 2, 3, 4, 5) / 1000 } } }, '213 Modify=20240102030405; /f'] },
    { title: 'MFMT with a bad time: 501', setup: loggedIn, events: [{ client: 'MFMT 2024 f' }, { client: 'MFMT 20240102030405' }], expected: Array(2).fill('501 Syntax error in parameters or arguments: MFMT takes YYYYMMDDHHMMSS and a path.') },
    { title: 'MKD: 257 with the new path', setup: loggedIn, events: [{ client: 'MKD new dir' }, { fs: ok() }], expected: [{ effect: { kind: 'fs', op: { op: 'mkdir', path: '/new dir' } } }, '257 "/new dir" created.'] },
    { title: 'MKD of something that exists: 550', setup: loggedIn, events: [{ client: 'XMKD d' }, { fs: { ok: false, kind: 'failure' } }], expected: [{ effect: { kind: 'fs' } }, '550 Requested action not taken (the SSH server reported a failure).'] },
    { title: 'RMD and DELE', setup: loggedIn, events: [{ client: 'RMD d' }, { fs: ok() }, { client: 'DELE f' }, { fs: ok() }], expected: [{ effect: { kind: 'fs', op: { op: 'rmdir', path: '/d' } } }, '250 Remove directory operation successful.', { effect: { kind: 'fs', op: { op: 'delete', path: '/f' } } }, '250 Delete operation successful.'] },
    { title: 'the top directory itself cannot be removed or renamed', setup: loggedIn, events: [{ client: 'RMD /' }, { client: 'DELE ..' }, { client: 'RNFR /' }], expected: Array(3).fill('550 Permission denied: not allowed on the top directory.') },
    {
      title: 'RNFR then RNTO',
      setup: loggedIn,
      events: [{ client: 'RNFR a' }, { fs: ok({ entry: entry(FILE) }) }, { client: 'RNTO b' }, { fs: ok() }],
      expected: [{ effect: { kind: 'fs', op: { op: 'rnfr', path: '/a' } } }, '350 Ready for RNTO.', { effect: { kind: 'fs', op: { op: 'rnto', from: '/a', to: '/b' } } }, '250 Rename successful.'],
    },
    { title: 'RNTO without RNFR: 503', setup: loggedIn, events: [{ client: 'RNTO b' }], expected: ['503 Bad sequence of commands: send RNFR first.'] },
    { title: 'RNTO must follow RNFR at once', setup: loggedIn, events: [{ client: 'RNFR a' }, { fs: ok({ entry: entry(FILE) }) }, { client: 'NOOP' }, { client: 'RNTO b' }], expected: [{ effect: { kind: 'fs' } }, '350 Ready for RNTO.', '200 NOOP ok.', '503 Bad sequence of commands: send RNFR first.'] },
    { title: 'RNFR of a missing file: 550, and no RNTO', setup: loggedIn, events: [{ client: 'RNFR a' }, { fs: { ok: false, kind: 'no-such-file' } }, { client: 'RNTO b' }], expected: [{ effect: { kind: 'fs' } }, '550 No such file or directory.', '503 Bad sequence of commands: send RNFR first.'] },
    { title: 'SITE CHMOD', setup: loggedIn, events: [{ client: 'SITE CHMOD 640 my file' }, { fs: ok() }], expected: [{ effect: { kind: 'fs', op: { op: 'chmod', path: '/my file', mode: 0o640 } } }, '200 SITE CHMOD command ok.'] },
    { title: 'SITE CHMOD with a bad mode: 501', setup: loggedIn, events: [{ client: 'SITE CHMOD 999 f' }, { client: 'SITE CHMOD 644' }], expected: Array(2).fill('501 Syntax error in parameters or arguments: SITE CHMOD takes an octal mode and a path.') },
    { title: 'other SITE commands: 502', setup: loggedIn, events: [{ client: 'SITE EXEC ls' }, { client: 'SITE HELP' }], expected: ['502 SITE command not implemented; SITE CHMOD and SITE HELP are.', '214 SITE commands: CHMOD HELP'] },
    { title: 'a path that is not UTF-8: 553', setup: loggedIn, events: [{ client: 'DELE caf\xe9' }], expected: [REPLIES.notUtf8] },
    { title: 'a path with a doubled IAC is still not UTF-8: 553', setup: loggedIn, events: [{ client: 'DELE a\xff\xff' }], expected: [REPLIES.notUtf8] },
    { title: 'UTF-8 names pass', setup: loggedIn, events: [{ client: 'DELE gr\xc3\xbc\xc3\x9fe' }], expected: [{ effect: { kind: 'fs', op: { op: 'delete', path: '/grüße' } } }] },
    { title: 'a command that needs a path, without one: 501', setup: loggedIn, events: [{ client: 'DELE' }, { client: 'RETR' }, { client: 'SIZE' }], expected: ['501 Syntax error in parameters or arguments: a path name is required.', '501 Syntax error in parameters or arguments: RETR takes a file name.', '501 Syntax error in parameters or arguments: a path name is required.'] },
    { title: 'the SSH connection lost during a file command: 421 and close', setup: loggedIn, events: [{ client: 'MKD x' }, { fs: { ok: false, kind: 'connection-lost' } }], expected: [{ effect: { kind: 'fs' } }, REPLIES.sessionLost, { effect: { kind: 'close' } }] },
    { title: 'an SFTP server that does not answer: 451', setup: loggedIn, events: [{ client: 'MDTM x' }, { fs: { ok: false, kind: 'timeout' } }], expected: [{ effect: { kind: 'fs' } }, '451 The SSH server did not answer in time.'] },
    {
      title: 'STAT of a path: 213 with ls lines',
      setup: loggedIn,
      events: [{ client: 'STAT -l /' }, { fs: ok({ entry: entry(DIR), entries: [{ ...entry(FILE), name: 'a' }], truncated: false }) }],
      expected: [{ effect: { kind: 'fs', op: { op: 'stat', path: '/' } } }, '213-Status of /:\r\n -rw-r--r--    1 0        0                1234 Jan  2  2024 a\r\n213 End of status'],
    },
  ]);

  it('replies to outcomes that were not asked for are a programming error', () => {
    const protocol = new BridgeProtocol(OPTIONS);
    assert.throws(() => protocol.loginSucceeded('/'), /login/);
    assert.throws(() => protocol.fsDone({ op: 'cwd', path: '/' }, { ok: true }), /fs/);
  });
});
