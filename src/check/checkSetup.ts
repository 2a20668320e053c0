import { isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { EXIT_CODES, exitCodeFor, FtpfwdError, isFtpfwdError } from '../errors.js';
import { chooseActiveStrategy, prepareSshHops, validateForwarderOptions, type ForwarderOptions, type ForwardSpec } from '../forwarder.js';
import { parseEpsvReply, parsePasvReply } from '../ftp/dataAddresses.js';
import { silentLogger } from '../log.js';
import { formatHostPort, passiveDataHost } from '../net/addresses.js';
import { probeRemoteForward } from '../session/activeProbe.js';
import { connectThroughHops, describeHop } from '../ssh/hops.js';
import type { SshConnection } from '../ssh/sshConnection.js';
import { ControlDialog, lastLine, type FtpReply } from './controlDialog.js';
import { activeProbeHint, channelFailureHint, greetingFailureHint, sshFailureHint, type ChannelPurpose, type ChannelTarget } from './hints.js';

/**
 * `ok`: checked and works. `skipped`: could not be checked, or there was
 * nothing to check. `warning`: does not work as asked, but a normal run
 * goes on without it. `failed`: a normal run would fail here.
 */
export type CheckStatus = 'ok' | 'skipped' | 'warning' | 'failed';

export interface CheckStep {
  /** What was checked: `SSH connection to deploy@bastion:22`. */
  title: string;
  status: CheckStatus;
  durationMs: number;
  /** What was seen: the greeting, the reply, why the step did not succeed. Server text is quoted as sent. */
  detail?: string;
  /** What to change, for the usual causes of a failure or warning. */
  hint?: string;
  /** Why a step failed; the first failed step's error decides the exit code. */
  error?: FtpfwdError;
}

/** ConnectTimeout=0 leaves the SSH handshake to its own limits; every wait of the check still has one. */
const DEFAULT_WAIT_MS = 15_000;
/** QUIT at the end is a courtesy; a server slow to answer it is not worth waiting for. */
const QUIT_WAIT_MS = 2_000;
const DEFAULT_MAX_LINE_LENGTH = 4096;
/** A greeting may be preceded by `120 ready in N minutes`; more than a few of those is a server that never gets ready. */
const MAX_PRELIMINARY_REPLIES = 4;
/** The originator reported to the SSH server for our channels: no local client exists. */
const ORIGIN = { host: '127.0.0.1', port: 0 };

/**
 * Checks a setup step by step, the way a normal run with the same options
 * would use it, without opening a local listener: the SSH connection (jump
 * hosts, host keys, login), then for each forward the control channel, the
 * FTP greeting and a passive data channel (opened and closed, without a
 * login), then the remote forward that active mode would use. Each step is
 * yielded once it is done. A step that others depend on ends the check of
 * what depends on it; independent steps still run.
 */
export async function* checkSetup(options: ForwarderOptions): AsyncGenerator<CheckStep, void, undefined> {
  validateForwarderOptions(options);
  const log = options.logger ?? silentLogger();
  const connected = await connectStep(options, log);
  yield connected.step;
  if (connected.ssh === null) return;
  const { ssh, waitMs } = connected;
  try {
    for (const forward of options.forwards) yield* forwardSteps(ssh, forward, options, waitMs);
    yield await activeModeStep(ssh, options, waitMs);
  } finally {
    ssh.close();
  }
}

/** The exit code of a finished check: that of its first failed step, 0 when none failed. */
export function checkExitCode(steps: readonly CheckStep[]): number {
  const failed = steps.find((step) => step.status === 'failed');
  if (failed === undefined) return EXIT_CODES.ok;
  return failed.error === undefined ? EXIT_CODES.failure : exitCodeFor(failed.error);
}

type Finish = (status: CheckStatus, fields?: { detail?: string; hint?: string | undefined; error?: FtpfwdError }) => CheckStep;

/** Starts a step's clock; the function it returns makes the step. */
function startStep(title: string): Finish {
  const started = performance.now();
  return (status, fields = {}) => {
    const step: CheckStep = { title, status, durationMs: Math.round(performance.now() - started) };
    const detail = fields.detail ?? fields.error?.message;
    if (detail !== undefined) step.detail = detail;
    if (fields.hint !== undefined) step.hint = fields.hint;
    if (fields.error !== undefined) step.error = fields.error;
    return step;
  };
}

function ftpError(message: string): FtpfwdError {
  return new FtpfwdError('ERR_FTPFWD_FTP', message);
}

async function connectStep(options: ForwarderOptions, log: Logger): Promise<{ step: CheckStep; ssh: SshConnection | null; waitMs: number }> {
  const jumps = options.ssh.jumpHosts ?? [];
  const finish = startStep(`SSH connection to ${describeHop(options.ssh)}${jumps.length > 0 ? ` via ${jumps.map(describeHop).join(', ')}` : ''}`);
  try {
    const hops = await prepareSshHops(options, log);
    const connectTimeoutMs = hops.at(-1)?.connectTimeoutMs ?? 0;
    const ssh = await connectThroughHops(hops, log);
    return { step: finish('ok'), ssh, waitMs: connectTimeoutMs > 0 ? connectTimeoutMs : DEFAULT_WAIT_MS };
  } catch (error) {
    if (!isFtpfwdError(error)) throw error;
    const hint = sshFailureHint(error, { agent: options.ssh.agentSocket !== undefined, canPrompt: options.prompt !== undefined });
    return { step: finish('failed', { error, hint }), ssh: null, waitMs: 0 };
  }
}

async function* forwardSteps(ssh: SshConnection, forward: ForwardSpec, options: ForwarderOptions, waitMs: number): AsyncGenerator<CheckStep, void, undefined> {
  const { ftpHost, ftpPort } = forward;
  const finish = startStep(`FTP control channel to ${formatHostPort(ftpHost, ftpPort)}`);
  let dialog: ControlDialog;
  try {
    dialog = new ControlDialog(await ssh.openDirectTcpip(ORIGIN, ftpHost, ftpPort, waitMs), options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH);
  } catch (error) {
    yield channelFailed(finish, error, 'control', { host: ftpHost, port: ftpPort, ftpHost, ftpPort });
    return;
  }
  try {
    yield finish('ok');
    const greeting = await greetingStep(dialog, forward, waitMs);
    yield greeting;
    if (greeting.status === 'failed') return;
    yield await passiveStep(ssh, dialog, forward, options, waitMs);
    dialog.send('QUIT');
    await dialog.next(Math.min(waitMs, QUIT_WAIT_MS));
  } finally {
    dialog.close();
  }
}

function channelFailed(finish: Finish, error: unknown, purpose: ChannelPurpose, target: ChannelTarget): CheckStep {
  if (!isFtpfwdError(error)) throw error;
  return finish('failed', { error, hint: channelFailureHint(error, purpose, target) });
}

async function greetingStep(dialog: ControlDialog, forward: ForwardSpec, waitMs: number): Promise<CheckStep> {
  const where = formatHostPort(forward.ftpHost, forward.ftpPort);
  const finish = startStep(`FTP greeting from ${where}`);
  const deadline = performance.now() + waitMs;
  for (let replies = 0; replies <= MAX_PRELIMINARY_REPLIES; replies += 1) {
    const next = await dialog.next(Math.max(1, Math.round(deadline - performance.now())));
    if (!next.ok) {
      const message = next.failure === 'timeout' ? `no FTP greeting from ${where} within ${waitMs} ms` : `no FTP greeting from ${where}: ${next.reason}`;
      return finish('failed', { error: ftpError(message), hint: greetingFailureHint(next.failure, forward.ftpHost, forward.ftpPort) });
    }
    const { reply } = next;
    if (reply.code === 220) return finish('ok', { detail: lastLine(reply) });
    if (reply.code >= 200) {
      return finish('failed', { error: ftpError(`the FTP server at ${where} refused the session: ${lastLine(reply)}`), hint: greetingFailureHint('refused', forward.ftpHost, forward.ftpPort) });
    }
  }
  return finish('failed', { error: ftpError(`the FTP server at ${where} sent ${MAX_PRELIMINARY_REPLIES + 1} preliminary replies and no greeting`) });
}

type PassiveVerb = 'PASV' | 'EPSV';

/** The data port a 227 or 229 reply names, looked for on its first and its last line. */
function passiveAddress(verb: PassiveVerb, reply: FtpReply): { ok: true; host: string | null; port: number } | { ok: false; reason: string } {
  const parse = verb === 'PASV' ? parsePasvReply : parseEpsvReply;
  let reason = 'no reply line';
  for (const line of new Set([reply.lines[0] ?? '', lastLine(reply)])) {
    const parsed = parse(line);
    if (parsed.ok) return { ok: true, host: parsed.value.host, port: parsed.value.port };
    reason = parsed.reason;
  }
  return { ok: false, reason };
}

/**
 * A passive data channel, set up as a transfer would set it up: PASV (EPSV
 * first for an IPv6 FTP host, since PASV cannot carry IPv6), the other verb
 * when the first is refused, then a channel to the data port the reply
 * names, closed again at once. Without a login many servers answer 530:
 * then the data path cannot be checked, and the step says so.
 */
async function passiveStep(ssh: SshConnection, dialog: ControlDialog, forward: ForwardSpec, options: ForwarderOptions, waitMs: number): Promise<CheckStep> {
  const { ftpHost, ftpPort } = forward;
  const finish = startStep(`passive data channel for ${formatHostPort(ftpHost, ftpPort)}`);
  const verbs: PassiveVerb[] = isIPv6(ftpHost) ? ['EPSV', 'PASV'] : ['PASV', 'EPSV'];
  const refusals: string[] = [];
  for (const verb of verbs) {
    dialog.send(verb);
    const next = await dialog.next(waitMs);
    if (!next.ok) return finish('failed', { error: ftpError(`no answer to ${verb}: ${next.reason}`) });
    const { reply } = next;
    if (reply.code === 530) return finish('skipped', { detail: `the server wants a login first (${lastLine(reply)})` });
    const expected = verb === 'PASV' ? 227 : 229;
    if (reply.code !== expected) {
      refusals.push(`${verb}: ${lastLine(reply)}`);
      continue;
    }
    const address = passiveAddress(verb, reply);
    if (!address.ok) return finish('failed', { error: ftpError(`the ${expected} reply names no usable data port (${address.reason}): ${lastLine(reply)}`) });
    const target = passiveDataHost(ftpHost, address.host, options.honourPassiveAddress ?? false);
    try {
      (await ssh.openDirectTcpip(ORIGIN, target.host, address.port, waitMs)).destroy();
    } catch (error) {
      return channelFailed(finish, error, 'data', { host: target.host, port: address.port, ftpHost, ftpPort });
    }
    const note = target.replyAddressRefused ? ' (the reply named a special-purpose address, so the FTP host was used)' : '';
    return finish('ok', { detail: `${verb}: ${expected}, channel to ${formatHostPort(target.host, address.port)} opened and closed${note}` });
  }
  return finish('warning', { detail: `the server refused passive mode without a login (${refusals.join('; ')}), so the data path could not be checked` });
}

/** The remote forward active mode would use (see chooseActiveStrategy and probeRemoteForward). */
async function activeModeStep(ssh: SshConnection, options: ForwarderOptions, waitMs: number): Promise<CheckStep> {
  if (!options.forwards.some((forward) => chooseActiveStrategy(options, forward) === 'forward')) {
    return startStep('active mode (PORT/EPRT)')('skipped', { detail: 'converted to passive upstream, so no remote forward is needed' });
  }
  const address = options.activeAddress ?? '127.0.0.1';
  const finish = startStep(`remote forward on ${address} for active mode`);
  const probe = await probeRemoteForward(ssh, address, waitMs);
  if (probe.ok) return finish('ok');
  const forced = options.activeMode === 'forward';
  const hint = activeProbeHint(probe.failure, address, forced);
  if (forced) return finish('failed', { error: new FtpfwdError('ERR_FTPFWD_FORWARD_REFUSED', `active mode through a remote forward cannot work: ${probe.reason}`), hint });
  return finish('warning', { detail: `${probe.reason}; PORT/EPRT will be converted to passive upstream instead`, hint });
}
