import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeCommandForLog, isTransferCommand, parseCommandLine, stripTelnetInterrupt, type CommandLine } from '../../src/ftp/commands.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

// Telnet bytes (RFC 854).
const IAC = '\xff';
const IP = '\xf4';
const DM = '\xf2';

describe('parseCommandLine', () => {
  const cases: Array<{ title: string; input: string; expected: CommandLine }> = [
    { title: 'a bare verb', input: 'PASV', expected: { kind: 'command', verb: 'PASV', argument: '' } },
    { title: 'a verb and an argument', input: 'RETR file.txt', expected: { kind: 'command', verb: 'RETR', argument: 'file.txt' } },
    { title: 'a lower-case verb is upper-cased', input: 'pasv', expected: { kind: 'command', verb: 'PASV', argument: '' } },
    { title: 'a mixed-case verb is upper-cased', input: 'Port 1,2,3,4,5,6', expected: { kind: 'command', verb: 'PORT', argument: '1,2,3,4,5,6' } },
    { title: 'a three-letter verb', input: 'PWD', expected: { kind: 'command', verb: 'PWD', argument: '' } },
    { title: 'several spaces after the verb', input: 'PORT    1,2,3,4,5,6', expected: { kind: 'command', verb: 'PORT', argument: '1,2,3,4,5,6' } },
    { title: 'spaces inside the argument are kept', input: 'RETR  my  file ', expected: { kind: 'command', verb: 'RETR', argument: 'my  file ' } },
    { title: 'a trailing space alone gives an empty argument', input: 'NOOP ', expected: { kind: 'command', verb: 'NOOP', argument: '' } },
    { title: 'the argument keeps its case', input: 'cwd /Pub/Linux', expected: { kind: 'command', verb: 'CWD', argument: '/Pub/Linux' } },
    {
      title: 'a doubled IAC in a path is kept byte for byte',
      input: `RETR a${IAC}${IAC}b`,
      expected: { kind: 'command', verb: 'RETR', argument: `a${IAC}${IAC}b` },
    },
    { title: 'non-ASCII bytes in the argument survive as latin1', input: 'STOR caf\xe9', expected: { kind: 'command', verb: 'STOR', argument: 'caf\xe9' } },
    { title: 'EPSV ALL', input: 'EPSV ALL', expected: { kind: 'command', verb: 'EPSV', argument: 'ALL' } },
    { title: 'an empty line', input: '', expected: { kind: 'invalid', reason: 'empty' } },
    { title: 'a NUL byte in the argument', input: 'RETR a\0b', expected: { kind: 'invalid', reason: 'nul' } },
    { title: 'a NUL byte in the verb', input: 'RE\0TR x', expected: { kind: 'invalid', reason: 'nul' } },
    { title: 'a lone NUL', input: '\0', expected: { kind: 'invalid', reason: 'nul' } },
    { title: 'a lone CR in the argument', input: 'RETR a\rb', expected: { kind: 'invalid', reason: 'lone-cr' } },
    { title: 'a lone CR after the verb (ABOR sent as urgent data)', input: 'ABOR\rNOOP', expected: { kind: 'invalid', reason: 'lone-cr' } },
    { title: 'a trailing CR', input: 'NOOP\r', expected: { kind: 'invalid', reason: 'lone-cr' } },
    { title: 'a two-letter verb', input: 'AB', expected: { kind: 'invalid', reason: 'bad-verb' } },
    { title: 'a five-letter verb', input: 'ABORT', expected: { kind: 'invalid', reason: 'bad-verb' } },
    { title: 'a verb with a digit', input: 'PAS1', expected: { kind: 'invalid', reason: 'bad-verb' } },
    { title: 'a leading space', input: ' PASV', expected: { kind: 'invalid', reason: 'bad-verb' } },
    { title: 'only spaces', input: '   ', expected: { kind: 'invalid', reason: 'bad-verb' } },
    { title: 'a tab instead of a space', input: 'RETR\tfile', expected: { kind: 'invalid', reason: 'bad-verb' } },
    { title: 'a verb with punctuation', input: 'P-SV', expected: { kind: 'invalid', reason: 'bad-verb' } },
    { title: 'a non-ASCII letter in the verb', input: 'P\xc4SV', expected: { kind: 'invalid', reason: 'bad-verb' } },
    { title: 'Telnet bytes before the verb (not stripped here)', input: `${IAC}${IP}ABOR`, expected: { kind: 'invalid', reason: 'bad-verb' } },
    { title: 'Telnet option negotiation', input: `${IAC}\xfb\x01`, expected: { kind: 'invalid', reason: 'bad-verb' } },
    { title: 'an HTTP request line', input: 'GET / HTTP/1.1', expected: { kind: 'command', verb: 'GET', argument: '/ HTTP/1.1' } },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.deepEqual(parseCommandLine(bytes(input)), expected);
    });
  }

  it('argument bytes round-trip through latin1 exactly', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte).filter((byte) => byte !== 0 && byte !== 0x0d && byte !== 0x0a));
    const line = Buffer.concat([bytes('STOR '), all]);
    const parsed = parseCommandLine(line);
    assert.equal(parsed.kind, 'command');
    assert.deepEqual(parsed.kind === 'command' ? Buffer.from(parsed.argument, 'latin1') : null, all);
  });
});

