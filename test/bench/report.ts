/**
 * The report: the environment and the limits of what is measured, a summary
 * of ftpfwd against OpenSSH, each section's own tables, and the verdict; as
 * text, as Markdown (`--markdown`, and the README's Performance section),
 * and as JSON.
 */
import type { Config } from './config.js';
import { BASELINES, FORWARDERS, type Contender, type ContenderKey } from './contenders.js';
import type { ReportContext, RssPoint, Section } from './context.js';
import { Document, renderMarkdown, renderText, type Block } from './document.js';
import type { Environment } from './environment.js';
import type { Bench, Kind } from './measure.js';
import { filesPerSecond, mbPerSecond, roundRatios, spread, summarize, type Summary } from './summary.js';

/** Said in every report, and in the README: what the figures can and cannot show. */
export const LIMITS: readonly string[] = [
  'On loopback the SSH paths are CPU-bound: ssh or ftpfwd, sshd, curl and vsftpd share the machine\'s cores, so the window does not matter there; bulk figures there compare the cost of encryption and forwarding.',
  'Through the delay line one SSH channel moves at most window / RTT. OpenSSH and ssh2 both open channels with a 2 MiB window (about 40 MB/s at 50 ms, 20 MB/s at 100 ms); the receiver sets the window, so ftpfwd can lift it for downloads only.',
  'Uploads are capped by the window sshd advertises (2 MiB in stock OpenSSH) for every contender alike, whatever the client does.',
  'The delay line is a user-space relay between the SSH client and sshd (the kernel here has no netem); it acknowledges TCP locally, so the delay is seen by SSH and FTP, not by TCP\'s own window. Its own rate at each RTT is measured and must be at least 3x the fastest transfer through it.',
  'sshd leaves Nagle\'s algorithm on for connections that only forward (no command, no subsystem), which costs small transfers a delayed-ACK wait on ssh -D and ftpfwd alike.',
  'The machine is shared: absolute figures swing between runs; the ratios, taken round by round within one run, are what counts.',
];

export interface Report {
  text: string;
  markdown: string;
  /** The README's Performance section (between its markers). */
  readme: string;
  json: Record<string, unknown>;
}

interface Parts {
  header: Block[];
  summaryHeader: string[];
  summary: string[][];
  sections: Block[];
  verdict: Block[];
}

