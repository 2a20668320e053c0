/**
 * Failures of file operations on the SSH server, sorted into the classes
 * that decide the FTP reply (550, 451, 421/426 ...). ssh2 reports SFTP
 * status codes in `error.code`; anything without one means the channel or
 * the connection is gone.
 */

import { errorMessage } from '../errors.js';

export type FsFailureKind =
  /** SSH_FX_NO_SUCH_FILE */
  | 'no-such-file'
  /** SSH_FX_PERMISSION_DENIED */
  | 'permission-denied'
  /** SSH_FX_FAILURE: the server's catch-all (exists, not empty, disk full ...) */
  | 'failure'
  /** SSH_FX_OP_UNSUPPORTED, or an extension the server lacks */
  | 'unsupported'
  /** SSH_FX_BAD_MESSAGE and other protocol trouble */
  | 'bad-message'
  /** The SFTP channel or the SSH connection went away */
  | 'connection-lost'
  /** The server did not answer in time */
  | 'timeout'
  /** The path resolves (through a symbolic link) outside the session's root */
  | 'outside-root';

export class FsError extends Error {
  constructor(
    readonly kind: FsFailureKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FsError';
  }
}

const STATUS_KINDS: Record<number, FsFailureKind> = {
  2: 'no-such-file',
  3: 'permission-denied',
  4: 'failure',
  5: 'bad-message',
  6: 'connection-lost',
  7: 'connection-lost',
  8: 'unsupported',
};

/** An ssh2 SFTP error (or anything thrown on the way) as an FsError. */
export function toFsError(error: unknown): FsError {
  if (error instanceof FsError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = errorMessage(error);
  const kind = typeof code === 'number' ? (STATUS_KINDS[code] ?? 'failure') : 'connection-lost';
  return new FsError(kind, message, { cause: error });
}

/** Whether the failure means the session's SFTP channel (or SSH connection) is unusable. */
export function isConnectionFailure(kind: FsFailureKind): boolean {
  return kind === 'connection-lost' || kind === 'timeout';
}
