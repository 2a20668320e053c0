/**
 * The SFTP bridge (`-L port:sftp:`) against OpenSSH's own `sftp -b`, on
 * loopback and through the delay line: a large file down and up with curl,
 * and a directory of small files mirrored with lftp. It runs its own sshd
 * (internal-sftp) and files; see ../sftpBridge.ts, which also runs alone.
 */
import { errorText } from '../measure.js';
import { delayLineVia, runSftpBridgeBench, type SftpBridgeBenchResult, type Throughput } from '../sftpBridge.js';
import type { BenchContext, ReportContext, Section } from '../context.js';
import { fmtRatio } from '../summary.js';

/** The sizes the bridge's targets are stated for (1 GiB, 1,000 files); --quick uses the run's own. */
const SIZE_MIB = 1024;
/**
 * Through the delay line each small file costs round trips, and each 1 GiB
 * transfer half a minute: a quarter of the work gives the same rates in a
 * quarter of the time (a round of the full sizes there took eight minutes).
 */
const DELAYED_SHARE = 4;
/** The RTT of the delay-line run, when --rtt lists it; otherwise the first listed. */
const PREFERRED_RTT_MS = 50;

const results: SftpBridgeBenchResult[] = [];

async function run(ctx: BenchContext): Promise<void> {
  const { config } = ctx;
  const sizeMiB = config.quick ? config.sizeMiB : SIZE_MIB;
  const files = config.mirrorFiles;
  const rttMs = config.rttsMs.includes(PREFERRED_RTT_MS) ? PREFERRED_RTT_MS : config.rttsMs[0];
  const log = (line: string): void => void process.stderr.write(`  ${line}\n`);
  process.stderr.write(`\nSFTP bridge against sftp -b, ${sizeMiB} MiB and ${files} small files\n`);
  for (const via of [undefined, rttMs]) {
    if (!ctx.roundAllowed('sftp-bridge', results.length)) break;
    try {
      const share = via === undefined ? 1 : DELAYED_SHARE;
      results.push(
        await runSftpBridgeBench({
          sizeMiB: Math.max(1, Math.round(sizeMiB / share)),
          rounds: config.rounds,
          files: Math.max(1, Math.round(files / share)),
          log,
          ...(via === undefined ? {} : { rttMs: via, via: (sshd: { host: string; port: number }) => delayLineVia(sshd, via) }),
          ...(config.tmpBase === undefined ? {} : { workBase: config.tmpBase }),
        }),
      );
    } catch (error) {
      ctx.bench.failures.push(`sftp-bridge${via === undefined ? '' : ` at ${via} ms`}: ${errorText(error)}`);
    }
  }
}

function report(r: ReportContext): void {
  if (results.length === 0) return;
  r.heading(`SFTP bridge against OpenSSH's sftp -b: a large file with curl, small files (1-16 KiB) with lftp mirror, median of ${results[0]!.rounds} interleaved rounds`);
  const path = (result: SftpBridgeBenchResult): string => `${result.rttMs === undefined ? 'loopback' : `${result.rttMs} ms RTT`}, ${result.sizeMiB} MiB / ${result.files} files`;
  const bulk = (label: string, pick: (result: SftpBridgeBenchResult) => Throughput): string[][] =>
    results.map((result) => {
      const t = pick(result);
      return [`${label}, ${path(result)}`, String(t.bridge), String(t.sftp), String(t.sftpAesGcm), fmtRatio(t.ratio), fmtRatio(t.ratioAesGcm), String(t.bridgeCpuSecondsPerGiB)];
    });
  r.table(
    ['transfer', 'bridge MB/s', 'sftp MB/s', 'sftp aes-gcm MB/s', 'bridge/sftp', 'bridge/sftp aes-gcm', 'ftpfwd CPU s/GiB'],
    [...bulk('download', (result) => result.download), ...bulk('upload', (result) => result.upload)],
  );
  r.table(
    ['small files', 'bridge files/s', 'sftp files/s', 'sftp aes-gcm files/s', 'bridge/sftp', 'bridge/sftp aes-gcm'],
    results.map((result) => {
      const s = result.smallFiles;
      return [path(result), String(s.bridgeFilesPerSecond), String(s.sftpFilesPerSecond), String(s.sftpAesGcmFilesPerSecond), fmtRatio(s.ratio), fmtRatio(s.ratioAesGcm)];
    }),
  );
  r.note(`Ciphers: the bridge ${results[0]!.ciphers.bridge} (ssh2's choice), sftp ${results[0]!.ciphers.sftp} and aes128-gcm. sftp -b pipelines its requests; the bridge keeps many reads and writes in flight the same way. Every file of the first round is checked by SHA-256.`);
}

export const sftpBridge: Section = { id: 'sftp-bridge', kinds: () => [], run, report, json: () => ({ sftpBridge: results }) };
