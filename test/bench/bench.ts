/**
 * `npm run bench`: ftpfwd against OpenSSH's own way of carrying FTP
 * (`ssh -D` with curl's SOCKS5 support, lftp under proxychains4), side by
 * side on loopback and through a delay line, through one private sshd to one
 * private vsftpd.
 *
 * Contenders, interleaved within every round (the order rotates per round):
 *   direct       curl straight to vsftpd, no SSH: the ceiling, for reference
 *   ftpfwd       `node bin/ftpfwd -L ... -q`, a child process
 *   ssh-default  `ssh -N -D` with OpenSSH's default cipher
 *   ssh-aes-gcm  `ssh -N -D -c aes128-gcm@openssh.com`
 *
 * Sections (sections/index.ts lists them, each a module of its own): a large
 * file down and up on loopback (curl); many small files one after another in
 * one session (a minimal FTP client, ftpClient.ts); many concurrent sessions
 * (curl); many sessions started together, time to first byte; an lftp mirror
 * of a tree of small files, down and up; long links through a delay line at
 * each RTT of --rtt; a slow reader on either side; and memory (peak RSS of
 * new forwarders after one large transfer and many at once). Every transfer
 * is checked by SHA-256; any wrong or failed transfer, or a delay line slower
 * than 3x what it carried, makes the run exit 1.
 *
 * A new section (an SFTP bridge, an FTPS path) is a module under sections/
 * that exports a `Section` (context.ts) and one line in sections/index.ts; a
 * new forwarding contender is a case in contenders.ts's startForwarder and an
 * entry in FORWARDERS.
 *
 * The slow reader shows whether backpressure holds: when the side that reads
 * is slower than the side that sends, a forwarder must stop reading from the
 * fast side rather than buffer the difference. Downloads are read slowly by
 * curl (--limit-rate); uploads go to a minimal FTP server in this file that
 * reads its data connections at the same rate (vsftpd stays fast, a slow
 * curl upload would only slow the sending side). Each of these transfers gets
 * a new forwarder process, so RSS growth is not hidden in memory that earlier
 * transfers freed.
 *
 * curl 7.88 sometimes sits idle for one second between a 229 reply and
 * connecting the data connection (seen with no SSH at all, more often the
 * faster the reply). For one large transfer that is noise; for a session of
 * many small files it is most of the time measured. So the small files go
 * through a minimal FTP client (EPSV, RETR/STOR, SOCKS5 for ssh -D) with no
 * such wait, and a curl measurement whose set-up took longer than
 * STALL_SECONDS is run again (at most MAX_ATTEMPTS times, counted in the report).
 *
 * MB = 10^6 bytes, MiB/GiB = 2^20/2^30 bytes. CPU is user+system time of the
 * forwarding process (ftpfwd's node process, or the ssh client) read from
 * /proc/<pid>/stat around each measurement; sshd's CPU is that of every
 * process under the sshd daemon over the same interval.
 *
 * The parts: config.ts (settings and command line), contenders.ts (starting
 * ftpfwd and ssh -D), measure.ts (timing, verifying, samples), ftpClient.ts
 * (the minimal FTP client), slowFtpServer.ts, proc.ts (CPU and memory from
 * /proc), summary.ts (medians, ratios, formatting), document.ts (the report as
 * blocks, rendered as text or Markdown), report.ts, renderReadme.ts (the
 * README's Performance section from a run's JSON), and sections/.
 */
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { startSshd } from '../helpers/sshd.js';
import { removeDir } from '../helpers/tmp.js';
import { startVsftpd } from '../helpers/vsftpd.js';
import { MiB, parseConfig, RUN_BUDGET_MS, usage, type Config } from './config.js';
import { FORWARDERS, ftpUrl, probeCiphers, startForwarder, type Contender, type ContenderKey, type FtpAddress, type SshEndpoint } from './contenders.js';
import { prepareFiles, type BenchContext, type RssPoint } from './context.js';
import { environment, makeWorkDir } from './environment.js';
import { inSession } from './ftpClient.js';
import { Bench, checkFile, curl, interrupt, isInterrupted, transferTimeoutMs } from './measure.js';
import { memoryKiB } from './proc.js';
import { buildReport } from './report.js';
import { SECTIONS } from './sections/index.js';

