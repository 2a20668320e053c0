/**
 * Memory of each forwarder: the peak RSS (VmHWM) of a new process after one
 * --memory-size transfer, and after --sessions transfers at once, down and
 * up, on loopback; the same many downloads through a 50 ms delay line, where
 * a forwarder that grows its windows has the most in flight; and the peak
 * RSS of the long-lived forwarders after each earlier section.
 *
 * Each measurement gets a new forwarder (warmed up with one small file), so
 * its peak is that of the transfer, not of whatever ran before.
 */
import { join } from 'node:path';
import { startDelayLineProcess } from '../../helpers/delayLine.js';
import { sha256File, writeRandomFile } from '../../helpers/files.js';
import { MiB } from '../config.js';
import { BASELINES, FORWARDERS, ftpUrl, type Contender, type ContenderKey } from '../contenders.js';
import { removeAll, warmUp, withFreshForwarder, type BenchContext, type ReportContext, type Section } from '../context.js';
import { checkFile, curl, curlOutcome, errorText, isInterrupted, transferTimeoutMs, type Kind, type Measurement, type Sample } from '../measure.js';
import { memoryKiB } from '../proc.js';
import { failedNote, figures, fmtRatio, headlineRow, kib, median, ratio } from '../summary.js';
import { DELAY_LINE_PRIORITY, endpointThrough } from './delay.js';

/** The RTT of the many-downloads-through-the-delay-line measurement. */
const DELAY_RTT_MS = 50;

const peak = (s: Sample): number | null => s.metrics?.['peakKiB'] ?? null;

interface Kinds {
  oneDown: Kind;
  oneUp: Kind;
  manyDown: Kind;
  manyUp: Kind;
  manyDelayDown: Kind;
}

const KINDS: Kinds = { oneDown: 'mem-one-down', oneUp: 'mem-one-up', manyDown: 'mem-many-down', manyUp: 'mem-many-up', manyDelayDown: 'mem-many-delay-down' };

/** Wraps a measurement so that the forwarder's VmHWM after it becomes its `peakKiB` metric. */
function withPeak(pid: number, m: Omit<Measurement, 'metrics'>): Measurement {
  let peakKiB: number | null = null;
  return {
    ...m,
    transfer: async () => {
      const outcome = await m.transfer();
      peakKiB = memoryKiB(pid, 'VmHWM');
      return outcome;
    },
    metrics: (): Record<string, number> => (peakKiB === null ? {} : { peakKiB }),
  };
}

/** `count` downloads of `name` at once through `contender`, each checked. */
function downloads(ctx: BenchContext, contender: Contender, pid: number, count: number, name: string, sum: string, bytes: number, rttMs = 0): Measurement {
  const outs = Array.from({ length: count }, (_, i) => join(ctx.clientDir, `mem-${contender.key}-${i}.bin`));
  const timeout = transferTimeoutMs(count * bytes);
  return withPeak(pid, {
    bytes: count * bytes,
    files: count,
    prepare: () => removeAll(outs),
    transfer: async () => curlOutcome(await Promise.all(outs.map((out) => curl(contender, ['-o', out, ftpUrl(contender, name)], timeout))), rttMs),
    verify: async () => {
      const problems: string[] = [];
      for (const [i, out] of outs.entries()) problems.push(...(await checkFile(out, sum, `download ${i}`)));
      await removeAll(outs);
      return problems;
    },
  });
}

/** `count` uploads of `file` at once through `contender`, each checked. */
function uploads(ctx: BenchContext, contender: Contender, pid: number, count: number, file: string, sum: string, bytes: number): Measurement {
  const names = Array.from({ length: count }, (_, i) => `mem-${contender.key}-${i}.bin`);
  const uploaded = names.map((name) => join(ctx.vsftpd.uploadDir, name));
  const timeout = transferTimeoutMs(count * bytes);
  return withPeak(pid, {
    bytes: count * bytes,
    files: count,
    prepare: () => removeAll(uploaded),
    transfer: async () => curlOutcome(await Promise.all(names.map((name) => curl(contender, ['-T', file, ftpUrl(contender, `incoming/${name}`)], timeout)))),
    verify: async () => {
      const problems: string[] = [];
      for (const [i, path] of uploaded.entries()) problems.push(...(await checkFile(path, sum, `upload ${i}`)));
      await removeAll(uploaded);
      return problems;
    },
  });
}

