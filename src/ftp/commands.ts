const IAC = 0xff;
const IP = 0xf4;
const DM = 0xf2;
const SYNCH_MARK = 0xf2;

export type CommandLine =
  | {
      kind: 'command';
      /** Upper-cased verb, e.g. `PASV`. */
      verb: string;
      /** Everything after the separating space(s), as sent. */
      argument: string;
    }
  | { kind: 'invalid'; reason: InvalidCommandReason };

export type InvalidCommandReason = 'empty' | 'nul' | 'lone-cr' | 'bad-verb';

/**
 * Removes the Telnet "interrupt process" prefix that clients send before ABOR
 * (RFC 959 section 4.1.3: IAC IP IAC DM, where the DM travels as urgent data
 * and is often lost on the way). A doubled IAC (`255 255`, an escaped 0xff in
 * a path) is data and is left alone.
 */
export function stripTelnetInterrupt(line: Buffer): Buffer {
  let offset = 0;
  while (offset + 1 < line.length && line[offset] === IAC) {
    const next = line[offset + 1];
    if (next === IP || next === DM || next === SYNCH_MARK) offset += 2;
    else break;
  }
  // The receiver drops the byte sent as TCP urgent data. When that was the
  // IAC before the DM, the DM is left alone (IAC IP DM ABOR); when it was the
  // DM, its IAC is (IAC IP IAC ABOR). A doubled IAC is still data.
  if (offset > 0 && line[offset] === DM) offset += 1;
  else if (offset > 0 && line[offset] === IAC && line[offset + 1] !== IAC) offset += 1;
  return offset === 0 ? line : line.subarray(offset);
}

const VERB_PATTERN = /^[A-Za-z]{3,4}$/;

/**
 * Parses one client line (without its terminator). The verb is matched
 * case-insensitively and may be followed by one or more spaces; the argument
 * is kept byte-for-byte as latin1 text so that it can be re-encoded exactly.
 */
export function parseCommandLine(line: Buffer): CommandLine {
  if (line.length === 0) return { kind: 'invalid', reason: 'empty' };
  if (line.includes(0)) return { kind: 'invalid', reason: 'nul' };
  if (line.includes(0x0d)) return { kind: 'invalid', reason: 'lone-cr' };
  const text = line.toString('latin1');
  const space = text.indexOf(' ');
  const verb = space === -1 ? text : text.slice(0, space);
  if (!VERB_PATTERN.test(verb)) return { kind: 'invalid', reason: 'bad-verb' };
  const argument = space === -1 ? '' : text.slice(space).replace(/^ +/, '');
  return { kind: 'command', verb: verb.toUpperCase(), argument };
}

/** Commands that use the data connection set up before them. */
const TRANSFER_VERBS = new Set(['RETR', 'STOR', 'STOU', 'APPE', 'LIST', 'NLST', 'MLSD']);

export function isTransferCommand(command: CommandLine): boolean {
  return command.kind === 'command' && TRANSFER_VERBS.has(command.verb);
}

/** An upper-cased verb that uses the data connection. */
export function isTransferVerb(verb: string): boolean {
  return TRANSFER_VERBS.has(verb);
}

/** Verbs whose argument is a secret and must never reach a log. */
const SECRET_VERBS = new Set(['PASS', 'ACCT', 'ADAT']);

/** A loggable rendering of a client line, with secrets replaced. */
export function describeCommandForLog(command: CommandLine): string {
  if (command.kind === 'invalid') return `<invalid: ${command.reason}>`;
  if (command.argument === '') return command.verb;
  if (SECRET_VERBS.has(command.verb)) return `${command.verb} ****`;
  return `${command.verb} ${command.argument}`;
}
