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

export type NextLine = { kind: 'line'; line: Buffer } | { kind: 'none' } | { kind: 'overflow' };

/**
 * The same framing as frameLines, for socket code: bytes are appended as
 * they arrive and lines are taken one at a time, so a chunk of a thousand
 * lines costs nothing until they are wanted and the caller can stop
 * between any two of them. Appending and taking are amortised O(1) per
 * byte: the storage grows by doubling and is compacted in place, and the
 * search for a line end never rescans bytes it has already looked at.
 */
export class LineBuffer {
  private storage = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  /** Bytes from `start` up to here hold no LF. */
  private scanned = 0;
  private overflowed = false;

  constructor(private readonly maxLineLength: number) {}

  /** Bytes received and not yet taken as lines. */
  get bufferedBytes(): number {
    return this.end - this.start;
  }

  push(chunk: Buffer): void {
    if (this.overflowed || chunk.length === 0) return;
    const used = this.end - this.start;
    if (this.end + chunk.length > this.storage.length) {
      if (used + chunk.length <= this.storage.length / 2) {
        this.storage.copy(this.storage, 0, this.start, this.end);
      } else {
        const larger = Buffer.allocUnsafe(Math.max(1024, 2 * (used + chunk.length)));
        this.storage.copy(larger, 0, this.start, this.end);
        this.storage = larger;
      }
      this.scanned -= this.start;
      this.start = 0;
      this.end = used;
    }
    chunk.copy(this.storage, this.end);
    this.end += chunk.length;
  }

  next(): NextLine {
    if (this.overflowed) return { kind: 'overflow' };
    const lf = this.storage.subarray(0, this.end).indexOf(LF, Math.max(this.start, this.scanned));
    if (lf === -1) {
      this.scanned = this.end;
      const restLength = this.end > this.start && this.storage[this.end - 1] === CR ? this.end - this.start - 1 : this.end - this.start;
      return restLength > this.maxLineLength ? this.overflow() : { kind: 'none' };
    }
    const lineEnd = lf > this.start && this.storage[lf - 1] === CR ? lf - 1 : lf;
    if (lineEnd - this.start > this.maxLineLength) return this.overflow();
    const line = Buffer.from(this.storage.subarray(this.start, lineEnd));
    this.start = lf + 1;
    this.scanned = this.start;
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
      this.scanned = 0;
    }
    return { kind: 'line', line };
  }

  /**
   * Takes whatever is buffered and not yet a line, raw, e.g. to hand it to
   * whoever reads the stream next; the buffer is empty afterwards.
   */
  takeRest(): Buffer {
    const rest = Buffer.from(this.storage.subarray(this.start, this.end));
    this.start = 0;
    this.end = 0;
    this.scanned = 0;
    return rest;
  }

  private overflow(): NextLine {
    this.overflowed = true;
    this.storage = Buffer.alloc(0);
    this.start = 0;
    this.end = 0;
    this.scanned = 0;
    return { kind: 'overflow' };
  }
}

/** Appends the CRLF that every line we send carries. */
export function withCrlf(line: Buffer): Buffer {
  return Buffer.concat([line, CRLF]);
}

const CRLF = Buffer.from('\r\n');
