/**
 * Slow reader: the large file at a limited rate, the forwarder's RSS sampled
 * meanwhile. Down, curl reads slowly; up, the slow FTP server does. Each
 * transfer gets a forwarder process of its own, started for it (and warmed up
 * with one small file), so that its RSS before is that of a process in its
 * first use, not inflated by earlier transfers whose freed memory could hide
 * growth. One round: the point is memory, not speed.
 */
import { join } from 'node:path';
import { MB, MiB, RSS_SAMPLE_MS } from '../config.js';
import { BASELINES, FORWARDERS, ftpUrl, slowServerUrl, type ContenderKey } from '../contenders.js';
import { removeAll, withFreshForwarder, type BenchContext, type ReportContext, type Section } from '../context.js';
import { checkFile, curl, curlOutcome, isInterrupted, type Kind, type Sample } from '../measure.js';
import { traceRss, type RssTrace } from '../proc.js';
import { failedNote, fmt, fmtRatio, kib, ratio, signedKib, stallNote } from '../summary.js';

async function run(ctx: BenchContext): Promise<void> {
  const { config, bench, files, slowServer } = ctx;
  const largeBytes = config.sizeMiB * MiB;
  const slowTimeout = ctx.slowTimeoutMs;
  process.stderr.write(`\n4. slow reader, ${config.sizeMiB} MiB at ${config.slowRateMiB} MiB/s, a new forwarder process per transfer\n`);
  if (!ctx.roundAllowed('slow reader', 0)) return;
  for (const key of FORWARDERS) {
    if (isInterrupted()) break;
    const out = join(ctx.clientDir, `slow-${key}.bin`);
    await withFreshForwarder(ctx, key, 'slow-down', slowServer.address, async (contender, pid) => {
      let trace: RssTrace | null = null;
      await bench.measure(contender, 'slow-down', 0, {
        bytes: largeBytes,
        files: 1,
        prepare: async () => {
          trace = null;
          await removeAll([out]);
        },
        transfer: async () => {
          const args = ['--limit-rate', `${config.slowRateMiB}M`, '-o', out, ftpUrl(contender, 'large.bin')];
          const traced = await traceRss(pid, slowTimeout + 5_000, () => curl(contender, args, slowTimeout));
          trace = traced.trace;
          return curlOutcome([traced.result]);
        },
        verify: () => checkFile(out, files.largeSum, 'download'),
        rss: () => trace,
      });
    });
    await removeAll([out]);
    const name = `slow-${key}.bin`;
    await withFreshForwarder(ctx, key, 'slow-up', slowServer.address, async (contender, pid) => {
      let trace: RssTrace | null = null;
      await bench.measure(contender, 'slow-up', 0, {
        bytes: largeBytes,
        files: 1,
        prepare: async () => {
          trace = null;
          slowServer.received.delete(name);
        },
        transfer: async () => {
          const args = ['-T', files.large, slowServerUrl(contender, name)];
          const traced = await traceRss(pid, slowTimeout + 5_000, () => curl(contender, args, slowTimeout));
          trace = traced.trace;
          return curlOutcome([traced.result]);
        },
        verify: async () => {
          const got = slowServer.received.get(name);
          if (got === undefined) return ['upload: the slow FTP server has no STOR of it'];
          if ('error' in got) return [`upload: ${got.error}`];
          return got.sha256 === files.largeSum ? [] : [`upload: SHA-256 mismatch (${got.sha256.slice(0, 12)}... instead of ${files.largeSum.slice(0, 12)}..., ${got.bytes} bytes)`];
        },
        rss: () => trace,
      });
    });
  }
}

// The slow reader: one transfer per direction and forwarder, so its sample is the figure.
function slowSample(r: ReportContext, kind: Kind, key: ContenderKey): Sample | undefined {
  return r.bench.samples.find((s) => s.kind === kind && s.contender === key);
}

function slowRss(r: ReportContext, kind: Kind, key: ContenderKey): RssTrace | null {
  const sample = slowSample(r, kind, key);
  return sample?.ok === true ? (sample.rss ?? null) : null;
}

function growthRatio(r: ReportContext, kind: Kind, other: ContenderKey): number | null {
  const a = slowRss(r, kind, 'ftpfwd')?.growthKiB ?? null;
  const b = slowRss(r, kind, other)?.growthKiB ?? null;
  // Below 1 MiB (or zero, or less: memory given back) a growth is noise, and a ratio to it meaningless.
  return a === null || b === null || a < 1024 || b < 1024 ? null : a / b;
}

