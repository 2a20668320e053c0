import { lookup } from 'node:dns/promises';
import { createServer, isIP, type AddressInfo, type Server, type Socket } from 'node:net';
import { homedir } from 'node:os';
import type { Logger } from 'pino';
import { errorMessage, FtpfwdError } from './errors.js';
import type { ActiveStrategy } from './ftp/controlState.js';
import { silentLogger } from './log.js';
import { isLoopbackAddress, isLoopbackHost, sameAddress } from './net/addresses.js';
import { FtpSession, type RemoteForwardBudget, type SessionTimeouts } from './session/ftpSession.js';
import { garbagePacer, type GarbagePacer } from './session/garbagePacer.js';
import { probeRemoteForward } from './session/activeProbe.js';
import type { ClientTlsSettings, ServerTlsSettings } from './session/tls.js';
import { resolveClientTls, resolveServerTls, type ClientTlsOptions, type FtpTlsOptions } from './session/tlsSettings.js';
import { emptyStats, type ForwarderStats } from './session/stats.js';
import { progressInterval, type SessionStatus } from './session/transferProgress.js';
import type { Prompter } from './ssh/authentication.js';
import { connectThroughHops, describeHop, prepareHop, type SshHopOptions } from './ssh/hops.js';
import { DEFAULT_RECONNECT, SshLink, type ReconnectPolicy, type SshLinkStatus } from './ssh/sshLink.js';
import type { SshConnection } from './ssh/sshConnection.js';
import { formatHostPort } from './net/addresses.js';
import { windowBudget } from './ssh/windowTuner.js';
import { clampTimerMs } from './timers.js';

/** One local FTP listener and the FTP server it leads to (`-L`). */
export interface ForwardSpec {
  bindAddress: string;
  /** 0 picks a free port. */
  bindPort: number;
  /** Resolved and reached by the SSH server, not locally. */
  ftpHost: string;
  ftpPort: number;
  /** TLS to this FTP server; default ForwarderOptions.ftpTls. */
  tls?: FtpTlsOptions;
}

/** The SSH server that reaches the FTP server, and the jump hosts on the way to it. */
export interface SshOptions extends SshHopOptions {
  /** Jump hosts (ProxyJump), first to last; each has its own login and host-key check. */
  jumpHosts?: SshHopOptions[];
}

/**
 * How PORT/EPRT are carried. `auto`: a remote forward when the FTP server
 * runs on the SSH host or an active address is given, else conversion to
 * passive upstream.
 */
export type ActiveMode = 'auto' | 'forward' | 'convert';

export interface ForwarderOptions {
  ssh: SshOptions;
  forwards: ForwardSpec[];
  activeMode?: ActiveMode;
  /** Address on the SSH server's side that the FTP server connects to in active mode. */
  activeAddress?: string;
  /** Connect data channels to the address in a 227 reply instead of the control host. */
  honourPassiveAddress?: boolean;
  /** TLS to every FTP server whose forward does not say otherwise (FTPS: ftpfwd is the TLS client). */
  ftpTls?: FtpTlsOptions;
  /** TLS for ftpfwd's own clients: AUTH TLS, or implicit TLS; without it AUTH is refused. */
  clientTls?: ClientTlsOptions;
  maxLineLength?: number;
  timeouts?: Partial<SessionTimeouts>;
  logger?: Logger;
  /** Home directory for default key and known_hosts paths. */
  homeDir?: string;
  /** Asks a person for passphrases and passwords; absent: never ask (batch mode). */
  prompt?: Prompter;
  /** What to do when the SSH connection drops (default: reconnect with backoff). */
  reconnect?: Partial<ReconnectPolicy>;
  /** Sessions at once; more are answered 421 and closed (default 64). */
  maxSessions?: number;
  /** A transfer still running after this long logs its progress, and again after each further interval (default 10 s; 0: never). */
  progressIntervalMs?: number;
  /**
   * A quick garbage collection, called every 2 MiB moved: with it, a
   * transfer holds a few megabytes of dead buffers rather than tens. In a
   * process started with --expose-gc: `() => gc({ type: 'minor' })`.
   */
  collectGarbage?: () => void;
  /**
   * Ask sshd to send small packets at once by starting its sftp subsystem
   * once per connection (sshd turns Nagle off only for a session that runs
   * something). Opt-in: under a forced command, that command runs instead.
   * Without it, ftpfwd acknowledges sshd's packets at once, which saves most
   * of the waiting on loopback and LANs but not a round trip per small
   * packet on a long link.
   */
  sshdNoDelay?: boolean;
}

