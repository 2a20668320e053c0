import { connect as connectTcp, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ClientChannel, TcpConnectionDetails } from 'ssh2';
import { errorMessage } from '../errors.js';
import type { ActiveTarget } from '../ftp/dataAddresses.js';
import type { RemoteForward, SshConnection } from '../ssh/sshConnection.js';
import { DEFAULT_WINDOW_TUNING, WindowTuner, type WindowBudget } from '../ssh/windowTuner.js';
import type { GarbagePacer } from './garbagePacer.js';
import { plainEnds, relay, type Relay, type RelayResult, type WindowSizing } from './relay.js';
import { securedRelay, type DataTls } from './securedRelay.js';
import type { TransferBytes } from './transferProgress.js';

export interface DataTimeouts {
  /** How long a data listener or remote forward waits for its one connection. */
  acceptMs: number;
  /** How long an SSH channel or local connection may take to open. */
  connectMs: number;
  /** How long a local socket may take to drain after its channel closed, and how long an orphaned transfer may stall. */
  lingerMs: number;
}

/** A data connection set up for the next transfer, not yet used: released when another replaces it. */
export interface DataSetup {
  close(): void;
}

/** A data connection carrying bytes. */
export interface RunningTransfer {
  /** Ends at once, resetting the client's socket. */
  abort(reason: Error): void;
  /** The session ended: let the transfer finish, but not stall (see Relay.orphan). */
  orphan(stallMs: number): void;
  /** Bytes moved so far. */
  bytes(): TransferBytes;
}

/** What one data connection carried, reported when it ends. */
export interface TransferRecord {
  bytesToServer: number;
  bytesToClient: number;
  durationMs: number;
  /** Why it ended early; null when both sides finished. */
  error: string | null;
}

export interface DataContext {
  ssh: SshConnection;
  log: Logger;
  timeouts: DataTimeouts;
  /** Where data channels' larger receive windows come from; all of them share it. */
  windowBudget: WindowBudget;
  /** Told of every chunk moved, to keep dead buffers from piling up. */
  pacer: GarbagePacer;
  /** A set-up is no longer pending: used, timed out or closed. */
  setupEnded(setup: DataSetup): void;
  /** A relay started carrying bytes; `done` is called once when it ends. */
  transferStarted(transfer: RunningTransfer): { done(record: TransferRecord): void };
  /** TLS on either end of this data connection, as the control connection has it. */
  tls: DataTls;
}

/** Relays a data connection, its channel's window sized to the path as it goes. */
function startRelay(context: DataContext, socket: Socket, channel: ClientChannel): void {
  const sizing: WindowSizing = {
    tuner: new WindowTuner(DEFAULT_WINDOW_TUNING, context.windowBudget),
    roundTripMs: () => context.ssh.roundTripMs,
    onChange: (windowBytes) => context.log.debug({ windowBytes, roundTripMs: Math.round(context.ssh.roundTripMs) }, 'data channel window raised'),
  };
  const { lingerMs } = context.timeouts;
  const { tls, pacer } = context;
  const running = tls.server === null && tls.client === null ? relay(plainEnds(socket, channel), lingerMs, sizing, pacer) : securedRelay(socket, channel, tls, lingerMs, sizing, pacer, context.log);
  superviseRelay(context, running);
}

/** Carries one relayed data connection and reports it to its session when it ends. */
function superviseRelay(context: DataContext, running: Relay): void {
  const transfer = context.transferStarted({
    abort: (reason) => running.abort(reason),
    orphan: (ms) => running.orphan(ms),
    bytes: () => ({ bytesToServer: running.bytesToRemote, bytesToClient: running.bytesToLocal }),
  });
  void running.done.then((result: RelayResult) => {
    transfer.done({
      bytesToServer: result.bytesToRemote,
      bytesToClient: result.bytesToLocal,
      durationMs: result.durationMs,
      error: result.error?.message ?? null,
    });
  });
}

export interface PassiveListenerRequest {
  /** The client-facing address to listen on (where the client's control connection arrived). */
  listenHost: string;
  /**
   * Whether a connection may be this session's data connection: only the
   * control connection's own client (same address, same local user) may.
   */
  acceptPeer(socket: Socket): Promise<boolean>;
  /** Where the SSH server should connect for the data. */
  serverHost: string;
  serverPort: number;
  /** The originator reported to the SSH server. */
  origin: { host: string; port: number };
}

