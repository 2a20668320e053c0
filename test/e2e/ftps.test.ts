import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createTestCa, type IssuedCertificate, type TestCa } from '../helpers/certificates.js';
import { ftpUrl, type FtpMode, type FtpTarget } from '../helpers/clients.js';
import { sha256File, writeRandomFile } from '../helpers/files.js';
import type { FtpServerInstance, FtpServerTls } from '../helpers/ftpServer.js';
import { commandsFromTrace, dataCommands, FTP_CLIENTS, type FtpClientDriver, type MoreClientResult } from '../helpers/moreClients.js';
import { createBastionTopology, isRoot, type BastionTopology } from '../helpers/netns.js';
import { run, startProcess, type ProcessHandle, type RunResult } from '../helpers/processes.js';
import { startProftpd } from '../helpers/proftpd.js';
import { startPureFtpd } from '../helpers/pureFtpd.js';
import { startScriptedFtpServer } from '../helpers/scriptedFtpServer.js';
import { startSshd, type SshdInstance } from '../helpers/sshd.js';
import { delay } from '../helpers/time.js';
import { makeTempDir, removeDir } from '../helpers/tmp.js';
import { startVsftpd } from '../helpers/vsftpd.js';
import { renderTables, type MatrixCheck, type MatrixMode, type MatrixPath, type MatrixRecord } from '../matrix/matrix.js';

/**
 * FTPS through ftpfwd, with real servers and clients in the bastion
 * topology: vsftpd (explicit, and implicit on 990), proftpd with mod_tls
 * (TLS 1.2 only) and pure-ftpd (-Y 2), each requiring TLS for logins and
 * data and (vsftpd, proftpd) data connections that resume the control
 * session; certificates made by openssl for each server's host name, which
 * the bastion resolves (/etc/netns/<bastion>/hosts). The clients speak
 * plain FTP to ftpfwd (curl, lftp, ftplib, tnftp, every mode), or TLS to it
 * (curl --ssl-reqd, lftp ftp:ssl-force, Python's FTP_TLS). Every refusal
 * (wrong CA, expired, wrong name, a pin that does not match, no AUTH TLS)
 * must end in a 421 that says why and no login sent to the server. The
 * transfer records go to $FTPFWD_FTPS_MATRIX_JSON (default
 * <tmpdir>/ftpfwd-ftps-matrix.json), for the README's compatibility table.
 */

const CLI = fileURLToPath(new URL('../../bin/ftpfwd', import.meta.url));
const FTPLIB = fileURLToPath(new URL('../helpers/ftplib_client.py', import.meta.url));
const MATRIX_JSON = process.env['FTPFWD_FTPS_MATRIX_JSON'] || join(tmpdir(), 'ftpfwd-ftps-matrix.json');
const MiB = 1024 * 1024;
const TIMEOUT_MS = 30_000;
const CONCURRENCY = 3;
const SESSION_TRANSFERS = 20;
const DOMAIN = 'ftps.test';
const VERB: Record<MatrixMode, string> = { pasv: 'PASV', epsv: 'EPSV', port: 'PORT', eprt: 'EPRT' };
const PLAIN_CLIENTS = FTP_CLIENTS.filter((client) => ['curl', 'lftp', 'ftplib', 'tnftp'].includes(client.name));

interface Forwarder {
  label: string;
  target: FtpTarget;
  proc: ProcessHandle;
  log(): string;
}

interface Row {
  label: string;
  server: FtpServerInstance;
  forwarder: Forwarder;
  /** Active modes through a remote forward on the bastion, as well as converted. */
  remoteForward?: Forwarder;
  /** What the server's log must show for a resumed data session, if it logs that. */
  reuse?: RegExp;
}

