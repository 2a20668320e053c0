import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findSocketOwner, type Endpoint } from '../../src/net/procNetTcp.js';

const TCP = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 0100007F:0850 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11 1 0000000000000000 100 0 0 10 0',
  // 127.0.0.1:40000 -> 127.0.0.1:2128, owned by 1001; its port also appears as the remote port of the next line.
  '   1: 0100007F:9C40 0100007F:0850 01 00000000:00000000 00:00000000 00000000  1001        0 12 1 0000000000000000 20 4 30 10 -1',
  '   2: 0100007F:0850 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 13 1 0000000000000000 20 4 30 10 -1',
  // 10.1.2.3:4660 -> 10.1.2.4:80, owned by 33.
  '   3: 0302010A:1234 0402010A:0050 01 00000000:00000000 00:00000000 00000000    33        0 14 1 0000000000000000 20 4 30 10 -1',
  '',
].join('\n');

const TCP6 = [
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  // [::1]:41000 -> [::1]:2121, owned by 1002.
  '   0: 00000000000000000000000001000000:A028 00000000000000000000000001000000:0849 01 00000000:00000000 00:00000000 00000000  1002        0 21 1 0000000000000000 20 4 30 10 -1',
  // ::ffff:127.0.0.1:42000 -> ::ffff:127.0.0.1:2121 on a dual-stack socket, owned by 1003.
  '   1: 0000000000000000FFFF00000100007F:A410 0000000000000000FFFF00000100007F:0849 01 00000000:00000000 00:00000000 00000000  1003        0 22 1 0000000000000000 20 4 30 10 -1',
  '',
].join('\n');

const at = (address: string, port: number): Endpoint => ({ address, port });

describe('findSocketOwner', () => {
  const cases: Array<{ title: string; table: string; local: Endpoint; remote: Endpoint; expected: number | null }> = [
    { title: 'an IPv4 socket', table: TCP, local: at('127.0.0.1', 40000), remote: at('127.0.0.1', 2128), expected: 1001 },
    { title: 'the other end of the same connection', table: TCP, local: at('127.0.0.1', 2128), remote: at('127.0.0.1', 40000), expected: 0 },
    { title: 'a port that is only a remote port elsewhere', table: TCP, local: at('127.0.0.1', 40000), remote: at('127.0.0.1', 9), expected: null },
    { title: 'a non-loopback socket', table: TCP, local: at('10.1.2.3', 4660), remote: at('10.1.2.4', 80), expected: 33 },
    { title: 'the right port on another address', table: TCP, local: at('10.9.9.9', 4660), remote: at('10.1.2.4', 80), expected: null },
    { title: 'a socket that is not listed', table: TCP, local: at('127.0.0.1', 1), remote: at('127.0.0.1', 2), expected: null },
    { title: 'an IPv6 loopback socket', table: TCP6, local: at('::1', 41000), remote: at('::1', 2121), expected: 1002 },
    { title: 'an IPv4-mapped socket, asked for by its IPv4 address', table: TCP6, local: at('127.0.0.1', 42000), remote: at('127.0.0.1', 2121), expected: 1003 },
    { title: 'an IPv4-mapped socket, asked for as Node names it', table: TCP6, local: at('::ffff:127.0.0.1', 42000), remote: at('::ffff:127.0.0.1', 2121), expected: 1003 },
    { title: 'an empty table', table: '', local: at('127.0.0.1', 40000), remote: at('127.0.0.1', 2128), expected: null },
  ];
  for (const { title, table, local, remote, expected } of cases) {
    it(title, () => assert.equal(findSocketOwner(table, local, remote), expected));
  }

  it('finds a socket among thousands without decoding every line', () => {
    const hex = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');
    const lines = [TCP.split('\n')[0]!];
    for (let i = 0; i < 5000; i++) {
      lines.push(`${String(i).padStart(4)}: 0100007F:${hex(20000 + i)} 0100007F:${hex(50000 + i)} 01 00000000:00000000 00:00000000 00000000  ${1000 + i}        0 ${i} 1 0000000000000000 20 4 30 10 -1`);
    }
    const table = `${lines.join('\n')}\n`;
    assert.equal(findSocketOwner(table, at('127.0.0.1', 24999), at('127.0.0.1', 54999)), 5999);
    const startedAt = performance.now();
    for (let round = 0; round < 100; round++) findSocketOwner(table, at('127.0.0.1', 24999), at('127.0.0.1', 54999));
    // Decoding every line took about 4 ms a lookup on the test machine; a plain search takes a few hundredths.
    assert.ok((performance.now() - startedAt) / 100 < 1, 'a lookup in a 5,000-line table took over 1 ms');
  });
});