/**
 * A one-shot local listener for a passive-mode data connection. The SSH
 * channel to the server's data port is opened at once, while the client is
 * still reading the rewritten reply, so the client does not wait for it.
 */
export class PassiveDataListener implements DataSetup {
  private closed = false;
  /** A connection passed the peer check and owns the listener now. */
  private claimed = false;
  private acceptTimer: NodeJS.Timeout | undefined;
  private readonly channel: Promise<ClientChannel>;
  /** Whether the SSH channel for this data connection could be opened. */
  readonly channelReady: Promise<boolean>;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly context: DataContext,
    private readonly request: PassiveListenerRequest,
  ) {
    const { ssh, timeouts } = context;
    this.channel = ssh.openDirectTcpip(request.origin, request.serverHost, request.serverPort, timeouts.connectMs);
    this.channelReady = this.channel.then(
      () => true,
      () => false,
    );
    // Without a client connection the channel would sit unused: close it then.
    this.channel.catch((error: unknown) => {
      context.log.warn({ reason: errorMessage(error), serverPort: request.serverPort }, 'passive data channel could not be opened');
      this.close();
    });
    server.on('connection', (socket: Socket) => this.onConnection(socket));
    // Accepting can fail (EMFILE, ENFILE): this listener ends, the session and the process do not.
    server.on('error', (error: NodeJS.ErrnoException) => {
      context.log.warn({ reason: error.code ?? error.message, port }, 'passive data listener failed');
      this.close();
    });
    this.acceptTimer = setTimeout(() => {
      context.log.warn({ port }, 'no data connection arrived in time; passive listener closed');
      this.close();
    }, timeouts.acceptMs);
    this.acceptTimer.unref();
  }

  static async open(context: DataContext, request: PassiveListenerRequest): Promise<PassiveDataListener> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: request.listenHost, port: 0, exclusive: true }, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    return new PassiveDataListener(server, port, context, request);
  }

  private onConnection(socket: Socket): void {
    socket.on('error', () => undefined);
    if (this.closed || this.claimed) {
      socket.destroy();
      return;
    }
    void this.request.acceptPeer(socket).then(
      (accepted) => {
        if (!accepted) {
          // Anyone else could read the download or inject the upload.
          this.context.log.warn({ from: `${socket.remoteAddress}:${socket.remotePort}` }, "refused a data connection that is not from this session's client");
          socket.destroy();
          return;
        }
        if (this.closed || this.claimed) {
          socket.destroy();
          return;
        }
        this.claimed = true;
        this.stopListening();
        this.carry(socket);
      },
      () => socket.destroy(),
    );
  }

  private carry(socket: Socket): void {
    socket.setNoDelay(true);
    this.channel.then(
      (channel) => {
        if (this.closed) {
          channel.destroy();
          socket.destroy();
          return;
        }
        this.closed = true;
        this.context.setupEnded(this);
        startRelay(this.context, socket, channel);
      },
      () => socket.destroy(),
    );
  }

  private stopListening(): void {
    clearTimeout(this.acceptTimer);
    this.server.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.context.setupEnded(this);
    this.stopListening();
    this.channel.then(
      (channel) => channel.destroy(),
      () => undefined,
    );
  }
}

export interface ActiveForwardRequest {
  bindAddress: string;
  target: ActiveTarget;
  /** Whether a connection the SSH server hands over comes from the FTP server (by its source address). */
  acceptSource(sourceAddress: string): boolean;
  /** Gives back the forward's place in the connection's limit. */
  release(): void;
}

/**
 * An active-mode data connection through a remote forward: the FTP server
 * connects to the SSH server's side, and we connect that to the client's
 * own data port. One connection is taken, then the forward is cancelled.
 */
