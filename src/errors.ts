/**
 * Stable error codes, so callers (and the CLI's exit-code table) can match on
 * the failure class rather than on message text.
 */
export type FtpfwdErrorCode =
  | 'ERR_FTPFWD_USAGE'
  | 'ERR_FTPFWD_CONFIG'
  | 'ERR_FTPFWD_RESOLVE'
  | 'ERR_FTPFWD_CONNECT'
  | 'ERR_FTPFWD_TIMEOUT'
  | 'ERR_FTPFWD_HOST_KEY_UNKNOWN'
  | 'ERR_FTPFWD_HOST_KEY_CHANGED'
  | 'ERR_FTPFWD_HOST_KEY_REVOKED'
  | 'ERR_FTPFWD_AUTH'
  | 'ERR_FTPFWD_SSH'
  | 'ERR_FTPFWD_FORWARD_REFUSED'
  | 'ERR_FTPFWD_LISTEN'
  /** The FTP server did not answer as FTP (a missing or refusing greeting, an unusable passive reply): found by --check. */
  | 'ERR_FTPFWD_FTP';

export interface FtpfwdErrorOptions {
  cause?: unknown;
  /** Machine-readable facts about the failure (never secrets). */
  details?: Record<string, string | number | boolean>;
}

export class FtpfwdError extends Error {
  readonly code: FtpfwdErrorCode;
  readonly details: Record<string, string | number | boolean>;

  constructor(code: FtpfwdErrorCode, message: string, options: FtpfwdErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FtpfwdError';
    this.code = code;
    this.details = options.details ?? {};
  }
}

export function isFtpfwdError(value: unknown): value is FtpfwdError {
  return value instanceof FtpfwdError;
}

/** Documented process exit codes (README "Exit codes"). */
export const EXIT_CODES = {
  ok: 0,
  failure: 1,
  usage: 2,
  config: 3,
  resolve: 4,
  connect: 5,
  hostKey: 6,
  auth: 7,
  forwardRefused: 8,
  listen: 9,
  ftp: 10,
} as const;

export function exitCodeFor(error: unknown): number {
  if (!isFtpfwdError(error)) return EXIT_CODES.failure;
  switch (error.code) {
    case 'ERR_FTPFWD_USAGE':
      return EXIT_CODES.usage;
    case 'ERR_FTPFWD_CONFIG':
      return EXIT_CODES.config;
    case 'ERR_FTPFWD_RESOLVE':
      return EXIT_CODES.resolve;
    case 'ERR_FTPFWD_CONNECT':
    case 'ERR_FTPFWD_TIMEOUT':
    case 'ERR_FTPFWD_SSH':
      return EXIT_CODES.connect;
    case 'ERR_FTPFWD_HOST_KEY_UNKNOWN':
    case 'ERR_FTPFWD_HOST_KEY_CHANGED':
    case 'ERR_FTPFWD_HOST_KEY_REVOKED':
      return EXIT_CODES.hostKey;
    case 'ERR_FTPFWD_AUTH':
      return EXIT_CODES.auth;
    case 'ERR_FTPFWD_FORWARD_REFUSED':
      return EXIT_CODES.forwardRefused;
    case 'ERR_FTPFWD_LISTEN':
      return EXIT_CODES.listen;
    case 'ERR_FTPFWD_FTP':
      return EXIT_CODES.ftp;
  }
}

/** The text of any thrown value, for logs and messages: one place, so that messages cannot drift apart. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The errno-style code (`ENOENT`, `EACCES`) a thrown value carries, if any. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}