const SECTION_IDS = SECTIONS.map((s) => s.id);
import { SlowFtpServer } from './slowFtpServer.js';

async function main(): Promise<number> {
  let config: Config | null;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n${usage(SECTION_IDS)}\n`);
    return 2;
  }
  if (config === null) {
    process.stdout.write(`${usage(SECTION_IDS)}\n`);
    return 0;
  }
  const only = config.only;
  const unknown = only?.filter((id) => !SECTION_IDS.includes(id)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(`bench: no section called ${unknown.join(', ')}\n${usage(SECTION_IDS)}\n`);
    return 2;
  }
  const sections = SECTIONS.filter((s) => only === null || only.includes(s.id));
  const startedAt = new Date();
  const deadline = Date.now() + RUN_BUDGET_MS;
  const largeBytes = config.sizeMiB * MiB;
  const fileBytes = config.fileKiB * 1024;
  const sessionBytes = config.sessionMiB * MiB;
  // The source files plus a downloaded and an uploaded copy of each, with room to spare.
  const needBytes = 3 * largeBytes + 3 * config.sessions * sessionBytes + 3 * config.files * fileBytes;
  const work = await makeWorkDir(config, needBytes);

  const cleanups: Array<() => Promise<void>> = [];
  let cleaning: Promise<void> | null = null;
  const cleanUp = (): Promise<void> => {
    cleaning ??= (async () => {
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch (error) {
          process.stderr.write(`bench: clean-up: ${error instanceof Error ? error.message : String(error)}\n`);
        }
      }
      await removeDir(work);
    })();
    return cleaning;
  };
  const onSignal = (): void => {
    interrupt();
    process.stderr.write('bench: interrupted, stopping what it started\n');
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const env = await environment(work);
    const root = join(work, 'root');
    const client = join(work, 'client');
    const home = join(work, 'home');
    await mkdir(root);
    await mkdir(client);
    await mkdir(home);
    const files = await prepareFiles(config, root, work);

    const sshd = await startSshd();
    cleanups.push(() => sshd.stop());
    // Every session through a tunnel comes from 127.0.0.1; vsftpd allows 50 from one address by default.
    const vsftpd = await startVsftpd({ root, maxSessions: 2000 });
    cleanups.push(() => vsftpd.stop());
    let sshdPid: number | null = null;
    try {
      sshdPid = Number(readFileSync(join(sshd.dir, 'sshd.pid'), 'utf8').trim()) || null;
    } catch {
      sshdPid = null;
    }

    const slowRate = config.slowRateMiB * MiB;
    const slowTimeout = transferTimeoutMs(largeBytes) + Math.ceil((largeBytes / slowRate) * 1000);
    const slowServer = await SlowFtpServer.start(slowRate, slowTimeout);
    cleanups.push(() => slowServer.close());

    const ftp = { host: vsftpd.host, port: vsftpd.port };
    env.ciphers = await probeCiphers({ endpoint: sshd, ftp, home });
    /** A forwarder like `key`, stopped at the end of the run at the latest. */
    const startContender = async (key: ContenderKey, endpoint: SshEndpoint = sshd, slow?: FtpAddress): Promise<Contender> => {
      const started = await startForwarder(key, { endpoint, ftp, home, cipher: env.ciphers[key] ?? 'unknown', ...(slow === undefined ? {} : { slow }) });
      cleanups.push(async () => void (await started.proc?.stop()));
      return started;
    };

    const direct: Contender = { key: 'direct', label: 'direct (no SSH)', ftpHost: vsftpd.host, ftpPort: vsftpd.port, socks: null, slowServer: null, proc: null, cipher: '-', rssAtStartKiB: null };
    // ftpfwd has no listener for the slow server here (that section starts forwarders of its own); ssh -D reaches anything.
    const forwarders: Contender[] = [];
    for (const key of FORWARDERS) forwarders.push(await startContender(key, sshd, key === 'ftpfwd' ? undefined : slowServer.address));
    const contenders = [direct, ...forwarders];
    const byKey = (key: ContenderKey): Contender => contenders.find((c) => c.key === key)!;

    // Warm-up, unmeasured: every path works with both clients, and curl really uses EPSV.
    const [firstSmall, firstContents] = [...files.small][0]!;
    for (const contender of contenders) {
      const out = join(client, `warmup-${contender.key}.bin`);
      const result = await curl(contender, ['-o', out, ftpUrl(contender, `small/${firstSmall}`)], transferTimeoutMs(fileBytes), true);
      const problems = result.code === 0 ? await checkFile(out, files.smallSums.get(firstSmall)!, 'warm-up download') : [`curl exit ${String(result.code)}: ${result.stderr.slice(-800)}`];
      if (result.code === 0 && !/^> EPSV/m.test(result.stderr)) problems.push('curl did not send EPSV');
      let received: Buffer = Buffer.alloc(0);
      problems.push(...(await inSession(contender, async (session) => {
        received = await session.get(`small/${firstSmall}`);
      })).problems);
      if (problems.length === 0 && !received.equals(firstContents)) problems.push('the small-file client received wrong data');
      if (problems.length > 0) throw new Error(`warm-up via ${contender.label} failed: ${problems.join('; ')}`);
      await rm(out, { force: true });
    }

    const bench = new Bench(sshdPid);
    const rss: RssPoint[] = [];
    const recordRss = (after: string): void => {
      const kib: Partial<Record<ContenderKey, number | null>> = {};
      for (const key of FORWARDERS) {
        const pid = byKey(key).proc?.pid;
        kib[key] = pid === undefined ? null : memoryKiB(pid, 'VmHWM');
      }
      rss.push({ after, kib });
    };
    recordRss('start-up and warm-up');
    const skipped: string[] = [];
    const roundAllowed = (section: string, round: number): boolean => {
      if (isInterrupted()) return false;
      if (bench.tooManyFailures) {
        skipped.push(`${section} round ${round + 1}: too many failures`);
        return false;
      }
      if (Date.now() > deadline) {
        skipped.push(`${section} round ${round + 1}: run budget of ${RUN_BUDGET_MS / 60_000} min used up`);
        return false;
      }
      return true;
    };

    const ctx: BenchContext = {
      config,
      env,
      bench,
      sshd,
      vsftpd,
      slowServer,
      slowTimeoutMs: slowTimeout,
      files,
      ftpRoot: root,
      workDir: work,
      clientDir: client,
      home,
      contenders,
      byKey,
      roundAllowed,
      startContender,
      addCleanup: (cleanup) => void cleanups.push(cleanup),
    };
    for (const section of sections) {
      await section.run(ctx);
      if (section.rssLabel !== undefined) recordRss(section.rssLabel);
    }

    const finalRss: Partial<Record<ContenderKey, number | null>> = {};
    for (const key of FORWARDERS) {
      const pid = byKey(key).proc?.pid;
      finalRss[key] = pid === undefined ? null : memoryKiB(pid, 'VmRSS');
    }

    env.loadAtEnd = loadavg()[0] ?? null;
    const report = buildReport(config, env, contenders, bench, sections, rss, finalRss, skipped, startedAt);
    process.stdout.write(config.markdown ? report.markdown : report.text);
    if (config.jsonPath !== undefined) {
      await writeFile(config.jsonPath, `${JSON.stringify({ ...report.json, markdown: report.markdown, readme: report.readme }, null, 2)}\n`);
      process.stdout.write(`\nJSON written to ${config.jsonPath}\n`);
    }
    return bench.failures.length > 0 || skipped.length > 0 ? 1 : 0;
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  } finally {
    await cleanUp();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

process.exitCode = await main();
