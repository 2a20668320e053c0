import { parseCommandLine, stripTelnetInterrupt, type CommandLine } from './commands.js';
import { checkActiveCommand, type ActiveRefusal, type ActiveVerb } from './activeTarget.js';
import { formatEprtArgument, formatPortArgument, parseEpsvReply, parsePasvReply, rewriteEpsvReply, rewritePasvReply, type ActiveTarget } from './dataAddresses.js';
import { withCrlf } from './lineFramer.js';
import { isPreliminary, ReplyTracker } from './replies.js';
import { isIPv4 } from 'node:net';

export { normalizeAddress, sameAddress } from './activeTarget.js';
export type { ActiveVerb } from './activeTarget.js';

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
}

export type PassiveVerb = 'PASV' | 'EPSV';

/** Work the session has to carry out with sockets and SSH for a line. */
export type Action =
  /** A 227/229 answered PASV/EPSV: listen locally, then call passiveListenerReady/Failed. */
  | { kind: 'open-passive'; verb: PassiveVerb; serverHost: string | null; serverPort: number }
  /** A valid PORT/EPRT: bind a remote forward, then call activeForwardReady/Failed. */
  | { kind: 'open-active-forward'; verb: ActiveVerb; target: ActiveTarget }
  /** The upstream passive reply for a converted PORT/EPRT: connect the two ends now. */
  | { kind: 'connect-converted'; target: ActiveTarget; serverHost: string | null; serverPort: number }
  /** REIN was accepted: every data connection of the session is void. */
  | { kind: 'reset-data' }
  /** The server said 421: forward it, then end the session. */
  | { kind: 'close-session' };

export interface Step {
  toServer: Buffer[];
  toClient: Buffer[];
  action?: Action;
}

type Pending =
  | { kind: 'server'; verb: string }
  | { kind: 'converted'; verb: PassiveVerb; target: ActiveTarget }
  | { kind: 'local'; reply: Buffer };

const GREETING = '(greeting)';

function reply(text: string): Buffer {
  return withCrlf(Buffer.from(text, 'latin1'));
}

export const LOCAL_REPLIES = {
  syntax: '500 Syntax error, command unrecognized.',
  badCharacter: '500 Command refused: it contains a NUL or CR byte.',
  authRefused: '534 AUTH refused: this connection is already encrypted end to end by SSH; continue without TLS.',
  longAddressRefused: '502 LPRT/LPSV not implemented; use EPRT/EPSV.',
  badArgument: (detail: string) => `501 Syntax error in parameters or arguments: ${detail}.`,
  bounce: '501 Rejected: the data address must be your own address (FTP bounce protection).',
  privilegedPort: (min: number) => `501 Rejected: data port must be ${min} or above.`,
  activeSetupFailed: '425 Cannot open an active-mode data connection through the SSH tunnel.',
  passiveSetupFailed: '425 Cannot open a passive-mode data connection through the SSH tunnel.',
  dataChannelFailed: '425 Cannot open data connection: the SSH server refused the data channel.',
  badPassiveReply: '425 The server sent a passive-mode reply that could not be used.',
  converted: (verb: ActiveVerb) => `200 ${verb} command successful.`,
} as const;

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
 * After a step whose action awaits an outcome (`open-passive`,
 * `open-active-forward`), the caller reports it (…Ready or …Failed) before it
 * passes the next line from that same side; lines from the other side may
 * keep coming meanwhile.
 */
export class ControlState {
  private readonly pending: Pending[] = [{ kind: 'server', verb: GREETING }];
  private readonly replies = new ReplyTracker();
  /** The verb whose passive reply is being turned into a local listener. */
  private awaitingPassiveListener: { verb: PassiveVerb; text: string } | null = null;
  private awaitingActiveForward: { verb: ActiveVerb } | null = null;

  constructor(private readonly policy: ControlPolicy) {}

  /** Commands sent upstream or answered locally that still await their reply. */
  get pendingCount(): number {
    return this.pending.length;
  }

  onClientLine(rawLine: Buffer): Step {
    const line = stripTelnetInterrupt(rawLine);
    const command = parseCommandLine(line);
    if (command.kind === 'invalid') {
      return this.answerLocally(command.reason === 'nul' || command.reason === 'lone-cr' ? LOCAL_REPLIES.badCharacter : LOCAL_REPLIES.syntax);
    }
    switch (command.verb) {
      case 'AUTH':
        return this.answerLocally(LOCAL_REPLIES.authRefused);
      case 'LPRT':
      case 'LPSV':
        return this.answerLocally(LOCAL_REPLIES.longAddressRefused);
      case 'PORT':
      case 'EPRT':
        return this.onActiveCommand(command);
      default:
        this.pending.push({ kind: 'server', verb: command.verb });
        return { toServer: [withCrlf(line)], toClient: [] };
    }
  }

