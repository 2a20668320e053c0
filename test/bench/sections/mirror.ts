/**
 * A directory tree of many small files mirrored with lftp, down (`mirror`)
 * and up (`mirror -R`), through each contender, on loopback.
 *
 * lftp has no SOCKS support of its own (Debian's build has no SOCKS library,
 * and `set ftp:proxy socks5://...` is taken for an FTP proxy named
 * "socks5"), so through `ssh -D` it runs under proxychains4, which hands
 * every connect() of lftp, control and data alike, to the SOCKS5 proxy: the
 * way a user of ssh -D runs a client without SOCKS. `--no-perms` on both
 * sides: anonymous vsftpd refuses SITE CHMOD, and lftp would otherwise send
 * one per file.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run as runProcess, type RunResult } from '../../helpers/processes.js';
import { KiB } from '../config.js';
import type { Contender } from '../contenders.js';
import { type BenchContext, type ReportContext, type Section } from '../context.js';
import { checkFile, rotate, sha256, transferTimeoutMs, type TransferOutcome } from '../measure.js';
import { failedNote, figures, filesPerSecond, fmt, fmtSpread, headlineRow, ratioRows, spread } from '../summary.js';

const MIRROR_DIR = 'mirror';
/** Files per directory of the tree. */
const PER_DIRECTORY = 100;
/** Per file, on top of the usual floor: through sshd a small file has cost up to ~100 ms. */
const PER_FILE_TIMEOUT_MS = 250;

interface Tree {
  /** Path relative to the tree's root, to SHA-256. */
  sums: Map<string, string>;
  bytes: number;
}

/** n files, their sizes spread evenly from min to max KiB, PER_DIRECTORY to a directory. */
async function makeTree(root: string, n: number, minKiB: number, maxKiB: number): Promise<Tree> {
  const sums = new Map<string, string>();
  let bytes = 0;
  const width = String(n - 1).length;
  for (let i = 0; i < n; i++) {
    const dir = `d${String(Math.floor(i / PER_DIRECTORY)).padStart(2, '0')}`;
    if (i % PER_DIRECTORY === 0) await mkdir(join(root, dir), { recursive: true, mode: 0o755 });
    const size = Math.round((minKiB + ((maxKiB - minKiB) * i) / Math.max(1, n - 1)) * KiB);
    const contents = randomBytes(size);
    const path = `${dir}/f${String(i).padStart(width, '0')}.bin`;
    await writeFile(join(root, path), contents, { mode: 0o644 });
    sums.set(path, sha256(contents));
    bytes += size;
  }
  return { sums, bytes };
}

/** Every file under `dir`, relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** Problems with the copy of `tree` under `dir`: missing, extra or different files. */
async function checkTree(dir: string, tree: Tree, what: string): Promise<string[]> {
  const problems: string[] = [];
  let found: string[];
  try {
    found = await listFiles(dir);
  } catch (error) {
    return [`${what}: ${error instanceof Error ? error.message : String(error)}`];
  }
  const extra = found.filter((path) => !tree.sums.has(path));
  if (extra.length > 0) problems.push(`${what}: ${extra.length} unexpected file(s), e.g. ${extra[0]}`);
  for (const [path, sum] of tree.sums) problems.push(...(await checkFile(join(dir, path), sum, `${what} ${path}`)));
  return problems;
}

/** proxychains4's configuration for one SOCKS5 proxy: every connection through it, quietly. */
async function proxychainsConfig(ctx: BenchContext, contender: Contender): Promise<string | null> {
  if (contender.socks === null) return null;
  const file = join(ctx.workDir, `proxychains-${contender.key}.conf`);
  await writeFile(file, ['strict_chain', 'quiet_mode', 'tcp_read_time_out 15000', 'tcp_connect_time_out 8000', '[ProxyList]', `socks5 ${contender.socks.host} ${contender.socks.port}`, ''].join('\n'));
  return file;
}

function lftpQuote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** lftp with the settings of a careful user, passive mode (EPSV), through the contender. */
function lftp(contender: Contender, proxychains: string | null, command: string, timeoutMs: number): Promise<RunResult> {
  const script = [
    'set cmd:fail-exit yes',
    'set net:max-retries 1',
    'set net:timeout 15',
    'set net:reconnect-interval-base 1',
    'set ftp:ssl-allow no',
    'set ftp:passive-mode on',
    'set ftp:prefer-epsv yes',
    `open -u anonymous,bench ftp://${contender.ftpHost}:${contender.ftpPort}/`,
    command,
  ].join('; ');
  const lftpArgs = ['--norc', '-c', script];
  return proxychains === null
    ? runProcess('lftp', lftpArgs, { timeoutMs })
    : runProcess('proxychains4', ['-q', '-f', proxychains, 'lftp', ...lftpArgs], { timeoutMs });
}

