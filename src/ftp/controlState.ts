import { isIPv4 } from 'node:net';
import { checkActiveCommand, type ActiveRefusal, type ActiveVerb } from './activeTarget.js';
import { isTransferVerb, parseCommandLine, stripTelnetInterrupt, type CommandLine } from './commands.js';
import {
  formatEprtArgument,
  formatPortArgument,
  maskDataAddresses,
  parseEpsvReply,
  parsePasvReply,
  rewriteEpsvLine,
  rewritePasvLine,
  type ActiveTarget,
} from './dataAddresses.js';
import { Fifo } from './fifo.js';
import { withCrlf } from './lineFramer.js';
import { isPreliminary, ReplyTracker } from './replies.js';

/**
 * How active mode (PORT/EPRT) is carried:
 * - `forward`: ask the SSH server for a remote forward and point the FTP
 *   server at it;
 * - `convert`: send PASV/EPSV upstream instead and connect to the client's
 *   data port ourselves, so no remote forward is needed at all.
 */
export type ActiveStrategy = 'forward' | 'convert';

export interface ControlPolicy {
  /** The address the client's control connection comes from. */
  clientAddress: string;
  activeStrategy: ActiveStrategy;
  /** PORT/EPRT to ports below this are refused (privileged ports). */
  minimumActivePort: number;
  /** ftpfwd serves TLS to its clients: AUTH TLS is accepted rather than refused. */
  clientTls?: boolean;
  /** ftpfwd speaks TLS to the server itself (then PBSZ/PROT are answered here and never reach it). */
  serverTls?: boolean;
}

export type PassiveVerb = 'PASV' | 'EPSV';
export type { ActiveVerb } from './activeTarget.js';

/** Work the session has to carry out with sockets and SSH for a line. */
export type Action =
  /** A 227/229 answered PASV/EPSV: listen locally, then call passiveListenerReady/Failed. */
  | { kind: 'open-passive'; verb: PassiveVerb; serverHost: string | null; serverPort: number }
  /** A valid PORT/EPRT: bind a remote forward, then call activeForwardReady/Failed. */
  | { kind: 'open-active-forward'; verb: ActiveVerb; target: ActiveTarget }
  /** The upstream passive reply for a converted PORT/EPRT: connect the two ends now. */
  | { kind: 'connect-converted'; target: ActiveTarget; serverHost: string | null; serverPort: number }
  /**
   * A new data connection is being set up, or the server refused the last
   * one: whatever earlier set-up is still unused is void and must be
   * released now, so that a session never holds more than one.
   */
  | { kind: 'release-data' }
  /** REIN was accepted: every data connection of the session is void. */
  | { kind: 'reset-data' }
  /**
   * AUTH TLS from the client was accepted: send `reply` (234) and then take
   * the client's TLS handshake; nothing more is read from it in plaintext.
   */
  | { kind: 'start-client-tls'; reply: Buffer }
  /** End the session: the server said 421, or broke the protocol (then toClient carries our 421). */
  | { kind: 'close-session'; reason: string };

export interface Step {
  toServer: Buffer[];
  toClient: Buffer[];
  action?: Action;
  /** Things that went wrong on the server's side and were repaired, for the log. */
  warnings?: string[];
}

type Pending =
  | {
      kind: 'server';
      verb: string;
      /** An ABOR sent while a transfer command still awaited its reply. */
      abortsTransfer?: boolean;
      /**
       * The client has been answered already (its transfer failed on our
       * side): the server's replies to this command are consumed, not sent.
       */
      answered?: boolean;
    }
  | { kind: 'converted'; verb: PassiveVerb; target: ActiveTarget }
  | { kind: 'local'; reply: Buffer };

/** A multi-line reply collected whole, so that it is rewritten or replaced as one. */
interface HeldReply {
  code: number;
  lines: Buffer[];
  bytes: number;
}

/** Lines of a reply passed through as they come (not held), counted against the bounds. */
interface StreamedReply {
  lines: number;
  bytes: number;
}

const GREETING = '(greeting)';

/**
 * Bounds on one reply from the server. A reply that could name a data
 * address is held until its last line and has tight bounds; any other is
 * passed through as it arrives, within generous ones (STAT of a large
 * directory is a long reply). Past either: 421 and close.
 */
