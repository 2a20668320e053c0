import { AsciiEncoder } from './textMode.js';
import { fileKind, sortEntries, type ListEntry } from './listing.js';
import { baseName, isInsideRoot, isPrintableName, matchGlob, parentPath, toRemotePath } from './paths.js';
import { MAX_STAT_ENTRIES, type FsOp, type FsResult } from './protocol.js';
import { FsError, toFsError } from './sftpErrors.js';
import type { SftpFs } from './sftpFs.js';

/** SIZE in TYPE A reads the whole file to count its line ends: only up to this size. */
export const ASCII_SIZE_LIMIT = 8 * 1024 * 1024;
/** Reads in flight while SIZE counts line ends. */
const ASCII_SIZE_BATCH = 8;
/** Symbolic links whose targets are read at once for a listing. */
const READLINK_CONCURRENCY = 16;
/** Entries sorted together before they are sent: a listing is sorted whole up to this size. */
export const LISTING_SORT_BATCH = 10_000;

/**
 * A session's view of the SSH server's files: virtual paths mapped under
 * the root (already resolved with realpath), and confinement. Without a
 * root (`/`) every path is the server's own. With one, each operation
 * first asks the server where the path really leads (realpath follows
 * symbolic links), and refuses what leads outside the root.
 */
export class SessionFiles {
  constructor(
    readonly fs: SftpFs,
    /** The root's real server path; `/` when unconfined. */
    readonly root: string,
  ) {}

  remote(virtual: string): string {
    return toRemotePath(this.root, virtual);
  }

  /**
   * The server path for an operation on `virtual` itself: the whole path
   * is resolved (through links), so this is for opening, listing, stat and
   * setstat. A missing last component is fine (a file about to be
   * created); a missing directory on the way is not.
   */
  async confined(virtual: string): Promise<string> {
    const remote = this.remote(virtual);
    if (this.root === '/') return remote;
    let real: string;
    try {
      real = await this.fs.realpath(remote);
    } catch (error) {
      const failure = toFsError(error);
      if (failure.kind !== 'no-such-file' || virtual === '/') throw failure;
      // Servers whose realpath refuses a missing last component: resolve the directory instead.
      real = `${await this.fs.realpath(this.remote(parentPath(virtual)))}/${baseName(virtual)}`;
    }
    this.check(real);
    return remote;
  }

  /**
   * The server path for an operation on the directory entry `virtual`
   * names (remove, rename, mkdir): only its directory is resolved, so a
   * symbolic link can be removed or renamed whatever it points at.
   */
  async confinedEntry(virtual: string): Promise<string> {
    const remote = this.remote(virtual);
    if (this.root === '/') return remote;
    this.check(await this.fs.realpath(this.remote(parentPath(virtual))));
    return remote;
  }

  private check(real: string): void {
    if (!isInsideRoot(this.root, real)) throw new FsError('outside-root', 'the path leads outside the served directory');
  }

  /** stat (following links), or lstat for a link whose target is gone. */
  async entry(virtual: string, remote: string): Promise<ListEntry> {
    try {
      return { name: baseName(virtual) || '/', attrs: await this.fs.stat(remote) };
    } catch (error) {
      const failure = toFsError(error);
      if (failure.kind !== 'no-such-file') throw failure;
      return { name: baseName(virtual) || '/', attrs: await this.fs.lstat(remote) };
    }
  }

  /** Carries out a file operation; failures come back as results, never as exceptions. */
  async run(op: FsOp): Promise<FsResult> {
    try {
      return await this.perform(op);
    } catch (error) {
      return { ok: false, kind: toFsError(error).kind };
    }
  }

