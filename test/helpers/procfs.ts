import { readdirSync, readFileSync } from 'node:fs';
import { delay } from './time.js';

/** /proc/<pid>/cmdline with its arguments joined by spaces, or null once the process is gone. */
export function commandLineOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return null;
  }
}

/** Whether `pid` is a live process: a zombie has an empty command line. */
export function isRunning(pid: number): boolean {
  const commandLine = commandLineOf(pid);
  return commandLine !== null && commandLine !== '';
}

/**
 * PIDs whose command line contains `marker`, other than this process: with
 * a path unique to one test (its temp directory), the processes that test
 * started, however indirectly (ftpfwd -f, a script's children).
 */
export function pidsWithMarker(marker: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .map(Number)
    .filter((pid) => commandLineOf(pid)?.includes(marker) === true);
}

/** Polls until `check` is true; false if `timeoutMs` passed first. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 100_000; attempt += 1) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await delay(Math.min(stepMs, Math.max(1, deadline - Date.now())));
  }
  return false;
}

/**
 * For after() hooks: SIGKILLs, one PID at a time, whatever a failed test
 * left running with `marker` in its command line, and waits (bounded) until
 * those processes are gone. Passes are repeated while new ones appear (a
 * process that keeps starting copies of itself), within a bound. Returns
 * every PID it found.
 */
export async function killLeftovers(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (let pass = 0; pass < 100; pass += 1) {
    const pids = pidsWithMarker(marker);
    if (pids.length === 0) break;
    found.push(...pids);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await eventually(() => pids.every((pid) => !isRunning(pid)), 5_000);
  }
  return found;
}

/** How many file descriptors `pid` has open (/proc/<pid>/fd). */
export function openFdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident set size now (VmRSS) and at its peak (VmHWM), in KiB, from /proc/<pid>/status. */
export function memoryKiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const value = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1];
    if (value === undefined) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(value);
  };
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}
