import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  formatEprtArgument,
  formatPortArgument,
  parseEprtArgument,
  parseEpsvReply,
  parsePasvReply,
  parsePortArgument,
  rewriteEpsvReply,
  rewritePasvReply,
  type ActiveTarget,
  type ParseResult,
} from '../../src/ftp/dataAddresses.js';

/** The parsed value, or `null` when the parser refused the input. */
function valueOf<T>(result: ParseResult<T>): T | null {
  if (result.ok) return result.value;
  assert.equal(typeof result.reason, 'string');
  assert.notEqual(result.reason, '');
  return null;
}

describe('parsePasvReply', () => {
  const cases: Array<{ title: string; input: string; expected: { host: string; port: number } | null }> = [
    { title: 'standard, with parentheses', input: '227 Entering Passive Mode (127,0,0,1,4,51)', expected: { host: '127.0.0.1', port: 1075 } },
    { title: 'without parentheses', input: '227 Entering Passive Mode 127,0,0,1,4,51', expected: { host: '127.0.0.1', port: 1075 } },
    { title: 'with a trailing dot (vsftpd, ProFTPD, IIS)', input: '227 Entering Passive Mode (127,0,0,1,4,51).', expected: { host: '127.0.0.1', port: 1075 } },
    { title: 'lower-case text', input: '227 entering passive mode (127,0,0,1,4,51)', expected: { host: '127.0.0.1', port: 1075 } },
    { title: 'text, a dot and the numbers', input: '227 Entering passive mode. 127,0,0,1,4,51', expected: { host: '127.0.0.1', port: 1075 } },
    {
      title: 'different leading text',
      input: '227 Data transfer will passively listen to 127,0,0,1,4,51',
      expected: { host: '127.0.0.1', port: 1075 },
    },
    { title: 'the `=` form', input: '227 =127,0,0,1,4,51', expected: { host: '127.0.0.1', port: 1075 } },
    { title: 'WU-FTPD', input: '227 Entering Passive Mode (192,168,1,10,195,80)', expected: { host: '192.168.1.10', port: 50000 } },
    { title: 'FileZilla Server', input: '227 Entering Passive Mode (10,0,0,5,195,81)', expected: { host: '10.0.0.5', port: 50001 } },
    { title: 'Serv-U', input: '227 Entering Passive Mode (203,0,113,7,203,87)', expected: { host: '203.0.113.7', port: 52055 } },
    { title: 'IIS', input: '227 Entering Passive Mode (192,168,150,90,195,149).', expected: { host: '192.168.150.90', port: 50069 } },
    { title: 'Titan FTP style with a dash', input: '227 - Entering Passive Mode (10,1,2,3,9,136).', expected: { host: '10.1.2.3', port: 2440 } },
    { title: 'digits in the text before the numbers', input: '227 Mode 2 ready (127,0,0,1,4,51)', expected: { host: '127.0.0.1', port: 1075 } },
    { title: 'leading zeros within three digits', input: '227 Entering Passive Mode (127,000,000,001,004,051)', expected: { host: '127.0.0.1', port: 1075 } },
    { title: 'the unspecified address is parsed, the caller decides', input: '227 Entering Passive Mode (0,0,0,0,4,51)', expected: { host: '0.0.0.0', port: 1075 } },
    { title: 'the lowest port', input: '227 Entering Passive Mode (127,0,0,1,0,1)', expected: { host: '127.0.0.1', port: 1 } },
    { title: 'the highest port', input: '227 Entering Passive Mode (127,0,0,1,255,255)', expected: { host: '127.0.0.1', port: 65535 } },
    { title: 'the first run of six numbers wins', input: '227 Entering Passive Mode (127,0,0,1,4,51) was (1,2,3,4,5,6)', expected: { host: '127.0.0.1', port: 1075 } },
    { title: 'a port number above 255 is not folded into a small port', input: '227 Entering Passive Mode (127,0,0,1,256,22)', expected: null },
    { title: 'an address number above 255', input: '227 Entering Passive Mode (256,0,0,1,4,51)', expected: null },
    { title: 'four-digit numbers', input: '227 Entering Passive Mode (1216,256,2,127,127,127)', expected: null },
    { title: 'seven numbers', input: '227 Entering Passive Mode (127,0,0,1,4,51,7)', expected: null },
    { title: 'seven numbers, the extra one first', input: '227 Entering Passive Mode (1,127,0,0,1,4,51)', expected: null },
    { title: 'five numbers', input: '227 Entering Passive Mode (127,0,0,1,4)', expected: null },
    { title: 'port 0', input: '227 Entering Passive Mode (127,0,0,1,0,0)', expected: null },
    { title: 'extra digits on the last number', input: '227 Entering Passive Mode (127,0,0,1,4,5100)', expected: null },
    { title: 'extra digits on the first number', input: '227 Entering Passive Mode (1270,0,0,1,4,51)', expected: null },
    { title: 'a leading comma', input: '227 Entering Passive Mode (,127,0,0,1,4,51)', expected: null },
    { title: 'a trailing comma', input: '227 Entering Passive Mode (127,0,0,1,4,51,)', expected: null },
    { title: 'spaces after the commas', input: '227 Entering Passive Mode (127, 0, 0, 1, 4, 51)', expected: null },
    { title: 'a dotted address', input: '227 Entering Passive Mode (127.0.0.1,4,51)', expected: null },
    { title: 'a negative number', input: '227 Entering Passive Mode (127,0,0,1,-4,51)', expected: null },
    { title: 'no numbers', input: '227 Entering Passive Mode', expected: null },
    { title: 'an empty text', input: '227 ', expected: null },
    { title: 'just the code', input: '227', expected: null },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      const value = valueOf(parsePasvReply(input));
      assert.deepEqual(value, expected === null ? null : { host: expected.host, port: expected.port });
    });
  }
});

