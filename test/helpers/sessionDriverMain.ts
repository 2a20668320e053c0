/**
 * The session driver's process (see sessionDriver.ts, which starts it):
 *
 *   node --import tsx sessionDriverMain.ts '<DriverConfig as JSON>'
 */
import { readFile } from 'node:fs/promises';
import { FtpSessionClient, sha256, type SessionMode } from './inProcessSessions.js';
import { probeMemory } from './memoryProbe.js';
import { memoryKiB, openFdCount } from './procfs.js';
import type { CommonConfig, DriverConfig, DriverReport, LoadConfig, ResourceSample, SoakConfig } from './sessionDriver.js';
import { tcpSockets } from './sockets.js';

const MAX_REPORTED_FAILURES = 10;

function percentiles(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function emit(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

async function sample(config: SoakConfig, session: number, startedAt: number): Promise<ResourceSample> {
  const processes: ResourceSample['processes'] = [];
  for (const pid of config.pids) processes.push({ pid, fds: openFdCount(pid), ...(await probeMemory(pid, config.memoryProbeDir)) });
  const listening = (await tcpSockets(config.bastionNetns)).filter((socket) => socket.state === 'LISTEN').length;
  return { session, elapsedMs: Date.now() - startedAt, processes, bastionListening: listening };
}

async function oneSession(host: string, port: number, mode: SessionMode, config: CommonConfig, expected: string): Promise<void> {
  const session = await FtpSessionClient.login(host, port, config.timeoutMs);
  try {
    const bytes = await session.transfer(`RETR ${config.remotePath}`, mode);
    if (sha256(bytes) !== expected) throw new Error(`${mode}: download of ${bytes.length} bytes differs from the file`);
    await session.quit();
  } finally {
    session.close();
  }
}

async function soak(config: SoakConfig): Promise<DriverReport> {
  const expected = sha256(await readFile(config.localFile));
  const startedAt = Date.now();
  const times: number[] = [];
  const perTarget = new Map<string, number[]>(config.streams.flat().map((target) => [`${target.port} ${target.mode}`, []]));
  const failures: string[] = [];
  let failed = 0;
  let with421 = 0;
  const streams = config.streams.length;
  /** Session `index` (from 0, over all streams) belongs to stream index % streams. */
  const runSession = async (index: number): Promise<void> => {
    const targets = config.streams[index % streams]!;
    const target = targets[Math.floor(index / streams) % targets.length]!;
    const begin = Date.now();
    try {
      await oneSession(target.host, target.port, target.mode, config, expected);
      times.push(Date.now() - begin);
      perTarget.get(`${target.port} ${target.mode}`)?.push(Date.now() - begin);
    } catch (error) {
      failed += 1;
      if (/\b421\b/.test(message(error))) with421 += 1;
      if (failures.length < MAX_REPORTED_FAILURES) failures.push(`session ${index + 1} (${target.port} ${target.mode}): ${message(error)}`);
    }
  };
  let done = 0;
  while (done < config.sessions && failed < config.maxFailures) {
    const round = Math.min(config.sampleEvery, config.sessions - done);
    const first = done;
    await Promise.all(
      config.streams.map(async (_targets, stream) => {
        for (let offset = stream; offset < round && failed < config.maxFailures; offset += streams) await runSession(first + offset);
      }),
    );
    done += round;
    emit({ event: 'sample', ...(await sample(config, done, startedAt)) });
  }
  return {
    sessions: done,
    ok: times.length,
    failures,
    failed,
    with421,
    durationMs: Date.now() - startedAt,
    sessionMs: percentiles(times),
    byTarget: Object.fromEntries([...perTarget].map(([key, values]) => [key, percentiles(values)])),
  };
}

async function load(config: LoadConfig): Promise<DriverReport> {
  const expected = sha256(await readFile(config.localFile));
  const name = config.remotePath.slice(config.remotePath.lastIndexOf('/') + 1);
  let peakRssKiB = 0;
  const watcher = setInterval(() => {
    peakRssKiB = Math.max(peakRssKiB, memoryKiB(config.pid).rss);
  }, 100);
  const startedAt = Date.now();
  const failures: string[] = [];
  let with421 = 0;
  const fail = (index: number, error: unknown): void => {
    if (/\b421\b/.test(message(error))) with421 += 1;
    if (failures.length < MAX_REPORTED_FAILURES) failures.push(`session ${index + 1}: ${message(error)}`);
  };
  try {
    const logins: Array<{ index: number; begin: number; loggedIn: number; session: FtpSessionClient }> = [];
    let next = 0;
    const login = async (): Promise<void> => {
      for (let index = next++; index < config.sessions; index = next++) {
        const begin = Date.now();
        try {
          const session = await FtpSessionClient.login(config.host, config.port, config.timeoutMs);
          logins.push({ index, begin, loggedIn: Date.now(), session });
        } catch (error) {
          fail(index, error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(config.loginConcurrency, config.sessions) }, login));
    emit({ event: 'logged-in', sessions: logins.length, elapsedMs: Date.now() - startedAt });
    const allIn = Date.now();
    const finished = await Promise.all(
      logins.map(async ({ index, begin, loggedIn, session }) => {
        const mode = config.modes[index % config.modes.length]!;
        try {
          const bytes = await session.transfer(`RETR ${config.remotePath}`, mode);
          if (sha256(bytes) !== expected) throw new Error(`${mode}: download of ${bytes.length} bytes differs from the file`);
          const listing = (await session.transfer('LIST /', mode)).toString('latin1');
          if (!listing.includes(name)) throw new Error(`${mode}: ${name} is not in the listing`);
          await session.quit();
          const end = Date.now();
          return { total: end - begin, login: loggedIn - begin, work: end - allIn };
        } catch (error) {
          fail(index, error);
          session.close();
          return null;
        }
      }),
    );
    const ok = finished.filter((entry) => entry !== null);
    return {
      sessions: config.sessions,
      ok: ok.length,
      failures,
      failed: config.sessions - ok.length,
      with421,
      durationMs: Date.now() - startedAt,
      sessionMs: percentiles(ok.map((entry) => entry.total)),
      loginMs: percentiles(ok.map((entry) => entry.login)),
      workMs: percentiles(ok.map((entry) => entry.work)),
      peakRssKiB: Math.max(peakRssKiB, memoryKiB(config.pid).rss),
      hwmKiB: memoryKiB(config.pid).peak,
    };
  } finally {
    clearInterval(watcher);
  }
}

async function main(): Promise<void> {
  const text = process.argv[2];
  if (text === undefined) throw new Error('usage: sessionDriverMain.ts <config JSON>');
  const config = JSON.parse(text) as DriverConfig;
  const report = config.kind === 'soak' ? await soak(config) : await load(config);
  emit({ event: 'done', ...report });
}

main().catch((error: unknown) => {
  process.stderr.write(`session driver: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
