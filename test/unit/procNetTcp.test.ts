import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { peerOwner, sockDiagAvailable } from '../../src/session/socketOwner.js';
import { findSocketOwner as findByKey, socketKeys, type Endpoint } from '../../src/net/procNetTcp.js';

/** The owner of the socket with these ends, in either spelling the tables use. */
function findSocketOwner(table: string, local: Endpoint, remote: Endpoint): number | null {
  const keys = socketKeys(local, remote);
  return (keys.tcp === null ? null : findByKey(table, keys.tcp)) ?? findByKey(table, keys.tcp6);
}

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

  it('finds a socket among thousands of lines, and only on its own line', () => {
    const hex = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');
    const lines = [TCP.split('\n')[0]!];
    for (let i = 0; i < 5000; i++) {
      lines.push(`${String(i).padStart(4)}: 0100007F:${hex(20000 + i)} 0100007F:${hex(50000 + i)} 01 00000000:00000000 00:00000000 00000000  ${1000 + i}        0 ${i} 1 0000000000000000 20 4 30 10 -1`);
    }
    const table = `${lines.join('\n')}\n`;
    assert.equal(findSocketOwner(table, at('127.0.0.1', 24999), at('127.0.0.1', 54999)), 5999);
    assert.equal(findSocketOwner(table, at('127.0.0.1', 24999), at('127.0.0.1', 54998)), null);
  });
});

describe('socketKeys', () => {
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

describe('peerOwner on this machine', () => {
  /** A loopback connection in this process: the server's end, whose peer this process owns. */
  async function loopbackPair(host: string): Promise<{ accepted: Socket; close(): void }> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const client = connect((server.address() as AddressInfo).port, host);
    const socket = await accepted;
    return { accepted: socket, close: () => (client.destroy(), socket.destroy(), server.close()) };
  }

  for (const host of ['127.0.0.1', '::1']) {
    for (const useSockDiag of [true, false]) {
      it(`finds our own UID for a peer on ${host} ${useSockDiag ? 'through sock_diag' : 'in /proc/net/tcp'}`, { skip: process.platform !== 'linux' || (useSockDiag && !sockDiagAvailable()) ? 'needs Linux (and the ftpfwd-sockdiag addon)' : false }, async () => {
        const pair = await loopbackPair(host);
        try {
          assert.equal(await peerOwner(pair.accepted, { useSockDiag }), process.getuid?.());
        } finally {
          pair.close();
        }
      });
    }
  }
});
