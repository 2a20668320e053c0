/**
 * TYPE A (RFC 959 3.1.1.1): on the wire every line ends in CRLF; on the
 * SSH server (a Unix host) in LF. Both directions convert on the fly,
 * chunk by chunk, so a CR and its LF may arrive in different chunks.
 */

const CR = 0x0d;
const LF = 0x0a;

/**
 * Stored bytes to the wire: a LF becomes CRLF, unless a CR already comes
 * before it (a file that already has CRLF line ends is sent as it is, not
 * with CR CR LF).
 */
export class AsciiEncoder {
  private lastWasCr = false;

  transform(chunk: Buffer): Buffer {
    const previousCr = this.lastWasCr;
    const added = this.measure(chunk) - chunk.length;
    if (added === 0) return chunk;
    const out = Buffer.allocUnsafe(chunk.length + added);
    let at = 0;
    for (let index = 0; index < chunk.length; index += 1) {
      const byte = chunk[index]!;
      if (byte === LF && !(index === 0 ? previousCr : chunk[index - 1] === CR)) out[at++] = CR;
      out[at++] = byte;
    }
    return out;
  }

  /** The length `chunk` has on the wire, advancing the state as transform does (SIZE in TYPE A). */
  measure(chunk: Buffer): number {
    let added = 0;
    for (let index = 0; index < chunk.length; index += 1) {
      if (chunk[index] === LF && !(index === 0 ? this.lastWasCr : chunk[index - 1] === CR)) added += 1;
    }
    if (chunk.length > 0) this.lastWasCr = chunk[chunk.length - 1] === CR;
    return chunk.length + added;
  }
}

/**
 * The wire to stored bytes: CRLF becomes LF; a CR not followed by LF is
 * data and is kept. A CR at the end of a chunk waits for the next one.
 */
export class AsciiDecoder {
  private heldCr = false;

  transform(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const out = Buffer.allocUnsafe(chunk.length + 1);
    let at = 0;
    let index = 0;
    if (this.heldCr) {
      this.heldCr = false;
      if (chunk[0] !== LF) out[at++] = CR;
    }
    for (; index < chunk.length; index += 1) {
      const byte = chunk[index]!;
      if (byte === CR) {
        if (index + 1 === chunk.length) {
          this.heldCr = true;
          continue;
        }
        if (chunk[index + 1] === LF) continue;
      }
      out[at++] = byte;
    }
    return out.subarray(0, at);
  }

  /** What is still held at the end of the data: a final lone CR. */
  flush(): Buffer {
    if (!this.heldCr) return Buffer.alloc(0);
    this.heldCr = false;
    return Buffer.from([CR]);
  }
}
