import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { checkExitCode, type CheckStep } from '../../src/check/checkSetup.js';
import { ControlDialog, type NextReply } from '../../src/check/controlDialog.js';
import { activeProbeHint, channelFailureHint, greetingFailureHint, sshFailureHint, type AuthContext } from '../../src/check/hints.js';
import { formatCheckStep, formatCheckSummary } from '../../src/cli/check.js';
import { FtpfwdError, type FtpfwdErrorCode } from '../../src/errors.js';

const step = (fields: Partial<CheckStep> & Pick<CheckStep, 'status'>): CheckStep => ({ title: 'FTP greeting from ftp.internal:21', durationMs: 12, ...fields });

describe('formatCheckStep: one line per step, then its hint', () => {
  const cases: Array<{ title: string; step: CheckStep; expected: string }> = [
    {
      title: 'an ok step with nothing more to say',
      step: step({ title: 'SSH connection to deploy@bastion:22', status: 'ok', durationMs: 120 }),
      expected: 'ftpfwd: check: SSH connection to deploy@bastion:22 ... ok (120 ms)\n',
    },
    {
      title: 'what was seen follows the time',
      step: step({ status: 'ok', detail: '220 (vsFTPd 3.0.3)' }),
      expected: 'ftpfwd: check: FTP greeting from ftp.internal:21 ... ok (12 ms): 220 (vsFTPd 3.0.3)\n',
    },
    {
      title: 'a hint goes on a line of its own',
      step: step({ status: 'failed', detail: 'no FTP greeting', hint: 'is it the FTP port?' }),
      expected: 'ftpfwd: check: FTP greeting from ftp.internal:21 ... failed (12 ms): no FTP greeting\nftpfwd: check:   hint: is it the FTP port?\n',
    },
    {
      title: "a server's escape sequences and line breaks are shown, not obeyed",
      step: step({ status: 'ok', detail: '220 \u001b[2Jhello\nftpfwd: check: fake ... ok' }),
      expected: 'ftpfwd: check: FTP greeting from ftp.internal:21 ... ok (12 ms): 220 \\033[2Jhello\\nftpfwd: check: fake ... ok\n',
    },
  ];
  for (const { title, step: input, expected } of cases) {
    it(title, () => assert.equal(formatCheckStep(input), expected));
  }
});

describe('formatCheckSummary and checkExitCode', () => {
  const refused = new FtpfwdError('ERR_FTPFWD_FORWARD_REFUSED', 'refused');
  const unknownKey = new FtpfwdError('ERR_FTPFWD_HOST_KEY_UNKNOWN', 'unknown');
  const cases: Array<{ title: string; steps: CheckStep[]; summary: string; exitCode: number }> = [
    { title: 'all ok', steps: [step({ status: 'ok' }), step({ status: 'ok' })], summary: 'ftpfwd: check: passed (2 ok)\n', exitCode: 0 },
    { title: 'a skipped step still passes', steps: [step({ status: 'ok' }), step({ status: 'skipped' })], summary: 'ftpfwd: check: passed (1 ok, 1 skipped)\n', exitCode: 0 },
    { title: 'a warning passes, and says so', steps: [step({ status: 'ok' }), step({ status: 'warning' })], summary: 'ftpfwd: check: passed with warnings (1 ok, 1 warning)\n', exitCode: 0 },
    {
      title: 'the first failure decides the exit code',
      steps: [step({ status: 'ok' }), step({ status: 'failed', error: refused }), step({ status: 'failed', error: unknownKey })],
      summary: 'ftpfwd: check: failed (1 ok, 2 failed); exit code 8\n',
      exitCode: 8,
    },
    { title: 'an FTP-level failure is exit 10', steps: [step({ status: 'failed', error: new FtpfwdError('ERR_FTPFWD_FTP', 'no greeting') })], summary: 'ftpfwd: check: failed (1 failed); exit code 10\n', exitCode: 10 },
  ];
  for (const { title, steps, summary, exitCode } of cases) {
    it(title, () => {
      assert.equal(formatCheckSummary(steps), summary);
      assert.equal(checkExitCode(steps), exitCode);
    });
  }
});

