/**
 * FTPS: a large file down and up through a vsftpd that requires TLS for the
 * login and every data connection (and that data connections resume the
 * control session), on loopback beside the main one. ftpfwd speaks TLS to
 * it (`--ftp-tls explicit`) and plain FTP to curl; OpenSSH's way is `ssh -D`
 * with `curl --ssl-reqd` through SOCKS, so both carry the same double
 * encryption (TLS inside SSH). `direct` is curl --ssl-reqd to vsftpd with no
 * SSH, for reference.
 */
import { join } from 'node:path';
import { createTestCa } from '../../helpers/certificates.js';
import { sha256File, writeRandomFile } from '../../helpers/files.js';
import { startVsftpd } from '../../helpers/vsftpd.js';
import { MiB, type Config } from '../config.js';
import { BASELINES, ftpUrl, startForwarder, type Contender } from '../contenders.js';
import { removeAll, type BenchContext, type ReportContext, type Section } from '../context.js';
import { checkFile, curl, curlOutcome, rotate, transferTimeoutMs } from '../measure.js';
import { headlineRow, mbPerSecond } from '../summary.js';
import { bulkTables } from './large.js';

/** The server's certificate names it so, and the SSH server resolves it (curl through SOCKS sends the name). */
const FTP_NAME = 'localhost';

function sizeMiB(config: Config): number {
  return config.quick ? 64 : 256;
}

/** The TLS protocol and cipher vsftpd negotiated (its debug_ssl log), for the report. */
let tlsInUse = 'unknown';

async function run(ctx: BenchContext): Promise<void> {
  const { config, bench } = ctx;
  const bytes = sizeMiB(config) * MiB;
  process.stderr.write(`\nFTPS: ${sizeMiB(config)} MiB down and up, TLS to vsftpd inside SSH\n`);
  const ca = await createTestCa(join(ctx.workDir, 'ftps-ca'));
  const cert = await ca.issue({ name: 'vsftpd', dnsNames: [FTP_NAME], ipAddresses: ['127.0.0.1'] });
  const root = join(ctx.workDir, 'ftps-root');
  const vsftpd = await startVsftpd({ root, maxSessions: 100, tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
  ctx.addCleanup(() => vsftpd.stop());
  const file = join(root, 'ftps.bin');
  await writeRandomFile(file, bytes);
  const sum = await sha256File(file);

  const ftpfwd = await startForwarder('ftpfwd', {
    endpoint: ctx.sshd,
    ftp: { host: FTP_NAME, port: vsftpd.port },
    home: ctx.home,
    cipher: ctx.env.ciphers['ftpfwd'] ?? 'unknown',
    ftpfwdOptions: ['--ftp-tls', 'explicit', '--ftp-tls-ca', ca.certFile],
  });
  ctx.addCleanup(async () => void (await ftpfwd.proc?.stop()));
  // The others reach the TLS server by name (through SOCKS, sshd resolves it) and speak TLS themselves.
  const viaTls = (contender: Contender): Contender => ({ ...contender, ftpHost: FTP_NAME, ftpPort: vsftpd.port });
  const tlsFlags = ['--ssl-reqd', '--cacert', ca.certFile];
  const contenders: Array<{ contender: Contender; flags: string[] }> = [
    { contender: viaTls(ctx.byKey('direct')), flags: tlsFlags },
    { contender: ftpfwd, flags: [] },
    ...BASELINES.map((key) => ({ contender: viaTls(ctx.byKey(key)), flags: tlsFlags })),
  ];
  // Warm-up, unmeasured: one small file through every contender.
  const warm = join(root, 'warm.bin');
  await writeRandomFile(warm, 1024);
  const warmSum = await sha256File(warm);
  for (const { contender, flags } of contenders) {
    const out = join(ctx.clientDir, `ftps-warm-${contender.key}.bin`);
    const result = await curl(contender, [...flags, '-o', out, ftpUrl(contender, 'warm.bin')], transferTimeoutMs(1024));
    const problems = result.code === 0 ? await checkFile(out, warmSum, 'warm-up download') : [`curl exit ${String(result.code)}: ${result.stderr.slice(-500)}`];
    await removeAll([out]);
    if (problems.length > 0) {
      bench.failures.push(`ftps: warm-up via ${contender.label}: ${problems.join('; ')}`);
      return;
    }
  }
  const timeout = transferTimeoutMs(bytes);
  for (let round = 0; round < config.rounds; round++) {
    if (!ctx.roundAllowed('ftps', round)) break;
    for (const { contender, flags } of rotate(contenders, round)) {
      const out = join(ctx.clientDir, `ftps-${contender.key}.bin`);
      await bench.measure(contender, 'ftps-down', round, {
        bytes,
        files: 1,
        prepare: () => removeAll([out]),
        transfer: async () => curlOutcome([await curl(contender, [...flags, '-o', out, ftpUrl(contender, 'ftps.bin')], timeout)]),
        verify: () => checkFile(out, sum, 'download'),
      });
      await removeAll([out]);
      const uploaded = join(vsftpd.uploadDir, `ftps-${contender.key}-${round}.bin`);
      await bench.measure(contender, 'ftps-up', round, {
        bytes,
        files: 1,
        prepare: () => removeAll([uploaded]),
        transfer: async () => curlOutcome([await curl(contender, [...flags, '-T', file, ftpUrl(contender, `incoming/ftps-${contender.key}-${round}.bin`)], timeout)]),
        verify: () => checkFile(uploaded, sum, 'upload'),
      });
      await removeAll([uploaded]);
    }
  }
  const negotiated = [...vsftpd.log().matchAll(/SSL version: (\S+), SSL cipher: ([^,]+),/g)].at(-1);
  if (negotiated !== undefined) tlsInUse = `${negotiated[1]} ${negotiated[2]}`;
}

function report(r: ReportContext): void {
  const size = sizeMiB(r.config);
  r.heading(`FTPS: ${size} MiB down and up on loopback, TLS to a vsftpd that requires it (TLS inside SSH for every contender but direct)`);
  r.note('ftpfwd: --ftp-tls explicit, curl in plain FTP to ftpfwd; ssh -D: curl --ssl-reqd through SOCKS; direct: curl --ssl-reqd to vsftpd, no SSH.');
  r.note(`TLS with vsftpd: ${tlsInUse}; data connections resume the control session (require_ssl_reuse=YES).`);
  bulkTables(r, 'ftps-down', 'ftps-up');
  r.headline(headlineRow(r, `FTPS ${size} MiB download, MB/s`, 'ftps-down', mbPerSecond));
  r.headline(headlineRow(r, `FTPS ${size} MiB upload, MB/s`, 'ftps-up', mbPerSecond));
}

export const ftps: Section = { id: 'ftps', kinds: () => ['ftps-down', 'ftps-up'], run, report };
