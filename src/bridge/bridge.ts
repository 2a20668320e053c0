import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { homedir } from 'node:os';
import type { Logger } from 'pino';
import { errorMessage, FtpfwdError, isFtpfwdError } from '../errors.js';
import type { CloseOptions, Forwarder, ForwarderStatus, SshOptions } from '../forwarder.js';
import { silentLogger } from '../log.js';
import { sameAddressPeer, type DataPeerCheck } from '../session/dataPeer.js';
import { emptyStats, type ForwarderStats } from '../session/stats.js';
import { progressInterval } from '../session/transferProgress.js';
import type { Prompter } from '../ssh/authentication.js';
import { connectThroughHops, describeHop, prepareHop } from '../ssh/hops.js';
import { DEFAULT_RECONNECT, SshLink, type ReconnectPolicy } from '../ssh/sshLink.js';
import { formatHostPort } from '../net/addresses.js';
import type { SshConnectOptions } from '../ssh/sshConnection.js';
import { BridgeSession, type BridgeTimeouts } from './bridgeSession.js';
import { LoginFailures, type FtpAccount } from './credentials.js';
import { fileKind } from './listing.js';
import { PerSessionLogins, SharedConnectionLogins, type LoginProvider } from './logins.js';
import { DEFAULT_TUNING, type PipelineTuning } from './pipeline.js';
import { SftpPool } from './sftpPool.js';

/** One local FTP listener served from SFTP. */
export interface SftpBridgeListenerSpec {
  bindAddress: string;
  /** 0 picks a free port. */
  bindPort: number;
}

/**
 * Who may use the bridge. Nobody gets files without a credential:
 * - `ssh`: the FTP client's USER and PASS are the SSH login of a
 *   connection of the session's own (password or keyboard-interactive);
 * - `account`: ftpfwd logs in with its own keys, agent or password, and
 *   the FTP login must match this account.
 */
export type FtpLogin = { kind: 'ssh' } | { kind: 'account'; account: FtpAccount };

export interface SftpBridgeOptions {
  ssh: SshOptions;
  listeners: SftpBridgeListenerSpec[];
  login: FtpLogin;
  /** Confines every session to this directory on the server (relative: to the login's home). */
  root?: string;
  /** STOR writes to a temporary name in the same directory and renames it when complete. */
  atomicUploads?: boolean;
  maxSessions?: number;
  maxLineLength?: number;
  timeouts?: Partial<BridgeTimeouts & { controlConnectMs: number; requestMs: number }>;
  tuning?: Partial<PipelineTuning>;
  /** SFTP channels on the shared SSH connection at most (account logins). */
  maxSftpChannels?: number;
  /** Which connections a passive data listener accepts; default: from the control connection's address. */
  dataPeerCheck?: DataPeerCheck;
  logger?: Logger;
  homeDir?: string;
  prompt?: Prompter;
  reconnect?: Partial<ReconnectPolicy>;
  /** As ForwarderOptions.progressIntervalMs. */
  progressIntervalMs?: number;
}

export interface BridgeListener {
  host: string;
  port: number;
  spec: SftpBridgeListenerSpec;
}

/**
 * A running bridge: the forwarder's handle, with bridge listeners;
 * `sshTarget` is `host:port` when each FTP login is its own SSH login.
 */
export interface SftpBridge extends Omit<Forwarder, 'listeners'> {
  readonly listeners: readonly BridgeListener[];
}

const DEFAULT_TIMEOUTS = {
  controlConnectMs: 15_000,
  connectMs: 15_000,
  acceptMs: 60_000,
  lingerMs: 30_000,
  idleMs: 30 * 60_000,
  requestMs: 60_000,
};
const DEFAULT_MAX_SESSIONS = 64;
const DEFAULT_MAX_LINE_LENGTH = 4096;
/** Below OpenSSH's default MaxSessions (10), leaving room for the forwarder's own use. */
const DEFAULT_MAX_SFTP_CHANNELS = 8;
const IDLE_CHANNEL_MS = 15_000;

type Hop = Omit<SshConnectOptions, 'transport'>;

/**
 * Serves FTP on each listener from the SSH server's SFTP subsystem: no FTP
 * server is involved, and data connections run between the client and
 * ftpfwd only. Checks at start what can be checked (the host key, the
 * login, the SFTP subsystem and the root) so that a bridge that cannot
 * work fails at once with the reason, as startForwarder does.
 */