export const REPLY_LIMITS = {
  heldLines: 64,
  heldBytes: 16 * 1024,
  lines: 50_000,
  bytes: 4 * 1024 * 1024,
} as const;

function reply(text: string): Buffer {
  return withCrlf(Buffer.from(text, 'latin1'));
}

export const LOCAL_REPLIES = {
  syntax: '500 Syntax error, command unrecognized.',
  badCharacter: '500 Command refused: it contains a NUL or CR byte.',
  authRefused: '534 AUTH refused: this connection is already encrypted end to end by SSH; continue without TLS.',
  authAccepted: '234 AUTH TLS successful; go ahead with the TLS handshake.',
  authMechanism: '504 AUTH mechanism not supported; use AUTH TLS.',
  authRepeated: '503 TLS is already in use on this connection.',
  authPipelined: '503 AUTH TLS must wait for the replies to earlier commands.',
  protectionNeedsAuth: '503 Security data exchange not complete: send AUTH TLS first.',
  protectionBuffer: '200 PBSZ=0',
  protectionPrivate: '200 Protection level set to Private.',
  protectionClear: '200 Protection level set to Clear.',
  protectionLevel: '536 Requested PROT level not supported by mechanism.',
  protectionArgument: '504 PROT takes C or P.',
  clearControlRefused: '534 CCC refused: the control connection stays protected.',
  reinitRefused: '502 REIN is not available while TLS is in use.',
  longAddressRefused: '502 LPRT/LPSV not implemented; use EPRT/EPSV.',
  badArgument: (detail: string) => `501 Syntax error in parameters or arguments: ${detail}.`,
  bounce: '501 Rejected: the data address must be your own address (FTP bounce protection).',
  privilegedPort: (min: number) => `501 Rejected: data port must be ${min} or above.`,
  activeSetupFailed: '425 Cannot open an active-mode data connection through the SSH tunnel.',
  passiveSetupFailed: '425 Cannot open a passive-mode data connection through the SSH tunnel.',
  dataChannelFailed: '425 Cannot open data connection: the SSH server refused the data channel.',
  badPassiveReply: '425 The server sent a passive-mode reply that could not be used.',
  wrongPassiveReply: (verb: PassiveVerb) => `425 The server answered ${verb} with a reply of the other passive form.`,
  activeNeedsPassive: (code: number) => `${code >= 400 ? code : 425} Active mode through the tunnel needs passive mode on the server, which refused it.`,
  converted: (verb: ActiveVerb) => `200 ${verb} command successful.`,
  replyTooLong: '421 Service not available: the FTP server sent a reply over the size limit; closing.',
} as const;

const PASSIVE_CODE: Record<PassiveVerb, number> = { PASV: 227, EPSV: 229 };

/** Replies that answer an ABOR (RFC 959: 225 or 226; 500/502 from servers without it). */
function answersAbort(code: number): boolean {
  return code === 225 || code === 226 || code >= 500;
}

function passiveVerbOf(entry: Pending | undefined): PassiveVerb | null {
  if (entry === undefined) return null;
  if (entry.kind === 'converted') return entry.verb;
  if (entry.kind === 'server' && (entry.verb === 'PASV' || entry.verb === 'EPSV')) return entry.verb;
  return null;
}

/**
 * The FTP control connection as seen from the middle: a pure state machine
 * that takes one complete line at a time from either side and says what to
 * send on, what to answer locally, and which data connection to set up.
 *
 * Replies are matched to commands with a FIFO, so pipelined commands work and
 * a 227 is only acted on when it answers a PASV. Replies we make ourselves
 * are queued in the same FIFO, so the client sees every reply in the order
 * of its commands.
 *
 * Whatever the server sends, no line that names a data address reaches the
 * client as the server wrote it: a passive reply that answers a pending
 * PASV/EPSV is rewritten to the local listener (every line of it, as one
 * reply), and any other line has its addresses blanked. When the replies
 * stop matching the commands (a server that skips a reply, or answers ABOR
 * once instead of twice), a passive reply re-aligns the FIFO onto the
 * command it must answer; one that answers nothing is dropped.
 *
 * After a step whose action awaits an outcome (`open-passive`,
 * `open-active-forward`), the caller reports it (…Ready or …Failed) before it
 * passes the next line from that same side; lines from the other side may
 * keep coming meanwhile.
 */