describe('rewritePasvReply', () => {
  const cases: Array<{ title: string; input: { text: string; host: string; port: number }; expected: string }> = [
    {
      title: 'standard, with parentheses',
      input: { text: '227 Entering Passive Mode (10,0,0,5,195,80)', host: '127.0.0.1', port: 40000 },
      expected: '227 Entering Passive Mode (127,0,0,1,156,64)',
    },
    {
      title: 'keeps the trailing dot',
      input: { text: '227 Entering Passive Mode (10,0,0,5,195,80).', host: '127.0.0.1', port: 40000 },
      expected: '227 Entering Passive Mode (127,0,0,1,156,64).',
    },
    {
      title: 'keeps text without parentheses',
      input: { text: '227 Data transfer will passively listen to 10,0,0,5,195,80', host: '127.0.0.1', port: 40000 },
      expected: '227 Data transfer will passively listen to 127,0,0,1,156,64',
    },
    {
      title: 'keeps the `=` form',
      input: { text: '227 =10,0,0,5,195,80', host: '192.168.7.1', port: 1 },
      expected: '227 =192,168,7,1,0,1',
    },
    {
      title: 'keeps lower case and odd spacing',
      input: { text: '227  entering passive mode.  10,0,0,5,195,80  ', host: '127.0.0.1', port: 65535 },
      expected: '227  entering passive mode.  127,0,0,1,255,255  ',
    },
    {
      title: 'replaces numbers with leading zeros',
      input: { text: '227 Entering Passive Mode (010,000,000,005,195,080)', host: '127.0.0.1', port: 1075 },
      expected: '227 Entering Passive Mode (127,0,0,1,4,51)',
    },
    {
      title: 'keeps text after the numbers, including other numbers',
      input: { text: '227 Entering Passive Mode (10,0,0,5,195,80) 1,2,3', host: '127.0.0.1', port: 1075 },
      expected: '227 Entering Passive Mode (127,0,0,1,4,51) 1,2,3',
    },
    {
      title: 'keeps latin1 bytes in the text',
      input: { text: '227 Entrée en mode passif (10,0,0,5,195,80)', host: '127.0.0.1', port: 1075 },
      expected: '227 Entrée en mode passif (127,0,0,1,4,51)',
    },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      const rewritten = rewritePasvReply(input.text, input.host, input.port);
      assert.equal(rewritten, expected);
      assert.deepEqual(valueOf(parsePasvReply(rewritten)), { host: input.host, port: input.port });
    });
  }

  const refused: Array<{ title: string; input: { text: string; host: string; port: number } }> = [
    { title: 'an IPv6 host cannot go in a 227', input: { text: '227 Entering Passive Mode (10,0,0,5,195,80)', host: '::1', port: 1075 } },
    { title: 'a host name cannot go in a 227', input: { text: '227 Entering Passive Mode (10,0,0,5,195,80)', host: 'localhost', port: 1075 } },
    { title: 'a reply without six numbers', input: { text: '227 Entering Passive Mode', host: '127.0.0.1', port: 1075 } },
  ];
  for (const { title, input } of refused) {
    it(`throws: ${title}`, () => {
      assert.throws(() => rewritePasvReply(input.text, input.host, input.port), RangeError);
    });
  }
});

