import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, startProcess, type ProcessHandle, type ProcessOptions, type RunResult } from './processes.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'ftpfwd');

/**
 * Where every output of ftpfwd that the tests see is kept for the run, so
 * that one test at the end (test/e2e/zz-outputs.test.ts) can check them all
 * for stack traces. test/setup/provision.ts empties it when `npm test` starts.
 */
export const OUTPUT_LOG_DIR = join(ROOT, 'node_modules', '.cache', 'ftpfwd-test-outputs');

/** A stack frame as Node prints it. */
export const STACK_FRAME = /^\s+at .+(\(.+:\d+:\d+\)|:\d+:\d+)$/m;

let outputs = 0;

/** Keeps one output of ftpfwd for the end-of-run check, labelled with how it was started. */
export function recordOutput(label: string, text: string): void {
  if (text === '') return;
  mkdirSync(OUTPUT_LOG_DIR, { recursive: true });
  outputs += 1;
  appendFileSync(join(OUTPUT_LOG_DIR, `${process.pid}-${outputs}.log`), `# ${label}\n${text}\n`);
}

export function assertNoStackTrace(text: string, what = 'ftpfwd output'): void {
  assert.doesNotMatch(text, STACK_FRAME, `${what} has a stack trace:\n${text}`);
}

export interface CliRunOptions extends ProcessOptions {
  timeoutMs?: number;
  input?: string;
}

/** Runs ftpfwd to its end; its stdout and stderr are kept for the end-of-run check. */
export async function runCli(args: readonly string[], options: CliRunOptions = {}): Promise<RunResult> {
  const result = await run('node', [BIN, ...args], { timeoutMs: 30_000, ...options });
  recordOutput(`ftpfwd ${args.join(' ')}`, `${result.stdout}${result.stderr}`);
  return result;
}

export interface RunningCli {
  handle: ProcessHandle;
  /** The ports of its `listening on` lines, in -L order. */
  ports: number[];
  /** Stops it (SIGTERM, then SIGKILL) and records its output. */
  stop(): Promise<void>;
}

const LISTENING = /ftpfwd: listening on (?:\[[^\]]+\]|[^:\s]+):(\d+) -> /g;

/** Starts ftpfwd and waits until it is listening. */
export async function startCli(args: readonly string[], options: ProcessOptions & { readyTimeoutMs?: number } = {}): Promise<RunningCli> {
  const handle = await startProcess('node', [BIN, ...args], options);
  const record = (): void => recordOutput(`ftpfwd ${args.join(' ')}`, `${handle.stdout()}${handle.stderr()}`);
  try {
    await handle.waitForOutput(/ftpfwd: listening on /, options.readyTimeoutMs ?? 20_000);
  } catch (error) {
    await handle.stop();
    record();
    throw new Error(`ftpfwd did not start listening: ${error instanceof Error ? error.message : String(error)}\n${handle.stderr()}`, { cause: error });
  }
  const ports = [...handle.stdout().matchAll(LISTENING)].map((match) => Number(match[1]));
  return {
    handle,
    ports,
    stop: async () => {
      await handle.stop();
      record();
    },
  };
}

/** JSON log records among the lines of `text`. */
export function logRecords(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Resolves once `handle`'s output has a JSON log record with this message (and fields), or rejects after the timeout. */
export async function waitForLog(handle: ProcessHandle, msg: string | RegExp, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 10_000; attempt += 1) {
    const found = logRecords(handle.stderr()).find((record) => (typeof msg === 'string' ? record['msg'] === msg : msg.test(String(record['msg']))));
    if (found) return found;
    if (Date.now() > deadline || handle.exitStatus() !== undefined) break;
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
  throw new Error(`no log record ${String(msg)} within ${timeoutMs} ms:\n${handle.stderr()}`);
}
