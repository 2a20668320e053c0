import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const CHUNK_SIZE = 1024 * 1024;

function* randomChunks(size: number): Generator<Buffer> {
  for (let left = size; left > 0; left -= CHUNK_SIZE) yield randomBytes(Math.min(left, CHUNK_SIZE));
}

/** Writes `size` random bytes, one chunk in memory at a time. */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad file size: ${size}`);
  await pipeline(Readable.from(randomChunks(size)), createWriteStream(path));
}

/** Hex SHA-256 of a file's contents, or of its first `length` bytes. */
export async function sha256File(path: string, length?: number): Promise<string> {
  const hash = createHash('sha256');
  if (length !== 0) {
    for await (const chunk of createReadStream(path, length === undefined ? {} : { end: length - 1 })) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}
