import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { copyFile, link, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ftpUrl, type ClientOptions, type FtpMode, type FtpTarget } from '../helpers/clients.js';
import { startDropbear, type DropbearInstance } from '../helpers/dropbear.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import type { FtpServerInstance, FtpServerOptions } from '../helpers/ftpServer.js';
import { commandsFromTrace, dataCommands, FTP_CLIENTS, type FtpClientDriver, type MoreClientResult } from '../helpers/moreClients.js';
import { createBastionTopology, isRoot, type BastionTopology } from '../helpers/netns.js';
import { run, startProcess, type ProcessHandle } from '../helpers/processes.js';
import { startProftpd } from '../helpers/proftpd.js';
import { startPureFtpd } from '../helpers/pureFtpd.js';
import { startPyftpdlib } from '../helpers/pyftpdlib.js';
import { SCRIPTED_VARIANT_NAMES, SCRIPTED_VARIANTS, startScriptedFtpServer, type ScriptedVariant, type ScriptedVariantName } from '../helpers/scriptedFtpServer.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { canConnect } from '../helpers/tcp.js';
import { delay } from '../helpers/time.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd } from '../helpers/vsftpd.js';
import {
  CHECKS,
  CLIENT_COLUMNS,
  describeRecord,
  failures,
  renderTables,
  type MatrixCheck,
  type MatrixMode,
  type MatrixPath,
  type MatrixRecord,
} from '../matrix/matrix.js';

/**
 * The interoperability matrix: every FTP server the harness can run, every
 * client driver, every mode each client can be told to use, through a real
 * SSH server in the topology ftpfwd exists for (client / bastion / FTP
 * host, in network namespaces). Each combination becomes one record; all
 * of them run, and the last test fails listing every failure. The records
 * go to $FTPFWD_MATRIX_JSON (default: <tmpdir>/ftpfwd-matrix.json), which
 * test/matrix/renderReadme.ts turns into README.md's Compatibility section.
 */

const CLI = fileURLToPath(new URL('../../bin/ftpfwd', import.meta.url));
const MATRIX_JSON = process.env['FTPFWD_MATRIX_JSON'] || join(tmpdir(), 'ftpfwd-matrix.json');
/** Combinations at once: each runs its operations one after another. */
const CONCURRENCY = 3;
const MiB = 1024 * 1024;
const FILES = { empty: 0, small: 1024, medium: 5 * MiB, large: 64 * MiB } as const;
type FileKey = keyof typeof FILES;
const FILE_LABEL: Record<FileKey, string> = { empty: '0 B', small: '1 KiB', medium: '5 MiB', large: '64 MiB' };
const SMALL_TIMEOUT_MS = 30_000;
const LARGE_TIMEOUT_MS = 120_000;
const FORWARDER_START_MS = 20_000;
const VERB: Record<MatrixMode, string> = { pasv: 'PASV', epsv: 'EPSV', port: 'PORT', eprt: 'EPRT' };
const PASSIVE_MODES: readonly FtpMode[] = ['pasv', 'epsv'];
const MODES: readonly MatrixMode[] = ['pasv', 'epsv', 'port', 'eprt'];
const CURL_MODE_FLAGS: Record<FtpMode, string[]> = {
  pasv: ['--ftp-pasv', '--disable-epsv'],
  epsv: ['--ftp-pasv'],
  port: ['--ftp-port', '-', '--disable-eprt'],
  eprt: ['--ftp-port', '-'],
};
const CURL_TRACE = /^> (.*)$/;
const SESSION_TRANSFERS = 20;
const CONCURRENT_DOWNLOADS = 16;

type Operation = { kind: 'get'; file: FileKey } | { kind: 'put' } | { kind: 'list' };
const GET = (file: FileKey): Operation => ({ kind: 'get', file });
const PUT: Operation = { kind: 'put' };
const LIST: Operation = { kind: 'list' };
const FULL_SET: readonly Operation[] = [GET('empty'), GET('small'), GET('medium'), GET('large'), PUT, LIST];
const SHORT_SET: readonly Operation[] = [GET('small'), GET('medium'), PUT, LIST];
const FORWARD_SET: readonly Operation[] = [GET('medium'), PUT];

/** What ftpfwd needs to log in: an OpenSSH or a Dropbear server. */
interface SshEndpoint {
  host: string;
  port: number;
  user: string;
  identityFile: string;
  knownHostsFile: string;
}

interface RunningForwarder {
  label: string;
  target: FtpTarget;
  proc: ProcessHandle;
  /** How this listener carries PORT/EPRT, from its start-up log. */
  strategy: 'forward' | 'convert';
  /** Its debug log (every command and reply), JSON lines. */
  log(): string;
}

/** One server setup: a row of the matrix. */
interface Row {
  label: string;
  server: FtpServerInstance;
  /** Passive modes, and active modes by ftpfwd's default for this setup. */
  main: RunningForwarder;
  mainActivePath: MatrixPath;
  /** With --active-address: active modes through a remote forward on the bastion. */
  forward?: RunningForwarder;
}

