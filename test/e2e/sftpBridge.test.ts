import assert from 'node:assert/strict';
import { chown, lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { ControlClient, type Reply } from '../helpers/ftpControl.js';
import { lftpSession } from '../helpers/ftpSessions.js';
import { isRoot } from '../helpers/netns.js';
import { descendantPids, run } from '../helpers/processes.js';
import { secretFile, startBridgeCli, startBridgeServer, type BridgeServer, type RunningBridge } from '../helpers/sftpBridgeFixture.js';
import { delay, withTimeout } from '../helpers/time.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';

/**
 * The SFTP bridge's behaviour with real parts (the CLI, OpenSSH sshd with
 * internal-sftp, system accounts), driven over bare control connections
 * where exact replies matter: logins, confinement to --sftp-root, TYPE A
 * on the wire, ABOR, hostile input, lftp mirror both ways, and the SSH
 * connection killed under transfers.
 */

const CLI = fileURLToPath(new URL('../../bin/ftpfwd', import.meta.url));
const MiB = 1024 * 1024;
const TREE_FILES = 500;
const LF_TEXT = 'one\ntwo\n\nthree\n';

/** A passive data connection for `control`, set up with EPSV. */
async function openData(control: ControlClient): Promise<Socket> {
  const reply = await control.command('EPSV');
  assert.equal(reply.code, 229, reply.lines.join('\n'));
  const port = Number(/\|\|\|(\d+)\|/.exec(reply.lines[0]!)?.[1]);
  return connectTo(port);
}

function connectTo(port: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Everything the server sends on a data connection until it closes it. */
function readAll(socket: Socket, timeoutMs = 20_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return withTimeout(
    new Promise<Buffer>((resolve) => {
      socket.on('error', () => resolve(Buffer.concat(chunks)));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    }),
    timeoutMs,
    'the data connection did not close',
  );
}

/** Reads until at least `bytes` have come, then stops reading (the sender's window fills up). */
function readSome(socket: Socket, bytes: number, timeoutMs = 20_000): Promise<number> {
  return withTimeout(
    new Promise<number>((resolve) => {
      let got = 0;
      socket.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got >= bytes) {
          socket.pause();
          resolve(got);
        }
      });
    }),
    timeoutMs,
    `fewer than ${bytes} bytes arrived`,
  );
}

function sendAll(socket: Socket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.end(data, () => resolve());
  });
}

async function login(bridge: RunningBridge, user: string, password: string): Promise<ControlClient> {
  const control = await ControlClient.open(bridge.host, bridge.port);
  assert.equal((await control.reply()).code, 220);
  assert.equal((await control.command(`USER ${user}`)).code, 331);
  const reply = await control.command(`PASS ${password}`);
  assert.equal(reply.code, 230, reply.lines.join('\n'));
  return control;
}

function codes(replies: readonly Reply[]): number[] {
  return replies.map((reply) => reply.code);
}

