import { connect as connectTcp, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Client, type ClientChannel, type ServerHostKeyAlgorithm, type SFTPWrapper, type TcpConnectionDetails } from 'ssh2';
import { createAuthHandler, type AuthOptions, type AuthProgress } from './authentication.js';
import { toSsh2HostVerifier, type HostKeyVerifier } from './hostKeyVerifier.js';
import { ProxyCommandTransport, type ProxyCommandOptions } from './proxyCommand.js';
import type { Logger } from 'pino';
import { FtpfwdError } from '../errors.js';
import './ssh2Patched.js';
import { formatHostPort } from '../net/addresses.js';

export interface SshConnectOptions {
  host: string;
  port: number;
  /** Who we are and how we prove it. */
  auth: AuthOptions;
  /** Decides whether the server's host key is trusted. */
  hostKeyVerifier: HostKeyVerifier;
  /** Host key algorithms to offer, most wanted first (those on record for the host). */
  hostKeyAlgorithms?: string[];
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  /** An already-open transport (e.g. a channel through a jump host) instead of TCP. */
  transport?: Duplex;
  /** Reach the server through this command's stdin and stdout instead of TCP (ssh_config ProxyCommand). */
  proxyCommand?: ProxyCommandOptions;
}

export type IncomingForwardHandler = (
  details: TcpConnectionDetails,
  accept: () => ClientChannel,
  reject: () => void,
) => void;

/** A `tcpip-forward` bound on the SSH server, owned by whoever asked for it. */
export interface RemoteForward {
  readonly address: string;
  readonly port: number;
  /** Cancels the forward on the server; safe to call more than once. */
  close(): void;
}

/**
 * One authenticated SSH connection shared by every listener and session.
 * It opens channels and remote forwards on request and reports its own end;
 * it knows nothing about FTP.
 */
export class SshConnection {
  private readonly incomingHandlers = new Map<string, IncomingForwardHandler>();
  private closed = false;
  private readonly closeListeners = new Set<(reason: Error | null) => void>();

  /** The shortest channel-open round trip seen: the path's round-trip time, plus a connect on the server's side. */
  private shortestOpenMs = Number.POSITIVE_INFINITY;
  /** The round trip of the last keepalive, once one was answered. */
  private lastKeepaliveMs: number | null = null;

  private constructor(
    private readonly client: Client,
    /** The TCP socket (or jump-host channel, or ProxyCommand) the SSH connection runs on. */
    private readonly transport: Duplex,
    private readonly log: Logger,
  ) {
    client.on('tcp connection', (details, accept, reject) => this.dispatchIncoming(details, accept, reject));
    client.on('error', (error) => this.markClosed(error));
    client.on('close', () => this.markClosed(null));
    client.on('keepalive', (roundTripMs) => {
      this.lastKeepaliveMs = roundTripMs;
    });
    this.stopAcknowledging = acknowledgePromptly(client, transport);
  }

  /** Stops sending the SSH_MSG_IGNORE acknowledgements (see acknowledgePromptly), once sshd has Nagle off. */
  private readonly stopAcknowledging: () => void;

  /**
   * The best estimate of the path's round-trip time, for sizing receive
   * windows; 0 until something has been measured.
   */
  get roundTripMs(): number {
    const measured = Math.min(this.shortestOpenMs, this.lastKeepaliveMs ?? Number.POSITIVE_INFINITY);
    return Number.isFinite(measured) ? measured : 0;
  }

  /**
   * Asks sshd to send small packets at once (TCP_NODELAY on its side of
   * the connection), which it does only when a session starts a command or
   * a subsystem: starts the `sftp` subsystem on a session channel and
   * closes it again. Under a forced command (ForceCommand, `command=` in
   * authorized_keys) that command runs instead, which is why this is only
   * ever done when asked. Resolves with whether the server started it.
   */
  requestServerNoDelay(timeoutMs: number): Promise<boolean> {
    return withTimeout(
      new Promise<boolean>((resolve) => {
        if (this.closed) return resolve(false);
        try {
          this.client.subsys('sftp', (error, channel) => {
            if (error) return resolve(false);
            channel.on('error', () => undefined);
            channel.end();
            channel.close();
            this.stopAcknowledging();
            resolve(true);
          });
        } catch {
          resolve(false);
        }
      }),
      timeoutMs,
      () => new FtpfwdError('ERR_FTPFWD_TIMEOUT', `SSH server did not start its sftp subsystem within ${timeoutMs} ms`),
      () => undefined,
    ).catch(() => false);
  }