describe('parseEpsvReply', () => {
  const cases: Array<{ title: string; input: string; expected: number | null }> = [
    { title: 'the usual `|` delimiter', input: '229 Entering Extended Passive Mode (|||6446|)', expected: 6446 },
    { title: 'a `!` delimiter', input: '229 Entering Extended Passive Mode (!!!6446!)', expected: 6446 },
    { title: 'a `#` delimiter', input: '229 Entering Extended Passive Mode (###6446#)', expected: 6446 },
    { title: 'a `~` delimiter (126, the highest allowed)', input: '229 Entering Extended Passive Mode (~~~6446~)', expected: 6446 },
    { title: 'a trailing dot', input: '229 Extended Passive Mode Entered (|||50000|).', expected: 50000 },
    { title: 'without parentheses', input: '229 Entering Extended Passive Mode |||6446|', expected: 6446 },
    { title: 'lower-case text', input: '229 entering extended passive mode (|||6446|)', expected: 6446 },
    { title: 'port 1', input: '229 Entering Extended Passive Mode (|||1|)', expected: 1 },
    { title: 'port 65535', input: '229 Entering Extended Passive Mode (|||65535|)', expected: 65535 },
    { title: 'port 0', input: '229 Entering Extended Passive Mode (|||0|)', expected: null },
    { title: 'port 65536', input: '229 Entering Extended Passive Mode (|||65536|)', expected: null },
    { title: 'port 99999', input: '229 Entering Extended Passive Mode (|||99999|)', expected: null },
    { title: 'six digits', input: '229 Entering Extended Passive Mode (|||123456|)', expected: null },
    { title: 'no port', input: '229 Entering Extended Passive Mode (||||)', expected: null },
    { title: 'only the port', input: '229 Entering Extended Passive Mode (6446)', expected: null },
    { title: 'two leading delimiters', input: '229 Entering Extended Passive Mode (||6446|)', expected: null },
    { title: 'no trailing delimiter', input: '229 Entering Extended Passive Mode (|||6446)', expected: null },
    { title: 'mixed delimiters', input: '229 Entering Extended Passive Mode (|||6446!)', expected: null },
    { title: 'mixed leading delimiters', input: '229 Entering Extended Passive Mode (|!|6446|)', expected: null },
    { title: 'a space is not a delimiter', input: '229 Entering Extended Passive Mode (   6446 )', expected: null },
    { title: 'a digit is not a delimiter', input: '229 Entering Extended Passive Mode (11164461)', expected: null },
    { title: 'a digit is not a delimiter, even with a space before the last one', input: '229 Entering Extended Passive Mode (1116446 1)', expected: null },
    { title: 'an address where none belongs', input: '229 Entering Extended Passive Mode (|1|127.0.0.1|6446|)', expected: null },
    { title: 'no text', input: '229 ', expected: null },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.deepEqual(valueOf(parseEpsvReply(input)), expected === null ? null : { host: null, port: expected });
    });
  }
});