export interface CloseOptions {
  /** Let transfers under way finish for up to this long before closing their sessions (default 0). */
  graceMs?: number;
}

export interface BoundListener {
  /** Address and port the FTP client connects to. */
  host: string;
  port: number;
  forward: ForwardSpec;
  /** How active mode is carried for this listener. */
  activeStrategy: ActiveStrategy;
}

/** What a forwarder (or SFTP bridge) is doing at one moment; formatting it is the caller's business. */
export interface ForwarderStatus {
  kind: 'forwarder' | 'sftp-bridge';
  sshTarget: string;
  /** The SSH connection the sessions share; null when each session logs in on its own (SFTP bridge with SSH logins). */
  ssh: SshLinkStatus | null;
  /** Open sessions, each with its transfers under way. */
  sessions: SessionStatus[];
  /** Totals since start. */
  stats: ForwarderStats;
}

export interface Forwarder {
  readonly listeners: readonly BoundListener[];
  /** `user@host:port` of the SSH server. */
  readonly sshTarget: string;
  /** Resolves when the forwarder has stopped, by close() or because SSH dropped. */
  readonly closed: Promise<{ reason: string; error: Error | null }>;
  /** Totals so far: sessions, transfers, bytes each way. */
  readonly stats: Readonly<ForwarderStats>;
  /** A snapshot of the SSH link, the open sessions and their transfers; reads state only. */
  status(): ForwarderStatus;
  /** Stops listening at once, then ends every session; idempotent. */
  close(options?: CloseOptions): Promise<void>;
}

const DEFAULT_TIMEOUTS: SessionTimeouts = {
  controlConnectMs: 15_000,
  connectMs: 15_000,
  acceptMs: 60_000,
  lingerMs: 30_000,
  idleMs: 30 * 60_000,
  replyMs: 60_000,
};

const DEFAULT_MAX_SESSIONS = 64;

const DEFAULT_MAX_LINE_LENGTH = 4096;

/** Extra receive window shared by all data channels: enough for two channels at 32 MiB. */
const EXTRA_WINDOW_BYTES = 60 * 1024 * 1024;


/**
 * Connects to the SSH server, opens every listener and serves FTP sessions
 * until close() or until the SSH connection ends.
 */
export async function startForwarder(options: ForwarderOptions): Promise<Forwarder> {
  validateForwarderOptions(options);
  const timeouts = sessionTimeouts(options.timeouts);
  const log = options.logger ?? silentLogger();
  const hops = await prepareSshHops(options, log);
  let runtime: ForwarderRuntime | null = null;
  const link = new SshLink(
    () => connectThroughHops(hops, log).then((connection) => smallPacketPath(connection, options.sshdNoDelay ?? false, timeouts.connectMs, log)),
    { ...DEFAULT_RECONNECT, ...options.reconnect },
    log,
    (error) => void runtime?.shutDown('SSH connection lost', error),
  );
  await link.start();
  const ssh = { ssh: describeHop(options.ssh), jumpHosts: (options.ssh.jumpHosts ?? []).map(describeHop), cipher: link.status().cipher };
  log.info(ssh, 'SSH connection established');
  runtime = new ForwarderRuntime(options, timeouts, link, log);
  try {
    await runtime.listen();
  } catch (error) {
    await runtime.close();
    throw error;
  }
  // The start-up in one record: a person reads it as one line.
  const listeners = runtime.listeners.map(({ host, port, forward, activeStrategy }) => ({ listen: formatHostPort(host, port), ftp: formatHostPort(forward.ftpHost, forward.ftpPort), activeStrategy }));
  log.info({ ...ssh, listeners }, 'forwarder ready');
  return runtime;
}

/** What startForwarder and checkSetup refuse before connecting anywhere. */
export function validateForwarderOptions(options: ForwarderOptions): void {
  if (options.forwards.length === 0) throw new FtpfwdError('ERR_FTPFWD_USAGE', 'no forward given (use -L [bind_address:]port:ftp_host:ftp_port)');
  if (options.activeAddress !== undefined && isIP(options.activeAddress) === 0) {
    throw new FtpfwdError('ERR_FTPFWD_USAGE', `--active-address must be an IP address, not ${options.activeAddress}`);
  }
  progressInterval(options.progressIntervalMs);
  resolveTls(options);
}

