import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { frameLines, LineBuffer, withCrlf, type FrameResult } from '../../src/ftp/lineFramer.js';

const CAP = 16;

/** What a sequence of chunks framed into: every line seen, and whether it overflowed. */
interface Framed {
  lines: string[];
  overflow: boolean;
  pendingBytes: number;
}

/** Appends a chunk and takes every line the buffer then holds, reported the way frameLines reports them. */
function pushAndTake(buffer: LineBuffer, chunk: Buffer): { kind: 'lines' | 'overflow'; lines: Buffer[] } {
  buffer.push(chunk);
  const lines: Buffer[] = [];
  for (let next = buffer.next(); ; next = buffer.next()) {
    if (next.kind === 'line') lines.push(next.line);
    else return { kind: next.kind === 'overflow' ? 'overflow' : 'lines', lines };
  }
}

function feed(chunks: Buffer[], cap = CAP): Framed {
  const framer = new LineBuffer(cap);
  const lines: string[] = [];
  for (const chunk of chunks) {
    const result = pushAndTake(framer, chunk);
    lines.push(...result.lines.map((line) => line.toString('latin1')));
    if (result.kind === 'overflow') return { lines, overflow: true, pendingBytes: framer.bufferedBytes };
  }
  return { lines, overflow: false, pendingBytes: framer.bufferedBytes };
}

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

/** Every way of cutting `text` into two chunks, including the empty cuts at both ends. */
function everySplit(text: string): Array<{ at: number; chunks: Buffer[] }> {
  const whole = bytes(text);
  return Array.from({ length: whole.length + 1 }, (_, at) => ({
    at,
    chunks: [whole.subarray(0, at), whole.subarray(at)],
  }));
}

describe('LineBuffer: framing', () => {
  const cases: Array<{ title: string; input: string[]; expected: Framed }> = [
    { title: 'one CRLF line', input: ['USER anonymous\r\n'], expected: { lines: ['USER anonymous'], overflow: false, pendingBytes: 0 } },
    { title: 'one bare LF line', input: ['PASV\n'], expected: { lines: ['PASV'], overflow: false, pendingBytes: 0 } },
    {
      title: 'several lines in one chunk, mixed terminators',
      input: ['PASV\r\nNOOP\nEPSV\r\n'],
      expected: { lines: ['PASV', 'NOOP', 'EPSV'], overflow: false, pendingBytes: 0 },
    },
    {
      title: 'an unfinished line is held back',
      input: ['NOOP\r\nRETR fi'],
      expected: { lines: ['NOOP'], overflow: false, pendingBytes: 7 },
    },
    {
      title: 'a line is complete only at its LF',
      input: ['RE', 'TR f', 'ile\r', '\n'],
      expected: { lines: ['RETR file'], overflow: false, pendingBytes: 0 },
    },
    {
      title: 'CR and LF arrive in separate chunks',
      input: ['NOOP\r', '\nPWD\r', '\n'],
      expected: { lines: ['NOOP', 'PWD'], overflow: false, pendingBytes: 0 },
    },
    {
      title: 'a lone CR inside a line stays in the line',
      input: ['RETR a\rb\r\n'],
      expected: { lines: ['RETR a\rb'], overflow: false, pendingBytes: 0 },
    },
    {
      title: 'a lone CR at the start of a line stays in the line',
      input: ['\rNOOP\r\n'],
      expected: { lines: ['\rNOOP'], overflow: false, pendingBytes: 0 },
    },
    {
      title: 'only the one CR directly before LF is the terminator',
      input: ['NOOP\r\r\n'],
      expected: { lines: ['NOOP\r'], overflow: false, pendingBytes: 0 },
    },
    {
      title: 'a lone CR followed by more text across chunks stays in the line',
      input: ['ABOR\r', 'NOOP\r\n'],
      expected: { lines: ['ABOR\rNOOP'], overflow: false, pendingBytes: 0 },
    },
    {
      title: 'empty lines are lines',
      input: ['\r\n\n\r\nNOOP\r\n'],
      expected: { lines: ['', '', '', 'NOOP'], overflow: false, pendingBytes: 0 },
    },
    {
      title: 'a NUL byte does not end a line',
      input: ['RETR a\0b\r\n'],
      expected: { lines: ['RETR a\0b'], overflow: false, pendingBytes: 0 },
    },
    { title: 'an empty chunk changes nothing', input: ['', 'NO', '', 'OP\n', ''], expected: { lines: ['NOOP'], overflow: false, pendingBytes: 0 } },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.deepEqual(feed(input.map(bytes)), expected);
    });
  }
});

describe('LineBuffer: a reply split at every byte boundary', () => {
  const stream = '227 Entering Passive Mode (127,0,0,1,4,51).\r\n226 Done\r\n';
  const expected = ['227 Entering Passive Mode (127,0,0,1,4,51).', '226 Done'];
  for (const { at, chunks } of everySplit(stream)) {
    it(`split after byte ${at}`, () => {
      assert.deepEqual(feed(chunks, 64), { lines: expected, overflow: false, pendingBytes: 0 });
    });
  }

  it('one byte at a time', () => {
    const chunks = [...bytes(stream)].map((byte) => Buffer.from([byte]));
    assert.deepEqual(feed(chunks, 64), { lines: expected, overflow: false, pendingBytes: 0 });
  });
});

