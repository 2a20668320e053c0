/** Medians, ratios and the formatting of figures and tables. */
import { GiB, MAX_ATTEMPTS, MB, STALL_SECONDS } from './config.js';
import type { ReportContext } from './context.js';
import { BASELINES, FORWARDERS, type ContenderKey } from './contenders.js';
import type { Kind, Sample } from './measure.js';

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export interface Summary {
  kind: Kind;
  contender: ContenderKey;
  rounds: number;
  failed: number;
  /** Median MB/s and the range over rounds. */
  mbPerSecond: number | null;
  mbPerSecondMin: number | null;
  mbPerSecondMax: number | null;
  filesPerSecond: number | null;
  /** Median forwarder CPU seconds per GiB moved, and per file. */
  forwarderCpuSecondsPerGiB: number | null;
  forwarderCpuMsPerFile: number | null;
  sshdCpuSecondsPerGiB: number | null;
  sshdCpuMsPerFile: number | null;
  /** curl attempts thrown away because curl stalled, and samples kept although stalled. */
  stalledAttempts: number;
  stalledSamples: number;
}

export function summarize(samples: Sample[], kind: Kind, contender: ContenderKey): Summary {
  const all = samples.filter((s) => s.kind === kind && s.contender === contender);
  const good = all.filter((s) => s.ok);
  const rates = good.map((s) => s.bytes / MB / s.seconds);
  const perGiB = (pick: (s: Sample) => number | null): number | null =>
    median(good.flatMap((s) => (pick(s) === null || s.bytes === 0 ? [] : [pick(s)! / (s.bytes / GiB)])));
  const perFile = (pick: (s: Sample) => number | null): number | null =>
    median(good.flatMap((s) => (pick(s) === null ? [] : [(pick(s)! * 1000) / s.files])));
  return {
    kind,
    contender,
    rounds: all.length,
    failed: all.length - good.length,
    mbPerSecond: median(rates),
    mbPerSecondMin: rates.length > 0 ? Math.min(...rates) : null,
    mbPerSecondMax: rates.length > 0 ? Math.max(...rates) : null,
    filesPerSecond: median(good.map((s) => s.files / s.seconds)),
    forwarderCpuSecondsPerGiB: perGiB((s) => s.forwarderCpuSeconds),
    forwarderCpuMsPerFile: perFile((s) => s.forwarderCpuSeconds),
    sshdCpuSecondsPerGiB: perGiB((s) => s.sshdCpuSeconds),
    sshdCpuMsPerFile: perFile((s) => s.sshdCpuSeconds),
    stalledAttempts: all.reduce((sum, s) => sum + s.stalledAttempts, 0),
    stalledSamples: all.filter((s) => s.stalled).length,
  };
}

/** MB/s of one measurement. */
export function mbPerSecond(s: Sample): number {
  return s.bytes / MB / s.seconds;
}

/** Files per second of one measurement. */
export function filesPerSecond(s: Sample): number {
  return s.files / s.seconds;
}

/** The median and range of some values (one per round). */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: number[]): Spread | null {
  const middle = median(values);
  return middle === null ? null : { median: middle, min: Math.min(...values), max: Math.max(...values), n: values.length };
}

/** A figure of each verified measurement of `kind` through `key`, in round order. */
export function figures(samples: Sample[], kind: Kind, key: ContenderKey, figure: (s: Sample) => number | null): number[] {
  return samples.filter((s) => s.kind === kind && s.contender === key && s.ok).flatMap((s) => {
    const value = figure(s);
    return value === null || !Number.isFinite(value) ? [] : [value];
  });
}

/**
 * `key`'s figure divided by `other`'s, round by round: the contenders take
 * turns within a round, so each pair shares the machine's state of the
 * moment, and the spread of these ratios is the run's own noise.
 */
export function roundRatios(samples: Sample[], kind: Kind, key: ContenderKey, other: ContenderKey, figure: (s: Sample) => number | null): number[] {
  const byRound = (k: ContenderKey): Map<number, number> => {
    const found = new Map<number, number>();
    for (const s of samples) {
      if (s.kind !== kind || s.contender !== k || !s.ok) continue;
      const value = figure(s);
      if (value !== null && Number.isFinite(value)) found.set(s.round, value);
    }
    return found;
  };
  const mine = byRound(key);
  const theirs = byRound(other);
  return [...mine].flatMap(([round, value]) => {
    const base = theirs.get(round);
    return base === undefined || base === 0 ? [] : [value / base];
  });
}

