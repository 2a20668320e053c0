import { spawn } from 'node:child_process';
import { EXIT_CODES } from '../errors.js';

/** Set in the environment of the copy of ftpfwd that stays in the background. */
export const BACKGROUND_CHILD_ENV = 'FTPFWD_BACKGROUND_CHILD';

/** What the background copy tells the foreground one, once. */
export type BackgroundReport = { kind: 'ready'; stdout: string } | { kind: 'failed'; exitCode: number };

/** How long the foreground waits for the background copy to be ready or fail. */
const READY_TIMEOUT_MS = 5 * 60_000;

/**
 * `-f`: starts a detached copy of this command, marked as the background
 * copy in its environment so that it does not fork again, and returns
 * only when that copy is listening (exit 0) or has failed (its exit code),
 * as `ssh -f` does. The copy's stderr stays on ours, so its one-line
 * error reaches the user.
 */
export function goToBackground(argv: readonly string[]): Promise<number> {
  const args = argv.slice(1);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...args], {
      detached: true,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: { ...process.env, [BACKGROUND_CHILD_ENV]: '1' },
    });
    const timer = setTimeout(() => {
      process.stderr.write('ftpfwd: the background process did not become ready in time\n');
      child.kill('SIGTERM');
      finish(EXIT_CODES.failure);
    }, READY_TIMEOUT_MS);
    const finish = (code: number): void => {
      clearTimeout(timer);
      child.removeAllListeners();
      if (child.connected) child.disconnect();
      child.unref();
      resolve(code);
    };
    child.on('message', (message: BackgroundReport) => {
      if (message.kind === 'ready') {
        process.stdout.write(message.stdout);
        finish(EXIT_CODES.ok);
      } else {
        finish(message.exitCode);
      }
    });
    child.once('exit', (code) => finish(code ?? EXIT_CODES.failure));
    child.once('error', (error) => {
      process.stderr.write(`ftpfwd: cannot start the background process: ${error.message}\n`);
      finish(EXIT_CODES.failure);
    });
  });
}

/** In the background copy: tells the foreground how setup ended, then lets go of it. */
export function reportToForeground(report: BackgroundReport): void {
  if (!process.send || !process.connected) return;
  process.send(report, () => {
    if (process.connected) process.disconnect();
  });
}
