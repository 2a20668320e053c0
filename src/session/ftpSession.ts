import { isIPv4, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { ClientChannel } from 'ssh2';
import { errorMessage } from '../errors.js';
import { describeCommandForLog, isTransferCommand, parseCommandLine, stripTelnetInterrupt } from '../ftp/commands.js';
import { ControlState, LOCAL_REPLIES, type Action, type ActiveStrategy, type Step } from '../ftp/controlState.js';
import { withCrlf } from '../ftp/lineFramer.js';
import { isLoopbackAddress, normalizeAddress, passiveDataHost, sameAddress } from '../net/addresses.js';
import type { SshConnection } from '../ssh/sshConnection.js';
import type { WindowBudget } from '../ssh/windowTuner.js';
import { ControlFlow, type Side } from './controlFlow.js';
import type { GarbagePacer } from './garbagePacer.js';
import {
  ActiveDataForward,
  ConvertedActiveConnection,
  PassiveDataListener,
  type DataContext,
  type DataSetup,
  type DataTimeouts,
  type RunningTransfer,
  type TransferRecord,
} from './dataConnections.js';
import { negotiateServerTls, ServerTlsError } from './serverTls.js';
import { peerOwner } from './socketOwner.js';
import { describeTls, ResumableSession, startClientTls, startServerTls, type ClientTlsSettings, type ServerTlsSettings } from './tls.js';
import { addTransfer, transferDirection, transferRate, type ForwarderStats } from './stats.js';
import { TransferWatch, type SessionStatus } from './transferProgress.js';

export interface SessionTimeouts extends DataTimeouts {
  /** How long the SSH server may take to open the control channel. */
  controlConnectMs: number;
  /** A session with no control traffic and no transfer for this long is closed; 0: never. */
  idleMs: number;
  /** How long a multi-line reply may take from its first line to its last. */
  replyMs: number;
}

/** The forwarder's limit on remote forwards held at once over the shared SSH connection. */
export interface RemoteForwardBudget {
  /** Takes one place; false when none is left. */
  take(): boolean;
  give(): void;
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
  /** Whether a connection arriving through a remote forward comes from the FTP server. */
  acceptActiveSource(sourceAddress: string): boolean;
  remoteForwards: RemoteForwardBudget;
  /** Shared by every data channel of the forwarder (see WindowTuner). */
  windowBudget: WindowBudget;
  pacer: GarbagePacer;
  /** Use the address in a 227 reply instead of the control connection's host. */
  honourPassiveAddress: boolean;
  maxLineLength: number;
  /** TLS to the FTP server (ftpfwd is the TLS client), or null for plain FTP. */
  serverTls: ServerTlsSettings | null;
  /** TLS for this listener's clients (AUTH TLS or implicit), or null: AUTH is refused. */
  clientTls: ClientTlsSettings | null;
  timeouts: SessionTimeouts;
  log: Logger;
  /** Totals shared by all sessions of the forwarder. */
  stats: ForwarderStats;
  /** How often a transfer under way logs its progress; 0: never. */
  progressIntervalMs: number;
}

/**
 * Commands sent on without their reply yet. Real clients pipeline a few;
 * far more means a client that never reads, and each entry costs memory.
 */
const MAX_PENDING_COMMANDS = 1024;

type DataMode = 'passive' | 'active-forward' | 'active-converted';

/** Whether a data set-up's SSH channel opened: `settled` is undefined until it is known. */
interface SetupOutcome {
  readonly ready: Promise<boolean>;
  settled: boolean | undefined;
}

function setupOutcome(ready: Promise<boolean>): SetupOutcome {
  const outcome: SetupOutcome = { ready, settled: undefined };
  void ready.then((ok) => {
    outcome.settled = ok;
  });
  return outcome;
}

/** How long a forced close waits for the peers to take our last bytes and close their side. */
const FORCED_LINGER_MS = 1_000;

/**
 * One FTP control connection and everything hanging off it. It owns the
 * client socket, the SSH control channel and every data listener, forward
 * and relay of the session, and closes them through one idempotent close(),
 * whichever side ends first. Its transfers may outlive the control
 * connection (a download the client is still reading when the server has
 * said 226 and 221 and gone): `closed` resolves only once they are done.
 */
export class FtpSession {
  private readonly client: Socket;
  /** What the client's control bytes travel in: its socket, or TLS over it. */
  private clientStream: Duplex;
  private channel: ClientChannel | null = null;
  /** What the server's control bytes travel in: the channel, or TLS over it. */
  private serverStream: Duplex | null = null;
  /** The TLS session data connections to the server resume. */
  private readonly serverSessions = new ResumableSession();
  /** Each side's TLS, for the log: `TLSv1.3 TLS_AES_256_GCM_SHA384`, or none. */
  private readonly tlsInUse = { client: 'none', server: 'none' };
  private readonly state: ControlState;
  private readonly flow: ControlFlow;
  /** The one data connection set up and not yet used; a new set-up releases it. */
  private pendingSetup: DataSetup | null = null;
  private readonly transfers = new Set<RunningTransfer>();
  /** What each transfer under way has done so far, for progress lines and status(). */
  private readonly watches = new Map<RunningTransfer, TransferWatch>();
  private transferCount = 0;
  /** Whether the SSH side of the latest data connection set-up succeeded, once known. */
  private latestDataSetup: SetupOutcome | null = null;
  private closeReason: string | null = null;
  /** The client ended its side: the session closes once every reply it is owed has arrived. */
  private clientEnded = false;
  private readonly startedAt = Date.now();
  /** Kept from the start: a closed socket no longer knows its peer. */
  private readonly clientName: string;
  private readonly log: Logger;
  private dataCount = 0;
  /** The last RETR/STOR/LIST... seen, named in the transfer's log line. */
  private lastTransferCommand: string | null = null;
  private idleTimer: NodeJS.Timeout | undefined;
  private replyTimer: NodeJS.Timeout | undefined;
  /** Set while shutting down gracefully: checked whenever a transfer ends or a reply arrives. */
  private onQuiet: (() => void) | null = null;
  /** The owner of the client's socket, when it is on this machine (loopback). */
  private readonly clientOwner: Promise<number | null | 'unsupported'>;
  private resolveClosed!: () => void;
  /** Resolves once the session has ended and everything it owned is closed. */
  readonly closed = new Promise<void>((resolve) => {
    this.resolveClosed = resolve;
  });

  constructor(private readonly options: SessionOptions) {
    this.client = options.client;
    this.clientName = `${this.client.remoteAddress}:${this.client.remotePort}`;
    this.clientStream = options.client;
    this.log = options.log;
    this.state = new ControlState({
      clientAddress: normalizeAddress(this.client.remoteAddress ?? ''),
      activeStrategy: options.activeStrategy,
      minimumActivePort: 1024,
      clientTls: options.clientTls !== null,
      serverTls: options.serverTls !== null,
    });
    this.flow = new ControlFlow(this.client, options.maxLineLength, {
      onLine: (side, line) => (side === 'client' ? this.onClientLine(line) : this.onServerLine(line)),
      onOverflow: (side) => this.onOverflow(side),
      onEnd: (side) => this.onEnd(side),
      onFailure: (side, error) => {
        this.log.error({ side, reason: errorMessage(error) }, 'internal error while handling a control line');
        this.abort('internal error', 'internal error in the forwarder.');
      },
    });
    this.clientOwner = isLoopbackAddress(this.client.remoteAddress ?? '') ? peerOwner(this.client) : Promise.resolve('unsupported');
  }

  get isClosed(): boolean {
    return this.closeReason !== null;
  }

  status(): SessionStatus {
    return {
      id: this.options.id,
      client: this.clientName,
      startedAt: this.startedAt,
      transfers: [...this.watches.values()].map((watch) => watch.status()),
    };
  }

  /** Opens the control channel and starts relaying lines. */
  async start(): Promise<void> {
    const { client, options } = this;
    client.pause();
    // The client's data connections are sockets of their own: a transfer it
    // is still reading ends by itself if the client is really gone.
    client.on('error', (error) => this.close(`client error: ${error.message}`));
    client.on('close', () => this.close('client closed the connection'));
    this.log.info({ client: this.clientName }, 'session opened');
    if (options.clientTls?.implicit && !(await this.secureClient(null))) return;
    let channel: ClientChannel;
    try {
      channel = await options.ssh.openDirectTcpip(this.origin(), options.ftpHost, options.ftpPort, options.timeouts.controlConnectMs);
    } catch (error) {
      this.sayGoodbye('421 Service not available: the FTP server cannot be reached through the SSH tunnel.');
      this.close(`control channel failed: ${errorMessage(error)}`);
      return;
    }
    if (this.isClosed) {
      channel.destroy();
      return;
    }
    this.channel = channel;
    channel.on('error', (error: Error) => this.close(`SSH channel error: ${error.message}`));
    this.touch();
    if (options.serverTls === null) {
      this.serverStream = channel;
      this.flow.attachServer(channel);
      return;
    }
    await this.secureServer(channel, options.serverTls);
  }

  /**
   * TLS with the FTP server before anything of the client's is read, so
   * that its USER and PASS never travel in plaintext; the greeting reaches
   * the client only then. Any failure ends the session with a 421.
   */
  private async secureServer(channel: ClientChannel, settings: ServerTlsSettings): Promise<void> {
    if (settings.insecure) this.log.warn("the FTP server's TLS certificate is not checked (--ftp-tls-insecure): anyone on the path to it can read and change this session");
    let secured;
    try {
      secured = await negotiateServerTls(channel, settings, this.serverSessions, this.options.maxLineLength, this.options.timeouts.connectMs);
    } catch (error) {
      const failure = error instanceof ServerTlsError ? error : new ServerTlsError('421 Service not available: TLS with the FTP server failed; closing.', errorMessage(error));
      this.log.error({ reason: failure.reason, servername: settings.servername, ...(failure.certificate === null ? {} : { certificate: failure.certificate }) }, 'TLS with the FTP server failed');
      this.sayGoodbye(failure.reply);
      this.close(`TLS with the FTP server failed: ${failure.reason}`);
      return;
    }
    const { socket } = secured;
    if (this.isClosed) {
      socket.destroy();
      return;
    }
    this.serverStream = socket;
    socket.on('error', (error: Error) => this.close(`TLS error on the control connection to the FTP server: ${error.message}`));
    this.tlsInUse.server = describeTls(socket);
    this.log.info({ tls: this.tlsInUse.server, servername: settings.servername, mode: settings.mode }, 'TLS with the FTP server established');
    for (const line of secured.greeting) await this.onServerLine(line);
    if (this.isClosed) return;
    this.flow.attachServer(socket);
  }

  /**
   * TLS with the client: from the first byte (implicit, `reply` null), or
   * after AUTH TLS, whose 234 is the last plaintext the client gets. False
   * when the session had to end.
   */
  private async secureClient(reply: Buffer | null): Promise<boolean> {
    const settings = this.options.clientTls;
    if (settings === null) return false;
    const raw = this.client;
    if (reply !== null) {
      // Plaintext pipelined after AUTH TLS would be taken as if it were protected.
      if (this.flow.bufferedInput('client') > 0) {
        this.sayGoodbye('421 Commands sent after AUTH TLS before the TLS handshake; closing.');
        this.close('client sent plaintext after AUTH TLS');
        return false;
      }
      raw.pause();
      await new Promise<void>((resolve) => raw.write(reply, () => resolve()));
    }
    let secured: TLSSocket;
    try {
      secured = await startClientTls(raw, settings, this.options.timeouts.connectMs);
    } catch (error) {
      this.log.warn({ reason: errorMessage(error) }, 'TLS with the FTP client failed');
      this.close(`TLS with the FTP client failed: ${errorMessage(error)}`);
      return false;
    }
    if (this.isClosed) {
      secured.destroy();
      return false;
    }
    secured.on('error', (error: Error) => this.close(`client TLS error: ${error.message}`));
    secured.on('close', () => this.close('client closed the connection'));
    this.clientStream = secured;
    this.flow.replaceClient(secured);
    if (reply === null) this.state.clientTlsStarted();
    this.tlsInUse.client = describeTls(secured);
    this.log.info({ tls: this.tlsInUse.client, mode: reply === null ? 'implicit' : 'explicit' }, 'TLS with the FTP client established');
    return true;
  }

  /** Ends the session with a 421 to the client, e.g. because the SSH connection dropped. */
  abort(reason: string, explanation: string): void {
    if (this.isClosed) return;
    this.sayGoodbye(`421 Service not available, closing control connection: ${explanation}`);
    this.close(reason, { force: true });
  }

  private origin(): { host: string; port: number } {
    return { host: normalizeAddress(this.client.remoteAddress ?? '127.0.0.1'), port: this.client.remotePort ?? 0 };
  }

  private async onClientLine(rawLine: Buffer): Promise<void> {
    this.touch();
    if (this.state.pendingCount >= MAX_PENDING_COMMANDS) {
      this.sayGoodbye(`421 Too many commands awaiting a reply (${MAX_PENDING_COMMANDS}); closing.`);
      this.close('client pipelined too many commands');
      return;
    }
    const line = stripTelnetInterrupt(rawLine);
    const command = parseCommandLine(line);
    if (this.log.isLevelEnabled('debug')) this.log.debug({ command: describeCommandForLog(command) }, 'client command');
    if (isTransferCommand(command)) {
      this.lastTransferCommand = describeCommandForLog(command);
      const setup = this.latestDataSetup;
      this.latestDataSetup = null;
      // Known failed already: the server would wait for a data connection
      // that never comes, so the command does not go upstream.
      if (setup?.settled === false) {
        await this.apply(this.state.refuseClientLine(LOCAL_REPLIES.dataChannelFailed));
        return;
      }
      // Not known yet: the command goes now, without waiting a round trip
      // for the channel; if the channel turns out refused, the client gets
      // its 425 then and the server an ABOR.
      if (setup && setup.settled === undefined) {
        void setup.ready.then((ok) => {
          if (!ok && !this.isClosed) this.send(this.state.dataConnectionFailed());
        });
      }
    }
    await this.apply(this.state.onClientCommand(command, line));
  }

  private async onServerLine(line: Buffer): Promise<void> {
    this.touch();
    if (this.log.isLevelEnabled('debug')) this.log.debug({ reply: line.toString('latin1') }, 'server reply');
    await this.apply(this.state.onServerLine(line));
    this.watchReplyTime();
    this.checkQuiet();
  }

  /** A multi-line reply must end in bounded time; one that never does is a flood. */
  private watchReplyTime(): void {
    if (!this.state.replyInProgress) {
      clearTimeout(this.replyTimer);
      this.replyTimer = undefined;
      return;
    }
    if (this.replyTimer !== undefined) return;
    this.replyTimer = setTimeout(() => {
      this.sayGoodbye('421 Service not available: the FTP server did not finish its reply in time; closing.');
      this.close('the FTP server did not finish a multi-line reply in time');
    }, this.options.timeouts.replyMs);
    this.replyTimer.unref();
  }

  private async apply(step: Step): Promise<void> {
    if (this.isClosed) return;
    this.send(step);
    if (step.action) await this.perform(step.action);
  }

  /** Sends what a step produced; steps that complete an action carry no action of their own. */
  private send(step: Step): void {
    if (this.isClosed) return;
    for (const warning of step.warnings ?? []) this.log.warn(warning);
    for (const line of step.toServer) this.flow.send('server', line);
    for (const line of step.toClient) this.sendToClient(line);
  }

  private sendToClient(line: Buffer): void {
    if (this.log.isLevelEnabled('debug')) this.log.debug({ reply: line.toString('latin1').replace(/\r?\n$/, '') }, 'reply to client');
    this.flow.send('client', line);
  }

  private async perform(action: Action): Promise<void> {
    switch (action.kind) {
      case 'open-passive':
        return this.openPassive(action.verb, action.serverHost, action.serverPort);
      case 'open-active-forward':
        return this.openActiveForward(action);
      case 'connect-converted':
        return this.connectConverted(action);
      case 'release-data':
        this.releasePendingSetup();
        return;
      case 'reset-data':
        this.releasePendingSetup();
        for (const transfer of this.transfers) transfer.abort(new Error('the client reinitialised the session (REIN)'));
        return;
      case 'start-client-tls':
        await this.secureClient(action.reply);
        return;
      case 'close-session':
        this.close(action.reason);
        return;
    }
  }

  /** The data connection set up earlier and never used is void: a session holds at most one. */
  private releasePendingSetup(): void {
    const setup = this.pendingSetup;
    this.pendingSetup = null;
    this.latestDataSetup = null;
    setup?.close();
  }

  /**
   * Where the SSH server connects for passive data: the control connection's
   * own FTP host, or with --honour-passive-address the reply's address,
   * unless that names something that cannot be the FTP server.
   */
  private passiveTarget(replyHost: string | null): string {
    const target = passiveDataHost(this.options.ftpHost, replyHost, this.options.honourPassiveAddress);
    if (target.replyAddressRefused) this.log.warn({ replyHost, ftpHost: this.options.ftpHost }, 'the passive reply names a special-purpose address; connecting to the FTP host instead');
    return target.host;
  }

  private async openPassive(verb: 'PASV' | 'EPSV', replyHost: string | null, serverPort: number): Promise<void> {
    this.releasePendingSetup();
    const listenHost = this.passiveListenHost(verb);
    if (listenHost === null) {
      this.send(this.state.passiveListenerFailed());
      return;
    }
    try {
      const listener = await PassiveDataListener.open(this.dataContext('passive'), {
        listenHost,
        acceptPeer: (socket) => this.isOwnClient(socket),
        serverHost: this.passiveTarget(replyHost),
        serverPort,
        origin: this.origin(),
      });
      if (this.isClosed) {
        listener.close();
        return;
      }
      this.pendingSetup = listener;
      this.latestDataSetup = setupOutcome(listener.channelReady);
      this.send(this.state.passiveListenerReady(listenHost, listener.port));
    } catch (error) {
      this.log.warn({ reason: errorMessage(error) }, 'could not open a passive data listener');
      this.send(this.state.passiveListenerFailed());
    }
  }

  /**
   * A data connection belongs to the control connection's client: the same
   * address, and on loopback, where every local user has that address, the
   * same local user.
   */
  private async isOwnClient(socket: Socket): Promise<boolean> {
    if (!sameAddress(socket.remoteAddress ?? '', this.client.remoteAddress ?? '')) return false;
    if (!isLoopbackAddress(socket.remoteAddress ?? '')) return true;
    const [expected, actual] = await Promise.all([this.clientOwner, peerOwner(socket)]);
    if (expected === 'unsupported') return true;
    return expected !== null && actual === expected;
  }

  /** PASV replies can only name an IPv4 address; EPSV names none, so any family works. */
  private passiveListenHost(verb: 'PASV' | 'EPSV'): string | null {
    const local = normalizeAddress(this.client.localAddress ?? '127.0.0.1');
    if (verb === 'EPSV' || isIPv4(local)) return local;
    return local === '::1' ? '127.0.0.1' : null;
  }

  private async openActiveForward(action: Action & { kind: 'open-active-forward' }): Promise<void> {
    this.releasePendingSetup();
    const context = this.dataContext('active-forward');
    const budget = this.options.remoteForwards;
    if (!budget.take()) {
      context.log.warn('too many remote forwards held over the SSH connection; refusing this one');
      this.send(this.state.activeForwardFailed());
      return;
    }
    try {
      const forward = await ActiveDataForward.open(context, {
        bindAddress: this.options.activeBindAddress,
        target: action.target,
        acceptSource: (source) => this.options.acceptActiveSource(source),
        release: () => budget.give(),
      });
      if (this.isClosed) {
        forward.close();
        return;
      }
      this.pendingSetup = forward;
      context.log.debug({ bound: `${forward.address}:${forward.port}` }, 'remote forward bound for active mode');
      this.send(this.state.activeForwardReady(this.options.activeBindAddress, forward.port));
    } catch (error) {
      context.log.warn({ reason: errorMessage(error) }, 'remote forward for active mode failed');
      this.send(this.state.activeForwardFailed());
    }
  }

  private connectConverted(action: Action & { kind: 'connect-converted' }): void {
    this.releasePendingSetup();
    const context = this.dataContext('active-converted');
    context.log.debug({ target: action.target.port, serverPort: action.serverPort }, 'active mode converted to passive upstream');
    const connection = new ConvertedActiveConnection(context, this.origin(), this.passiveTarget(action.serverHost), action.serverPort, action.target);
    this.pendingSetup = connection;
    this.latestDataSetup = setupOutcome(connection.ready);
  }

  private dataContext(mode: DataMode): DataContext {
    this.dataCount += 1;
    const log = this.log.child({ data: this.dataCount, mode });
    return {
      ssh: this.options.ssh,
      log,
      timeouts: this.options.timeouts,
      windowBudget: this.options.windowBudget,
      pacer: this.options.pacer,
      setupEnded: (setup) => {
        if (this.pendingSetup === setup) this.pendingSetup = null;
      },
      transferStarted: (transfer) => this.transferStarted(transfer, log),
      tls: this.dataTls(),
    };
  }

  /** TLS for a data connection set up now: to the server whenever the control connection has it, to the client after its PROT P. */
  private dataTls(): DataContext['tls'] {
    const { serverTls, clientTls, timeouts } = this.options;
    // A server does its side of the handshake only once the transfer command
    // has come, so these handshakes wait as long as a data connection may.
    return {
      server: serverTls === null ? null : (channel) => startServerTls(channel, serverTls, this.serverSessions, timeouts.acceptMs),
      client: clientTls === null || !this.state.clientDataProtected ? null : (socket) => startClientTls(socket, clientTls, timeouts.acceptMs),
    };
  }

  private onOverflow(side: Side): void {
    if (side === 'client') {
      this.sayGoodbye(`500 Command line too long (over ${this.options.maxLineLength} bytes); closing.`);
      this.close('client sent a line over the limit');
    } else {
      this.sayGoodbye('421 Service not available: the server sent an over-long line.');
      this.close('server sent a line over the limit');
    }
  }

  /**
   * A side ended its stream, and every line it sent has been handled. The
   * server ending ends the session (its last replies, a 221 after QUIT say,
   * are out already). The client ending only stops its commands: it is
   * still owed the replies to the ones it sent.
   */
  private onEnd(side: Side): void {
    if (side === 'server') {
      this.close('FTP server closed the connection');
      return;
    }
    this.clientEnded = true;
    this.touch();
    this.checkQuiet();
  }

  private sayGoodbye(text: string): void {
    if (!this.isClosed) this.sendToClient(withCrlf(Buffer.from(text, 'latin1')));
  }

  private transferStarted(transfer: RunningTransfer, log: Logger): { done(record: TransferRecord): void } {
    this.transfers.add(transfer);
    this.transferCount += 1;
    const watch = new TransferWatch({ command: () => this.lastTransferCommand, bytes: () => transfer.bytes() }, log, this.options.progressIntervalMs);
    this.watches.set(transfer, watch);
    let reported = false;
    return {
      done: (record) => {
        if (reported) return;
        reported = true;
        watch.stop();
        this.watches.delete(transfer);
        this.transfers.delete(transfer);
        this.reportTransfer(record, log);
        this.touch();
        this.checkQuiet();
        if (this.isClosed && this.transfers.size === 0) this.resolveClosed();
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

  /**
   * No transfer under way and no reply still due: a transfer's data can
   * end before its 226 arrives on the control connection, and whoever waits
   * for the session to finish (a graceful shutdown, a client that closed its
   * side) must wait for that reply too.
   */
  private isQuiet(): boolean {
    return this.transfers.size === 0 && this.state.pendingCount === 0;
  }

  private checkQuiet(): void {
    if (!this.isQuiet()) return;
    if (this.clientEnded) this.close('client closed the connection');
    else this.onQuiet?.();
  }

  /**
   * Restarts the idle clock: called on every control line and at the end of
   * each transfer. Once the client has ended its side, waiting for the last
   * replies is bounded by lingerMs, whatever the idle timeout.
   */
  private touch(): void {
    const { idleMs, lingerMs } = this.options.timeouts;
    const limit = this.clientEnded ? (idleMs > 0 ? Math.min(idleMs, lingerMs) : lingerMs) : idleMs;
    if (limit <= 0 || this.isClosed) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.onIdle(), limit);
    this.idleTimer.unref();
  }

  private onIdle(): void {
    // A long transfer is activity even when the control connection is silent.
    if (this.transfers.size > 0) return this.touch();
    if (this.clientEnded) {
      this.close('client closed the connection; the server did not answer its last commands in time');
      return;
    }
    this.sayGoodbye(`421 Idle timeout (${Math.round(this.options.timeouts.idleMs / 1000)} s); closing control connection.`);
    this.close('idle timeout');
  }

  /**
   * Ends the session for a graceful shutdown: at once when no transfer is
   * under way, else when the last one has ended and its reply arrived, or
   * after graceMs, whichever comes first. Either way the client gets a 421.
   */
  async shutDown(graceMs: number, explanation: string): Promise<void> {
    if (this.isClosed) {
      if (graceMs === 0) this.close('forwarder shutting down', { force: true });
      return;
    }
    if (!this.isQuiet() && graceMs > 0) {
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
    // Whatever still runs after the grace period is cut off.
    this.close('forwarder shutting down', { force: true });
  }

  /**
   * The one way a session ends: the control connection, its channel and
   * every unused data set-up are released here. Transfers under way carry
   * on to their end (or are aborted with `force`, e.g. when the SSH
   * connection is gone or shutdown can wait no longer).
   */
  close(reason: string, { force = false }: { force?: boolean } = {}): void {
    if (force) for (const transfer of this.transfers) transfer.abort(new Error(reason));
    if (this.closeReason !== null) return;
    this.closeReason = reason;
    clearTimeout(this.idleTimer);
    clearTimeout(this.replyTimer);
    this.flow.stop();
    this.releasePendingSetup();
    for (const transfer of this.transfers) transfer.orphan(this.options.timeouts.lingerMs);
    // end() lets a final reply such as a 421 reach the client first; when
    // the end is forced (shutdown, SSH gone), a client that does not close
    // its side gets only a moment.
    const lingerMs = force ? Math.min(this.options.timeouts.lingerMs, FORCED_LINGER_MS) : this.options.timeouts.lingerMs;
    // TLS streams end with a close_notify, then end what they run over.
    endWithin(this.serverStream ?? this.channel, lingerMs);
    endWithin(this.clientStream, lingerMs);
    // Nothing more is read, so what still arrives is dropped and each peer's
    // own end gets through: a client never read from (its session ended
    // while TLS with the server was negotiated) would otherwise hold its
    // socket, and the forwarder's shutdown, for lingerMs.
    this.clientStream.resume();
    (this.serverStream ?? this.channel)?.resume();
    if (this.clientStream !== this.client) endWithin(this.client, lingerMs);
    this.log.info({ reason, durationMs: Date.now() - this.startedAt, dataConnections: this.dataCount, transfers: this.transferCount, clientTls: this.tlsInUse.client, serverTls: this.tlsInUse.server }, 'session closed');
    if (this.transfers.size === 0) this.resolveClosed();
  }
}

/**
 * Ends a stream so that what is queued still goes out, and destroys it if
 * that has not happened within `lingerMs` (a peer that stopped reading).
 */
function endWithin(stream: Duplex | null, lingerMs: number): void {
  if (!stream || stream.destroyed) return;
  stream.end();
  const linger = setTimeout(() => stream.destroy(), lingerMs);
  linger.unref();
  stream.once('close', () => clearTimeout(linger));
}