/** One combination to run. */
interface Combo {
  row: string;
  server: FtpServerInstance;
  client: FtpClientDriver;
  /** The mode the driver is asked for... */
  driverMode: FtpMode;
  /** ...and the command the client must really send (they differ over IPv6). */
  mode: MatrixMode;
  path: MatrixPath;
  forwarder: RunningForwarder;
  operations: readonly Operation[];
  check: MatrixCheck;
  ssh: 'openssh' | 'dropbear';
  ip: 4 | 6;
}

/** A combination's failure; `output` is the client's trace, for the details printed at the end. */
class ComboFailure extends Error {
  constructor(
    message: string,
    readonly output = '',
  ) {
    super(message);
  }
}

function readIfPresent(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

interface SessionLog {
  lines: string[];
  first: number;
  last: number;
  suspect: boolean;
}

/**
 * ftpfwd's log lines (JSON) for what went wrong between `from` and `to`
 * (ms): every session that began then and took long, logged a warning or
 * never closed; else the last `limit` lines of the window.
 */
function logWindow(log: string, from: number, to: number, limit = 150): string[] {
  const sessions = new Map<string, SessionLog>();
  const window: string[] = [];
  for (const line of log.split('\n')) {
    const time = Number(/"time":(\d+)/.exec(line)?.[1]);
    if (!(time >= from - 60_000 && time <= to)) continue;
    if (time >= from) window.push(line);
    const id = /"session":(\d+)/.exec(line)?.[1];
    if (id === undefined) continue;
    const session = sessions.get(id) ?? { lines: [], first: time, last: time, suspect: false };
    session.lines.push(line);
    session.last = time;
    session.suspect ||= /"level":[4-6]\d/.test(line);
    sessions.set(id, session);
  }
  const suspects = [...sessions.values()].filter(
    (session) => session.last >= from && (session.suspect || session.last - session.first > 5_000 || !/"msg":"session closed"/.test(session.lines.at(-1) ?? '')),
  );
  const lines = suspects.length > 0 ? suspects.flatMap((session) => session.lines) : window;
  return lines.length > limit ? [`(${lines.length - limit} lines left out)`, ...lines.slice(-limit)] : lines;
}

function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function tail(text: string, lines = 4, chars = 400): string {
  const kept = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .slice(-lines)
    .join(' / ');
  return kept.length > chars ? `…${kept.slice(-chars)}` : kept;
}

async function runPool<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < items.length; index = next++) results[index] = await work(items[index]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** curl, driven directly: `-g` for IPv6 literals, and several URLs on one control connection. */
async function curl(args: readonly string[], mode: FtpMode, opts: ClientOptions & { timeoutMs: number }): Promise<MoreClientResult> {
  const seconds = String(Math.ceil(opts.timeoutMs / 1000));
  const result = await run('curl', ['-g', '-sS', '--fail', '-v', '--max-time', seconds, ...CURL_MODE_FLAGS[mode], ...args], {
    netns: opts.netns,
    timeoutMs: opts.timeoutMs + 5_000,
  });
  return { ...result, commands: commandsFromTrace(result.stderr, CURL_TRACE) };
}

/** curl over IPv6: the FTP_CLIENTS driver does not pass `-g`, which `ftp://[::1]:port/` needs. */
const CURL_IPV6: FtpClientDriver = {
  name: 'curl',
  modes: ['epsv', 'eprt'],
  download: (t, remote, local, mode, opts = {}) => curl(['-o', local, ftpUrl(t, remote)], mode, { ...opts, timeoutMs: opts.timeoutMs ?? SMALL_TIMEOUT_MS }),
  upload: (t, local, remote, mode, opts = {}) => curl(['-T', local, ftpUrl(t, remote)], mode, { ...opts, timeoutMs: opts.timeoutMs ?? SMALL_TIMEOUT_MS }),
  list: (t, dir, mode, opts = {}) => curl([ftpUrl(t, dir.endsWith('/') ? dir : `${dir}/`)], mode, { ...opts, timeoutMs: opts.timeoutMs ?? SMALL_TIMEOUT_MS }),
};

function driver(name: string): FtpClientDriver {
  const found = FTP_CLIENTS.find((client) => client.name === name);
  if (found === undefined) throw new Error(`no client driver ${name}`);
  return found;
}

/**
 * Over IPv6 every client sends EPSV/EPRT, whatever mode it is given: which
 * driver mode yields which command (checked against the trace).
 */
const IPV6_MODES: ReadonlyArray<readonly [FtpClientDriver, ReadonlyArray<readonly [FtpMode, MatrixMode]>]> = [
  [CURL_IPV6, [['epsv', 'epsv'], ['eprt', 'eprt']]],
  [driver('lftp'), [['epsv', 'epsv'], ['port', 'eprt']]],
  [driver('ftplib'), [['epsv', 'epsv'], ['eprt', 'eprt']]],
  [driver('tnftp'), [['epsv', 'epsv'], ['eprt', 'eprt']]],
  [driver('inetutils-ftp'), [['epsv', 'epsv'], ['eprt', 'eprt']]],
  [driver('wget'), [['pasv', 'epsv'], ['port', 'eprt']]],
  [driver('basic-ftp'), [['epsv', 'epsv']]],
];

function pathOf(mode: FtpMode, activePath: MatrixPath): MatrixPath {
  return PASSIVE_MODES.includes(mode) ? 'passive' : activePath;
}

describe('interoperability matrix: servers × clients × modes through SSH', { skip: isRoot() ? false : 'needs root: creates network namespaces and runs chrooting FTP servers' }, () => {
  let dir: string;
  let net: BastionTopology;
  let sshd: SshdInstance;
  /** OpenSSH on the client side's IPv6 address. */
  let sshd6: SshdInstance;
  let ipv6Server: FtpServerInstance;
  const sums = {} as Record<FileKey, string>;
  const files = {} as Record<FileKey, string>;
  const rows: Row[] = [];
  /** Setups that could not be started: their combinations are recorded as failed, the others still run. */
  const failedRows: Array<{ label: string; activePath: MatrixPath; hasForward: boolean; error: unknown }> = [];
  const records: MatrixRecord[] = [];
  /** Row labels in the order the setups were defined: the order of the table. */
  const rowOrder: string[] = [];
  /** What a failure's reason leaves out: the client's own output and ftpfwd's log around it. */
  const failureDetails = new Map<MatrixRecord, string>();
  const cleanups: Array<() => Promise<unknown>> = [];
  let sequence = 0;
  let nextListenPort = 3000;

  function netnsOpts(timeoutMs: number): ClientOptions {
    return { netns: net.client, timeoutMs };
  }

  async function makeRoot(name: string): Promise<string> {
    const root = join(dir, 'roots', name.replace(/[^A-Za-z0-9.-]+/g, '-'));
    await mkdir(root, { recursive: true });
    for (const key of Object.keys(FILES) as FileKey[]) {
      const target = join(root, `${key}.bin`);
      await link(files[key], target).catch(() => copyFile(files[key], target));
    }
    return root;
  }

  async function startForwarder(label: string, listenHost: string, ftp: { host: string; port: number }, ssh: SshEndpoint, extra: string[] = []): Promise<RunningForwarder> {
    const port = nextListenPort++;
    const logFile = join(dir, 'logs', `${port}.log`);
    const args = [
      CLI,
      '-L', `${bracket(listenHost)}:${port}:${bracket(ftp.host)}:${ftp.port}`,
      '-i', ssh.identityFile,
      '-o', `UserKnownHostsFile=${ssh.knownHostsFile}`,
      '-o', 'BatchMode=yes',
      '-p', String(ssh.port),
      '--log-format', 'json',
      '-v',
      '--log-file', logFile,
      ...extra,
      `${ssh.user}@${ssh.host}`,
    ];
    const proc = await startProcess('node', args, { netns: net.client });
    cleanups.push(() => proc.stop());
    try {
      await proc.waitForOutput(/ftpfwd: listening on/, FORWARDER_START_MS);
    } catch (err) {
      throw new Error(`ftpfwd for ${label} did not start: ${err instanceof Error ? err.message : String(err)}\n${proc.stderr().slice(-2000)}${readIfPresent(logFile).slice(-2000)}`, { cause: err });
    }
    const log = (): string => readIfPresent(logFile);
    let strategy: string | undefined;
    // The log file is written asynchronously: give the start-up lines a moment.
    for (let attempt = 0; attempt < 50 && strategy === undefined; attempt++) {
      strategy = /"activeStrategy":"(forward|convert)"/.exec(log())?.[1];
      if (strategy === undefined) await delay(100);
    }
    if (strategy !== 'forward' && strategy !== 'convert') throw new Error(`ftpfwd for ${label} logged no active strategy:\n${log().slice(-2000)}${proc.stderr().slice(-2000)}`);
    const forwarder: RunningForwarder = { label, target: { host: listenHost, port }, proc, strategy, log };
    return forwarder;
  }

  /** Fails the combination unless the client sent `mode`'s command, and only it, for every data connection. */
  function assertUsed(result: MoreClientResult, mode: MatrixMode, what: string): void {
    const verbs = dataCommands(result.commands);
    if (verbs.length === 0) throw new ComboFailure(`${what}: no ${VERB[mode]} in the client's trace`, result.stderr);
    if (verbs.some((verb) => verb !== VERB[mode])) throw new ComboFailure(`${what}: the client sent ${verbs.join(', ')} instead of ${VERB[mode]} only`, result.stderr);
  }

  function assertExit(result: MoreClientResult, what: string): void {
    if (result.code === 0) return;
    const why = result.timedOut ? 'killed after its timeout' : result.signal !== null ? `signal ${result.signal}` : `exit ${String(result.code)}`;
    throw new ComboFailure(`${what}: ${why}: ${tail(`${result.stderr}\n${result.stdout}`)}`, `${result.stderr}\n${result.stdout}`);
  }

  async function runOperation(combo: Combo, operation: Operation): Promise<void> {
    sequence += 1;
    const id = sequence;
    const { client, driverMode, mode } = combo;
    const { target } = combo.forwarder;
    switch (operation.kind) {
      case 'get': {
        const what = `download ${FILE_LABEL[operation.file]}`;
        const out = join(dir, 'out', `${id}.bin`);
        try {
          const timeoutMs = operation.file === 'large' ? LARGE_TIMEOUT_MS : SMALL_TIMEOUT_MS;
          const result = await client.download(target, `/${operation.file}.bin`, out, driverMode, netnsOpts(timeoutMs));
          assertExit(result, what);
          assertUsed(result, mode, what);
          const sum = await sha256File(out).catch(() => 'missing');
          if (sum !== sums[operation.file]) throw new ComboFailure(`${what}: SHA-256 ${sum.slice(0, 12)} differs from the server's file`);
        } finally {
          await rm(out, { force: true });
        }
        return;
      }
      case 'put': {
        const what = `upload ${FILE_LABEL.medium}`;
        if (client.upload === undefined) throw new Error(`${client.name} cannot upload`);
        const name = `up-${id}.bin`;
        const stored = join(combo.server.uploadDir, name);
        try {
          const result = await client.upload(target, files.medium, `/incoming/${name}`, driverMode, netnsOpts(SMALL_TIMEOUT_MS));
          assertExit(result, what);
          assertUsed(result, mode, what);
          const sum = await sha256File(stored).catch(() => 'missing');
          if (sum !== sums.medium) throw new ComboFailure(`${what}: the server stored SHA-256 ${sum.slice(0, 12)}, not the file sent`);
        } finally {
          await rm(stored, { force: true });
        }
        return;
      }
      case 'list': {
        const result = await client.list(target, '/', driverMode, netnsOpts(SMALL_TIMEOUT_MS));
        assertExit(result, 'list');
        assertUsed(result, mode, 'list');
        if (!result.stdout.includes('medium.bin')) throw new ComboFailure(`list: medium.bin is not in the listing: ${tail(result.stdout)}`);
        return;
      }
    }
  }

  function record(combo: Pick<Combo, 'row' | 'check' | 'ssh' | 'ip' | 'mode' | 'path'> & { client: string }, startedAt: number, reason?: string): MatrixRecord {
    if (!rowOrder.includes(combo.row)) rowOrder.push(combo.row);
    const entry: MatrixRecord = {
      server: combo.row,
      client: combo.client,
      mode: combo.mode,
      path: combo.path,
      ok: reason === undefined,
      ...(reason === undefined ? {} : { reason }),
      check: combo.check,
      ssh: combo.ssh,
      ip: combo.ip,
      durationMs: Date.now() - startedAt,
    };
    records.push(entry);
    return entry;
  }

  async function runCombo(combo: Combo): Promise<MatrixRecord> {
    const startedAt = Date.now();
    let operationStart = startedAt;
    try {
      for (const operation of combo.operations) {
        operationStart = Date.now();
        await runOperation(combo, operation);
      }
      return record({ ...combo, client: combo.client.name }, startedAt);
    } catch (err) {
      const failed = record({ ...combo, client: combo.client.name }, startedAt, err instanceof Error ? err.message : String(err));
      const output = err instanceof ComboFailure ? err.output : '';
      failureDetails.set(failed, [
        `client output (end):\n${output.slice(-3000)}`,
        `ftpfwd ${combo.forwarder.label}, from ${new Date(operationStart).toISOString()}:`,
        ...logWindow(combo.forwarder.log(), operationStart - 200, Date.now() + 200),
        `server (end of its log):\n${combo.server.log().slice(-2000)}`,
      ].join('\n'));
      return failed;
    }
  }

  /** Records every combination of a setup that could not be started as failed, with the reason. */
  function recordSetupFailure(combos: ReadonlyArray<Planned>, err: unknown): void {
    const reason = `setup failed: ${tail(err instanceof Error ? err.message : String(err), 6, 600)}`;
    for (const combo of combos) record(combo, Date.now(), reason);
  }

  type Planned = Pick<Combo, 'row' | 'check' | 'ssh' | 'ip' | 'mode' | 'path'> & { client: string };

  /** The records a server row would have produced in the transfer and load checks. */
  function plannedFor(failed: (typeof failedRows)[number], checks: 'transfers' | 'load'): Planned[] {
    const base = { row: failed.label, ssh: 'openssh', ip: 4 } as const;
    if (checks === 'load') {
      return [
        ...MODES.map((mode) => ({ ...base, client: 'curl', mode, path: pathOf(mode, failed.activePath), check: 'concurrent' as const })),
        ...(['epsv', 'port'] as const).map((mode) => ({ ...base, client: 'curl', mode, path: pathOf(mode, failed.activePath), check: 'session' as const })),
      ];
    }
    return FTP_CLIENTS.flatMap((client) =>
      client.modes.flatMap((mode) => [
        { ...base, client: client.name, mode, path: pathOf(mode, failed.activePath), check: 'transfers' as const },
        ...(failed.hasForward && !PASSIVE_MODES.includes(mode) ? [{ ...base, client: client.name, mode, path: 'remote-forward' as const, check: 'remote-forward' as const }] : []),
      ]),
    );
  }

  function transferCombos(row: Row, check: MatrixCheck, clients: readonly FtpClientDriver[], operations: readonly Operation[], ssh: 'openssh' | 'dropbear' = 'openssh'): Combo[] {
    const combos: Combo[] = [];
    for (const client of clients) {
      for (const mode of client.modes) {
        const ops = client.upload === undefined ? operations.filter((operation) => operation.kind !== 'put') : operations;
        combos.push({ row: row.label, server: row.server, client, driverMode: mode, mode, path: pathOf(mode, row.mainActivePath), forwarder: row.main, operations: ops, check, ssh, ip: 4 });
        const { forward } = row;
        if (forward !== undefined && !PASSIVE_MODES.includes(mode)) {
          const forwardOps = client.upload === undefined ? FORWARD_SET.filter((operation) => operation.kind !== 'put') : FORWARD_SET;
          combos.push({ row: row.label, server: row.server, client, driverMode: mode, mode, path: 'remote-forward', forwarder: forward, operations: forwardOps, check: check === 'transfers' ? 'remote-forward' : check, ssh, ip: 4 });
        }
      }
    }
    return combos;
  }

  before(async () => {
    dir = await makeTempDir('ftpfwd-matrix-');
    await mkdir(join(dir, 'files'));
    await mkdir(join(dir, 'out'));
    await mkdir(join(dir, 'logs'));
    for (const key of Object.keys(FILES) as FileKey[]) {
      files[key] = join(dir, 'files', `${key}.bin`);
      if (FILES[key] === 0) await writeFile(files[key], Buffer.alloc(0));
      else await writeRandomFile(files[key], FILES[key]);
      sums[key] = await sha256File(files[key]);
    }
    net = await createBastionTopology();
    sshd = await startSshd({ netns: net.bastion, listenAddress: net.bastionClientSideAddr, gatewayPorts: 'clientspecified' });
    cleanups.push(() => sshd.stop());
    sshd6 = await startSshd({ netns: net.bastion, listenAddress: net.bastionClientSideAddr6, gatewayPorts: 'clientspecified' });
    cleanups.push(() => sshd6.stop());
    ipv6Server = await startVsftpd({ netns: net.ftp, listenAddress: net.ftpAddr6, root: await makeRoot('vsftpd-ipv6') });
    cleanups.push(() => ipv6Server.stop());

    type Starter = (opts: FtpServerOptions) => Promise<FtpServerInstance>;
    const onFtpHost: ReadonlyArray<readonly [string, Starter, number]> = [
      ['vsftpd', startVsftpd, 21],
      // The first run downloads and unpacks proftpd and pure-ftpd (they conflict with vsftpd).
      ['proftpd', startProftpd, 2021],
      ['pure-ftpd', startPureFtpd, 2121],
      ['pyftpdlib', startPyftpdlib, 2221],
      ['scripted', (opts) => startScriptedFtpServer({ ...opts, variant: 'standard' }), 2321],
    ];
    const sameHostLabel = 'vsftpd on the SSH host (127.0.0.1)';
    rowOrder.push(...onFtpHost.map(([label]) => label), sameHostLabel);
    await Promise.all(
      onFtpHost.map(async ([label, start, port]) => {
        try {
          const server = await start({ root: await makeRoot(label), netns: net.ftp, listenAddress: net.ftpAddr, port });
          cleanups.push(() => server.stop());
          const ftp = { host: net.ftpAddr, port: server.port };
          const main = await startForwarder(label, '127.0.0.1', ftp, sshd);
          const forward = await startForwarder(`${label} (remote forward)`, '127.0.0.1', ftp, sshd, ['--active-address', net.bastionFtpSideAddr]);
          assert.equal(main.strategy, 'convert', `${label}: the default for an FTP server behind the bastion is conversion`);
          assert.equal(forward.strategy, 'forward', `${label}: --active-address with GatewayPorts clientspecified must forward:\n${forward.log()}`);
          rows.push({ label, server, main, mainActivePath: 'converted', forward });
        } catch (error) {
          failedRows.push({ label, activePath: 'converted', hasForward: true, error });
        }
      }),
    );
    rows.sort((a, b) => rowOrder.indexOf(a.label) - rowOrder.indexOf(b.label));
    // The same host: an FTP server on the bastion's own loopback; active mode then uses a remote forward on 127.0.0.1.
    try {
      const sameHost = await startVsftpd({ netns: net.bastion, listenAddress: '127.0.0.1', port: 21, root: await makeRoot('vsftpd-same-host') });
      cleanups.push(() => sameHost.stop());
      const sameHostForwarder = await startForwarder(sameHostLabel, '127.0.0.1', { host: '127.0.0.1', port: 21 }, sshd);
      assert.equal(sameHostForwarder.strategy, 'forward', 'an FTP server on the SSH host gets remote forwards on 127.0.0.1 by default');
      rows.push({ label: sameHostLabel, server: sameHost, main: sameHostForwarder, mainActivePath: 'remote-forward' });
    } catch (error) {
      failedRows.push({ label: sameHostLabel, activePath: 'remote-forward', hasForward: false, error });
    }
  }, { timeout: 300_000 });

  after(async () => {
    const errors: unknown[] = [];
    for (let cleanup = cleanups.pop(); cleanup !== undefined; cleanup = cleanups.pop()) {
      try {
        await cleanup();
      } catch (err) {
        errors.push(err);
      }
    }
    await net?.destroy();
    if (dir !== undefined) await removeDir(dir);
    if (errors.length > 0) throw new AggregateError(errors, 'matrix cleanup failed');
  });

  it('the client reaches the FTP host only through ftpfwd, over IPv4 and IPv6', async () => {
    assert.ok(net.ftpAddr6 !== undefined && net.bastionClientSideAddr6 !== undefined);
    for (const [host, port] of [[net.ftpAddr, 21], [net.ftpAddr, 2021], [net.ftpAddr6, 21]] as const) {
      assert.equal(await canConnect(host, port, { netns: net.client, timeoutMs: 2_000 }), false, `the client reached ${host}:${port}`);
      assert.equal(await canConnect(host, port, { netns: net.bastion, timeoutMs: 2_000 }), true, `the bastion cannot reach ${host}:${port}`);
    }
    assert.equal(await canConnect(net.bastionClientSideAddr6, 22, { netns: net.client, timeoutMs: 2_000 }), true);
  });

  it(`every server × client × mode: ${Object.values(FILE_LABEL).join(', ')} downloads, a 5 MiB upload, a listing; active modes also through a remote forward`, { timeout: 480_000 }, async () => {
    for (const failed of failedRows) recordSetupFailure(plannedFor(failed, 'transfers'), failed.error);
    const combos = rows.flatMap((row) => transferCombos(row, 'transfers', FTP_CLIENTS, FULL_SET));
    // Interleave the servers so that no one of them gets every heavy transfer at once.
    combos.sort((a, b) => a.client.name.localeCompare(b.client.name) || a.driverMode.localeCompare(b.driverMode));
    await runPool(combos, CONCURRENCY, runCombo);
  });

  it(`per server: ${CONCURRENT_DOWNLOADS} concurrent curl downloads, and ${SESSION_TRANSFERS} transfers in one curl session`, { timeout: 240_000 }, async () => {
    const modes = MODES;
    for (const failed of failedRows) recordSetupFailure(plannedFor(failed, 'load'), failed.error);
    for (const row of rows) {
      const startedAt = Date.now();
      const results = await Promise.all(
        Array.from({ length: CONCURRENT_DOWNLOADS }, async (_unused, index) => {
          const mode = modes[index % modes.length]!;
          const out = join(dir, 'out', `concurrent-${index}.bin`);
          try {
            const result = await curl(['-o', out, ftpUrl(row.main.target, '/medium.bin')], mode, { netns: net.client, timeoutMs: 60_000 });
            assertExit(result, `download ${index + 1} of ${CONCURRENT_DOWNLOADS}`);
            assertUsed(result, mode, `download ${index + 1} of ${CONCURRENT_DOWNLOADS}`);
            const sum = await sha256File(out).catch(() => 'missing');
            if (sum !== sums.medium) throw new ComboFailure(`download ${index + 1}: SHA-256 differs`);
            return { mode, reason: undefined };
          } catch (err) {
            return { mode, reason: err instanceof Error ? err.message : String(err) };
          } finally {
            await rm(out, { force: true });
          }
        }),
      );
      for (const mode of modes) {
        const reasons = results.filter((result) => result.mode === mode && result.reason !== undefined).map((result) => result.reason);
        const entry = record({ row: row.label, client: 'curl', mode, path: pathOf(mode, row.mainActivePath), check: 'concurrent', ssh: 'openssh', ip: 4 }, startedAt, reasons.length === 0 ? undefined : reasons.join('; '));
        if (!entry.ok) failureDetails.set(entry, [`ftpfwd ${row.main.label}:`, ...logWindow(row.main.log(), startedAt, Date.now(), 300)].join('\n'));
      }

      for (const mode of ['epsv', 'port'] as const) {
        const sessionStart = Date.now();
        const outs = Array.from({ length: SESSION_TRANSFERS }, (_unused, index) => join(dir, 'out', `session-${index}.bin`));
        let reason: string | undefined;
        try {
          const result = await curl(outs.flatMap((out) => ['-o', out, ftpUrl(row.main.target, '/small.bin')]), mode, { netns: net.client, timeoutMs: 60_000 });
          assertExit(result, `${SESSION_TRANSFERS} downloads in one session`);
          const logins = result.commands.filter((command) => command.toUpperCase().startsWith('USER ')).length;
          const retrievals = result.commands.filter((command) => command.toUpperCase().startsWith('RETR ')).length;
          if (logins !== 1) throw new ComboFailure(`${logins} logins in the trace, not one`);
          if (retrievals !== SESSION_TRANSFERS) throw new ComboFailure(`${retrievals} RETR in the trace, not ${SESSION_TRANSFERS}`);
          const verbs = dataCommands(result.commands);
          if (verbs.length !== SESSION_TRANSFERS || verbs.some((verb) => verb !== VERB[mode])) throw new ComboFailure(`data commands ${verbs.join(',')}`);
          for (const out of outs) if ((await sha256File(out).catch(() => 'missing')) !== sums.small) throw new ComboFailure(`${out}: SHA-256 differs`);
        } catch (err) {
          reason = err instanceof Error ? err.message : String(err);
        } finally {
          await Promise.all(outs.map((out) => rm(out, { force: true })));
        }
        const entry = record({ row: row.label, client: 'curl', mode, path: pathOf(mode, row.mainActivePath), check: 'session', ssh: 'openssh', ip: 4 }, sessionStart, reason);
        if (!entry.ok) failureDetails.set(entry, [`ftpfwd ${row.main.label}:`, ...logWindow(row.main.log(), sessionStart, Date.now(), 300)].join('\n'));
      }
    }
  });

  it('every scripted server variant, through SSH, with curl in every mode it supports', { timeout: 180_000 }, async () => {
    const variants: ScriptedVariantName[] = SCRIPTED_VARIANT_NAMES.filter((name) => name !== 'standard');
    const curlDriver = driver('curl');
    const variantRows = await runPool(variants, 4, async (name: ScriptedVariantName) => {
      const label = `scripted (${name})`;
      const variant: ScriptedVariant = SCRIPTED_VARIANTS[name];
      // EPRT is converted to EPSV upstream, so both need a server that knows EPSV.
      const modes: FtpMode[] = variant.epsv === undefined ? ['pasv', 'port'] : ['pasv', 'epsv', 'port', 'eprt'];
      try {
        const server = await startScriptedFtpServer({ root: await makeRoot(label), netns: net.ftp, listenAddress: net.ftpAddr, port: 2400 + variants.indexOf(name), variant: name });
        cleanups.push(() => server.stop());
        const main = await startForwarder(label, '127.0.0.1', { host: net.ftpAddr, port: server.port }, sshd);
        return { row: { label, server, main, mainActivePath: 'converted' } satisfies Row, modes };
      } catch (err) {
        recordSetupFailure(modes.map((mode) => ({ row: label, client: 'curl', mode, path: pathOf(mode, 'converted'), check: 'variant', ssh: 'openssh', ip: 4 })), err);
        return undefined;
      }
    });
    const combos = variantRows.flatMap((entry) =>
      entry === undefined ? [] : transferCombos(entry.row, 'variant', [{ ...curlDriver, modes: entry.modes }], SHORT_SET),
    );
    await runPool(combos, CONCURRENCY, runCombo);
  });

  it('Dropbear as the SSH server: passive, converted and (with -a) remote-forward paths with curl and lftp', { timeout: 180_000 }, async () => {
    const vsftpd = rows.find((row) => row.label === 'vsftpd');
    const vsftpdServer = (): FtpServerInstance => {
      if (vsftpd === undefined) throw new Error('vsftpd, which the Dropbear checks use, did not start');
      return vsftpd.server;
    };
    const clients = [driver('curl'), driver('lftp')];
    const label = 'vsftpd via Dropbear';
    const noForwardLabel = 'vsftpd via Dropbear without -a';
    let combos: Combo[] = [];
    try {
      const server = vsftpdServer();
      const dropbear: DropbearInstance = await startDropbear({ netns: net.bastion, listenAddress: net.bastionClientSideAddr, port: 2222, remoteForwardsOnAnyAddress: true });
      cleanups.push(() => dropbear.stop());
      const ftp = { host: net.ftpAddr, port: server.port };
      const main = await startForwarder(label, '127.0.0.1', ftp, dropbear);
      const forward = await startForwarder(`${label} (remote forward)`, '127.0.0.1', ftp, dropbear, ['--active-address', net.bastionFtpSideAddr]);
      assert.equal(forward.strategy, 'forward', `Dropbear -a must allow a remote forward on ${net.bastionFtpSideAddr}:\n${forward.log()}`);
      combos = transferCombos({ label, server, main, mainActivePath: 'converted', forward }, 'dropbear', clients, SHORT_SET, 'dropbear');
    } catch (err) {
      recordSetupFailure(
        clients.flatMap((client) => client.modes.map((mode) => ({ row: label, client: client.name, mode, path: pathOf(mode, 'converted'), check: 'dropbear', ssh: 'dropbear', ip: 4 }))),
        err,
      );
    }
    await runPool(combos, CONCURRENCY, runCombo);

    // Without -a Dropbear binds remote forwards to loopback only: ftpfwd's probe must notice and convert instead.
    const startedAt = Date.now();
    const noForward = { row: noForwardLabel, client: 'curl', mode: 'port', path: 'converted', check: 'dropbear', ssh: 'dropbear', ip: 4 } as const;
    try {
      const plain = await startDropbear({ netns: net.bastion, listenAddress: net.bastionClientSideAddr, port: 2223 });
      cleanups.push(() => plain.stop());
      const fallback = await startForwarder(noForwardLabel, '127.0.0.1', { host: net.ftpAddr, port: vsftpdServer().port }, plain, ['--active-address', net.bastionFtpSideAddr]);
      if (fallback.strategy !== 'convert' || !/converted to passive upstream instead/.test(fallback.log())) {
        throw new ComboFailure(`ftpfwd did not fall back to conversion: ${tail(fallback.log())}`);
      }
      await runCombo({ ...noForward, client: driver('curl'), server: vsftpdServer(), driverMode: 'port', forwarder: fallback, operations: FORWARD_SET });
    } catch (err) {
      record(noForward, startedAt, err instanceof Error ? err.message : String(err));
    }
  });

  it('IPv6: ftpfwd on [::1], SSH and FTP over the IPv6 links, EPSV and EPRT', { timeout: 180_000 }, async () => {
    const label = 'vsftpd over IPv6';
    const plan = IPV6_MODES.flatMap(([client, modes]) => modes.map(([driverMode, mode]) => ({ client, driverMode, mode })));
    let combos: Combo[] = [];
    try {
      assert.ok(net.ftpAddr6 !== undefined && net.bastionFtpSideAddr6 !== undefined);
      const ftp = { host: net.ftpAddr6, port: ipv6Server.port };
      const main = await startForwarder(label, '::1', ftp, sshd6);
      const forward = await startForwarder(`${label} (remote forward)`, '::1', ftp, sshd6, ['--active-address', net.bastionFtpSideAddr6]);
      assert.equal(main.strategy, 'convert');
      assert.equal(forward.strategy, 'forward', forward.log());
      combos = plan.flatMap(({ client, driverMode, mode }) => {
        const base = { row: label, server: ipv6Server, client, driverMode, mode, check: 'ipv6', ssh: 'openssh', ip: 6 } as const;
        const ops = client.upload === undefined ? SHORT_SET.filter((operation) => operation.kind !== 'put') : SHORT_SET;
        const forwardOps = client.upload === undefined ? FORWARD_SET.filter((operation) => operation.kind !== 'put') : FORWARD_SET;
        const passive = mode === 'epsv';
        return [
          { ...base, path: passive ? 'passive' : 'converted', forwarder: main, operations: ops } satisfies Combo,
          ...(passive ? [] : [{ ...base, path: 'remote-forward', forwarder: forward, operations: forwardOps } satisfies Combo]),
        ];
      });
    } catch (err) {
      recordSetupFailure(plan.map(({ client, mode }) => ({ row: label, client: client.name, mode, path: mode === 'epsv' ? 'passive' : 'converted', check: 'ipv6', ssh: 'openssh', ip: 6 })), err);
    }
    await runPool(combos, CONCURRENCY, runCombo);
  });

  it('writes the results and passes only if every combination passed', async (t) => {
    const clientOrder = (name: string): number => (CLIENT_COLUMNS as readonly string[]).indexOf(name);
    const checkOrder = (check: MatrixCheck): number => Object.keys(CHECKS).indexOf(check);
    records.sort(
      (a, b) =>
        rowOrder.indexOf(a.server) - rowOrder.indexOf(b.server) ||
        clientOrder(a.client) - clientOrder(b.client) ||
        MODES.indexOf(a.mode) - MODES.indexOf(b.mode) ||
        checkOrder(a.check) - checkOrder(b.check) ||
        a.path.localeCompare(b.path),
    );
    await writeFile(MATRIX_JSON, `${JSON.stringify(records, null, 2)}\n`);
    t.diagnostic(`${records.length} combinations; results in ${MATRIX_JSON}`);
    for (const line of renderTables(records).split('\n')) t.diagnostic(line);
    const failed = failures(records);
    for (const entry of failed) {
      t.diagnostic(`--- ${describeRecord(entry)}: ${entry.reason ?? ''}`);
      for (const line of (failureDetails.get(entry) ?? '').split('\n')) t.diagnostic(line);
    }
    assert.ok(records.length > 0, 'no combination ran');
    assert.deepEqual(
      failed.map((entry) => `${describeRecord(entry)}: ${entry.reason ?? ''}`),
      [],
      `${failed.length} of ${records.length} combinations failed:\n${failed.map((entry) => `- ${describeRecord(entry)}: ${entry.reason ?? ''}`).join('\n')}`,
    );
  });
});
