import type { Logger } from 'pino';
import { errorMessage, FtpfwdError, isFtpfwdError } from '../errors.js';
import type { SshConnection } from './sshConnection.js';

export interface ReconnectPolicy {
  /** false: a lost connection ends the forwarder (for supervisors such as systemd). */
  enabled: boolean;
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RECONNECT: ReconnectPolicy = { enabled: true, initialDelayMs: 1_000, maxDelayMs: 60_000 };

/**
 * Failures that another attempt cannot fix, and must not paper over: a
 * changed host key stays changed, a rejected key stays rejected.
 */
function isPermanent(error: unknown): boolean {
  if (!isFtpfwdError(error)) return false;
  switch (error.code) {
    case 'ERR_FTPFWD_HOST_KEY_UNKNOWN':
    case 'ERR_FTPFWD_HOST_KEY_CHANGED':
    case 'ERR_FTPFWD_HOST_KEY_REVOKED':
    case 'ERR_FTPFWD_AUTH':
    case 'ERR_FTPFWD_CONFIG':
      return true;
    default:
      return false;
  }
}

/** Exponential backoff with full jitter in the upper half, so many forwarders do not retry in step. */
export function backoffDelay(policy: ReconnectPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export type LinkState = 'up' | 'reconnecting' | 'closed';

/** The link at one moment, for a status report. */
export interface SshLinkStatus {
  state: LinkState;
  /** When the connection in use was established (ms since the epoch); null while there is none. */
  upSince: number | null;
  /** How often the connection was lost and re-established. */
  reconnects: number;
  /** The round trip of the last keepalive answered on the connection in use. */
  keepaliveRoundTripMs: number | null;
  cipher: string | null;
}

/**
 * Keeps one SSH connection (possibly through jump hosts) available: hands
 * it out to new sessions, notices when it drops, and reconnects with
 * bounded backoff while the listeners stay up.
 */
export class SshLink {
  private connection: SshConnection | null = null;
  private state: LinkState = 'reconnecting';
  private readonly waiters = new Set<(connection: SshConnection | null) => void>();
  private retryTimer: NodeJS.Timeout | undefined;
  private upSince: number | null = null;
  private reconnects = 0;

  constructor(
    private readonly connect: () => Promise<SshConnection>,
    private readonly policy: ReconnectPolicy,
    private readonly log: Logger,
    /** Called once when the link gives up: reconnecting is off, or failed permanently. */
    private readonly onFatal: (error: Error) => void,
  ) {}

  /** The first connection; its failure is the caller's to report. */
  async start(): Promise<void> {
    this.adopt(await this.connect());
  }

  status(): SshLinkStatus {
    const connection = this.state === 'up' ? this.connection : null;
    return {
      state: this.state,
      upSince: connection ? this.upSince : null,
      reconnects: this.reconnects,
      keepaliveRoundTripMs: connection?.keepaliveRoundTripMs ?? null,
      cipher: connection?.cipher ?? null,
    };
  }

  /** The live connection, waiting up to timeoutMs while reconnecting; null if none came. */
  acquire(timeoutMs: number): Promise<SshConnection | null> {
    if (this.state === 'up' && this.connection) return Promise.resolve(this.connection);
    if (this.state === 'closed') return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        resolve(null);
      }, timeoutMs);
      timer.unref();
      const waiter = (connection: SshConnection | null): void => {
        clearTimeout(timer);
        resolve(connection);
      };
      this.waiters.add(waiter);
    });
  }

  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.retryTimer);
    this.connection?.close();
    this.connection = null;
    this.wake(null);
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private adopt(connection: SshConnection): void {
    if (this.state === 'closed') {
      connection.close();
      return;
    }
    this.connection = connection;
    this.state = 'up';
    this.upSince = Date.now();
    connection.onClose((reason) => this.lost(connection, reason));
    this.wake(connection);
  }

  private lost(connection: SshConnection, reason: Error | null): void {
    if (this.connection !== connection || this.state === 'closed') return;
    this.connection = null;
    const error = new FtpfwdError('ERR_FTPFWD_SSH', `SSH connection lost: ${reason?.message ?? 'closed by the server'}`, { cause: reason ?? undefined });
    if (!this.policy.enabled) {
      this.state = 'closed';
      this.wake(null);
      this.onFatal(error);
      return;
    }
    this.state = 'reconnecting';
    this.log.warn({ reason: reason?.message ?? 'closed by the server' }, 'SSH connection lost; reconnecting');
    this.scheduleRetry(0);
  }

  private scheduleRetry(attempt: number): void {
    const delayMs = backoffDelay(this.policy, attempt);
    this.log.info({ attempt: attempt + 1, delayMs }, 'next SSH connection attempt scheduled');
    this.retryTimer = setTimeout(() => void this.retry(attempt), delayMs);
  }

  private async retry(attempt: number): Promise<void> {
    if (this.state === 'closed') return;
    try {
      const connection = await this.connect();
      this.log.info({ attempts: attempt + 1 }, 'SSH connection re-established');
      this.reconnects += 1;
      this.adopt(connection);
    } catch (error) {
      // close() may have been called while the attempt was under way.
      if (this.isClosed()) return;
      if (isPermanent(error)) {
        this.log.error({ reason: errorMessage(error) }, 'reconnecting failed permanently');
        this.state = 'closed';
        this.wake(null);
        this.onFatal(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      this.log.warn({ reason: errorMessage(error) }, 'SSH connection attempt failed');
      this.scheduleRetry(attempt + 1);
    }
  }

  private wake(connection: SshConnection | null): void {
    for (const waiter of this.waiters) waiter(connection);
    this.waiters.clear();
  }
}