export class ActiveDataForward implements DataSetup {
  private forward: RemoteForward | null = null;
  private used = false;
  private closed = false;
  private acceptTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly context: DataContext,
    private readonly request: ActiveForwardRequest,
  ) {}

  static async open(context: DataContext, request: ActiveForwardRequest): Promise<ActiveDataForward> {
    const active = new ActiveDataForward(context, request);
    try {
      active.forward = await context.ssh.bindRemoteForward(
        request.bindAddress,
        (details, accept, reject) => active.onIncoming(details, accept, reject),
        context.timeouts.connectMs,
      );
    } catch (error) {
      request.release();
      throw error;
    }
    active.acceptTimer = setTimeout(() => {
      context.log.warn({ port: active.forward?.port }, 'the server did not connect in time; remote forward cancelled');
      active.close();
    }, context.timeouts.acceptMs);
    active.acceptTimer.unref();
    return active;
  }

  get address(): string {
    return this.forward?.address ?? '';
  }

  get port(): number {
    return this.forward?.port ?? 0;
  }

  private onIncoming(details: TcpConnectionDetails, accept: () => ClientChannel, reject: () => void): void {
    if (this.used || this.closed) {
      this.context.log.warn({ from: details.srcIP }, 'refused an extra connection on the active-mode forward');
      reject();
      return;
    }
    if (!this.request.acceptSource(details.srcIP)) {
      // Whoever can reach the forward's port on the SSH server's side could
      // otherwise deliver a fake download or read the upload.
      this.context.log.warn({ from: `${details.srcIP}:${details.srcPort}` }, 'refused a connection on the active-mode forward that is not from the FTP server');
      reject();
      return;
    }
    this.used = true;
    this.cancelForward();
    // Connect to the client first: reject() after accept() would take the
    // whole SSH connection down, so the decision must come before accept().
    connectLocal(this.request.target, this.context.timeouts.connectMs).then(
      (socket) => {
        if (this.closed) {
          socket.destroy();
          reject();
          return;
        }
        this.closed = true;
        this.context.setupEnded(this);
        startRelay(this.context, socket, accept());
      },
      (error: unknown) => {
        this.context.log.warn({ reason: errorMessage(error) }, 'could not connect to the client data port');
        reject();
        this.close();
      },
    );
  }

  private cancelForward(): void {
    clearTimeout(this.acceptTimer);
    if (this.forward) {
      this.forward.close();
      this.forward = null;
      this.request.release();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.context.setupEnded(this);
    this.cancelForward();
  }
}

/**
 * Active mode carried as passive upstream: open the channel to the server's
 * passive port and connect it to the client's PORT address ourselves.
 * `ready` resolves with whether both ends could be connected.
 */
export class ConvertedActiveConnection implements DataSetup {
  private aborted = false;
  readonly ready: Promise<boolean>;

  constructor(context: DataContext, origin: { host: string; port: number }, serverHost: string, serverPort: number, target: ActiveTarget) {
    const channel = context.ssh.openDirectTcpip(origin, serverHost, serverPort, context.timeouts.connectMs);
    const socket = connectLocal(target, context.timeouts.connectMs);
    this.ready = Promise.all([channel, socket]).then(
      ([openChannel, openSocket]) => {
        context.setupEnded(this);
        if (this.aborted) {
          openChannel.destroy();
          openSocket.destroy();
          return false;
        }
        startRelay(context, openSocket, openChannel);
        return true;
      },
      (error: unknown) => {
        context.setupEnded(this);
        context.log.warn({ reason: errorMessage(error) }, 'converted active-mode data connection failed');
        channel.then((c) => c.destroy(), () => undefined);
        socket.then((s) => s.destroy(), () => undefined);
        return false;
      },
    );
  }

  close(): void {
    this.aborted = true;
  }
}

/** Connects to a client's active-mode data port (from `localAddress`, when given). */
export function connectLocal(target: ActiveTarget, timeoutMs: number, localAddress?: string): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = connectTcp({ host: target.host, port: target.port, allowHalfOpen: true, ...(localAddress ? { localAddress } : {}) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to the client's data port ${target.port} timed out`));
    }, timeoutMs);
    timer.unref();
    const onError = (error: Error): void => {
      clearTimeout(timer);
      reject(error);
    };
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      socket.setNoDelay(true);
      socket.on('error', () => undefined);
      resolve(socket);
    });
    socket.once('error', onError);
  });
}
