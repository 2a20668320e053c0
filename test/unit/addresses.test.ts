import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatHostPort, isLoopbackAddress, isLoopbackHost, isSpecialPurposeAddress } from '../../src/net/addresses.js';

describe('isSpecialPurposeAddress: addresses a 227 must never send the SSH server to', () => {
  const cases: Array<{ input: string; expected: boolean }> = [
    { input: '0.0.0.0', expected: true },
    { input: '0.1.2.3', expected: true },
    { input: '127.0.0.1', expected: true },
    { input: '127.5.6.7', expected: true },
    { input: '169.254.169.254', expected: true },
    { input: '224.0.0.1', expected: true },
    { input: '239.255.255.250', expected: true },
    { input: '255.255.255.255', expected: true },
    { input: '::ffff:127.0.0.1', expected: true },
    { input: '::', expected: true },
    { input: '::1', expected: true },
    { input: 'fe80::1', expected: true },
    { input: 'ff02::1', expected: true },
    { input: 'not an address', expected: true },
    { input: '10.0.0.5', expected: false },
    { input: '192.0.2.7', expected: false },
    { input: '203.0.113.9', expected: false },
    { input: '::ffff:10.0.0.5', expected: false },
    { input: 'fd00:251:2::2', expected: false },
    { input: '2001:db8::1', expected: false },
  ];
  for (const { input, expected } of cases) {
    it(`${input}: ${expected ? 'refused' : 'usable'}`, () => assert.equal(isSpecialPurposeAddress(input), expected));
  }
});

describe('loopback and host:port helpers', () => {
  it('isLoopbackAddress', () => {
    assert.deepEqual(['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', '10.0.0.1', '::2'].map(isLoopbackAddress), [true, true, true, true, false, false]);
  });
  it('isLoopbackHost', () => {
    assert.deepEqual(['localhost', 'LOCALHOST', '127.0.0.2', '::1', 'ftp.internal', '10.0.0.1'].map(isLoopbackHost), [true, true, true, true, false, false]);
  });
  it('formatHostPort brackets IPv6', () => {
    assert.deepEqual([formatHostPort('10.0.0.1', 21), formatHostPort('::1', 2121), formatHostPort('ftp.internal', 21)], ['10.0.0.1:21', '[::1]:2121', 'ftp.internal:21']);
  });
});
