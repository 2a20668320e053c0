/**
 * The interoperability matrix's results: one record per combination that
 * test/e2e/matrix.test.ts ran, and their rendering as Markdown (for the
 * test's diagnostics and for README.md's "Compatibility" section).
 */

export type MatrixMode = 'pasv' | 'epsv' | 'port' | 'eprt';

/**
 * How the data connections travelled: `passive` (PASV/EPSV through an SSH
 * channel), `converted` (PORT/EPRT answered by ftpfwd, PASV/EPSV sent
 * upstream), `remote-forward` (PORT/EPRT through a remote forward on the
 * SSH server), `direct` (PORT/EPRT answered by the SFTP bridge, which
 * connects to the client itself: no FTP server and no SSH channel).
 */
export type MatrixPath = 'passive' | 'converted' | 'remote-forward' | 'direct';

/** What a combination ran; see CHECKS. */
export type MatrixCheck =
  | 'transfers'
  | 'remote-forward'
  | 'variant'
  | 'dropbear'
  | 'ipv6'
  | 'concurrent'
  | 'session'
  | 'bridge'
  | 'bridge-account'
  | 'tls'
  | 'tls-client'
  | 'tls-client-implicit';

export interface MatrixRecord {
  /** The row: the FTP server and, where it matters, the setup (`vsftpd over IPv6`). */
  server: string;
  client: string;
  /** The data-connection command the client really sent (from its trace). */
  mode: MatrixMode;
  path: MatrixPath;
  ok: boolean;
  /** Why it failed: the first operation that went wrong and what the client said. */
  reason?: string;
  check: MatrixCheck;
  ssh: 'openssh' | 'dropbear';
  ip: 4 | 6;
  durationMs: number;
}

export const CLIENT_COLUMNS = ['curl', 'lftp', 'ftplib', 'tnftp', 'inetutils-ftp', 'ncftp', 'wget', 'basic-ftp'] as const;
const MODES: readonly MatrixMode[] = ['pasv', 'epsv', 'port', 'eprt'];
const PATHS: readonly MatrixPath[] = ['passive', 'converted', 'remote-forward', 'direct'];
const PATH_LETTER: Record<MatrixPath, string> = { passive: '', converted: 'c', 'remote-forward': 'f', direct: '' };
const TRANSFER_CHECKS: readonly MatrixCheck[] = ['transfers', 'remote-forward', 'variant', 'dropbear', 'ipv6', 'bridge', 'bridge-account', 'tls', 'tls-client', 'tls-client-implicit'];

/** What each kind of row ran, for the legend. */
export const CHECKS: Record<MatrixCheck, string> = {
  transfers: 'download 0 B, 1 KiB, 5 MiB and 64 MiB, upload 5 MiB, list the root; SHA-256 compared on both ends',
  'remote-forward': 'active modes again through a remote forward on the bastion (`--active-address`, sshd `GatewayPorts clientspecified`): 5 MiB each way',
  variant: 'curl: download 1 KiB and 5 MiB, upload 5 MiB, list',
  dropbear:
    'curl and lftp: download 1 KiB and 5 MiB, upload 5 MiB, list; active modes also through a Dropbear remote forward (`-a`, `--active-address`); ' +
    'without `-a`, curl PORT with `--active-address` (5 MiB each way) after ftpfwd\'s probe fell back to conversion',
  ipv6: 'client on [::1], SSH and FTP over IPv6: download 1 KiB and 5 MiB, upload 5 MiB, list; EPRT also through a remote forward',
  concurrent: '16 curl downloads of 5 MiB at once, four in each mode',
  session: 'curl with 20 URLs in one invocation: one login (checked in its trace), 20 transfers on one control connection',
  bridge:
    'the SFTP bridge (`-L port:sftp:`, no FTP server) with ftpfwd\'s own SSH login and `--ftp-password-file`, confined by `--sftp-root`: ' +
    'download and upload 0 B, 1 KiB, 5 MiB and 64 MiB (SHA-256 on both ends) and a listing in every mode; once per client also resume, append, rename, delete, mkdir/rmdir, ' +
    'SIZE/MDTM, SITE CHMOD, TYPE A transfers of a CRLF and an LF file, and names with spaces and UTF-8, each as far as the client can do it',
  'bridge-account':
    'the SFTP bridge on other accounts: download and upload 5 MiB (SHA-256) and a listing, with curl and lftp',
  tls:
    'FTPS to the server (`--ftp-tls`, test/e2e/ftps.test.ts): the server requires TLS for the login and every data connection (vsftpd and proftpd also that data connections resume ' +
    'the control session), with a certificate for its host name checked against `--ftp-tls-ca`; the client speaks plain FTP to ftpfwd: download and upload 2 MiB (SHA-256), list',
  'tls-client':
    'TLS from the client to ftpfwd as well (`--tls-cert`, listener on a LAN address): curl `--ssl-reqd`, lftp `ftp:ssl-force`, Python `FTP_TLS` with `prot_p()`: download and upload 2 MiB, list',
  'tls-client-implicit': 'implicit TLS from the client to ftpfwd (`--tls-implicit`): curl `ftps://`, download and upload 2 MiB, list',
};

