import { isIPv4 } from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ClientChannel } from 'ssh2';
import { describeCommandForLog, isTransferCommand, parseCommandLine, stripTelnetInterrupt } from '../ftp/commands.js';
import { ControlState, LOCAL_REPLIES, normalizeAddress, type Action, type ActiveStrategy, type Step } from '../ftp/controlState.js';
import { LineFramer, withCrlf } from '../ftp/lineFramer.js';
import type { SshConnection } from '../ssh/sshConnection.js';
import { addTransfer, transferDirection, transferRate, type ForwarderStats } from './stats.js';
import {
  ActiveDataForward,
  connectConvertedActive,
  PassiveDataListener,
  type Closable,
  type DataContext,
  type DataTimeouts,
  type TransferRecord,
} from './dataConnections.js';

export interface SessionTimeouts extends DataTimeouts {
  /** How long the SSH server may take to open the control channel. */
  controlConnectMs: number;
  /** A session with no control traffic and no transfer for this long is closed; 0: never. */
  idleMs: number;
}

export interface SessionOptions {
  id: number;
  client: Socket;
  ssh: SshConnection;
  /** The FTP server, as the SSH server resolves and reaches it. */
  ftpHost: string;
  ftpPort: number;
  activeStrategy: ActiveStrategy;
  /** Where remote forwards are bound for the 'forward' strategy. */
  activeBindAddress: string;
  /** Use the address in a 227 reply instead of the control connection's host. */
  honourPassiveAddress: boolean;
  maxLineLength: number;
  timeouts: SessionTimeouts;
  log: Logger;
  /** Totals shared by all sessions of the forwarder. */
  stats: ForwarderStats;
}

/** Lines waiting while an earlier line's data connection is being set up. */
const MAX_QUEUED_LINES = 256;
/**
 * Commands sent on without their reply yet. Real clients pipeline a few;
 * far more means a client that never reads, and each entry costs memory.
 */
const MAX_PENDING_COMMANDS = 1024;


/**
 * One FTP control connection and everything hanging off it. It owns the
 * client socket, the SSH control channel and every data listener, forward
 * and relay of the session, and closes all of them through one idempotent
 * close(), whichever side ends first.
 */
export class FtpSession {
  private readonly client: Socket;
  private channel: ClientChannel | null = null;
  private readonly state: ControlState;
  private readonly clientLines: LineQueue;
  private readonly serverLines: LineQueue;
  private readonly dataConnections = new Set<Closable>();
  private pendingPassive: PassiveDataListener | null = null;
  /** Whether the SSH side of the latest data connection set-up succeeded. */
  private latestDataSetup: Promise<boolean> | null = null;
  private closeReason: string | null = null;
  private readonly startedAt = Date.now();
  private readonly log: Logger;
  private readonly dataContext: DataContext;
  private dataCount = 0;
  private activeTransfers = 0;
  /** The last RETR/STOR/LIST... seen, named in the transfer's log line. */
  private lastTransferCommand: string | null = null;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Set while shutting down gracefully: checked whenever a transfer ends or a reply arrives. */
  private onQuiet: (() => void) | null = null;
  private resolveClosed!: () => void;
  /** Resolves once the session has ended and everything it owned is closed. */
  readonly closed = new Promise<void>((resolve) => {
    this.resolveClosed = resolve;
  });

  constructor(private readonly options: SessionOptions) {
    this.client = options.client;
    this.log = options.log;
    this.state = new ControlState({
      clientAddress: normalizeAddress(this.client.remoteAddress ?? ''),
      activeStrategy: options.activeStrategy,
      minimumActivePort: 1024,
    });
    this.clientLines = new LineQueue(this.client, options.maxLineLength, (line) => this.onClientLine(line), (kind) => this.onClientFramingError(kind));
    this.serverLines = new LineQueue(null, options.maxLineLength, (line) => this.onServerLine(line), (kind) => this.onServerFramingError(kind));
    this.dataContext = {
      ssh: options.ssh,
      log: this.log,
      timeouts: options.timeouts,
      track: (closable) => {
        this.dataConnections.add(closable);
        return () => this.dataConnections.delete(closable);
      },
      transferStarted: () => this.transferStarted(this.log),
    };
  }

  get isClosed(): boolean {
    return this.closeReason !== null;
  }