export async function startSftpBridge(options: SftpBridgeOptions): Promise<SftpBridge> {
  if (options.listeners.length === 0) throw new FtpfwdError('ERR_FTPFWD_USAGE', 'no SFTP bridge listener given (use -L [bind_address:]port:sftp:)');
  const log = options.logger ?? silentLogger();
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const progressIntervalMs = progressInterval(options.progressIntervalMs);
  const context = { homeDir: options.homeDir ?? homedir(), prompt: options.prompt, log };
  const hops: Hop[] = [];
  for (const hop of [...(options.ssh.jumpHosts ?? []), options.ssh]) hops.push(await prepareHop(hop, context));
  const pool = { maxChannels: options.maxSftpChannels ?? DEFAULT_MAX_SFTP_CHANNELS, openTimeoutMs: timeouts.connectMs, requestTimeoutMs: timeouts.requestMs, idleMs: IDLE_CHANNEL_MS };

  let runtime: BridgeRuntime | null = null;
  let logins: LoginProvider;
  let link: SshLink | null = null;
  let sshTarget: string;
  if (options.login.kind === 'account') {
    const shared = new SshLink(
      () => connectThroughHops(hops, log),
      { ...DEFAULT_RECONNECT, ...options.reconnect },
      log,
      (error) => void runtime?.shutDown('SSH connection lost', error),
    );
    await shared.start();
    link = shared;
    sshTarget = describeHop(options.ssh);
    try {
      await checkSftp(shared, pool, options.root, timeouts.connectMs, log);
    } catch (error) {
      shared.close();
      throw error;
    }
    logins = new SharedConnectionLogins(options.login.account, shared, options.ssh.username, pool, timeouts.controlConnectMs, log);
  } else {
    await checkHostKey(hops, log);
    sshTarget = formatHostPort(options.ssh.host, options.ssh.port ?? 22);
    logins = new PerSessionLogins(hops, timeouts.connectMs, timeouts.requestMs, log);
  }
  const cipher = link?.status().cipher ?? undefined;
  log.info({ ssh: sshTarget, login: options.login.kind === 'ssh' ? 'each FTP login is an SSH login' : 'ftpfwd\'s own SSH login', root: options.root ?? null, cipher }, 'SFTP bridge ready');
  runtime = new BridgeRuntime(options, logins, link, sshTarget, timeouts, progressIntervalMs, log);
  try {
    await runtime.listen();
  } catch (error) {
    await runtime.close();
    throw error;
  }
  return runtime;
}

/** The SFTP subsystem answers, and the root (when given) is a directory: else the bridge could serve nobody. */
async function checkSftp(link: SshLink, pool: ConstructorParameters<typeof SftpPool>[1], root: string | undefined, timeoutMs: number, log: Logger): Promise<void> {
  const connection = await link.acquire(timeoutMs);
  if (!connection) throw new FtpfwdError('ERR_FTPFWD_SSH', 'the SSH connection closed before the SFTP subsystem could be checked');
  const probe = new SftpPool(connection, { ...pool, maxChannels: 1, idleMs: 0 }, log);
  const lease = await probe.acquire();
  try {
    if (root === undefined) return;
    let mode: number | undefined;
    try {
      mode = (await lease.fs.stat(await lease.fs.realpath(root))).mode;
    } catch (error) {
      throw new FtpfwdError('ERR_FTPFWD_CONFIG', `--sftp-root ${root}: ${errorMessage(error)} on the SSH server`, { cause: error });
    }
    if (fileKind(mode) !== 'dir') throw new FtpfwdError('ERR_FTPFWD_CONFIG', `--sftp-root ${root} is not a directory on the SSH server`);
  } finally {
    lease.release();
    probe.close();
  }
}

/**
 * Each FTP login is an SSH login, so there is nothing to log in with yet;
 * but the server must answer and its host key must check out, or every
 * session would fail. Authenticating with no method at all gets exactly
 * that far.
 */
async function checkHostKey(hops: readonly Hop[], log: Logger): Promise<void> {
  const target = hops.at(-1)!;
  const noLogin: Hop = { ...target, auth: { ...target.auth, identities: [], agentSocket: undefined, publicKey: false, keyboardInteractive: false, password: false, knownPassword: undefined, prompt: undefined } };
  try {
    const connection = await connectThroughHops([...hops.slice(0, -1), noLogin], log);
    connection.close();
  } catch (error) {
    if (isFtpfwdError(error) && error.code === 'ERR_FTPFWD_AUTH') return;
    throw error;
  }
}