function lftpOutcome(result: RunResult): TransferOutcome {
  if (result.code === 0) return { problems: [], stalls: 0 };
  const why = result.timedOut ? 'timed out' : `exit ${String(result.code ?? result.signal)}`;
  return { problems: [`lftp ${why}: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`], stalls: 0 };
}

async function run(ctx: BenchContext): Promise<void> {
  const { config, bench } = ctx;
  process.stderr.write(`\nlftp mirror of ${config.mirrorFiles} files of ${config.mirrorMinKiB}-${config.mirrorMaxKiB} KiB, down and up\n`);
  const tree = await makeTree(join(ctx.ftpRoot, MIRROR_DIR), config.mirrorFiles, config.mirrorMinKiB, config.mirrorMaxKiB);
  const timeoutMs = transferTimeoutMs(tree.bytes) + config.mirrorFiles * PER_FILE_TIMEOUT_MS;
  const proxychains = new Map<string, string | null>();
  for (const contender of ctx.contenders) proxychains.set(contender.key, await proxychainsConfig(ctx, contender));
  for (let round = 0; round < config.rounds; round++) {
    if (!ctx.roundAllowed('mirror', round)) break;
    for (const contender of rotate(ctx.contenders, round)) {
      const local = join(ctx.clientDir, `mirror-${contender.key}`);
      const chains = proxychains.get(contender.key) ?? null;
      await bench.measure(contender, 'mirror-down', round, {
        bytes: tree.bytes,
        files: config.mirrorFiles,
        prepare: () => rm(local, { recursive: true, force: true }),
        transfer: async () => lftpOutcome(await lftp(contender, chains, `mirror --no-perms /${MIRROR_DIR} ${lftpQuote(local)}`, timeoutMs)),
        verify: () => checkTree(local, tree, 'download'),
      });
      const remote = `mirror-${contender.key}-${round}`;
      const uploaded = join(ctx.vsftpd.uploadDir, remote);
      await bench.measure(contender, 'mirror-up', round, {
        bytes: tree.bytes,
        files: config.mirrorFiles,
        prepare: () => rm(uploaded, { recursive: true, force: true }),
        // Up from the tree itself: the download may have failed.
        transfer: async () => lftpOutcome(await lftp(contender, chains, `mirror -R --no-perms ${lftpQuote(join(ctx.ftpRoot, MIRROR_DIR))} /incoming/${remote}`, timeoutMs)),
        verify: () => checkTree(uploaded, tree, 'upload'),
      });
      await rm(local, { recursive: true, force: true });
      await rm(uploaded, { recursive: true, force: true });
    }
  }
}

function report(r: ReportContext): void {
  const { config } = r;
  const directories = Math.ceil(config.mirrorFiles / PER_DIRECTORY);
  r.heading(`lftp mirror of ${config.mirrorFiles} files of ${config.mirrorMinKiB}-${config.mirrorMaxKiB} KiB in ${directories} ${directories === 1 ? 'directory' : 'directories'} on loopback: \`mirror\` down, \`mirror -R\` up`);
  r.note('lftp through ssh -D runs under proxychains4 (lftp has no SOCKS support); --no-perms both ways.');
  r.table(
    ['contender', 'down files/s', 'up files/s', 'CPU ms/file down', 'up'],
    r.contenders.map((c) => {
      const d = r.get('mirror-down', c.key);
      const u = r.get('mirror-up', c.key);
      return [c.label + failedNote(d, u), fmtSpread(spread(figures(r.bench.samples, 'mirror-down', c.key, filesPerSecond))), fmtSpread(spread(figures(r.bench.samples, 'mirror-up', c.key, filesPerSecond))), fmt(d.forwarderCpuMsPerFile, 2), fmt(u.forwarderCpuMsPerFile, 2)];
    }),
  );
  r.table(['ratio', 'down files/s', 'up files/s', 'CPU/file down', 'CPU/file up'],
    ratioRows(r, 'mirror-down', 'mirror-up', filesPerSecond, (s) => s.forwarderCpuMsPerFile));
  r.headline(headlineRow(r, `lftp mirror of ${config.mirrorFiles} small files down, files/s`, 'mirror-down', filesPerSecond));
  r.headline(headlineRow(r, `lftp mirror -R of ${config.mirrorFiles} small files up, files/s`, 'mirror-up', filesPerSecond));
}

export const lftpMirror: Section = { id: 'mirror', kinds: () => ['mirror-down', 'mirror-up'], run, report, rssLabel: 'lftp mirror' };
