import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatHostPort, isLoopbackAddress, isLoopbackHost, isSpecialPurposeAddress } from '../../src/net/addresses.js';
import { findSocketOwner, socketKeys } from '../../src/net/procNetTcp.js';

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

describe('findSocketOwner: /proc/net/tcp{,6} as Linux prints them', () => {
  // Real lines (columns as the kernel writes them): a listener, and both ends of 127.0.0.1:39858 <-> 127.0.0.1:2121.
  const TCP = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:0849 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 24110 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:9BB2 0100007F:0849 01 00000000:00000000 00:00000000 00000000  1000        0 24333 1 0000000000000000 20 4 30 10 -1',
    '   2: 0100007F:0849 0100007F:9BB2 01 00000000:00000000 00:00000000 00000000     0        0 24334 1 0000000000000000 20 4 31 10 -1',
  ].join('\n');
  const TCP6 = [
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000000000000000000001000000:A3C2 00000000000000000000000001000000:0849 01 00000000:00000000 00:00000000 00000000  1001        0 25001 1 0000000000000000 20 4 30 10 -1',
    '   1: 0000000000000000FFFF00000100007F:B001 0000000000000000FFFF00000100007F:0849 01 00000000:00000000 00:00000000 00000000  1002        0 25002 1 0000000000000000 20 4 30 10 -1',
  ].join('\n');

  const cases: Array<{ title: string; table: string; local: [string, number]; remote: [string, number]; expected: number | null }> = [
    { title: "the client's end of an IPv4 loopback connection", table: TCP, local: ['127.0.0.1', 0x9bb2], remote: ['127.0.0.1', 0x0849], expected: 1000 },
    { title: "the server's end, the other way round", table: TCP, local: ['127.0.0.1', 0x0849], remote: ['127.0.0.1', 0x9bb2], expected: 0 },
    { title: 'an IPv6 loopback connection', table: TCP6, local: ['::1', 0xa3c2], remote: ['::1', 0x0849], expected: 1001 },
    { title: 'an IPv4 end of a dual-stack socket, written IPv4-mapped', table: TCP6, local: ['127.0.0.1', 0xb001], remote: ['::ffff:127.0.0.1', 0x0849], expected: 1002 },
    { title: 'no such socket (closed already)', table: TCP, local: ['127.0.0.1', 1234], remote: ['127.0.0.1', 0x0849], expected: null },
    { title: 'the right port, the wrong peer', table: TCP, local: ['127.0.0.1', 0x9bb2], remote: ['127.0.0.1', 0x0850], expected: null },
    { title: 'a header and nothing else', table: TCP.split('\n')[0]!, local: ['127.0.0.1', 0x9bb2], remote: ['127.0.0.1', 0x0849], expected: null },
  ];
  for (const { title, table, local, remote, expected } of cases) {
    it(title, () => {
      const keys = socketKeys({ address: local[0], port: local[1] }, { address: remote[0], port: remote[1] });
      const found = [keys.tcp, keys.tcp6].map((key) => (key === null ? null : findSocketOwner(table, key))).find((uid) => uid !== null) ?? null;
      assert.equal(found, expected);
    });
  }

  it('writes addresses as the kernel does', () => {
    assert.deepEqual(socketKeys({ address: '127.0.0.1', port: 0x9bb2 }, { address: '10.1.2.3', port: 21 }), {
      tcp: ' 0100007F:9BB2 0302010A:0015 ',
      tcp6: ' 0000000000000000FFFF00000100007F:9BB2 0000000000000000FFFF00000302010A:0015 ',
    });
    assert.deepEqual(socketKeys({ address: 'fd00:251:1::1', port: 1 }, { address: '::1', port: 2 }), {
      tcp: null,
      tcp6: ' 510200FD000001000000000001000000:0001 00000000000000000000000001000000:0002 ',
    });
  });
});