describe('LineBuffer: the length cap', () => {
  const line = (length: number): string => 'x'.repeat(length);
  const cases: Array<{ title: string; input: string[]; expected: Framed }> = [
    {
      title: 'a finished line of exactly cap bytes with CRLF is accepted',
      input: [`${line(CAP)}\r\n`],
      expected: { lines: [line(CAP)], overflow: false, pendingBytes: 0 },
    },
    {
      title: 'a finished line of exactly cap bytes with LF is accepted',
      input: [`${line(CAP)}\n`],
      expected: { lines: [line(CAP)], overflow: false, pendingBytes: 0 },
    },
    {
      title: 'a finished line of cap + 1 bytes overflows',
      input: [`${line(CAP + 1)}\r\n`],
      expected: { lines: [], overflow: true, pendingBytes: 0 },
    },
    {
      title: 'a finished line of cap + 1 bytes with bare LF overflows',
      input: [`${line(CAP + 1)}\n`],
      expected: { lines: [], overflow: true, pendingBytes: 0 },
    },
    {
      title: 'a lone CR counts towards the cap',
      input: [`${line(CAP)}\r\r\n`],
      expected: { lines: [], overflow: true, pendingBytes: 0 },
    },
    {
      title: 'lines before the over-long one are still delivered',
      input: [`NOOP\r\nPWD\n${line(CAP + 1)}\r\nSYST\r\n`],
      expected: { lines: ['NOOP', 'PWD'], overflow: true, pendingBytes: 0 },
    },
    {
      title: 'an unfinished line of exactly cap bytes waits',
      input: [line(CAP)],
      expected: { lines: [], overflow: false, pendingBytes: CAP },
    },
    {
      title: 'an unfinished line of cap bytes and the CR of its CRLF waits',
      input: [`${line(CAP)}\r`],
      expected: { lines: [], overflow: false, pendingBytes: CAP + 1 },
    },
    {
      title: 'an unfinished line of cap bytes and its CR, then the LF, is a line',
      input: [`${line(CAP)}\r`, '\n'],
      expected: { lines: [line(CAP)], overflow: false, pendingBytes: 0 },
    },
    {
      title: 'an unfinished line of cap + 1 bytes overflows at once',
      input: [line(CAP + 1)],
      expected: { lines: [], overflow: true, pendingBytes: 0 },
    },
    {
      title: 'an unfinished line overflows when it grows past the cap over several chunks',
      input: [line(10), line(6), 'y'],
      expected: { lines: [], overflow: true, pendingBytes: 0 },
    },
    {
      title: 'cap bytes, CR, then more text: the CR was a lone CR and the line overflows',
      input: [`${line(CAP)}\r`, 'y'],
      expected: { lines: [], overflow: true, pendingBytes: 0 },
    },
    {
      title: 'an unfinished line after complete ones overflows, the complete ones are kept',
      input: [`NOOP\r\n${line(CAP + 5)}`],
      expected: { lines: ['NOOP'], overflow: true, pendingBytes: 0 },
    },
    {
      title: 'a peer that never sends LF cannot grow the buffer without bound',
      input: Array.from({ length: 100 }, () => 'aaaa'),
      expected: { lines: [], overflow: true, pendingBytes: 0 },
    },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.deepEqual(feed(input.map(bytes)), expected);
    });
  }
});

describe('frameLines', () => {
  const cases: Array<{ title: string; input: { buffered: string; chunk: string; cap: number }; expected: { kind: FrameResult['kind']; lines: string[]; rest?: string } }> = [
    {
      title: 'glues the buffered tail onto the chunk',
      input: { buffered: 'NO', chunk: 'OP\r\nPW', cap: 8 },
      expected: { kind: 'lines', lines: ['NOOP'], rest: 'PW' },
    },
    {
      title: 'a buffered CR and a chunk starting with LF make one CRLF',
      input: { buffered: 'NOOP\r', chunk: '\n', cap: 8 },
      expected: { kind: 'lines', lines: ['NOOP'], rest: '' },
    },
    {
      title: 'nothing buffered and an empty chunk',
      input: { buffered: '', chunk: '', cap: 8 },
      expected: { kind: 'lines', lines: [], rest: '' },
    },
    {
      title: 'a zero cap accepts only empty lines',
      input: { buffered: '', chunk: '\r\n\nx\n', cap: 0 },
      expected: { kind: 'overflow', lines: ['', ''] },
    },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      const result = frameLines(bytes(input.buffered), bytes(input.chunk), input.cap);
      const actual = {
        kind: result.kind,
        lines: result.lines.map((line) => line.toString('latin1')),
        ...(result.kind === 'lines' ? { rest: result.rest.toString('latin1') } : {}),
      };
      assert.deepEqual(actual, expected);
    });
  }

  it('the rest it returns does not share memory with the chunk', () => {
    const chunk = bytes('NOOP\r\nPW');
    const result = frameLines(Buffer.alloc(0), chunk, 8);
    assert.equal(result.kind, 'lines');
    chunk.fill(0x21);
    assert.equal(result.kind === 'lines' ? result.rest.toString('latin1') : null, 'PW');
  });
});

