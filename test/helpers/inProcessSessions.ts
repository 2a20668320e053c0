import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { ControlClient, type Reply } from './ftpControl.js';

/**
 * Whole FTP sessions driven in-process over ControlClient: login, transfers
 * in a chosen data-connection mode, QUIT. Thousands of them cost no process
 * each, which is what soak and load runs need. Every wait is bounded.
 */

/** The command that sets up each data connection; PORT names 127.0.0.1. */
export type SessionMode = 'pasv' | 'epsv' | 'port';

const DEFAULT_TIMEOUT_MS = 15_000;

function expect(reply: Reply, code: number, what: string): Reply {
  if (reply.code !== code) throw new Error(`${what}: expected ${code}, got ${reply.lines.join(' / ')}`);
  return reply;
}

/** Reads a data connection to its end; rejects on reset or after `timeoutMs`. */
function readToEnd(socket: Socket, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`data connection did not end within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    });
    // An accepted connection starts paused, so nothing is read before the listeners above exist.
    socket.resume();
  });
}

function connectData(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`data connection to ${host}:${port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** A one-shot listener for an active-mode data connection. */
async function listenForData(timeoutMs: number): Promise<{ port: number; accepted: Promise<Socket> }> {
  const server = createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const accepted = new Promise<Socket>((resolve, reject) => {
    const timer = setTimeout(() => {
      server.close();
      reject(new Error('no active-mode data connection arrived in time'));
    }, timeoutMs);
    server.once('connection', (socket) => {
      clearTimeout(timer);
      server.close();
      resolve(socket);
    });
  });
  accepted.catch(() => undefined);
  return { port: (server.address() as AddressInfo).port, accepted };
}

/** One logged-in control connection. */
export class FtpSessionClient {
  private constructor(
    private readonly control: ControlClient,
    private readonly host: string,
    private readonly timeoutMs: number,
  ) {}

  /** Connects, reads the greeting and logs in anonymously in binary mode. */
  static async login(host: string, port: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<FtpSessionClient> {
    const control = await ControlClient.open(host, port, timeoutMs);
    try {
      expect(await control.reply(timeoutMs), 220, 'greeting');
      expect(await control.command('USER anonymous', timeoutMs), 331, 'USER');
      expect(await control.command('PASS soak@example.org', timeoutMs), 230, 'PASS');
      expect(await control.command('TYPE I', timeoutMs), 200, 'TYPE I');
    } catch (error) {
      control.close();
      throw error;
    }
    return new FtpSessionClient(control, host, timeoutMs);
  }

  /** RETR or LIST in `mode`: the bytes of the data connection, after the transfer's 226. */
  async transfer(command: string, mode: SessionMode): Promise<Buffer> {
    const { control, timeoutMs } = this;
    let data: Promise<Socket>;
    if (mode === 'port') {
      const listener = await listenForData(timeoutMs);
      expect(await control.command(`PORT 127,0,0,1,${listener.port >> 8},${listener.port & 255}`, timeoutMs), 200, 'PORT');
      data = listener.accepted;
    } else if (mode === 'pasv') {
      const reply = expect(await control.command('PASV', timeoutMs), 227, 'PASV');
      const numbers = /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(reply.lines[0] ?? '');
      if (numbers === null) throw new Error(`unparsable 227: ${reply.lines[0] ?? ''}`);
      const [h1, h2, h3, h4, p1, p2] = numbers.slice(1).map(Number) as [number, number, number, number, number, number];
      data = connectData(`${h1}.${h2}.${h3}.${h4}`, p1 * 256 + p2, timeoutMs);
    } else {
      const reply = expect(await control.command('EPSV', timeoutMs), 229, 'EPSV');
      const port = /\(\|\|\|(\d+)\|\)/.exec(reply.lines[0] ?? '')?.[1];
      if (port === undefined) throw new Error(`unparsable 229: ${reply.lines[0] ?? ''}`);
      data = connectData(this.host, Number(port), timeoutMs);
    }
    data.catch(() => undefined);
    const socket = mode === 'port' ? undefined : await data;
    control.send(`${command}\r\n`);
    const preliminary = await control.reply(timeoutMs);
    if (preliminary.code !== 150 && preliminary.code !== 125) {
      socket?.destroy();
      void data.then((late) => late.destroy(), () => undefined);
      throw new Error(`${command}: expected 150, got ${preliminary.lines.join(' / ')}`);
    }
    const bytes = await readToEnd(socket ?? (await data), timeoutMs);
    expect(await control.reply(timeoutMs), 226, `${command} (end of transfer)`);
    return bytes;
  }

  /** QUIT, its 221, and the server's close. */
  async quit(): Promise<void> {
    try {
      expect(await this.control.command('QUIT', this.timeoutMs), 221, 'QUIT');
      if (!(await this.control.closedWithin(this.timeoutMs))) throw new Error('the control connection stayed open after 221');
    } finally {
      this.control.close();
    }
  }

  /** Drops the control connection without QUIT. */
  close(): void {
    this.control.close();
  }
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