describe('stripTelnetInterrupt', () => {
  const cases: Array<{ title: string; input: string; expected: string }> = [
    { title: 'IAC IP IAC DM before ABOR', input: `${IAC}${IP}${IAC}${DM}ABOR`, expected: 'ABOR' },
    { title: 'IAC IP IAC DM before lower-case abor', input: `${IAC}${IP}${IAC}${DM}abor`, expected: 'abor' },
    { title: 'IAC IP DM ABOR: the IAC before DM went as urgent data and was dropped', input: `${IAC}${IP}${DM}ABOR`, expected: 'ABOR' },
    { title: 'IAC IP IAC ABOR: the DM went as urgent data and was dropped', input: `${IAC}${IP}${IAC}ABOR`, expected: 'ABOR' },
    { title: 'IAC IP ABOR: no synch at all', input: `${IAC}${IP}ABOR`, expected: 'ABOR' },
    { title: 'IAC DM ABOR: synch without IP', input: `${IAC}${DM}ABOR`, expected: 'ABOR' },
    { title: 'the prefix alone leaves an empty line', input: `${IAC}${IP}${IAC}${DM}`, expected: '' },
    { title: 'a plain ABOR is unchanged', input: 'ABOR', expected: 'ABOR' },
    { title: 'a plain command is unchanged', input: 'RETR file', expected: 'RETR file' },
    { title: 'an empty line is unchanged', input: '', expected: '' },
    { title: 'a doubled IAC in a path is unchanged', input: `RETR a${IAC}${IAC}b`, expected: `RETR a${IAC}${IAC}b` },
    { title: 'IAC IP inside the line is not a prefix', input: `RETR ${IAC}${IP}x`, expected: `RETR ${IAC}${IP}x` },
    { title: 'a DM without a preceding IAC IP is data', input: `${DM}ABOR`, expected: `${DM}ABOR` },
    { title: 'a doubled IAC at the start is data', input: `${IAC}${IAC}ABOR`, expected: `${IAC}${IAC}ABOR` },
    { title: 'after the interrupt, a doubled IAC is data', input: `${IAC}${IP}${IAC}${IAC}x`, expected: `${IAC}${IAC}x` },
    { title: 'Telnet option negotiation is not stripped', input: `${IAC}\xfd\x01NOOP`, expected: `${IAC}\xfd\x01NOOP` },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.equal(stripTelnetInterrupt(bytes(input)).toString('latin1'), expected);
    });
  }

  it('stripping then parsing turns the interrupt sequence into ABOR', () => {
    for (const prefix of [`${IAC}${IP}${IAC}${DM}`, `${IAC}${IP}${DM}`, `${IAC}${IP}${IAC}`, `${IAC}${IP}`]) {
      assert.deepEqual(parseCommandLine(stripTelnetInterrupt(bytes(`${prefix}ABOR`))), { kind: 'command', verb: 'ABOR', argument: '' });
    }
  });

  it('returns the same buffer when there is nothing to strip', () => {
    const line = bytes('NOOP');
    assert.equal(stripTelnetInterrupt(line), line);
  });
});

describe('describeCommandForLog', () => {
  const cases: Array<{ title: string; input: string; expected: string }> = [
    { title: 'PASS is masked', input: 'PASS hunter2', expected: 'PASS ****' },
    { title: 'lower-case pass is masked', input: 'pass hunter2', expected: 'PASS ****' },
    { title: 'a password with spaces is masked whole', input: 'PASS  correct horse battery', expected: 'PASS ****' },
    { title: 'ACCT is masked', input: 'ACCT secret-account', expected: 'ACCT ****' },
    { title: 'ADAT is masked', input: 'ADAT Zm9vYmFy', expected: 'ADAT ****' },
    { title: 'PASS without an argument', input: 'PASS', expected: 'PASS' },
    { title: 'USER is shown', input: 'USER anonymous', expected: 'USER anonymous' },
    { title: 'a bare verb', input: 'pasv', expected: 'PASV' },
    { title: 'PORT is shown', input: 'PORT 127,0,0,1,4,51', expected: 'PORT 127,0,0,1,4,51' },
    { title: 'an invalid line names only the reason', input: 'PASS\tsecret', expected: '<invalid: bad-verb>' },
    { title: 'a line with a NUL names only the reason', input: 'PASS se\0cret', expected: '<invalid: nul>' },
    { title: 'a line with a lone CR names only the reason', input: 'PASS se\rcret', expected: '<invalid: lone-cr>' },
    { title: 'an empty line', input: '', expected: '<invalid: empty>' },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      const described = describeCommandForLog(parseCommandLine(bytes(input)));
      assert.equal(described, expected);
      assert.doesNotMatch(described, /hunter2|secret|horse|Zm9v/);
    });
  }
});

describe('isTransferCommand', () => {
  const cases: Array<{ title: string; input: string; expected: boolean }> = [
    { title: 'RETR', input: 'RETR file.bin', expected: true },
    { title: 'lower-case stor', input: 'stor up.bin', expected: true },
    { title: 'APPE', input: 'APPE log.txt', expected: true },
    { title: 'STOU', input: 'STOU', expected: true },
    { title: 'LIST without argument', input: 'LIST', expected: true },
    { title: 'NLST', input: 'NLST /', expected: true },
    { title: 'MLSD', input: 'MLSD', expected: true },
    { title: 'MLST uses the control connection', input: 'MLST file', expected: false },
    { title: 'PASV sets up, does not transfer', input: 'PASV', expected: false },
    { title: 'STAT replies on the control connection', input: 'STAT /', expected: false },
    { title: 'an invalid line', input: 'RE\0TR x', expected: false },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => assert.equal(isTransferCommand(parseCommandLine(Buffer.from(input, 'latin1'))), expected));
  }
});