/** The TLS settings of each forward (in order) and of the clients; bad certificates, keys and pins fail here, before anything starts. */
export function resolveTls(options: Pick<ForwarderOptions, 'forwards' | 'ftpTls' | 'clientTls'>): { forwards: Array<ServerTlsSettings | null>; client: ClientTlsSettings | null } {
  return {
    forwards: options.forwards.map((forward) => {
      const tls = forward.tls ?? options.ftpTls;
      return tls === undefined ? null : resolveServerTls(tls, forward.ftpHost);
    }),
    client: options.clientTls === undefined ? null : resolveClientTls(options.clientTls),
  };
}

/** Every hop to the SSH server, jump hosts first, each prepared once (keys read, passphrases asked). */
export async function prepareSshHops(options: ForwarderOptions, log: Logger): Promise<Array<Awaited<ReturnType<typeof prepareHop>>>> {
  const context = { homeDir: options.homeDir ?? homedir(), prompt: options.prompt, log };
  const hops: Array<Awaited<ReturnType<typeof prepareHop>>> = [];
  for (const hop of [...(options.ssh.jumpHosts ?? []), options.ssh]) hops.push(await prepareHop(hop, context));
  return hops;
}

/** What every session of one listener shares. */
interface ListenerSettings {
  activeStrategy: ActiveStrategy;
  acceptActiveSource(source: string): boolean;
  serverTls: ServerTlsSettings | null;
  clientTls: ClientTlsSettings | null;
}

class ForwarderRuntime implements Forwarder {
  readonly listeners: BoundListener[] = [];
  readonly sshTarget: string;
  readonly closed: Promise<{ reason: string; error: Error | null }>;
  private readonly servers: Server[] = [];
  private readonly sessions = new Set<FtpSession>();
  readonly stats: ForwarderStats = emptyStats();
  private sessionCount = 0;
  /** Clients accepted and waiting for the SSH link. */
  private pendingSessions = 0;
  private closing: Promise<void> | null = null;
  private resolveClosed!: (outcome: { reason: string; error: Error | null }) => void;
  private readonly remoteForwards: RemoteForwardBudget;
  /**
   * What data channels may have beyond their first 2 MiB, all together: a
   * window is memory when its reader stalls, and ssh2 queues whatever the
   * peer sends within it.
   */
  private readonly windowBudget = windowBudget(EXTRA_WINDOW_BYTES);
  private readonly progressIntervalMs: number;
  private readonly pacer: GarbagePacer;