  /** The round trip of the last keepalive, or null if none was answered yet. */
  get keepaliveRoundTripMs(): number | null {
    return this.lastKeepaliveMs;
  }

  static async connect(options: SshConnectOptions, log: Logger): Promise<SshConnection> {
    const proxy = options.transport === undefined && options.proxyCommand !== undefined ? ProxyCommandTransport.start(options.proxyCommand, log) : undefined;
    const transport = options.transport ?? proxy ?? (await openTcp(options.host, options.port, options.connectTimeoutMs));
    const client = new Client();
    // ssh2 may emit several errors for one failure (a handshake timeout,
    // then the reset of the socket it destroyed), and more after the
    // handshake attempt has given up: every one of them needs a listener
    // for the life of the client, or the process dies of the second.
    client.on('error', (error: Error) => log.debug({ reason: error.message }, 'SSH client error'));
    transport.on('error', () => undefined);
    // However the connection ends, its transport goes with it (a ProxyCommand is hung up on).
    client.once('close', () => transport.destroy());
    const attempt = new HandshakeAttempt(options, log, proxy);
    try {
      await attempt.run(client, transport);
    } catch (error) {
      client.end();
      transport.destroy();
      throw error;
    }
    return new SshConnection(client, transport, log);
  }

  onClose(listener: (reason: Error | null) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Opens a `direct-tcpip` channel: the SSH server connects to host:port for us. */
  openDirectTcpip(origin: { host: string; port: number }, host: string, port: number, timeoutMs: number): Promise<ClientChannel> {
    return withTimeout(
      new Promise<ClientChannel>((resolve, reject) => {
        if (this.closed) return reject(sshClosedError());
        const startedAt = performance.now();
        this.client.forwardOut(origin.host, origin.port, host, port, (error, channel) => {
          this.shortestOpenMs = Math.min(this.shortestOpenMs, performance.now() - startedAt);
          if (error) {
            const failure = channelOpenFailure(error);
            reject(
              new FtpfwdError('ERR_FTPFWD_FORWARD_REFUSED', `SSH server refused to connect to ${formatHostPort(host, port)}: ${failure}: ${openFailureText(error)}`, {
                cause: error,
                details: { channelOpenFailure: failure },
              }),
            );
          } else {
            resolve(channel);
          }
        });
      }),
      timeoutMs,
      () => new FtpfwdError('ERR_FTPFWD_TIMEOUT', `SSH server did not open a channel to ${formatHostPort(host, port)} within ${timeoutMs} ms`),
      (channel) => channel.destroy(),
    );
  }

  /**
   * Runs `work`, holding back what it writes to the SSH connection until it
   * returns, so that the packets of requests made together (an SFTP open,
   * stat and realpath) leave in one write rather than one system call each.
   */
  batchWrites<T>(work: () => T): T {
    this.transport.cork();
    try {
      return work();
    } finally {
      process.nextTick(() => this.transport.uncork());
    }
  }

  /** Starts the server's `sftp` subsystem on a session channel of its own. */
  openSftp(timeoutMs: number): Promise<SFTPWrapper> {
    return withTimeout(
      new Promise<SFTPWrapper>((resolve, reject) => {
        if (this.closed) return reject(sshClosedError());
        const refused = (error: Error): void =>
          reject(new FtpfwdError('ERR_FTPFWD_FORWARD_REFUSED', `SSH server refused the SFTP subsystem: ${error.message}`, { cause: error }));
        try {
          this.client.sftp((error, sftp) => (error ? refused(error) : resolve(sftp)));
        } catch (error) {
          // ssh2 throws at once when the socket is no longer writable.
          refused(error instanceof Error ? error : new Error(String(error)));
        }
      }),
      timeoutMs,
      () => new FtpfwdError('ERR_FTPFWD_TIMEOUT', `SSH server did not start the SFTP subsystem within ${timeoutMs} ms`),
      (sftp) => sftp.end(),
    );
  }

  /**
   * Asks the SSH server to listen on address (port chosen by the server) and
   * hand every connection there to `handler`.
   */
  bindRemoteForward(address: string, handler: IncomingForwardHandler, timeoutMs: number): Promise<RemoteForward> {
    return withTimeout(
      new Promise<RemoteForward>((resolve, reject) => {
        if (this.closed) return reject(sshClosedError());
        this.client.forwardIn(address, 0, (error, port) => {
          if (error) {
            reject(new FtpfwdError('ERR_FTPFWD_FORWARD_REFUSED', `SSH server refused a remote forward on ${address}: ${error.message}`, { cause: error }));
            return;
          }
          const key = forwardKey(address, port);
          this.incomingHandlers.set(key, handler);
          let open = true;
          resolve({
            address,
            port,
            close: () => {
              if (!open) return;
              open = false;
              this.incomingHandlers.delete(key);
              if (!this.closed) {
                this.client.unforwardIn(address, port, (unbindError) => {
                  if (unbindError) this.log.debug({ err: unbindError, address, port }, 'cancelling remote forward failed');
                });
              }
            },
          });
        });
      }),
      timeoutMs,
      () => new FtpfwdError('ERR_FTPFWD_TIMEOUT', `SSH server did not answer a remote-forward request within ${timeoutMs} ms`),
      (forward) => forward.close(),
    );
  }

  close(): void {
    this.client.end();
  }

  private dispatchIncoming(details: TcpConnectionDetails, accept: () => ClientChannel, reject: () => void): void {
    const handler = this.incomingHandlers.get(forwardKey(details.destIP, details.destPort));
    if (!handler) {
      this.log.warn({ destIP: details.destIP, destPort: details.destPort, srcIP: details.srcIP }, 'refused a forwarded connection nobody expects');
      reject();
      return;
    }
    handler(details, accept, reject);
  }

  private markClosed(reason: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    this.incomingHandlers.clear();
    for (const listener of this.closeListeners) listener(reason);
    this.closeListeners.clear();
  }
}

/** Runs the SSH handshake and authentication, turning ssh2's errors into ours. */
class HandshakeAttempt {
  private hostKeyError: unknown = null;
  private readonly progress: AuthProgress = { tried: [] };

