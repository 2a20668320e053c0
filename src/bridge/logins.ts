import type { Logger } from 'pino';
import { errorMessage, isFtpfwdError } from '../errors.js';
import { connectThroughHops } from '../ssh/hops.js';
import type { SshLink } from '../ssh/sshLink.js';
import type { SshConnection, SshConnectOptions } from '../ssh/sshConnection.js';
import { formatHostPort } from '../net/addresses.js';
import { checkFtpLogin, type FtpAccount } from './credentials.js';
import { SftpFs } from './sftpFs.js';
import { SftpPool, type PoolOptions, type SftpLease } from './sftpPool.js';

export type LoginOutcome =
  | { ok: true; lease: SftpLease; sshUser: string }
  /** `denied`: wrong credentials; `unavailable`: the SSH side could not serve the session. */
  | { ok: false; reason: 'denied' | 'unavailable'; detail: string };

/** Turns an FTP login into an SFTP channel to serve the session with. */
export interface LoginProvider {
  login(user: string, password: string): Promise<LoginOutcome>;
  /** Releases what the provider holds for sessions to come. */
  close(): void;
}

type Hop = Omit<SshConnectOptions, 'transport'>;

/**
 * ftpfwd's own SSH login carries every session: the FTP login is checked
 * against the one configured account, then the session gets a channel of
 * the shared connection's SFTP pool.
 */
export class SharedConnectionLogins implements LoginProvider {
  private readonly pools = new Map<SshConnection, SftpPool>();

  constructor(
    private readonly account: FtpAccount,
    private readonly link: SshLink,
    private readonly sshUser: string,
    private readonly pool: PoolOptions,
    private readonly waitForLinkMs: number,
    private readonly log: Logger,
  ) {}

  async login(user: string, password: string): Promise<LoginOutcome> {
    if (!checkFtpLogin(this.account, user, password)) return { ok: false, reason: 'denied', detail: 'wrong FTP user name or password' };
    const connection = await this.link.acquire(this.waitForLinkMs);
    if (!connection) return { ok: false, reason: 'unavailable', detail: 'the SSH connection is down' };
    try {
      return { ok: true, lease: await this.poolFor(connection).acquire(), sshUser: this.sshUser };
    } catch (error) {
      return { ok: false, reason: 'unavailable', detail: `no SFTP channel: ${errorMessage(error)}` };
    }
  }

  /** One pool per SSH connection: after a reconnect, sessions get channels of the new one. */
  private poolFor(connection: SshConnection): SftpPool {
    let pool = this.pools.get(connection);
    if (!pool) {
      const created = new SftpPool(connection, this.pool, this.log);
      pool = created;
      this.pools.set(connection, created);
      connection.onClose(() => {
        created.close();
        this.pools.delete(connection);
      });
    }
    return pool;
  }

  close(): void {
    for (const pool of this.pools.values()) pool.close();
    this.pools.clear();
  }
}

/**
 * The FTP login is the SSH login: each session opens an SSH connection of
 * its own with the client's USER and PASS (password, or a
 * keyboard-interactive password prompt), through the same jump hosts and
 * host-key checks as any other connection, and closes it when it ends.
 */
export class PerSessionLogins implements LoginProvider {
  constructor(
    /** The jump hosts, then the target, as prepared at start-up; the target's own keys are not used. */
    private readonly hops: readonly Hop[],
    private readonly openTimeoutMs: number,
    private readonly requestTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  async login(user: string, password: string): Promise<LoginOutcome> {
    const target = this.hops.at(-1)!;
    const asUser: Hop = {
      ...target,
      auth: {
        ...target.auth,
        username: user,
        identities: [],
        agentSocket: undefined,
        publicKey: false,
        keyboardInteractive: true,
        password: true,
        knownPassword: password,
        prompt: undefined,
        passwordAttempts: 1,
        target: `${user}@${formatHostPort(target.host, target.port)}`,
      },
    };
    let connection: SshConnection;
    try {
      connection = await connectThroughHops([...this.hops.slice(0, -1), asUser], this.log);
    } catch (error) {
      const denied = isFtpfwdError(error) && error.code === 'ERR_FTPFWD_AUTH';
      return { ok: false, reason: denied ? 'denied' : 'unavailable', detail: errorMessage(error) };
    }
    try {
      const fs = new SftpFs(await connection.openSftp(this.openTimeoutMs), this.requestTimeoutMs, (work) => connection.batchWrites(work));
      connection.onClose(() => fs.end());
      return {
        ok: true,
        sshUser: user,
        lease: {
          fs,
          release: () => {
            fs.end();
            connection.close();
          },
        },
      };
    } catch (error) {
      connection.close();
      return { ok: false, reason: 'unavailable', detail: errorMessage(error) };
    }
  }

  close(): void {}
}
