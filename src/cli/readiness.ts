import { rename, rm, writeFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import type { ListenerAddress } from '../tunnel.js';

/**
 * Writes through a temporary file and a rename, so that a script polling
 * for the file never reads half of it.
 */
async function writeAtomically(path: string, text: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  await writeFile(temporary, text, { mode: 0o644 });
  await rename(temporary, path);
}

/** `host port` per listener, one per line: `read host port < file` works in any shell. */
export function readyFileText(listeners: readonly ListenerAddress[]): string {
  return listeners.map((listener) => `${listener.host} ${listener.port}\n`).join('');
}

export class ReadinessFiles {
  private readonly written: string[] = [];

  constructor(
    private readonly readyFile: string | undefined,
    private readonly pidFile: string | undefined,
  ) {}

  async markReady(listeners: readonly ListenerAddress[]): Promise<void> {
    if (this.pidFile) {
      await writeAtomically(this.pidFile, `${process.pid}\n`);
      this.written.push(this.pidFile);
    }
    if (this.readyFile) {
      await writeAtomically(this.readyFile, readyFileText(listeners));
      this.written.push(this.readyFile);
    }
  }

  /** Removes what markReady wrote, so a stale file never claims a dead forwarder is ready. */
  async remove(): Promise<void> {
    await Promise.all(this.written.splice(0).map((path) => rm(path, { force: true })));
  }
}