  constructor(
    private readonly options: SshConnectOptions,
    private readonly log: Logger,
    /** When the server is reached through a ProxyCommand: its end is the explanation of a failed handshake. */
    private readonly proxy?: ProxyCommandTransport,
  ) {}

  run(client: Client, transport: Duplex): Promise<void> {
    const { options } = this;
    const target = `${options.auth.username}@${formatHostPort(options.host, options.port)}`;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const onError = (error: Error & { level?: string }): void => {
        if (settled) return;
        settled = true;
        client.removeListener('ready', onReady);
        client.removeListener('close', onClose);
        reject(this.classify(error, target));
      };
      // A server that closes before any error was reported (a reset before
      // the banner, say) must fail the attempt too, not leave it waiting.
      const onClose = (): void => onError(new Error('the server closed the connection during the handshake'));
      const onReady = (): void => {
        if (settled) return;
        settled = true;
        client.removeListener('error', onError);
        client.removeListener('close', onClose);
        const accepted = this.progress.current;
        // Which certificate got in is worth a line of its own; a plain key is in the debug log only.
        if (accepted !== undefined) {
          if (accepted.fields['keyId'] === undefined) this.log.debug({ method: accepted.method, ...accepted.fields }, 'authenticated');
          else this.log.info({ method: accepted.method, ...accepted.fields }, 'authenticated with a certificate');
        }
        resolve();
      };
      client.on('error', onError);
      client.once('close', onClose);
      client.once('ready', onReady);
      // Every step of the server's has a deadline (banner, key exchange, each
      // authentication answer), but the time a person takes at a prompt does
      // not count: ssh2's own readyTimeout would cut a slow typist off.
      const stepMs = this.options.connectTimeoutMs > 0 ? this.options.connectTimeoutMs : DEFAULT_HANDSHAKE_STEP_MS;
      const watchdog = new Watchdog(stepMs, () => {
        const error: Error & { level?: string } = new Error('timed out');
        error.level = 'client-timeout';
        onError(error);
        transport.destroy();
      });
      const stopWatching = (): void => watchdog.dispose();
      client.once('ready', stopWatching);
      client.once('close', stopWatching);
      client.on('error', stopWatching);
      client.on('handshake', (negotiated) => {
        watchdog.restart();
        this.log.debug({ cipher: negotiated.cs.cipher, kex: negotiated.kex, serverHostKey: negotiated.serverHostKey }, 'SSH algorithms negotiated');
      });
      const { prompt } = options.auth;
      const auth: AuthOptions = prompt
        ? {
            ...options.auth,
            prompt: async (request) => {
              watchdog.stop();
              try {
                return await prompt(request);
              } finally {
                watchdog.restart();
              }
            },
          }
        : options.auth;
      watchdog.restart();
      client.connect({
        sock: transport,
        host: options.host,
        port: options.port,
        username: options.auth.username,
        readyTimeout: 0,
        keepaliveInterval: options.keepaliveIntervalMs,
        keepaliveCountMax: options.keepaliveCountMax,
        ...(options.hostKeyAlgorithms ? { algorithms: { serverHostKey: options.hostKeyAlgorithms as ServerHostKeyAlgorithm[] } } : {}),
        hostVerifier: toSsh2HostVerifier(options.hostKeyVerifier, (error) => {
          this.hostKeyError = error;
        }),
        authHandler: createAuthHandler(auth, this.progress, this.log),
      });
    });
  }

  private classify(error: Error & { level?: string }, target: string): FtpfwdError {
    if (this.hostKeyError instanceof FtpfwdError) return this.hostKeyError;
    const proxyFailure = this.proxy?.failure();
    if (proxyFailure !== null && proxyFailure !== undefined) {
      return new FtpfwdError('ERR_FTPFWD_CONNECT', `SSH connection to ${target} failed: ${proxyFailure} before the handshake was done`, { cause: error });
    }
    const tried = this.progress.tried.length > 0 ? this.progress.tried.join(', ') : 'none available';
    if (error.level === 'client-authentication') {
      return new FtpfwdError('ERR_FTPFWD_AUTH', `authentication to ${target} failed (tried: ${tried})`, { cause: error });
    }
    // A server that hangs up once authentication is under way refused us: sshd
    // says "Too many authentication failures" once MaxAuthTries are spent.
    if (typeof (error as Error & { code?: unknown }).code === 'number' && this.progress.tried.length > 0) {
      return new FtpfwdError('ERR_FTPFWD_AUTH', `authentication to ${target} failed: the server hung up: ${error.message} (tried: ${tried})`, { cause: error });
    }
    if (error.level === 'client-timeout') {
      const stepMs = this.options.connectTimeoutMs > 0 ? this.options.connectTimeoutMs : DEFAULT_HANDSHAKE_STEP_MS;
      return new FtpfwdError('ERR_FTPFWD_TIMEOUT', `SSH handshake with ${target} timed out: the server did not answer within ${stepMs} ms`, { cause: error });
    }
    return new FtpfwdError('ERR_FTPFWD_SSH', `SSH connection to ${target} failed: ${error.message}`, { cause: error });
  }
}