describe('SFTP bridge behaviour through real OpenSSH', { skip: isRoot() ? false : 'needs root: creates system accounts and a chroot for sshd' }, () => {
  let server: BridgeServer;
  let data: string;
  let bridge: RunningBridge;
  let sshLogin: RunningBridge;
  let scratch: string;
  let bigSum: string;
  const password = `ftp-${Math.random().toString(36).slice(2)}`;

  before(async () => {
    server = await startBridgeServer('bridge');
    const { ordinary } = server;
    data = join(ordinary.home, 'data');
    await mkdir(data);
    await chown(data, ordinary.uid, ordinary.gid);
    await writeRandomFile(join(data, 'big.bin'), 64 * MiB);
    bigSum = await sha256File(join(data, 'big.bin'));
    await writeFile(join(data, 'lf.txt'), LF_TEXT);
    await writeFile(join(ordinary.home, 'secret.txt'), 'outside the root\n', { mode: 0o600 });
    await chown(join(ordinary.home, 'secret.txt'), ordinary.uid, ordinary.gid);
    await symlink('/etc', join(data, 'escape'));
    await symlink('../secret.txt', join(data, 'outside.txt'));
    const tree = join(data, 'tree');
    for (const sub of ['a', 'b', 'c', 'd', 'e']) await mkdir(join(tree, sub), { recursive: true });
    await Promise.all(Array.from({ length: TREE_FILES }, (_unused, index) => writeRandomFile(join(tree, 'abcde'[index % 5]!, `file ${index}.bin`), 1024 + ((index * 37) % 15) * 1024)));
    await run('chown', ['-R', `${ordinary.uid}:${ordinary.gid}`, tree], { timeoutMs: 10_000 });
    scratch = await makeTempDir('ftpfwd-bridge-scratch-');
    const secret = await secretFile(server.dir, password);
    bridge = await startBridgeCli(server, ordinary.name, ['--ftp-password-file', secret, '--ftp-user', 'ftpuser', '--sftp-root', 'data', '--sftp-atomic-uploads']);
    sshLogin = await startBridgeCli(server, ordinary.name, ['--ftp-auth', 'ssh', '--sftp-root', 'data']);
  }, { timeout: 120_000 });

  after(async () => {
    await bridge?.stop();
    await sshLogin?.stop();
    await server?.stop();
    if (scratch) await removeDir(scratch);
  });

  it('refuses to start a bridge without a credential, or with a root that is not there', async () => {
    const { sshd } = server;
    const noLogin = await run('node', [CLI, '-L', '0:sftp:', '-F', 'none', '-p', String(sshd.port), 'nobody@127.0.0.1'], { timeoutMs: 20_000 });
    assert.equal(noLogin.code, 2, noLogin.stderr);
    assert.match(noLogin.stderr, /^ftpfwd: an SFTP bridge listener must not serve files without a login[^\n]*\n$/);
    const secret = await secretFile(server.dir, password);
    const badRoot = await run(
      'node',
      [CLI, '-L', '0:sftp:', '-F', 'none', '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, '-o', 'BatchMode=yes', '-p', String(sshd.port), '--ftp-password-file', secret, '--sftp-root', 'no/such/dir', `${server.ordinary.name}@127.0.0.1`],
      { timeoutMs: 20_000 },
    );
    assert.equal(badRoot.code, 3, badRoot.stderr);
    assert.match(badRoot.stderr, /^ftpfwd: --sftp-root no\/such\/dir: [^\n]* on the SSH server\n$/);
  });

  it('a wrong password gets 530 after a delay, with either kind of login; the right one works', async () => {
    const attempt = async (target: RunningBridge, user: string, wrong: string): Promise<number> => {
      const control = await ControlClient.open(target.host, target.port);
      try {
        await control.reply();
        await control.command(`USER ${user}`);
        const startedAt = Date.now();
        const reply = await control.command(`PASS ${wrong}`, 15_000);
        assert.equal(reply.code, 530, reply.lines.join('\n'));
        return Date.now() - startedAt;
      } finally {
        control.close();
      }
    };
    const [accountDelay, sshDelay] = await Promise.all([attempt(bridge, 'ftpuser', 'not-the-password'), attempt(sshLogin, server.ordinary.name, 'not-the-password')]);
    assert.ok(accountDelay >= 900, `530 after ${accountDelay} ms`);
    assert.ok(sshDelay >= 900, `530 after ${sshDelay} ms`);
    assert.match(server.sshd.log(), new RegExp(`Failed password for ${server.ordinary.name} from 127\\.0\\.0\\.1`));
    const wrongUser = await attempt(bridge, 'root', password);
    assert.ok(wrongUser >= 900);

    const mark = server.sshd.log().length;
    const viaSsh = await login(sshLogin, server.ordinary.name, server.ordinary.password);
    assert.equal((await viaSsh.command('PWD')).lines[0], '257 "/" is the current directory.');
    await viaSsh.command('QUIT');
    assert.match(server.sshd.log().slice(mark), new RegExp(`Accepted password for ${server.ordinary.name} from 127\\.0\\.0\\.1`));
    const logs = `${await bridge.log()}${await sshLogin.log()}`;
    assert.doesNotMatch(logs, new RegExp(password));
    assert.doesNotMatch(logs, new RegExp(server.ordinary.password));
  });

  it('keeps every path inside --sftp-root: .., absolute paths and symbolic links that lead out', async () => {
    const control = await login(bridge, 'ftpuser', password);
    try {
      assert.equal((await control.command('CWD ../../../..')).code, 250);
      assert.equal((await control.command('PWD')).lines[0], '257 "/" is the current directory.');
      const refused: Array<[string, RegExp]> = [
        ['MDTM ../secret.txt', /^550 No such file/],
        ['SIZE /../../secret.txt', /^550 No such file/],
        ['CWD escape', /^550 Permission denied: outside/],
        ['SIZE escape/passwd', /^550 Permission denied: outside/],
        ['MDTM outside.txt', /^550 Permission denied: outside/],
        ['MKD escape/ftpfwd-made-this', /^550 Permission denied: outside/],
        ['SITE CHMOD 666 outside.txt', /^550 Permission denied: outside/],
        ['MFMT 20000101000000 outside.txt', /^550 Permission denied: outside/],
        ['RMD /', /^550 Permission denied: not allowed on the top directory/],
        ['DELE ..', /^550 Permission denied: not allowed on the top directory/],
      ];
      for (const [command, expected] of refused) assert.match((await control.command(command)).lines[0]!, expected, command);
      // A transfer through a link that leads out is refused before any data moves.
      for (const command of ['RETR outside.txt', 'RETR escape/hostname', 'STOR escape/ftpfwd-made-this', 'LIST escape']) {
        const dataSocket = await openData(control);
        const received = readAll(dataSocket);
        assert.match((await control.command(command)).lines[0]!, /^550 Permission denied: outside/, command);
        dataSocket.destroy();
        assert.equal((await received).length, 0, `${command} sent data`);
      }
      assert.equal((await control.command('RNFR lf.txt')).code, 350);
      assert.match((await control.command('RNTO escape/lf.txt')).lines[0]!, /^550 Permission denied: outside/);
      const mlst = await control.command('MLST /..');
      assert.equal(mlst.code, 250);
      assert.match(mlst.lines[1]!, /^ type=dir;.* \/$/);
    } finally {
      control.close();
    }
    await assert.rejects(lstat('/etc/ftpfwd-made-this'));
    assert.equal((await stat(join(server.ordinary.home, 'secret.txt'))).mode & 0o777, 0o600);
    assert.equal(await readFile(join(data, 'lf.txt'), 'utf8'), LF_TEXT);
  });

  it('TYPE A converts on the wire both ways; TYPE I leaves bytes alone; SIZE, REST, STOU, MFMT, MLSD', async () => {
    const control = await login(bridge, 'ftpuser', password);
    try {
      assert.equal((await control.command('TYPE A')).code, 200);
      let socket = await openData(control);
      let received = readAll(socket);
      assert.equal((await control.command('RETR lf.txt')).code, 150);
      assert.equal((await control.reply()).code, 226);
      assert.equal((await received).toString('latin1'), LF_TEXT.replace(/\n/g, '\r\n'));
      assert.equal((await control.command('SIZE lf.txt')).lines[0], `213 ${LF_TEXT.replace(/\n/g, '\r\n').length}`);
      assert.match((await control.command('SIZE big.bin')).lines[0]!, /^550 .*too large; use TYPE I/);

      socket = await openData(control);
      assert.equal((await control.command('STOR ascii.txt')).code, 150);
      await sendAll(socket, Buffer.from('a\r\nb\r\nlone\rcr\r\n', 'latin1'));
      assert.equal((await control.reply()).code, 226);
      assert.equal(await readFile(join(data, 'ascii.txt'), 'latin1'), 'a\nb\nlone\rcr\n');

      assert.equal((await control.command('TYPE I')).code, 200);
      assert.equal((await control.command('SIZE big.bin')).lines[0], `213 ${64 * MiB}`);
      socket = await openData(control);
      received = readAll(socket);
      assert.equal((await control.command('RETR lf.txt')).code, 150);
      assert.equal((await control.reply()).code, 226);
      assert.equal((await received).toString('latin1'), LF_TEXT);

      // REST: resume from an offset; beyond the end is refused.
      assert.equal((await control.command('REST 4')).code, 350);
      socket = await openData(control);
      received = readAll(socket);
      assert.equal((await control.command('RETR lf.txt')).code, 150);
      assert.equal((await control.reply()).code, 226);
      assert.equal((await received).toString('latin1'), LF_TEXT.slice(4));
      assert.equal((await control.command('REST 100000')).code, 350);
      socket = await openData(control);
      assert.match((await control.command('RETR lf.txt')).lines[0]!, /^554 /);
      socket.destroy();

      // STOU: a name nobody has, given in the 150.
      const names: string[] = [];
      for (let round = 0; round < 2; round += 1) {
        socket = await openData(control);
        const started = await control.command('STOU report.csv');
        assert.equal(started.code, 150);
        names.push(/^150 FILE: (.+)$/.exec(started.lines[0]!)?.[1] ?? '');
        await sendAll(socket, Buffer.from(`round ${round}\n`));
        assert.equal((await control.reply()).code, 226);
      }
      assert.equal(names[0], 'report.csv');
      assert.notEqual(names[1], 'report.csv');
      assert.equal(await readFile(join(data, names[1]!), 'utf8'), 'round 1\n');

      assert.equal((await control.command('MFMT 20200102030405 report.csv')).lines[0], '213 Modify=20200102030405; /report.csv');
      assert.equal((await stat(join(data, 'report.csv'))).mtime.toISOString(), '2020-01-02T03:04:05.000Z');
      socket = await openData(control);
      received = readAll(socket);
      assert.equal((await control.command('MLSD')).code, 150);
      assert.equal((await control.reply()).code, 226);
      const mlsd = (await received).toString('utf8').split('\r\n');
      assert.ok(mlsd.includes('type=file;size=8;modify=20200102030405;perm=adfrw;unix.mode=0644;unix.owner=' + server.ordinary.uid + ';unix.group=' + server.ordinary.gid + ';unix.ownername=' + server.ordinary.name + ';unix.groupname=' + server.ordinary.name + '; report.csv'), mlsd.join('\n'));
      assert.ok(mlsd.some((line) => /^type=OS\.unix=symlink;.* escape$/.test(line)));
      assert.ok(mlsd.some((line) => /^type=dir;.* tree$/.test(line)));
    } finally {
      control.close();
    }
  });

  it('ABOR in the middle of a 64 MiB download: 426 then 226, and the session goes on; ABOR of an atomic upload leaves nothing behind', async () => {
    const control = await login(bridge, 'ftpuser', password);
    try {
      assert.equal((await control.command('TYPE I')).code, 200);
      let socket = await openData(control);
      // Read a little, then stop reading, so the transfer is surely under way when ABOR comes.
      const first = readSome(socket, MiB);
      const started = control.command('RETR big.bin');
      assert.ok((await first) >= MiB);
      assert.equal((await started).code, 150);
      control.send(Buffer.from([0xff, 0xf4, 0xff, 0xf2]));
      const abortedAt = Date.now();
      control.send('ABOR\r\n');
      const replies = [await control.reply(), await control.reply()];
      assert.deepEqual(codes(replies), [426, 226], replies.map((reply) => reply.lines.join(' ')).join(' | '));
      assert.ok(Date.now() - abortedAt < 5_000, 'ABOR must act at once');
      socket.destroy();
      assert.equal((await control.command('NOOP')).code, 200);

      // The session still transfers.
      socket = await openData(control);
      const whole = readAll(socket, 60_000);
      assert.equal((await control.command('RETR big.bin')).code, 150);
      assert.equal((await control.reply(60_000)).code, 226);
      assert.equal((await whole).length, 64 * MiB);

      // Atomic upload, aborted half-way: neither the target nor the temporary file stays.
      socket = await openData(control);
      assert.equal((await control.command('STOR aborted.bin')).code, 150);
      socket.write(Buffer.alloc(2 * MiB, 1));
      await delay(200);
      control.send('ABOR\r\n');
      assert.deepEqual(codes([await control.reply(), await control.reply()]), [426, 226]);
      socket.destroy();
      await delay(300);
      const leftovers = (await readdir(data)).filter((name) => name.includes('aborted.bin'));
      assert.deepEqual(leftovers, []);
      assert.equal((await control.command('ABOR')).code, 225);
    } finally {
      control.close();
    }
  });

  it('hostile input: bounce PORT, privileged ports, a data connection from another address, NUL, an endless line', async () => {
    const control = await login(bridge, 'ftpuser', password);
    try {
      assert.equal((await control.command('TYPE I')).code, 200);
      assert.match((await control.command('PORT 10,1,2,3,19,136')).lines[0]!, /^501 .*bounce/);
      assert.match((await control.command('EPRT |1|10.1.2.3|5000|')).lines[0]!, /^501 .*bounce/);
      assert.match((await control.command('PORT 127,0,0,1,0,21')).lines[0]!, /^501 .*1024/);
      assert.match((await control.command('PORT 127,0,0,1,300,1')).lines[0]!, /^501 /);
      assert.equal((await control.command('RETR a\0b')).code, 500);

      // On loopback, 127.0.0.2 is another address: its connection is refused, the client's own one still works.
      const reply = await control.command('EPSV');
      const port = Number(/\|\|\|(\d+)\|/.exec(reply.lines[0]!)?.[1]);
      const intruder = await connectTo(port, '127.0.0.2');
      const stolen = readAll(intruder, 5_000);
      const own = await connectTo(port);
      const received = readAll(own);
      assert.equal((await control.command('RETR lf.txt')).code, 150);
      assert.equal((await control.reply()).code, 226);
      assert.equal((await received).toString('latin1'), LF_TEXT);
      assert.equal((await stolen).length, 0);
      assert.match(await bridge.log(), /refused a data connection/);

      // Active mode: the bridge connects to the client itself.
      const listener = createServer();
      await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
      const accepted = new Promise<Buffer>((resolve) => listener.once('connection', (socket: Socket) => resolve(readAll(socket))));
      const { port: activePort } = listener.address() as AddressInfo;
      assert.equal((await control.command(`EPRT |1|127.0.0.1|${activePort}|`)).code, 200);
      assert.equal((await control.command('RETR lf.txt')).code, 150);
      assert.equal((await control.reply()).code, 226);
      assert.equal((await accepted).toString('latin1'), LF_TEXT);
      listener.close();

      control.send(`NOOP ${'x'.repeat(10_000)}\r\n`);
      assert.equal((await control.reply()).code, 500);
      assert.ok(await control.closedWithin(5_000), 'the session must close after an over-long line');
    } finally {
      control.close();
    }
  });

  it(`lftp mirror and mirror -R of a tree of ${TREE_FILES} files, compared file by file`, { timeout: 120_000 }, async () => {
    const target = { host: bridge.host, port: bridge.port, login: { user: 'ftpuser', password } };
    const down = join(scratch, 'down');
    const result = await lftpSession(target, 'epsv', [`mirror /tree ${down}`, `mirror -R ${down} /tree-up`], { timeoutMs: 110_000 });
    assert.equal(result.code, 0, result.stderr.slice(-2000));
    const compared = await compareTrees(join(data, 'tree'), down);
    assert.equal(compared, TREE_FILES);
    assert.equal(await compareTrees(join(data, 'tree'), join(data, 'tree-up')), TREE_FILES);
  });

  it('the SSH connection killed mid-transfer: 426, never 226, then 421; an atomic upload leaves no partial target; ftpfwd reconnects', { timeout: 60_000 }, async () => {
    const download = await login(bridge, 'ftpuser', password);
    const upload = await login(bridge, 'ftpuser', password);
    const perSession = await login(sshLogin, server.ordinary.name, server.ordinary.password);
    try {
      for (const control of [download, upload, perSession]) assert.equal((await control.command('TYPE I')).code, 200);
      const slowReader = async (control: ControlClient): Promise<{ socket: Socket; started: Promise<Reply> }> => {
        const socket = await openData(control);
        const first = readSome(socket, MiB);
        const started = control.command('RETR big.bin');
        await first;
        return { socket, started };
      };
      const downloading = await slowReader(download);
      const perSessionDownloading = await slowReader(perSession);
      const uploadSocket = await openData(upload);
      assert.equal((await upload.command('STOR killed.bin')).code, 150);
      uploadSocket.write(Buffer.alloc(2 * MiB, 2));
      assert.equal((await downloading.started).code, 150);
      assert.equal((await perSessionDownloading.started).code, 150);
      await delay(200);

      const listener = Number((await readFile(join(server.sshd.dir, 'sshd.pid'), 'utf8')).trim());
      const connections = descendantPids(listener);
      assert.ok(connections.length > 0, 'no sshd connection process');
      for (const pid of connections) process.kill(pid, 'SIGKILL');

      for (const control of [download, perSession, upload]) {
        const replies = [await control.reply(15_000), await control.reply(15_000)];
        assert.deepEqual(codes(replies), [426, 421], replies.map((reply) => reply.lines.join(' ')).join(' | '));
        assert.ok(await control.closedWithin(5_000));
      }
      downloading.socket.destroy();
      perSessionDownloading.socket.destroy();
      uploadSocket.destroy();
      await assert.rejects(lstat(join(data, 'killed.bin')), 'an atomic upload cut short must not leave the target');

      // ftpfwd's own connection comes back (backoff from 1 s): new sessions work again.
      let again: ControlClient | null = null;
      for (let attempt = 0; attempt < 20 && again === null; attempt += 1) {
        again = await login(bridge, 'ftpuser', password).catch(async () => {
          await delay(500);
          return null;
        });
      }
      assert.ok(again, 'no login after the SSH connection came back');
      assert.equal((await again.command('SIZE lf.txt')).code, 213);
      again.close();
    } finally {
      for (const control of [download, upload, perSession]) control.close();
    }
    assert.equal(await sha256File(join(data, 'big.bin')), bigSum);
  });
});

/** Compares every regular file under `expected` with the same path under `actual`; returns how many were compared. */
async function compareTrees(expected: string, actual: string): Promise<number> {
  let compared = 0;
  for (const entry of await readdir(expected, { withFileTypes: true })) {
    const here = join(expected, entry.name);
    const there = join(actual, entry.name);
    if (entry.isDirectory()) compared += await compareTrees(here, there);
    else {
      assert.equal(await sha256File(there).catch(() => 'missing'), await sha256File(here), there);
      compared += 1;
    }
  }
  return compared;
}
