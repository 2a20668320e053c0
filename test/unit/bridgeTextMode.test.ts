import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AsciiDecoder, AsciiEncoder } from '../../src/bridge/textMode.js';

function encodeChunks(chunks: readonly string[]): string {
  const encoder = new AsciiEncoder();
  return chunks.map((chunk) => encoder.transform(Buffer.from(chunk, 'latin1')).toString('latin1')).join('');
}

function decodeChunks(chunks: readonly string[]): string {
  const decoder = new AsciiDecoder();
  return chunks.map((chunk) => decoder.transform(Buffer.from(chunk, 'latin1')).toString('latin1')).join('') + decoder.flush().toString('latin1');
}

/** Splits `text` at the given cut points (sorted, deduplicated, inside the text). */
function split(text: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((cut) => cut % (text.length + 1)))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let last = 0;
  for (const point of points) {
    pieces.push(text.slice(last, point));
    last = point;
  }
  pieces.push(text.slice(last));
  return pieces;
}

describe('TYPE A, stored to wire (LF to CRLF)', () => {
  const cases: Array<{ title: string; chunks: string[]; expected: string }> = [
    { title: 'LF lines', chunks: ['a\nb\n'], expected: 'a\r\nb\r\n' },
    { title: 'CRLF lines stay as they are', chunks: ['a\r\nb\r\n'], expected: 'a\r\nb\r\n' },
    { title: 'a CR and its LF in different chunks', chunks: ['a\r', '\nb'], expected: 'a\r\nb' },
    { title: 'an LF at the start of a chunk after a plain byte', chunks: ['a', '\nb'], expected: 'a\r\nb' },
    { title: 'a lone CR is data', chunks: ['a\rb'], expected: 'a\rb' },
    { title: 'blank lines', chunks: ['\n\n'], expected: '\r\n\r\n' },
    { title: 'no line end at all', chunks: ['abc'], expected: 'abc' },
    { title: 'empty chunks in between', chunks: ['a\r', '', '\n'], expected: 'a\r\n' },
  ];
  for (const { title, chunks, expected } of cases) {
    it(title, () => assert.equal(encodeChunks(chunks), expected));
  }

  it('measure gives the encoded length without encoding', () => {
    const encoder = new AsciiEncoder();
    assert.equal(encoder.measure(Buffer.from('a\nb\r\n')) + encoder.measure(Buffer.from('\n')), 'a\r\nb\r\n\r\n'.length);
  });
});

describe('TYPE A, wire to stored (CRLF to LF)', () => {
  const cases: Array<{ title: string; chunks: string[]; expected: string }> = [
    { title: 'CRLF lines', chunks: ['a\r\nb\r\n'], expected: 'a\nb\n' },
    { title: 'a CR at the end of a chunk waits for the next', chunks: ['a\r', '\nb'], expected: 'a\nb' },
    { title: 'a held CR followed by data is kept', chunks: ['a\r', 'b'], expected: 'a\rb' },
    { title: 'a final lone CR is flushed', chunks: ['a\r'], expected: 'a\r' },
    { title: 'bare LF lines are kept', chunks: ['a\nb\n'], expected: 'a\nb\n' },
    { title: 'CR CR LF keeps one CR', chunks: ['a\r\r\n'], expected: 'a\r\n' },
    { title: 'chunks of one byte', chunks: ['a', '\r', '\n', '\r', '\n'], expected: 'a\n\n' },
  ];
  for (const { title, chunks, expected } of cases) {
    it(title, () => assert.equal(decodeChunks(chunks), expected));
  }
});

describe('TYPE A properties', () => {
  const text = fc.string({ unit: fc.constantFrom('a', 'b', '\r', '\n', ' '), maxLength: 64 });
  const cuts = fc.array(fc.nat(100), { maxLength: 8 });

  it('chunking never changes the result, either way', () => {
    fc.assert(
      fc.property(text, cuts, (input, at) => {
        assert.equal(encodeChunks(split(input, at)), encodeChunks([input]));
        assert.equal(decodeChunks(split(input, at)), decodeChunks([input]));
      }),
    );
  });

  it('a file with LF line ends comes back unchanged after a round trip', () => {
    const lfText = fc.string({ unit: fc.constantFrom('a', 'b', '\n', ' '), maxLength: 64 });
    fc.assert(fc.property(lfText, cuts, (input, at) => assert.equal(decodeChunks(split(encodeChunks(split(input, at)), at)), input)));
  });

  it('the wire form never has an LF without its CR', () => {
    fc.assert(fc.property(text, cuts, (input, at) => assert.doesNotMatch(encodeChunks(split(input, at)), /(^|[^\r])\n/)));
  });
});
