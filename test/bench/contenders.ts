/**
 * The contenders: what carries the FTP connections from the client to the FTP
 * server, each started as its own process (or none, for `direct`).
 */
import { freePort } from '../helpers/ports.js';
import { run, startProcess, type ProcessHandle } from '../helpers/processes.js';
import { sshClientArgs, type SshdInstance } from '../helpers/sshd.js';
import { waitForTcp } from '../helpers/tcp.js';
import { AES_GCM, FTPFWD_BIN, START_TIMEOUT_MS } from './config.js';
import { memoryKiB } from './proc.js';

/** 'direct', 'ftpfwd', 'ssh-default', 'ssh-aes-gcm', or one a later contender adds. */
export type ContenderKey = string;
/** The contenders that forward (each a process), in the order they are started. */
export const FORWARDERS: readonly ContenderKey[] = ['ftpfwd', 'ssh-default', 'ssh-aes-gcm'];
/** What every ftpfwd figure is divided by: OpenSSH's own way of carrying FTP, with each cipher. */
export const BASELINES: readonly ContenderKey[] = ['ssh-default', 'ssh-aes-gcm'];

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

/** Where a contender's SSH connection goes: sshd itself, or a delay line in front of it. */
export type SshEndpoint = Pick<SshdInstance, 'host' | 'port' | 'user' | 'identityFile' | 'knownHostsFile'>;

export interface StartOptions {
  endpoint: SshEndpoint;
  /** The FTP server the contender carries sessions to (vsftpd, on the SSH server's side). */
  ftp: FtpAddress;
  home: string;
  /** The cipher it negotiates, as probed, for the report. */
  cipher: string;
  /** A second FTP server to reach through it (the slow one), if any. */
  slow?: FtpAddress;
  /** Further ftpfwd options (e.g. --ftp-tls); ignored by ssh -D. */
  ftpfwdOptions?: string[];
}

/** `also`: further FTP servers (on loopback at the SSH server's side) to forward to, each on its own listener. */
function ftpfwdArgs(o: Pick<StartOptions, 'endpoint' | 'ftp' | 'ftpfwdOptions'>, logging: string[], also: FtpAddress[] = []): string[] {
  const { endpoint } = o;
  return [
    FTPFWD_BIN,
    '-L', `127.0.0.1:0:${o.ftp.host}:${o.ftp.port}`,
    ...also.flatMap((target) => ['-L', `127.0.0.1:0:${target.host}:${target.port}`]),
    '-p', String(endpoint.port),
    '-i', endpoint.identityFile,
    '-o', `UserKnownHostsFile=${endpoint.knownHostsFile}`,
    '-o', 'StrictHostKeyChecking=yes',
    // The 200-session section opens more sessions at once than the default limit of 64.
    '--max-sessions', '512',
    '--log-format', 'json',
    ...(o.ftpfwdOptions ?? []),
    ...logging,
    `${endpoint.user}@${endpoint.host}`,
  ];
}

const LISTENING = /ftpfwd: listening on 127\.0\.0\.1:(\d+)/;

/** The local port of the listener that forwards to `target`, from ftpfwd's start-up lines. */
function listenerFor(output: string, target: FtpAddress): number | null {
  for (const line of output.split('\n')) {
    const match = /ftpfwd: listening on 127\.0\.0\.1:(\d+) -> (\S+) /.exec(line);
    if (match?.[2] === `${target.host}:${target.port}`) return Number(match[1]);
  }
  return null;
}

/** A short-lived ftpfwd with -v, to read which algorithms it negotiates. */
async function probeFtpfwdCipher(o: Pick<StartOptions, 'endpoint' | 'ftp' | 'home'>): Promise<string> {
  const proc = await startProcess(process.execPath, ftpfwdArgs(o, ['-v']), { env: cleanEnv(o.home) });
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

/** One ftpfwd process with a listener for the FTP server and, if `slow` is given, one for the slow FTP server. */
async function startFtpfwd(o: StartOptions): Promise<Contender> {
  const { slow } = o;
  const proc = await startProcess(process.execPath, ftpfwdArgs(o, ['-q'], slow === undefined ? [] : [slow]), { env: cleanEnv(o.home) });
  let port: number | null = null;
  let slowPort: number | null = null;
  try {
    await proc.waitForOutput(LISTENING, START_TIMEOUT_MS);
    port = listenerFor(proc.stdout(), o.ftp);
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
    cipher: o.cipher,
    rssAtStartKiB: memoryKiB(proc.pid, 'VmRSS'),
  };
}

function sshCipherArgs(cipher: string | undefined): string[] {
  return cipher === undefined ? [] : ['-c', cipher];
}

/** A one-command ssh -v connection, to read the ciphers OpenSSH negotiates. */
async function probeSshCipher(endpoint: SshEndpoint, cipher: string | undefined, home: string): Promise<string> {
  const result = await run('ssh', ['-v', ...sshCipherArgs(cipher), ...sshClientArgs(endpoint), 'true'], { timeoutMs: START_TIMEOUT_MS, env: cleanEnv(home) });
  const down = /kex: server->client cipher: (\S+)/.exec(result.stderr)?.[1];
  const up = /kex: client->server cipher: (\S+)/.exec(result.stderr)?.[1];
  if (down === undefined) return `unknown (ssh exit ${String(result.code)})`;
  return up === undefined || up === down ? down : `${up} / ${down}`;
}

/** `ssh -N -D`: a SOCKS5 proxy whose every connection is a channel of one SSH connection. */
async function startSshSocks(o: StartOptions, key: ContenderKey, cipher: string | undefined): Promise<Contender> {
  const socksPort = await freePort('127.0.0.1');
  const args = ['-N', '-D', `127.0.0.1:${socksPort}`, '-o', 'ExitOnForwardFailure=yes', ...sshCipherArgs(cipher), ...sshClientArgs(o.endpoint)];
  const proc = await startProcess('ssh', args, { env: cleanEnv(o.home) });
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
    ftpHost: o.ftp.host,
    ftpPort: o.ftp.port,
    socks: { host: '127.0.0.1', port: socksPort },
    slowServer: o.slow ?? null,
    proc,
    cipher: o.cipher,
    rssAtStartKiB: memoryKiB(proc.pid, 'VmRSS'),
  };
}

/** The OpenSSH cipher each OpenSSH contender asks for (undefined: OpenSSH's default). */
export const SSH_CIPHERS: Readonly<Record<ContenderKey, string | undefined>> = { 'ssh-default': undefined, 'ssh-aes-gcm': AES_GCM };

/** Starts one of FORWARDERS; a new forwarding contender adds its case here. */
export function startForwarder(key: ContenderKey, o: StartOptions): Promise<Contender> {
  if (key === 'ftpfwd') return startFtpfwd(o);
  if (key in SSH_CIPHERS) return startSshSocks(o, key, SSH_CIPHERS[key]);
  throw new Error(`no way to start a contender called ${key}`);
}

/** Probes the cipher each forwarder negotiates with `endpoint`. */
export async function probeCiphers(o: Pick<StartOptions, 'endpoint' | 'ftp' | 'home'>): Promise<Record<ContenderKey, string>> {
  const ciphers: Record<ContenderKey, string> = { ftpfwd: await probeFtpfwdCipher(o) };
  for (const [key, cipher] of Object.entries(SSH_CIPHERS)) ciphers[key] = await probeSshCipher(o.endpoint, cipher, o.home);
  return ciphers;
}