describe('rewriteEpsvReply', () => {
  const cases: Array<{ title: string; input: { text: string; port: number }; expected: string }> = [
    {
      title: 'replaces the port, keeps the `|` delimiter and the text',
      input: { text: '229 Entering Extended Passive Mode (|||6446|)', port: 40000 },
      expected: '229 Entering Extended Passive Mode (|||40000|)',
    },
    {
      title: 'keeps a `!` delimiter',
      input: { text: '229 Entering Extended Passive Mode (!!!6446!)', port: 40000 },
      expected: '229 Entering Extended Passive Mode (!!!40000!)',
    },
    {
      title: 'keeps the trailing dot and odd text',
      input: { text: '229 Extended Passive Mode Entered (|||50000|). Have fun', port: 1 },
      expected: '229 Extended Passive Mode Entered (|||1|). Have fun',
    },
    {
      title: 'a shorter port to a longer one',
      input: { text: '229 x (###1#) y', port: 65535 },
      expected: '229 x (###65535#) y',
    },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      const rewritten = rewriteEpsvReply(input.text, input.port);
      assert.equal(rewritten, expected);
      assert.deepEqual(valueOf(parseEpsvReply(rewritten)), { host: null, port: input.port });
    });
  }

  it('throws on a reply without (|||port|)', () => {
    assert.throws(() => rewriteEpsvReply('229 Entering Extended Passive Mode', 40000), RangeError);
  });
});

describe('parsePortArgument', () => {
  const cases: Array<{ title: string; input: string; expected: ActiveTarget | null }> = [
    { title: 'six numbers', input: '127,0,0,1,4,51', expected: { family: 4, host: '127.0.0.1', port: 1075 } },
    { title: 'the highest port', input: '192,168,1,20,255,255', expected: { family: 4, host: '192.168.1.20', port: 65535 } },
    { title: 'the lowest port', input: '10,0,0,1,0,1', expected: { family: 4, host: '10.0.0.1', port: 1 } },
    { title: 'leading zeros within three digits', input: '127,000,000,001,004,051', expected: { family: 4, host: '127.0.0.1', port: 1075 } },
    { title: 'surrounding spaces are trimmed', input: ' 127,0,0,1,4,51 ', expected: { family: 4, host: '127.0.0.1', port: 1075 } },
    { title: 'spaces after the commas', input: '127, 0, 0, 1, 4, 51', expected: null },
    { title: 'a space before a comma', input: '127 ,0,0,1,4,51', expected: null },
    { title: 'a four-digit number', input: '127,0,0,1,0004,51', expected: null },
    { title: 'a four-digit first number', input: '0127,0,0,1,4,51', expected: null },
    { title: 'an address number above 255', input: '127,0,0,256,4,51', expected: null },
    { title: 'a port number above 255 is not folded into a small port', input: '127,0,0,1,256,22', expected: null },
    { title: 'five numbers', input: '127,0,0,1,4', expected: null },
    { title: 'seven numbers', input: '127,0,0,1,4,51,1', expected: null },
    { title: 'a trailing comma', input: '127,0,0,1,4,51,', expected: null },
    { title: 'a leading comma', input: ',127,0,0,1,4,51', expected: null },
    { title: 'two commas in a row', input: '127,0,0,,1,4,51', expected: null },
    { title: 'port 0', input: '127,0,0,1,0,0', expected: null },
    { title: 'a dotted address', input: '127.0.0.1,4,51', expected: null },
    { title: 'text after the numbers', input: '127,0,0,1,4,51 x', expected: null },
    { title: 'parentheses', input: '(127,0,0,1,4,51)', expected: null },
    { title: 'a sign', input: '+127,0,0,1,4,51', expected: null },
    { title: 'a negative number', input: '127,0,0,1,-4,51', expected: null },
    { title: 'hexadecimal', input: '0x7f,0,0,1,4,51', expected: null },
    { title: 'empty', input: '', expected: null },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.deepEqual(valueOf(parsePortArgument(input)), expected);
    });
  }
});

