/**
 * The contenders: what carries the FTP connections from the client to the FTP
 * server, each started as its own process (or none, for `direct`).
 */
import { freePort } from '../helpers/ports.js';
import { run, startProcess, type ProcessHandle } from '../helpers/processes.js';
import { sshClientArgs, type SshdInstance } from '../helpers/sshd.js';
import { waitForTcp } from '../helpers/tcp.js';
import type { VsftpdInstance } from '../helpers/vsftpd.js';
import { FTPFWD_BIN, START_TIMEOUT_MS } from './config.js';
import { memoryKiB } from './proc.js';

export type ContenderKey = 'direct' | 'ftpfwd' | 'ssh-default' | 'ssh-aes-gcm';
export const FORWARDERS: readonly ContenderKey[] = ['ftpfwd', 'ssh-default', 'ssh-aes-gcm'];

export interface Contender {
  key: ContenderKey;
  label: string;
  /** Where curl's FTP URLs point. */
  ftpHost: string;
  ftpPort: number;
  /** The SOCKS5 proxy (ssh -D) that carries the connections, if any. */
  socks: SocksProxy | null;
  /** Where curl's FTP URLs point for the slow FTP server (through the proxy, if any); null for `direct`. */
  slowServer: FtpAddress | null;
  /** The forwarding process; null for `direct`. */
  proc: ProcessHandle | null;
  /** Cipher negotiated client to server / server to client. */
  cipher: string;
  rssAtStartKiB: number | null;
}

export interface SocksProxy {
  host: string;
  port: number;
}

export interface FtpAddress {
  host: string;
  port: number;
}

/** curl arguments that route it like the contender. */
export function curlRoute(contender: Contender): string[] {
  return contender.socks === null ? [] : ['--socks5-hostname', `${contender.socks.host}:${contender.socks.port}`];
}

export function ftpUrl(contender: Contender, path: string): string {
  return `ftp://${contender.ftpHost}:${contender.ftpPort}/${path}`;
}

export function slowServerUrl(contender: Contender, path: string): string {
  if (contender.slowServer === null) throw new Error(`${contender.label} has no route to the slow FTP server`);
  return `ftp://${contender.slowServer.host}:${contender.slowServer.port}/${path}`;
}

export function cleanEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env['SSH_AUTH_SOCK'];
  return env;
}

/** `also`: further FTP servers (on loopback at the SSH server's side) to forward to, each on its own listener. */
export function ftpfwdArgs(sshd: SshdInstance, vsftpd: VsftpdInstance, logging: string[], also: FtpAddress[] = []): string[] {
  return [
    FTPFWD_BIN,
    '-L', `127.0.0.1:0:127.0.0.1:${vsftpd.port}`,
    ...also.flatMap((target) => ['-L', `127.0.0.1:0:${target.host}:${target.port}`]),
    '-p', String(sshd.port),
    '-i', sshd.identityFile,
    '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`,
    '-o', 'StrictHostKeyChecking=yes',
    '--log-format', 'json',
    ...logging,
    `${sshd.user}@${sshd.host}`,
  ];
}

export const LISTENING = /ftpfwd: listening on 127\.0\.0\.1:(\d+)/;

/** The local port of the listener that forwards to `target`, from ftpfwd's start-up lines. */
export function listenerFor(output: string, target: FtpAddress): number | null {
  for (const line of output.split('\n')) {
    const match = /ftpfwd: listening on 127\.0\.0\.1:(\d+) -> (\S+) /.exec(line);
    if (match?.[2] === `${target.host}:${target.port}`) return Number(match[1]);
  }
  return null;
}

