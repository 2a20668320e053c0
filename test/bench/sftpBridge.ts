/**
 * The SFTP bridge against OpenSSH's own sftp client, side by side on the
 * same files in the same run, through the same sshd (internal-sftp):
 *
 * - a large download and upload: curl through the bridge (`-L port:sftp:`)
 *   against `sftp -b` get/put, with OpenSSH's default cipher and with
 *   aes128-gcm;
 * - many small files: lftp `mirror` through the bridge against `sftp -b`
 *   `get` of the same directory.
 *
 * Rounds are interleaved (bridge, sftp, sftp aes-gcm, ...) and medians
 * compared, since absolute speeds swing between runs on a shared machine;
 * every result is checked (SHA-256) in the first round. Run on its own:
 *
 *   node --import tsx test/bench/sftpBridge.ts [--size-mib 1024] [--rounds 3] [--files 1000] [--rtt-ms 50] [--json out.json]
 *
 * or call runSftpBridgeBench() from another bench. `via` puts something
 * between the clients' SSH connections and sshd (a delay line): both the
 * bridge and sftp then connect to it instead of to sshd. `--rtt-ms` uses
 * the shared user-space delay line (test/helpers/delayLine.ts; this kernel
 * has no netem).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startDelayLineProcess } from '../helpers/delayLine.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { run, startProcess, type ProcessHandle, type RunResult } from '../helpers/processes.js';
import { knownHostsLine, startSshd, type SshdInstance } from '../helpers/sshd.js';
import { errorText } from './measure.js';

const MiB = 1024 * 1024;
const CLI = fileURLToPath(new URL('../../bin/ftpfwd', import.meta.url));
const AES_GCM = 'aes128-gcm@openssh.com';
const LISTENING = /ftpfwd: listening on 127\.0\.0\.1:(\d+) /;
const FTP_USER = 'bench';
const FTP_PASSWORD = 'bench-password';

export interface SftpBridgeBenchOptions {
  /** Size of the large file, MiB. */
  sizeMiB: number;
  rounds: number;
  /** Small files for the mirror; sizes spread over 1-16 KiB. */
  files: number;
  /** Where to put the files (default /dev/shm when it has room, else the temp dir). */
  workBase?: string;
  /** An address in front of sshd (a delay line) that both SSH clients connect to instead; it must forward to `sshdPort`. */
  via?: (sshd: { host: string; port: number }) => Promise<{ host: string; port: number; close(): Promise<void> }>;
  /** Recorded in the result when `via` is a delay line. */
  rttMs?: number;
  log?: (line: string) => void;
}

export interface Throughput {
  /** Median MB/s (10^6 bytes) over the rounds. */
  bridge: number;
  sftp: number;
  sftpAesGcm: number;
  /** bridge / sftp with OpenSSH's default cipher; above 1: the bridge is faster. */
  ratio: number;
  ratioAesGcm: number;
  /** CPU seconds ftpfwd used per GiB moved (median). */
  bridgeCpuSecondsPerGiB: number;
}

export interface SftpBridgeBenchResult {
  sizeMiB: number;
  /** The delay line's round trip, when one was used (the CLI's --rtt-ms). */
  rttMs?: number;
  rounds: number;
  files: number;
  /** The ciphers in use: ftpfwd's (ssh2's choice) and sftp's default. */
  ciphers: { bridge: string; sftp: string };
  download: Throughput;
  upload: Throughput;
  smallFiles: { bridgeFilesPerSecond: number; sftpFilesPerSecond: number; sftpAesGcmFilesPerSecond: number; ratio: number; ratioAesGcm: number };
}

const DEFAULTS: SftpBridgeBenchOptions = { sizeMiB: 1024, rounds: 3, files: 1000 };

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function round(value: number, digits = 2): number {
  return Math.round(value * 10 ** digits) / 10 ** digits;
}

/** utime + stime of a process, in seconds (Linux /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function assertRan(result: RunResult, what: string): void {
  if (result.code !== 0) throw new Error(`${what} failed (exit ${String(result.code)}${result.timedOut ? ', timed out' : ''}): ${`${result.stderr}${result.stdout}`.slice(-1500)}`);
}

async function workDir(options: SftpBridgeBenchOptions): Promise<string> {
  let base = options.workBase ?? tmpdir();
  if (options.workBase === undefined && existsSync('/dev/shm')) {
    const need = options.sizeMiB * MiB * 4;
    const fs = statfsSync('/dev/shm');
    if (fs.bavail * fs.bsize > need && freemem() > need) base = '/dev/shm';
  }
  return mkdtemp(join(base, 'ftpfwd-bridge-bench-'));
}

interface Contenders {
  bridge: ProcessHandle;
  port: number;
  /** ftpfwd's debug log (JSON lines). */
  logFile: string;
  sftp(batch: string, cipher?: string): Promise<RunResult>;
}