/** "12.3" for one value, "12.3 (11.0-13.1)" for the median and range of several. */
export function fmtSpread(s: Spread | null, format: (value: number) => string = (v) => fmt(v)): string {
  if (s === null) return '-';
  return s.n < 2 ? format(s.median) : `${format(s.median)} (${format(s.min)}-${format(s.max)})`;
}

export function fmtRatioSpread(s: Spread | null): string {
  return fmtSpread(s, (v) => `${v.toFixed(2)}x`);
}

export function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

export function fmt(value: number | null, digits?: number): string {
  if (value === null || !Number.isFinite(value)) return '-';
  if (digits !== undefined) return value.toFixed(digits);
  const abs = Math.abs(value);
  return value.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : 2);
}

export function fmtRatio(value: number | null): string {
  return value === null ? '-' : `${value.toFixed(2)}x`;
}

export function fmtRange(s: Summary): string {
  if (s.mbPerSecondMin === null || s.mbPerSecondMax === null || s.rounds < 2) return '';
  return `${fmt(s.mbPerSecondMin)}-${fmt(s.mbPerSecondMax)}`;
}

/** Left-aligned first column, right-aligned others (or all left-aligned). */
export function table(header: string[], rows: string[][], allLeft = false): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    '  ' + cells.map((c, i) => (i === 0 || allLeft ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const rule = '  ' + widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export function kib(value: number | null): string {
  return value === null ? '-' : `${(value / 1024).toFixed(1)} MiB`;
}

export function signedKib(value: number | null): string {
  return value === null ? '-' : `${value >= 0 ? '+' : '-'}${(Math.abs(value) / 1024).toFixed(1)} MiB`;
}

/** " (n FAILED)" after a contender's name when some of its transfers failed. */
export function failedNote(a: Summary, b?: Summary): string {
  const failed = a.failed + (b?.failed ?? 0);
  return failed > 0 ? ` (${failed} FAILED)` : '';
}

/**
 * ftpfwd against each OpenSSH contender, for two kinds (down, up): the
 * throughput ratio round by round (median and range), and the ratio of the
 * median CPU costs.
 */
export function ratioRows(r: ReportContext, kindA: Kind, kindB: Kind, pick: (s: Sample) => number | null, cpu: (s: Summary) => number | null): string[][] {
  return BASELINES.map((other) => [
    `ftpfwd / ${r.contenders.find((c) => c.key === other)!.label}`,
    fmtRatioSpread(spread(roundRatios(r.bench.samples, kindA, 'ftpfwd', other, pick))),
    fmtRatioSpread(spread(roundRatios(r.bench.samples, kindB, 'ftpfwd', other, pick))),
    fmtRatio(ratio(cpu(r.get(kindA, 'ftpfwd')), cpu(r.get(kindA, other)))),
    fmtRatio(ratio(cpu(r.get(kindB, 'ftpfwd')), cpu(r.get(kindB, other)))),
  ]);
}

/** How many curl measurements were repeated (or kept) because curl idled in its set-up. */
export function stallNote(r: ReportContext, kindA: Kind, kindB: Kind): void {
  const list = r.contenders.flatMap((c) => [r.get(kindA, c.key), r.get(kindB, c.key)]);
  const redone = list.reduce((sum, s) => sum + s.stalledAttempts, 0);
  const kept = list.reduce((sum, s) => sum + s.stalledSamples, 0);
  if (redone + kept === 0) return;
  r.note(`curl idled >${STALL_SECONDS} s in set-up: ${redone} measurement(s) repeated${kept > 0 ? `, ${kept} kept after ${MAX_ATTEMPTS} attempts` : ''}`);
}

/**
 * A row of the report's summary: the median of `figure` through each
 * forwarder, then ftpfwd's ratio to each baseline round by round (median and
 * range).
 */
export function headlineRow(r: ReportContext, label: string, kind: Kind, figure: (s: Sample) => number | null, format: (value: number) => string = (v) => fmt(v)): string[] {
  const samples = r.bench.samples;
  return [
    label,
    ...FORWARDERS.map((key) => {
      const middle = median(figures(samples, kind, key, figure));
      return middle === null ? '-' : format(middle);
    }),
    ...BASELINES.map((other) => fmtRatioSpread(spread(roundRatios(samples, kind, 'ftpfwd', other, figure)))),
  ];
}