/**
 * sshd leaves Nagle's algorithm on for a connection that only forwards (it
 * turns it off only when a session runs a command or a subsystem), so a
 * small packet it sends while an earlier one is unacknowledged waits for
 * that acknowledgement, and Linux delays it by 40 ms when we have nothing
 * to send back: a small file's 150, data, end and 226 cost three such
 * waits. So whenever data has arrived and nothing of ours has gone out by
 * the end of that turn of the event loop, an SSH_MSG_IGNORE goes out,
 * and the acknowledgement with it. The server runs nothing for it and
 * discards it; in a steady stream our window adjustments and the kernel's
 * own acknowledgements make it rare.
 */
function acknowledgePromptly(client: Client, transport: Duplex): () => void {
  const sent = (): number => (transport instanceof Socket ? transport.bytesWritten : -1);
  let pending = false;
  let stopped = false;
  transport.on('data', () => {
    if (pending || stopped) return;
    pending = true;
    const before = sent();
    setImmediate(() => {
      pending = false;
      if (before === -1 || sent() === before) client.sendIgnore();
    });
  });
  return () => {
    stopped = true;
  };
}

/** ConnectTimeout=0 leaves TCP to the system, but a silent server must still not hold a handshake forever. */
const DEFAULT_HANDSHAKE_STEP_MS = 60_000;

