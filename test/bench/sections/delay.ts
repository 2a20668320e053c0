/**
 * Long links: the delay line (test/helpers/delayLine.ts) between each SSH
 * client and sshd, at each RTT of --rtt, and one file down and up through
 * each forwarder per round. Per RTT: a delay line of its own, new forwarders
 * pointed at it (`-p` and a known_hosts entry for its port), first the delay
 * line's own rate measured, then the rounds.
 *
 * The rate is that of the data phase, size / (curl's time_total -
 * time_pretransfer): the log-in before it costs several round trips for every
 * contender alike and says nothing about the window. The time to first byte
 * is kept as a metric beside it.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startDelayLineProcess, type DelayLineProcess, type DelayLineStats } from '../../helpers/delayLine.js';
import { sha256File, writeRandomFile } from '../../helpers/files.js';
import { knownHostsLine } from '../../helpers/sshd.js';
import { withTimeout } from '../../helpers/time.js';
import { MB, MiB, type Config } from '../config.js';
import { FORWARDERS, ftpUrl, type Contender, type ContenderKey, type SshEndpoint } from '../contenders.js';
import { removeAll, warmUp, type BenchContext, type ReportContext, type Section } from '../context.js';
import { checkFile, curl, curlOutcome, errorText, isInterrupted, rotate, transferTimeoutMs, type Kind, type Sample } from '../measure.js';
import { cpuSeconds, memoryKiB } from '../proc.js';
import { failedNote, figures, fmt, fmtRatio, fmtSpread, headlineRow, kib, ratioRows, spread } from '../summary.js';

/** The delay line must move at least this many times the fastest transfer measured through it. */
const RELAY_HEADROOM = 3;
/** What both OpenSSH and ssh2 open a channel with: the window that caps one channel at window / RTT. */
const STOCK_WINDOW_BYTES = 2 * MiB;
/** The raw TCP probe of the delay line's rate: at least this much, each way. */
const RELAY_PROBE_MIN_BYTES = 256 * MiB;
const RELAY_PROBE_TIMEOUT_MS = 60_000;
/** The delay lines run at this nice value (when allowed): see DelayLineProcessOptions.priority. */
export const DELAY_LINE_PRIORITY = -5;

const down = (rttMs: number): Kind => `rtt${rttMs}-down`;
const up = (rttMs: number): Kind => `rtt${rttMs}-up`;

interface RelayCheck {
  rttMs: number;
  /** Raw TCP through a delay line like the one measured with, MB/s each way; null if the probe failed. */
  rawDownMBps: number | null;
  rawUpMBps: number | null;
  /** The fastest transfer measured through the delay line (data phase), MB/s. */
  fastestMBps: number | null;
  /** The delay line's stats and CPU over the section. */
  stats: DelayLineStats | null;
  cpuSeconds: number | null;
  wallSeconds: number;
  /** VmHWM of each forwarder at the end of the section. */
  peakKiB: Partial<Record<ContenderKey, number | null>>;
  /** The nice value the delay line ran at, if it could be set. */
  priority: number | null;
  problem: string | null;
}

const checks: RelayCheck[] = [];

/** The data-phase seconds of a curl transfer, from its -w line: time_total - time_pretransfer. */
function dataSeconds(stdout: string): number | null {
  const [pretransfer, total] = stdout.trim().split(/\s+/).map(Number);
  return pretransfer === undefined || total === undefined || !(total > pretransfer) ? null : total - pretransfer;
}

function firstByteSeconds(stdout: string): number | null {
  const fields = stdout.trim().split(/\s+/).map(Number);
  return Number.isFinite(fields[2]) ? fields[2]! : null;
}

/** MB/s of the data phase. */
function dataRate(s: Sample): number | null {
  const seconds = s.metrics?.['dataSeconds'];
  return seconds === undefined || seconds <= 0 ? null : s.bytes / MB / seconds;
}

/**
 * Sends `bytes` one way through a delay line with this RTT to a sink in this
 * process, over raw TCP: the delay line acknowledges TCP locally, so nothing
 * but the delay line itself (its CPU, its bound) limits the rate. MB/s over
 * the time from the first byte sent to the last received, less the one-way
 * delay.
 */
