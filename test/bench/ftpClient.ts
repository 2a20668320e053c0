/**
 * A minimal FTP client (EPSV, RETR/STOR, SOCKS5 for ssh -D) with none of
 * curl's one-second waits, and the socket reader it and the slow FTP server
 * share.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { CLIENT_TIMEOUT_MS } from './config.js';
import type { Contender, SocksProxy } from './contenders.js';
import { errorText, type TransferOutcome } from './measure.js';

/**
 * Everything a socket delivers, kept until asked for, so that a SOCKS reply,
 * FTP replies and data can be read exactly, each wait with a deadline.
 */
export class SocketReader {
  private buffered: Buffer = Buffer.alloc(0);
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  /** performance.now() when the first byte arrived. */
  firstDataAt: number | null = null;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.firstDataAt ??= performance.now();
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', (error) => {
      this.failure = error;
      this.notify();
    });
  }

  /** `n` bytes. */
  async take(n: number, what: string): Promise<Buffer> {
    const deadline = Date.now() + CLIENT_TIMEOUT_MS;
    while (this.buffered.length < n) await this.more(deadline, what, false);
    return this.consume(n);
  }

  /** One line, without its terminator. */
  async line(what: string): Promise<string> {
    const deadline = Date.now() + CLIENT_TIMEOUT_MS;
    for (let end = this.buffered.indexOf(10); ; end = this.buffered.indexOf(10)) {
      if (end !== -1) return this.consume(end + 1).toString('latin1').replace(/\r?\n$/, '');
      await this.more(deadline, what, false);
    }
  }

  /** Everything up to the peer's end of stream. */
  async rest(what: string): Promise<Buffer> {
    const deadline = Date.now() + CLIENT_TIMEOUT_MS;
    while (!this.ended) await this.more(deadline, what, true);
    if (this.failure) throw this.failure;
    return this.consume(this.buffered.length);
  }

  private consume(n: number): Buffer {
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Waits for more bytes or the end; throws on error, timeout, or an end that was not wanted. */
  private async more(deadline: number, what: string, endIsFine: boolean): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.ended) {
      if (endIsFine) return;
      throw new Error(`connection closed while waiting for ${what}`);
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

export function tcpConnect(host: string, port: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = connectTcp({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${host}:${port} timed out`));
    }, CLIENT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      // As curl and lftp do.
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** A TCP connection to host:port, through a SOCKS5 CONNECT by host name (like curl --socks5-hostname) when a proxy is given. */
export async function openConnection(socks: SocksProxy | null, host: string, port: number): Promise<SocketReader> {
  const socket = await tcpConnect(socks?.host ?? host, socks?.port ?? port);
  const reader = new SocketReader(socket);
  if (socks === null) return reader;
  try {
    socket.write(Buffer.from([5, 1, 0]));
    const method = await reader.take(2, 'the SOCKS5 greeting');
    if (method[0] !== 5 || method[1] !== 0) throw new Error('the SOCKS5 proxy wants authentication');
    const name = Buffer.from(host, 'latin1');
    socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]));
    const head = await reader.take(4, 'the SOCKS5 reply');
    if (head[0] !== 5 || head[1] !== 0) throw new Error(`SOCKS5 CONNECT to ${host}:${port} refused (reply ${String(head[1])})`);
    const type = head[3];
    const addressLength = type === 1 ? 4 : type === 4 ? 16 : type === 3 ? (await reader.take(1, 'the SOCKS5 reply'))[0]! : -1;
    if (addressLength < 0) throw new Error(`SOCKS5 reply with address type ${String(type)}`);
    await reader.take(addressLength + 2, 'the SOCKS5 reply');
    return reader;
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

export interface Reply {
  code: number;
  text: string;
}

/**
 * One anonymous FTP session, commands one at a time, data connections by
 * EPSV. What curl does per file, minus SIZE and its one-second waits.
 */
export class FtpClient {
  private constructor(
    private readonly control: SocketReader,
    private readonly socks: SocksProxy | null,
    private readonly host: string,
  ) {}

  static async login(socks: SocksProxy | null, host: string, port: number): Promise<FtpClient> {
    const client = new FtpClient(await openConnection(socks, host, port), socks, host);
    try {
      expect(await client.reply(), [220], 'greeting');
      const user = expect(await client.command('USER anonymous'), [230, 331], 'USER');
      if (user.code === 331) expect(await client.command('PASS bench@localhost'), [230], 'PASS');
      expect(await client.command('TYPE I'), [200], 'TYPE I');
      return client;
    } catch (error) {
      client.close();
      throw error;
    }
  }

  /** `timing.firstByteAt` is set to when the first byte of the file arrived (performance.now()). */
  async get(path: string, timing?: { firstByteAt?: number }): Promise<Buffer> {
    const data = await this.openData();
    try {
      expect(await this.command(`RETR ${path}`), [125, 150], `RETR ${path}`);
      const [body, done] = await Promise.all([data.rest(`the data of ${path}`), this.reply()]);
      expect(done, [226], `RETR ${path}`);
      if (timing !== undefined && data.firstDataAt !== null) timing.firstByteAt = data.firstDataAt;
      return body;
    } finally {
      data.socket.destroy();
    }
  }

  async put(path: string, body: Buffer): Promise<void> {
    const data = await this.openData();
    try {
      expect(await this.command(`STOR ${path}`), [125, 150], `STOR ${path}`);
      await new Promise<void>((resolve) => data.socket.end(body, resolve));
      expect(await this.reply(), [226], `STOR ${path}`);
    } finally {
      data.socket.destroy();
    }
  }

  async quit(): Promise<void> {
    expect(await this.command('QUIT'), [221], 'QUIT');
  }

  close(): void {
    this.control.socket.destroy();
  }

  private async openData(): Promise<SocketReader> {
    const reply = expect(await this.command('EPSV'), [229], 'EPSV');
    const port = /\(\|\|\|(\d+)\|\)/.exec(reply.text)?.[1];
    if (port === undefined) throw new Error(`unreadable EPSV reply: ${reply.text}`);
    return openConnection(this.socks, this.host, Number(port));
  }

  private command(line: string): Promise<Reply> {
    this.control.socket.write(`${line}\r\n`);
    return this.reply();
  }

  private async reply(): Promise<Reply> {
    const first = await this.control.line('a reply');
    const match = /^(\d{3})([ -])/.exec(first);
    if (!match) throw new Error(`not an FTP reply: ${JSON.stringify(first)}`);
    if (match[2] === '-') {
      let last = '';
      for (let lines = 0; lines < 1000 && !last.startsWith(`${match[1]} `); lines++) last = await this.control.line('the rest of a reply');
    }
    return { code: Number(match[1]), text: first };
  }
}

export function expect(reply: Reply, codes: number[], what: string): Reply {
  if (!codes.includes(reply.code)) throw new Error(`${what}: unexpected reply ${reply.text}`);
  return reply;
}

/** One session: log in, run `work`, log out. Problems come back as text. */
export async function inSession(contender: Contender, work: (client: FtpClient) => Promise<void>): Promise<TransferOutcome> {
  let client: FtpClient | undefined;
  try {
    client = await FtpClient.login(contender.socks, contender.ftpHost, contender.ftpPort);
    await work(client);
    await client.quit();
    return { problems: [], stalls: 0 };
  } catch (error) {
    return { problems: [`FTP session: ${errorText(error)}`], stalls: 0 };
  } finally {
    client?.close();
  }
}
