import assert from 'node:assert/strict';
import { chmod, chown, copyFile, link, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FtpMode } from '../helpers/clients.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import { SESSION_DRIVERS, type SessionDriver, type SessionOp, type SessionResult, type SessionTarget } from '../helpers/ftpSessions.js';
import { dataCommands } from '../helpers/moreClients.js';
import { isRoot } from '../helpers/netns.js';
import { secretFile, startBridgeCli, startBridgeServer, type BridgeServer, type RunningBridge } from '../helpers/sftpBridgeFixture.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import type { MatrixMode, MatrixRecord } from '../matrix/matrix.js';
import { describeRecord, renderTables } from '../matrix/matrix.js';

/**
 * Every FTP client of the matrix, in every data-connection mode it can be
 * told to use, against the SFTP bridge (real CLI, real OpenSSH sshd with
 * internal-sftp, real system accounts). Each combination is one client
 * session doing as much as the client can; the results are checked on
 * disk and in the client's trace, recorded as matrix records
 * ($FTPFWD_BRIDGE_MATRIX_JSON) for README.md's compatibility table, and
 * the last test fails listing every failure.
 */

const MATRIX_JSON = process.env['FTPFWD_BRIDGE_MATRIX_JSON'] || join(tmpdir(), 'ftpfwd-bridge-matrix.json');
const MiB = 1024 * 1024;
const SIZES = { empty: 0, small: 1024, medium: 5 * MiB, large: 64 * MiB } as const;
type SizeKey = keyof typeof SIZES;
const CONCURRENCY = 2;
const SESSION_TIMEOUT_MS = 120_000;
const VERB: Record<MatrixMode, string> = { pasv: 'PASV', epsv: 'EPSV', port: 'PORT', eprt: 'EPRT' };
const ROW = 'SFTP bridge (OpenSSH internal-sftp)';
const CHROOT_ROW = 'SFTP bridge: SFTP-only chrooted account';
const SSH_LOGIN_ROW = 'SFTP bridge: each FTP login an SSH password login';
const UTF8_NAME = 'grüße 日本.txt';
const LF_TEXT = 'line one\nline two\n\nlast line\n';
const CRLF_TEXT = LF_TEXT.replace(/\n/g, '\r\n');

/** One client session's plan: the operations, and how to check each one afterwards. */
interface Plan {
  ops: SessionOp[];
  checks: Array<(result: SessionResult) => Promise<string | null>>;
}

