import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPreliminary, ReplyTracker, type ReplyLine } from '../../src/ftp/replies.js';

/** Classifies a sequence of server lines with one tracker, as a session would. */
function classifyAll(lines: string[]): ReplyLine[] {
  const tracker = new ReplyTracker();
  return lines.map((line) => tracker.classify(Buffer.from(line, 'latin1')));
}

const final = (code: number, multiLine = false): ReplyLine => ({ kind: 'final', code, multiLine });
const first = (code: number): ReplyLine => ({ kind: 'first', code });
const continuation: ReplyLine = { kind: 'continuation' };
const garbage: ReplyLine = { kind: 'garbage' };

describe('ReplyTracker', () => {
  const cases: Array<{ title: string; input: string[]; expected: ReplyLine[] }> = [
    { title: 'a one-line reply', input: ['200 OK'], expected: [final(200)] },
    { title: 'a code with no text', input: ['200'], expected: [final(200)] },
    { title: 'a code and a space only', input: ['226 '], expected: [final(226)] },
    { title: 'consecutive one-line replies', input: ['150 Opening', '226 Done'], expected: [final(150), final(226)] },
    {
      title: 'a 227 one-line reply',
      input: ['227 Entering Passive Mode (127,0,0,1,4,51).'],
      expected: [final(227)],
    },
    {
      title: 'a multi-line reply',
      input: ['211-Features:', ' EPSV', ' MDTM', '211 End'],
      expected: [first(211), continuation, continuation, final(211, true)],
    },
    {
      title: 'inner lines that look like replies are text',
      input: ['211-Status', '227 Entering Passive Mode (10,0,0,1,4,51)', '229 Entering Extended Passive Mode (|||1234|)', '421 Goodbye', '211 End'],
      expected: [first(211), continuation, continuation, continuation, final(211, true)],
    },
    {
      title: 'a terminator with the wrong code is text',
      input: ['211-Status', '212 not the end', '200 nor this', '211 End'],
      expected: [first(211), continuation, continuation, final(211, true)],
    },
    {
      title: 'ddd- with the same code inside the reply is text',
      input: ['230-Welcome', '230-More welcome', '230 Logged in'],
      expected: [first(230), continuation, final(230, true)],
    },
    {
      title: 'another code with a dash inside the reply is text, not a nested reply',
      input: ['220-Banner', '211-Not nested', '220 Ready', '211 Unsolicited'],
      expected: [first(220), continuation, final(220, true), final(211)],
    },
    {
      title: 'a line that only starts with the code is not the terminator',
      input: ['211-Status', '2110 nope', '211x nope', ' 211 indented', '211 End'],
      expected: [first(211), continuation, continuation, continuation, final(211, true)],
    },
    {
      title: 'the bare code ends a multi-line reply',
      input: ['211-Status', '211'],
      expected: [first(211), final(211, true)],
    },
    {
      title: 'empty lines inside a multi-line reply are text',
      input: ['220-Banner', '', '220 Ready'],
      expected: [first(220), continuation, final(220, true)],
    },
    {
      title: 'after a multi-line reply ends, the next line is a new reply',
      input: ['211-a', '211 b', '227 Entering Passive Mode (1,2,3,4,5,6)'],
      expected: [first(211), final(211, true), final(227)],
    },
    {
      title: 'a multi-line reply that starts with a preliminary code',
      input: ['150-Opening', ' text', '150 Opening data connection', '226 Done'],
      expected: [first(150), continuation, final(150, true), final(226)],
    },
    {
      title: 'garbage outside a reply',
      input: ['hello', '', ' 200 indented', '2000 five digits', '20 short', 'abc def'],
      expected: [garbage, garbage, garbage, garbage, garbage, garbage],
    },
    {
      title: 'codes outside 100-599 are garbage',
      input: ['000 zero', '099 low', '600 high', '999 high'],
      expected: [garbage, garbage, garbage, garbage],
    },
    {
      title: 'a code followed by something other than space or dash is garbage',
      input: ['200:OK', '200_OK', '200\tOK'],
      expected: [garbage, garbage, garbage],
    },
    {
      title: 'garbage between replies does not disturb them',
      input: ['junk', '200 OK', 'junk', '211-a', 'junk', '211 b'],
      expected: [garbage, final(200), garbage, first(211), continuation, final(211, true)],
    },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.deepEqual(classifyAll(input), expected);
    });
  }
});

describe('isPreliminary', () => {
  const cases = [
    { title: '100', input: 100, expected: true },
    { title: '150', input: 150, expected: true },
    { title: '199', input: 199, expected: true },
    { title: '200', input: 200, expected: false },
    { title: '226', input: 226, expected: false },
    { title: '99', input: 99, expected: false },
    { title: '421', input: 421, expected: false },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.equal(isPreliminary(input), expected);
    });
  }
});
