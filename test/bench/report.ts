/** The report: the environment, each section's part, memory, and the verdict; as text and as JSON. */
import type { Config } from './config.js';
import type { Contender, ContenderKey } from './contenders.js';
import type { ReportContext, RssPoint, Section } from './context.js';
import type { Environment } from './environment.js';
import type { Bench, Kind } from './measure.js';
import { fmtRatio, kib, ratio, summarize, table, type Summary } from './summary.js';

export function buildReport(
  config: Config,
  env: Environment,
  contenders: Contender[],
  bench: Bench,
  sections: readonly Section[],
  rss: RssPoint[],
  finalRss: Partial<Record<ContenderKey, number | null>>,
  skipped: string[],
  startedAt: Date,
): { text: string; json: unknown } {
  const kinds: Kind[] = sections.flatMap((s) => s.kinds);
  /** Measured for the forwarders only: `direct` has no process whose memory could grow. */
  const forwardersOnly = (kind: Kind): boolean => sections.some((s) => s.forwardersOnly === true && s.kinds.includes(kind));
  const summaries = new Map<string, Summary>();
  for (const kind of kinds) for (const c of contenders) summaries.set(`${kind}/${c.key}`, summarize(bench.samples, kind, c.key));
  const get = (kind: Kind, key: ContenderKey): Summary => summaries.get(`${kind}/${key}`)!;
  const out: string[] = [];
  const say = (line = ''): void => void out.push(line);
  const roundsText = config.rounds === 1 ? '1 round' : `medians of ${config.rounds} interleaved rounds`;
  const r: ReportContext = { config, contenders, bench, get, say };

  say();
  say(`ftpfwd benchmark${config.quick ? ' (--quick)' : ''}: loopback, passive mode (EPSV), ${roundsText}, contenders interleaved`);
  say('MB = 10^6 bytes. CPU = user+system seconds of the forwarding process (ftpfwd\'s node, or the ssh client);');
  say('sshd CPU = sshd\'s per-connection processes over the same interval. Ratios are ftpfwd divided by the other.');
  say();
  say('Environment');
  const binding = env.ssh2NativeBinding === null ? 'unknown' : env.ssh2NativeBinding ? 'yes' : 'NO (pure JS crypto)';
  say(table(['', ''], [
    ['node', env.node],
    ['ssh2', `${env.ssh2}, native crypto binding: ${binding}`],
    ['ssh2 cipher order', env.ssh2DefaultCiphers.join(', ')],
    ['OpenSSH', env.openssh],
    ['curl', env.curl],
    ['CPU', `${env.cpuCount} x ${env.cpu}, AES-NI: ${env.aesNi ? 'yes' : 'no'}`],
    ['kernel', env.kernel],
    ['load average (1 min)', `${env.loadAtStart.toFixed(2)} at start, ${env.loadAtEnd === null ? '-' : env.loadAtEnd.toFixed(2)} at end`],
    ['test files in', env.workDir],
    ...contenders.filter((c) => c.key !== 'direct').map((c) => [`cipher ${c.label}`, c.cipher]),
  ], true).split('\n').slice(2).join('\n'));

  for (const section of sections) section.report(r);

  const forwarders = contenders.filter((c) => c.proc !== null);
  say();
  say('5. Memory of the forwarding processes: RSS at start, peak RSS (VmHWM) after each section, RSS at the end');
  say(table(
    ['process', 'RSS at start', ...rss.map((p) => `peak after ${p.after}`), 'RSS at end'],
    forwarders.map((c) => [c.label, kib(c.rssAtStartKiB), ...rss.map((p) => kib(p.kib[c.key] ?? null)), kib(finalRss[c.key] ?? null)]),
  ));
  const peak = (key: ContenderKey): number | null => rss.at(-1)?.kib[key] ?? null;
  say();
  say(table(['ratio', 'peak RSS'], (['ssh-default', 'ssh-aes-gcm'] as const).map((other) => [
    `ftpfwd / ${contenders.find((c) => c.key === other)!.label}`,
    fmtRatio(ratio(peak('ftpfwd'), peak(other))),
  ])));

  say();
  if (bench.failures.length === 0 && skipped.length === 0) {
    say(`All ${bench.samples.length} measured transfers verified by SHA-256.`);
  } else {
    say(`FAILED: ${bench.failures.length} problem(s)${skipped.length > 0 ? `, ${skipped.length} round(s) skipped` : ''}`);
    for (const failure of bench.failures) say(`  - ${failure}`);
    for (const skip of skipped) say(`  - skipped ${skip}`);
  }
  const elapsed = (Date.now() - startedAt.getTime()) / 1000;
  say(`Run took ${elapsed.toFixed(0)} s.`);

  const json = {
    startedAt: startedAt.toISOString(),
    elapsedSeconds: elapsed,
    config,
    environment: env,
    contenders: contenders.map((c) => ({ key: c.key, label: c.label, cipher: c.cipher, pid: c.proc?.pid ?? null, rssAtStartKiB: c.rssAtStartKiB })),
    summaries: [...summaries.values()].filter((s) => s.contender !== 'direct' || !forwardersOnly(s.kind)),
    ratios: Object.fromEntries(
      (['ssh-default', 'ssh-aes-gcm', 'direct'] as const).map((other) => [
        `ftpfwd/${other}`,
        Object.fromEntries(kinds.filter((kind) => other !== 'direct' || !forwardersOnly(kind)).map((kind) => {
          const a = get(kind, 'ftpfwd');
          const b = get(kind, other);
          return [kind, {
            throughput: kind.startsWith('small') ? ratio(a.filesPerSecond, b.filesPerSecond) : ratio(a.mbPerSecond, b.mbPerSecond),
            forwarderCpu: kind.startsWith('small') ? ratio(a.forwarderCpuMsPerFile, b.forwarderCpuMsPerFile) : ratio(a.forwarderCpuSecondsPerGiB, b.forwarderCpuSecondsPerGiB),
          }];
        })),
      ]),
    ),
    ...Object.assign({}, ...sections.map((s) => s.json?.(r) ?? {})),
    peakRssKiB: rss,
    finalRssKiB: finalRss,
    samples: bench.samples,
    failures: bench.failures,
    skipped,
    ok: bench.failures.length === 0 && skipped.length === 0,
  };
  return { text: `${out.join('\n')}\n`, json };
}
