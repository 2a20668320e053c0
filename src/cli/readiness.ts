import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ListenerAddress } from '../tunnel.js';

/**
 * Writes through a temporary file and a rename, so that a script polling
 * for the file never reads half of it. The temporary name is random and
 * created exclusively without following links: in a shared directory such
 * as /tmp another user could otherwise plant a symlink at a name they can
 * guess and have us write through it. The rename replaces whatever is at
 * the final path (a planted symlink included) without following it.
 * Returns the identity of the file written, to recognise it at removal.
 */
async function writeAtomically(path: string, text: string): Promise<FileIdentity> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    await handle.writeFile(text);
    const { dev, ino } = await handle.stat();
    await handle.close();
    await rename(temporary, path);
    return { dev, ino };
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
}

interface FileIdentity {
  dev: number;
  ino: number;
}

/** `host port` per listener, one per line: `read host port < file` works in any shell. */
export function readyFileText(listeners: readonly ListenerAddress[]): string {
  return listeners.map((listener) => `${listener.host} ${listener.port}\n`).join('');
}

export class ReadinessFiles {
  private readonly written: Array<{ path: string; identity: FileIdentity }> = [];

  constructor(
    private readonly readyFile: string | undefined,
    private readonly pidFile: string | undefined,
  ) {}

  async markReady(listeners: readonly ListenerAddress[]): Promise<void> {
    if (this.pidFile) this.written.push({ path: this.pidFile, identity: await writeAtomically(this.pidFile, `${process.pid}\n`) });
    if (this.readyFile) this.written.push({ path: this.readyFile, identity: await writeAtomically(this.readyFile, readyFileText(listeners)) });
  }

  /**
   * Removes what markReady wrote, so a stale file never claims a dead
   * forwarder is ready; a file that someone has since replaced is not ours
   * to remove.
   */
  async remove(): Promise<void> {
    await Promise.all(
      this.written.splice(0).map(async ({ path, identity }) => {
        const current = await lstat(path).catch(() => null);
        if (current && current.dev === identity.dev && current.ino === identity.ino) await rm(path, { force: true });
      }),
    );
  }
}
