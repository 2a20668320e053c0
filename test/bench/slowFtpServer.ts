/** An FTP server for uploads that reads its data connections slowly. */
import { createHash } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { CLIENT_TIMEOUT_MS } from './config.js';
import type { FtpAddress } from './contenders.js';
import { SocketReader } from './ftpClient.js';
import { errorText } from './measure.js';

/**
 * Reads `socket` to its end at no more than `bytesPerSecond` (pausing it
 * whenever it is ahead), hashing what it reads; keeps nothing.
 */
export function readSlowly(socket: Socket, bytesPerSecond: number, timeoutMs: number): Promise<{ bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const started = performance.now();
    let bytes = 0;
    let settled = false;
    let resumeTimer: NodeJS.Timeout | undefined;
    const finish = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(resumeTimer);
      if (error === null) resolve({ bytes, sha256: hash.digest('hex') });
      else reject(error);
    };
    const deadline = setTimeout(() => {
      finish(new Error(`upload not finished after ${Math.round(timeoutMs / 1000)} s (${bytes} bytes read)`));
      socket.destroy();
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      const aheadMs = (bytes / bytesPerSecond) * 1000 - (performance.now() - started);
      if (aheadMs >= 1) {
        socket.pause();
        resumeTimer = setTimeout(() => socket.resume(), aheadMs);
      }
    });
    socket.once('end', () => finish(null));
    socket.once('error', (error) => finish(error));
    socket.once('close', () => finish(new Error(`data connection closed before its end (${bytes} bytes read)`)));
  });
}

export type Received = { bytes: number; sha256: string } | { error: string };

/**
 * An anonymous FTP server for uploads only (USER, PASS, PWD, TYPE, EPSV, PASV,
 * STOR, QUIT) that reads each data connection slowly and keeps only its
 * SHA-256: the server side of the slow-reader section's uploads.
 */
export class SlowFtpServer {
  /** STOR results by file name. */
  readonly received = new Map<string, Received>();
  private readonly sockets = new Set<Socket>();
  private readonly closers = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    readonly address: FtpAddress,
    private readonly bytesPerSecond: number,
    private readonly timeoutMs: number,
  ) {}

  static async start(bytesPerSecond: number, timeoutMs: number): Promise<SlowFtpServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    const slow = new SlowFtpServer(server, { host: '127.0.0.1', port }, bytesPerSecond, timeoutMs);
    server.on('connection', (socket) => {
      slow.track(socket);
      void slow.session(socket).catch(() => undefined).finally(() => socket.destroy());
    });
    return slow;
  }

  async close(): Promise<void> {
    for (const close of this.closers) close();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: Socket): void {
    // Errors are seen by whoever reads the socket; one before that must not be an unhandled 'error' event.
    socket.on('error', () => undefined);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private async session(socket: Socket): Promise<void> {
    socket.setNoDelay(true);
    const control = new SocketReader(socket);
    const send = (line: string): void => void socket.write(`${line}\r\n`);
    let data: Promise<Socket> | null = null;
    send('220 slow FTP server');
    for (let commands = 0; commands < 100; commands++) {
      const line = await control.line('a command');
      const space = line.indexOf(' ');
      const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
      const argument = space === -1 ? '' : line.slice(space + 1);
      if (verb === 'USER') send('331 Any password will do.');
      else if (verb === 'PASS') send('230 Logged in.');
      else if (verb === 'PWD') send('257 "/" is the current directory.');
      else if (verb === 'TYPE') send('200 Type set.');
      else if (verb === 'EPSV' || verb === 'PASV') {
        const listener = await this.listenOnce();
        data = listener.accepted;
        const { port } = listener;
        send(verb === 'EPSV' ? `229 Entering Extended Passive Mode (|||${port}|)` : `227 Entering Passive Mode (127,0,0,1,${port >> 8},${port & 0xff})`);
      } else if (verb === 'STOR') {
        const pending = data;
        data = null;
        if (pending === null) {
          send('425 Use EPSV or PASV first.');
          continue;
        }
        let connection: Socket;
        try {
          connection = await pending;
        } catch (error) {
          this.received.set(argument, { error: errorText(error) });
          send('425 No data connection.');
          continue;
        }
        send('150 Ok to send data.');
        try {
          this.received.set(argument, await readSlowly(connection, this.bytesPerSecond, this.timeoutMs));
          send('226 Transfer complete.');
        } catch (error) {
          this.received.set(argument, { error: errorText(error) });
          send('426 Transfer aborted.');
        } finally {
          connection.destroy();
        }
      } else if (verb === 'QUIT') {
        send('221 Goodbye.');
        socket.end();
        return;
      } else {
        send('502 Command not implemented.');
      }
    }
  }

  /** A listener for one data connection, closed once it has it or after CLIENT_TIMEOUT_MS. */
  private listenOnce(): Promise<{ port: number; accepted: Promise<Socket> }> {
    return new Promise((resolve, reject) => {
      const listener = createServer();
      listener.once('error', reject);
      listener.listen(0, '127.0.0.1', () => {
        listener.off('error', reject);
        const { port } = listener.address() as AddressInfo;
        const accepted = new Promise<Socket>((accept, fail) => {
          const close = (): void => {
            clearTimeout(timer);
            this.closers.delete(abandon);
            listener.close();
          };
          const abandon = (): void => {
            close();
            fail(new Error('the slow FTP server was closed'));
          };
          const timer = setTimeout(() => {
            close();
            fail(new Error('no data connection'));
          }, CLIENT_TIMEOUT_MS);
          this.closers.add(abandon);
          listener.once('connection', (socket) => {
            close();
            this.track(socket);
            accept(socket);
          });
        });
        // Handled where it is awaited; a session that never uses it must not leave an unhandled rejection.
        accepted.catch(() => undefined);
        resolve({ port, accepted });
      });
    });
  }
}
