import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertNoStackTrace, startCli, waitForLog, type RunningCli } from '../helpers/cli.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { ControlClient } from '../helpers/ftpControl.js';
import { isRoot } from '../helpers/netns.js';
import { descendantPids, run } from '../helpers/processes.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { delay, withTimeout } from '../helpers/time.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd, type VsftpdInstance } from '../helpers/vsftpd.js';

/**
 * Hostile and careless peers: a client that floods and never reads, a
 * reader that is slow when the server says goodbye, a client that sends
 * PORT after PORT before logging in, another local user racing for a data
 * connection, a server whose replies stop matching the commands, a 227
 * naming the SSH server's own loopback. Each reproduces a defect that
 * was found in the forwarder (and failed before its fix).
 */

const LARGE = 4 * 1024 * 1024;

function passivePort(line: string): number {
  const numbers = /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(line);
  assert.ok(numbers, `no address in ${line}`);
  return Number(numbers[5]) * 256 + Number(numbers[6]);
}

function connectTo(host: string, port: number): Promise<Socket> {
  return withTimeout(
    new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host, port, allowHalfOpen: true });
      socket.once('connect', () => resolve(socket));
      socket.once('error', reject);
    }),
    10_000,
    `connecting to ${host}:${port}`,
  );
}

/** Everything a socket delivers until it ends, hashed. */
function readAll(socket: Socket, timeoutMs: number): Promise<{ bytes: number; sha256: string; error: Error | null }> {
  const hash = createHash('sha256');
  let bytes = 0;
  let error: Error | null = null;
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    hash.update(chunk);
  });
  socket.on('error', (err) => (error = err));
  // Half-open sockets end without closing: the end of the data is what counts.
  let settled = false;
  return withTimeout(
    new Promise((resolve) => {
      const done = (): void => {
        if (settled) return;
        settled = true;
        resolve({ bytes, sha256: hash.digest('hex'), error });
        socket.destroy();
      };
      socket.once('end', done);
      socket.once('close', done);
    }),
    timeoutMs,
    'the data connection did not end',
  );
}

function rssKiB(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((status) => Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
}

async function loggedIn(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<ControlClient> {
  const control = await ControlClient.open('127.0.0.1', port, 10_000, options);
  assert.equal((await control.reply()).code, 220);
  assert.equal((await control.command('USER anonymous')).code, 331);
  assert.equal((await control.command('PASS test@')).code, 230);
  assert.equal((await control.command('TYPE I')).code, 200);
  return control;
}

/**
 * A tiny FTP server whose replies are scripted per test: `reply(command)`
 * returns the lines to send for a command. Its passive data port serves
 * `data` to whoever connects.
 */
interface ScriptedServer {
  port: number;
  dataPort: number;
  /** Connections that reached the data port. */
  dataConnections(): number;
  close(): Promise<void>;
}

async function scriptedServer(host: string, script: (command: string, dataPort: number) => string[], data: string): Promise<ScriptedServer> {
  const sockets = new Set<Socket>();
  let dataConnections = 0;
  const dataServer: Server = createServer((socket) => {
    dataConnections += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.end(data);
  });
  await new Promise<void>((resolve) => dataServer.listen({ host, port: 0 }, () => resolve()));
  const dataPort = (dataServer.address() as AddressInfo).port;
  const control: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.setEncoding('latin1');
    socket.write('220 scripted\r\n');
    let buffered = '';
    socket.on('data', (text: string) => {
      buffered += text;
      for (let end = buffered.indexOf('\r\n'); end !== -1; end = buffered.indexOf('\r\n')) {
        const command = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        for (const line of script(command, dataPort)) socket.write(`${line}\r\n`);
      }
    });
  });
  await new Promise<void>((resolve) => control.listen({ host, port: 0 }, () => resolve()));
  return {
    port: (control.address() as AddressInfo).port,
    dataPort,
    dataConnections: () => dataConnections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all([new Promise((resolve) => control.close(resolve)), new Promise((resolve) => dataServer.close(resolve))]);
    },
  };
}

const six = (host: string, port: number): string => `${host.split('.').join(',')},${port >> 8},${port & 0xff}`;