/** A deadline that can be stopped and started again, e.g. around a prompt. */
class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  private disposed = false;

  constructor(
    private readonly ms: number,
    private readonly onExpired: () => void,
  ) {}

  restart(): void {
    if (this.disposed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(this.onExpired, this.ms);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Stops for good: the attempt is over. */
  dispose(): void {
    this.disposed = true;
    this.stop();
  }
}

function openTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = connectTcp({ host, port });
    // 0 means no timeout of our own (the system's TCP timeout), as for ssh's ConnectTimeout and ssh2's readyTimeout.
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            socket.destroy();
            reject(new FtpfwdError('ERR_FTPFWD_TIMEOUT', `connecting to ${formatHostPort(host, port)} timed out after ${timeoutMs} ms`));
          }, timeoutMs)
        : undefined;
    timer?.unref();
    const onError = (error: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      reject(classifySocketError(error, host, port));
    };
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      // Until ssh2 takes the socket over, an error must still land somewhere.
      socket.on('error', () => undefined);
      // FTP opens a channel per transfer; Nagle would delay each first byte.
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', onError);
  });
}

function classifySocketError(error: NodeJS.ErrnoException, host: string, port: number): FtpfwdError {
  const where = formatHostPort(host, port);
  switch (error.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return new FtpfwdError('ERR_FTPFWD_RESOLVE', `could not resolve hostname ${host}`, { cause: error });
    case 'ECONNREFUSED':
      return new FtpfwdError('ERR_FTPFWD_CONNECT', `connection to ${where} refused`, { cause: error });
    default:
      return new FtpfwdError('ERR_FTPFWD_CONNECT', `cannot connect to ${where}: ${error.code ?? error.message}`, { cause: error });
  }
}

/** Why an SSH server refused a channel (RFC 4254 section 5.1), in the words OpenSSH's client prints. */
export type ChannelOpenFailure = 'administratively prohibited' | 'connect failed' | 'unknown channel type' | 'resource shortage' | 'refused';

const CHANNEL_OPEN_FAILURES: Record<number, ChannelOpenFailure> = {
  1: 'administratively prohibited',
  2: 'connect failed',
  3: 'unknown channel type',
  4: 'resource shortage',
};

/** ssh2 reports the reason code as `reason` on the error it passes to forwardOut's callback. */
function channelOpenFailure(error: Error): ChannelOpenFailure {
  const reason: unknown = (error as Error & { reason?: unknown }).reason;
  return (typeof reason === 'number' ? CHANNEL_OPEN_FAILURES[reason] : undefined) ?? 'refused';
}

/** The server's own description (sshd: "open failed", or strerror of its connect), without ssh2's prefix. */
function openFailureText(error: Error): string {
  return error.message.replace(/^\(SSH\) Channel open failure: /, '') || 'no reason given';
}

function sshClosedError(): FtpfwdError {
  return new FtpfwdError('ERR_FTPFWD_SSH', 'the SSH connection is closed');
}

function forwardKey(address: string, port: number): string {
  return `${address}|${port}`;
}


/**
 * Bounds a callback-style operation in time. A result that arrives after the
 * deadline is disposed of, so a late channel or forward never leaks.
 */
function withTimeout<T>(operation: Promise<T>, timeoutMs: number, timeoutError: () => Error, disposeLate: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(timeoutError());
    }, timeoutMs);
    timer.unref();
    operation.then(
      (value) => {
        if (settled) return disposeLate(value);
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