  private onActiveCommand(command: CommandLine & { kind: 'command' }): Step {
    const verb = command.verb as ActiveVerb;
    const checked = checkActiveCommand(verb, command.argument, this.policy.clientAddress, this.policy.minimumActivePort);
    if (!checked.ok) return this.answerLocally(activeRefusalReply(checked.refusal));
    const { target } = checked;
    if (this.policy.activeStrategy === 'convert') {
      const upstreamVerb: PassiveVerb = verb === 'PORT' ? 'PASV' : 'EPSV';
      this.pending.push({ kind: 'converted', verb: upstreamVerb, target });
      return { toServer: [reply(upstreamVerb)], toClient: [] };
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
    const forwarded: Step = { toServer: [], toClient: [withCrlf(line)] };
    if (position.kind !== 'final') return forwarded;
    const { code } = position;
    if (code === 421) return { ...forwarded, action: { kind: 'close-session' } };
    if (isPreliminary(code)) return forwarded;

    const head = this.pending[0];
    if (head === undefined || head.kind === 'local') return forwarded;
    const text = line.toString('latin1');

    if (head.kind === 'converted') {
      this.pending.shift();
      const passive = parsePassiveReply(head.verb, code, text);
      if (passive === 'not-passive') {
        return this.withReleasedLocals([reply(`${code >= 400 ? code : 425} Active mode through the tunnel needs passive mode on the server, which refused it.`)]);
      }
      if (passive === 'malformed') return this.withReleasedLocals([reply(LOCAL_REPLIES.badPassiveReply)]);
      const verb: ActiveVerb = head.verb === 'PASV' ? 'PORT' : 'EPRT';
      return {
        ...this.withReleasedLocals([reply(LOCAL_REPLIES.converted(verb))]),
        action: { kind: 'connect-converted', target: head.target, serverHost: passive.host, serverPort: passive.port },
      };
    }

    if (head.verb === 'PASV' || head.verb === 'EPSV') {
      const passive = parsePassiveReply(head.verb, code, text);
      if (passive === 'malformed') {
        this.pending.shift();
        return this.withReleasedLocals([reply(LOCAL_REPLIES.badPassiveReply)]);
      }
      if (passive !== 'not-passive') {
        // The FIFO entry stays until the listener is up, so that no later
        // reply can overtake the rewritten one.
        this.awaitingPassiveListener = { verb: head.verb, text };
        return {
          toServer: [],
          toClient: [],
          action: { kind: 'open-passive', verb: head.verb, serverHost: passive.host, serverPort: passive.port },
        };
      }
    }

    this.pending.shift();
    const step = this.withReleasedLocals([withCrlf(line)]);
    if (head.verb === 'REIN' && code < 300) return { ...step, action: { kind: 'reset-data' } };
    return step;
  }

  /** The local listener for the pending passive reply is at host:port. */
  passiveListenerReady(host: string, port: number): Step {
    const awaiting = this.takeAwaitingPassive();
    const text = awaiting.verb === 'PASV' ? rewritePasvReply(awaiting.text, host, port) : rewriteEpsvReply(awaiting.text, port);
    return this.withReleasedLocals([reply(text)]);
  }

  passiveListenerFailed(): Step {
    this.takeAwaitingPassive();
    return this.withReleasedLocals([reply(LOCAL_REPLIES.passiveSetupFailed)]);
  }

  private takeAwaitingPassive(): { verb: PassiveVerb; text: string } {
    const awaiting = this.awaitingPassiveListener;
    if (!awaiting) throw new Error('no passive listener is being set up');
    this.awaitingPassiveListener = null;
    this.pending.shift();
    return awaiting;
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
    if (this.pending.length === 0 && this.awaitingActiveForward === null) return { toServer: [], toClient: [line] };
    this.pending.push({ kind: 'local', reply: line });
    return { toServer: [], toClient: [] };
  }

  private withReleasedLocals(toClient: Buffer[]): Step {
    while (this.pending[0]?.kind === 'local') {
      const local = this.pending.shift() as Pending & { kind: 'local' };
      toClient.push(local.reply);
    }
    return { toServer: [], toClient };
  }
}

function parsePassiveReply(
  verb: PassiveVerb,
  code: number,
  text: string,
): { host: string | null; port: number } | 'not-passive' | 'malformed' {
  if (verb === 'PASV' && code === 227) {
    const parsed = parsePasvReply(text);
    return parsed.ok ? parsed.value : 'malformed';
  }
  if (verb === 'EPSV' && code === 229) {
    const parsed = parseEpsvReply(text);
    return parsed.ok ? parsed.value : 'malformed';
  }
  return 'not-passive';
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
