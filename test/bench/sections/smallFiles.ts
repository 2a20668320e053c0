/** Many small files in one session: one control connection, an EPSV data connection per file. */
import { join } from 'node:path';
import { removeAll, type BenchContext, type ReportContext, type Section } from '../context.js';
import { inSession } from '../ftpClient.js';
import { checkFile, rotate, sha256, type Kind } from '../measure.js';
import { failedNote, figures, filesPerSecond, fmt, fmtSpread, headlineRow, ratioRows, spread, type Summary } from '../summary.js';

async function run(ctx: BenchContext): Promise<void> {
  const { config, bench, files, vsftpd } = ctx;
  const fileBytes = config.fileKiB * 1024;
  process.stderr.write(`\n2. ${config.files} small files of ${config.fileKiB} KiB in one session\n`);
  const smallNames = [...files.small.keys()];
  for (let round = 0; round < config.rounds; round++) {
    if (!ctx.roundAllowed('small files', round)) break;
    for (const contender of rotate(ctx.contenders, round)) {
      const received = new Map<string, Buffer>();
      await bench.measure(contender, 'small-down', round, {
        bytes: config.files * fileBytes,
        files: config.files,
        prepare: async () => received.clear(),
        transfer: () => inSession(contender, async (session) => {
          for (const name of smallNames) received.set(name, await session.get(`small/${name}`));
        }),
        verify: async () => smallNames.flatMap((name) => {
          const data = received.get(name);
          if (data === undefined) return [`download ${name}: missing`];
          return sha256(data) === files.smallSums.get(name) ? [] : [`download ${name}: SHA-256 mismatch (${data.length} bytes)`];
        }),
      });
      const prefix = `small-${contender.key}-${round}-`;
      const uploaded = smallNames.map((name) => join(vsftpd.uploadDir, `${prefix}${name}`));
      await bench.measure(contender, 'small-up', round, {
        bytes: config.files * fileBytes,
        files: config.files,
        prepare: () => removeAll(uploaded),
        transfer: () => inSession(contender, async (session) => {
          for (const [name, contents] of files.small) await session.put(`incoming/${prefix}${name}`, contents);
        }),
        verify: async () => {
          const problems: string[] = [];
          for (const name of smallNames) problems.push(...(await checkFile(join(vsftpd.uploadDir, `${prefix}${name}`), files.smallSums.get(name)!, `upload ${name}`)));
          return problems;
        },
      });
      await removeAll(uploaded);
    }
  }
}

function report(r: ReportContext): void {
  const { config } = r;
  r.heading(`${config.files} files of ${config.fileKiB} KiB in one session on loopback: log in, then EPSV + RETR (or STOR) per file, one at a time`);
  r.note('(the benchmark\'s own minimal FTP client, SOCKS5 for ssh -D: curl 7.88 idles 1 s before some data connections)');
  r.table(
    ['contender', 'down files/s', 'up files/s', 'ms/file down', 'up', 'CPU ms/file down', 'up', 'sshd CPU ms/file down', 'up'],
    r.contenders.map((c) => {
      const d = r.get('small-down', c.key);
      const u = r.get('small-up', c.key);
      const msPerFile = (s: Summary): string => fmt(s.filesPerSecond === null ? null : 1000 / s.filesPerSecond, 2);
      const rates = (kind: Kind): string => fmtSpread(spread(figures(r.bench.samples, kind, c.key, filesPerSecond)));
      return [c.label + failedNote(d, u), rates('small-down'), rates('small-up'), msPerFile(d), msPerFile(u), fmt(d.forwarderCpuMsPerFile, 2), fmt(u.forwarderCpuMsPerFile, 2), fmt(d.sshdCpuMsPerFile, 2), fmt(u.sshdCpuMsPerFile, 2)];
    }),
  );
  r.table(['ratio', 'down files/s', 'up files/s', 'CPU/file down', 'CPU/file up'],
    ratioRows(r, 'small-down', 'small-up', filesPerSecond, (s) => s.forwarderCpuMsPerFile));
  r.headline(headlineRow(r, `${config.fileKiB} KiB downloads one after another in one session, files/s`, 'small-down', filesPerSecond));
  r.headline(headlineRow(r, `${config.fileKiB} KiB uploads one after another in one session, files/s`, 'small-up', filesPerSecond));
}

export const smallFiles: Section = { id: 'small', kinds: () => ['small-down', 'small-up'], run, report, rssLabel: 'small files' };