describe('hints for the usual failures', () => {
  const noAgent: AuthContext = { agent: false, canPrompt: true };
  const sshCases: Array<{ code: FtpfwdErrorCode; details?: Record<string, string | boolean>; auth?: AuthContext; has: RegExp[]; hasNot?: RegExp[] }> = [
    { code: 'ERR_FTPFWD_HOST_KEY_UNKNOWN', details: { keyType: 'ssh-ed25519' }, has: [/ssh_host_ed25519_key\.pub/, /StrictHostKeyChecking=accept-new/] },
    { code: 'ERR_FTPFWD_HOST_KEY_UNKNOWN', details: { keyType: 'ecdsa-sha2-nistp256' }, has: [/ssh_host_ecdsa_key\.pub/] },
    { code: 'ERR_FTPFWD_HOST_KEY_UNKNOWN', details: { keyType: 'rsa-sha2-512' }, has: [/ssh_host_rsa_key\.pub/] },
    { code: 'ERR_FTPFWD_HOST_KEY_CHANGED', has: [/intercepted/] },
    { code: 'ERR_FTPFWD_HOST_KEY_REVOKED', has: [/@revoked/] },
    { code: 'ERR_FTPFWD_AUTH', auth: noAgent, has: [/authorized_keys/, /SSH_AUTH_SOCK is not set/], hasNot: [/BatchMode/] },
    { code: 'ERR_FTPFWD_AUTH', auth: { agent: true, canPrompt: false }, has: [/ssh-add -l/, /BatchMode=yes/, /--passphrase-file/], hasNot: [/SSH_AUTH_SOCK/] },
    { code: 'ERR_FTPFWD_CONNECT', has: [/sshd runs there/] },
    { code: 'ERR_FTPFWD_CONNECT', details: { viaJumpHost: true, channelOpenFailure: 'administratively prohibited' }, has: [/jump host forbids forwarding/, /AllowTcpForwarding/] },
    { code: 'ERR_FTPFWD_CONNECT', details: { viaJumpHost: true, channelOpenFailure: 'connect failed' }, has: [/jump host cannot connect to the next hop/] },
    { code: 'ERR_FTPFWD_TIMEOUT', has: [/ConnectTimeout/] },
    { code: 'ERR_FTPFWD_RESOLVE', has: [/HostName/] },
  ];
  for (const { code, details, auth, has, hasNot } of sshCases) {
    it(`SSH: ${code}${details === undefined ? '' : ` ${JSON.stringify(details)}`}${auth === undefined ? '' : ` ${JSON.stringify(auth)}`}`, () => {
      const hint = sshFailureHint(new FtpfwdError(code, 'x', details === undefined ? {} : { details }), auth ?? noAgent) ?? '';
      for (const pattern of has) assert.match(hint, pattern);
      for (const pattern of hasNot ?? []) assert.doesNotMatch(hint, pattern);
    });
  }

  it('SSH: no hint for a failure that has none', () => {
    assert.equal(sshFailureHint(new FtpfwdError('ERR_FTPFWD_LISTEN', 'x'), noAgent), undefined);
  });

  const refused = (failure: string): FtpfwdError => new FtpfwdError('ERR_FTPFWD_FORWARD_REFUSED', 'x', { details: { channelOpenFailure: failure } });
  const forward = { ftpHost: 'ftp.internal', ftpPort: 21 };
  const channelCases: Array<{ title: string; hint: string | undefined; has: RegExp[] }> = [
    {
      title: 'control channel, administratively prohibited: AllowTcpForwarding and PermitOpen',
      hint: channelFailureHint(refused('administratively prohibited'), 'control', { host: 'ftp.internal', port: 21, ...forward }),
      has: [/AllowTcpForwarding yes or local/, /PermitOpen \(when set\) must name ftp\.internal:21/],
    },
    {
      title: 'data channel, administratively prohibited: PermitOpen must name the passive ports',
      hint: channelFailureHint(refused('administratively prohibited'), 'data', { host: 'ftp.internal', port: 40001, ...forward }),
      has: [/passive port ftp\.internal:40001/, /PermitOpen ftp\.internal:21 ftp\.internal:\*/],
    },
    {
      title: 'an IPv6 data host is bracketed in the PermitOpen example',
      hint: channelFailureHint(refused('administratively prohibited'), 'data', { host: 'fd00::2', port: 40001, ftpHost: 'fd00::2', ftpPort: 21 }),
      has: [/PermitOpen \[fd00::2\]:21 \[fd00::2\]:\*/],
    },
    {
      title: 'control channel, connect failed: the host and port as the SSH server sees them',
      hint: channelFailureHint(refused('connect failed'), 'control', { host: 'ftp.internal', port: 21, ...forward }),
      has: [/as the SSH server sees them/, /nc -vz ftp\.internal 21/],
    },
    {
      title: 'data channel, connect failed: a firewall that lets only the control port through',
      hint: channelFailureHint(refused('connect failed'), 'data', { host: 'ftp.internal', port: 40001, ...forward }),
      has: [/not its passive port ftp\.internal:40001/, /only port 21 through/],
    },
    {
      title: 'a channel request that timed out',
      hint: channelFailureHint(new FtpfwdError('ERR_FTPFWD_TIMEOUT', 'x'), 'control', { host: 'ftp.internal', port: 21, ...forward }),
      has: [/did not answer the channel request in time/],
    },
  ];
  for (const { title, hint, has } of channelCases) {
    it(title, () => {
      for (const pattern of has) assert.match(hint ?? '', pattern);
    });
  }

  it('channels: no hint for a reason without a usual cause', () => {
    assert.equal(channelFailureHint(refused('resource shortage'), 'control', { host: 'h', port: 21, ...forward }), undefined);
  });

  it('greeting: each failure names its usual causes', () => {
    assert.match(greetingFailureHint('timeout', 'ftp.internal', 21), /sent no FTP greeting.*990/);
    assert.match(greetingFailureHint('closed', 'ftp.internal', 21), /hung up at once/);
    assert.match(greetingFailureHint('refused', 'ftp.internal', 21), /limit of sessions/);
    assert.match(greetingFailureHint('not-ftp', 'ftp.internal', 21), /does not speak FTP/);
  });

  it('active mode: GatewayPorts, or AllowTcpForwarding for a refused forward; the way out depends on --active-mode', () => {
    assert.match(activeProbeHint('not-listening', '10.0.0.1', false), /GatewayPorts clientspecified \(or yes\).*10\.0\.0\.1.*--active-mode convert/);
    assert.match(activeProbeHint('not-returned', '10.0.0.1', true), /GatewayPorts.*leave out --active-mode forward/);
    assert.match(activeProbeHint('refused', '10.0.0.1', false), /AllowTcpForwarding yes or remote.*PermitListen/);
  });
});