function readIfPresent(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function tail(text: string, chars = 600): string {
  const flat = text.replace(/\s*\n\s*/g, ' / ').trim();
  return flat.length > chars ? `…${flat.slice(-chars)}` : flat;
}

function assertExit(result: RunResult, what: string): void {
  if (result.code !== 0) throw new Error(`${what}: exit ${String(result.code)}${result.timedOut ? ' (timed out)' : ''}: ${tail(`${result.stderr}\n${result.stdout}`)}`);
}

describe('FTPS: TLS to the server, and from the client, through SSH', { skip: isRoot() ? false : 'needs root: creates network namespaces and runs chrooting FTP servers' }, () => {
  let dir: string;
  let net: BastionTopology;
  let sshd: SshdInstance;
  let ca: TestCa;
  let otherCa: TestCa;
  let ftpfwdCert: IssuedCertificate;
  const certs = {} as Record<'vsftpd' | 'proftpd' | 'pureftpd' | 'expired', IssuedCertificate>;
  const servers = {} as Record<'vsftpd' | 'vsftpdImplicit' | 'proftpd' | 'pureftpd' | 'expired' | 'scripted', FtpServerInstance>;
  const rows: Row[] = [];
  const records: MatrixRecord[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];
  let medium: string;
  let mediumSum: string;
  let small: string;
  let smallSum: string;
  let nextPort = 4000;
  let sequence = 0;
  const netnsHosts = (): string => join('/etc/netns', net.bastion);

  async function startForwarder(label: string, ftp: string, extra: string[], listenHost = '127.0.0.1'): Promise<Forwarder> {
    const port = nextPort++;
    const logFile = join(dir, 'logs', `${port}.log`);
    const args = [CLI, '-L', `${listenHost}:${port}:${ftp}`, '-i', sshd.identityFile, '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, '-o', 'BatchMode=yes', '--log-format', 'json', '-v', '--log-file', logFile, ...extra, `${sshd.user}@${sshd.host}`];
    const proc = await startProcess('node', args, { netns: net.client });
    cleanups.push(() => proc.stop());
    try {
      await proc.waitForOutput(/ftpfwd: listening on/, 20_000);
    } catch (error) {
      throw new Error(`ftpfwd for ${label} did not start: ${String(error)}\n${proc.stderr()}${readIfPresent(logFile)}`, { cause: error });
    }
    return { label, target: { host: listenHost, port }, proc, log: () => readIfPresent(logFile) };
  }

  function record(entry: Omit<MatrixRecord, 'ok' | 'durationMs' | 'ssh' | 'ip'>, startedAt: number, reason?: string): MatrixRecord {
    const full: MatrixRecord = { ...entry, ok: reason === undefined, ...(reason === undefined ? {} : { reason }), ssh: 'openssh', ip: 4, durationMs: Date.now() - startedAt };
    records.push(full);
    return full;
  }

  function assertUsed(result: MoreClientResult, mode: MatrixMode, what: string): void {
    const verbs = dataCommands(result.commands);
    if (verbs.length === 0 || verbs.some((verb) => verb !== VERB[mode])) throw new Error(`${what}: the client sent ${verbs.join(', ') || 'no data command'} instead of ${VERB[mode]}`);
  }

  /** Download and upload 2 MiB (SHA-256 on both ends) and a listing, with one client in one mode. */
  async function plainCombo(row: Row, forwarder: Forwarder, client: FtpClientDriver, mode: FtpMode, path: MatrixPath): Promise<void> {
    const startedAt = Date.now();
    const opts = { netns: net.client, timeoutMs: TIMEOUT_MS };
    const id = ++sequence;
    const out = join(dir, 'out', `${id}.bin`);
    const stored = join(row.server.uploadDir, `up-${id}.bin`);
    let reason: string | undefined;
    try {
      const got = await client.download(forwarder.target, '/medium.bin', out, mode, opts);
      assertExit(got, 'download');
      assertUsed(got, mode, 'download');
      if ((await sha256File(out).catch(() => 'missing')) !== mediumSum) throw new Error('download: SHA-256 differs');
      const put = await client.upload!(forwarder.target, medium, `/incoming/up-${id}.bin`, mode, opts);
      assertExit(put, 'upload');
      assertUsed(put, mode, 'upload');
      if ((await sha256File(stored).catch(() => 'missing')) !== mediumSum) throw new Error('upload: the server stored something else');
      const listed = await client.list(forwarder.target, '/', mode, opts);
      assertExit(listed, 'list');
      if (!listed.stdout.includes('medium.bin')) throw new Error(`list: no medium.bin in ${tail(listed.stdout)}`);
    } catch (error) {
      reason = `${error instanceof Error ? error.message : String(error)}\n${tail(forwarder.log(), 1500)}`;
    } finally {
      await rm(out, { force: true });
      await rm(stored, { force: true });
    }
    record({ server: row.label, client: client.name, mode, path, check: 'tls' }, startedAt, reason);
  }

  before(async () => {
    dir = await makeTempDir('ftpfwd-ftps-');
    for (const sub of ['out', 'logs', 'files']) await mkdir(join(dir, sub));
    medium = join(dir, 'files', 'medium.bin');
    small = join(dir, 'files', 'small.bin');
    await writeRandomFile(medium, 2 * MiB);
    await writeRandomFile(small, 1024);
    mediumSum = await sha256File(medium);
    smallSum = await sha256File(small);
    net = await createBastionTopology({ ipv6: false });
    // ip netns exec bind-mounts /etc/netns/<ns>/hosts over /etc/hosts: the bastion's sshd resolves the servers' names.
    await mkdir(netnsHosts(), { recursive: true });
    cleanups.push(() => rm(netnsHosts(), { recursive: true, force: true }));
    const names = ['vsftpd', 'proftpd', 'pureftpd', 'expired', 'wrongname', 'scripted'].map((name) => `${name}.${DOMAIN}`);
    await writeFile(join(netnsHosts(), 'hosts'), `127.0.0.1 localhost\n${net.ftpAddr} ${names.join(' ')}\n`);
    ca = await createTestCa(join(dir, 'ca'));
    otherCa = await createTestCa(join(dir, 'other-ca'), 'some other CA');
    for (const name of ['vsftpd', 'proftpd', 'pureftpd'] as const) certs[name] = await ca.issue({ name, dnsNames: [`${name}.${DOMAIN}`] });
    certs.expired = await ca.issue({ name: 'expired', dnsNames: [`expired.${DOMAIN}`], notBefore: '20200101000000Z', notAfter: '20210101000000Z' });
    ftpfwdCert = await ca.issue({ name: 'ftpfwd', dnsNames: ['ftpfwd.test'], ipAddresses: [net.clientAddr] });
    sshd = await startSshd({ netns: net.bastion, listenAddress: net.bastionClientSideAddr, gatewayPorts: 'clientspecified' });
    cleanups.push(() => sshd.stop());

    const root = async (name: string): Promise<string> => {
      const path = join(dir, 'roots', name);
      await mkdir(path, { recursive: true });
      await writeFile(join(path, 'medium.bin'), readFileSync(medium));
      await writeFile(join(path, 'small.bin'), readFileSync(small));
      return path;
    };
    const tls = (cert: IssuedCertificate, more: Partial<FtpServerTls> = {}): FtpServerTls => ({ certFile: cert.certFile, keyFile: cert.keyFile, ...more });
    const at = { netns: net.ftp, listenAddress: net.ftpAddr };
    const started = await Promise.all([
      startVsftpd({ ...at, port: 21, root: await root('vsftpd'), tls: tls(certs.vsftpd) }),
      startVsftpd({ ...at, port: 990, root: await root('vsftpd-implicit'), tls: tls(certs.vsftpd, { implicit: true }) }),
      startProftpd({ ...at, port: 2021, root: await root('proftpd'), tls: tls(certs.proftpd, { version: 'TLSv1.2' }) }),
      startPureFtpd({ ...at, port: 2121, root: await root('pureftpd'), tls: tls(certs.pureftpd) }),
      startVsftpd({ ...at, port: 2022, root: await root('expired'), tls: tls(certs.expired) }),
      startScriptedFtpServer({ ...at, port: 2400, root: await root('scripted') }),
    ]);
    const [vsftpd, vsftpdImplicit, proftpd, pureftpd, expired, scripted] = started;
    for (const server of started) cleanups.push(() => server.stop());
    Object.assign(servers, { vsftpd, vsftpdImplicit, proftpd, pureftpd, expired, scripted });

    const trust = ['--ftp-tls-ca', ca.certFile];
    const [vs, vsForward, vsImplicit, pro, pure] = await Promise.all([
      startForwarder('vsftpd', `vsftpd.${DOMAIN}:21`, ['--ftp-tls', 'explicit', ...trust]),
      startForwarder('vsftpd, remote forward', `vsftpd.${DOMAIN}:21`, ['--ftp-tls', 'explicit', ...trust, '--active-address', net.bastionFtpSideAddr]),
      startForwarder('vsftpd implicit', `vsftpd.${DOMAIN}:990`, ['--ftp-tls', 'implicit', ...trust]),
      startForwarder('proftpd', `proftpd.${DOMAIN}:2021`, ['--ftp-tls', 'explicit', ...trust]),
      startForwarder('pure-ftpd', `pureftpd.${DOMAIN}:2121`, ['--ftp-tls', 'explicit', ...trust]),
    ]);
    rows.push(
      { label: 'vsftpd, FTPS explicit (AUTH TLS)', server: vsftpd, forwarder: vs, remoteForward: vsForward, reuse: /SSL version: TLSv1\.3, .*reused/ },
      { label: 'vsftpd, FTPS implicit (port 990)', server: vsftpdImplicit, forwarder: vsImplicit, reuse: /reused/ },
      { label: 'proftpd mod_tls, FTPS explicit, TLS 1.2', server: proftpd, forwarder: pro, reuse: /reused/i },
      { label: 'pure-ftpd -Y 2, FTPS explicit', server: pureftpd, forwarder: pure },
    );
  }, { timeout: 240_000 });

  after(async () => {
    const errors: unknown[] = [];
    for (let cleanup = cleanups.pop(); cleanup !== undefined; cleanup = cleanups.pop()) {
      try {
        await cleanup();
      } catch (error) {
        errors.push(error);
      }
    }
    await net?.destroy();
    if (dir !== undefined) await removeDir(dir);
    if (errors.length > 0) throw new AggregateError(errors, 'FTPS test cleanup failed');
  });

  it('plain clients to ftpfwd, FTPS to every server: curl, lftp, ftplib, tnftp in every mode, 2 MiB each way and a listing', { timeout: 300_000 }, async () => {
    const combos: Array<() => Promise<void>> = [];
    for (const row of rows) {
      for (const client of PLAIN_CLIENTS) {
        for (const mode of client.modes) {
          const active = mode === 'port' || mode === 'eprt';
          combos.push(() => plainCombo(row, row.forwarder, client, mode, active ? 'converted' : 'passive'));
          if (active && row.remoteForward) combos.push(() => plainCombo(row, row.remoteForward!, client, mode, 'remote-forward'));
        }
      }
    }
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      for (let index = next++; index < combos.length; index = next++) await combos[index]!();
    }));
    const failed = records.filter((entry) => entry.check === 'tls' && !entry.ok);
    assert.deepEqual(failed.map((entry) => `${entry.server} × ${entry.client} × ${entry.mode} (${entry.path}): ${entry.reason}`), []);
    // Each server negotiated the protocol asked of it.
    assert.match(rows[0]!.forwarder.log(), /"tls":"TLSv1\.3 [^"]+","servername":"vsftpd\.ftps\.test","mode":"explicit","msg":"TLS with the FTP server established"/);
    assert.match(rows[2]!.forwarder.log(), /"tls":"TLSv1\.2 [^"]+".*"msg":"TLS with the FTP server established"/);
    assert.match(rows[0]!.forwarder.log(), /"clientTls":"none","serverTls":"TLSv1\.3 [^"]+","msg":"session closed"/);
  });

  it(`${SESSION_TRANSFERS} transfers in one curl session: every data connection resumes the control session`, { timeout: 180_000 }, async () => {
    for (const row of rows) {
      for (const mode of ['epsv', 'port'] as const) {
        const startedAt = Date.now();
        const before = row.server.log().length;
        const outs = Array.from({ length: SESSION_TRANSFERS }, (_unused, index) => join(dir, 'out', `session-${index}.bin`));
        let reason: string | undefined;
        try {
          const flags = mode === 'epsv' ? ['--ftp-pasv'] : ['--ftp-port', '-'];
          const result = await run('curl', ['-sS', '--fail', '-v', '--max-time', '60', ...flags, ...outs.flatMap((out) => ['-o', out, ftpUrl(row.forwarder.target, '/small.bin')])], { netns: net.client, timeoutMs: 70_000 });
          assertExit(result, `${SESSION_TRANSFERS} downloads`);
          const commands = commandsFromTrace(result.stderr, /^> (.*)$/);
          assert.equal(commands.filter((command) => command.startsWith('USER ')).length, 1, 'one login');
          assert.equal(commands.filter((command) => command.startsWith('RETR ')).length, SESSION_TRANSFERS);
          for (const out of outs) if ((await sha256File(out).catch(() => 'missing')) !== smallSum) throw new Error(`${out}: SHA-256 differs`);
          if (row.reuse) {
            // The server's own log: a data connection that did not resume would have been refused.
            await delay(300);
            const reused = row.server.log().slice(before).split('\n').filter((line) => row.reuse!.test(line) && !/not reused/.test(line)).length;
            if (reused < SESSION_TRANSFERS) throw new Error(`the server's log shows ${reused} resumed data sessions, not ${SESSION_TRANSFERS}: ${tail(row.server.log().slice(before), 1500)}`);
          }
        } catch (error) {
          reason = error instanceof Error ? error.message : String(error);
        } finally {
          await Promise.all(outs.map((out) => rm(out, { force: true })));
        }
        record({ server: row.label, client: 'curl', mode, path: mode === 'epsv' ? 'passive' : 'converted', check: 'session' }, startedAt, reason);
        assert.equal(reason, undefined, `${row.label} ${mode}: ${reason}`);
      }
    }
  });

  it('clients in TLS to ftpfwd (--tls-cert, a LAN address): curl --ssl-reqd, lftp ftp:ssl-force, Python FTP_TLS prot_p, and implicit TLS', { timeout: 180_000 }, async () => {
    const common = ['--ftp-tls', 'explicit', '--ftp-tls-ca', ca.certFile, '--tls-cert', ftpfwdCert.certFile, '--tls-key', ftpfwdCert.keyFile];
    const [explicit, implicit] = await Promise.all([
      startForwarder('TLS to ftpfwd', `vsftpd.${DOMAIN}:21`, common, net.clientAddr),
      startForwarder('implicit TLS to ftpfwd', `vsftpd.${DOMAIN}:21`, [...common, '--tls-implicit'], net.clientAddr),
    ]);
    const label = 'vsftpd, FTPS explicit; TLS from the client too (--tls-cert)';
    const server = servers.vsftpd;
    const url = (forwarder: Forwarder, path: string, scheme = 'ftp'): string => `${scheme}://${forwarder.target.host}:${forwarder.target.port}${path}`;
    const opts = { netns: net.client, timeoutMs: TIMEOUT_MS + 10_000 };
    type Check = { client: string; mode: MatrixMode; forwarder: Forwarder; run(out: string, remote: string): Promise<void> };
    const curlTls = (scheme: string, flags: string[]) => async (forwarder: Forwarder, out: string, remote: string): Promise<void> => {
      const base = ['-sS', '--fail', '-v', '--max-time', '30', '--cacert', ca.certFile, ...(scheme === 'ftp' ? ['--ssl-reqd'] : []), ...flags];
      assertExit(await run('curl', [...base, '-o', out, url(forwarder, '/medium.bin', scheme)], opts), 'curl download');
      assertExit(await run('curl', [...base, '-T', medium, url(forwarder, `/incoming/${remote}`, scheme)], opts), 'curl upload');
      const listed = await run('curl', [...base, url(forwarder, '/', scheme)], opts);
      assertExit(listed, 'curl list');
      if (!listed.stdout.includes('medium.bin')) throw new Error('curl list: no medium.bin');
    };
    const lftp = async (forwarder: Forwarder, out: string, remote: string, passive: boolean): Promise<void> => {
      const script = [
        'set ftp:ssl-force true', 'set ftp:ssl-protect-data true', 'set ftp:ssl-protect-list true', `set ssl:ca-file "${ca.certFile}"`,
        `set ftp:passive-mode ${passive ? 'on' : 'off'}`, 'set ftp:prefer-epsv no', 'set net:max-retries 1', 'set net:timeout 20', 'set cmd:fail-exit yes',
        `open -u anonymous,lftp@example.com ${url(forwarder, '/')}`, `get /medium.bin -o "${out}"`, `put "${medium}" -o /incoming/${remote}`, 'cls -1 /', 'quit',
      ].join('; ');
      const result = await run('lftp', ['-d', '-c', script], opts);
      assertExit(result, 'lftp');
      if (!result.stdout.includes('medium.bin')) throw new Error('lftp list: no medium.bin');
      if (!/AUTH TLS/.test(result.stderr) || !/PROT P/.test(result.stderr)) throw new Error('lftp did not use AUTH TLS and PROT P');
    };
    const python = async (forwarder: Forwarder, out: string, remote: string, mode: 'pasv' | 'port'): Promise<void> => {
      const py = (action: string, ...rest: string[]): Promise<RunResult> => run('python3', [FTPLIB, '--tls', ca.certFile, forwarder.target.host, String(forwarder.target.port), mode, action, ...rest], opts);
      assertExit(await py('get', '/medium.bin', out), 'FTP_TLS get');
      assertExit(await py('put', `/incoming/${remote}`, medium), 'FTP_TLS put');
      const listed = await py('list', '/');
      assertExit(listed, 'FTP_TLS list');
      if (!listed.stdout.includes('medium.bin')) throw new Error('FTP_TLS list: no medium.bin');
    };
    const checks: Check[] = [
      { client: 'curl', mode: 'epsv', forwarder: explicit, run: (out, remote) => curlTls('ftp', ['--ftp-pasv'])(explicit, out, remote) },
      // curl 7.88 cannot do active mode with TLS on its data connections at all (it times out against vsftpd directly too): see CANNOT_WORK.
      { client: 'lftp', mode: 'pasv', forwarder: explicit, run: (out, remote) => lftp(explicit, out, remote, true) },
      { client: 'lftp', mode: 'port', forwarder: explicit, run: (out, remote) => lftp(explicit, out, remote, false) },
      { client: 'ftplib', mode: 'pasv', forwarder: explicit, run: (out, remote) => python(explicit, out, remote, 'pasv') },
      { client: 'ftplib', mode: 'port', forwarder: explicit, run: (out, remote) => python(explicit, out, remote, 'port') },
      { client: 'curl', mode: 'epsv', forwarder: implicit, run: (out, remote) => curlTls('ftps', ['--ftp-pasv'])(implicit, out, remote) },
    ];
    const failures: string[] = [];
    for (const check of checks) {
      const startedAt = Date.now();
      const id = ++sequence;
      const out = join(dir, 'out', `tls-${id}.bin`);
      const remote = `tls-${id}.bin`;
      let reason: string | undefined;
      try {
        await check.run(out, remote);
        if ((await sha256File(out).catch(() => 'missing')) !== mediumSum) throw new Error('download: SHA-256 differs');
        if ((await sha256File(join(server.uploadDir, remote)).catch(() => 'missing')) !== mediumSum) throw new Error('upload: the server stored something else');
      } catch (error) {
        reason = `${error instanceof Error ? error.message : String(error)} ${tail(check.forwarder.log(), 1200)}`;
        failures.push(`${check.client} ${check.mode} (${check.forwarder.label}): ${reason}`);
      } finally {
        await rm(out, { force: true });
        await rm(join(server.uploadDir, remote), { force: true });
      }
      const path: MatrixPath = check.mode === 'port' || check.mode === 'eprt' ? 'converted' : 'passive';
      const check2: MatrixCheck = check.forwarder === implicit ? 'tls-client-implicit' : 'tls-client';
      record({ server: label, client: check.client, mode: check.mode, path, check: check2 }, startedAt, reason);
    }
    assert.deepEqual(failures, []);
    assert.match(explicit.log(), /"tls":"TLSv1\.3 [^"]+","mode":"explicit","msg":"TLS with the FTP client established"/);
    assert.match(implicit.log(), /"mode":"implicit","msg":"TLS with the FTP client established"/);
    assert.match(explicit.log(), /"client":"TLSv1\.3 [^"]+","server":"TLSv1\.3 [^"]+","resumed":true,"msg":"data connection TLS"/);
    // Without --tls-cert, AUTH TLS is still refused with 534.
    const refused = await run('curl', ['-sS', '-v', '--ssl-reqd', '--max-time', '20', ftpUrl(rows[0]!.forwarder.target, '/')], opts);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /< 534 AUTH refused/);
  });

  it('refusals: wrong CA, expired certificate, wrong host name, a pin that does not match, no AUTH TLS: 421, a log line, no login sent', { timeout: 120_000 }, async () => {
    const pinOf = (cert: IssuedCertificate): string => cert.fingerprintHex;
    const cases: Array<{ label: string; ftp: string; extra: string[]; server: FtpServerInstance; reply: RegExp; log: RegExp }> = [
      { label: 'wrong CA', ftp: `vsftpd.${DOMAIN}:21`, extra: ['--ftp-tls-ca', otherCa.certFile], server: servers.vsftpd, reply: /421 .*certificate was refused: it is not signed by a CA in --ftp-tls-ca/, log: /"subject":"CN=vsftpd\.ftps\.test"/ },
      { label: 'system CAs only', ftp: `vsftpd.${DOMAIN}:21`, extra: [], server: servers.vsftpd, reply: /421 .*certificate was refused: it is not signed by a CA in the system CA store/, log: /"fingerprint":"SHA256:/ },
      { label: 'expired', ftp: `expired.${DOMAIN}:2022`, extra: ['--ftp-tls-ca', ca.certFile], server: servers.expired, reply: /421 .*certificate was refused: it expired on .*2021/, log: /"validTo":"Jan  1 00:00:00 2021 GMT"/ },
      { label: 'wrong host name', ftp: `wrongname.${DOMAIN}:21`, extra: ['--ftp-tls-ca', ca.certFile], server: servers.vsftpd, reply: /421 .*certificate was refused: it is for DNS:vsftpd\.ftps\.test, not wrongname\.ftps\.test/, log: /"altNames":"DNS:vsftpd\.ftps\.test"/ },
      { label: 'pin does not match', ftp: `vsftpd.${DOMAIN}:21`, extra: ['--ftp-tls-fingerprint', pinOf(certs.pureftpd)], server: servers.vsftpd, reply: /421 .*certificate was refused: its fingerprint SHA256:\S+ is not the pinned SHA256:/, log: /"fingerprintHex":"[0-9A-F:]{95}"/ },
      { label: 'no AUTH TLS', ftp: `scripted.${DOMAIN}:2400`, extra: [], server: servers.scripted, reply: /421 .*does not offer TLS \(it answered AUTH TLS with 500 /, log: /"reason":"the FTP server refused AUTH TLS/ },
    ];
    const forwarders = await Promise.all(cases.map((entry) => startForwarder(`refusal: ${entry.label}`, entry.ftp, ['--ftp-tls', 'explicit', ...entry.extra])));
    const problems: string[] = [];
    for (const [index, entry] of cases.entries()) {
      const forwarder = forwarders[index]!;
      const before = entry.server.log().length;
      const result = await run('curl', ['-sS', '-v', '--max-time', '20', '-u', 'someone:secret', ftpUrl(forwarder.target, '/small.bin')], { netns: net.client, timeoutMs: 30_000 });
      await delay(300);
      const sent = entry.server.log().slice(before);
      if (result.code === 0) problems.push(`${entry.label}: curl succeeded`);
      if (!entry.reply.test(result.stderr)) problems.push(`${entry.label}: no ${String(entry.reply)} in curl's trace: ${tail(result.stderr)}`);
      if (/< 220/.test(result.stderr)) problems.push(`${entry.label}: the client got a greeting before the refusal`);
      if (!/"msg":"TLS with the FTP server failed"/.test(forwarder.log()) || !entry.log.test(forwarder.log())) problems.push(`${entry.label}: no log line ${String(entry.log)}: ${tail(forwarder.log())}`);
      // vsftpd logs every command ("FTP command: ..."), the scripted server "C: ...".
      if (/USER|PASS|someone/.test(sent)) problems.push(`${entry.label}: the server received a login: ${tail(sent)}`);
      if (entry.server === servers.scripted && !/C: AUTH TLS/.test(sent)) problems.push(`${entry.label}: the scripted server saw no AUTH TLS: ${tail(sent)}`);
    }
    assert.deepEqual(problems, []);
  });

  it('a pinned fingerprint alone is enough; --ftp-tls-insecure works and says so in every session', { timeout: 60_000 }, async () => {
    const [pinned, insecure] = await Promise.all([
      startForwarder('pinned', `vsftpd.${DOMAIN}:21`, ['--ftp-tls', 'explicit', '--ftp-tls-fingerprint', certs.vsftpd.fingerprintHex]),
      startForwarder('insecure', `expired.${DOMAIN}:2022`, ['--ftp-tls', 'explicit', '--ftp-tls-insecure']),
    ]);
    for (const forwarder of [pinned, insecure]) {
      const out = join(dir, 'out', `${forwarder.target.port}.bin`);
      for (let session = 0; session < 2; session++) {
        assertExit(await run('curl', ['-sS', '--fail', '--max-time', '20', '-o', out, ftpUrl(forwarder.target, '/small.bin')], { netns: net.client, timeoutMs: 30_000 }), forwarder.label);
        assert.equal(await sha256File(out), smallSum);
      }
      await rm(out, { force: true });
    }
    await delay(300);
    assert.equal(insecure.log().split('\n').filter((line) => /--ftp-tls-insecure/.test(line) && /"level":40/.test(line)).length, 2, 'one warning per session');
  });

  it('writes the records', async (t) => {
    await writeFile(MATRIX_JSON, `${JSON.stringify(records, null, 2)}\n`);
    t.diagnostic(`${records.length} combinations; results in ${MATRIX_JSON}`);
    for (const line of renderTables(records).split('\n')) t.diagnostic(line);
    assert.ok(records.length > 0);
  });
});