export class ControlState {
  private readonly pending = new Fifo<Pending>();
  private readonly replies = new ReplyTracker();
  /** A multi-line reply being collected whole. */
  private held: HeldReply | null = null;
  /** A multi-line reply being passed through line by line. */
  private streamed: StreamedReply | null = null;
  /** The passive reply being turned into a local listener. */
  private awaitingPassiveListener: { verb: PassiveVerb; lines: Buffer[] } | null = null;
  private awaitingActiveForward: { verb: ActiveVerb } | null = null;
  /**
   * An ABOR whose transfer was answered as complete before it took effect:
   * servers then send one more reply for the ABOR, or none. It is kept out
   * of the FIFO so that it holds back no later reply.
   */
  private abortMayAnswer: 'forward' | 'consume' | null = null;
  /** The client's control connection is (about to be) TLS. */
  private clientSecured = false;
  /** The client asked for protected data connections (PROT P). */
  private clientProtection: 'clear' | 'private' = 'clear';

  constructor(private readonly policy: ControlPolicy) {
    this.pending.push({ kind: 'server', verb: GREETING });
  }

  /** Commands sent upstream or answered locally that still await their reply. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** Whether the client's data connections are to be TLS (it sent AUTH TLS, then PROT P). */
  get clientDataProtected(): boolean {
    return this.clientSecured && this.clientProtection === 'private';
  }

  /** Whether the server is in the middle of a multi-line reply (which must end in bounded time). */
  get replyInProgress(): boolean {
    return this.held !== null || this.streamed !== null;
  }

  /** A raw client line: Telnet prefix stripped, then parsed. */
  onClientLine(rawLine: Buffer): Step {
    const line = stripTelnetInterrupt(rawLine);
    return this.onClientCommand(parseCommandLine(line), line);
  }

  /** A client line already parsed (`line` without its Telnet prefix), so that it is parsed once. */
  onClientCommand(command: CommandLine, line: Buffer): Step {
    if (command.kind === 'invalid') {
      return this.answerLocally(command.reason === 'nul' || command.reason === 'lone-cr' ? LOCAL_REPLIES.badCharacter : LOCAL_REPLIES.syntax);
    }
    switch (command.verb) {
      case 'AUTH':
        return this.onAuth(command.argument);
      case 'PBSZ':
      case 'PROT':
        // Each TLS leg is ftpfwd's own: the server's protection was set when
        // ftpfwd negotiated TLS with it, and a client's PROT C must not undo it.
        if (this.policy.clientTls || this.policy.serverTls) return this.onProtection(command.verb, command.argument);
        break;
      case 'CCC':
        if (this.policy.clientTls || this.policy.serverTls) return this.answerLocally(LOCAL_REPLIES.clearControlRefused);
        break;
      case 'REIN':
        // A server resets its TLS state on REIN; ftpfwd's TLS legs would no longer match it.
        if (this.policy.serverTls || this.clientSecured) return this.answerLocally(LOCAL_REPLIES.reinitRefused);
        break;
      case 'LPRT':
      case 'LPSV':
        return this.answerLocally(LOCAL_REPLIES.longAddressRefused);
      case 'PORT':
      case 'EPRT':
        return this.onActiveCommand(command);
      case 'PASV':
      case 'EPSV':
        this.pending.push({ kind: 'server', verb: command.verb });
        return { toServer: [withCrlf(line)], toClient: [], action: { kind: 'release-data' } };
      case 'ABOR':
        this.pending.push({ kind: 'server', verb: 'ABOR', abortsTransfer: this.pending.some(isUnansweredTransfer) });
        return { toServer: [withCrlf(line)], toClient: [] };
    }
    this.pending.push({ kind: 'server', verb: command.verb });
    return { toServer: [withCrlf(line)], toClient: [] };
  }

