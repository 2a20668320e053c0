import type { Duplex } from 'node:stream';
import { LineBuffer } from '../ftp/lineFramer.js';
import { ReplyTracker } from '../ftp/replies.js';

/** One complete reply: its code and every line of it, as text. */
export interface FtpReply {
  code: number;
  lines: string[];
}

/** Why no reply came: none in time, the connection ended, or the server broke the protocol. */
export type DialogFailure = 'timeout' | 'closed' | 'not-ftp';

export type NextReply = { ok: true; reply: FtpReply } | { ok: false; reason: string; failure: DialogFailure };

/** A greeting banner of a few dozen lines is common; far more is a flood. */
const MAX_REPLY_LINES = 200;
/** Replies the server sent ahead of our commands. */
const MAX_QUEUED_REPLIES = 16;

/**
 * The client side of an FTP control connection over an SSH channel, for
 * the few commands a check sends: complete replies in order, each wait
 * bounded in time, every line and reply bounded in size. The protocol
 * itself (framing, what ends a reply) is the pure code in src/ftp.
 */
export class ControlDialog {
  private readonly buffer: LineBuffer;
  private readonly tracker = new ReplyTracker();
  private current: string[] = [];
  private readonly replies: FtpReply[] = [];
  /** Why no further reply can come; null while the dialog is open. */
  private endReason: string | null = null;
  private endFailure: DialogFailure = 'closed';
  private wake: (() => void) | null = null;

  constructor(
    /** An SSH channel (ssh2's ClientChannel is a Duplex). */
    private readonly channel: Duplex,
    private readonly maxLineLength: number,
  ) {
    this.buffer = new LineBuffer(maxLineLength);
    channel.on('data', (chunk: Buffer) => this.onData(chunk));
    channel.on('end', () => this.end('the FTP server closed the connection'));
    channel.on('close', () => this.end('the SSH channel closed'));
    channel.on('error', (error: Error) => this.end(`SSH channel error: ${error.message}`));
  }

  /** The next complete reply, or why none came within timeoutMs. */
  async next(timeoutMs: number): Promise<NextReply> {
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      while (this.replies.length === 0 && this.endReason === null && !timedOut) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          timer ??= setTimeout(() => {
            timedOut = true;
            this.wake?.();
          }, timeoutMs);
          timer.unref();
        });
        this.wake = null;
      }
    } finally {
      clearTimeout(timer);
    }
    const reply = this.replies.shift();
    if (reply !== undefined) return { ok: true, reply };
    if (this.endReason !== null) return { ok: false, reason: this.endReason, failure: this.endFailure };
    return { ok: false, reason: `no reply within ${timeoutMs} ms`, failure: 'timeout' };
  }

  send(command: string): void {
    if (this.endReason === null) this.channel.write(`${command}\r\n`);
  }

  close(): void {
    this.end('closed');
    this.channel.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.endReason !== null) return;
    this.buffer.push(chunk);
    for (let next = this.buffer.next(); next.kind !== 'none' && this.endReason === null; next = this.buffer.next()) {
      if (next.kind === 'overflow') {
        this.fail(`the FTP server sent a line longer than ${this.maxLineLength} bytes`);
        break;
      }
      this.onLine(next.line);
    }
    this.wake?.();
  }

  private onLine(line: Buffer): void {
    const text = line.toString('latin1');
    const kind = this.tracker.classify(line);
    if (kind.kind === 'garbage') {
      this.fail(`the server sent ${JSON.stringify(text.slice(0, 80))}, which is not an FTP reply`);
      return;
    }
    this.current.push(text);
    if (this.current.length > MAX_REPLY_LINES) {
      this.fail(`the FTP server sent a reply of more than ${MAX_REPLY_LINES} lines`);
      return;
    }
    if (kind.kind !== 'final') return;
    this.replies.push({ code: kind.code, lines: this.current });
    this.current = [];
    if (this.replies.length > MAX_QUEUED_REPLIES) this.fail(`the FTP server sent more than ${MAX_QUEUED_REPLIES} replies nobody asked for`);
  }

  /** A server that breaks the protocol gets no more of our attention. */
  private fail(reason: string): void {
    this.end(reason, 'not-ftp');
    this.replies.length = 0;
    this.channel.destroy();
  }

  private end(reason: string, failure: DialogFailure = 'closed'): void {
    if (this.endReason === null) {
      this.endReason = reason;
      this.endFailure = failure;
    }
    this.wake?.();
  }
}

/** The last line of a reply: the one that carries its code and, mostly, its gist. */
export function lastLine(reply: FtpReply): string {
  return reply.lines.at(-1) ?? String(reply.code);
}