/** A short-lived ftpfwd with -v, to read which algorithms it negotiates. */
export async function probeFtpfwdCipher(sshd: SshdInstance, vsftpd: VsftpdInstance, home: string): Promise<string> {
  const proc = await startProcess(process.execPath, ftpfwdArgs(sshd, vsftpd, ['-v']), { env: cleanEnv(home) });
  try {
    await proc.waitForOutput(LISTENING, START_TIMEOUT_MS);
    for (const line of proc.stderr().split('\n')) {
      if (!line.includes('SSH algorithms negotiated')) continue;
      const record = JSON.parse(line) as { cipher?: unknown; kex?: unknown };
      return typeof record.cipher === 'string' ? record.cipher : JSON.stringify(record.cipher);
    }
    return 'unknown (no "SSH algorithms negotiated" debug line)';
  } finally {
    await proc.stop();
  }
}

/** One ftpfwd process with a listener for vsftpd and, if `slow` is given, one for the slow FTP server. */
export async function startFtpfwd(sshd: SshdInstance, vsftpd: VsftpdInstance, home: string, cipher: string, slow?: FtpAddress): Promise<Contender> {
  const proc = await startProcess(process.execPath, ftpfwdArgs(sshd, vsftpd, ['-q'], slow === undefined ? [] : [slow]), { env: cleanEnv(home) });
  let port: number | null = null;
  let slowPort: number | null = null;
  try {
    await proc.waitForOutput(LISTENING, START_TIMEOUT_MS);
    port = listenerFor(proc.stdout(), { host: '127.0.0.1', port: vsftpd.port });
    if (slow !== undefined) slowPort = listenerFor(proc.stdout(), slow);
    if (port === null || (slow !== undefined && slowPort === null)) throw new Error(`ftpfwd did not print its listeners: ${proc.stdout()}`);
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return {
    key: 'ftpfwd',
    label: 'ftpfwd',
    ftpHost: '127.0.0.1',
    ftpPort: port,
    socks: null,
    slowServer: slowPort === null ? null : { host: '127.0.0.1', port: slowPort },
    proc,
    cipher,
    rssAtStartKiB: memoryKiB(proc.pid, 'VmRSS'),
  };
}

export function sshCipherArgs(cipher: string | undefined): string[] {
  return cipher === undefined ? [] : ['-c', cipher];
}

/** A one-command ssh -v connection, to read the ciphers OpenSSH negotiates. */
export async function probeSshCipher(sshd: SshdInstance, cipher: string | undefined, home: string): Promise<string> {
  const result = await run('ssh', ['-v', ...sshCipherArgs(cipher), ...sshClientArgs(sshd), 'true'], { timeoutMs: START_TIMEOUT_MS, env: cleanEnv(home) });
  const down = /kex: server->client cipher: (\S+)/.exec(result.stderr)?.[1];
  const up = /kex: client->server cipher: (\S+)/.exec(result.stderr)?.[1];
  if (down === undefined) return `unknown (ssh exit ${String(result.code)})`;
  return up === undefined || up === down ? down : `${up} / ${down}`;
}

export async function startSshSocks(sshd: SshdInstance, vsftpd: VsftpdInstance, slow: FtpAddress, home: string, key: ContenderKey, cipher: string | undefined, negotiated: string): Promise<Contender> {
  const socksPort = await freePort('127.0.0.1');
  const args = ['-N', '-D', `127.0.0.1:${socksPort}`, '-o', 'ExitOnForwardFailure=yes', ...sshCipherArgs(cipher), ...sshClientArgs(sshd)];
  const proc = await startProcess('ssh', args, { env: cleanEnv(home) });
  try {
    const exited = proc.waitExit(START_TIMEOUT_MS).then(
      (status) => {
        throw new Error(`ssh -D exited during start-up (code ${String(status.code)}): ${proc.stderr()}`);
      },
      () => undefined,
    );
    await Promise.race([waitForTcp('127.0.0.1', socksPort, START_TIMEOUT_MS), exited]);
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return {
    key,
    label: cipher === undefined ? 'ssh -D (default cipher)' : `ssh -D -c ${cipher}`,
    ftpHost: '127.0.0.1',
    ftpPort: vsftpd.port,
    socks: { host: '127.0.0.1', port: socksPort },
    slowServer: slow,
    proc,
    cipher: negotiated,
    rssAtStartKiB: memoryKiB(proc.pid, 'VmRSS'),
  };
}