async function probeRate(rttMs: number, bytes: number, direction: 'up' | 'down'): Promise<number> {
  const block = randomBytes(MiB);
  let received = 0;
  let doneAt = 0;
  let finished: () => void = () => undefined;
  const allIn = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const count = (socket: Socket): void => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= bytes) {
        doneAt = performance.now();
        finished();
      }
    });
    socket.on('error', () => undefined);
  };
  /** Writes `bytes` as fast as the socket takes them. */
  const send = (socket: Socket): void => {
    let left = bytes;
    const more = (): void => {
      while (left > 0) {
        const chunk = left >= block.length ? block : block.subarray(0, left);
        left -= chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', more);
          return;
        }
      }
    };
    more();
  };
  let startedAt = 0;
  const sink = createServer((socket) => {
    if (direction === 'up') {
      count(socket);
    } else {
      socket.on('error', () => undefined);
      startedAt = performance.now();
      send(socket);
    }
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  let line: DelayLineProcess | undefined;
  let client: Socket | undefined;
  try {
    line = await startDelayLineProcess({ targetHost: '127.0.0.1', targetPort: (sink.address() as AddressInfo).port, rttMs, priority: DELAY_LINE_PRIORITY });
    const { port } = line;
    client = await withTimeout(new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
      socket.once('error', reject);
    }), 10_000, 'connecting to the delay line');
    if (direction === 'up') {
      startedAt = performance.now();
      send(client);
    } else {
      count(client);
    }
    await withTimeout(allIn, RELAY_PROBE_TIMEOUT_MS, `raw TCP through the delay line (${direction})`);
    const seconds = (doneAt - startedAt - rttMs / 2) / 1000;
    return bytes / MB / Math.max(seconds, 1e-3);
  } finally {
    client?.destroy();
    await line?.stop();
    await new Promise<void>((resolve) => sink.close(() => resolve()));
  }
}

/** ftpfwd and ssh reach sshd through the delay line: its port, and a known_hosts entry for it. */
export async function endpointThrough(ctx: BenchContext, line: DelayLineProcess): Promise<SshEndpoint> {
  const knownHostsFile = join(ctx.workDir, `known_hosts-delay-${line.port}`);
  await writeFile(knownHostsFile, knownHostsLine(line.host, line.port, ctx.sshd.hostPublicKey));
  return { host: line.host, port: line.port, user: ctx.sshd.user, identityFile: ctx.sshd.identityFile, knownHostsFile };
}

