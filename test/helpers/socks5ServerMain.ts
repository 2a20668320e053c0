/**
 * A small SOCKS5 server (RFC 1928: no authentication, CONNECT only, IPv4 and
 * domain names), as its own process so that it can run inside a network
 * namespace, the way a corporate SOCKS proxy sits between a client and the
 * hosts it may reach:
 *
 *   node --import tsx socks5ServerMain.ts HOST PORT
 *
 * Prints "listening HOST PORT" once it listens, and "CONNECT host:port" on
 * stdout for every connection it carries. Stops on SIGTERM.
 */
import { connect, createServer, type Socket } from 'node:net';

const HANDSHAKE_TIMEOUT_MS = 10_000;
const MAX_REQUEST = 262;

function readBytes(socket: Socket, count: number, buffered: { data: Buffer }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (buffered.data.length >= count) {
        socket.removeListener('data', onData);
        const head = buffered.data.subarray(0, count);
        buffered.data = buffered.data.subarray(count);
        resolve(head);
      }
    };
    const onData = (chunk: Buffer): void => {
      buffered.data = Buffer.concat([buffered.data, chunk]);
      if (buffered.data.length > MAX_REQUEST) reject(new Error('request too long'));
      else check();
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed')));
    check();
  });
}

async function serve(client: Socket): Promise<void> {
  client.pause();
  const buffered = { data: Buffer.alloc(0) };
  const read = (count: number): Promise<Buffer> => {
    client.resume();
    return readBytes(client, count, buffered);
  };
  const [version, methods] = await read(2);
  if (version !== 5) throw new Error('not SOCKS5');
  await read(methods!);
  client.write(Buffer.from([5, 0]));
  const [, command, , addressType] = await read(4);
  let host: string;
  if (addressType === 1) host = [...(await read(4))].join('.');
  else if (addressType === 3) host = (await read((await read(1))[0]!)).toString('latin1');
  else throw new Error(`address type ${String(addressType)} not supported`);
  const port = (await read(2)).readUInt16BE(0);
  if (command !== 1) {
    client.end(Buffer.from([5, 7, 0, 1, 0, 0, 0, 0, 0, 0]));
    return;
  }
  client.pause();
  const upstream = connect({ host, port });
  upstream.on('error', () => {
    client.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]));
  });
  upstream.once('connect', () => {
    process.stdout.write(`CONNECT ${host}:${port}\n`);
    client.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
    if (buffered.data.length > 0) upstream.write(buffered.data);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  upstream.once('close', () => client.destroy());
  client.once('close', () => upstream.destroy());
}

const [host, portText] = process.argv.slice(2);
if (host === undefined || portText === undefined) throw new Error('usage: socks5ServerMain.ts HOST PORT');
const server = createServer((client) => {
  client.on('error', () => undefined);
  const timer = setTimeout(() => client.destroy(), HANDSHAKE_TIMEOUT_MS);
  serve(client).then(
    () => clearTimeout(timer),
    () => {
      clearTimeout(timer);
      client.destroy();
    },
  );
});
server.listen(Number(portText), host, () => process.stdout.write(`listening ${host} ${portText}\n`));
process.once('SIGTERM', () => server.close(() => process.exit(0)));
