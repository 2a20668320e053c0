import { connect as connectTcp, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ClientChannel, TcpConnectionDetails } from 'ssh2';
import type { ActiveTarget } from '../ftp/dataAddresses.js';
import { normalizeAddress } from '../ftp/controlState.js';
import type { RemoteForward, SshConnection } from '../ssh/sshConnection.js';
import { relay, type Relay, type RelayResult } from './relay.js';

export interface DataTimeouts {
  /** How long a data listener or remote forward waits for its one connection. */
  acceptMs: number;
  /** How long an SSH channel or local connection may take to open. */
  connectMs: number;
  /** How long a local socket may take to drain after its channel closed. */
  lingerMs: number;
}

/** Something a session must close when it ends. */
export interface Closable {
  close(): void;
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
  /** Registers a live data connection with its session, which closes it on session end. */
  track(closable: Closable): () => void;
  /** A relay started carrying bytes; `done` is called once when it ends. */
  transferStarted(): { done(record: TransferRecord): void };
}

/** Carries one relayed data connection and reports it to its session when it ends. */
function superviseRelay(context: DataContext, running: Relay): void {
  const untrack = context.track({ close: () => running.abort(new Error('session closed')) });
  const transfer = context.transferStarted();
  void running.done.then((result: RelayResult) => {
    untrack();
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
  /** Only this address may connect: the client's own. */
  clientAddress: string;
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
export class PassiveDataListener implements Closable {
  private closed = false;
  private acceptTimer: NodeJS.Timeout | undefined;
  private readonly channel: Promise<ClientChannel>;
  /** Whether the SSH channel for this data connection could be opened. */
  readonly channelReady: Promise<boolean>;
  /** Lets go of the session's hold once this listener is used or closed. */
  private readonly untrack: () => void;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly context: DataContext,
    request: PassiveListenerRequest,
  ) {
    const { ssh, timeouts } = context;
    this.untrack = context.track(this);
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
    server.on('connection', (socket: Socket) => this.onConnection(socket, request.clientAddress));
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

  private onConnection(socket: Socket, clientAddress: string): void {
    if (this.closed || normalizeAddress(socket.remoteAddress ?? '') !== normalizeAddress(clientAddress)) {
      // Only the control connection's own client may take this data
      // connection; anyone else could steal or inject a transfer.
      this.context.log.warn({ from: socket.remoteAddress }, 'refused a data connection from another address');
      socket.destroy();
      return;
    }
    this.stopListening();
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    this.channel.then(
      (channel) => {
        if (this.closed) {
          channel.destroy();
          socket.destroy();
          return;
        }
        this.closed = true;
        this.untrack();
        superviseRelay(this.context, relay(socket, channel, this.context.timeouts.lingerMs));
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
    this.untrack();
    this.stopListening();
    this.channel.then(
      (channel) => channel.destroy(),
      () => undefined,
    );
  }
}

/**
 * An active-mode data connection through a remote forward: the FTP server
 * connects to the SSH server's side, and we connect that to the client's
 * own data port. One connection is taken, then the forward is cancelled.
 */
export class ActiveDataForward implements Closable {
  private forward: RemoteForward | null = null;
  private used = false;
  private closed = false;
  private acceptTimer: NodeJS.Timeout | undefined;
  private untrack: () => void = () => undefined;

  private constructor(
    private readonly context: DataContext,
    private readonly target: ActiveTarget,
  ) {}

  static async open(context: DataContext, bindAddress: string, target: ActiveTarget): Promise<ActiveDataForward> {
    const active = new ActiveDataForward(context, target);
    active.forward = await context.ssh.bindRemoteForward(
      bindAddress,
      (details, accept, reject) => active.onIncoming(details, accept, reject),
      context.timeouts.connectMs,
    );
    active.untrack = context.track(active);
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
    this.used = true;
    this.cancelForward();
    // Connect to the client first: reject() after accept() would take the
    // whole SSH connection down, so the decision must come before accept().
    connectLocal(this.target, this.context.timeouts.connectMs).then(
      (socket) => {
        if (this.closed) {
          socket.destroy();
          reject();
          return;
        }
        this.closed = true;
        this.untrack();
        superviseRelay(this.context, relay(socket, accept(), this.context.timeouts.lingerMs));
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
    this.forward?.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.untrack();
    this.cancelForward();
  }
}

/**
 * Active mode carried as passive upstream: open the channel to the server's
 * passive port and connect it to the client's PORT address ourselves.
 * Resolves with whether both ends could be connected.
 */
export function connectConvertedActive(
  context: DataContext,
  origin: { host: string; port: number },
  serverHost: string,
  serverPort: number,
  target: ActiveTarget,
): Promise<boolean> {
  let aborted = false;
  const untrack = context.track({ close: () => (aborted = true) });
  const channel = context.ssh.openDirectTcpip(origin, serverHost, serverPort, context.timeouts.connectMs);
  const socket = connectLocal(target, context.timeouts.connectMs);
  return Promise.all([channel, socket]).then(
    ([openChannel, openSocket]) => {
      untrack();
      if (aborted) {
        openChannel.destroy();
        openSocket.destroy();
        return false;
      }
      superviseRelay(context, relay(openSocket, openChannel, context.timeouts.lingerMs));
      return true;
    },
    (error: unknown) => {
      untrack();
      context.log.warn({ reason: errorMessage(error) }, 'converted active-mode data connection failed');
      channel.then((c) => c.destroy(), () => undefined);
      socket.then((s) => s.destroy(), () => undefined);
      return false;
    },
  );
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
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      socket.on('error', () => undefined);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
