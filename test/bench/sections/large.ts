/** One large file, down and up, one curl per transfer. */
import { join } from 'node:path';
import { MiB } from '../config.js';
import { removeAll, type BenchContext, type ReportContext, type Section } from '../context.js';
import { ftpUrl } from '../contenders.js';
import { checkFile, curl, curlOutcome, rotate, transferTimeoutMs } from '../measure.js';
import { failedNote, fmt, fmtRange, ratioRows, stallNote, table } from '../summary.js';

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

function report(r: ReportContext): void {
  const { config, say } = r;
  say();
  say(`1. Large file, ${config.sizeMiB} MiB, one curl per transfer (wall time from starting curl to its exit)`);
  say(table(
    ['contender', 'down MB/s', 'range', 'up MB/s', 'range', 'CPU s/GiB down', 'up', 'sshd CPU s/GiB down', 'up'],
    r.contenders.map((c) => {
      const d = r.get('large-down', c.key);
      const u = r.get('large-up', c.key);
      return [c.label + failedNote(d, u), fmt(d.mbPerSecond), fmtRange(d), fmt(u.mbPerSecond), fmtRange(u), fmt(d.forwarderCpuSecondsPerGiB, 2), fmt(u.forwarderCpuSecondsPerGiB, 2), fmt(d.sshdCpuSecondsPerGiB, 2), fmt(u.sshdCpuSecondsPerGiB, 2)];
    }),
  ));
  stallNote(r, 'large-down', 'large-up');
  say();
  say(table(['ratio (MB/s: >1 = ftpfwd faster; CPU: >1 = ftpfwd costlier)', 'down MB/s', 'up MB/s', 'CPU/GiB down', 'CPU/GiB up'],
    ratioRows(r, 'large-down', 'large-up', (s) => s.mbPerSecond, (s) => s.forwarderCpuSecondsPerGiB)));
}

export const largeFile: Section = { id: 'large', kinds: ['large-down', 'large-up'], run, report, rssLabel: 'large file' };
