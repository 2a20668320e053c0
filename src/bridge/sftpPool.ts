import type { Logger } from 'pino';
import type { SshConnection } from '../ssh/sshConnection.js';
import { SftpFs } from './sftpFs.js';
import { errorMessage } from '../errors.js';

/** An SFTP channel lent to one FTP session. */
export interface SftpLease {
  readonly fs: SftpFs;
  /** Gives the channel back (or closes it, if it was the session's own). */
  release(): void;
}

export interface PoolOptions {
  /** SFTP channels opened on one SSH connection at most; sessions beyond share them. */
  maxChannels: number;
  openTimeoutMs: number;
  requestTimeoutMs: number;
  /** An unused channel stays open this long for the next session, then closes. */
  idleMs: number;
}

/**
 * OpenSSH's sshd allows `MaxSessions` (default 10) session channels per
 * connection, and an SFTP subsystem is one. Each FTP session gets a
 * channel of its own while there are few (one window each, so parallel
 * transfers do not share one); past `maxChannels`, or once the server has
 * refused another, sessions share the least used channel: SFTP requests
 * carry their own ids, so one channel serves many sessions at once.
 */
export class SftpPool {
  private readonly channels: Array<{ fs: SftpFs; users: number; idleTimer: NodeJS.Timeout | undefined }> = [];
  /** Channels being opened, settled or not. */
  private readonly openings = new Set<Promise<unknown>>();
  private limit: number;

  constructor(
    private readonly connection: SshConnection,
    private readonly options: PoolOptions,
    private readonly log: Logger,
  ) {
    this.limit = options.maxChannels;
  }

  async acquire(): Promise<SftpLease> {
    const idle = this.channels.find((channel) => channel.users === 0 && !channel.fs.isClosed);
    if (idle) return this.lend(idle);
    if (this.channels.length + this.openings.size < this.limit) {
      const opening = this.connection.openSftp(this.options.openTimeoutMs);
      this.openings.add(opening);
      try {
        const fs = new SftpFs(await opening, this.options.requestTimeoutMs, (work) => this.connection.batchWrites(work));
        const channel = { fs, users: 0, idleTimer: undefined as NodeJS.Timeout | undefined };
        this.channels.push(channel);
        fs.onClose(() => this.forget(channel));
        return this.lend(channel);
      } catch (error) {
        const shared = this.leastUsed();
        if (!shared) throw error;
        this.limit = Math.max(1, this.channels.length);
        this.log.warn({ channels: this.channels.length, reason: errorMessage(error) }, 'the SSH server refused another SFTP channel; sessions now share the open ones');
        return this.lend(shared);
      } finally {
        this.openings.delete(opening);
      }
    }
    const shared = this.leastUsed();
    if (shared) return this.lend(shared);
    // Every slot is still being opened: wait for one of them, then look again.
    if (this.openings.size === 0) throw new Error('no SFTP channel is open or being opened');
    await Promise.race([...this.openings].map((opening) => opening.catch(() => undefined)));
    return this.acquire();
  }

  /** Closes every channel (the connection is going away). */
  close(): void {
    for (const channel of [...this.channels]) {
      clearTimeout(channel.idleTimer);
      channel.fs.end();
    }
    this.channels.length = 0;
  }

  private leastUsed(): (typeof this.channels)[number] | undefined {
    const open = this.channels.filter((channel) => !channel.fs.isClosed);
    return open.sort((a, b) => a.users - b.users)[0];
  }

  private lend(channel: (typeof this.channels)[number]): SftpLease {
    channel.users += 1;
    clearTimeout(channel.idleTimer);
    channel.idleTimer = undefined;
    let released = false;
    return {
      fs: channel.fs,
      release: () => {
        if (released) return;
        released = true;
        channel.users -= 1;
        if (channel.users > 0 || channel.fs.isClosed) return;
        channel.idleTimer = setTimeout(() => {
          this.forget(channel);
          channel.fs.end();
        }, this.options.idleMs);
        channel.idleTimer.unref();
      },
    };
  }

  private forget(channel: (typeof this.channels)[number]): void {
    clearTimeout(channel.idleTimer);
    const index = this.channels.indexOf(channel);
    if (index !== -1) this.channels.splice(index, 1);
  }
}
