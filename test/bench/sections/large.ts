/** One large file, down and up, one curl per transfer. */
import { join } from 'node:path';
import { MiB } from '../config.js';
import { removeAll, type BenchContext, type ReportContext, type Section } from '../context.js';
import { ftpUrl } from '../contenders.js';
import { checkFile, curl, curlOutcome, rotate, transferTimeoutMs, type Kind } from '../measure.js';
import { failedNote, figures, fmt, fmtSpread, headlineRow, mbPerSecond, ratioRows, spread, stallNote } from '../summary.js';

async function run(ctx: BenchContext): Promise<void> {
  const { config, bench, files, vsftpd } = ctx;
  const largeBytes = config.sizeMiB * MiB;
  process.stderr.write(`\n1. large file, ${config.sizeMiB} MiB\n`);
  const largeTimeout = transferTimeoutMs(largeBytes);
  for (let round = 0; round < config.rounds; round++) {
    if (!ctx.roundAllowed('large', round)) break;
    for (const contender of rotate(ctx.contenders, round)) {
      const out = join(ctx.clientDir, `large-${contender.key}.bin`);
      await bench.measure(contender, 'large-down', round, {
        bytes: largeBytes,
        files: 1,
        prepare: () => removeAll([out]),
        transfer: async () => curlOutcome([await curl(contender, ['-o', out, ftpUrl(contender, 'large.bin')], largeTimeout)]),
        verify: () => checkFile(out, files.largeSum, 'download'),
      });
      await removeAll([out]);
      const remoteName = `large-${contender.key}-${round}.bin`;
      const uploaded = join(vsftpd.uploadDir, remoteName);
      await bench.measure(contender, 'large-up', round, {
        bytes: largeBytes,
        files: 1,
        prepare: () => removeAll([uploaded]),
        transfer: async () => curlOutcome([await curl(contender, ['-T', files.large, ftpUrl(contender, `incoming/${remoteName}`)], largeTimeout)]),
        verify: () => checkFile(uploaded, files.largeSum, 'upload'),
      });
      await removeAll([uploaded]);
    }
  }
}

/** The table of a bulk section: MB/s (median and range) and CPU per GiB of each contender, down and up. */
export function bulkTables(r: ReportContext, down: Kind, up: Kind): void {
  r.table(
    ['contender', 'down MB/s', 'up MB/s', 'CPU s/GiB down', 'up', 'sshd CPU s/GiB down', 'up'],
    r.contenders.filter((c) => r.get(down, c.key).rounds + r.get(up, c.key).rounds > 0).map((c) => {
      const d = r.get(down, c.key);
      const u = r.get(up, c.key);
      return [c.label + failedNote(d, u), fmtSpread(spread(figures(r.bench.samples, down, c.key, mbPerSecond))), fmtSpread(spread(figures(r.bench.samples, up, c.key, mbPerSecond))), fmt(d.forwarderCpuSecondsPerGiB, 2), fmt(u.forwarderCpuSecondsPerGiB, 2), fmt(d.sshdCpuSecondsPerGiB, 2), fmt(u.sshdCpuSecondsPerGiB, 2)];
    }),
  );
  stallNote(r, down, up);
  r.table(['ratio (MB/s: >1 = ftpfwd faster; CPU: >1 = ftpfwd costlier)', 'down MB/s', 'up MB/s', 'CPU/GiB down', 'CPU/GiB up'],
    ratioRows(r, down, up, mbPerSecond, (s) => s.forwarderCpuSecondsPerGiB));
}

function report(r: ReportContext): void {
  r.heading(`Large file on loopback, ${r.config.sizeMiB} MiB, one curl per transfer (wall time from starting curl to its exit)`);
  bulkTables(r, 'large-down', 'large-up');
  r.headline(headlineRow(r, `loopback ${r.config.sizeMiB} MiB download, MB/s`, 'large-down', mbPerSecond));
  r.headline(headlineRow(r, `loopback ${r.config.sizeMiB} MiB upload, MB/s`, 'large-up', mbPerSecond));
}

export const largeFile: Section = { id: 'large', kinds: () => ['large-down', 'large-up'], run, report, rssLabel: 'large file' };