describe('withCrlf', () => {
  const cases = [
    { title: 'appends CRLF', input: 'PASV', expected: 'PASV\r\n' },
    { title: 'an empty line becomes CRLF', input: '', expected: '\r\n' },
    { title: 'keeps every byte, including 0xff', input: 'RETR \xff\xff', expected: 'RETR \xff\xff\r\n' },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.equal(withCrlf(bytes(input)).toString('latin1'), expected);
    });
  }
});

describe('LineBuffer: property', () => {
  /** A line of bytes without CR or LF, at most `cap` long. */
  const lineArbitrary = (cap: number) =>
    fc
      .uint8Array({ maxLength: cap })
      .map((array) => Buffer.from(array.map((byte) => (byte === 0x0a || byte === 0x0d ? 0x41 : byte))));

  it('any lines joined with CRLF or LF and cut anywhere frame back to the same lines', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }).chain((cap) =>
          fc.record({
            cap: fc.constant(cap),
            lines: fc.array(fc.tuple(lineArbitrary(cap), fc.boolean()), { maxLength: 20 }),
            cuts: fc.array(fc.nat(), { maxLength: 30 }),
          }),
        ),
        ({ cap, lines, cuts }) => {
          const stream = Buffer.concat(lines.map(([line, crlf]) => Buffer.concat([line, Buffer.from(crlf ? '\r\n' : '\n')])));
          const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let previous = 0;
          for (const point of [...points, stream.length]) {
            chunks.push(stream.subarray(previous, point));
            previous = point;
          }
          const framer = new LineBuffer(cap);
          const seen: Buffer[] = [];
          for (const chunk of chunks) {
            const result = pushAndTake(framer, chunk);
            assert.equal(result.kind, 'lines');
            seen.push(...result.lines);
          }
          assert.deepEqual(seen, lines.map(([line]) => line));
          assert.equal(framer.bufferedBytes, 0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a stream with a line longer than the cap always overflows, never delivering that line', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 1, max: 30 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (cap, excess, cuts) => {
          const stream = Buffer.concat([Buffer.from('NOOP'.slice(0, cap) + '\n'), Buffer.alloc(cap + excess, 0x78), Buffer.from('\r\n')]);
          const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
          const framer = new LineBuffer(cap);
          const seen: string[] = [];
          let overflow = false;
          let previous = 0;
          for (const point of [...points, stream.length]) {
            const result = pushAndTake(framer, stream.subarray(previous, point));
            previous = point;
            seen.push(...result.lines.map((line) => line.toString('latin1')));
            if (result.kind === 'overflow') {
              overflow = true;
              break;
            }
          }
          assert.equal(overflow, true);
          assert.deepEqual(seen, ['NOOP'.slice(0, cap)]);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('LineBuffer: the same lines as frameLines, however the bytes arrive and whenever lines are taken', () => {
  /** frameLines over the whole stream at once: the reference. */
  function reference(stream: Buffer, cap: number): { lines: string[]; overflow: boolean } {
    const result = frameLines(Buffer.alloc(0), stream, cap);
    return { lines: result.lines.map((line) => line.toString('latin1')), overflow: result.kind === 'overflow' };
  }

  it('agrees with frameLines on random bytes (CR, LF and others), random cuts and random take points', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.uint8Array({ maxLength: 200 }).map((array) => Buffer.from(array.map((byte) => [0x0a, 0x0d, 0x41, 0x42][byte % 4]!))),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 })), { maxLength: 20 }),
        (cap, stream, plan) => {
          const expected = reference(stream, cap);
          const buffer = new LineBuffer(cap);
          const lines: string[] = [];
          let overflow = false;
          const take = (limit: number): void => {
            for (let count = 0; count < limit && !overflow; count += 1) {
              const next = buffer.next();
              if (next.kind === 'line') lines.push(next.line.toString('latin1'));
              else if (next.kind === 'overflow') overflow = true;
              else return;
            }
          };
          let offset = 0;
          for (const [cut, takes] of plan) {
            const end = Math.min(stream.length, offset + (cut % 40));
            buffer.push(stream.subarray(offset, end));
            offset = end;
            take(takes);
          }
          buffer.push(stream.subarray(offset));
          take(Number.POSITIVE_INFINITY);
          // frameLines reports an unfinished line over the cap only once it is all there: so does LineBuffer.
          assert.deepEqual({ lines, overflow }, expected);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('holds only what has not been taken: 64 KiB of empty lines leave nothing behind once taken', () => {
    const buffer = new LineBuffer(4096);
    buffer.push(Buffer.alloc(64 * 1024, 0x0a));
    let count = 0;
    for (let next = buffer.next(); next.kind === 'line'; next = buffer.next()) count += 1;
    assert.equal(count, 64 * 1024);
    assert.equal(buffer.bufferedBytes, 0);
  });
});
