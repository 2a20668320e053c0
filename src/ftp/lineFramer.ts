const LF = 0x0a;
const CR = 0x0d;

export type FrameResult =
  | { kind: 'lines'; lines: Buffer[]; rest: Buffer }
  /** A line grew past the cap before its end arrived. */
  | { kind: 'overflow'; lines: Buffer[] };

/**
 * Splits a control-connection byte stream into lines, as a pure function of
 * what is buffered so far and the next chunk.
 *
 * Lines end at LF; one CR directly before the LF belongs to the terminator
 * (RFC 959 says CRLF, but some clients send a bare LF). The returned lines
 * carry no terminator, so a CR left inside a line is a lone CR that the
 * caller can refuse. `maxLineLength` counts the bytes of one line without
 * its terminator; an unfinished line longer than that is an overflow, so a
 * peer that never sends LF cannot grow the buffer without bound.
 */
export function frameLines(buffered: Buffer, chunk: Buffer, maxLineLength: number): FrameResult {
  const data = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
  const lines: Buffer[] = [];
  let start = 0;
  for (let lf = data.indexOf(LF, start); lf !== -1; lf = data.indexOf(LF, start)) {
    const end = lf > start && data[lf - 1] === CR ? lf - 1 : lf;
    if (end - start > maxLineLength) return { kind: 'overflow', lines };
    lines.push(data.subarray(start, end));
    start = lf + 1;
  }
  const rest = data.subarray(start);
  // The unfinished line may still end in the CR of its CRLF: only that CR may
  // take it one byte past the cap.
  const restLength = rest.length > 0 && rest[rest.length - 1] === CR ? rest.length - 1 : rest.length;
  if (restLength > maxLineLength) return { kind: 'overflow', lines };
  return { kind: 'lines', lines, rest: Buffer.from(rest) };
}

/** Stateful wrapper for socket code: holds the unfinished tail between chunks. */
export class LineFramer {
  private rest: Buffer = Buffer.alloc(0);

  constructor(private readonly maxLineLength: number) {}

  push(chunk: Buffer): FrameResult {
    const result = frameLines(this.rest, chunk, this.maxLineLength);
    this.rest = result.kind === 'lines' ? result.rest : Buffer.alloc(0);
    return result;
  }

  /** Bytes of an unfinished line, e.g. to tell whether a peer closed mid-line. */
  get pendingBytes(): number {
    return this.rest.length;
  }
}

/** Appends the CRLF that every line we send carries. */
export function withCrlf(line: Buffer): Buffer {
  return Buffer.concat([line, CRLF]);
}

const CRLF = Buffer.from('\r\n');