  private async perform(op: FsOp): Promise<FsResult> {
    switch (op.op) {
      case 'cwd':
      case 'mdtm':
      case 'mlst': {
        const remote = await this.confined(op.path);
        return { ok: true, entry: await this.entry(op.path, remote) };
      }
      case 'size': {
        const remote = await this.confined(op.path);
        const entry = { name: baseName(op.path), attrs: await this.fs.stat(remote) };
        if (!op.ascii || fileKind(entry.attrs.mode) !== 'file') return { ok: true, entry, size: entry.attrs.size ?? 0 };
        if ((entry.attrs.size ?? 0) > ASCII_SIZE_LIMIT) return { ok: true, entry };
        return { ok: true, entry, size: await this.asciiSize(remote, entry.attrs.size ?? 0) };
      }
      case 'stat': {
        const remote = await this.confined(op.path);
        const entry = await this.entry(op.path, remote);
        if (fileKind(entry.attrs.mode) !== 'dir') return { ok: true, entry, entries: [entry] };
        const entries: ListEntry[] = [];
        let truncated = false;
        await this.list(await this.fs.opendir(remote), remote, null, async (batch) => {
          for (const listed of batch) {
            if (entries.length >= MAX_STAT_ENTRIES) truncated = true;
            else entries.push(listed);
          }
          return !truncated;
        });
        return { ok: true, entry, entries, truncated };
      }
      case 'mkdir':
        await this.fs.mkdir(await this.confinedEntry(op.path));
        return { ok: true };
      case 'rmdir':
        await this.fs.rmdir(await this.confinedEntry(op.path));
        return { ok: true };
      case 'delete':
        await this.fs.unlink(await this.confinedEntry(op.path));
        return { ok: true };
      case 'rnfr': {
        const remote = await this.confinedEntry(op.path);
        return { ok: true, entry: { name: baseName(op.path), attrs: await this.fs.lstat(remote) } };
      }
      case 'rnto': {
        const [from, to] = await Promise.all([this.confinedEntry(op.from), this.confinedEntry(op.to)]);
        await this.replace(from, to);
        return { ok: true };
      }
      case 'chmod':
        await this.fs.setstat(await this.confined(op.path), { mode: op.mode });
        return { ok: true };
      case 'mfmt':
        // SFTP v3 sets both times at once; the access time follows the modification time.
        await this.fs.setstat(await this.confined(op.path), { atime: op.mtime, mtime: op.mtime });
        return { ok: true };
    }
  }

  /**
   * Renames, replacing an existing target as rename(2) and FTP servers on
   * Unix do: atomically with posix-rename@openssh.com; otherwise plain
   * SFTP rename, which refuses an existing target, after removing it.
   */
  async replace(from: string, to: string): Promise<void> {
    if (this.fs.hasPosixRename) return this.fs.posixRename(from, to);
    try {
      await this.fs.rename(from, to);
    } catch (error) {
      const failure = toFsError(error);
      if (failure.kind !== 'failure') throw failure;
      await this.fs.unlink(to);
      await this.fs.rename(from, to);
    }
  }

  /** The file's length on the wire in TYPE A: read through, several requests at a time, counting line ends in order. */
  private async asciiSize(remote: string, size: number): Promise<number> {
    const handle = await this.fs.open(remote, 0x01);
    try {
      const chunk = Math.min(256 * 1024, this.fs.maxReadLength);
      const encoder = new AsciiEncoder();
      let total = 0;
      for (let position = 0; ; ) {
        const offsets = Array.from({ length: ASCII_SIZE_BATCH }, (_unused, index) => position + index * chunk).filter((offset, index) => index === 0 || offset < size);
        const pieces = await Promise.all(
          offsets.map((offset) => new Promise<Buffer>((resolve, reject) => this.fs.read(handle, chunk, offset, (error, data) => (error ? reject(error) : resolve(data))))),
        );
        for (const piece of pieces) {
          if (piece.length === 0) return total;
          total += encoder.measure(piece);
          position += piece.length;
          // A short read: what follows was read from the wrong offsets; read on from here.
          if (piece.length < chunk) break;
        }
      }
    } finally {
      void this.fs.close(handle).catch(() => undefined);
    }
  }

  /**
   * Lists the directory `remote`, open as `handle` (closed here), in sorted
   * batches (the whole listing, when it is not huge), reading link targets
   * and leaving out names a listing line cannot carry. `onBatch` returns
   * false to stop early.
   */
  async list(handle: Buffer, remote: string, glob: string | null, onBatch: (entries: ListEntry[]) => Promise<boolean>): Promise<void> {
    try {
      let batch: ListEntry[] = [];
      for (;;) {
        const entries = await this.fs.readdir(handle);
        if (entries !== null) {
          for (const entry of entries) {
            if (!isPrintableName(entry.name) || (glob !== null && !matchGlob(glob, entry.name))) continue;
            batch.push(entry);
          }
        }
        if (batch.length > 0 && (entries === null || batch.length >= LISTING_SORT_BATCH)) {
          await this.readLinks(remote, batch);
          if (!(await onBatch(sortEntries(batch)))) return;
          batch = [];
        }
        if (entries === null) return;
      }
    } finally {
      void this.fs.close(handle).catch(() => undefined);
    }
  }

  private async readLinks(directory: string, entries: ListEntry[]): Promise<void> {
    const links = entries.filter((entry) => fileKind(entry.attrs.mode) === 'symlink');
    for (let index = 0; index < links.length; index += READLINK_CONCURRENCY) {
      await Promise.all(
        links.slice(index, index + READLINK_CONCURRENCY).map(async (entry) => {
          const target = await this.fs.readlink(`${directory === '/' ? '' : directory}/${entry.name}`).catch(() => undefined);
          if (target !== undefined && isPrintableName(target)) entry.linkTarget = target;
        }),
      );
    }
  }
}
