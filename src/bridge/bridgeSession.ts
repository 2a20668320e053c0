import { isIPv4, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { normalizeAddress } from '../net/addresses.js';
import { describeCommandForLog, parseCommandLine, stripTelnetInterrupt } from '../ftp/commands.js';
import { LineBuffer } from '../ftp/lineFramer.js';
import type { DataPeerCheck } from '../session/dataPeer.js';
import { addTransfer, transferDirection, transferRate, type ForwarderStats } from '../session/stats.js';
import { TransferWatch, type SessionStatus } from '../session/transferProgress.js';
import type { LoginFailures } from './credentials.js';
import { connectLocal } from '../session/dataConnections.js';
import { PassiveDataListener } from './dataConnection.js';
import { SessionFiles } from './fileOps.js';
import { fileKind } from './listing.js';
import type { LoginProvider } from './logins.js';
import { toVirtualPath } from './paths.js';
import type { PipelineTuning } from './pipeline.js';
import { BridgeProtocol, type Effect, type PassiveVerb, type Step, type TransferOutcome, type TransferRequest } from './protocol.js';
import type { SftpLease } from './sftpPool.js';
import { runTransfer, type RunningTransfer, type TransferReport } from './transfer.js';
import { errorMessage } from '../errors.js';

export interface BridgeTimeouts {
  /** How long a passive listener waits for its data connection. */
  acceptMs: number;
  /** How long an active data connection or an SSH/SFTP open may take. */
  connectMs: number;
  /** How long a finished socket may take to close by itself. */
  lingerMs: number;
  /** A session with no commands and no transfer for this long is closed; 0: never. */
  idleMs: number;
}

export interface BridgeSessionOptions {
  id: number;
  client: Socket;
  logins: LoginProvider;
  failures: LoginFailures;
  /** `--sftp-root`: the directory sessions are confined to, on the server; null for none. */
  root: string | null;
  atomicUploads: boolean;
  /** `user@host:port` of the SSH server, for STAT. */
  serverDescription: string;
  maxLineLength: number;
  timeouts: BridgeTimeouts;
  tuning: PipelineTuning;
  peerCheck: DataPeerCheck;
  log: Logger;
  stats: ForwarderStats;
  /** How often a transfer under way logs its progress; 0: never. */
  progressIntervalMs: number;
}

/** Lines read ahead of the one being handled before the client is paused. */
const MAX_QUEUED_LINES = 256;
/** Lines one chunk may bring at once; a flood beyond that closes the session. */
const MAX_BUFFERED_LINES = 4096;

/**
 * One FTP client served from SFTP. The session owns the control socket,
 * the SFTP channel it logged in with, the passive listener or active
 * target, and the transfer under way, and releases all of them through
 * one idempotent close(). The protocol decisions are BridgeProtocol's;
 * this class only carries them out.
 */
export class BridgeSession {
  private readonly client: Socket;
  private readonly protocol: BridgeProtocol;
  private readonly lines: LineBuffer;
  private readonly log: Logger;
  private readonly clientAddress: string;
  private readonly queue: Buffer[] = [];
  /** Lines that wait for the running transfer to end. */
  private readonly deferred: Buffer[] = [];
  private pumping = false;
  private paused = false;
  /** The client half-closed: the session ends once what it sent has been answered. */
  private clientEnded = false;
  private lease: SftpLease | null = null;
  private files: SessionFiles | null = null;
  private passive: PassiveDataListener | null = null;
  private transfer: { running: RunningTransfer; request: TransferRequest; sshLost: boolean; watch: TransferWatch } | null = null;
  /** An effect other than a transfer is being carried out. */
  private busy = false;
  private closeReason: string | null = null;
  private idleTimer: NodeJS.Timeout | undefined;
  private loginDelay: NodeJS.Timeout | undefined;
  private onQuiet: (() => void) | null = null;
  private readonly startedAt = Date.now();
  /** Kept from the start: a closed socket no longer knows its peer. */
  private readonly clientName: string;
  private transfers = 0;
  private resolveClosed!: () => void;
  readonly closed = new Promise<void>((resolve) => {
    this.resolveClosed = resolve;
  });

  constructor(private readonly options: BridgeSessionOptions) {
    this.client = options.client;
    this.clientName = `${this.client.remoteAddress}:${this.client.remotePort}`;
    this.log = options.log;
    this.clientAddress = normalizeAddress(this.client.remoteAddress ?? '');
    const local = normalizeAddress(this.client.localAddress ?? '127.0.0.1');
    this.protocol = new BridgeProtocol({
      clientAddress: this.clientAddress,
      family: isIPv4(local) ? 4 : 6,
      minimumActivePort: 1024,
      maxLoginFailures: 3,
      serverDescription: options.serverDescription,
    });
    this.lines = new LineBuffer(options.maxLineLength);
  }

  get isClosed(): boolean {
    return this.closeReason !== null;
  }

  status(): SessionStatus {
    return {
      id: this.options.id,
      client: this.clientName,
      startedAt: this.startedAt,
      transfers: this.transfer ? [this.transfer.watch.status()] : [],
    };
  }

  start(): void {
    const { client } = this;
    client.on('error', (error) => this.close(`client error: ${error.message}`));
    client.on('close', () => this.close('client closed the connection'));
    client.on('end', () => {
      this.clientEnded = true;
      this.closeIfDone();
    });
    client.on('data', (chunk: Buffer) => this.onData(chunk));
    this.log.info({ client: this.clientName }, 'bridge session opened');
    this.send([this.protocol.greeting()]);
    this.touch();
    client.resume();
  }

  private onData(chunk: Buffer): void {
    if (this.isClosed) return;
    this.lines.push(chunk);
    for (let next = this.lines.next(); next.kind !== 'none'; next = this.lines.next()) {
      if (next.kind === 'overflow') {
        this.goodbye(`500 Command line too long (over ${this.options.maxLineLength} bytes); closing.`);
        this.close('client sent a line over the limit');
        return;
      }
      this.queue.push(next.line);
      if (this.queue.length + this.deferred.length > MAX_BUFFERED_LINES) {
        this.goodbye(`421 Too many commands at once (over ${MAX_BUFFERED_LINES}); closing.`);
        this.close('client flooded the control connection');
        return;
      }
    }
    this.touch();
    this.updatePause();
    void this.pump();
  }

  /** Reading stops while many lines wait, and while the client does not read our replies. */
  private updatePause(): void {
    const shouldPause = this.queue.length + this.deferred.length > MAX_QUEUED_LINES || this.client.writableNeedDrain;
    if (shouldPause && !this.paused) {
      this.paused = true;
      this.client.pause();
      if (this.client.writableNeedDrain) this.client.once('drain', () => this.updatePause());
    } else if (!shouldPause && this.paused && !this.isClosed) {
      this.paused = false;
      this.client.resume();
    }
  }

  /**
   * Handles queued lines one at a time, each effect finished before the
   * next line. While a transfer runs, ABOR, STAT and NOOP are answered at
   * once; any other line waits, and so does every line after it except an
   * ABOR, so that replies keep the order of the commands.
   */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.isClosed) {
        let line: Buffer | undefined;
        if (this.transfer) {
          line = this.queue.shift();
          if (line === undefined) break;
          if (this.deferred.length > 0 && !isAbort(line)) {
            this.deferred.push(line);
            continue;
          }
        } else {
          line = this.deferred.shift() ?? this.queue.shift();
          if (line === undefined) break;
        }
        if (this.log.isLevelEnabled('debug')) this.log.debug({ command: describeCommandForLog(parseCommandLine(stripTelnetInterrupt(line))) }, 'client command');
        try {
          const step = this.protocol.onLine(line);
          if (step.defer) {
            this.deferred.push(line);
            continue;
          }
          await this.apply(step);
        } catch (error) {
          this.internalError(error);
          return;
        }
        this.updatePause();
      }
    } finally {
      this.pumping = false;
    }
    this.closeIfDone();
  }

  private closeIfDone(): void {
    if (this.clientEnded && !this.pumping && !this.transfer && this.queue.length === 0 && this.deferred.length === 0) this.close('client closed the connection');
  }

  private async apply(step: Step): Promise<void> {
    this.send(step.replies);
    if (step.effect) await this.perform(step.effect);
    // A PORT/EPRT (or a failed PASV) replaces a passive listener set up before it.
    if (this.passive !== null && this.protocol.dataSetup !== 'passive') this.dropPassive();
  }

  private async perform(effect: Effect): Promise<void> {
    if (this.isClosed) return;
    switch (effect.kind) {
      case 'login':
        return this.busyWith(() => this.login(effect.user, effect.password));
      case 'passive':
        return this.busyWith(() => this.openPassive(effect.verb));
      case 'fs': {
        const files = this.files;
        if (!files) throw new Error('a file operation before login');
        return this.busyWith(async () => {
          const result = await files.run(effect.op);
          if (!this.isClosed) await this.apply(this.protocol.fsDone(effect.op, result));
        });
      }
      case 'transfer':
        return this.startTransfer(effect.transfer);
      case 'abort':
        this.transfer?.running.abort();
        return;
      case 'transfer-status':
        this.send([this.protocol.transferStatus(this.transfer?.running.bytes ?? 0)]);
        return;
      case 'close':
        this.close('session ended');
        return;
    }
  }

  private async busyWith(work: () => Promise<void>): Promise<void> {
    this.busy = true;
    try {
      await work();
    } finally {
      this.busy = false;
    }
  }

  private async login(user: string, password: string): Promise<void> {
    const outcome = await this.options.logins.login(user, password);
    if (this.isClosed) {
      if (outcome.ok) outcome.lease.release();
      return;
    }
    if (!outcome.ok) {
      const delayMs = outcome.reason === 'denied' ? this.options.failures.recordFailure(this.clientAddress, Date.now()) : 0;
      this.log.warn({ user, reason: outcome.detail, delayMs }, outcome.reason === 'denied' ? 'FTP login refused' : 'FTP login could not be served');
      // The delay holds this session's reply only: other sessions go on.
      if (delayMs > 0) await new Promise<void>((resolve) => (this.loginDelay = setTimeout(resolve, delayMs)));
      if (!this.isClosed) await this.apply(this.protocol.loginFailed(outcome.reason));
      return;
    }
    this.lease = outcome.lease;
    const { fs } = outcome.lease;
    let home: string;
    let root = '/';
    try {
      home = await fs.realpath('.');
      if (this.options.root !== null) {
        root = await fs.realpath(this.options.root);
        if (fileKind((await fs.stat(root)).mode) !== 'dir') throw new Error(`${root} is not a directory`);
      }
    } catch (error) {
      this.log.error({ root: this.options.root, reason: errorMessage(error) }, 'the SFTP root cannot be used for this login');
      await this.apply(this.protocol.loginFailed('unavailable'));
      return;
    }
    if (this.isClosed) return;
    this.options.failures.recordSuccess(this.clientAddress);
    this.files = new SessionFiles(fs, root);
    fs.onClose(() => this.onSftpClosed());
    this.log.info({ user, sshUser: outcome.sshUser, root }, 'FTP login');
    await this.apply(this.protocol.loginSucceeded(root === '/' ? home : (toVirtualPath(root, home) ?? '/')));
  }

  /** The SFTP channel (or the SSH connection under it) went away. */
  private onSftpClosed(): void {
    if (this.isClosed) return;
    if (this.transfer) {
      // The transfer reports 426 and the protocol closes with 421.
      this.transfer.sshLost = true;
      this.transfer.running.abort();
      return;
    }
    // A file operation under way fails with connection-lost and closes the session itself.
    if (this.busy) return;
    this.abort('SSH connection lost', 'the SSH connection was lost.');
  }

  private async openPassive(verb: PassiveVerb): Promise<void> {
    this.dropPassive();
    const host = normalizeAddress(this.client.localAddress ?? '127.0.0.1');
    try {
      const listener = await PassiveDataListener.open(host, this.client, this.options.peerCheck, this.options.timeouts.acceptMs, this.log.child({ data: 'passive' }));
      if (this.isClosed) {
        listener.close();
        return;
      }
      this.passive = listener;
      await this.apply(this.protocol.passiveReady(verb, host, listener.port));
    } catch (error) {
      this.log.warn({ reason: errorMessage(error) }, 'could not open a passive data listener');
      await this.apply(this.protocol.passiveFailed());
    }
  }

  private dropPassive(): void {
    this.passive?.close();
    this.passive = null;
  }

  private startTransfer(request: TransferRequest): void {
    const files = this.files;
    if (!files) throw new Error('a transfer before login');
    const listener = request.data.kind === 'passive' ? this.passive : null;
    this.passive = null;
    this.transfers += 1;
    const log = this.log.child({ transfer: this.transfers });
    const target = request.data.kind === 'active' ? request.data.target : null;
    const running = runTransfer({
      files,
      request,
      openData: async () => {
        if (listener) return listener.take();
        if (!target) return null;
        try {
          // From the address the client's control connection reached, as a server would connect back.
          return await connectLocal(target, this.options.timeouts.connectMs, normalizeAddress(this.client.localAddress ?? ''));
        } catch (error) {
          log.warn({ reason: errorMessage(error), port: target.port }, 'could not connect to the client data port');
          return null;
        }
      },
      sendPreliminary: (info) => this.send([this.protocol.transferStarting(info)]),
      atomicUploads: this.options.atomicUploads,
      tuning: this.options.tuning,
      lingerMs: this.options.timeouts.lingerMs,
      log,
    });
    const command = transferCommand(request);
    const watch = new TransferWatch({ command: () => command, bytes: () => running.moved() }, log, this.options.progressIntervalMs);
    const transfer = { running, request, sshLost: false, watch };
    this.transfer = transfer;
    void running.done
      .then(async (report) => {
        watch.stop();
        listener?.close();
        this.transfer = null;
        const outcome: TransferOutcome = transfer.sshLost ? { kind: 'ssh-lost' } : report.outcome;
        this.reportTransfer(request, { ...report, outcome }, log);
        this.touch();
        if (this.isClosed) return;
        await this.apply(this.protocol.transferFinished(outcome));
        this.onQuiet?.();
        void this.pump();
      })
      .catch((error: unknown) => this.internalError(error));
  }

  /** A bug of ours must cost this session, not the process: log it, tell the client, close. */
  private internalError(error: unknown): void {
    this.log.error({ err: error }, 'internal error in a bridge session');
    this.abort('internal error', 'internal error.');
  }

  private reportTransfer(request: TransferRequest, report: TransferReport, log: Logger): void {
    const record = { bytesToClient: report.bytesToClient, bytesToServer: report.bytesToServer, durationMs: report.durationMs, error: report.error };
    addTransfer(this.options.stats, record);
    const fields = {
      command: transferCommand(request),
      direction: transferDirection(record),
      bytesToServer: record.bytesToServer,
      bytesToClient: record.bytesToClient,
      durationMs: record.durationMs,
      rateMBps: transferRate(record),
    };
    if (report.error) log.warn({ ...fields, outcome: report.outcome.kind, reason: report.error }, 'transfer failed');
    else log.info(fields, 'transfer done');
  }

  private send(replies: readonly string[]): void {
    if (this.isClosed || !this.client.writable) return;
    const logged = this.log.isLevelEnabled('debug');
    for (const reply of replies) {
      if (logged) this.log.debug({ reply }, 'reply to client');
      this.client.write(Buffer.from(`${reply}\r\n`, 'utf8'));
    }
  }

  private goodbye(text: string): void {
    this.send([text]);
  }

  private touch(): void {
    const { idleMs } = this.options.timeouts;
    if (idleMs <= 0 || this.isClosed) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.onIdle(), idleMs);
    this.idleTimer.unref();
  }

  private onIdle(): void {
    if (this.transfer) return this.touch();
    this.goodbye(`421 Idle timeout (${Math.round(this.options.timeouts.idleMs / 1000)} s); closing control connection.`);
    this.close('idle timeout');
  }

  /** Ends the session with a 421, e.g. because the SSH connection dropped or ftpfwd stops. */
  abort(reason: string, explanation: string): void {
    if (this.isClosed) return;
    this.goodbye(`421 Service not available, closing control connection: ${explanation}`);
    this.close(reason);
  }

  /** For a graceful stop: waits up to graceMs for the transfer under way to finish and be answered, then a 421. */
  async shutDown(graceMs: number, explanation: string): Promise<void> {
    if (this.isClosed) return;
    if (this.transfer && graceMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        timer.unref();
        const done = (): void => {
          clearTimeout(timer);
          resolve();
        };
        this.onQuiet = done;
        void this.closed.then(done);
      });
    }
    this.abort('ftpfwd shutting down', explanation);
  }

  get transferring(): boolean {
    return this.transfer !== null;
  }

  /** The one way a session ends: every resource it holds is released here. */
  close(reason: string): void {
    if (this.closeReason !== null) return;
    this.closeReason = reason;
    clearTimeout(this.idleTimer);
    clearTimeout(this.loginDelay);
    this.queue.length = 0;
    this.deferred.length = 0;
    this.transfer?.running.abort();
    this.dropPassive();
    const lease = this.lease;
    this.lease = null;
    // A transfer still closing its file needs the channel for a moment longer.
    if (lease) void (this.transfer ? this.transfer.running.done : Promise.resolve()).then(() => lease.release());
    this.client.end();
    const linger = setTimeout(() => this.client.destroy(), this.options.timeouts.lingerMs);
    linger.unref();
    this.client.once('close', () => clearTimeout(linger));
    this.log.info({ reason, durationMs: Date.now() - this.startedAt, transfers: this.transfers }, 'bridge session closed');
    this.resolveClosed();
  }
}

/** The transfer as its log lines name it. */
function transferCommand(request: TransferRequest): string {
  return `${request.command} ${request.path}`;
}

function isAbort(line: Buffer): boolean {
  const command = parseCommandLine(stripTelnetInterrupt(line));
  return command.kind === 'command' && command.verb === 'ABOR';
}