/** Column headers of the per-server load table. */
const LOAD_COLUMNS: Partial<Record<MatrixCheck, string>> = {
  concurrent: '16 concurrent downloads (curl)',
  session: '20 transfers, one login (curl)',
};

/**
 * Combinations that are not run because they cannot work, and why: client
 * limitations and setups the protocol rules out. They are listed in the
 * README next to whatever failed.
 */
export const CANNOT_WORK: readonly string[] = [
  'wget × upload: wget only downloads (and lists).',
  'lftp × EPRT over IPv4: lftp sends EPRT only over IPv6 (and PORT over IPv4); over IPv6 it uses EPSV/EPRT whatever `ftp:prefer-epsv` says.',
  'ncftp × EPSV/EPRT: ncftp uses PASV/PORT over IPv4 and EPSV/EPRT only over IPv6; the Debian build resolves host names with gethostbyname and cannot open an IPv6 address at all ("::1: unknown host"), so it has no IPv6 row.',
  'wget × EPSV/EPRT over IPv4: wget uses them only over IPv6.',
  'basic-ftp × PORT/EPRT: basic-ftp has no active mode.',
  'basic-ftp × PASV over IPv6: a 227 reply can only name an IPv4 address (ftpfwd names 127.0.0.1 for a client on ::1) and basic-ftp connects to the control connection\'s address (::1) instead; use EPSV.',
  'Every client × PASV/PORT over IPv6: curl, lftp, ftplib, tnftp, inetutils-ftp and wget send EPSV/EPRT over IPv6, as RFC 2428 requires.',
  'scripted (wu-ftpd) × EPSV/EPRT: WU-FTPD 2.6 predates RFC 2428. EPSV is refused; EPRT is converted to EPSV upstream, which it also refuses, so curl falls back to PORT.',
  'SFTP bridge × lftp append: lftp has no command that sends APPE. × resumed upload: tnftp, inetutils-ftp and basic-ftp have no command for it; ncftpput -z (3.2.6) sends `REST n` and then the whole file from its start, so the result is n bytes too long with any server.',
  'curl × PORT/EPRT with TLS from curl itself (`--ssl-reqd --ftp-port`): curl 7.88 accepts the data connection and then waits until its timeout, against vsftpd directly as well; active mode with TLS to ftpfwd works with lftp and Python\'s FTP_TLS, and curl in plain FTP to ftpfwd uses active mode with FTPS to the server.',
  'Dropbear × remote forward on a given address without `-a`: Dropbear binds every remote forward to loopback (OpenSSH: `GatewayPorts no`); ftpfwd\'s start-up probe notices, says so and converts PORT/EPRT to passive upstream instead. With `-a` any client may bind forwards on any address (there is no `clientspecified` restriction), and Dropbear reads authorized_keys only from `~/.ssh/authorized_keys`.',
];

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function rowsInOrder(records: readonly MatrixRecord[]): string[] {
  const rows: string[] = [];
  for (const record of records) if (!rows.includes(record.server)) rows.push(record.server);
  return rows;
}

/** `pasv epsv port(c,f) eprt(c)`: the modes that passed, with the active-mode paths; ✗ marks a mode with a failure. */
function cell(records: readonly MatrixRecord[]): string {
  const tokens: string[] = [];
  for (const mode of MODES) {
    const forMode = records.filter((record) => record.mode === mode);
    if (forMode.length === 0) continue;
    const passedPaths = PATHS.filter((path) => forMode.some((record) => record.ok && record.path === path));
    const failed = forMode.some((record) => !record.ok);
    const letters = passedPaths.map((path) => PATH_LETTER[path]).filter((letter) => letter !== '');
    if (passedPaths.length === 0) {
      tokens.push(`${mode} ✗`);
      continue;
    }
    tokens.push(`${mode}${letters.length > 0 ? `(${letters.join(',')})` : ''}${failed ? ' ✗' : ''}`);
  }
  return tokens.length === 0 ? '—' : tokens.join(' ');
}

function table(records: readonly MatrixRecord[], columns: readonly string[], columnOf: (record: MatrixRecord) => string): string[] {
  const lines = [`| server | ${columns.join(' | ')} |`, `|---|${columns.map(() => '---').join('|')}|`];
  for (const row of rowsInOrder(records)) {
    const inRow = records.filter((record) => record.server === row);
    lines.push(`| ${escapeCell(row)} | ${columns.map((column) => escapeCell(cell(inRow.filter((record) => columnOf(record) === column)))).join(' | ')} |`);
  }
  return lines;
}