  /**
   * AUTH TLS is ftpfwd's to answer: never passed on (it would blind the
   * rewriting). Without TLS of its own for clients it is refused; with it,
   * accepted only when no reply is still due, so that the 234 is the last
   * plaintext the client reads.
   */
  private onAuth(argument: string): Step {
    if (!this.policy.clientTls) return this.answerLocally(LOCAL_REPLIES.authRefused);
    const mechanism = argument.trim().toUpperCase();
    if (mechanism !== 'TLS' && mechanism !== 'TLS-C' && mechanism !== 'SSL') return this.answerLocally(LOCAL_REPLIES.authMechanism);
    if (this.clientSecured) return this.answerLocally(LOCAL_REPLIES.authRepeated);
    if (this.pending.length > 0 || this.awaitingActiveForward !== null || this.awaitingPassiveListener !== null || this.replyInProgress) {
      return this.answerLocally(LOCAL_REPLIES.authPipelined);
    }
    this.clientSecured = true;
    return { toServer: [], toClient: [], action: { kind: 'start-client-tls', reply: reply(LOCAL_REPLIES.authAccepted) } };
  }

  /** The session is TLS from its first byte (implicit FTPS): as after AUTH TLS. */
  clientTlsStarted(): void {
    this.clientSecured = true;
  }

  private onProtection(verb: string, argument: string): Step {
    if (!this.clientSecured) return this.answerLocally(LOCAL_REPLIES.protectionNeedsAuth);
    if (verb === 'PBSZ') return this.answerLocally(LOCAL_REPLIES.protectionBuffer);
    const level = argument.trim().toUpperCase();
    if (level === 'P' || level === 'C') {
      this.clientProtection = level === 'P' ? 'private' : 'clear';
      return this.answerLocally(level === 'P' ? LOCAL_REPLIES.protectionPrivate : LOCAL_REPLIES.protectionClear);
    }
    return this.answerLocally(level === 'S' || level === 'E' ? LOCAL_REPLIES.protectionLevel : LOCAL_REPLIES.protectionArgument);
  }

  private onActiveCommand(command: CommandLine & { kind: 'command' }): Step {
    const verb = command.verb as ActiveVerb;
    const checked = checkActiveCommand(verb, command.argument, this.policy.clientAddress, this.policy.minimumActivePort);
    if (!checked.ok) return this.answerLocally(activeRefusalReply(checked.refusal));
    const { target } = checked;
    if (this.policy.activeStrategy === 'convert') {
      const upstreamVerb: PassiveVerb = verb === 'PORT' ? 'PASV' : 'EPSV';
      this.pending.push({ kind: 'converted', verb: upstreamVerb, target });
      return { toServer: [reply(upstreamVerb)], toClient: [], action: { kind: 'release-data' } };
    }
    this.awaitingActiveForward = { verb };
    return { toServer: [], toClient: [], action: { kind: 'open-active-forward', verb, target } };
  }

  /** The remote forward for an active command is bound at host:port on the SSH server's side. */
  activeForwardReady(host: string, port: number): Step {
    const awaiting = this.takeAwaitingActive();
    // PORT can only carry IPv4; an IPv6 forward address needs EPRT.
    const verb = awaiting.verb === 'PORT' && isIPv4(host) ? 'PORT' : 'EPRT';
    const argument = verb === 'PORT' ? formatPortArgument(host, port) : formatEprtArgument(host, port);
    this.pending.push({ kind: 'server', verb });
    return { toServer: [reply(`${verb} ${argument}`)], toClient: [] };
  }

  activeForwardFailed(): Step {
    this.takeAwaitingActive();
    return this.answerLocally(LOCAL_REPLIES.activeSetupFailed);
  }

  private takeAwaitingActive(): { verb: ActiveVerb } {
    const awaiting = this.awaitingActiveForward;
    if (!awaiting) throw new Error('no active-mode forward is being set up');
    this.awaitingActiveForward = null;
    return awaiting;
  }

  onServerLine(line: Buffer): Step {
    const position = this.replies.classify(line);
    switch (position.kind) {
      case 'garbage':
        return { toServer: [], toClient: [masked(line)] };
      case 'first':
        return this.onFirstLine(position.code, line);
      case 'continuation':
        return this.onContinuationLine(line);
      case 'final': {
        if (!position.multiLine) return this.onReply(position.code, [line]);
        if (this.held) {
          const held = this.held;
          this.held = null;
          return this.withinBounds(held, line) ?? this.onReply(position.code, [...held.lines, line]);
        }
        const streamed = this.streamed;
        this.streamed = null;
        if (streamed && (streamed.lines >= REPLY_LIMITS.lines || streamed.bytes + line.length > REPLY_LIMITS.bytes)) return this.replyFlood();
        // The lines before this one have been passed through already.
        return this.onReply(position.code, [line]);
      }
    }
  }