describe('parseEprtArgument', () => {
  const cases: Array<{ title: string; input: string; expected: ActiveTarget | null }> = [
    { title: 'IPv4', input: '|1|127.0.0.1|40000|', expected: { family: 4, host: '127.0.0.1', port: 40000 } },
    { title: 'IPv6 loopback', input: '|2|::1|40000|', expected: { family: 6, host: '::1', port: 40000 } },
    { title: 'IPv6 full', input: '|2|2001:db8::7|5282|', expected: { family: 6, host: '2001:db8::7', port: 5282 } },
    { title: 'IPv4-mapped IPv6', input: '|2|::ffff:127.0.0.1|40000|', expected: { family: 6, host: '::ffff:127.0.0.1', port: 40000 } },
    { title: 'a `!` delimiter', input: '!1!127.0.0.1!40000!', expected: { family: 4, host: '127.0.0.1', port: 40000 } },
    { title: 'a `#` delimiter with IPv6', input: '#2#::1#40000#', expected: { family: 6, host: '::1', port: 40000 } },
    { title: 'surrounding spaces are trimmed', input: ' |1|127.0.0.1|40000| ', expected: { family: 4, host: '127.0.0.1', port: 40000 } },
    { title: 'port 1', input: '|1|10.0.0.1|1|', expected: { family: 4, host: '10.0.0.1', port: 1 } },
    { title: 'port 65535', input: '|1|10.0.0.1|65535|', expected: { family: 4, host: '10.0.0.1', port: 65535 } },
    { title: 'address family 3', input: '|3|127.0.0.1|40000|', expected: null },
    { title: 'address family 0', input: '|0|127.0.0.1|40000|', expected: null },
    { title: 'address family 01', input: '|01|127.0.0.1|40000|', expected: null },
    { title: 'no address family', input: '||127.0.0.1|40000|', expected: null },
    { title: 'an IPv6 address with family 1', input: '|1|::1|40000|', expected: null },
    { title: 'an IPv4 address with family 2', input: '|2|127.0.0.1|40000|', expected: null },
    { title: 'an address number above 255', input: '|1|127.0.0.256|40000|', expected: null },
    { title: 'a three-part IPv4 address', input: '|1|127.0.1|40000|', expected: null },
    { title: 'a host name', input: '|1|localhost|40000|', expected: null },
    { title: 'an empty address', input: '|1||40000|', expected: null },
    { title: 'port 0', input: '|1|127.0.0.1|0|', expected: null },
    { title: 'port 65536', input: '|1|127.0.0.1|65536|', expected: null },
    { title: 'six digits', input: '|1|127.0.0.1|123456|', expected: null },
    { title: 'an empty port', input: '|1|127.0.0.1||', expected: null },
    { title: 'a port with a letter', input: '|1|127.0.0.1|4000a|', expected: null },
    { title: 'a negative port', input: '|1|127.0.0.1|-1|', expected: null },
    { title: 'a space in the port', input: '|1|127.0.0.1| 4000|', expected: null },
    { title: 'no trailing delimiter', input: '|1|127.0.0.1|40000', expected: null },
    { title: 'an extra field', input: '|1|127.0.0.1|40000|x|', expected: null },
    { title: 'text after the last delimiter', input: '|1|127.0.0.1|40000|x', expected: null },
    { title: 'mixed delimiters', input: '|1!127.0.0.1|40000|', expected: null },
    { title: 'a digit as delimiter', input: '1112711.0.0.1140000 1', expected: null },
    { title: 'the delimiter appears in an IPv6 address', input: ':2:::1:40000:', expected: null },
    { title: 'the delimiter appears in an IPv4 address', input: '.1.127.0.0.1.40000.', expected: null },
    { title: 'empty', input: '', expected: null },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      assert.deepEqual(valueOf(parseEprtArgument(input)), expected);
    });
  }
});