  constructor(
    private readonly options: ForwarderOptions,
    private readonly timeouts: SessionTimeouts,
    private readonly link: SshLink,
    private readonly log: Logger,
  ) {
    this.sshTarget = describeHop(options.ssh);
    this.remoteForwards = remoteForwardBudget(options.maxSessions ?? DEFAULT_MAX_SESSIONS);
    this.progressIntervalMs = progressInterval(options.progressIntervalMs);
    this.pacer = garbagePacer(options.collectGarbage);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  async listen(): Promise<void> {
    const remoteForwardWorks = await this.checkRemoteForward();
    const tls = resolveTls(this.options);
    for (const [index, forward] of this.options.forwards.entries()) {
      const serverTls = tls.forwards[index] ?? null;
      let activeStrategy = chooseActiveStrategy(this.options, forward);
      if (activeStrategy === 'forward' && !remoteForwardWorks) activeStrategy = 'convert';
      const acceptActiveSource = activeStrategy === 'forward' ? await this.activeSourceCheck(forward.ftpHost) : () => false;
      const server = createServer({ allowHalfOpen: true }, (socket) => this.onClient(socket, forward, { activeStrategy, acceptActiveSource, serverTls, clientTls: tls.client }));
      this.servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) => {
          reject(
            new FtpfwdError('ERR_FTPFWD_LISTEN', `cannot listen on ${formatHostPort(forward.bindAddress, forward.bindPort)}: ${error.code ?? error.message}`, {
              cause: error,
            }),
          );
        });
        server.listen({ host: forward.bindAddress, port: forward.bindPort }, () => resolve());
      });
      server.on('error', (error) => this.log.error({ err: error }, 'listener error'));
      const address = server.address() as AddressInfo;
      this.listeners.push({ host: address.address, port: address.port, forward, activeStrategy });
      const tlsFields = { ...(serverTls === null ? {} : { ftpTls: serverTls.mode }), ...(tls.client === null ? {} : { clientTls: tls.client.implicit ? 'implicit' : 'explicit' }) };
      this.log.info({ listen: formatHostPort(address.address, address.port), ftp: formatHostPort(forward.ftpHost, forward.ftpPort), activeStrategy, ...tlsFields }, 'listening');
    }
  }

  /**
   * Whether active mode can use remote forwards on the active address. An
   * explicit --active-mode forward that cannot work is an error; under
   * auto the forwarder says so once and converts to passive instead.
   */
  private async checkRemoteForward(): Promise<boolean> {
    const needed = this.options.forwards.some((forward) => chooseActiveStrategy(this.options, forward) === 'forward');
    if (!needed) return true;
    const ssh = await this.link.acquire(this.timeouts.connectMs);
    if (!ssh) return false;
    const address = this.options.activeAddress ?? '127.0.0.1';
    const probe = await probeRemoteForward(ssh, address, this.timeouts.connectMs);
    if (probe.ok) return true;
    if (this.options.activeMode === 'forward') {
      throw new FtpfwdError('ERR_FTPFWD_FORWARD_REFUSED', `active mode through a remote forward cannot work: ${probe.reason}`);
    }
    this.log.warn({ activeAddress: address, reason: probe.reason }, `active mode: ${probe.reason}; PORT/EPRT will be converted to passive upstream instead`);
    return false;
  }

  /**
   * Who may connect through an active-mode remote forward: the FTP server.
   * sshd reports the address a connection came from; the FTP server
   * connects from the address its control connection arrived at.
   */
  private async activeSourceCheck(ftpHost: string): Promise<(source: string) => boolean> {
    if (isIP(ftpHost) !== 0) return (source) => sameAddress(source, ftpHost);
    // The SSH server may reach "localhost" over IPv4 or IPv6.
    if (isLoopbackHost(ftpHost)) return isLoopbackAddress;
    const addresses = await lookupWithin(ftpHost, this.timeouts.connectMs);
    if (addresses.length > 0) return (source) => addresses.some((address) => sameAddress(source, address));
    this.log.warn(
      { ftpHost },
      `${ftpHost} does not resolve here, so the source of active-mode data connections cannot be checked; give the FTP server's IP address in -L to have it checked`,
    );
    return () => true;
  }

  private onClient(socket: Socket, forward: ForwardSpec, listener: ListenerSettings): void {
    const { activeStrategy, acceptActiveSource } = listener;
    // From the first moment: a client that resets while it waits for the
    // SSH link must not take the process down.
    socket.on('error', () => undefined);
    if (this.closing) {
      socket.destroy();
      return;
    }
    const maxSessions = this.options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    if (this.sessions.size + this.pendingSessions >= maxSessions) {
      this.stats.refusedSessions += 1;
      this.log.warn({ client: `${socket.remoteAddress}:${socket.remotePort}`, maxSessions }, 'refused a session: too many sessions');
      refuse(socket, `421 Too many sessions (${maxSessions}); try again later.`);
      return;
    }
    // Replies often go out in pairs (150 then 226); with Nagle the second
    // waits for the client's delayed ACK, about 40 ms per transfer.
    socket.setNoDelay(true);
    this.sessionCount += 1;
    this.pendingSessions += 1;
    const id = this.sessionCount;
    const log = this.log.child({ session: id });
    // While the link is down, a new client waits for it as long as a
    // connection attempt may take, then gets a 421 rather than silence.
    socket.pause();
    void this.link.acquire(this.timeouts.controlConnectMs).then((ssh) => {
      this.pendingSessions -= 1;
      if (socket.destroyed) {
        log.debug('the client left while waiting for the SSH connection');
        return;
      }
      if (!ssh || this.closing) {
        this.stats.refusedSessions += 1;
        log.warn({ client: `${socket.remoteAddress}:${socket.remotePort}` }, 'refused a session: the SSH connection is down');
        refuse(socket, '421 Service not available: the SSH connection is down; try again shortly.');
        return;
      }
      this.stats.sessions += 1;
      const session = new FtpSession({
        id,
        client: socket,
        ssh,
        ftpHost: forward.ftpHost,
        ftpPort: forward.ftpPort,
        activeStrategy,
        activeBindAddress: this.options.activeAddress ?? '127.0.0.1',
        acceptActiveSource,
        remoteForwards: this.remoteForwards,
        windowBudget: this.windowBudget,
        pacer: this.pacer,
        honourPassiveAddress: this.options.honourPassiveAddress ?? false,
        maxLineLength: this.options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH,
        serverTls: listener.serverTls,
        clientTls: listener.clientTls,
        timeouts: this.timeouts,
        log,
        stats: this.stats,
        progressIntervalMs: this.progressIntervalMs,
      });
      this.sessions.add(session);
      const stopWatching = ssh.onClose(() => session.abort('SSH connection lost', 'the SSH connection was lost.'));
      void session.closed.then(() => {
        stopWatching();
        this.sessions.delete(session);
      });
      void session.start();
    });
  }

  status(): ForwarderStatus {
    return { kind: 'forwarder', sshTarget: this.sshTarget, ssh: this.link.status(), sessions: [...this.sessions].map((session) => session.status()), stats: { ...this.stats } };
  }

  close(options: CloseOptions = {}): Promise<void> {
    return this.shutDown('closed', null, options.graceMs ?? 0);
  }

  shutDown(reason: string, error: Error | null, graceMs = 0): Promise<void> {
    const explanation = error ? 'the SSH connection was lost.' : 'the forwarder is shutting down.';
    // A close without grace while a graceful one waits (a second signal)
    // ends the sessions still finishing their transfers now.
    if (this.closing && graceMs === 0) for (const session of this.sessions) void session.shutDown(0, explanation);
    this.closing ??= (async () => {
      const serversClosed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      if (graceMs > 0 && this.sessions.size > 0) this.log.info({ sessions: this.sessions.size, graceMs }, 'shutting down: letting transfers finish');
      await Promise.all([...this.sessions].map((session) => session.shutDown(error ? 0 : graceMs, explanation)));
      this.link.close();
      await Promise.all(serversClosed);
      this.log.info({ reason, ...this.stats }, 'forwarder stopped');
      this.resolveClosed({ reason, error });
    })();
    return this.closing;
  }
}

