import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delay, withTimeout } from './time.js';

const PROCESS_OUTPUT_LIMIT = 64 * 1024;
const RUN_OUTPUT_LIMIT = 1024 * 1024;
const DEFAULT_RUN_TIMEOUT_MS = 60_000;
const DEFAULT_STOP_GRACE_MS = 5_000;
/** How long `stop` waits for a daemon's per-connection children to disappear. */
const DESCENDANT_WAIT_MS = 3_000;
const MAX_DESCENDANTS = 256;
/** How long `run` waits for pipes to close after the child exited (a grandchild may hold them). */
const PIPE_DRAIN_MS = 2_000;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProcessOptions {
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ProcessHandle {
  readonly pid: number;
  /** The command line, for messages. */
  readonly label: string;
  /** Last 64 KiB of standard output. */
  stdout(): string;
  /** Last 64 KiB of standard error. */
  stderr(): string;
  /** The exit status once the process has exited. */
  exitStatus(): ExitStatus | undefined;
  /** Resolves with the exit status; rejects if the process is still running after `timeoutMs`. */
  waitExit(timeoutMs: number): Promise<ExitStatus>;
  /** Resolves once stdout or stderr matches `pattern`; rejects on exit or timeout. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void>;
  /** SIGKILLs the processes this one forked (by their PIDs), leaving this one running. */
  killChildren(): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; signals only this process's PID. */
  stop(graceMs?: number): Promise<ExitStatus>;
}

export interface RunOptions extends ProcessOptions {
  /** The child is killed with SIGKILL after this long; default 60 s. */
  timeoutMs?: number;
  input?: string | Buffer;
}

export interface RunResult extends ExitStatus {
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Keeps only the last `limit` characters appended to it. */
class TailBuffer {
  #text = '';

  constructor(private readonly limit: number) {}

  append(chunk: string): void {
    this.#text += chunk;
    if (this.#text.length > this.limit) this.#text = this.#text.slice(-this.limit);
  }

  toString(): string {
    return this.#text;
  }
}

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** If the test process dies first, take down what it started rather than leak daemons. */
function killLiveChildren(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
}

/** A signal skips 'exit' handlers: clean up, then die of the same signal as before. */
function onFatalSignal(signal: NodeJS.Signals): void {
  killLiveChildren();
  process.kill(process.pid, signal);
}

function installExitHooks(): void {
  process.once('exit', killLiveChildren);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    if (process.listenerCount(signal) === 0) process.once(signal, onFatalSignal);
  }
}

function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    installExitHooks();
    exitHookInstalled = true;
  }
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

/** `ip netns exec` execs the command, so the spawned PID is the command itself. */
function commandLine(cmd: string, args: readonly string[], netns: string | undefined): [string, string[]] {
  return netns === undefined ? [cmd, [...args]] : ['ip', ['netns', 'exec', netns, cmd, ...args]];
}

function describeCommand(cmd: string, args: readonly string[], netns: string | undefined): string {
  const text = [cmd, ...args].join(' ');
  return netns === undefined ? text : `[netns ${netns}] ${text}`;
}

function waitSpawned(child: ChildProcess, label: string): Promise<number> {
  return new Promise((resolve, reject) => {
    function onSpawn(): void {
      child.off('error', onError);
      if (child.pid === undefined) reject(new Error(`${label}: spawned without a pid`));
      else resolve(child.pid);
    }
    function onError(err: Error): void {
      child.off('spawn', onSpawn);
      reject(new Error(`${label}: cannot start: ${err.message}`, { cause: err }));
    }
    child.once('spawn', onSpawn);
    child.once('error', onError);
  });
}

function formatStatus(status: ExitStatus): string {
  return status.signal === null ? `code ${String(status.code)}` : `signal ${status.signal}`;
}

/** Direct children of `pid`, from every one of its threads (from /proc; empty where that is unavailable). */
export function childPids(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const task of tasks) {
    let children = '';
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
    } catch {
      continue;
    }
    found.push(...children.trim().split(/\s+/).filter(Boolean).map(Number));
  }
  return found;
}