describe('format functions', () => {
  const cases: Array<{ title: string; input: { host: string; port: number }; expected: { port: string | null; eprt: string } }> = [
    { title: 'IPv4', input: { host: '127.0.0.1', port: 40000 }, expected: { port: '127,0,0,1,156,64', eprt: '|1|127.0.0.1|40000|' } },
    { title: 'IPv4 low port', input: { host: '10.0.0.1', port: 1 }, expected: { port: '10,0,0,1,0,1', eprt: '|1|10.0.0.1|1|' } },
    { title: 'IPv4 high port', input: { host: '192.168.255.0', port: 65535 }, expected: { port: '192,168,255,0,255,255', eprt: '|1|192.168.255.0|65535|' } },
    { title: 'port 256', input: { host: '127.0.0.1', port: 256 }, expected: { port: '127,0,0,1,1,0', eprt: '|1|127.0.0.1|256|' } },
    { title: 'IPv6', input: { host: '::1', port: 40000 }, expected: { port: null, eprt: '|2|::1|40000|' } },
  ];
  for (const { title, input, expected } of cases) {
    it(title, () => {
      if (expected.port === null) {
        assert.throws(() => formatPortArgument(input.host, input.port), RangeError);
      } else {
        assert.equal(formatPortArgument(input.host, input.port), expected.port);
        assert.deepEqual(valueOf(parsePortArgument(expected.port)), { family: 4, ...input });
      }
      assert.equal(formatEprtArgument(input.host, input.port), expected.eprt);
      assert.deepEqual(valueOf(parseEprtArgument(expected.eprt)), { family: expected.port === null ? 6 : 4, ...input });
    });
  }

  const port = fc.integer({ min: 1, max: 65535 });

  it('PORT and EPRT round-trip any IPv4 address and port', () => {
    fc.assert(
      fc.property(fc.ipV4(), port, (host, p) => {
        assert.deepEqual(valueOf(parsePortArgument(formatPortArgument(host, p))), { family: 4, host, port: p });
        assert.deepEqual(valueOf(parseEprtArgument(formatEprtArgument(host, p))), { family: 4, host, port: p });
      }),
    );
  });

  it('EPRT round-trips any IPv6 address and port', () => {
    fc.assert(
      fc.property(fc.ipV6(), port, (host, p) => {
        assert.deepEqual(valueOf(parseEprtArgument(formatEprtArgument(host, p))), { family: 6, host, port: p });
      }),
    );
  });

  it('a rewritten 227 parses back to the new address and keeps the rest', () => {
    fc.assert(
      fc.property(fc.ipV4(), port, fc.ipV4(), port, fc.constantFrom('(', '', '=', ' '), fc.constantFrom(')', ').', '', ' ok'), (from, fromPort, to, toPort, before, after) => {
        const original = `227 Entering Passive Mode ${before}${formatPortArgument(from, fromPort)}${after}`;
        const rewritten = rewritePasvReply(original, to, toPort);
        assert.deepEqual(valueOf(parsePasvReply(rewritten)), { host: to, port: toPort });
        assert.equal(rewritten, `227 Entering Passive Mode ${before}${formatPortArgument(to, toPort)}${after}`);
      }),
    );
  });

  it('a rewritten 229 parses back to the new port and keeps the delimiter', () => {
    const delimiter = fc.integer({ min: 33, max: 126 }).filter((code) => code < 0x30 || code > 0x39).map((code) => String.fromCharCode(code));
    fc.assert(
      fc.property(delimiter, port, port, (d, fromPort, toPort) => {
        const original = `229 Entering Extended Passive Mode (${d}${d}${d}${fromPort}${d})`;
        assert.deepEqual(valueOf(parseEpsvReply(original)), { host: null, port: fromPort });
        const rewritten = rewriteEpsvReply(original, toPort);
        assert.equal(rewritten, `229 Entering Extended Passive Mode (${d}${d}${d}${toPort}${d})`);
      }),
    );
  });
});