async function runOneRtt(ctx: BenchContext, rttMs: number, file: string, sum: string): Promise<void> {
  const { config, bench } = ctx;
  const bytes = config.delayMiB * MiB;
  const check: RelayCheck = { rttMs, rawDownMBps: null, rawUpMBps: null, fastestMBps: null, stats: null, cpuSeconds: null, wallSeconds: 0, peakKiB: {}, priority: null, problem: null };
  checks.push(check);
  const probeBytes = Math.max(RELAY_PROBE_MIN_BYTES, 2 * bytes);
  try {
    check.rawDownMBps = await probeRate(rttMs, probeBytes, 'down');
    check.rawUpMBps = await probeRate(rttMs, probeBytes, 'up');
  } catch (error) {
    check.problem = `the delay line's rate could not be measured: ${errorText(error)}`;
  }
  process.stderr.write(`  delay line, raw TCP: ${fmt(check.rawDownMBps)} MB/s down, ${fmt(check.rawUpMBps)} MB/s up\n`);

  const line = await startDelayLineProcess({ targetHost: ctx.sshd.host, targetPort: ctx.sshd.port, rttMs, priority: DELAY_LINE_PRIORITY });
  check.priority = line.priority;
  ctx.addCleanup(async () => void (await line.stop()));
  const started = performance.now();
  const cpuBefore = cpuSeconds(line.proc.pid);
  const forwarders: Contender[] = [];
  try {
    const endpoint = await endpointThrough(ctx, line);
    for (const key of FORWARDERS) {
      const contender = await ctx.startContender(key, endpoint);
      forwarders.push(contender);
      await warmUp(ctx, contender);
    }
    const timeout = transferTimeoutMs(bytes) + 30 * rttMs;
    for (let round = 0; round < config.rounds; round++) {
      if (!ctx.roundAllowed(`delay ${rttMs} ms`, round)) break;
      for (const contender of rotate(forwarders, round)) {
        const out = join(ctx.clientDir, `delay-${contender.key}.bin`);
        let times = '';
        const metrics = (): Record<string, number> => {
          const data = dataSeconds(times);
          const first = firstByteSeconds(times);
          return { ...(data === null ? {} : { dataSeconds: data }), ...(first === null ? {} : { firstByteSeconds: first }) };
        };
        await bench.measure(contender, down(rttMs), round, {
          bytes,
          files: 1,
          prepare: () => removeAll([out]),
          transfer: async () => {
            const result = await curl(contender, ['-o', out, ftpUrl(contender, 'delay.bin')], timeout);
            times = result.stdout;
            return curlOutcome([result], rttMs);
          },
          verify: () => checkFile(out, sum, 'download'),
          metrics,
        });
        await removeAll([out]);
        const remoteName = `delay-${rttMs}-${contender.key}-${round}.bin`;
        const uploaded = join(ctx.vsftpd.uploadDir, remoteName);
        await bench.measure(contender, up(rttMs), round, {
          bytes,
          files: 1,
          prepare: () => removeAll([uploaded]),
          transfer: async () => {
            const result = await curl(contender, ['-T', file, ftpUrl(contender, `incoming/${remoteName}`)], timeout);
            times = result.stdout;
            return curlOutcome([result], rttMs);
          },
          verify: () => checkFile(uploaded, sum, 'upload'),
          metrics,
        });
        await removeAll([uploaded]);
      }
    }
  } catch (error) {
    bench.failures.push(`delay ${rttMs} ms: ${errorText(error)}`);
  } finally {
    for (const contender of forwarders) {
      check.peakKiB[contender.key] = contender.proc === null ? null : memoryKiB(contender.proc.pid, 'VmHWM');
      await contender.proc?.stop();
    }
    const cpuAfter = cpuSeconds(line.proc.pid);
    check.cpuSeconds = cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore;
    check.wallSeconds = (performance.now() - started) / 1000;
    check.stats = await line.stop();
  }

  // Measured again after the rounds when it fell short: the machine is shared, and a busy moment is not the delay line's rate.
  const measuredRates = (): number[] => bench.samples.filter((s) => s.kind === down(rttMs) || s.kind === up(rttMs)).flatMap((s) => {
    const rate = s.ok ? dataRate(s) : null;
    return rate === null ? [] : [rate];
  });
  const rates = measuredRates();
  check.fastestMBps = rates.length === 0 ? null : Math.max(...rates);
  const slowestRaw = (): number | null => (check.rawDownMBps === null || check.rawUpMBps === null ? null : Math.min(check.rawDownMBps, check.rawUpMBps));
  const shortOfHeadroom = (): boolean => {
    const slowest = slowestRaw();
    return slowest !== null && check.fastestMBps !== null && slowest < RELAY_HEADROOM * check.fastestMBps;
  };
  if (check.problem === null && shortOfHeadroom()) {
    try {
      check.rawDownMBps = Math.max(check.rawDownMBps ?? 0, await probeRate(rttMs, probeBytes, 'down'));
      check.rawUpMBps = Math.max(check.rawUpMBps ?? 0, await probeRate(rttMs, probeBytes, 'up'));
    } catch (error) {
      check.problem = `the delay line's rate could not be measured again: ${errorText(error)}`;
    }
  }
  const slowest = slowestRaw();
  if (check.problem === null && slowest !== null && check.fastestMBps !== null && shortOfHeadroom()) {
    check.problem = `the delay line moved ${fmt(slowest)} MB/s, less than ${RELAY_HEADROOM}x the fastest transfer through it (${fmt(check.fastestMBps)} MB/s): figures at ${rttMs} ms may be its own limit`;
  }
  if (check.problem === null && (check.stats?.up.pauses ?? 0) + (check.stats?.down.pauses ?? 0) > 0) {
    check.problem = `the delay line at ${rttMs} ms stopped reading at its bound ${String((check.stats?.up.pauses ?? 0) + (check.stats?.down.pauses ?? 0))} time(s)`;
  }
  if (check.problem !== null) bench.failures.push(`delay ${rttMs} ms: ${check.problem}`);
}

