/** Many sessions at once: one curl process (one control connection) per transfer. */
import { join } from 'node:path';
import { MiB } from '../config.js';
import { ftpUrl } from '../contenders.js';
import { removeAll, type BenchContext, type ReportContext, type Section } from '../context.js';
import { checkFile, curl, curlOutcome, rotate, transferTimeoutMs } from '../measure.js';
import { failedNote, fmt, fmtRange, ratioRows, stallNote, table } from '../summary.js';

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
  const { config, say } = r;
  say();
  say(`3. ${config.sessions} concurrent sessions, ${config.sessionMiB} MiB each: ${config.sessions} curl processes at once, total MB/s`);
  say(table(
    ['contender', 'down MB/s', 'range', 'up MB/s', 'range', 'CPU s/GiB down', 'up', 'sshd CPU s/GiB down', 'up'],
    r.contenders.map((c) => {
      const d = r.get('conc-down', c.key);
      const u = r.get('conc-up', c.key);
      return [c.label + failedNote(d, u), fmt(d.mbPerSecond), fmtRange(d), fmt(u.mbPerSecond), fmtRange(u), fmt(d.forwarderCpuSecondsPerGiB, 2), fmt(u.forwarderCpuSecondsPerGiB, 2), fmt(d.sshdCpuSecondsPerGiB, 2), fmt(u.sshdCpuSecondsPerGiB, 2)];
    }),
  ));
  stallNote(r, 'conc-down', 'conc-up');
  say();
  say(table(['ratio', 'down MB/s', 'up MB/s', 'CPU/GiB down', 'CPU/GiB up'],
    ratioRows(r, 'conc-down', 'conc-up', (s) => s.mbPerSecond, (s) => s.forwarderCpuSecondsPerGiB)));
}

export const concurrentSessions: Section = { id: 'concurrent', kinds: ['conc-down', 'conc-up'], run, report, rssLabel: 'concurrent sessions' };
