/** SSH wire format (RFC 4251 §5) for the few places that read it themselves: certificates and agent answers. */

/** Reads uint32, uint64 and string fields in turn; every read throws on truncation. */
export class WireReader {
  private offset: number;

  constructor(
    private readonly data: Buffer,
    start = 0,
  ) {
    this.offset = start;
  }

  get position(): number {
    return this.offset;
  }

  get done(): boolean {
    return this.offset === this.data.length;
  }

  uint32(): number {
    this.need(4);
    const value = this.data.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  uint64(): bigint {
    this.need(8);
    const value = this.data.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  bytes(): Buffer {
    const length = this.uint32();
    this.need(length);
    const value = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  text(): string {
    return this.bytes().toString('utf8');
  }

  slice(from: number, to: number): Buffer {
    return this.data.subarray(from, to);
  }

  private need(count: number): void {
    if (this.offset + count > this.data.length) throw new Error('truncated');
  }
}

/** A string field: uint32 length, then the bytes. */
export function sshString(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}