  /** Opens the control channel and starts relaying lines. */
  async start(): Promise<void> {
    const { client, options } = this;
    client.pause();
    client.on('error', (error) => this.close(`client error: ${error.message}`));
    client.on('close', () => this.close('client closed the connection'));
    client.on('end', () => void this.clientLines.idle().then(() => this.close('client closed the connection')));
    this.log.info({ client: `${client.remoteAddress}:${client.remotePort}` }, 'session opened');
    let channel: ClientChannel;
    try {
      channel = await options.ssh.openDirectTcpip(this.origin(), options.ftpHost, options.ftpPort, options.timeouts.controlConnectMs);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.sayGoodbye('421 Service not available: the FTP server cannot be reached through the SSH tunnel.');
      this.close(`control channel failed: ${message}`);
      return;
    }
    if (this.isClosed) {
      channel.destroy();
      return;
    }
    this.channel = channel;
    this.touch();
    this.serverLines.attach(channel);
    channel.on('error', (error: Error) => this.close(`SSH channel error: ${error.message}`));
    // Replies still queued (a 221 after QUIT, say) go out before the close.
    const serverGone = (): void => void this.serverLines.idle().then(() => this.close('FTP server closed the connection'));
    channel.on('close', serverGone);
    channel.on('end', serverGone);
    client.resume();
  }

  /** Ends the session with a 421 to the client, e.g. because the SSH connection dropped. */
  abort(reason: string, explanation: string): void {
    if (this.isClosed) return;
    this.sayGoodbye(`421 Service not available, closing control connection: ${explanation}`);
    this.close(reason);
  }

  private origin(): { host: string; port: number } {
    return { host: normalizeAddress(this.client.remoteAddress ?? '127.0.0.1'), port: this.client.remotePort ?? 0 };
  }

  private async onClientLine(line: Buffer): Promise<void> {
    this.touch();
    if (this.state.pendingCount >= MAX_PENDING_COMMANDS) {
      this.sayGoodbye(`421 Too many commands awaiting a reply (${MAX_PENDING_COMMANDS}); closing.`);
      this.close('client pipelined too many commands');
      return;
    }
    const command = parseCommandLine(stripTelnetInterrupt(line));
    if (this.log.isLevelEnabled('debug')) this.log.debug({ command: describeCommandForLog(command) }, 'client command');
    if (isTransferCommand(command)) this.lastTransferCommand = describeCommandForLog(command);
    if (isTransferCommand(command) && this.latestDataSetup) {
      // The data channel was requested a round trip ago, so this rarely
      // waits. If SSH refused it, fail now instead of leaving the server
      // waiting for a data connection until its own timeout.
      const setup = this.latestDataSetup;
      this.latestDataSetup = null;
      if (!(await setup)) {
        await this.apply(this.state.refuseClientLine(LOCAL_REPLIES.dataChannelFailed));
        return;
      }
    }
    await this.apply(this.state.onClientLine(line));
  }

  private async onServerLine(line: Buffer): Promise<void> {
    this.touch();
    if (this.log.isLevelEnabled('debug')) this.log.debug({ reply: line.toString('latin1') }, 'server reply');
    await this.apply(this.state.onServerLine(line));
    this.checkQuiet();
  }

  /**
   * No transfer under way and no reply still due: a transfer's data can
   * end before its 226 arrives on the control connection, and a graceful
   * shutdown must wait for that reply too.
   */
  private checkQuiet(): void {
    if (this.onQuiet && this.activeTransfers === 0 && this.state.pendingCount === 0) this.onQuiet();
  }

  private async apply(step: Step): Promise<void> {
    if (this.isClosed) return;
    this.send(step);
    if (step.action) await this.perform(step.action);
  }

  private send(step: Step): void {
    for (const line of step.toServer) this.channel?.write(line);
    for (const line of step.toClient) this.client.write(line);
    // Backpressure on the control connection: stop reading whichever side
    // is producing while the other cannot keep up.
    if (this.client.writableNeedDrain && this.channel) this.serverLines.pauseUntilDrain(this.client);
    if (this.channel?.writableNeedDrain) this.clientLines.pauseUntilDrain(this.channel);
  }

  private async perform(action: Action): Promise<void> {
    switch (action.kind) {
      case 'open-passive':
        return this.openPassive(action.verb, action.serverHost, action.serverPort);
      case 'open-active-forward':
        return this.openActiveForward(action);
      case 'connect-converted': {
        const serverHost = this.options.honourPassiveAddress && action.serverHost ? action.serverHost : this.options.ftpHost;
        this.log.debug({ target: action.target.port, serverPort: action.serverPort }, 'active mode converted to passive upstream');
        this.latestDataSetup = connectConvertedActive(this.dataLogContext('active-converted'), this.origin(), serverHost, action.serverPort, action.target);
        return;
      }
      case 'reset-data':
        this.closeDataConnections();
        return;
      case 'close-session':
        this.close('FTP server sent 421');
        return;
    }
  }

