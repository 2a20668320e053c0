import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { prettyLine, type LogRecord } from '../../src/logging/prettyLines.js';
import { formatBytes, formatDuration, formatRate } from '../../src/logging/units.js';

/** 08:17:08 today, local time: the pretty format shows local time. */
const AT = new Date(2024, 4, 17, 8, 17, 8).getTime();
const PLAIN = { colors: false, serverReplies: false };

describe('human units', () => {
  const bytes: Array<[number, string]> = [
    [0, '0 B'],
    [3, '3 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [1024 * 1024 - 1, '1.0 MiB'],
    [5 * 1024 * 1024, '5.0 MiB'],
    [20 * 1024 ** 3, '20.0 GiB'],
    [3 * 1024 ** 4, '3.0 TiB'],
  ];
  for (const [input, expected] of bytes) it(`${input} bytes: ${expected}`, () => assert.equal(formatBytes(input), expected));

  const rates: Array<[number, string]> = [
    [0, '0 B/s'],
    [949, '949 B/s'],
    [999, '1.0 kB/s'],
    [51_200, '51.2 kB/s'],
    [999_999, '1.0 MB/s'],
    [(5 * 1024 * 1024 * 1000) / 47, '111.6 MB/s'],
    [2.5e9, '2.5 GB/s'],
  ];
  for (const [input, expected] of rates) it(`${input} B/s: ${expected}`, () => assert.equal(formatRate(input), expected));

  const durations: Array<[number, string]> = [
    [0, '0 ms'],
    [47, '47 ms'],
    [999.6, '1.0 s'],
    [1_234, '1.2 s'],
    [9_960, '10 s'],
    [59_600, '1 min'],
    [125_000, '2 min 5 s'],
    [3_600_000, '1 h'],
    [3 * 3_600_000 + 12 * 60_000 + 5_000, '3 h 12 min'],
    [52 * 3_600_000, '2 d 4 h'],
  ];
  for (const [input, expected] of durations) it(`${input} ms: ${expected}`, () => assert.equal(formatDuration(input), expected));
});

describe('prettyLine: one line per record', () => {
  const cases: Array<{ title: string; record: LogRecord; expected: string | null; serverReplies?: boolean }> = [
    {
      title: 'a download, with its time and rate',
      record: { level: 30, time: AT, session: 1, data: 1, mode: 'passive', command: 'RETR 5m.bin', direction: 'download', bytesToServer: 0, bytesToClient: 5_242_880, durationMs: 47, rateMBps: 111.6, msg: 'transfer done' },
      expected: '08:17:08 #1 RETR 5m.bin ↓ 5.0 MiB in 47 ms (111.6 MB/s)',
    },
    {
      title: 'a tiny upload: the bytes only',
      record: { level: 30, time: AT, session: 2, command: 'STOR hostname', direction: 'upload', bytesToServer: 3, bytesToClient: 0, durationMs: 4, rateMBps: 0, msg: 'transfer done' },
      expected: '08:17:08 #2 STOR hostname ↑ 3 B',
    },
    {
      title: 'a small transfer that took long: its time, no rate',
      record: { level: 30, time: AT, session: 2, command: 'LIST', direction: 'download', bytesToServer: 0, bytesToClient: 812, durationMs: 2_500, msg: 'transfer done' },
      expected: '08:17:08 #2 LIST ↓ 812 B in 2.5 s',
    },
    {
      title: 'an empty upload',
      record: { level: 30, time: AT, session: 2, command: 'STOR empty', direction: 'none', bytesToServer: 0, bytesToClient: 0, durationMs: 3, msg: 'transfer done' },
      expected: '08:17:08 #2 STOR empty ↑ 0 B',
    },
    {
      title: 'a data connection that carried nothing and no command',
      record: { level: 30, time: AT, session: 3, direction: 'none', bytesToServer: 0, bytesToClient: 0, durationMs: 3, msg: 'transfer done' },
      expected: '08:17:08 #3 data connection closed unused',
    },
    {
      title: 'a failed transfer is a warning, with its reason',
      record: { level: 40, time: AT, session: 4, command: 'RETR big.iso', direction: 'download', bytesToServer: 0, bytesToClient: 2 * 1024 * 1024, durationMs: 1_000, reason: 'local socket closed before all data reached it', msg: 'transfer failed' },
      expected: '08:17:08 #4 warning: RETR big.iso failed after ↓ 2.0 MiB in 1.0 s (2.1 MB/s): local socket closed before all data reached it',
    },
    {
      title: 'progress of a long transfer',
      record: { level: 30, time: AT, session: 1, command: 'RETR big.iso', direction: 'download', bytesToServer: 0, bytesToClient: 1.1 * 1024 ** 3, elapsedMs: 10_003, bytesPerSecond: 110_300_000, msg: 'transfer progress' },
      expected: '08:17:08 #1 RETR big.iso ↓ 1.1 GiB so far in 10 s (110.3 MB/s now)',
    },
    {
      title: 'a session closed by the client',
      record: { level: 30, time: AT, session: 1, reason: 'client closed the connection', durationMs: 139, dataConnections: 1, transfers: 1, msg: 'session closed' },
      expected: '08:17:08 #1 closed by client after 139 ms, 1 transfer',
    },
    {
      title: 'a session closed for another reason',
      record: { level: 30, time: AT, session: 7, reason: 'idle timeout', durationMs: 1_800_000, transfers: 0, msg: 'session closed' },
      expected: '08:17:08 #7 closed (idle timeout) after 30 min, 0 transfers',
    },
    {
      title: 'the start: SSH and the listeners in one line',
      record: {
        level: 30,
        time: AT,
        ssh: 'acc@10.231.1.1:22',
        jumpHosts: [],
        cipher: 'aes128-gcm@openssh.com',
        listeners: [{ listen: '127.0.0.1:2121', ftp: '10.231.2.2:21', activeStrategy: 'convert' }],
        msg: 'forwarder ready',
      },
      expected: '08:17:08 connected to acc@10.231.1.1:22 (aes128-gcm@openssh.com), listening on 127.0.0.1:2121 → 10.231.2.2:21, active mode: converted to passive',
    },
    {
      title: 'the start through a jump host, two listeners',
      record: {
        level: 30,
        time: AT,
        ssh: 'acc@bastion:22',
        jumpHosts: ['me@jump:22'],
        cipher: 'chacha20-poly1305@openssh.com',
        listeners: [
          { listen: '127.0.0.1:2121', ftp: 'localhost:21', activeStrategy: 'forward' },
          { listen: '127.0.0.1:2122', ftp: 'ftp.internal:21', activeStrategy: 'convert' },
        ],
        msg: 'forwarder ready',
      },
      expected:
        '08:17:08 connected to acc@bastion:22 via me@jump:22 (chacha20-poly1305@openssh.com), listening on 127.0.0.1:2121 → localhost:21, active mode: through a remote forward, ' +
        'listening on 127.0.0.1:2122 → ftp.internal:21, active mode: converted to passive',
    },
    { title: "what 'forwarder ready' shows has no line of its own", record: { level: 30, time: AT, ssh: 'a@b:22', msg: 'SSH connection established' }, expected: null },
    { title: 'nor has each listener', record: { level: 30, time: AT, listen: '127.0.0.1:2121', msg: 'listening' }, expected: null },
    { title: 'a command (-v)', record: { level: 20, time: AT, session: 1, command: 'RETR 5m.bin', msg: 'client command' }, expected: '08:17:08 #1 > RETR 5m.bin' },
    { title: 'a reply (-v)', record: { level: 20, time: AT, session: 1, reply: '226 Transfer complete.', msg: 'reply to client' }, expected: '08:17:08 #1 < 226 Transfer complete.' },
    { title: "the server's own reply: only at trace level", record: { level: 20, time: AT, session: 1, reply: '227 (10,0,0,5,4,1)', msg: 'server reply' }, expected: null },
    { title: "the server's own reply at trace level", serverReplies: true, record: { level: 20, time: AT, session: 1, reply: '227 (10,0,0,5,4,1)', msg: 'server reply' }, expected: '08:17:08 #1 << 227 (10,0,0,5,4,1) (from the server)' },
    {
      title: 'the totals at exit',
      record: { level: 30, time: AT, reason: 'closed', sessions: 3, refusedSessions: 1, transfers: 4, failedTransfers: 0, bytesToServer: 3, bytesToClient: 5_242_880, msg: 'forwarder stopped' },
      expected: '08:17:08 stopped: 3 sessions (1 refused), 4 transfers, ↓ 5.0 MiB ↑ 3 B',
    },
    {
      title: 'the totals when SSH was lost',
      record: { level: 30, time: AT, reason: 'SSH connection lost', sessions: 1, refusedSessions: 0, transfers: 1, failedTransfers: 1, bytesToServer: 0, bytesToClient: 0, msg: 'forwarder stopped' },
      expected: '08:17:08 stopped (SSH connection lost): 1 session, 1 transfer (1 failed), ↓ 0 B ↑ 0 B',
    },
    {
      title: 'any other record: its message and fields, on one line',
      record: { level: 40, time: AT, session: 2, data: 3, mode: 'passive', reason: 'open failed', serverPort: 40001, msg: 'passive data channel could not be opened' },
      expected: '08:17:08 #2 warning: passive data channel could not be opened (reason: open failed, serverPort: 40001)',
    },
    {
      title: 'an error object shows its message',
      record: { level: 50, time: AT, err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x (y.js:1:1)' }, msg: 'internal error' },
      expected: '08:17:08 error: internal error (err: boom)',
    },
    {
      title: 'the SSH link in a status report',
      record: { level: 30, time: AT, ssh: 'acc@host:22', state: 'up', upSince: AT - 125_000, reconnects: 1, keepaliveRoundTripMs: 12, cipher: 'aes128-gcm@openssh.com', msg: 'status: SSH' },
      expected: '08:17:08 status: SSH connection to acc@host:22 (aes128-gcm@openssh.com) up since 08:15:03 (2 min 5 s), 1 reconnect, last keepalive answered in 12 ms',
    },
    {
      title: 'the SSH link down in a status report',
      record: { level: 30, time: AT, ssh: 'acc@host:22', state: 'reconnecting', upSince: null, reconnects: 2, keepaliveRoundTripMs: null, cipher: null, msg: 'status: SSH' },
      expected: '08:17:08 status: SSH connection to acc@host:22 is down, reconnecting (2 reconnects so far)',
    },
    {
      title: 'the SSH link closed in a status report (during shutdown)',
      record: { level: 30, time: AT, ssh: 'acc@host:22', state: 'closed', upSince: null, reconnects: 0, keepaliveRoundTripMs: null, cipher: null, msg: 'status: SSH' },
      expected: '08:17:08 status: SSH connection to acc@host:22 closed (0 reconnects before)',
    },
    {
      title: 'the SFTP bridge on a connection of its own',
      record: { level: 30, time: AT, ssh: 'acc@host:22', login: "ftpfwd's own SSH login", root: '/srv', cipher: 'aes128-gcm@openssh.com', msg: 'SFTP bridge ready' },
      expected: "08:17:08 connected to acc@host:22 (aes128-gcm@openssh.com), SFTP bridge with ftpfwd's own SSH login, root /srv",
    },
    {
      title: 'the SFTP bridge where each FTP login is an SSH login',
      record: { level: 30, time: AT, ssh: 'host:22', login: 'each FTP login is an SSH login', root: null, msg: 'SFTP bridge ready' },
      expected: '08:17:08 SFTP bridge to host:22: each FTP login is an SSH login',
    },
    {
      title: 'a transfer in a status report',
      record: { level: 30, time: AT, session: 3, command: 'STOR up.bin', direction: 'upload', bytesToServer: 3 * 1024 * 1024, bytesToClient: 0, elapsedMs: 2_000, bytesPerSecond: 1_500_000, msg: 'status: transfer' },
      expected: '08:17:08 #3 status: STOR up.bin ↑ 3.0 MiB so far in 2.0 s (1.5 MB/s now)',
    },
  ];
  for (const { title, record, expected, serverReplies = false } of cases) {
    it(title, () => assert.equal(prettyLine(record, { ...PLAIN, serverReplies }), expected));
  }
});

describe('prettyLine: what peers send cannot drive the terminal', () => {
  const cases: Array<{ title: string; record: LogRecord; expected: string }> = [
    {
      title: 'an escape sequence in a file name (-v command)',
      record: { level: 20, time: AT, session: 1, command: 'RETR a\u001b]0;owned\u0007.bin', msg: 'client command' },
      expected: '08:17:08 #1 > RETR a\\033]0;owned\\007.bin',
    },
    {
      title: 'a carriage return and a C1 CSI in reply text',
      record: { level: 20, time: AT, session: 1, reply: '550 no\rfake\u009b2J', msg: 'reply to client' },
      expected: '08:17:08 #1 < 550 no\\015fake\\2332J',
    },
    {
      title: 'a newline in a file name cannot start a fake log line',
      record: { level: 30, time: AT, session: 1, command: 'RETR x\n08:17:09 #2 RETR y', direction: 'download', bytesToClient: 1, bytesToServer: 0, durationMs: 1, msg: 'transfer done' },
      expected: '08:17:08 #1 RETR x\\n08:17:09 #2 RETR y ↓ 1 B',
    },
    {
      title: 'a bidirectional override in a reason',
      record: { level: 40, time: AT, session: 1, reason: 'abc\u202edef', msg: 'something refused' },
      expected: '08:17:08 #1 warning: something refused (reason: abc\\u202edef)',
    },
  ];
  for (const { title, record, expected } of cases) it(title, () => assert.equal(prettyLine(record, PLAIN), expected));

  it('with colours, only our own escape sequences reach the terminal', () => {
    const line = prettyLine({ level: 40, time: AT, session: 1, reason: '\u001b[2J', msg: 'odd' }, { colors: true, serverReplies: false })!;
    assert.equal(line, '\u001b[2m08:17:08\u001b[0m \u001b[36m#1\u001b[0m \u001b[33mwarning:\u001b[0m odd (reason: \\033[2J)');
  });
});

describe('createLogger: the pretty format through pino', () => {
  function capture(): { stream: Writable; text(): string } {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString('utf8');
        callback();
      },
    });
    return { stream, text: () => text };
  }

  it('writes one line per record, keeps child bindings and redaction, and drops hidden records', () => {
    const sink = capture();
    const log = createLogger({ level: 'info', format: 'pretty', destination: sink.stream });
    const session = log.child({ session: 5 });
    session.info({ client: '127.0.0.1:40000' }, 'session opened');
    log.info({ ssh: 'a@b:22' }, 'SSH connection established');
    session.warn({ user: 'bob', password: 'hunter2' }, 'FTP login refused');
    session.debug({ command: 'NOOP' }, 'client command');
    const lines = sink.text().split('\n');
    assert.equal(lines.pop(), '', 'the output does not end in a newline');
    assert.equal(lines.length, 2, sink.text());
    assert.match(lines[0]!, /^\d\d:\d\d:\d\d #5 new session from 127\.0\.0\.1:40000$/);
    assert.match(lines[1]!, /^\d\d:\d\d:\d\d #5 warning: FTP login refused \(user: bob, password: \*\*\*\*\)$/);
    assert.doesNotMatch(sink.text(), /hunter2/);
  });

  it('the JSON format is unchanged by it: every field of the record', () => {
    const sink = capture();
    const log = createLogger({ level: 'info', format: 'json', destination: sink.stream });
    log.child({ session: 1 }).info({ command: 'RETR a', bytesToClient: 3 }, 'transfer done');
    const record = JSON.parse(sink.text()) as LogRecord;
    assert.deepEqual({ ...record, time: 0 }, { level: 30, time: 0, session: 1, command: 'RETR a', bytesToClient: 3, msg: 'transfer done' });
  });
});