function maxRatio(r: ReportContext, kind: Kind, other: ContenderKey): number | null {
  return ratio(slowRss(r, kind, 'ftpfwd')?.maxKiB ?? null, slowRss(r, kind, other)?.maxKiB ?? null);
}

function report(r: ReportContext): void {
  const { config } = r;
  const forwarders = r.contenders.filter((c) => c.proc !== null);
  r.heading(`Slow reader: ${config.sizeMiB} MiB at ${config.slowRateMiB} MiB/s; down, curl --limit-rate reads slowly; up, an FTP server in the benchmark does.`);
  r.note('Each transfer has a forwarder process of its own, new and warmed up with one small file.');
  r.note(`RSS of the forwarding process: just before; max = the largest of readings every ${RSS_SAMPLE_MS} ms during the transfer and at its end,`);
  r.note('or VmHWM if the transfer raised it (a peak between readings); growth = max - before.');
  r.note('Backpressure holds when growth stays bounded (MiB, not the size of the file).');
  r.table(
    ['contender', 'down RSS before', 'max', 'growth', 'MB/s', 'up RSS before', 'max', 'growth', 'MB/s'],
    forwarders.map((c) => {
      const d = r.get('slow-down', c.key);
      const u = r.get('slow-up', c.key);
      const dr = slowSample(r, 'slow-down', c.key)?.rss;
      const ur = slowSample(r, 'slow-up', c.key)?.rss;
      return [
        c.label + failedNote(d, u),
        kib(dr?.beforeKiB ?? null), kib(dr?.maxKiB ?? null), signedKib(dr?.growthKiB ?? null), fmt(d.mbPerSecond),
        kib(ur?.beforeKiB ?? null), kib(ur?.maxKiB ?? null), signedKib(ur?.growthKiB ?? null), fmt(u.mbPerSecond),
      ];
    }),
  );
  stallNote(r, 'slow-down', 'slow-up');
  r.table(['ratio (growth, max RSS: >1 = ftpfwd more; MB/s: >1 = ftpfwd faster)', 'growth down', 'growth up', 'max RSS down', 'max RSS up', 'MB/s down', 'MB/s up'],
    BASELINES.map((other) => [
      `ftpfwd / ${r.contenders.find((c) => c.key === other)!.label}`,
      fmtRatio(growthRatio(r, 'slow-down', other)),
      fmtRatio(growthRatio(r, 'slow-up', other)),
      fmtRatio(maxRatio(r, 'slow-down', other)),
      fmtRatio(maxRatio(r, 'slow-up', other)),
      fmtRatio(ratio(r.get('slow-down', 'ftpfwd').mbPerSecond, r.get('slow-down', other).mbPerSecond)),
      fmtRatio(ratio(r.get('slow-up', 'ftpfwd').mbPerSecond, r.get('slow-up', other).mbPerSecond)),
    ]));
  r.note('(growth ratio "-": one of the two growths is under 1 MiB, too small for a meaningful ratio)');
  for (const [kind, what] of [['slow-down', 'download'], ['slow-up', 'upload']] as const) {
    r.headline([
      `RSS growth, ${what} read at ${config.slowRateMiB} MiB/s (one round)`,
      ...FORWARDERS.map((key) => signedKib(slowRss(r, kind, key)?.growthKiB ?? null)),
      ...BASELINES.map((other) => fmtRatio(growthRatio(r, kind, other))),
    ]);
  }
}

function json(r: ReportContext): Record<string, unknown> {
  const forwarders = r.contenders.filter((c) => c.proc !== null);
  return {
    slowReader: {
      bytes: r.config.sizeMiB * MiB,
      rateMiBPerSecond: r.config.slowRateMiB,
      rssSampleMs: RSS_SAMPLE_MS,
      results: forwarders.flatMap((c) => (['slow-down', 'slow-up'] as const).map((kind) => {
        const sample = slowSample(r, kind, c.key);
        return {
          kind,
          contender: c.key,
          ok: sample?.ok ?? false,
          mbPerSecond: sample === undefined ? null : sample.bytes / MB / sample.seconds,
          ...(sample?.rss ?? {}),
        };
      })),
      ratios: Object.fromEntries(BASELINES.map((other) => [
        `ftpfwd/${other}`,
        Object.fromEntries((['slow-down', 'slow-up'] as const).map((kind) => [kind, {
          rssGrowth: growthRatio(r, kind, other),
          maxRss: maxRatio(r, kind, other),
          throughput: ratio(r.get(kind, 'ftpfwd').mbPerSecond, r.get(kind, other).mbPerSecond),
        }])),
      ])),
    },
  };
}

export const slowReader: Section = { id: 'slow', kinds: () => ['slow-down', 'slow-up'], forwardersOnly: true, run, report, json };