/** The server × client table of transfers, then the per-server load table. */
export function renderTables(records: readonly MatrixRecord[]): string {
  const transfers = records.filter((record) => TRANSFER_CHECKS.includes(record.check));
  const load = records.filter((record) => record.check === 'concurrent' || record.check === 'session');
  const lines = table(transfers, CLIENT_COLUMNS, (record) => record.client);
  if (load.length > 0) {
    const columns = (['concurrent', 'session'] as const).map((check) => LOAD_COLUMNS[check] ?? check);
    lines.push('', ...table(load, columns, (record) => LOAD_COLUMNS[record.check] ?? record.check));
  }
  return lines.join('\n');
}

export function failures(records: readonly MatrixRecord[]): MatrixRecord[] {
  return records.filter((record) => !record.ok);
}

export function describeRecord(record: MatrixRecord): string {
  return `${record.server} × ${record.client} × ${record.mode} (${record.path}, ${record.check})`;
}

/** The README section between the matrix markers. */
export function renderReadmeSection(records: readonly MatrixRecord[]): string {
  const failed = failures(records);
  const passed = records.length - failed.length;
  const rowsOf = (check: MatrixCheck): string => rowsInOrder(records.filter((record) => record.check === check)).join(', ');
  const legendRows = (['transfers', 'remote-forward', 'variant', 'dropbear', 'ipv6', 'bridge', 'bridge-account', 'tls', 'tls-client', 'tls-client-implicit', 'concurrent', 'session'] as const)
    .filter((check) => records.some((record) => record.check === check))
    .map((check) => `- ${LOAD_COLUMNS[check] ?? rowsOf(check)}: ${CHECKS[check]}.`);
  const lines = [
    `${records.length} combinations, ${passed} passed${failed.length > 0 ? `, ${failed.length} failed` : ''}.`,
    '',
    renderTables(records),
    '',
    'A cell lists the modes (the command the client sent, read from its trace) that passed.',
    '`(c)`: active mode converted to passive upstream, the default when the FTP server is not on the SSH host;',
    '`(f)`: through a remote forward on the SSH server, the default when the FTP server runs on the SSH host',
    '(`127.0.0.1`), else with `--active-address`. In the SFTP bridge rows no FTP server is involved: ftpfwd answers',
    'PASV/EPSV itself and, for PORT/EPRT, connects to the client itself. ✗: failed on some path (see below); —: not applicable.',
    '',
    ...legendRows,
    '',
    '### Combinations that cannot work',
    '',
    ...CANNOT_WORK.map((text) => `- ${text}`),
    '',
    '### Failures in this run',
    '',
    ...(failed.length === 0 ? ['None.'] : failed.map((record) => `- ${escapeCell(describeRecord(record))}: ${escapeCell(record.reason ?? 'failed')}`)),
  ];
  return lines.join('\n');
}

export const MARKER_START = '<!-- matrix:start -->';
export const MARKER_END = '<!-- matrix:end -->';

/** README text with the block between the markers replaced by `section`. */
export function replaceMarkedBlock(readme: string, section: string): string {
  const start = readme.indexOf(MARKER_START);
  const end = readme.indexOf(MARKER_END);
  if (start === -1 || end === -1 || end < start) throw new Error(`README.md has no ${MARKER_START} ... ${MARKER_END} block`);
  return `${readme.slice(0, start + MARKER_START.length)}\n${section}\n${readme.slice(end)}`;
}

function isMode(value: unknown): value is MatrixMode {
  return typeof value === 'string' && (MODES as readonly string[]).includes(value);
}

/** Parses and checks the JSON the test wrote. */
export function parseRecords(text: string): MatrixRecord[] {
  const data: unknown = JSON.parse(text);
  if (!Array.isArray(data)) throw new Error('the matrix JSON is not an array');
  return data.map((item: unknown, index) => {
    if (typeof item !== 'object' || item === null) throw new Error(`record ${index} is not an object`);
    const record = item as Record<string, unknown>;
    const { server, client, mode, path, ok, check, ssh, ip, durationMs, reason } = record;
    if (typeof server !== 'string' || typeof client !== 'string' || !isMode(mode) || typeof ok !== 'boolean') {
      throw new Error(`record ${index} lacks server, client, mode or ok: ${JSON.stringify(item)}`);
    }
    if (path !== 'passive' && path !== 'converted' && path !== 'remote-forward' && path !== 'direct') throw new Error(`record ${index} has a bad path`);
    if (typeof check !== 'string' || !(check in CHECKS)) throw new Error(`record ${index} has a bad check`);
    return {
      server,
      client,
      mode,
      path,
      ok,
      check: check as MatrixCheck,
      ssh: ssh === 'dropbear' ? 'dropbear' : 'openssh',
      ip: ip === 6 ? 6 : 4,
      durationMs: typeof durationMs === 'number' ? durationMs : 0,
      ...(typeof reason === 'string' ? { reason } : {}),
    };
  });
}