  private async openPassive(verb: 'PASV' | 'EPSV', replyHost: string | null, serverPort: number): Promise<void> {
    this.pendingPassive?.close();
    this.pendingPassive = null;
    const listenHost = this.passiveListenHost(verb);
    if (listenHost === null) {
      this.send(this.state.passiveListenerFailed());
      return;
    }
    const serverHost = this.options.honourPassiveAddress && replyHost ? replyHost : this.options.ftpHost;
    try {
      const listener = await PassiveDataListener.open(this.dataLogContext('passive'), {
        listenHost,
        clientAddress: this.client.remoteAddress ?? '',
        serverHost,
        serverPort,
        origin: this.origin(),
      });
      if (this.isClosed) {
        listener.close();
        return;
      }
      this.pendingPassive = listener;
      this.latestDataSetup = listener.channelReady;
      this.send(this.state.passiveListenerReady(listenHost, listener.port));
    } catch (error) {
      this.log.warn({ reason: error instanceof Error ? error.message : String(error) }, 'could not open a passive data listener');
      this.send(this.state.passiveListenerFailed());
    }
  }

  /** PASV replies can only name an IPv4 address; EPSV names none, so any family works. */
  private passiveListenHost(verb: 'PASV' | 'EPSV'): string | null {
    const local = normalizeAddress(this.client.localAddress ?? '127.0.0.1');
    if (verb === 'EPSV' || isIPv4(local)) return local;
    return local === '::1' ? '127.0.0.1' : null;
  }

  private async openActiveForward(action: Action & { kind: 'open-active-forward' }): Promise<void> {
    const context = this.dataLogContext('active-forward');
    try {
      const forward = await ActiveDataForward.open(context, this.options.activeBindAddress, action.target);
      if (this.isClosed) {
        forward.close();
        return;
      }
      context.log.debug({ bound: `${forward.address}:${forward.port}` }, 'remote forward bound for active mode');
      this.send(this.state.activeForwardReady(this.options.activeBindAddress, forward.port));
    } catch (error) {
      context.log.warn({ reason: error instanceof Error ? error.message : String(error) }, 'remote forward for active mode failed');
      this.send(this.state.activeForwardFailed());
    }
  }

  private dataLogContext(mode: 'passive' | 'active-forward' | 'active-converted'): DataContext {
    this.dataCount += 1;
    const log = this.log.child({ data: this.dataCount, mode });
    return { ...this.dataContext, log, transferStarted: () => this.transferStarted(log) };
  }


  private onClientFramingError(kind: 'overflow'): void {
    this.sayGoodbye(`500 Command line too long (over ${this.options.maxLineLength} bytes); closing.`);
    this.close(`client sent a line over the limit (${kind})`);
  }

  private onServerFramingError(kind: 'overflow'): void {
    this.sayGoodbye('421 Service not available: the server sent an over-long line.');
    this.close(`server sent a line over the limit (${kind})`);
  }

  private sayGoodbye(text: string): void {
    if (!this.isClosed && this.client.writable) this.client.write(withCrlf(Buffer.from(text, 'latin1')));
  }

  private transferStarted(log: Logger): { done(record: TransferRecord): void } {
    this.activeTransfers += 1;
    let reported = false;
    return {
      done: (record) => {
        if (reported) return;
        reported = true;
        this.activeTransfers -= 1;
        this.reportTransfer(record, log);
        this.touch();
        this.checkQuiet();
      },
    };
  }

  private reportTransfer(record: TransferRecord, log: Logger): void {
    addTransfer(this.options.stats, record);
    const fields = {
      command: this.lastTransferCommand ?? undefined,
      direction: transferDirection(record),
      bytesToServer: record.bytesToServer,
      bytesToClient: record.bytesToClient,
      durationMs: record.durationMs,
      rateMBps: transferRate(record),
    };
    if (record.error) log.warn({ ...fields, reason: record.error }, 'transfer failed');
    else log.info(fields, 'transfer done');
  }