function environmentRows(env: Environment, contenders: Contender[]): string[][] {
  const binding = env.ssh2NativeBinding === null ? 'unknown' : env.ssh2NativeBinding ? 'yes' : 'NO (pure JS crypto)';
  return [
    ['node', env.node],
    ['ssh2', `${env.ssh2}, native crypto binding: ${binding}`],
    ['ssh2 cipher order', env.ssh2DefaultCiphers.join(', ')],
    ['OpenSSH', env.openssh],
    ['curl', env.curl],
    ['lftp', env.lftp],
    ['CPU', `${env.cpuCount} x ${env.cpu}, AES-NI: ${env.aesNi ? 'yes' : 'no'}`],
    ['kernel', env.kernel],
    ['load average (1 min)', `${env.loadAtStart.toFixed(2)} at start, ${env.loadAtEnd === null ? '-' : env.loadAtEnd.toFixed(2)} at end`],
    ['test files in', env.workDir],
    ...contenders.filter((c) => c.key !== 'direct').map((c) => [`cipher ${c.label}`, c.cipher]),
  ];
}

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
): Report {
  const kinds: Kind[] = sections.flatMap((s) => s.kinds(config));
  /** Measured for the forwarders only: `direct` has no process whose memory could grow. */
  const forwardersOnly = (kind: Kind): boolean => sections.some((s) => s.forwardersOnly === true && s.kinds(config).includes(kind));
  const summaries = new Map<string, Summary>();
  for (const kind of kinds) for (const c of contenders) summaries.set(`${kind}/${c.key}`, summarize(bench.samples, kind, c.key));
  const get = (kind: Kind, key: ContenderKey): Summary => summaries.get(`${kind}/${key}`) ?? summarize(bench.samples, kind, key);
  const labelOf = (key: ContenderKey): string => contenders.find((c) => c.key === key)?.label ?? key;
  const roundsText = config.rounds === 1 ? '1 round' : `medians of ${config.rounds} interleaved rounds`;

  const header = new Document();
  header.heading(`ftpfwd benchmark${config.quick ? ' (--quick)' : ''}: passive mode (EPSV), ${roundsText}, contenders interleaved`);
  header.note('MB = 10^6 bytes, MiB = 2^20. CPU = user+system seconds of the forwarding process (ftpfwd\'s node, or the ssh client);');
  header.note('sshd CPU = sshd\'s per-connection processes over the same interval. Ratios are ftpfwd divided by the other, round by round:');
  header.note('the median, and in brackets the lowest and highest round.');
  header.heading('Environment');
  header.table(['', ''], environmentRows(env, contenders), true);
  header.heading('Limits of these measurements');
  for (const limit of LIMITS) header.note(`- ${limit}`);

  const summary: string[][] = [];
  const body = new Document();
  const contextFor = (number: number, doc: Document, headlines: string[][]): ReportContext => ({
    config,
    contenders,
    bench,
    get,
    heading: (text) => doc.heading(`${number}. ${text}`),
    note: (text) => doc.note(text),
    table: (head, rows) => doc.table(head, rows),
    headline: (row) => void headlines.push(row),
    rss,
    finalRss,
  });
  sections.forEach((section, index) => section.report(contextFor(index + 1, body, summary)));

  const verdict = new Document();
  verdict.heading('Verdict');
  if (bench.failures.length === 0 && skipped.length === 0) {
    verdict.note(`All ${bench.samples.length} measured transfers verified by SHA-256; every check passed.`);
  } else {
    verdict.note(`FAILED: ${bench.failures.length} problem(s)${skipped.length > 0 ? `, ${skipped.length} round(s) skipped` : ''}`);
    for (const failure of bench.failures) verdict.note(`- ${failure}`);
    for (const skip of skipped) verdict.note(`- skipped ${skip}`);
  }
  const elapsed = (Date.now() - startedAt.getTime()) / 1000;
  verdict.note(`Run took ${elapsed.toFixed(0)} s.`);

  const summaryHeader = ['figure', ...FORWARDERS.map(labelOf), ...BASELINES.map((b) => `ftpfwd / ${labelOf(b)}`)];
  const parts: Parts = { header: header.blocks, summaryHeader, summary, sections: body.blocks, verdict: verdict.blocks };
  const summaryBlocks = (): Block[] => {
    const doc = new Document();
    doc.heading('Summary: medians; ratios round by round, median (lowest-highest)');
    doc.table(parts.summaryHeader, parts.summary);
    return doc.blocks;
  };
  const all = [...parts.header, ...summaryBlocks(), ...parts.sections, ...parts.verdict];

  const json = {
    startedAt: startedAt.toISOString(),
    elapsedSeconds: elapsed,
    config,
    environment: env,
    limits: LIMITS,
    contenders: contenders.map((c) => ({ key: c.key, label: c.label, cipher: c.cipher, pid: c.proc?.pid ?? null, rssAtStartKiB: c.rssAtStartKiB })),
    summary: { header: summaryHeader, rows: summary },
    summaries: [...summaries.values()].filter((s) => s.contender !== 'direct' || !forwardersOnly(s.kind)),
    ratios: Object.fromEntries(
      [...BASELINES, 'direct'].map((other) => [
        `ftpfwd/${other}`,
        Object.fromEntries(kinds.filter((kind) => other !== 'direct' || !forwardersOnly(kind)).map((kind) => [kind, {
          mbPerSecond: spread(roundRatios(bench.samples, kind, 'ftpfwd', other, mbPerSecond)),
          filesPerSecond: spread(roundRatios(bench.samples, kind, 'ftpfwd', other, filesPerSecond)),
        }])),
      ]),
    ),
    ...Object.assign({}, ...sections.map((s) => s.json?.(contextFor(0, new Document(), [])) ?? {})),
    peakRssKiB: rss,
    finalRssKiB: finalRss,
    samples: bench.samples,
    failures: bench.failures,
    skipped,
    ok: bench.failures.length === 0 && skipped.length === 0,
  };
  return {
    text: renderText(all),
    markdown: renderMarkdown(all),
    readme: readmeSection(config, env, startedAt, parts, summaryBlocks()),
    json,
  };
}

/** The README's Performance section: when and where, the limits, the summary, and every table folded away. */
function readmeSection(config: Config, env: Environment, startedAt: Date, parts: Parts, summary: Block[]): string {
  const lines = [
    `Measured ${startedAt.toISOString().slice(0, 10)} on ${env.cpuCount} x ${env.cpu} (AES-NI: ${env.aesNi ? 'yes' : 'no'}), Linux ${env.kernel}, Node ${env.node}, ssh2 ${env.ssh2}, ${env.openssh.split(',')[0]}, ${config.rounds === 1 ? '1 round' : `${config.rounds} rounds`}${config.quick ? ' (--quick)' : ''}, with the commands above.`,
    '',
    ...LIMITS.map((limit) => `- ${limit}`),
    '',
    renderMarkdown(summary.filter((b) => b.kind !== 'heading')).trim(),
    '',
    '<details><summary>Every table of this run</summary>',
    '',
    renderMarkdown([...parts.sections, ...parts.verdict], 4).trim(),
    '',
    '</details>',
  ];
  return lines.join('\n');
}
