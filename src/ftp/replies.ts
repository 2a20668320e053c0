/** Where a server line sits in the reply it belongs to (RFC 959 section 4.2). */
export type ReplyLine =
  /** `ddd text`: a complete one-line reply, or the last line of a multi-line one. */
  | { kind: 'final'; code: number; multiLine: boolean }
  /** `ddd-text`: the first line of a multi-line reply. */
  | { kind: 'first'; code: number }
  /** Any line between the first and the last: text, never acted on. */
  | { kind: 'continuation' }
  /** Not a reply line at all, outside a multi-line reply. */
  | { kind: 'garbage' };

const CODE_PATTERN = /^([1-5][0-9][0-9])([ -]|$)/;

/**
 * Classifies server lines one at a time. The only state is the code of the
 * multi-line reply in progress, because a multi-line reply ends at the first
 * line that starts with the same code and a space, and nothing before it.
 */
export class ReplyTracker {
  private openCode: number | null = null;

  classify(line: Buffer): ReplyLine {
    const match = CODE_PATTERN.exec(line.subarray(0, 4).toString('latin1'));
    if (this.openCode !== null) {
      if (match && Number(match[1]) === this.openCode && match[2] !== '-') {
        const code = this.openCode;
        this.openCode = null;
        return { kind: 'final', code, multiLine: true };
      }
      return { kind: 'continuation' };
    }
    if (!match) return { kind: 'garbage' };
    const code = Number(match[1]);
    if (match[2] === '-') {
      this.openCode = code;
      return { kind: 'first', code };
    }
    return { kind: 'final', code, multiLine: false };
  }
}

export function isPreliminary(code: number): boolean {
  return code >= 100 && code < 200;
}
