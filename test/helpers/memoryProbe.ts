import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { eventually } from './procfs.js';

/**
 * A look at a Node process's memory after a full collection, for soak
 * runs. V8 collects lazily, so the RSS of a process that allocates steadily
 * swings by tens of MiB whether or not anything leaks; after a full
 * collection, the heap still in use is what a leak grows.
 */

export interface MemoryFigures {
  rssKiB: number;
  /** Live JavaScript objects, after the collection. */
  heapUsedKiB: number;
  /** What V8's heap holds from the system, used or not. */
  heapTotalKiB: number;
  /** Buffers and other memory that JavaScript objects hold outside the heap. */
  externalKiB: number;
}

const PROBE_SIGNAL = 'SIGUSR2';

function figuresFile(dir: string, pid: number): string {
  return join(dir, `${pid}.json`);
}

/**
 * Node options for the process under test: on SIGUSR2 (which ftpfwd does
 * not use) it collects its garbage, then writes its figures to
 * `<dir>/<pid>.json`. The young generation starts at 16 MiB semi-spaces:
 * V8 grows it there anyway once the process is busy, adding about 20 MiB
 * of RSS somewhere between the 500th and the 1,000th session, which would
 * otherwise fall inside the window a soak compares.
 */
export function memoryProbeArgs(dir: string): string[] {
  const code = [
    "import { renameSync, writeFileSync } from 'node:fs';",
    "import { getHeapStatistics } from 'node:v8';",
    `process.on('${PROBE_SIGNAL}', () => {`,
    '  globalThis.gc();',
    '  const heap = getHeapStatistics();',
    '  const memory = process.memoryUsage();',
    `  const file = ${JSON.stringify(dir)} + '/' + process.pid + '.json';`,
    '  const kib = (bytes) => Math.round(bytes / 1024);',
    '  writeFileSync(file + \'.tmp\', JSON.stringify({ rssKiB: kib(memory.rss), heapUsedKiB: kib(heap.used_heap_size), heapTotalKiB: kib(heap.total_heap_size), externalKiB: kib(memory.external) }));',
    '  renameSync(file + \'.tmp\', file);',
    '});',
  ].join('\n');
  return ['--expose-gc', '--min-semi-space-size=16', `--import=data:text/javascript,${encodeURIComponent(code)}`];
}

/** Has `pid` (started with memoryProbeArgs(dir)) collect its garbage and report; bounded by `timeoutMs`. */
export async function probeMemory(pid: number, dir: string, timeoutMs = 10_000): Promise<MemoryFigures> {
  const file = figuresFile(dir, pid);
  await rm(file, { force: true });
  process.kill(pid, PROBE_SIGNAL);
  let text = '';
  const reported = await eventually(async () => {
    text = await readFile(file, 'utf8').catch(() => '');
    return text !== '';
  }, timeoutMs, 20);
  if (!reported) throw new Error(`process ${pid} did not report its memory within ${timeoutMs} ms (started without memoryProbeArgs?)`);
  return JSON.parse(text) as MemoryFigures;
}