async function startContenders(sshd: SshdInstance, ssh: { host: string; port: number }, work: string, root: string): Promise<Contenders> {
  const knownHosts = join(work, 'known_hosts');
  await writeFile(knownHosts, knownHostsLine(ssh.host, ssh.port, sshd.hostPublicKey));
  const secret = join(work, 'ftp-password');
  await writeFile(secret, `${FTP_PASSWORD}\n`, { mode: 0o600 });
  const logFile = join(work, 'ftpfwd.log');
  // -v for the negotiated cipher; per-command lines are debug too, but cost nothing next to a transfer.
  const bridge = await startProcess('node', [
    CLI, '-L', '127.0.0.1:0:sftp:', '-F', 'none', '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'BatchMode=yes',
    '-p', String(ssh.port), '--ftp-password-file', secret, '--ftp-user', FTP_USER, '--sftp-root', root, '--log-format', 'json', '-v', '--log-file', logFile, `${sshd.user}@${ssh.host}`,
  ]);
  await bridge.waitForOutput(LISTENING, 20_000);
  const port = Number(LISTENING.exec(bridge.stdout())![1]);
  const sftp = async (batch: string, cipher?: string): Promise<RunResult> => {
    const batchFile = join(work, 'batch');
    await writeFile(batchFile, batch);
    const args = ['-q', '-b', batchFile, '-F', 'none', '-i', sshd.identityFile, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'BatchMode=yes', ...(cipher ? ['-c', cipher] : []), '-P', String(ssh.port), `${sshd.user}@${ssh.host}`];
    return run('sftp', args, { timeoutMs: 30 * 60_000 });
  };
  return { bridge, port, logFile, sftp };
}

/** Times `work` and the bridge's CPU over it. */
async function timed(bridgePid: number, work: () => Promise<void>): Promise<{ seconds: number; cpu: number }> {
  const cpuBefore = cpuSeconds(bridgePid);
  const started = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { seconds, cpu: cpuSeconds(bridgePid) - cpuBefore };
}