  /**
   * A multi-line reply starts. It is held whole when it could be a passive
   * reply (by its code, or because a passive command awaits its answer), so
   * that it can be rewritten or replaced as one.
   */
  private onFirstLine(code: number, line: Buffer): Step {
    if (code === 227 || code === 229 || passiveVerbOf(this.firstServerEntry()) !== null) {
      this.held = { code, lines: [line], bytes: line.length };
      return { toServer: [], toClient: [] };
    }
    this.streamed = { lines: 1, bytes: line.length };
    return { toServer: [], toClient: [masked(line)] };
  }

  private onContinuationLine(line: Buffer): Step {
    if (this.held) {
      const flood = this.withinBounds(this.held, line);
      if (flood) return flood;
      this.held.lines.push(line);
      this.held.bytes += line.length;
      return { toServer: [], toClient: [] };
    }
    const streamed = this.streamed ?? { lines: 0, bytes: 0 };
    streamed.lines += 1;
    streamed.bytes += line.length;
    if (streamed.lines > REPLY_LIMITS.lines || streamed.bytes > REPLY_LIMITS.bytes) return this.replyFlood();
    return { toServer: [], toClient: [masked(line)] };
  }

  /** Null while a held reply is within its bounds; else the step that ends the session. */
  private withinBounds(held: HeldReply, line: Buffer): Step | null {
    if (held.lines.length + 1 > REPLY_LIMITS.heldLines || held.bytes + line.length > REPLY_LIMITS.heldBytes) return this.replyFlood();
    return null;
  }

  private replyFlood(): Step {
    this.held = null;
    this.streamed = null;
    return { toServer: [], toClient: [reply(LOCAL_REPLIES.replyTooLong)], action: { kind: 'close-session', reason: 'the FTP server sent a reply over the size limit' } };
  }

  /** A complete reply (or the last line of one already passed through). */
  private onReply(code: number, lines: Buffer[]): Step {
    if (code === 421) return { toServer: [], toClient: lines.map(masked), action: { kind: 'close-session', reason: 'FTP server sent 421' } };
    if (isPreliminary(code)) return this.withReleasedLocals(this.answeredHead() ? [] : lines.map(masked));
    if (code === 227 || code === 229) return this.onPassiveReply(code, lines);
    return this.onOrdinaryReply(code, lines);
  }

  private onOrdinaryReply(code: number, lines: Buffer[]): Step {
    const warnings: string[] = [];
    const toClient: Buffer[] = [];
    const lateAbort = this.answersCompletedAbort(code);
    if (lateAbort) return this.withReleasedLocals(lateAbort === 'forward' ? lines.map(masked) : []);
    const head = this.pending.at(0);
    if (head === undefined || head.kind === 'local') {
      // Local replies can only be queued here if they came in the middle of this reply.
      warnings.push(`the FTP server sent a reply that answers no command (${code})`);
      return { ...this.withReleasedLocals(lines.map(masked)), warnings };
    }
    this.pending.shift();
    if (head.kind === 'converted') {
      // The server refused (or ignored) the PASV/EPSV we sent for a PORT/EPRT.
      return this.withReleasedLocals([reply(LOCAL_REPLIES.activeNeedsPassive(code))]);
    }
    if (!head.answered) toClient.push(...lines.map(masked));
    const step = this.withReleasedLocals(toClient);
    if ((head.verb === 'PORT' || head.verb === 'EPRT') && code >= 400) return { ...step, action: { kind: 'release-data' } };
    if (head.verb === 'REIN' && code < 300) return { ...step, action: { kind: 'reset-data' } };
    const next = this.pending.at(0);
    if (isTransferVerb(head.verb) && code < 400 && next?.kind === 'server' && next.verb === 'ABOR' && next.abortsTransfer) {
      this.pending.shift();
      this.abortMayAnswer = next.answered ? 'consume' : 'forward';
      return this.withReleasedLocals(step.toClient);
    }
    return step;
  }

  /** Whether this reply is the late answer to an ABOR whose transfer had completed (see abortMayAnswer). */
  private answersCompletedAbort(code: number): 'forward' | 'consume' | null {
    const late = this.abortMayAnswer;
    this.abortMayAnswer = null;
    return late !== null && answersAbort(code) ? late : null;
  }

