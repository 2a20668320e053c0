/** CPU time and memory of processes, read from /proc. */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { RSS_SAMPLE_MS } from './config.js';

let clockTicks = 100;

/** From `getconf CLK_TCK`; /proc/<pid>/stat counts CPU time in these. */
export function setClockTicks(ticks: number): void {
  clockTicks = ticks;
}

/** Fields of /proc/<pid>/stat after the command name, which may contain anything. */
export function statFields(pid: number): string[] | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** user+system CPU seconds of one process (all its threads). Field 14 and 15 of stat, i.e. index 11 and 12 here. */
export function cpuSeconds(pid: number): number | null {
  const fields = statFields(pid);
  if (fields === null) return null;
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** user+system CPU seconds summed over every descendant of `rootPid` (sshd's per-connection processes). */
export function descendantsCpuSeconds(rootPid: number): number | null {
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const fields = statFields(pid);
    if (fields === null) continue;
    const ppid = Number(fields[1]);
    ticks.set(pid, Number(fields[11]) + Number(fields[12]));
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  let total = 0;
  const queue = [...(children.get(rootPid) ?? [])];
  const seen = new Set<number>();
  for (let pid = queue.shift(); pid !== undefined && seen.size < entries.length; pid = queue.shift()) {
    if (seen.has(pid)) continue;
    seen.add(pid);
    total += ticks.get(pid) ?? 0;
    queue.push(...(children.get(pid) ?? []));
  }
  return total / clockTicks;
}

/** A `Vm...` line of /proc/<pid>/status, in KiB. */
export function memoryKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Runs `work` while reading the VmRSS of `pid` every RSS_SAMPLE_MS, at most
 * for `limitMs` (the transfer's own timeout; `work` must end by then too).
 */
export async function traceRss<T>(pid: number, limitMs: number, work: () => Promise<T>): Promise<{ result: T; trace: RssTrace }> {
  const beforeKiB = memoryKiB(pid, 'VmRSS');
  const hwmBeforeKiB = memoryKiB(pid, 'VmHWM');
  let finished = false;
  const job = work().finally(() => {
    finished = true;
  });
  const settled = job.then(() => undefined, () => undefined);
  let maxKiB: number | null = null;
  const readingsKiB: number[] = [];
  const note = (value: number | null): void => {
    if (value === null) return;
    readingsKiB.push(value);
    maxKiB = Math.max(maxKiB ?? value, value);
  };
  const limit = Math.ceil(limitMs / RSS_SAMPLE_MS);
  for (let i = 0; i < limit && !finished; i++) {
    const tick = new AbortController();
    await Promise.race([settled, sleep(RSS_SAMPLE_MS, undefined, { signal: tick.signal }).catch(() => undefined)]);
    tick.abort();
    if (!finished) note(memoryKiB(pid, 'VmRSS'));
  }
  const result = await job;
  const afterKiB = memoryKiB(pid, 'VmRSS');
  note(afterKiB);
  const hwmAfterKiB = memoryKiB(pid, 'VmHWM');
  const sampledMaxKiB: number | null = maxKiB;
  const raised = hwmBeforeKiB !== null && hwmAfterKiB !== null && hwmAfterKiB > hwmBeforeKiB;
  const peakKiB = raised ? Math.max(sampledMaxKiB ?? hwmAfterKiB, hwmAfterKiB) : sampledMaxKiB;
  return {
    result,
    trace: {
      beforeKiB,
      sampledMaxKiB,
      maxKiB: peakKiB,
      growthKiB: peakKiB === null || beforeKiB === null ? null : peakKiB - beforeKiB,
      afterKiB,
      hwmBeforeKiB,
      hwmAfterKiB,
      samples: readingsKiB.length,
      readingsKiB,
    },
  };
}

/** The forwarding process's memory around and during one transfer, in KiB. */
export interface RssTrace {
  /** VmRSS just before the transfer started. */
  beforeKiB: number | null;
  /** The largest VmRSS read while it ran (every RSS_SAMPLE_MS) and right after it ended. */
  sampledMaxKiB: number | null;
  /**
   * The largest RSS during the transfer: sampledMaxKiB, or VmHWM after it if
   * the transfer raised VmHWM (the process's peak RSS, which a peak between
   * two readings raises too).
   */
  maxKiB: number | null;
  /** maxKiB - beforeKiB. */
  growthKiB: number | null;
  /** VmRSS right after the transfer ended. */
  afterKiB: number | null;
  /** VmHWM before and after the transfer. */
  hwmBeforeKiB: number | null;
  hwmAfterKiB: number | null;
  /** VmRSS readings taken (during the transfer and right after it). */
  samples: number;
  /** Those readings in order, RSS_SAMPLE_MS apart: a plateau is bounded buffering, a steady climb is not. */
  readingsKiB: number[];
}