  /** Restarts the idle clock: called on every control line and at the end of each transfer. */
  private touch(): void {
    const { idleMs } = this.options.timeouts;
    if (idleMs <= 0 || this.isClosed) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.onIdle(), idleMs);
    this.idleTimer.unref();
  }

  private onIdle(): void {
    // A long transfer is activity even when the control connection is silent.
    if (this.activeTransfers > 0) return this.touch();
    this.sayGoodbye(`421 Idle timeout (${Math.round(this.options.timeouts.idleMs / 1000)} s); closing control connection.`);
    this.close('idle timeout');
  }

  /**
   * Ends the session for a graceful shutdown: at once when no transfer is
   * under way, else when the last one has ended and its reply arrived, or
   * after graceMs, whichever comes first. Either way the client gets a 421.
   */
  async shutDown(graceMs: number, explanation: string): Promise<void> {
    if (this.isClosed) return;
    if (this.activeTransfers > 0 && graceMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        timer.unref();
        this.onQuiet = () => {
          clearTimeout(timer);
          resolve();
        };
        void this.closed.then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.abort('forwarder shutting down', explanation);
  }

  private closeDataConnections(): void {
    for (const closable of this.dataConnections) closable.close();
    this.dataConnections.clear();
    this.pendingPassive = null;
    this.latestDataSetup = null;
  }

  /** The one way a session ends: every resource it owns is released here. */
  close(reason: string): void {
    if (this.closeReason !== null) return;
    this.closeReason = reason;
    clearTimeout(this.idleTimer);
    this.clientLines.stop();
    this.serverLines.stop();
    this.closeDataConnections();
    this.channel?.destroy();
    // end() lets a final reply such as a 421 reach the client first.
    this.client.end();
    const linger = setTimeout(() => this.client.destroy(), this.options.timeouts.lingerMs);
    linger.unref();
    this.client.once('close', () => clearTimeout(linger));
    this.log.info({ reason, durationMs: Date.now() - this.startedAt, dataConnections: this.dataCount }, 'session closed');
    this.resolveClosed();
  }
}

/**
 * Frames one direction of the control connection into lines and hands them,
 * one at a time, to an async handler: a line's data connection is set up
 * before the next line is looked at, so order is kept. The source is paused
 * while too many lines wait.
 */
class LineQueue {
  private readonly framer: LineFramer;
  private readonly lines: Buffer[] = [];
  private source: NodeJS.ReadableStream | null = null;
  private draining: Promise<void> | null = null;
  private stopped = false;
  /** Reasons the source is paused; it resumes only when none is left. */
  private readonly pauses = new Set<'queue' | 'drain'>();

  constructor(
    source: NodeJS.ReadableStream | null,
    maxLineLength: number,
    private readonly handle: (line: Buffer) => Promise<void>,
    private readonly onOverflow: (kind: 'overflow') => void,
  ) {
    this.framer = new LineFramer(maxLineLength);
    if (source) this.attach(source);
  }

  attach(source: NodeJS.ReadableStream): void {
    this.source = source;
    source.on('data', (chunk: Buffer) => this.push(chunk));
  }

  /** Resolves when every line received so far has been handled. */
  idle(): Promise<void> {
    return this.draining ?? Promise.resolve();
  }

  pauseUntilDrain(destination: NodeJS.WritableStream): void {
    if (this.pauses.has('drain')) return;
    this.pause('drain');
    destination.once('drain', () => this.unpause('drain'));
  }

  private pause(reason: 'queue' | 'drain'): void {
    this.pauses.add(reason);
    this.source?.pause();
  }

  private unpause(reason: 'queue' | 'drain'): void {
    this.pauses.delete(reason);
    if (this.pauses.size === 0 && !this.stopped) this.source?.resume();
  }

  private push(chunk: Buffer): void {
    if (this.stopped) return;
    const framed = this.framer.push(chunk);
    this.lines.push(...framed.lines);
    if (framed.kind === 'overflow') {
      this.stopped = true;
      this.source?.pause();
      void this.drain().then(() => this.onOverflow('overflow'));
      return;
    }
    if (this.lines.length > MAX_QUEUED_LINES) this.pause('queue');
    void this.drain();
  }

  private drain(): Promise<void> {
    this.draining ??= this.handleQueued().finally(() => {
      this.draining = null;
      this.unpause('queue');
    });
    return this.draining;
  }

  private async handleQueued(): Promise<void> {
    for (let line = this.lines.shift(); line !== undefined; line = this.lines.shift()) {
      await this.handle(line);
    }
  }

  stop(): void {
    this.stopped = true;
    this.lines.length = 0;
  }
}
