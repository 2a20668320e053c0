/**
 * Runs a list of operations in one basic-ftp session, as its own process:
 *
 *   FTP_PASSWORD=... node --import tsx basicFtpSession.ts HOST PORT pasv|epsv USER TIMEOUT_MS < ops.json
 *
 * The operations are those of ftpSessions.ts (JSON on stdin). The control
 * trace (`> CMD`, `< reply`) goes to stderr, listings to stdout between
 * `=== LIST` and `=== END` lines. Exits 1 at the first failure.
 */
import { createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { Client, type FileInfo } from 'basic-ftp';
import { enterPassiveModeIPv4_forceControlHostIP } from 'basic-ftp/dist/transfer.js';
import type { SessionOp } from './ftpSessions.js';

function listingLine(info: FileInfo): string {
  const kind = info.isDirectory ? 'd' : info.isSymbolicLink ? 'l' : '-';
  return `${kind} ${String(info.size).padStart(12)} ${info.rawModifiedAt} ${info.name}`;
}

async function perform(client: Client, op: SessionOp): Promise<void> {
  switch (op.kind) {
    case 'get': {
      if (op.ascii) await client.send('TYPE A');
      const startAt = op.resume && existsSync(op.local) ? statSync(op.local).size : 0;
      await client.downloadTo(createWriteStream(op.local, { flags: startAt > 0 ? 'a' : 'w' }), op.remote, startAt);
      if (op.ascii) await client.send('TYPE I');
      return;
    }
    case 'put':
      if (op.ascii) await client.send('TYPE A');
      if (op.append) await client.appendFrom(createReadStream(op.local), op.remote);
      else await client.uploadFrom(createReadStream(op.local), op.remote);
      if (op.ascii) await client.send('TYPE I');
      return;
    case 'list':
      process.stdout.write(`=== LIST ${op.remote}\n`);
      for (const entry of await client.list(op.remote)) process.stdout.write(`${listingLine(entry)}\n`);
      process.stdout.write('=== END\n');
      return;
    case 'mkdir':
      await client.send(`MKD ${op.remote}`);
      return;
    case 'rmdir':
      await client.send(`RMD ${op.remote}`);
      return;
    case 'delete':
      await client.remove(op.remote);
      return;
    case 'rename':
      await client.rename(op.from, op.to);
      return;
    case 'chmod':
      await client.send(`SITE CHMOD ${op.mode} ${op.remote}`);
      return;
    case 'size':
      await client.size(op.remote);
      return;
    case 'mdtm':
      await client.lastMod(op.remote);
      return;
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const [host, portText, mode, user, timeoutText] = argv;
  if (host === undefined || user === undefined || (mode !== 'pasv' && mode !== 'epsv')) {
    process.stderr.write('usage: basicFtpSession.ts HOST PORT pasv|epsv USER TIMEOUT_MS < ops.json\n');
    return 2;
  }
  const ops = JSON.parse(readFileSync(0, 'utf8')) as SessionOp[];
  const client = new Client(Number(timeoutText ?? 60_000));
  client.ftp.verbose = true;
  client.ftp.log = (message: string) => {
    process.stderr.write(`${message.replace(/^> PASS .*/, '> PASS ****')}\n`);
  };
  if (mode === 'pasv') client.prepareTransfer = enterPassiveModeIPv4_forceControlHostIP;
  try {
    await client.access({ host, port: Number(portText), user, password: process.env['FTP_PASSWORD'] ?? '' });
    for (const op of ops) await perform(client, op);
    return 0;
  } catch (err) {
    process.stderr.write(`basic-ftp: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`basic-ftp session: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