class BridgeRuntime implements SftpBridge {
  readonly listeners: BridgeListener[] = [];
  readonly closed: Promise<{ reason: string; error: Error | null }>;
  readonly stats: ForwarderStats = emptyStats();
  private readonly servers: Server[] = [];
  private readonly sessions = new Set<BridgeSession>();
  private readonly failures = new LoginFailures();
  private sessionCount = 0;
  private closing: Promise<void> | null = null;
  private resolveClosed!: (outcome: { reason: string; error: Error | null }) => void;

  constructor(
    private readonly options: SftpBridgeOptions,
    private readonly logins: LoginProvider,
    private readonly link: SshLink | null,
    readonly sshTarget: string,
    private readonly timeouts: typeof DEFAULT_TIMEOUTS,
    private readonly progressIntervalMs: number,
    private readonly log: Logger,
  ) {
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  async listen(): Promise<void> {
    for (const spec of this.options.listeners) {
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.onClient(socket));
      this.servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) => {
          reject(new FtpfwdError('ERR_FTPFWD_LISTEN', `cannot listen on ${formatHostPort(spec.bindAddress, spec.bindPort)}: ${error.code ?? error.message}`, { cause: error }));
        });
        server.listen({ host: spec.bindAddress, port: spec.bindPort }, () => resolve());
      });
      server.on('error', (error) => this.log.error({ err: error }, 'listener error'));
      const address = server.address() as AddressInfo;
      this.listeners.push({ host: address.address, port: address.port, spec });
      this.log.info({ listen: formatHostPort(address.address, address.port), sftp: this.sshTarget, root: this.options.root ?? null }, 'listening (SFTP bridge)');
    }
  }

  private onClient(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const maxSessions = this.options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    if (this.sessions.size >= maxSessions) {
      this.stats.refusedSessions += 1;
      this.log.warn({ client: `${socket.remoteAddress}:${socket.remotePort}`, maxSessions }, 'refused a session: too many sessions');
      socket.on('error', () => undefined);
      socket.end(`421 Too many sessions (${maxSessions}); try again later.\r\n`);
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    socket.setNoDelay(true);
    this.sessionCount += 1;
    this.stats.sessions += 1;
    const session = new BridgeSession({
      id: this.sessionCount,
      client: socket,
      logins: this.logins,
      failures: this.failures,
      root: this.options.root ?? null,
      atomicUploads: this.options.atomicUploads ?? false,
      serverDescription: this.sshTarget,
      maxLineLength: this.options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH,
      timeouts: this.timeouts,
      tuning: { ...DEFAULT_TUNING, ...this.options.tuning },
      peerCheck: this.options.dataPeerCheck ?? sameAddressPeer,
      log: this.log.child({ session: this.sessionCount }),
      stats: this.stats,
      progressIntervalMs: this.progressIntervalMs,
    });
    this.sessions.add(session);
    void session.closed.then(() => this.sessions.delete(session));
    session.start();
  }

  status(): ForwarderStatus {
    return { kind: 'sftp-bridge', sshTarget: this.sshTarget, ssh: this.link?.status() ?? null, sessions: [...this.sessions].map((session) => session.status()), stats: { ...this.stats } };
  }

  close(options: CloseOptions = {}): Promise<void> {
    return this.shutDown('closed', null, options.graceMs ?? 0);
  }

  shutDown(reason: string, error: Error | null, graceMs = 0): Promise<void> {
    const explanation = error ? 'the SSH connection was lost.' : 'ftpfwd is shutting down.';
    if (this.closing && graceMs === 0) for (const session of this.sessions) void session.shutDown(0, explanation);
    this.closing ??= (async () => {
      const serversClosed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      await Promise.all([...this.sessions].map((session) => session.shutDown(error ? 0 : graceMs, explanation)));
      this.logins.close();
      this.link?.close();
      await Promise.all(serversClosed);
      this.log.info({ reason, ...this.stats }, 'SFTP bridge stopped');
      this.resolveClosed({ reason, error });
    })();
    return this.closing;
  }
}