async function run(ctx: BenchContext): Promise<void> {
  const { config } = ctx;
  const file = join(ctx.ftpRoot, 'delay.bin');
  await writeRandomFile(file, config.delayMiB * MiB);
  const sum = await sha256File(file);
  for (const rttMs of config.rttsMs) {
    if (isInterrupted()) break;
    process.stderr.write(`\ndelay line, RTT ${rttMs} ms: ${config.delayMiB} MiB down and up per contender and round\n`);
    await runOneRtt(ctx, rttMs, file, sum);
  }
}

function report(r: ReportContext): void {
  const { config } = r;
  r.heading(`Long links: a delay line between the SSH client and sshd, ${config.delayMiB} MiB down and up per contender and round`);
  r.note('MB/s of the data phase (curl time_total - time_pretransfer); time to first byte = curl time_starttransfer, log-in included.');
  r.note(`"window cap": what one channel with a stock ${STOCK_WINDOW_BYTES / MiB} MiB window can move at that RTT (window / RTT).`);
  for (const check of checks) {
    const { rttMs } = check;
    const cap = STOCK_WINDOW_BYTES / MB / (rttMs / 1000);
    r.note(`RTT ${rttMs} ms (window cap ${fmt(cap)} MB/s):`);
    r.table(
      ['contender', 'down MB/s', 'up MB/s', 'first byte down s', 'peak RSS'],
      r.contenders.filter((c) => FORWARDERS.includes(c.key)).map((c) => {
        const d = r.get(down(rttMs), c.key);
        const u = r.get(up(rttMs), c.key);
        const first = spread(figures(r.bench.samples, down(rttMs), c.key, (s) => s.metrics?.['firstByteSeconds'] ?? null));
        return [c.label + failedNote(d, u), fmtSpread(spread(figures(r.bench.samples, down(rttMs), c.key, dataRate))), fmtSpread(spread(figures(r.bench.samples, up(rttMs), c.key, dataRate))), fmtSpread(first, (v) => v.toFixed(2)), kib(check.peakKiB[c.key] ?? null)];
      }),
    );
    r.table(['ratio (>1 = ftpfwd faster)', 'down MB/s', 'up MB/s'], ratioRows(r, down(rttMs), up(rttMs), dataRate, () => null).map((row) => row.slice(0, 3)));
    const stats = check.stats;
    const cpuShare = check.cpuSeconds === null || check.wallSeconds === 0 ? null : check.cpuSeconds / check.wallSeconds;
    r.note(`delay line: raw TCP ${fmt(check.rawDownMBps)} MB/s down, ${fmt(check.rawUpMBps)} MB/s up; fastest transfer through it ${fmt(check.fastestMBps)} MB/s`
      + ` (${check.fastestMBps === null || check.rawDownMBps === null || check.rawUpMBps === null ? '-' : fmtRatio(Math.min(check.rawDownMBps, check.rawUpMBps) / check.fastestMBps)} headroom, ${RELAY_HEADROOM}x needed);`
      + ` its CPU ${cpuShare === null ? '-' : `${(cpuShare * 100).toFixed(0)}%`} of one core over the section (nice ${check.priority ?? 'unchanged'});`
      + ` releases after due: ${stats === null ? '-' : `${Math.max(stats.up.meanLateMs, stats.down.meanLateMs).toFixed(2)} ms on average, ${Math.max(stats.up.maxLateMs, stats.down.maxLateMs).toFixed(1)} ms at worst`};`
      + ` stopped reading at its bound ${stats === null ? '-' : String(stats.up.pauses + stats.down.pauses)} time(s).${check.problem === null ? '' : ` PROBLEM: ${check.problem}`}`);
    r.headline(headlineRow(r, `RTT ${rttMs} ms: ${config.delayMiB} MiB download, MB/s`, down(rttMs), dataRate));
    r.headline(headlineRow(r, `RTT ${rttMs} ms: ${config.delayMiB} MiB upload, MB/s`, up(rttMs), dataRate));
  }
}

function json(): Record<string, unknown> {
  return { delayLine: { headroomNeeded: RELAY_HEADROOM, stockWindowBytes: STOCK_WINDOW_BYTES, checks } };
}

function kinds(config: Config): Kind[] {
  return config.rttsMs.flatMap((rttMs) => [down(rttMs), up(rttMs)]);
}

export const delayLine: Section = { id: 'delay', kinds, forwardersOnly: true, run, report, json };
