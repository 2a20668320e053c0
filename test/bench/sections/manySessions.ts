/**
 * Many sessions at once: --many-sessions FTP sessions started together, each
 * logging in and fetching one small file, through each contender on
 * loopback. The figure is the time to first byte of each session, from its
 * connect() to the first byte of the file: log-in, EPSV, the data connection
 * and RETR, while all the others do the same; p50 and p99 over the sessions.
 *
 * Session i starts i * START_SPACING_MS after the first (200 sessions within
 * one second), not all in the same instant: vsftpd does not survive that.
 * With 200 log-ins at once (from this client, or from 200 Python threads with
 * ftplib, with no SSH at all), a third to a half of the sessions stopped
 * getting replies for good, some after the greeting, some after PASS, while
 * the processes serving them were gone; at 2 ms apart some still did; at
 * 5 ms apart none did in any run here. So this measures how each forwarder
 * copes with sessions arriving faster than one at a time (through SSH each
 * takes far longer than 5 ms, so dozens overlap), and `direct` shows the FTP
 * server's own share.
 */
import { performance } from 'node:perf_hooks';
import { delay } from '../../helpers/time.js';
import { type BenchContext, type ReportContext, type Section } from '../context.js';
import { FtpClient } from '../ftpClient.js';
import { errorText, rotate, type Sample } from '../measure.js';
import { failedNote, figures, fmtSpread, headlineRow, spread } from '../summary.js';

/** Nearest-rank percentile (p in 0-100) of values. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}

const START_SPACING_MS = 5;

const p50 = (s: Sample): number | null => s.metrics?.['ttfbP50Ms'] ?? null;
const p99 = (s: Sample): number | null => s.metrics?.['ttfbP99Ms'] ?? null;

async function run(ctx: BenchContext): Promise<void> {
  const { config, bench, files } = ctx;
  const n = config.manySessions;
  process.stderr.write(`\n${n} sessions at once, one small file each: time to first byte\n`);
  const [name, contents] = [...files.small][0]!;
  for (let round = 0; round < config.rounds; round++) {
    if (!ctx.roundAllowed('many sessions', round)) break;
    for (const contender of rotate(ctx.contenders, round)) {
      let firstBytesMs: number[] = [];
      let failures: string[] = [];
      await bench.measure(contender, 'many-ttfb', round, {
        bytes: n * contents.length,
        files: n,
        prepare: async () => {
          firstBytesMs = [];
          failures = [];
        },
        transfer: async () => {
          await Promise.all(Array.from({ length: n }, async (_, i) => {
            await delay(i * START_SPACING_MS);
            const started = performance.now();
            let client: FtpClient | undefined;
            try {
              client = await FtpClient.login(contender.socks, contender.ftpHost, contender.ftpPort);
              const timing: { firstByteAt?: number } = {};
              const body = await client.get(`small/${name}`, timing);
              if (!body.equals(contents)) throw new Error(`wrong data (${body.length} bytes)`);
              if (timing.firstByteAt === undefined) throw new Error('no first byte');
              firstBytesMs.push(timing.firstByteAt - started);
              await client.quit();
            } catch (error) {
              failures.push(errorText(error));
            } finally {
              client?.close();
            }
          }));
          return { problems: failures.length === 0 ? [] : [`${failures.length} of ${n} sessions failed, e.g. ${failures[0]}`], stalls: 0 };
        },
        // Each file was compared with what was served as it arrived.
        verify: async () => (firstBytesMs.length === n ? [] : [`${n - firstBytesMs.length} sessions without a first byte`]),
        metrics: () => ({ ttfbP50Ms: percentile(firstBytesMs, 50) ?? -1, ttfbP99Ms: percentile(firstBytesMs, 99) ?? -1 }),
      });
    }
  }
}

function report(r: ReportContext): void {
  const n = r.config.manySessions;
  r.heading(`${n} sessions at once on loopback (one started every ${START_SPACING_MS} ms), each logging in and fetching one ${r.config.fileKiB} KiB file: time to first byte (ms, from connect)`);
  r.note(`The benchmark's own FTP client, in one process, a session started every ${START_SPACING_MS} ms; p50 and p99 over the sessions of a round, then median (range) over rounds.`);
  r.table(
    ['contender', 'p50 ms', 'p99 ms', 'all sessions done, s'],
    r.contenders.map((c) => {
      const s = r.get('many-ttfb', c.key);
      return [c.label + failedNote(s), fmtSpread(spread(figures(r.bench.samples, 'many-ttfb', c.key, p50))), fmtSpread(spread(figures(r.bench.samples, 'many-ttfb', c.key, p99))), fmtSpread(spread(figures(r.bench.samples, 'many-ttfb', c.key, (x) => x.seconds)), (v) => v.toFixed(2))];
    }),
  );
  r.headline(headlineRow(r, `${n} sessions at once: time to first byte p50, ms (lower is better)`, 'many-ttfb', p50));
  r.headline(headlineRow(r, `${n} sessions at once: time to first byte p99, ms (lower is better)`, 'many-ttfb', p99));
}

export const manySessions: Section = { id: 'sessions', kinds: () => ['many-ttfb'], run, report, rssLabel: 'many sessions' };
