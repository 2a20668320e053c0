import type { Attributes, FileEntryWithStats, InputAttributes, SFTPWrapper } from 'ssh2';
import type { FileAttributes, ListEntry } from './listing.js';
import { parseLongname } from './listing.js';
import { FsError, toFsError } from './sftpErrors.js';

/** SFTP open flags (draft-ietf-secsh-filexfer-02, 6.3). */
export const OPEN = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;

/** SSH_FX_EOF, which ends reads and directory listings. */
const STATUS_EOF = 1;

/**
 * Promises over ssh2's SFTP client, for one SFTP channel. Every request
 * but the data reads and writes has its own deadline (those are watched
 * per transfer instead), and once the channel has closed every request
 * fails at once: ssh2 would otherwise never call back a request made on a
 * closed channel.
 */
export class SftpFs {
  private closedReason: string | null = null;
  private readonly closeListeners = new Set<() => void>();

  constructor(
    private readonly sftp: SFTPWrapper,
    private readonly requestTimeoutMs: number,
    /** Sends the requests `work` makes together (SshConnection.batchWrites); without it, each as made. */
    private readonly batchWrites: <T>(work: () => T) => T = (work) => work(),
  ) {
    // A window of its own, larger than ssh2's 2 MiB, for reads in flight on long links.
    sftp.setWindowLimit(RECEIVE_WINDOW);
    const onGone = (): void => this.markClosed('the SFTP channel closed');
    sftp.on('close', onGone);
    sftp.on('end', onGone);
    sftp.on('error', (error: Error) => this.markClosed(`SFTP channel error: ${error.message}`));
  }

  get isClosed(): boolean {
    return this.closedReason !== null;
  }

