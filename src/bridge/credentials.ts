import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The one FTP login a bridge with its own SSH credentials accepts (`--ftp-password-file`). */
export interface FtpAccount {
  user: string;
  password: string;
}

/** A key of this process only: the digests compared below are worth nothing elsewhere. */
const COMPARE_KEY = randomBytes(32);

function digest(text: string): Buffer {
  return createHmac('sha256', COMPARE_KEY).update(text, 'utf8').digest();
}

/**
 * Checks a login in constant time: both the name and the password are
 * compared as fixed-length digests, and both comparisons always run, so
 * the time taken says nothing about which part was wrong or how much of
 * it matched.
 */
export function checkFtpLogin(account: FtpAccount, user: string, password: string): boolean {
  const userOk = timingSafeEqual(digest(account.user), digest(user));
  const passwordOk = timingSafeEqual(digest(account.password), digest(password));
  return userOk && passwordOk;
}

export interface FailureDelayPolicy {
  /** The delay after a first failure; each further one doubles it, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Failures older than this are forgotten. */
  windowMs: number;
  /** Addresses remembered at once; the oldest are forgotten first, so memory stays bounded. */
  maxAddresses: number;
}

export const DEFAULT_FAILURE_DELAYS: FailureDelayPolicy = { baseDelayMs: 1_000, maxDelayMs: 5_000, windowMs: 10 * 60_000, maxAddresses: 4096 };

/**
 * Recent failed logins per client address, shared by every session of a
 * bridge: a client that opens a new connection for each guess is slowed
 * down as much as one that guesses on one connection.
 */
export class LoginFailures {
  private readonly failures = new Map<string, { count: number; lastAt: number }>();

  constructor(private readonly policy: FailureDelayPolicy = DEFAULT_FAILURE_DELAYS) {}

  /** Records a failure from `address`; returns how long to wait before answering it. */
  recordFailure(address: string, now: number): number {
    const previous = this.failures.get(address);
    const count = previous && now - previous.lastAt < this.policy.windowMs ? previous.count + 1 : 1;
    // Re-inserting moves the address to the end: the map's order is the age order.
    this.failures.delete(address);
    this.failures.set(address, { count, lastAt: now });
    while (this.failures.size > this.policy.maxAddresses) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
    return Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** Math.min(count - 1, 20));
  }

  recordSuccess(address: string): void {
    this.failures.delete(address);
  }
}
