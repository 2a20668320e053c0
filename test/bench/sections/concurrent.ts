/** Many sessions at once: one curl process (one control connection) per transfer. */
import { join } from 'node:path';
import { MiB } from '../config.js';
import { ftpUrl } from '../contenders.js';
import { removeAll, type BenchContext, type ReportContext, type Section } from '../context.js';
import { checkFile, curl, curlOutcome, rotate, transferTimeoutMs } from '../measure.js';
import { headlineRow, mbPerSecond } from '../summary.js';
import { bulkTables } from './large.js';

async function run(ctx: BenchContext): Promise<void> {
  const { config, bench, files, vsftpd } = ctx;
  const sessionBytes = config.sessionMiB * MiB;
  process.stderr.write(`\n3. ${config.sessions} concurrent sessions of ${config.sessionMiB} MiB\n`);
  const concTimeout = transferTimeoutMs(config.sessions * sessionBytes);
  const sessionIndexes = Array.from({ length: config.sessions }, (_, i) => i);
  for (let round = 0; round < config.rounds; round++) {
    if (!ctx.roundAllowed('concurrent', round)) break;
    for (const contender of rotate(ctx.contenders, round)) {
      const outs = sessionIndexes.map((i) => join(ctx.clientDir, `conc-${contender.key}-${i}.bin`));
      await bench.measure(contender, 'conc-down', round, {
        bytes: config.sessions * sessionBytes,
        files: config.sessions,
        prepare: () => removeAll(outs),
        transfer: async () => curlOutcome(await Promise.all(outs.map((out) => curl(contender, ['-o', out, ftpUrl(contender, 'conc.bin')], concTimeout)))),
        verify: async () => {
          const problems: string[] = [];
          for (const [i, out] of outs.entries()) problems.push(...(await checkFile(out, files.concSum, `download ${i}`)));
          return problems;
        },
      });
      await removeAll(outs);
      const remoteNames = sessionIndexes.map((i) => `conc-${contender.key}-${round}-${i}.bin`);
      const uploaded = remoteNames.map((name) => join(vsftpd.uploadDir, name));
      await bench.measure(contender, 'conc-up', round, {
        bytes: config.sessions * sessionBytes,
        files: config.sessions,
        prepare: () => removeAll(uploaded),
        transfer: async () => curlOutcome(await Promise.all(remoteNames.map((name) => curl(contender, ['-T', files.conc, ftpUrl(contender, `incoming/${name}`)], concTimeout)))),
        verify: async () => {
          const problems: string[] = [];
          for (const [i, path] of uploaded.entries()) problems.push(...(await checkFile(path, files.concSum, `upload ${i}`)));
          return problems;
        },
      });
      await removeAll(uploaded);
    }
  }
}

function report(r: ReportContext): void {
  const { config } = r;
  r.heading(`${config.sessions} concurrent sessions on loopback, ${config.sessionMiB} MiB each: ${config.sessions} curl processes at once, total MB/s`);
  bulkTables(r, 'conc-down', 'conc-up');
  r.headline(headlineRow(r, `${config.sessions} concurrent downloads, total MB/s`, 'conc-down', mbPerSecond));
  r.headline(headlineRow(r, `${config.sessions} concurrent uploads, total MB/s`, 'conc-up', mbPerSecond));
}

export const concurrentSessions: Section = { id: 'concurrent', kinds: () => ['conc-down', 'conc-up'], run, report, rssLabel: 'concurrent sessions' };