/** A stand-in for an SSH channel: what the server sends is pushed in, what we send is recorded. */
function fakeChannel(): { channel: Duplex; sent: string[]; serverSends(text: string): void; serverEnds(): void } {
  const sent: string[] = [];
  const channel = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      sent.push(chunk.toString('latin1'));
      callback();
    },
  });
  return { channel, sent, serverSends: (text) => channel.push(Buffer.from(text, 'latin1')), serverEnds: () => channel.push(null) };
}

describe('ControlDialog: replies from the server, bounded', () => {
  // The dialog's timers are unref'd: over SSH the connection keeps the
  // process alive; here nothing else would.
  let keepAlive: NodeJS.Timeout;
  before(() => {
    keepAlive = setInterval(() => undefined, 1_000);
  });
  after(() => clearInterval(keepAlive));
  const failureOf = (next: NextReply): string => (next.ok ? `a reply: ${JSON.stringify(next.reply)}` : next.failure);

  it('assembles a multi-line reply from chunks that cut anywhere, and sends commands with CRLF', async () => {
    const { channel, sent, serverSends } = fakeChannel();
    const dialog = new ControlDialog(channel, 4096);
    const pending = dialog.next(1_000);
    for (const chunk of ['220-Welc', 'ome\r\n220-to\r', '\n 220 not the end\r\n220 ', 'ready\r\n230 early\r\n']) serverSends(chunk);
    assert.deepEqual(await pending, { ok: true, reply: { code: 220, lines: ['220-Welcome', '220-to', ' 220 not the end', '220 ready'] } });
    assert.deepEqual(await dialog.next(1_000), { ok: true, reply: { code: 230, lines: ['230 early'] } });
    dialog.send('PASV');
    assert.deepEqual(sent, ['PASV\r\n']);
    dialog.close();
  });

  it('times out when nothing comes', async () => {
    const { channel } = fakeChannel();
    const dialog = new ControlDialog(channel, 4096);
    const started = Date.now();
    const next = await dialog.next(50);
    assert.equal(failureOf(next), 'timeout');
    assert.ok(Date.now() - started < 1_000);
    dialog.close();
  });

  it('reports a connection that ends, after the replies that came before it', async () => {
    const { channel, serverSends, serverEnds } = fakeChannel();
    const dialog = new ControlDialog(channel, 4096);
    serverSends('421 Too many users\r\n');
    serverEnds();
    assert.equal((await dialog.next(1_000)).ok, true);
    assert.equal(failureOf(await dialog.next(1_000)), 'closed');
  });

  const hostile: Array<{ title: string; input: string; reason: RegExp }> = [
    { title: 'an SSH banner is not an FTP reply', input: 'SSH-2.0-OpenSSH_9.2p1\r\n', reason: /"SSH-2\.0-OpenSSH_9\.2p1", which is not an FTP reply/ },
    { title: 'a line past the cap', input: `220 ${'x'.repeat(200)}`, reason: /longer than 100 bytes/ },
    { title: 'a multi-line reply that never ends', input: `220-start\r\n${' more\r\n'.repeat(300)}`, reason: /more than 200 lines/ },
    { title: 'a flood of replies nobody asked for', input: '200 ok\r\n'.repeat(40), reason: /more than 16 replies/ },
  ];
  for (const { title, input, reason } of hostile) {
    it(`gives up on ${title}`, async () => {
      const { channel, serverSends } = fakeChannel();
      const dialog = new ControlDialog(channel, 100);
      serverSends(input);
      const next = await dialog.next(1_000);
      assert.equal(failureOf(next), 'not-ftp');
      assert.match(next.ok ? '' : next.reason, reason);
      assert.equal(channel.destroyed, true, 'a server that breaks the protocol is hung up on');
    });
  }
});