async function run(ctx: BenchContext): Promise<void> {
  const { config, bench, files } = ctx;
  const oneBytes = config.memoryMiB * MiB;
  const manyBytes = config.sessionMiB * MiB;
  process.stderr.write(`\nmemory: one ${config.memoryMiB} MiB transfer, ${config.sessions} at once of ${config.sessionMiB} MiB, and ${config.sessions} downloads at ${DELAY_RTT_MS} ms RTT; a new forwarder each\n`);
  const one = join(ctx.ftpRoot, 'memory.bin');
  await writeRandomFile(one, oneBytes);
  const oneSum = await sha256File(one);
  if (!ctx.roundAllowed('memory', 0)) return;
  for (const key of FORWARDERS) {
    if (isInterrupted()) break;
    await withFreshForwarder(ctx, key, KINDS.oneDown, undefined, (c, pid) => bench.measure(c, KINDS.oneDown, 0, downloads(ctx, c, pid, 1, 'memory.bin', oneSum, oneBytes)));
    await withFreshForwarder(ctx, key, KINDS.oneUp, undefined, (c, pid) => bench.measure(c, KINDS.oneUp, 0, uploads(ctx, c, pid, 1, one, oneSum, oneBytes)));
    await withFreshForwarder(ctx, key, KINDS.manyDown, undefined, (c, pid) => bench.measure(c, KINDS.manyDown, 0, downloads(ctx, c, pid, config.sessions, 'conc.bin', files.concSum, manyBytes)));
    await withFreshForwarder(ctx, key, KINDS.manyUp, undefined, (c, pid) => bench.measure(c, KINDS.manyUp, 0, uploads(ctx, c, pid, config.sessions, files.conc, files.concSum, manyBytes)));
  }
  await removeAll([one]);

  const line = await startDelayLineProcess({ targetHost: ctx.sshd.host, targetPort: ctx.sshd.port, rttMs: DELAY_RTT_MS, priority: DELAY_LINE_PRIORITY });
  ctx.addCleanup(async () => void (await line.stop()));
  try {
    const endpoint = await endpointThrough(ctx, line);
    for (const key of FORWARDERS) {
      if (isInterrupted()) break;
      let contender: Contender | undefined;
      try {
        contender = await ctx.startContender(key, endpoint);
        await warmUp(ctx, contender);
        await bench.measure(contender, KINDS.manyDelayDown, 0, downloads(ctx, contender, contender.proc!.pid, config.sessions, 'conc.bin', files.concSum, manyBytes, DELAY_RTT_MS));
      } catch (error) {
        bench.failures.push(`${KINDS.manyDelayDown} via ${contender?.label ?? key}: ${errorText(error)}`);
      } finally {
        await contender?.proc?.stop();
      }
    }
  } finally {
    await line.stop();
  }
}

function report(r: ReportContext): void {
  const { config } = r;
  const forwarders = r.contenders.filter((c) => FORWARDERS.includes(c.key));
  const rows: Array<[string, Kind]> = [
    [`one ${config.memoryMiB} MiB download`, KINDS.oneDown],
    [`one ${config.memoryMiB} MiB upload`, KINDS.oneUp],
    [`${config.sessions} downloads at once`, KINDS.manyDown],
    [`${config.sessions} uploads at once`, KINDS.manyUp],
    [`${config.sessions} downloads at once, RTT ${DELAY_RTT_MS} ms`, KINDS.manyDelayDown],
  ];
  r.heading('Memory: peak RSS (VmHWM) of a new forwarder process after each transfer (one round)');
  r.note(`${config.sessions} at once: ${config.sessionMiB} MiB each, one curl per transfer; RTT ${DELAY_RTT_MS} ms: through a delay line, where larger windows hold more in flight.`);
  r.table(
    ['transfer', ...forwarders.map((c) => c.label), ...BASELINES.map((b) => `ftpfwd / ${r.contenders.find((c) => c.key === b)?.label ?? b}`)],
    rows.map(([label, kind]) => {
      const value = (key: ContenderKey): number | null => median(figures(r.bench.samples, kind, key, peak));
      return [
        label + failedNote(r.get(kind, 'ftpfwd')),
        ...forwarders.map((c) => kib(value(c.key))),
        ...BASELINES.map((other) => fmtRatio(ratio(value('ftpfwd'), value(other)))),
      ];
    }),
  );
  const peakMiB = (s: Sample): number | null => {
    const value = peak(s);
    return value === null ? null : value / 1024;
  };
  for (const [label, kind] of rows) r.headline(headlineRow(r, `peak RSS, ${label}, MiB (lower is better)`, kind, peakMiB, (v) => v.toFixed(1)));

  r.note('The long-lived forwarders of the loopback sections: RSS at start, peak RSS (VmHWM) after each section, RSS at the end.');
  r.table(
    ['process', 'RSS at start', ...r.rss.map((p) => `peak after ${p.after}`), 'RSS at end'],
    forwarders.map((c) => [c.label, kib(c.rssAtStartKiB), ...r.rss.map((p) => kib(p.kib[c.key] ?? null)), kib(r.finalRss[c.key] ?? null)]),
  );
}

export const memory: Section = { id: 'memory', kinds: () => Object.values(KINDS), forwardersOnly: true, run, report };
