/**
 * ftpfwd inside a Node program: start the forwarder, transfer one file
 * through it with basic-ftp (any FTP client library works the same way),
 * stop it, and print the forwarder's totals as one JSON line on stdout.
 *
 * Run from a checkout:   node --import tsx examples/library.ts
 * In your own project, `npm install ftpfwd basic-ftp` and import from
 * 'ftpfwd' instead of '../src/index.js'.
 *
 * Environment:
 *   FTPFWD_SSH_HOST      SSH server that reaches the FTP server (required)
 *   FTPFWD_SSH_PORT      its port (default: 22)
 *   FTPFWD_SSH_USER      SSH user (default: the local user name)
 *   FTPFWD_SSH_KEY       private key file (optional; SSH_AUTH_SOCK is tried first)
 *   FTPFWD_KNOWN_HOSTS   known_hosts file (default: ~/.ssh/known_hosts)
 *   FTP_HOST             FTP server, as the SSH server resolves it (default: localhost)
 *   FTP_PORT             its port (default: 21)
 *   FTP_USER             FTP user (default: anonymous)
 *   FTP_PASSWORD         FTP password (default: anonymous@)
 *   DIRECTION            download (default) or upload
 *   REMOTE_FILE          path on the FTP server (required)
 *   LOCAL_FILE           local path (required)
 *
 * Exit status: 0 on success, ftpfwd's exit codes (see `ftpfwd --help`)
 * when the tunnel could not be set up, 1 when the transfer failed.
 */
import { userInfo } from 'node:os';
import { Client } from 'basic-ftp';
import { createLogger, exitCodeFor, isFtpfwdError, startForwarder, type Forwarder } from '../src/index.js';

function setting(name: string, fallback?: string): string {
  const value = process.env[name] || fallback;
  if (value === undefined) throw new Error(`set ${name}`);
  return value;
}

function portSetting(name: string, fallback: number): number {
  const text = setting(name, String(fallback));
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name} is not a port number: ${text}`);
  return port;
}

async function main(): Promise<number> {
  const direction = setting('DIRECTION', 'download');
  if (direction !== 'download' && direction !== 'upload') throw new Error(`DIRECTION is download or upload, not ${direction}`);
  const remoteFile = setting('REMOTE_FILE');
  const localFile = setting('LOCAL_FILE');
  const key = process.env['FTPFWD_SSH_KEY'];
  const knownHosts = process.env['FTPFWD_KNOWN_HOSTS'];

  let forwarder: Forwarder;
  try {
    forwarder = await startForwarder({
      ssh: {
        host: setting('FTPFWD_SSH_HOST'),
        port: portSetting('FTPFWD_SSH_PORT', 22),
        username: setting('FTPFWD_SSH_USER', userInfo().username),
        identityFiles: key ? [key] : [],
        ...(knownHosts ? { knownHostsFiles: [knownHosts] } : {}),
        agentSocket: process.env['SSH_AUTH_SOCK'] || undefined,
        strictHostKeyChecking: 'yes',
      },
      // Port 0: a free port on loopback, read back from `listeners`.
      forwards: [{ bindAddress: '127.0.0.1', bindPort: 0, ftpHost: setting('FTP_HOST', 'localhost'), ftpPort: portSetting('FTP_PORT', 21) }],
      logger: createLogger({ level: 'warn', format: 'json' }),
    });
  } catch (error) {
    // Host key, authentication, connection: one line, and ftpfwd's exit code.
    if (!isFtpfwdError(error)) throw error;
    process.stderr.write(`library: ${error.message}\n`);
    return exitCodeFor(error);
  }

  const client = new Client(30_000);
  try {
    const { host, port } = forwarder.listeners[0]!;
    await client.access({ host, port, user: setting('FTP_USER', 'anonymous'), password: setting('FTP_PASSWORD', 'anonymous@'), secure: false });
    if (direction === 'upload') await client.uploadFrom(localFile, remoteFile);
    else await client.downloadTo(localFile, remoteFile);
  } finally {
    client.close();
    // Lets a transfer still under way in the forwarder finish first.
    await forwarder.close({ graceMs: 5_000 });
  }
  process.stdout.write(`${JSON.stringify({ direction, remoteFile, localFile, ...forwarder.stats })}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`library: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
