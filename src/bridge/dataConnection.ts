import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { DataPeerCheck } from '../session/dataPeer.js';
import { errorMessage } from '../errors.js';

/**
 * A one-shot passive data listener: it takes the first connection that
 * passes the peer check (others are closed at once), then stops
 * listening. The connection may arrive before or after the transfer
 * command; it waits paused until the transfer takes it.
 */
export class PassiveDataListener {
  /** The verified connection, until a transfer takes it. */
  private waiting: Socket | null = null;
  /** A verified connection has arrived: nobody else gets one. */
  private accepted = false;
  private closed = false;
  private readonly acceptTimer: NodeJS.Timeout;
  private taker: ((socket: Socket | null) => void) | null = null;

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
    private readonly control: Socket,
    private readonly peerCheck: DataPeerCheck,
    private readonly log: Logger,
    acceptMs: number,
  ) {
    server.on('connection', (socket: Socket) => void this.onConnection(socket));
    server.on('error', (error) => log.warn({ reason: error.message }, 'passive data listener error'));
    this.acceptTimer = setTimeout(() => {
      log.warn({ port }, 'no data connection arrived in time; passive listener closed');
      this.close();
    }, acceptMs);
    this.acceptTimer.unref();
  }

  static async open(host: string, control: Socket, peerCheck: DataPeerCheck, acceptMs: number, log: Logger): Promise<PassiveDataListener> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: 0, exclusive: true }, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    return new PassiveDataListener(server, host, port, control, peerCheck, log, acceptMs);
  }

  private async onConnection(socket: Socket): Promise<void> {
    socket.on('error', () => undefined);
    let allowed = false;
    try {
      allowed = await this.peerCheck(socket, this.control);
    } catch (error) {
      this.log.warn({ reason: errorMessage(error) }, 'the data connection peer check failed');
    }
    if (!allowed || this.accepted || this.closed) {
      this.log.warn({ from: socket.remoteAddress, allowed }, 'refused a data connection that is not the control connection client\'s');
      socket.destroy();
      return;
    }
    this.accepted = true;
    this.stopListening();
    socket.setNoDelay(true);
    const taker = this.taker;
    this.taker = null;
    if (taker) taker(socket);
    else this.waiting = socket;
  }

  /** The verified data connection, once it has come (it is then the caller's); null if the listener closed first. */
  take(): Promise<Socket | null> {
    const socket = this.waiting;
    this.waiting = null;
    if (socket) return Promise.resolve(socket);
    if (this.closed || this.accepted) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.taker = resolve;
    });
  }

  private stopListening(): void {
    clearTimeout(this.acceptTimer);
    this.server.close();
  }

  /** Stops listening and drops a connection nobody took; one already taken belongs to its transfer. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopListening();
    this.waiting?.destroy();
    this.waiting = null;
    const taker = this.taker;
    this.taker = null;
    taker?.(null);
  }
}