export async function runSftpBridgeBench(partial: Partial<SftpBridgeBenchOptions> = {}): Promise<SftpBridgeBenchResult> {
  const options = { ...DEFAULTS, ...partial };
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const work = await workDir(options);
  const sshd = await startSshd({ extraConfig: ['Subsystem sftp internal-sftp'] });
  const via = options.via ? await options.via({ host: sshd.host, port: sshd.port }) : null;
  const ssh = via ?? { host: sshd.host, port: sshd.port };
  let contenders: Contenders | null = null;
  try {
    const root = join(work, 'root');
    const local = join(work, 'local');
    await mkdir(join(root, 'small'), { recursive: true });
    await mkdir(local);
    log(`generating ${options.sizeMiB} MiB and ${options.files} small files in ${work}`);
    const large = join(root, 'large.bin');
    await writeRandomFile(large, options.sizeMiB * MiB);
    const largeSum = await sha256File(large);
    const smallSums = new Map<string, string>();
    for (let index = 0; index < options.files; index += 1) {
      const name = `f${String(index).padStart(5, '0')}.bin`;
      const size = 1024 + ((index * 7919) % 16) * 1024 - (index % 3) * 100;
      await writeRandomFile(join(root, 'small', name), size);
      smallSums.set(name, createHash('sha256').update(await readFile(join(root, 'small', name))).digest('hex'));
    }
    contenders = await startContenders(sshd, ssh, work, root);
    const { bridge, port, sftp } = contenders;
    const url = (path: string): string => `ftp://${FTP_USER}:${FTP_PASSWORD}@127.0.0.1:${port}${path}`;
    const bytes = options.sizeMiB * MiB;
    const samples = { download: { bridge: [] as number[], sftp: [] as number[], sftpAesGcm: [] as number[], cpu: [] as number[] }, upload: { bridge: [] as number[], sftp: [] as number[], sftpAesGcm: [] as number[], cpu: [] as number[] }, small: { bridge: [] as number[], sftp: [] as number[], sftpAesGcm: [] as number[] } };
    const checkFile = async (path: string, sum: string, what: string): Promise<void> => {
      const got = await sha256File(path);
      if (got !== sum) throw new Error(`${what}: SHA-256 differs`);
    };
    const checkTree = async (dir: string, what: string): Promise<void> => {
      const names = await readdir(dir);
      if (names.length !== smallSums.size) throw new Error(`${what}: ${names.length} files, not ${smallSums.size}`);
      for (const name of names) if (createHash('sha256').update(await readFile(join(dir, name))).digest('hex') !== smallSums.get(name)) throw new Error(`${what}: ${name} differs`);
    };

    for (let roundIndex = 0; roundIndex < options.rounds; roundIndex += 1) {
      const verify = roundIndex === 0;
      log(`round ${roundIndex + 1} of ${options.rounds}`);
      // Downloads.
      const out = join(local, 'large.bin');
      const down = await timed(bridge.pid, async () => assertRan(await run('curl', ['-sS', '--fail', '-o', out, url('/large.bin')], { timeoutMs: 30 * 60_000 }), 'curl download'));
      if (verify) await checkFile(out, largeSum, 'bridge download');
      await rm(out, { force: true });
      samples.download.bridge.push(bytes / down.seconds / 1e6);
      samples.download.cpu.push((down.cpu * 1024) / options.sizeMiB);
      for (const [key, cipher] of [['sftp', undefined], ['sftpAesGcm', AES_GCM]] as const) {
        const result = await timed(bridge.pid, async () => assertRan(await sftp(`get ${large} ${out}\n`, cipher), `sftp get (${cipher ?? 'default cipher'})`));
        if (verify) await checkFile(out, largeSum, 'sftp download');
        await rm(out, { force: true });
        samples.download[key].push(bytes / result.seconds / 1e6);
      }
      // Uploads, from the same local copy.
      const source = join(local, 'source.bin');
      if (!existsSync(source)) await writeFile(source, await readFile(large));
      const up = await timed(bridge.pid, async () => assertRan(await run('curl', ['-sS', '--fail', '-T', source, url('/up.bin')], { timeoutMs: 30 * 60_000 }), 'curl upload'));
      if (verify) await checkFile(join(root, 'up.bin'), largeSum, 'bridge upload');
      await rm(join(root, 'up.bin'), { force: true });
      samples.upload.bridge.push(bytes / up.seconds / 1e6);
      samples.upload.cpu.push((up.cpu * 1024) / options.sizeMiB);
      for (const [key, cipher] of [['sftp', undefined], ['sftpAesGcm', AES_GCM]] as const) {
        const result = await timed(bridge.pid, async () => assertRan(await sftp(`put ${source} ${join(root, 'up.bin')}\n`, cipher), `sftp put (${cipher ?? 'default cipher'})`));
        if (verify) await checkFile(join(root, 'up.bin'), largeSum, 'sftp upload');
        await rm(join(root, 'up.bin'), { force: true });
        samples.upload[key].push(bytes / result.seconds / 1e6);
      }
      // Small files.
      const mirrored = join(local, 'mirror');
      const mirror = await timed(bridge.pid, async () => {
        const script = `set ftp:ssl-allow no; set cmd:fail-exit yes; set net:max-retries 1; open -u ${FTP_USER},${FTP_PASSWORD} ftp://127.0.0.1:${port}; mirror /small ${mirrored}`;
        assertRan(await run('lftp', ['--norc', '-c', script], { timeoutMs: 30 * 60_000 }), 'lftp mirror');
      });
      if (verify) await checkTree(mirrored, 'lftp mirror');
      await rm(mirrored, { recursive: true, force: true });
      samples.small.bridge.push(options.files / mirror.seconds);
      for (const [key, cipher] of [['sftp', undefined], ['sftpAesGcm', AES_GCM]] as const) {
        await mkdir(mirrored);
        const result = await timed(bridge.pid, async () => assertRan(await sftp(`get ${join(root, 'small')}/* ${mirrored}/\n`, cipher), `sftp get of the small files (${cipher ?? 'default cipher'})`));
        if (verify) await checkTree(mirrored, 'sftp get');
        await rm(mirrored, { recursive: true, force: true });
        samples.small[key].push(options.files / result.seconds);
      }
    }
    await rm(join(local, 'source.bin'), { force: true });

    const throughput = (set: typeof samples.download): Throughput => {
      const bridgeMBps = median(set.bridge);
      const sftpMBps = median(set.sftp);
      const aesMBps = median(set.sftpAesGcm);
      return { bridge: round(bridgeMBps, 1), sftp: round(sftpMBps, 1), sftpAesGcm: round(aesMBps, 1), ratio: round(bridgeMBps / sftpMBps), ratioAesGcm: round(bridgeMBps / aesMBps), bridgeCpuSecondsPerGiB: round(median(set.cpu)) };
    };
    const small = { bridge: median(samples.small.bridge), sftp: median(samples.small.sftp), aes: median(samples.small.sftpAesGcm) };
    return {
      sizeMiB: options.sizeMiB,
      ...(options.rttMs === undefined ? {} : { rttMs: options.rttMs }),
      rounds: options.rounds,
      files: options.files,
      ciphers: { bridge: await negotiatedCipher(contenders.logFile), sftp: 'OpenSSH default (chacha20-poly1305@openssh.com)' },
      download: throughput(samples.download),
      upload: throughput(samples.upload),
      smallFiles: {
        bridgeFilesPerSecond: round(small.bridge, 1),
        sftpFilesPerSecond: round(small.sftp, 1),
        sftpAesGcmFilesPerSecond: round(small.aes, 1),
        ratio: round(small.bridge / small.sftp),
        ratioAesGcm: round(small.bridge / small.aes),
      },
    };
  } finally {
    await contenders?.bridge.stop();
    await via?.close();
    await sshd.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** The cipher ftpfwd negotiated, from its log. */
async function negotiatedCipher(logFile: string): Promise<string> {
  const match = /"cipher":"([^"]+)"/.exec(await readFile(logFile, 'utf8').catch(() => ''));
  return match?.[1] ?? 'unknown';
}

