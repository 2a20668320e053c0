import { createServer, isIP, type AddressInfo, type Server, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { FtpfwdError } from './errors.js';
import type { ActiveStrategy } from './ftp/controlState.js';
import { silentLogger } from './log.js';
import { FtpSession, type SessionTimeouts } from './session/ftpSession.js';
import { createHostKeyVerifier, readKnownHostsFiles, type HostKeyAcceptedInfo, type StrictHostKeyCheckingSetting } from './ssh/hostKeyVerifier.js';
import { knownKeyTypesForHost, preferKnownHostKeyAlgorithms } from './ssh/knownHosts.js';
import { defaultIdentityFiles, loadIdentities } from './ssh/identities.js';
import { formatHostPort, SshConnection } from './ssh/sshConnection.js';

/** One local FTP listener and the FTP server it leads to (`-L`). */
export interface ForwardSpec {
  bindAddress: string;
  /** 0 picks a free port. */
  bindPort: number;
  /** Resolved and reached by the SSH server, not locally. */
  ftpHost: string;
  ftpPort: number;
}

export interface SshOptions {
  host: string;
  port?: number;
  username: string;
  /** Private key files named by the user; a missing one is an error. */
  identityFiles?: string[];
  /** Also try ~/.ssh/id_rsa, id_ecdsa, id_ed25519 (default: only when no identityFiles are given). */
  useDefaultIdentities?: boolean;
  passphrase?: string;
  /** ssh-agent socket path (SSH_AUTH_SOCK); no agent when absent. */
  agentSocket?: string;
  knownHostsFiles?: string[];
  strictHostKeyChecking?: StrictHostKeyCheckingSetting;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
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
  maxLineLength?: number;
  timeouts?: Partial<SessionTimeouts>;
  logger?: Logger;
  /** Home directory for default key and known_hosts paths. */
  homeDir?: string;
}

export interface BoundListener {
  /** Address and port the FTP client connects to. */
  host: string;
  port: number;
  forward: ForwardSpec;
  /** How active mode is carried for this listener. */
  activeStrategy: ActiveStrategy;
}

export interface Forwarder {
  readonly listeners: readonly BoundListener[];
  /** `user@host:port` of the SSH server. */
  readonly sshTarget: string;
  /** Resolves when the forwarder has stopped, by close() or because SSH dropped. */
  readonly closed: Promise<{ reason: string; error: Error | null }>;
  close(): Promise<void>;
}

const DEFAULT_TIMEOUTS: SessionTimeouts = {
  controlConnectMs: 15_000,
  connectMs: 15_000,
  acceptMs: 60_000,
  lingerMs: 30_000,
};

const DEFAULT_MAX_LINE_LENGTH = 4096;

/** ssh2's own default order of host key algorithms. */
const HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/**
 * Connects to the SSH server, opens every listener and serves FTP sessions
 * until close() or until the SSH connection ends.
 */
export async function startForwarder(options: ForwarderOptions): Promise<Forwarder> {
  if (options.forwards.length === 0) throw new FtpfwdError('ERR_FTPFWD_USAGE', 'no forward given (use -L [bind_address:]port:ftp_host:ftp_port)');
  if (options.activeAddress !== undefined && isIP(options.activeAddress) === 0) {
    throw new FtpfwdError('ERR_FTPFWD_USAGE', `--active-address must be an IP address, not ${options.activeAddress}`);
  }
  const log = options.logger ?? silentLogger();
  const ssh = await connectSsh(options, log);
  const runtime = new ForwarderRuntime(options, ssh, log);
  try {
    await runtime.listen();
  } catch (error) {
    await runtime.close();
    throw error;
  }
  return runtime;
}

async function connectSsh(options: ForwarderOptions, log: Logger): Promise<SshConnection> {
  const home = options.homeDir ?? homedir();
  const sshOptions = options.ssh;
  const port = sshOptions.port ?? 22;
  const explicit = sshOptions.identityFiles ?? [];
  const useDefaults = sshOptions.useDefaultIdentities ?? explicit.length === 0;
  const identities = [
    ...(await loadIdentities(explicit, { explicit: true, passphrase: sshOptions.passphrase })),
    ...(useDefaults ? await loadIdentities(defaultIdentityFiles(home), { explicit: false, passphrase: sshOptions.passphrase }) : []),
  ];
  const knownHostsFiles = sshOptions.knownHostsFiles ?? [join(home, '.ssh', 'known_hosts')];
  const known = await readKnownHostsFiles(knownHostsFiles);
  const verifier = createHostKeyVerifier({
    host: sshOptions.host,
    port,
    knownHostsFiles,
    strict: sshOptions.strictHostKeyChecking ?? 'yes',
    onAccepted: (info: HostKeyAcceptedInfo) => {
      const fields = { host: info.lookupName, keyType: info.keyType, fingerprint: info.fingerprint };
      if (info.outcome === 'added') log.warn({ ...fields, file: info.file }, 'permanently added host key to known_hosts');
      else if (info.outcome === 'unchecked') log.warn(fields, 'host key not checked (StrictHostKeyChecking=no)');
      else log.debug({ ...fields, file: info.file, line: info.line }, 'host key matches known_hosts');
    },
    onWarning: (warning) => log.warn({ file: warning.file, line: warning.line }, `skipped a malformed known_hosts line: ${warning.reason}`),
  });
  const connection = await SshConnection.connect(
    {
      host: sshOptions.host,
      port,
      username: sshOptions.username,
      identities: identities.map((identity) => ({ source: identity.path, key: identity.key })),
      agentSocket: sshOptions.agentSocket,
      verifyHostKey: (key) => verifier.verify(key),
      // Ask for the key type already on record, as OpenSSH does, so that a
      // server with several host keys is checked against the one we know.
      hostKeyAlgorithms: preferKnownHostKeyAlgorithms(HOST_KEY_ALGORITHMS, knownKeyTypesForHost(known.entries, sshOptions.host, port)),
      connectTimeoutMs: sshOptions.connectTimeoutMs ?? 15_000,
      keepaliveIntervalMs: sshOptions.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: sshOptions.keepaliveCountMax ?? 3,
    },
    log,
  );
  log.info({ ssh: `${sshOptions.username}@${formatHostPort(sshOptions.host, port)}` }, 'SSH connection established');
  return connection;
}

class ForwarderRuntime implements Forwarder {
  readonly listeners: BoundListener[] = [];
  readonly sshTarget: string;
  readonly closed: Promise<{ reason: string; error: Error | null }>;
  private readonly servers: Server[] = [];
  private readonly sessions = new Set<FtpSession>();
  private sessionCount = 0;
  private closing: Promise<void> | null = null;
  private resolveClosed!: (outcome: { reason: string; error: Error | null }) => void;
  private readonly timeouts: SessionTimeouts;

  constructor(
    private readonly options: ForwarderOptions,
    private readonly ssh: SshConnection,
    private readonly log: Logger,
  ) {
    this.sshTarget = `${options.ssh.username}@${formatHostPort(options.ssh.host, options.ssh.port ?? 22)}`;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    ssh.onClose((error) => {
      this.log.warn({ reason: error?.message ?? 'closed by the server' }, 'SSH connection lost');
      void this.shutDown('SSH connection lost', error ?? new FtpfwdError('ERR_FTPFWD_SSH', 'the SSH connection was closed by the server'));
    });
  }

  async listen(): Promise<void> {
    for (const forward of this.options.forwards) {
      const activeStrategy = chooseActiveStrategy(this.options, forward);
      const server = createServer({ allowHalfOpen: true }, (socket) => this.onClient(socket, forward, activeStrategy));
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
      this.log.info({ listen: formatHostPort(address.address, address.port), ftp: formatHostPort(forward.ftpHost, forward.ftpPort), activeStrategy }, 'listening');
    }
  }

  private onClient(socket: Socket, forward: ForwardSpec, activeStrategy: ActiveStrategy): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sessionCount += 1;
    const session = new FtpSession({
      id: this.sessionCount,
      client: socket,
      ssh: this.ssh,
      ftpHost: forward.ftpHost,
      ftpPort: forward.ftpPort,
      activeStrategy,
      activeBindAddress: this.options.activeAddress ?? '127.0.0.1',
      honourPassiveAddress: this.options.honourPassiveAddress ?? false,
      maxLineLength: this.options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH,
      timeouts: this.timeouts,
      log: this.log.child({ session: this.sessionCount }),
    });
    this.sessions.add(session);
    void session.closed.then(() => this.sessions.delete(session));
    void session.start();
  }

  close(): Promise<void> {
    return this.shutDown('closed', null);
  }

  private shutDown(reason: string, error: Error | null): Promise<void> {
    this.closing ??= (async () => {
      const serversClosed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      const explanation = error ? 'the SSH connection was lost.' : 'the forwarder is shutting down.';
      for (const session of this.sessions) session.abort(reason, explanation);
      await Promise.all(this.sessions.size > 0 ? [...this.sessions].map((session) => session.closed) : []);
      this.ssh.close();
      await Promise.all(serversClosed);
      this.log.info({ reason }, 'forwarder stopped');
      this.resolveClosed({ reason, error });
    })();
    return this.closing;
  }
}

function chooseActiveStrategy(options: ForwarderOptions, forward: ForwardSpec): ActiveStrategy {
  const mode = options.activeMode ?? 'auto';
  if (mode !== 'auto') return mode;
  if (options.activeAddress !== undefined) return 'forward';
  return isLoopbackHost(forward.ftpHost) ? 'forward' : 'convert';
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