  /** Called once when the channel closes; returns a function that stops listening. */
  onClose(listener: () => void): () => void {
    if (this.isClosed) {
      queueMicrotask(listener);
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Ends the channel (the server's sftp-server process exits). */
  end(): void {
    this.markClosed('closed');
    try {
      this.sftp.end();
    } catch {
      // The connection under it is already gone: so is the channel.
    }
  }

  /** Makes the requests `work` issues leave together, in one write to the SSH connection. */
  batch<T>(work: () => T): T {
    return this.batchWrites(work);
  }

  /** Whether the server can replace a file atomically (`posix-rename@openssh.com`). */
  get hasPosixRename(): boolean {
    const extensions = (this.sftp as unknown as { _extensions?: Record<string, string> })._extensions;
    return extensions?.['posix-rename@openssh.com'] === '1';
  }

  private markClosed(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    for (const listener of this.closeListeners) listener();
    this.closeListeners.clear();
  }

  /** One request with a deadline; `call` gets the ssh2 callback. */
  private request<T>(what: string, call: (done: (error: Error | undefined | null, value?: T) => void) => void): Promise<T> {
    if (this.closedReason !== null) return Promise.reject(new FsError('connection-lost', `${what}: ${this.closedReason}`));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const stopWatching = this.onClose(() => finish(new FsError('connection-lost', `${what}: ${this.closedReason ?? 'closed'}`)));
      const timer = setTimeout(() => finish(new FsError('timeout', `${what}: no answer from the SFTP server within ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
      timer.unref();
      function finish(error: Error | null, value?: T): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stopWatching();
        if (error) reject(toFsError(error));
        else resolve(value as T);
      }
      try {
        call((error, value) => finish(error ?? null, value));
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  stat(path: string): Promise<FileAttributes> {
    return this.request<Attributes>('stat', (done) => this.sftp.stat(path, done)).then(toAttributes);
  }

  lstat(path: string): Promise<FileAttributes> {
    return this.request<Attributes>('lstat', (done) => this.sftp.lstat(path, done)).then(toAttributes);
  }

  realpath(path: string): Promise<string> {
    return this.request<string>('realpath', (done) => this.sftp.realpath(path, done));
  }

  readlink(path: string): Promise<string> {
    return this.request<string>('readlink', (done) => this.sftp.readlink(path, done));
  }

  open(path: string, flags: number, mode?: number): Promise<Buffer> {
    const attrs: InputAttributes = mode === undefined ? {} : { mode };
    return this.request<Buffer>('open', (done) => this.sftp.open(path, flags, attrs, done));
  }

  close(handle: Buffer): Promise<void> {
    return this.request<void>('close', (done) => this.sftp.close(handle, done));
  }

  fstat(handle: Buffer): Promise<FileAttributes> {
    return this.request<Attributes>('fstat', (done) => this.sftp.fstat(handle, done)).then(toAttributes);
  }

  fsetstat(handle: Buffer, attrs: InputAttributes): Promise<void> {
    return this.request<void>('fsetstat', (done) => this.sftp.fsetstat(handle, attrs, done));
  }

  setstat(path: string, attrs: InputAttributes): Promise<void> {
    return this.request<void>('setstat', (done) => this.sftp.setstat(path, attrs, done));
  }

  mkdir(path: string): Promise<void> {
    return this.request<void>('mkdir', (done) => this.sftp.mkdir(path, done));
  }

  rmdir(path: string): Promise<void> {
    return this.request<void>('rmdir', (done) => this.sftp.rmdir(path, done));
  }

  unlink(path: string): Promise<void> {
    return this.request<void>('remove', (done) => this.sftp.unlink(path, done));
  }

  /** SFTP rename: fails when `to` exists (draft-02 6.5). */
  rename(from: string, to: string): Promise<void> {
    return this.request<void>('rename', (done) => this.sftp.rename(from, to, done));
  }

  /** rename(2): replaces `to` atomically; needs hasPosixRename. */
  posixRename(from: string, to: string): Promise<void> {
    return this.request<void>('posix-rename', (done) => this.sftp.ext_openssh_rename(from, to, done));
  }

  opendir(path: string): Promise<Buffer> {
    return this.request<Buffer>('opendir', (done) => this.sftp.opendir(path, done));
  }

  /** The next batch of a directory's entries (`.` and `..` left out); null at its end. */
  readdir(handle: Buffer): Promise<ListEntry[] | null> {
    return this.request<FileEntryWithStats[] | null>('readdir', (done) =>
      this.sftp.readdir(handle, (error: (Error & { code?: unknown }) | undefined, list: FileEntryWithStats[]) => {
        if (error && error.code === STATUS_EOF) done(undefined, null);
        else done(error, list);
      }),
    ).then((list) => (list === null ? null : list.map(toListEntry)));
  }

  /**
   * The largest read and write the server takes in one request (OpenSSH
   * announces its limits, about 255 KiB; ssh2 assumes 32 KiB elsewhere).
   * Larger requests would be split by ssh2 into pieces sent one after the
   * other, undoing the pipelining.
   */
  get maxReadLength(): number {
    return limitOf(this.sftp, '_maxReadLen');
  }

  get maxWriteLength(): number {
    return limitOf(this.sftp, '_maxWriteLen');
  }

  /**
   * One read of up to `length` bytes at `position` into `buffer` (or a new
   * one), without a deadline of its own; calls back with fewer bytes for a
   * short read and with none at the end of the file.
   */
  read(handle: Buffer, length: number, position: number, callback: (error: FsError | null, data: Buffer) => void, into?: Buffer): void {
    if (this.closedReason !== null) return callback(new FsError('connection-lost', `read: ${this.closedReason}`), EMPTY);
    const buffer = into && into.length >= length ? into : Buffer.allocUnsafe(length);
    try {
      this.sftp.read(handle, buffer, 0, length, position, (error: (Error & { code?: unknown }) | undefined, bytesRead: number) => {
        if (error) {
          if (error.code === STATUS_EOF) callback(null, EMPTY);
          else callback(toFsError(error), EMPTY);
          return;
        }
        callback(null, bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
      });
    } catch (error) {
      callback(toFsError(error), EMPTY);
    }
  }

  /** One write of `data` at `position`, without a deadline of its own (see read). */
  write(handle: Buffer, data: Buffer, position: number, callback: (error: FsError | null) => void): void {
    if (this.closedReason !== null) return callback(new FsError('connection-lost', `write: ${this.closedReason}`));
    try {
      this.sftp.write(handle, data, 0, data.length, position, (error: Error | undefined | null) => callback(error ? toFsError(error) : null));
    } catch (error) {
      callback(toFsError(error));
    }
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * How much the server may send on an SFTP channel before we acknowledge
 * it. ssh2 opens every channel with 2 MiB and tops it up only once half is
 * used, which caps a download at about 1.5 MiB per round trip (40 MB/s at
 * 50 ms); OpenSSH's sftp has the same 2 MiB. What is in flight is bounded
 * by the pipelined requests anyway (PipelineTuning), so a larger window
 * costs no memory beyond them.
 */
const RECEIVE_WINDOW = 8 * 1024 * 1024;

/** ssh2's own default for servers that announce no limits. */
const DEFAULT_LIMIT = 32 * 1024;

function limitOf(sftp: SFTPWrapper, field: '_maxReadLen' | '_maxWriteLen'): number {
  const value = (sftp as unknown as Record<string, unknown>)[field];
  return typeof value === 'number' && value > 0 ? value : DEFAULT_LIMIT;
}

function toAttributes(stats: Attributes): FileAttributes {
  const attributes: FileAttributes = {};
  if (stats.mode !== undefined) attributes.mode = stats.mode;
  if (stats.size !== undefined) attributes.size = stats.size;
  if (stats.uid !== undefined) attributes.uid = stats.uid;
  if (stats.gid !== undefined) attributes.gid = stats.gid;
  if (stats.mtime !== undefined) attributes.mtime = stats.mtime;
  return attributes;
}

function toListEntry(file: FileEntryWithStats): ListEntry {
  const entry: ListEntry = { name: file.filename, attrs: toAttributes(file.attrs) };
  const parsed = parseLongname(file.longname);
  if (parsed) {
    entry.owner = parsed.owner;
    entry.group = parsed.group;
    entry.links = parsed.links;
  }
  return entry;
}
