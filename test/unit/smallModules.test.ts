import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { printableLine, printableText } from '../../src/terminalText.js';
import { Fifo } from '../../src/ftp/fifo.js';
import { clampTimerMs, MAX_TIMER_MS } from '../../src/timers.js';

describe('Fifo', () => {
  it('behaves like an array used as a queue, whatever the mix of pushes and shifts', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer(), fc.constant(null)), { maxLength: 5000 }), (operations) => {
        const fifo = new Fifo<number>();
        const model: number[] = [];
        for (const operation of operations) {
          if (operation === null) assert.equal(fifo.shift(), model.shift());
          else {
            fifo.push(operation);
            model.push(operation);
          }
          assert.equal(fifo.length, model.length);
          assert.equal(fifo.at(0), model[0]);
        }
        assert.equal(fifo.findIndex((item) => item === model[model.length - 1]), model.length === 0 ? -1 : model.indexOf(model[model.length - 1]!));
      }),
      { numRuns: 200 },
    );
  });
});

describe('printableText: server text shown on a terminal', () => {
  const cases: Array<{ title: string; input: string; expected: string }> = [
    { title: 'plain text is kept', input: 'Password for alice: ', expected: 'Password for alice: ' },
    { title: 'newlines and tabs in instructions are kept', input: 'Line 1\n\tLine 2', expected: 'Line 1\n\tLine 2' },
    { title: 'an escape sequence is shown, not obeyed', input: '\u001b[2J\u001b]0;pwned\u0007Password:', expected: '\\033[2J\\033]0;pwned\\007Password:' },
    { title: 'a carriage return cannot overwrite the line', input: 'fake prompt\rPassword:', expected: 'fake prompt\\015Password:' },
    { title: 'DEL and C1 controls', input: 'a\u007fb\u009bc', expected: 'a\\177b\\233c' },
    { title: 'bidirectional overrides', input: 'abc\u202edef', expected: 'abc\\u202edef' },
    { title: 'UTF-8 letters are kept', input: 'Mot de passe de José : ', expected: 'Mot de passe de José : ' },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => assert.equal(printableText(input), expected));
  }
  it('printableLine escapes newlines and tabs too', () => assert.equal(printableLine('a\nb\tc\u001b'), 'a\\nb\\tc\\033'));
});

describe('clampTimerMs', () => {
  const cases: Array<{ input: number; expected: number }> = [
    { input: 0, expected: 0 },
    { input: 1500, expected: 1500 },
    { input: MAX_TIMER_MS, expected: MAX_TIMER_MS },
    { input: 2_147_484_000, expected: MAX_TIMER_MS },
    { input: 1e20, expected: MAX_TIMER_MS },
  ];
  for (const { input, expected } of cases) it(`${input} ms`, () => assert.equal(clampTimerMs(input), expected));
  it('refuses what is not a duration', () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => clampTimerMs(bad), RangeError);
  });
});