/** The shared delay line (a process of its own) in front of `target`, in the shape `via` takes. */
export async function delayLineVia(target: { host: string; port: number }, rttMs: number): Promise<{ host: string; port: number; close(): Promise<void> }> {
  const line = await startDelayLineProcess({ targetHost: target.host, targetPort: target.port, rttMs });
  return { host: line.host, port: line.port, close: async () => void (await line.stop()) };
}

export function formatReport(result: SftpBridgeBenchResult): string {
  const row = (label: string, t: Throughput): string =>
    `| ${label} | ${t.bridge} | ${t.sftp} | ${t.sftpAesGcm} | ${t.ratio.toFixed(2)}× | ${t.ratioAesGcm.toFixed(2)}× | ${t.bridgeCpuSecondsPerGiB} |`;
  const s = result.smallFiles;
  return [
    `SFTP bridge vs OpenSSH sftp -b, ${result.sizeMiB} MiB, ${result.files} small files, median of ${result.rounds} interleaved rounds${result.rttMs ? `, through a delay line of ${result.rttMs} ms RTT` : ', loopback'}`,
    '',
    '| transfer | bridge MB/s | sftp MB/s | sftp aes-gcm MB/s | bridge/sftp | bridge/sftp aes-gcm | ftpfwd CPU s/GiB |',
    '|---|---|---|---|---|---|---|',
    row(`download ${result.sizeMiB} MiB (curl)`, result.download),
    row(`upload ${result.sizeMiB} MiB (curl -T)`, result.upload),
    '',
    '| small files (1-16 KiB) | bridge files/s (lftp mirror) | sftp files/s (get) | sftp aes-gcm files/s | bridge/sftp | bridge/sftp aes-gcm |',
    '|---|---|---|---|---|---|',
    `| ${result.files} files | ${s.bridgeFilesPerSecond} | ${s.sftpFilesPerSecond} | ${s.sftpAesGcmFilesPerSecond} | ${s.ratio.toFixed(2)}× | ${s.ratioAesGcm.toFixed(2)}× |`,
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { 'size-mib': { type: 'string' }, rounds: { type: 'string' }, files: { type: 'string' }, json: { type: 'string' }, 'work-dir': { type: 'string' }, 'rtt-ms': { type: 'string' } },
  });
  const number = (text: string | undefined, fallback: number, min: number): number => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) throw new Error(`expected a whole number of at least ${min}, not ${text}`);
    return value;
  };
  const result = await runSftpBridgeBench({
    sizeMiB: number(values['size-mib'], DEFAULTS.sizeMiB, 1),
    rounds: number(values.rounds, DEFAULTS.rounds, 1),
    files: number(values.files, DEFAULTS.files, 1),
    ...(values['work-dir'] ? { workBase: values['work-dir'] } : {}),
    ...(values['rtt-ms'] ? { rttMs: number(values['rtt-ms'], 0, 1), via: (sshd: { host: string; port: number }) => delayLineVia(sshd, number(values['rtt-ms'], 0, 1)) } : {}),
  });
  process.stdout.write(`${formatReport(result)}\n`);
  if (values.json) await writeFile(values.json, `${JSON.stringify(result, null, 2)}\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`sftpBridge bench: ${errorText(error)}\n`);
      process.exitCode = 1;
    },
  );
}
