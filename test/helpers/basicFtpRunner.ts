/**
 * Runs one transfer with basic-ftp, anonymously, as its own process (so it
 * can run inside a network namespace):
 *
 *   node --import tsx basicFtpRunner.ts HOST PORT pasv|epsv get|put|list REMOTE [LOCAL] [TIMEOUT_MS]
 *
 * basic-ftp only does passive mode. `epsv` is its default strategy (EPSV
 * first, PASV if the server refuses it); `pasv` sends PASV only. Both keep
 * its default refusal of a 227 naming another host than the control
 * connection's. The control-channel trace (`> CMD`, `< reply`) goes to
 * stderr; a listing goes to stdout, one `ls -l`-like line per entry.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { Client, enterPassiveModeIPv6, type FileInfo } from 'basic-ftp';
import { enterPassiveModeIPv4_forceControlHostIP } from 'basic-ftp/dist/transfer.js';

const MODES = ['pasv', 'epsv'] as const;
const ACTIONS = ['get', 'put', 'list'] as const;
type Mode = (typeof MODES)[number];
type Action = (typeof ACTIONS)[number];

function isOneOf<T extends string>(values: readonly T[], value: string | undefined): value is T {
  return values.some((candidate) => candidate === value);
}

function listingLine(info: FileInfo): string {
  const kind = info.isDirectory ? 'd' : info.isSymbolicLink ? 'l' : '-';
  return `${kind} ${String(info.size).padStart(12)} ${info.rawModifiedAt} ${info.name}`;
}

async function main(argv: readonly string[]): Promise<number> {
  const [host, portText, mode, action, remote, local, timeoutText] = argv;
  const port = Number(portText);
  if (host === undefined || !Number.isInteger(port) || !isOneOf<Mode>(MODES, mode) || !isOneOf<Action>(ACTIONS, action) || remote === undefined) {
    process.stderr.write('usage: basicFtpRunner.ts HOST PORT pasv|epsv get|put|list REMOTE [LOCAL] [TIMEOUT_MS]\n');
    return 2;
  }
  if (action !== 'list' && (local === undefined || local === '')) {
    process.stderr.write('get and put need a LOCAL path\n');
    return 2;
  }
  const client = new Client(Number(timeoutText ?? 30_000));
  client.ftp.verbose = true;
  client.ftp.log = (message: string) => {
    process.stderr.write(`${message}\n`);
  };
  if (mode === 'pasv') client.prepareTransfer = enterPassiveModeIPv4_forceControlHostIP;
  else if (process.env['BASIC_FTP_STRICT_EPSV'] === '1') client.prepareTransfer = enterPassiveModeIPv6;
  try {
    await client.access({ host, port, user: 'anonymous', password: 'basic-ftp@example.com' });
    if (action === 'get') {
      await client.downloadTo(createWriteStream(local!), remote);
    } else if (action === 'put') {
      await client.uploadFrom(createReadStream(local!), remote);
    } else {
      const entries = await client.list(remote);
      for (const entry of entries) process.stdout.write(`${listingLine(entry)}\n`);
    }
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
    process.stderr.write(`basic-ftp runner: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