/** Direct and indirect children of `pid` (from /proc; empty where that is unavailable). */
export function descendantPids(pid: number): number[] {
  const found: number[] = [];
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined && found.length < MAX_DESCENDANTS; next = queue.shift()) {
    for (const child of childPids(next)) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/**
 * Daemons fork one process per connection; when the daemon dies first they
 * are reparented and reaped later. Waiting here means a stopped server has
 * really left the process table. Never signals them.
 */
async function waitUntilGone(pids: readonly number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let remaining = pids.filter((pid) => existsSync(`/proc/${pid}`));
  for (let attempt = 0; attempt < 100 && remaining.length > 0 && Date.now() < deadline; attempt++) {
    await delay(Math.min(50, Math.max(0, deadline - Date.now())));
    remaining = remaining.filter((pid) => existsSync(`/proc/${pid}`));
  }
}

class ManagedProcess implements ProcessHandle {
  readonly #child: ChildProcess;
  readonly #stdout = new TailBuffer(PROCESS_OUTPUT_LIMIT);
  readonly #stderr = new TailBuffer(PROCESS_OUTPUT_LIMIT);
  readonly #exited: Promise<ExitStatus>;
  #status: ExitStatus | undefined;

  constructor(
    child: ChildProcess,
    readonly pid: number,
    readonly label: string,
  ) {
    this.#child = child;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.#stdout.append(chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.#stderr.append(chunk));
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#status = { code, signal };
        resolve(this.#status);
      });
    });
  }

  stdout(): string {
    return this.#stdout.toString();
  }

  stderr(): string {
    return this.#stderr.toString();
  }

  exitStatus(): ExitStatus | undefined {
    return this.#status;
  }

  waitExit(timeoutMs: number): Promise<ExitStatus> {
    return withTimeout(this.#exited, timeoutMs, `${this.label} (pid ${this.pid}) did not exit`);
  }

  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void> {
    const child = this.#child;
    const matched = new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (pattern.test(this.stdout()) || pattern.test(this.stderr())) {
          cleanup();
          resolve();
        }
      };
      const onExit = (status: ExitStatus): void => {
        cleanup();
        reject(new Error(`${this.label} exited (${formatStatus(status)}) before printing ${String(pattern)}\n${this.stderr()}`));
      };
      const cleanup = (): void => {
        child.stdout?.off('data', check);
        child.stderr?.off('data', check);
      };
      child.stdout?.on('data', check);
      child.stderr?.on('data', check);
      void this.#exited.then(onExit);
      check();
    });
    return withTimeout(matched, timeoutMs, `${this.label} did not print ${String(pattern)}`);
  }

  /**
   * Kills the processes this one forked (a daemon's per-connection
   * children), by their PIDs, leaving this one running.
   */
  async killChildren(): Promise<void> {
    const family = descendantPids(this.pid);
    for (const pid of family) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await waitUntilGone(family, DESCENDANT_WAIT_MS);
  }

  async stop(graceMs = DEFAULT_STOP_GRACE_MS): Promise<ExitStatus> {
    if (this.#status !== undefined) return this.#status;
    const family = descendantPids(this.pid);
    this.#child.kill('SIGTERM');
    let status: ExitStatus;
    try {
      status = await this.waitExit(graceMs);
    } catch {
      this.#child.kill('SIGKILL');
      status = await this.waitExit(graceMs);
    }
    await waitUntilGone(family, DESCENDANT_WAIT_MS);
    return status;
  }
}

/** Starts a long-running process; resolves once it has been spawned. */
export async function startProcess(
  cmd: string,
  args: readonly string[],
  opts: ProcessOptions = {},
): Promise<ProcessHandle> {
  const [file, argv] = commandLine(cmd, args, opts.netns);
  const label = describeCommand(cmd, args, opts.netns);
  const child = spawn(file, argv, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = await waitSpawned(child, label);
  track(child);
  return new ManagedProcess(child, pid, label);
}

/** Runs a command to completion, killing it with SIGKILL after `timeoutMs`. */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, argv] = commandLine(cmd, args, opts.netns);
  const label = describeCommand(cmd, args, opts.netns);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
  const child = spawn(file, argv, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  await waitSpawned(child, label);
  track(child);

  const stdout = new TailBuffer(RUN_OUTPUT_LIMIT);
  const stderr = new TailBuffer(RUN_OUTPUT_LIMIT);
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => stdout.append(chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => stderr.append(chunk));
  if (child.stdin !== null && opts.input !== undefined) {
    // The child may exit without reading its input; that is its business, not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input);
  }

  return new Promise((resolve) => {
    let timedOut = false;
    let status: ExitStatus | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    const killTimer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    const finish = (): void => {
      clearTimeout(killTimer);
      clearTimeout(drainTimer);
      child.off('close', onClose);
      const { code, signal } = status ?? { code: null, signal: null };
      resolve({ code, signal, stdout: stdout.toString(), stderr: stderr.toString(), timedOut });
    };
    function onClose(): void {
      finish();
    }
    child.once('exit', (code, signal) => {
      status = { code, signal };
      clearTimeout(killTimer);
      drainTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      }, PIPE_DRAIN_MS);
    });
    child.once('close', onClose);
  });
}

/** Throws with the command's output when it did not exit with code 0. */
export function assertSucceeded(result: RunResult, what: string): void {
  if (result.code === 0) return;
  const why = result.timedOut ? 'timed out' : formatStatus(result);
  throw new Error(`${what} failed (${why})\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
}