async function runPool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < items.length; index = next++) await work(items[index]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function tail(text: string, chars = 600): string {
  const kept = text.split('\n').map((line) => line.trim()).filter(Boolean).slice(-6).join(' / ');
  return kept.length > chars ? `…${kept.slice(-chars)}` : kept;
}

describe('SFTP bridge: every client × mode through real OpenSSH internal-sftp', { skip: isRoot() ? false : 'needs root: creates system accounts and a chroot for sshd' }, () => {
  let server: BridgeServer;
  let bridge: RunningBridge;
  let chrootBridge: RunningBridge;
  let sshLoginBridge: RunningBridge;
  let data: string;
  let local: string;
  const sums = {} as Record<SizeKey, string>;
  const records: MatrixRecord[] = [];
  const details = new Map<MatrixRecord, string>();
  const password = `ftp-${Math.random().toString(36).slice(2)}`;

  /** A directory the account owns, for one combination's uploads. */
  async function ownedDir(root: string, name: string, uid: number, gid: number): Promise<string> {
    const path = join(root, name);
    await mkdir(path, { recursive: true });
    await chown(path, uid, gid);
    return path;
  }

  async function ownedFile(path: string, content: string | Buffer, uid: number, gid: number): Promise<void> {
    await writeFile(path, content);
    await chown(path, uid, gid);
  }

  before(async () => {
    server = await startBridgeServer('bridge-clients');
    const { ordinary, chrooted } = server;
    data = await ownedDir(ordinary.home, 'data', ordinary.uid, ordinary.gid);
    local = await makeTempDir('ftpfwd-bridge-local-');
    for (const key of Object.keys(SIZES) as SizeKey[]) {
      const source = join(local, `${key}.bin`);
      await writeRandomFile(source, SIZES[key]);
      sums[key] = await sha256File(source);
      await link(source, join(data, `${key}.bin`));
    }
    await writeFile(join(data, 'lf.txt'), LF_TEXT);
    await writeFile(join(data, 'crlf.txt'), CRLF_TEXT);
    await writeFile(join(local, 'lf.txt'), LF_TEXT);
    await writeFile(join(local, 'crlf.txt'), CRLF_TEXT);
    await mkdir(join(data, 'dir with space'));
    await copyFile(join(local, 'small.bin'), join(data, 'dir with space', UTF8_NAME));
    await copyFile(join(local, 'small.bin'), join(local, UTF8_NAME));
    await copyFile(join(local, 'medium.bin'), join(chrooted.chroot, 'data', 'medium.bin'));
    await copyFile(join(local, 'medium.bin'), join(ordinary.home, 'medium.bin'));
    const secret = await secretFile(server.dir, password);
    bridge = await startBridgeCli(server, ordinary.name, ['--ftp-password-file', secret, '--ftp-user', 'ftpuser', '--sftp-root', 'data']);
    chrootBridge = await startBridgeCli(server, chrooted.name, ['--ftp-password-file', secret, '--ftp-user', 'ftpuser']);
    sshLoginBridge = await startBridgeCli(server, ordinary.name, ['--ftp-auth', 'ssh', '--sftp-atomic-uploads']);
  }, { timeout: 120_000 });

  after(async () => {
    await Promise.all([bridge?.stop(), chrootBridge?.stop(), sshLoginBridge?.stop()]);
    await server?.stop();
    if (local) await removeDir(local);
  });

  /** The plan for one combination: the core set in every mode, the rest once per client. */
  async function plan(driver: SessionDriver, mode: FtpMode, extras: boolean, work: string): Promise<Plan> {
    const { uid, gid } = server.ordinary;
    const name = `${driver.name}-${mode}`;
    const remoteDir = `/${name}`;
    const onDisk = await ownedDir(data, name, uid, gid);
    const ops: SessionOp[] = [];
    const checks: Plan['checks'] = [];
    const add = (op: SessionOp, check: (result: SessionResult) => Promise<string | null>): void => {
      if (!driver.can(op)) return;
      ops.push(op);
      checks.push(check);
    };
    const sameFile = async (path: string, sum: string, what: string): Promise<string | null> => {
      const got = await sha256File(path).catch(() => 'missing');
      return got === sum ? null : `${what}: SHA-256 ${got === 'missing' ? 'of a missing file' : 'differs'}`;
    };
    const sameText = async (path: string, expected: readonly string[], what: string): Promise<string | null> => {
      const got = await readFile(path, 'latin1').catch(() => null);
      return got !== null && expected.includes(got) ? null : `${what}: got ${JSON.stringify(got)}`;
    };

    add({ kind: 'list', remote: '/' }, async (result) => (['large.bin', 'lf.txt', 'dir with space'].every((entry) => result.listings.includes(entry)) ? null : `listing lacks names: ${tail(result.listings, 300)}`));
    for (const key of Object.keys(SIZES) as SizeKey[]) {
      const out = join(work, `get-${key}.bin`);
      add({ kind: 'get', remote: `/${key}.bin`, local: out }, () => sameFile(out, sums[key], `download ${key}`));
    }
    for (const key of Object.keys(SIZES) as SizeKey[]) {
      add({ kind: 'put', local: join(local, `${key}.bin`), remote: `${remoteDir}/up-${key}.bin` }, () => sameFile(join(onDisk, `up-${key}.bin`), sums[key], `upload ${key}`));
    }
    if (!extras) return { ops, checks };

    const partial = join(work, 'resume.bin');
    await writeFile(partial, (await readFile(join(local, 'medium.bin'))).subarray(0, MiB));
    add({ kind: 'get', remote: '/medium.bin', local: partial, resume: true }, () => sameFile(partial, sums.medium, 'resumed download'));
    await ownedFile(join(onDisk, 'resume.bin'), (await readFile(join(local, 'medium.bin'))).subarray(0, MiB), uid, gid);
    add({ kind: 'put', local: join(local, 'medium.bin'), remote: `${remoteDir}/resume.bin`, resume: true }, () => sameFile(join(onDisk, 'resume.bin'), sums.medium, 'resumed upload'));
    await ownedFile(join(onDisk, 'append.bin'), 'start:', uid, gid);
    add({ kind: 'put', local: join(local, 'lf.txt'), remote: `${remoteDir}/append.bin`, append: true }, () => sameText(join(onDisk, 'append.bin'), [`start:${LF_TEXT}`], 'append'));
    add({ kind: 'mkdir', remote: `${remoteDir}/kept dir` }, async () => ((await stat(join(onDisk, 'kept dir')).catch(() => null))?.isDirectory() ? null : 'mkdir: no directory'));
    await ownedDir(onDisk, 'gone', uid, gid);
    add({ kind: 'rmdir', remote: `${remoteDir}/gone` }, async () => ((await stat(join(onDisk, 'gone')).catch(() => null)) === null ? null : 'rmdir: still there'));
    await ownedFile(join(onDisk, 'old name.txt'), 'renamed', uid, gid);
    add({ kind: 'rename', from: `${remoteDir}/old name.txt`, to: `${remoteDir}/new ${UTF8_NAME}` }, () => sameText(join(onDisk, `new ${UTF8_NAME}`), ['renamed'], 'rename'));
    await ownedFile(join(onDisk, 'delete-me'), 'x', uid, gid);
    add({ kind: 'delete', remote: `${remoteDir}/delete-me` }, async () => ((await stat(join(onDisk, 'delete-me')).catch(() => null)) === null ? null : 'delete: still there'));
    await ownedFile(join(onDisk, 'chmod-me'), 'x', uid, gid);
    add({ kind: 'chmod', mode: '640', remote: `${remoteDir}/chmod-me` }, async () => {
      const mode = (await stat(join(onDisk, 'chmod-me'))).mode & 0o777;
      return mode === 0o640 ? null : `chmod: mode ${mode.toString(8)}`;
    });
    const mtime = (await stat(join(data, 'medium.bin'))).mtime;
    const timeval = mtime.toISOString().replace(/[-T:]/g, '').slice(0, 14);
    add({ kind: 'size', remote: '/medium.bin' }, async (result) => (new RegExp(`\\b213:? ${SIZES.medium}\\b`).test(result.stderr) ? null : `SIZE: no "213 ${SIZES.medium}" in the trace`));
    add({ kind: 'mdtm', remote: '/medium.bin' }, async (result) => (new RegExp(`\\b213:? ${timeval}\\b`).test(result.stderr) ? null : `MDTM: no "213 ${timeval}" in the trace`));
    // TYPE A: clients store the text with their own line ends (the wire form itself is checked in sftpBridge.test.ts).
    for (const source of ['lf', 'crlf'] as const) {
      const out = join(work, `ascii-${source}.txt`);
      const expected = [LF_TEXT, CRLF_TEXT];
      add({ kind: 'get', remote: `/${source}.txt`, local: out, ascii: true }, () => sameText(out, expected, `TYPE A download of the ${source.toUpperCase()} file`));
    }
    add({ kind: 'put', local: join(local, 'lf.txt'), remote: `${remoteDir}/ascii-up.txt`, ascii: true }, () => sameText(join(onDisk, 'ascii-up.txt'), [LF_TEXT], 'TYPE A upload'));
    const utf8Out = join(work, 'utf8.bin');
    add({ kind: 'get', remote: `/dir with space/${UTF8_NAME}`, local: utf8Out }, () => sameFile(utf8Out, sums.small, 'download of a name with spaces and UTF-8'));
    add({ kind: 'put', local: join(local, UTF8_NAME), remote: `${remoteDir}/up ${UTF8_NAME}` }, () => sameFile(join(onDisk, `up ${UTF8_NAME}`), sums.small, 'upload to a name with spaces and UTF-8'));
    return { ops, checks };
  }

  async function runCombo(row: string, target: SessionTarget, driver: SessionDriver, mode: FtpMode, makePlan: (work: string) => Promise<Plan>, check: MatrixRecord['check']): Promise<void> {
    const startedAt = Date.now();
    const work = await makeTempDir(`ftpfwd-bridge-${driver.name}-${mode}-`);
    const matrixMode = mode as MatrixMode;
    const base = { server: row, client: driver.name, mode: matrixMode, path: mode === 'pasv' || mode === 'epsv' ? 'passive' : 'direct', check, ssh: 'openssh', ip: 4 } as const;
    let reasons: string[] = [];
    let trace = '';
    try {
      const { ops, checks } = await makePlan(work);
      const result = await driver.run(target, mode, ops, { workDir: work, timeoutMs: SESSION_TIMEOUT_MS });
      trace = `${result.stderr}\n${result.stdout}`;
      if (result.failure !== null) reasons.push(result.failure);
      const verbs = dataCommands(result.commands);
      if (verbs.length === 0) reasons.push(`no ${VERB[matrixMode]} in the trace`);
      else if (verbs.some((verb) => verb !== VERB[matrixMode])) reasons.push(`the client sent ${[...new Set(verbs)].join(', ')} instead of ${VERB[matrixMode]} only`);
      for (const verify of checks) {
        const problem = await verify(result);
        if (problem) reasons.push(problem);
      }
    } catch (error) {
      reasons = [error instanceof Error ? error.message : String(error)];
    } finally {
      await removeDir(work);
    }
    const record: MatrixRecord = { ...base, ok: reasons.length === 0, ...(reasons.length > 0 ? { reason: reasons.join('; ') } : {}), durationMs: Date.now() - startedAt };
    records.push(record);
    if (!record.ok) details.set(record, `${trace.slice(-Number(process.env['FTPFWD_BRIDGE_TRACE_CHARS'] ?? 4000))}\n--- bridge log ---\n${(await bridge.log()).slice(-3000)}`);
  }

  it('every client × mode: list, 0 B to 64 MiB each way; resume, append, rename, mkdir/rmdir, SIZE/MDTM, SITE CHMOD, TYPE A and UTF-8 names once per client', { timeout: 600_000 }, async () => {
    const target: SessionTarget = { host: bridge.host, port: bridge.port, login: { user: 'ftpuser', password } };
    // FTPFWD_BRIDGE_CLIENTS=lftp,curl runs only those (while working on one client).
    const only = process.env['FTPFWD_BRIDGE_CLIENTS']?.split(',');
    const drivers = SESSION_DRIVERS.filter((driver) => only === undefined || only.includes(driver.name));
    const combos = drivers.flatMap((driver) => driver.modes.map((mode, index) => ({ driver, mode, extras: index === 0 })));
    await runPool(combos, CONCURRENCY, ({ driver, mode, extras }) => runCombo(ROW, target, driver, mode, (work) => plan(driver, mode, extras, work), 'bridge'));
  });

  it('the SFTP-only chrooted account and the SSH password login: curl and lftp', { timeout: 120_000 }, async () => {
    const drivers = SESSION_DRIVERS.filter((driver) => driver.name === 'curl' || driver.name === 'lftp');
    const small = async (root: string, uid: number, gid: number, work: string, driver: SessionDriver, mode: FtpMode, prefix: string): Promise<Plan> => {
      const name = `${prefix}${driver.name}-${mode}`;
      const onDisk = await ownedDir(root, name, uid, gid);
      const out = join(work, 'medium.bin');
      return {
        ops: [
          { kind: 'list', remote: '.' },
          { kind: 'get', remote: 'medium.bin', local: out },
          { kind: 'put', local: join(local, 'medium.bin'), remote: `${name}/up.bin` },
        ],
        checks: [
          async (result) => (result.listings.includes('medium.bin') ? null : 'listing lacks medium.bin'),
          async () => ((await sha256File(out).catch(() => '')) === sums.medium ? null : 'download: SHA-256 differs'),
          async () => ((await sha256File(join(onDisk, 'up.bin')).catch(() => '')) === sums.medium ? null : 'upload: SHA-256 differs'),
        ],
      };
    };
    const { chrooted, ordinary } = server;
    const combos = drivers.flatMap((driver) => driver.modes.map((mode) => ({ driver, mode })));
    await runPool(combos, CONCURRENCY, async ({ driver, mode }) => {
      await runCombo(CHROOT_ROW, { host: chrootBridge.host, port: chrootBridge.port, login: { user: 'ftpuser', password } }, driver, mode, (work) => small(join(chrooted.chroot, 'data'), chrooted.uid, chrooted.gid, work, driver, mode, 'chroot-'), 'bridge-account');
      // Relative paths: this login starts in the account's home, where medium.bin is.
      await runCombo(SSH_LOGIN_ROW, { host: sshLoginBridge.host, port: sshLoginBridge.port, login: { user: ordinary.name, password: ordinary.password } }, driver, mode, (work) => small(ordinary.home, ordinary.uid, ordinary.gid, work, driver, mode, 'ssh-'), 'bridge-account');
    });
  });

  it('writes the records and passes only if every combination passed', async (t) => {
    await writeFile(MATRIX_JSON, `${JSON.stringify(records, null, 2)}\n`);
    await chmod(MATRIX_JSON, 0o644);
    t.diagnostic(`${records.length} combinations; results in ${MATRIX_JSON}`);
    for (const line of renderTables(records).split('\n')) t.diagnostic(line);
    const failed = records.filter((record) => !record.ok);
    for (const record of failed) {
      t.diagnostic(`--- ${describeRecord(record)}: ${record.reason ?? ''}`);
      for (const line of (details.get(record) ?? '').split('\n').slice(-Number(process.env['FTPFWD_BRIDGE_TRACE_LINES'] ?? 80))) t.diagnostic(line);
    }
    assert.ok(records.length > (process.env['FTPFWD_BRIDGE_CLIENTS'] ? 0 : 25), `only ${records.length} combinations ran`);
    assert.deepEqual(failed.map((record) => `${describeRecord(record)}: ${record.reason ?? ''}`), []);
  });
});
