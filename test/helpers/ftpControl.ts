import { connect, type Socket } from 'node:net';

export interface Reply {
  code: number;
  /** Every line of the reply, without terminators. */
  lines: string[];
}

/**
 * A bare FTP control connection for tests that need to send exact bytes
 * (hostile commands, pipelining) and read whole replies, with a timeout on
 * every wait.
 */
export class ControlClient {
  private buffered = '';
  private readonly waiters: Array<() => void> = [];
  private ended = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => {
      this.buffered += text;
      this.wake();
    });
    // Half-open sockets (for endInput) see the server's end as 'end', not 'close'.
    const ended = (): void => {
      this.ended = true;
      this.wake();
    };
    socket.on('end', ended);
    socket.on('close', ended);
    socket.on('error', () => undefined);
  }

  /** `allowHalfOpen`: the server's end leaves our side open, for endInput(); otherwise we close when it does. */
  static open(host: string, port: number, timeoutMs = 10_000, { allowHalfOpen = false } = {}): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, allowHalfOpen });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connecting to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new ControlClient(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  get localAddress(): string {
    return this.socket.localAddress ?? '';
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Sends one command (CRLF added) and returns its reply. */
  async command(line: string, timeoutMs = 10_000): Promise<Reply> {
    this.send(`${line}\r\n`);
    return this.reply(timeoutMs);
  }

  /** Reads the next complete reply, single- or multi-line. */
  async reply(timeoutMs = 10_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = this.takeReply();
      if (parsed) return parsed;
      if (this.ended) throw new Error(`connection closed; unparsed: ${JSON.stringify(this.buffered)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no complete reply within ${timeoutMs} ms; got ${JSON.stringify(this.buffered)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves true once the server side has closed the connection, false after the timeout. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.ended;
  }

  /** Half-closes: no more commands, but replies are still read. */
  endInput(): void {
    this.socket.end();
  }

  close(): void {
    this.socket.destroy();
  }

  private takeReply(): Reply | null {
    const lines = this.buffered.split('\r\n');
    // The last element is an unfinished line (or '').
    const complete = lines.slice(0, -1);
    if (complete.length === 0) return null;
    const first = /^(\d{3})([ -])/.exec(complete[0]!);
    if (!first) throw new Error(`not a reply line: ${JSON.stringify(complete[0])}`);
    let end = 0;
    if (first[2] === '-') {
      end = complete.findIndex((line, index) => index > 0 && line.startsWith(`${first[1]} `));
      if (end === -1) return null;
    }
    const replyLines = complete.slice(0, end + 1);
    this.buffered = lines.slice(end + 1).join('\r\n');
    return { code: Number(first[1]), lines: replyLines };
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}
