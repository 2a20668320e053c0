import { withCrlf } from './lineFramer.js';
import { isPreliminary, ReplyTracker } from './replies.js';

/**
 * How the FTP server wants TLS (RFC 4217): `explicit`, a plain greeting and
 * then `AUTH TLS`; `implicit`, TLS from the first byte (usually port 990).
 */
export type FtpTlsMode = 'explicit' | 'implicit';

/** What the socket side does next while TLS with the FTP server is negotiated. */
export type NegotiationStep =
  /** Nothing to do: wait for the next line. */
  | { kind: 'wait' }
  /** Send this command to the server. */
  | { kind: 'send'; line: Buffer }
  /** Start the TLS handshake on the control connection now, then call tlsUp(). */
  | { kind: 'start-tls' }
  /** Done: the control connection and every data connection are protected; hand `greeting` to the client. */
  | { kind: 'ready'; greeting: Buffer[] }
  /** TLS cannot be had: end the session with `reply` (a 421) to the client. */
  | { kind: 'fail'; reason: string; reply: string };

/** Bounds on one reply during the negotiation, as for a held reply (controlState's REPLY_LIMITS). */
const MAX_REPLY_LINES = 64;
const MAX_REPLY_BYTES = 16 * 1024;

type Phase =
  /** Waiting for the 220 (over TLS when implicit). */
  | 'greeting'
  /** AUTH TLS sent. */
  | 'auth'
  /** The handshake is running: the server must stay silent. */
  | 'handshake'
  | 'pbsz'
  | 'prot'
  | 'ready'
  | 'failed';

function command(text: string): Buffer {
  return withCrlf(Buffer.from(text, 'latin1'));
}

/** A server reply quoted in a message: its last line, printable, bounded. */
function quote(line: Buffer): string {
  const text = line.toString('latin1').replace(/[^\x20-\x7e]/g, '?');
  return text.length > 120 ? `${text.slice(0, 120)}...` : text;
}

/**
 * The opening of a control connection to an FTP server that must speak TLS,
 * as a pure state machine: server lines in, what to send and when to start
 * the handshake out. Nothing from the client reaches the server until it
 * says `ready`: the client's USER and PASS never travel in plaintext, and a
 * server that refuses TLS ends the session (no fallback to plain FTP).
 *
 * explicit: 220 -> AUTH TLS -> 234 -> handshake -> PBSZ 0 -> 200 -> PROT P -> 200
 * implicit: handshake -> 220 -> PBSZ 0 -> 200 -> PROT P -> 200
 *
 * The greeting is held and handed over at the end, so that the client's
 * first reply is either the server's 220 over a protected path or a 421.
 */
export class UpstreamTlsNegotiation {
  private phase: Phase;
  private readonly replies = new ReplyTracker();
  private reply: { lines: Buffer[]; bytes: number } = { lines: [], bytes: 0 };
  private greeting: Buffer[] = [];

  constructor(private readonly mode: FtpTlsMode) {
    this.phase = mode === 'implicit' ? 'handshake' : 'greeting';
  }

  /** The first step: implicit TLS starts with the handshake, explicit with the greeting. */
  start(): NegotiationStep {
    return this.mode === 'implicit' ? { kind: 'start-tls' } : { kind: 'wait' };
  }

  /** The handshake succeeded (and the certificate was accepted). */
  tlsUp(): NegotiationStep {
    if (this.phase !== 'handshake') throw new Error('no TLS handshake was started');
    if (this.mode === 'implicit') {
      this.phase = 'greeting';
      return { kind: 'wait' };
    }
    this.phase = 'pbsz';
    return { kind: 'send', line: command('PBSZ 0') };
  }

  onServerLine(line: Buffer): NegotiationStep {
    if (this.phase === 'ready' || this.phase === 'failed') throw new Error(`no server line is expected once the negotiation is ${this.phase}`);
    if (this.phase === 'handshake') return this.fail('the FTP server sent plaintext after agreeing to TLS', 'the FTP server sent plaintext where the TLS handshake was due');
    const position = this.replies.classify(line);
    if (this.reply.lines.length >= MAX_REPLY_LINES || this.reply.bytes + line.length > MAX_REPLY_BYTES) {
      return this.fail('the FTP server sent a reply over the size limit while TLS was negotiated', 'the FTP server sent a reply over the size limit');
    }
    this.reply.lines.push(line);
    this.reply.bytes += line.length;
    if (position.kind === 'garbage') return this.fail(`the FTP server sent something that is not an FTP reply (${quote(line)})`, 'the FTP server did not answer as FTP');
    if (position.kind !== 'final') return { kind: 'wait' };
    const lines = this.reply.lines;
    this.reply = { lines: [], bytes: 0 };
    return this.onReply(position.code, lines);
  }

  private onReply(code: number, lines: Buffer[]): NegotiationStep {
    const last = lines.at(-1)!;
    if (code === 421) return this.fail(`the FTP server closed the session (${quote(last)})`, `the FTP server closed the session (${quote(last)})`);
    switch (this.phase) {
      case 'greeting':
        // 120: "ready in nnn minutes", then the 220 follows.
        if (isPreliminary(code)) return { kind: 'wait' };
        if (code !== 220) return this.fail(`the FTP server's greeting is not 220 (${quote(last)})`, `the FTP server refused the session (${quote(last)})`);
        this.greeting = lines;
        if (this.mode === 'implicit') {
          this.phase = 'pbsz';
          return { kind: 'send', line: command('PBSZ 0') };
        }
        this.phase = 'auth';
        return { kind: 'send', line: command('AUTH TLS') };
      case 'auth':
        if (code === 234) {
          this.phase = 'handshake';
          return { kind: 'start-tls' };
        }
        return this.fail(
          `the FTP server refused AUTH TLS (${quote(last)}), and TLS to the server was asked for`,
          `the FTP server does not offer TLS (it answered AUTH TLS with ${quote(last)}); ftpfwd was told to use TLS and will not fall back to plain FTP`,
        );
      case 'pbsz':
        if (code >= 200 && code < 300) {
          this.phase = 'prot';
          return { kind: 'send', line: command('PROT P') };
        }
        return this.fail(`the FTP server refused PBSZ 0 (${quote(last)})`, `the FTP server refused PBSZ 0 (${quote(last)})`);
      case 'prot':
        if (code >= 200 && code < 300) {
          this.phase = 'ready';
          return { kind: 'ready', greeting: this.greeting };
        }
        return this.fail(
          `the FTP server refused PROT P (${quote(last)}): its data connections would not be protected`,
          `the FTP server refused to protect data connections (it answered PROT P with ${quote(last)})`,
        );
    }
    throw new Error(`unexpected negotiation phase ${this.phase}`);
  }

  private fail(reason: string, explanation: string): NegotiationStep {
    this.phase = 'failed';
    return { kind: 'fail', reason, reply: `421 Service not available: ${explanation}; closing.` };
  }
}
