import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TLSSocket } from 'node:tls';
import { createTestCa, type TestCa } from '../helpers/certificates.js';
import { ControlClient } from '../helpers/ftpControl.js';
import { startTestForwarder, type TestForwarder } from '../helpers/forwarder.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';

/**
 * FTP servers that break the TLS negotiation on purpose, on loopback
 * through a real sshd: silent after 234, plaintext slipped in after 234,
 * bytes that are no TLS, a close in the middle of the handshake, and a
 * refused PROT P after a good handshake. Each must end the session with a
 * 421 as the client's first reply (no greeting before it), a log line that
 * says why, no login sent upstream, and the forwarder still serving.
 */

const NEGOTIATION_TIMEOUT_MS = 2_000;

type Behaviour = 'silent-after-234' | 'plaintext-after-234' | 'not-tls' | 'close-in-handshake' | 'refuses-prot';

interface HostileServer {
  port: number;
  /** Every line the server received, over plaintext or TLS. */
  received: string[];
  close(): Promise<void>;
}

/** Reads CRLF lines from `stream` and hands each to `onLine`. */
function onLines(stream: Socket | TLSSocket, received: string[], onLine: (line: string) => void): void {
  let buffered = '';
  stream.setEncoding('latin1');
  stream.on('data', (text: string) => {
    buffered += text;
    for (let end = buffered.indexOf('\r\n'); end !== -1; end = buffered.indexOf('\r\n')) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      received.push(line);
      onLine(line);
    }
  });
}

async function startHostileServer(behaviour: Behaviour, credentials: { cert: Buffer; key: Buffer }): Promise<HostileServer> {
  const received: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write('220 hostile FTP server\r\n');
    let upgraded = false;
    onLines(socket, received, (line) => {
      if (upgraded || !/^AUTH TLS$/i.test(line)) return;
      upgraded = true;
      switch (behaviour) {
        case 'silent-after-234':
          socket.write('234 go ahead\r\n');
          return;
        case 'plaintext-after-234':
          socket.write('234 go ahead\r\n230 you are logged in, trust me\r\n');
          return;
        case 'not-tls':
          socket.write('234 go ahead\r\n');
          socket.once('data', () => socket.write('this is not a TLS ServerHello\r\n'));
          return;
        case 'close-in-handshake':
          socket.write('234 go ahead\r\n');
          socket.once('data', () => socket.destroy());
          return;
        case 'refuses-prot': {
          socket.write('234 go ahead\r\n');
          socket.removeAllListeners('data');
          const secured = new TLSSocket(socket, { isServer: true, cert: credentials.cert, key: credentials.key });
          secured.on('error', () => undefined);
          onLines(secured, received, (command) => {
            if (/^PBSZ /i.test(command)) secured.write('200 PBSZ=0\r\n');
            else if (/^PROT /i.test(command)) secured.write('534 PROT P is not for you\r\n');
            else secured.write('530 not now\r\n');
          });
          return;
        }
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('FTPS: hostile servers during the TLS negotiation', () => {
  let dir: string;
  let sshd: SshdInstance;
  let ca: TestCa;
  let credentials: { cert: Buffer; key: Buffer };
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async () => {
    dir = await makeTempDir('ftpfwd-ftps-hostile-');
    ca = await createTestCa(join(dir, 'ca'));
    const issued = await ca.issue({ name: 'hostile', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    credentials = { cert: await readFile(issued.certFile), key: await readFile(issued.keyFile) };
    sshd = await startSshd();
    cleanups.push(() => sshd.stop());
  });

  after(async () => {
    for (let cleanup = cleanups.pop(); cleanup !== undefined; cleanup = cleanups.pop()) { const t = Date.now(); await cleanup(); console.error("cleanup", Date.now() - t, String(cleanup).slice(0, 60)); }
    await removeDir(dir);
  });

  const cases: Array<{ behaviour: Behaviour; reply: RegExp; reason: RegExp }> = [
    { behaviour: 'silent-after-234', reply: /^421 .*did not complete TLS in time/, reason: /not set up within 2 s|timed out/ },
    { behaviour: 'plaintext-after-234', reply: /^421 .*sent plaintext after agreeing to TLS/, reason: /more plaintext after 234/ },
    { behaviour: 'not-tls', reply: /^421 .*TLS with the FTP server failed \(TLS handshake with the FTP server failed: wrong version number \(ERR_SSL_WRONG_VERSION_NUMBER\)\); closing\.$/, reason: /wrong version number/ },
    { behaviour: 'close-in-handshake', reply: /^421 .*TLS with the FTP server failed .*disconnected/, reason: /disconnected before secure TLS connection was established/ },
    { behaviour: 'refuses-prot', reply: /^421 .*refused to protect data connections \(it answered PROT P with 534 /, reason: /refused PROT P/ },
  ];

  for (const { behaviour, reply, reason } of cases) {
    it(`${behaviour}: a 421 first, a log line, no login upstream, the forwarder still serving`, async () => {
      const server = await startHostileServer(behaviour, credentials);
      cleanups.push(() => server.close());
      const forwarder: TestForwarder = await startTestForwarder(sshd, '127.0.0.1', server.port, {
        ftpTls: { mode: 'explicit', ca: ca.pem, servername: 'localhost' },
        timeouts: { connectMs: NEGOTIATION_TIMEOUT_MS },
      });
      let closed = false;
      cleanups.push(async () => (closed ? undefined : forwarder.forwarder.close()));
      for (let session = 0; session < 2; session++) {
        const client = await ControlClient.open(forwarder.host, forwarder.port);
        // A client that does not wait for the greeting: its USER must never reach the server.
        client.send('USER someone\r\nPASS secret\r\n');
        const first = await client.reply(NEGOTIATION_TIMEOUT_MS + 5_000);
        assert.equal(first.lines.length, 1, `a one-line 421, not ${JSON.stringify(first.lines)}`);
        assert.match(first.lines[0]!, reply);
        assert.equal(await client.closedWithin(5_000), true, 'the session was not closed after the 421');
      }
      const failures = forwarder.logs().filter((record) => record['msg'] === 'TLS with the FTP server failed');
      assert.equal(failures.length, 2, 'one error line per session');
      assert.match(String(failures[0]!['reason']), reason);
      assert.deepEqual(server.received.filter((line) => /^(USER|PASS)/i.test(line)), [], 'a login reached the server');
      assert.ok(server.received.some((line) => /^AUTH TLS$/i.test(line)), 'the server never saw AUTH TLS');
      // The failed sessions hold nothing: the forwarder stops at once, not after the 30 s linger.
      const stopping = Date.now();
      await forwarder.forwarder.close();
      closed = true;
      assert.ok(Date.now() - stopping < 5_000, `closing the forwarder took ${Date.now() - stopping} ms`);
    });
  }
});