  private onPassiveReply(code: 227 | 229, lines: Buffer[]): Step {
    const verb: PassiveVerb = code === 227 ? 'PASV' : 'EPSV';
    const toClient: Buffer[] = [];
    const warnings: string[] = [];
    this.abortMayAnswer = null;
    const headVerb = passiveVerbOf(this.firstServerEntry());
    if (headVerb !== null && headVerb !== verb) {
      // EPSV answered with a 227 (or PASV with a 229): not usable as the
      // client asked, and never passed through.
      const head = this.takeFirstServerEntry(toClient);
      const text = head.kind === 'converted' ? LOCAL_REPLIES.activeNeedsPassive(425) : LOCAL_REPLIES.wrongPassiveReply(headVerb);
      return { ...this.withReleasedLocals([...toClient, reply(text)]), warnings: [`the FTP server answered ${headVerb} with ${code}`] };
    }
    const index = this.pending.findIndex((entry) => passiveVerbOf(entry) === verb);
    if (index === -1) {
      warnings.push(`the FTP server sent a ${code} reply that answers no ${verb}; it was dropped`);
      return { toServer: [], toClient, warnings };
    }
    // Commands before the passive one got no reply of their own: the server
    // skipped them. Realign rather than let this reply answer the wrong one.
    const skipped = this.dropServerEntriesBefore(index, toClient);
    if (skipped > 0) warnings.push(`the FTP server sent no reply to ${skipped} command(s) before ${verb}; replies realigned`);
    const head = this.pending.at(0)!;
    const text = lines.map((line) => line.toString('latin1'));
    const parsed = parsePassiveLines(verb, text);
    if (head.kind === 'converted') {
      this.pending.shift();
      if (!parsed.ok) return { ...this.withReleasedLocals([...toClient, reply(LOCAL_REPLIES.badPassiveReply)]), warnings };
      const activeVerb: ActiveVerb = verb === 'PASV' ? 'PORT' : 'EPRT';
      return {
        ...this.withReleasedLocals([...toClient, reply(LOCAL_REPLIES.converted(activeVerb))]),
        action: { kind: 'connect-converted', target: head.target, serverHost: parsed.value.host, serverPort: parsed.value.port },
        warnings,
      };
    }
    if (!parsed.ok) {
      this.pending.shift();
      return { ...this.withReleasedLocals([...toClient, reply(LOCAL_REPLIES.badPassiveReply)]), warnings };
    }
    // The FIFO entry stays until the listener is up, so that no later reply
    // can overtake the rewritten one.
    this.awaitingPassiveListener = { verb, lines };
    return {
      toServer: [],
      toClient,
      action: { kind: 'open-passive', verb, serverHost: parsed.value.host, serverPort: parsed.value.port },
      warnings,
    };
  }

  /** The local listener for the pending passive reply is at host:port. */
  passiveListenerReady(host: string, port: number): Step {
    const awaiting = this.takeAwaitingPassive();
    const rewritten = awaiting.lines.map((line) => {
      const text = line.toString('latin1');
      return reply(awaiting.verb === 'PASV' ? rewritePasvLine(text, host, port) : rewriteEpsvLine(text, port));
    });
    return this.withReleasedLocals(rewritten);
  }

  passiveListenerFailed(): Step {
    this.takeAwaitingPassive();
    return this.withReleasedLocals([reply(LOCAL_REPLIES.passiveSetupFailed)]);
  }

  private takeAwaitingPassive(): { verb: PassiveVerb; lines: Buffer[] } {
    const awaiting = this.awaitingPassiveListener;
    if (!awaiting) throw new Error('no passive listener is being set up');
    this.awaitingPassiveListener = null;
    this.pending.shift();
    return awaiting;
  }

  /**
   * The data connection of the transfer command sent last could not be
   * opened on our side (the SSH server refused its channel) after the
   * command went upstream, where the server now waits for a data
   * connection that will never come. The client gets a 425 for it at once,
   * in the order of its commands; the server gets an ABOR; the server's
   * replies to both are consumed. Nothing happens when that command has
   * been answered already.
   */
  dataConnectionFailed(): Step {
    let index = -1;
    for (let at = this.pending.length - 1; at >= 0; at -= 1) {
      const entry = this.pending.at(at);
      if (entry?.kind === 'server' && isTransferVerb(entry.verb)) {
        index = entry.answered ? -1 : at;
        break;
      }
    }
    if (index === -1) return { toServer: [], toClient: [] };
    const transfer = this.pending.at(index) as Pending & { kind: 'server' };
    transfer.answered = true;
    this.pending.insertAt(index, { kind: 'local', reply: reply(LOCAL_REPLIES.dataChannelFailed) });
    this.pending.push({ kind: 'server', verb: 'ABOR', abortsTransfer: true, answered: true });
    return { ...this.withReleasedLocals([]), toServer: [reply('ABOR')] };
  }