describe('ftpfwd against hostile and careless peers', { skip: isRoot() ? false : 'needs root (vsftpd, a second local user)' }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let sshd: SshdInstance;
  let vsftpd: VsftpdInstance;
  let largeSum: string;
  const clis = new Set<RunningCli>();

  before(async () => {
    dir = await makeTempDir('ftpfwd-hostile-');
    const home = join(dir, 'home');
    await mkdir(home);
    env = { ...process.env, HOME: home };
    delete env['SSH_AUTH_SOCK'];
    const root = join(dir, 'root');
    await mkdir(root);
    await writeRandomFile(join(root, 'large.bin'), LARGE);
    largeSum = await sha256File(join(root, 'large.bin'));
    sshd = await startSshd();
    vsftpd = await startVsftpd({ root });
  });

  after(async () => {
    for (const cli of clis) await cli.stop();
    await vsftpd?.stop();
    await sshd?.stop();
    if (dir) await removeDir(dir);
  });

  const sshArgs = (): string[] => ['-F', 'none', '-p', String(sshd.port), '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, '-o', 'BatchMode=yes'];

  async function start(ftpHost: string, ftpPort: number, extra: string[] = []): Promise<RunningCli> {
    const cli = await startCli([...sshArgs(), '-L', `127.0.0.1:0:${ftpHost}:${ftpPort}`, '--log-format', 'json', ...extra, `${sshd.user}@${sshd.host}`], { env, cwd: dir });
    clis.add(cli);
    return cli;
  }

  async function stop(cli: RunningCli): Promise<void> {
    assertNoStackTrace(cli.handle.stderr());
    await cli.stop();
    clis.delete(cli);
  }

  it('a client that floods newlines and never reads neither grows the heap nor stalls another session', async (t) => {
    const cli = await start('127.0.0.1', vsftpd.port);
    const [port] = cli.ports;
    const flooder = await connectTo('127.0.0.1', port!);
    flooder.on('error', () => undefined);
    // After the greeting, so that nothing is pending and every empty line is answered at once.
    await new Promise<void>((resolve) => flooder.once('data', () => resolve()));
    flooder.pause();
    // 16 MiB of empty lines in one write: each would be answered with a 500 that is never read.
    const offered = 16 * 1024 * 1024;
    flooder.write(Buffer.alloc(offered, 0x0a));
    const other = await loggedIn(port!);
    await delay(1_000);
    const early = await rssKiB(cli.handle.pid);
    // For four seconds the flood goes on; a forwarder that kept reading it would keep growing.
    let slowest = 0;
    for (let index = 0; index < 40; index += 1) {
      const sentAt = Date.now();
      assert.equal((await other.command('NOOP', 5_000)).code, 200);
      slowest = Math.max(slowest, Date.now() - sentAt);
      await delay(100);
    }
    const late = await rssKiB(cli.handle.pid);
    const pasv = await other.command('PASV');
    const data = await connectTo('127.0.0.1', passivePort(pasv.lines[0]!));
    const received = readAll(data, 30_000);
    assert.equal((await other.command('RETR large.bin')).code, 150);
    const result = await received;
    assert.equal((await other.reply(30_000)).code, 226);
    other.close();
    flooder.destroy();
    t.diagnostic(`flood: slowest NOOP of another session ${slowest} ms; RSS ${early} KiB after 1 s, ${late} KiB after 5 s`);
    assert.equal(result.sha256, largeSum);
    assert.ok(slowest < 1_000, `another session waited ${slowest} ms for a NOOP during the flood`);
    assert.ok(late - early < 4 * 1024, `RSS grew by ${late - early} KiB in four seconds of flood`);
    await stop(cli);
  });

  it('RETR and QUIT pipelined by a slow reader: every byte arrives although the server has closed the session', async () => {
    const cli = await start('127.0.0.1', vsftpd.port);
    const control = await loggedIn(cli.ports[0]!);
    const pasv = await control.command('PASV');
    const data = await connectTo('127.0.0.1', passivePort(pasv.lines[0]!));
    // Not read for now: the server's data piles up in the tunnel and the socket buffers.
    data.pause();
    control.send('RETR large.bin\r\nQUIT\r\n');
    const codes = [(await control.reply(30_000)).code, (await control.reply(30_000)).code, (await control.reply(30_000)).code];
    assert.deepEqual(codes, [150, 226, 221]);
    assert.equal(await control.closedWithin(10_000), true, 'the control connection stayed open after 221');
    await delay(500);
    const result = readAll(data, 30_000);
    data.resume();
    const { bytes, sha256 } = await result;
    assert.equal(bytes, LARGE);
    assert.equal(sha256, largeSum);
    await stop(cli);
  });

  it('a client that half-closes after RETR still gets the 150 and 226 before the session closes', async () => {
    const cli = await start('127.0.0.1', vsftpd.port);
    const control = await loggedIn(cli.ports[0]!, { allowHalfOpen: true });
    const pasv = await control.command('PASV');
    const data = await connectTo('127.0.0.1', passivePort(pasv.lines[0]!));
    const received = readAll(data, 30_000);
    control.send('RETR large.bin\r\n');
    control.endInput();
    assert.equal((await control.reply(30_000)).code, 150);
    assert.equal((await control.reply(30_000)).code, 226);
    assert.equal((await received).sha256, largeSum);
    assert.equal(await control.closedWithin(10_000), true);
    await stop(cli);
  });

  it('PORT after PORT before login never piles up remote forwards on the SSH server', async () => {
    // vsftpd on the SSH host: active mode goes through remote forwards.
    const cli = await start('127.0.0.1', vsftpd.port, ['--active-mode', 'forward']);
    const control = await ControlClient.open('127.0.0.1', cli.ports[0]!);
    assert.equal((await control.reply()).code, 220);
    const sshdListening = async (): Promise<number> => {
      const pids = new Set(descendantPids(sshdPid()).map(String));
      const ss = await run('ss', ['-Hltnp'], { timeoutMs: 10_000 });
      return ss.stdout.split('\n').filter((line) => [...line.matchAll(/pid=(\d+)/g)].some((match) => pids.has(match[1]!))).length;
    };
    const baseline = await sshdListening();
    let most = 0;
    for (let batch = 0; batch < 20; batch += 1) {
      control.send(Array.from({ length: 100 }, (_, index) => `PORT 127,0,0,1,${100 + batch},${index}\r\n`).join(''));
      for (let index = 0; index < 100; index += 1) assert.equal((await control.reply(15_000)).code, 530);
      most = Math.max(most, (await sshdListening()) - baseline);
    }
    control.close();
    assert.ok(most <= 2, `the SSH server held ${most} remote forwards for one unauthenticated client`);
    assert.equal(await waitUntil(async () => (await sshdListening()) === baseline, 10_000), true, 'remote forwards left behind');
    await stop(cli);
  });

  /** The PID of the test's own listening sshd, whose children serve the connections. */
  function sshdPid(): number {
    return Number(readFileSync(join(sshd.dir, 'sshd.pid'), 'utf8').trim());
  }

  it('a passive data connection from another local user is refused; the client still gets its download', async () => {
    const cli = await start('127.0.0.1', vsftpd.port);
    const control = await loggedIn(cli.ports[0]!);
    const dataPort = passivePort((await control.command('PASV')).lines[0]!);
    // User nobody (65534) races for the data connection first.
    const intruder = spawn(
      process.execPath,
      ['-e', `const s=require('net').connect(${dataPort},'127.0.0.1');let n=0;s.on('data',(c)=>n+=c.length);s.on('error',()=>{});s.on('close',()=>{console.log(n);process.exit(0)});setTimeout(()=>{console.log(n);process.exit(0)},8000)`],
      { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'], cwd: '/' },
    );
    let stolen = '';
    intruder.stdout.setEncoding('utf8').on('data', (text: string) => (stolen += text));
    const intruderDone = new Promise<void>((resolve) => intruder.once('exit', () => resolve()));
    await waitForLog(cli.handle, /refused a data connection/, 10_000);
    const data = await connectTo('127.0.0.1', dataPort);
    const received = readAll(data, 30_000);
    assert.equal((await control.command('RETR large.bin')).code, 150);
    assert.equal((await received).sha256, largeSum);
    assert.equal((await control.reply(30_000)).code, 226);
    await intruderDone;
    assert.equal(stolen.trim(), '0', 'the other user read data of the download');
    control.close();
    await stop(cli);
  });

  it('a connection to the active-mode forward that is not from the FTP server is refused', async () => {
    // The FTP server at 127.0.0.2 connects from 127.0.0.2; anyone else on the SSH host connects from 127.0.0.1.
    const local = await startVsftpd({ root: join(dir, 'root'), listenAddress: '127.0.0.2' });
    const opened: Socket[] = [];
    const clientData = createServer((socket) => {
      opened.push(socket);
      void readAll(socket, 30_000).then((result) => clientData.emit('received', result));
    });
    try {
      const cli = await start('127.0.0.2', local.port, ['-v', '--active-mode', 'forward']);
      const control = await loggedIn(cli.ports[0]!);
      await new Promise<void>((resolve) => clientData.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
      const clientPort = (clientData.address() as AddressInfo).port;
      const received = new Promise<{ sha256: string }>((resolve) => clientData.once('received', resolve));
      assert.equal((await control.command(`PORT ${six('127.0.0.1', clientPort)}`)).code, 200);
      const bound = await waitForLog(cli.handle, 'remote forward bound for active mode', 10_000);
      const forwardPort = Number(String(bound['bound']).split(':').pop());
      const intruder = await connectTo('127.0.0.1', forwardPort);
      const stolen = await readAll(intruder, 10_000).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${cli.handle.stderr()}`);
      });
      assert.equal(stolen.bytes, 0);
      await waitForLog(cli.handle, /not from the FTP server/, 10_000);
      assert.equal((await control.command('RETR large.bin', 30_000)).code, 150);
      assert.equal((await received).sha256, largeSum);
      assert.equal((await control.reply(30_000)).code, 226);
      control.close();
      await stop(cli);
    } finally {
      for (const socket of opened) socket.destroy();
      clientData.close();
      await local.stop();
    }
  });

  it('an ABOR answered with one reply does not shift matching: the next multi-line 227 is rewritten whole', async () => {
    const server = await scriptedServer(
      '127.0.0.1',
      (command, dataPort) => {
        if (command.startsWith('USER')) return ['331 ok'];
        if (command.startsWith('PASS')) return ['230 ok'];
        if (command.startsWith('RETR')) return ['150 Opening'];
        // One reply for the aborted RETR and the ABOR together.
        if (command === 'ABOR') return ['226 ABOR successful'];
        if (command === 'PASV') return [`227-Entering Passive Mode (${six('127.0.0.1', dataPort)})`, ` data at ${six('127.0.0.1', dataPort)}`, '227 OK'];
        if (command === 'LIST') return ['150 Here', '226 Done'];
        return ['200 ok'];
      },
      'listing\r\n',
    );
    try {
      const cli = await start('127.0.0.1', server.port);
      const control = await ControlClient.open('127.0.0.1', cli.ports[0]!);
      assert.equal((await control.reply()).code, 220);
      await control.command('USER u');
      await control.command('PASS p');
      assert.equal((await control.command('RETR x')).code, 150);
      assert.equal((await control.command('ABOR')).code, 226);
      const pasv = await control.command('PASV');
      assert.deepEqual([pasv.lines[0]!.slice(0, 4), pasv.lines.at(-1)], ['227-', '227 OK']);
      const ports = pasv.lines.filter((line) => /\d+,\d+,\d+,\d+,\d+,\d+/.test(line)).map(passivePort);
      assert.equal(ports.length, 2);
      assert.ok(ports.every((port) => port === ports[0] && port !== server.dataPort), `the server's data port reached the client: ${pasv.lines.join(' | ')}`);
      const data = await connectTo('127.0.0.1', ports[0]!);
      const listing = readAll(data, 10_000);
      assert.equal((await control.command('LIST')).code, 150);
      assert.equal((await listing).bytes, 'listing\r\n'.length);
      control.close();
      await stop(cli);
    } finally {
      await server.close();
    }
  });

  it('a multi-line 227 answering a converted PORT becomes one 200 line', async () => {
    const server = await scriptedServer(
      '127.0.0.1',
      (command, dataPort) => {
        if (command === 'PASV') return [`227-Entering Passive Mode (${six('127.0.0.1', dataPort)})`, '227 OK'];
        return ['200 ok'];
      },
      '',
    );
    try {
      const cli = await start('127.0.0.1', server.port, ['--active-mode', 'convert']);
      const control = await ControlClient.open('127.0.0.1', cli.ports[0]!);
      assert.equal((await control.reply()).code, 220);
      const reply = await control.command('PORT 127,0,0,1,200,1');
      assert.deepEqual(reply.lines, ['200 PORT command successful.']);
      assert.equal((await control.command('NOOP')).code, 200);
      control.close();
      await stop(cli);
    } finally {
      await server.close();
    }
  });

  it("--honour-passive-address never sends the SSH server to its own loopback: it falls back to the FTP host", async () => {
    // The FTP server at 127.0.0.2 names 127.0.0.1 in its 227, where a decoy listens on the same port.
    const server = await scriptedServer('127.0.0.2', (command, dataPort) => (command === 'PASV' ? [`227 Entering Passive Mode (${six('127.0.0.1', dataPort)})`] : command === 'LIST' ? ['150 Here', '226 Done'] : ['200 ok']), 'real\r\n');
    let decoyConnections = 0;
    const decoy = createServer((socket) => {
      decoyConnections += 1;
      socket.end('decoy\r\n');
    });
    await new Promise<void>((resolve, reject) => {
      decoy.once('error', reject);
      decoy.listen({ host: '127.0.0.1', port: server.dataPort }, () => resolve());
    });
    try {
      const cli = await start('127.0.0.2', server.port, ['--honour-passive-address']);
      const control = await ControlClient.open('127.0.0.1', cli.ports[0]!);
      assert.equal((await control.reply()).code, 220);
      const data = await connectTo('127.0.0.1', passivePort((await control.command('PASV')).lines[0]!));
      const listing = readAll(data, 10_000);
      assert.equal((await control.command('LIST')).code, 150);
      assert.equal((await listing).bytes, 'real\r\n'.length);
      assert.equal(decoyConnections, 0);
      assert.equal(server.dataConnections(), 1);
      await waitForLog(cli.handle, /special-purpose address/, 5_000);
      control.close();
      await stop(cli);
    } finally {
      decoy.close();
      await server.close();
    }
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 1_000; attempt += 1) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await delay(100);
  }
  return false;
}