/** Turns a client away with a reply, then closes; bounded so a silent client cannot hold the socket. */
function refuse(socket: Socket, reply: string): void {
  socket.on('error', () => undefined);
  socket.end(`${reply}\r\n`);
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/** How sshd's small packets reach us without waiting on Nagle's algorithm; the log says which way was taken. */
async function smallPacketPath(connection: SshConnection, sshdNoDelay: boolean, timeoutMs: number, log: Logger): Promise<SshConnection> {
  if (!sshdNoDelay) {
    log.debug('small packets from sshd: acknowledged at once (SSH_MSG_IGNORE)');
  } else if (await connection.requestServerNoDelay(timeoutMs)) {
    log.info('small packets from sshd: sent at once (its sftp subsystem was started and closed to turn Nagle off)');
  } else {
    log.warn('small packets from sshd: the SSH server refused its sftp subsystem; acknowledging its packets at once instead');
  }
  return connection;
}

/** Library users' durations, with defaults filled in and each clamped to what a timer can hold. */
function sessionTimeouts(given: Partial<SessionTimeouts> | undefined): SessionTimeouts {
  const merged = { ...DEFAULT_TIMEOUTS, ...given };
  const clamped = {} as SessionTimeouts;
  for (const key of Object.keys(DEFAULT_TIMEOUTS) as Array<keyof SessionTimeouts>) {
    try {
      clamped[key] = clampTimerMs(merged[key]);
    } catch (error) {
      throw new FtpfwdError('ERR_FTPFWD_USAGE', `timeouts.${key}: ${errorMessage(error)}`);
    }
  }
  return clamped;
}

/** At most `limit` remote forwards held at once over the SSH connection: each is a listening socket in sshd. */
function remoteForwardBudget(limit: number): RemoteForwardBudget {
  let held = 0;
  return {
    take: () => {
      if (held >= limit) return false;
      held += 1;
      return true;
    },
    give: () => {
      held = Math.max(0, held - 1);
    },
  };
}

/** Local resolution of a host name, bounded in time; empty when it does not resolve here. */
async function lookupWithin(host: string, timeoutMs: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string[]>((resolve) => {
    timer = setTimeout(() => resolve([]), timeoutMs);
    timer.unref();
  });
  const resolved = lookup(host, { all: true }).then(
    (entries) => entries.map((entry) => entry.address),
    () => [],
  );
  try {
    return await Promise.race([resolved, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** How active mode is carried for one forward, before the remote-forward probe has had its say. */
export function chooseActiveStrategy(options: ForwarderOptions, forward: ForwardSpec): ActiveStrategy {
  const mode = options.activeMode ?? 'auto';
  if (mode !== 'auto') return mode;
  if (options.activeAddress !== undefined) return 'forward';
  return isLoopbackHost(forward.ftpHost) ? 'forward' : 'convert';
}