  /** Whether the head of the queue is a command the client has been answered for already. */
  private answeredHead(): boolean {
    const head = this.pending.at(0);
    return head?.kind === 'server' && head.answered === true;
  }

  /**
   * Refuses the client's current line with a reply of our own, for reasons
   * only the socket side knows (the data channel for it is already dead).
   */
  refuseClientLine(text: string): Step {
    return this.answerLocally(text);
  }

  /** Answers the client ourselves, in order behind any reply still due. */
  private answerLocally(text: string): Step {
    const line = reply(text);
    // Never between the lines of a multi-line reply, even one that answers nothing.
    if (this.pending.length === 0 && this.awaitingActiveForward === null && !this.replyInProgress) return { toServer: [], toClient: [line] };
    this.pending.push({ kind: 'local', reply: line });
    return this.withReleasedLocals([]);
  }

  /** The first entry that awaits a reply from the server (local replies are ours). */
  private firstServerEntry(): Pending | undefined {
    const index = this.pending.findIndex((entry) => entry.kind !== 'local');
    return index === -1 ? undefined : this.pending.at(index);
  }

  /** Removes and returns the first server entry, releasing local replies before it. */
  private takeFirstServerEntry(toClient: Buffer[]): Pending {
    this.releaseLocalsInto(toClient);
    return this.pending.shift()!;
  }

  /** Drops the server entries before `index` (local ones are released in order); returns how many were dropped. */
  private dropServerEntriesBefore(index: number, toClient: Buffer[]): number {
    let dropped = 0;
    for (let remaining = index; remaining > 0; remaining -= 1) {
      const entry = this.pending.shift()!;
      if (entry.kind === 'local') toClient.push(entry.reply);
      else dropped += 1;
    }
    return dropped;
  }

  private withReleasedLocals(toClient: Buffer[]): Step {
    this.releaseLocalsInto(toClient);
    return { toServer: [], toClient };
  }

  /** Sends the local replies now at the head of the queue, unless a reply of the server's is still coming out. */
  private releaseLocalsInto(toClient: Buffer[]): void {
    if (this.replyInProgress) return;
    for (let head = this.pending.at(0); head?.kind === 'local'; head = this.pending.at(0)) {
      this.pending.shift();
      toClient.push(head.reply);
    }
  }
}

function isUnansweredTransfer(entry: Pending): boolean {
  return entry.kind === 'server' && isTransferVerb(entry.verb);
}

function masked(line: Buffer): Buffer {
  const text = line.toString('latin1');
  const safe = maskDataAddresses(text);
  return withCrlf(safe === text ? line : Buffer.from(safe, 'latin1'));
}

/** The address of a (possibly multi-line) passive reply: the first line that has one, scanned as RFC 1123 says. */
function parsePassiveLines(verb: PassiveVerb, lines: readonly string[]): { ok: true; value: { host: string | null; port: number } } | { ok: false } {
  const code = PASSIVE_CODE[verb];
  for (const text of lines) {
    // The parsers skip the code; a line between the first and the last has none.
    const body = /^\d{3}[ -]/.test(text) ? text : `${code} ${text}`;
    const parsed = verb === 'PASV' ? parsePasvReply(body) : parseEpsvReply(body);
    if (parsed.ok) return parsed;
  }
  return { ok: false };
}

/** The 501 reply for a PORT/EPRT that fails the shared rules. */
export function activeRefusalReply(refusal: ActiveRefusal): string {
  switch (refusal.kind) {
    case 'syntax':
      return LOCAL_REPLIES.badArgument(refusal.detail);
    case 'bounce':
      return LOCAL_REPLIES.bounce;
    case 'privileged-port':
      return LOCAL_REPLIES.privilegedPort(refusal.minimum);
  }
}
