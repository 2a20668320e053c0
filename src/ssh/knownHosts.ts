/**
 * OpenSSH known_hosts files as pure functions: text in, entries out, and the
 * host-key decision over those entries. No file I/O here; see
 * hostKeyVerifier.ts for the glue that reads and appends files.
 *
 * Format (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"):
 *
 *   [@revoked|@cert-authority] hostnames keytype base64-key [comment]
 *
 * `hostnames` is either a comma-separated pattern list (`*` and `?`
 * wildcards, `!` negation, `[host]:port` for ports other than 22) or one
 * hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { FtpfwdError } from '../errors.js';
import { checkHostCertificate, HOST_CERTIFICATE_ALGORITHMS, isCertificateType, parseCertificate, type OpenSshCertificate } from './certificates.js';
import { matchSshPattern } from './patterns.js';

export type KnownHostsMarker = 'none' | 'revoked' | 'cert-authority';

export interface HostPattern {
  /** The pattern without its `!`, lowercased as OpenSSH compares it. */
  pattern: string;
  negated: boolean;
}

export type KnownHostsHosts =
  | { kind: 'patterns'; patterns: HostPattern[] }
  | { kind: 'hashed'; salt: Buffer; hash: Buffer };

export interface KnownHostsEntry {
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  marker: KnownHostsMarker;
  hosts: KnownHostsHosts;
  /** Key type as written on the line; always equal to the type inside `keyBlob`. */
  keyType: string;
  /** The public key in SSH wire format (what the server sends during key exchange). */
  keyBlob: Buffer;
  comment: string;
}

export interface KnownHostsWarning {
  file: string;
  line: number;
  reason: string;
}

export interface ParsedKnownHosts {
  entries: KnownHostsEntry[];
  /** Lines that were skipped because they are malformed (OpenSSH skips them too). */
  warnings: KnownHostsWarning[];
}

export type HostKeyCheckResult =
  | { kind: 'match'; entry: KnownHostsEntry }
  /** A host certificate, valid now for this host, signed by the CA of a `@cert-authority` entry. */
  | { kind: 'certificate'; entry: KnownHostsEntry; certificate: OpenSshCertificate }
  /** No entry for this host holds a key (nor, for a certificate, its CA). */
  | { kind: 'unknown' }
  /**
   * The host is known with other keys, none of them the presented one: of
   * the same type, or only of other types (OpenSSH calls both a change).
   * `entry` is one of the same type if there is one.
   */
  | { kind: 'changed'; entry: KnownHostsEntry }
  /**
   * A `@revoked` entry for this host holds the presented key, or, for a
   * certificate, its certified key or its CA (`what` says which).
   */
  | { kind: 'revoked'; entry: KnownHostsEntry; what: 'key' | 'certified key' | 'CA' }
  /**
   * A `@cert-authority` entry covers the host, but the server presented a
   * plain key that no plain entry decides.
   */
  | { kind: 'certificate-expected'; entry: KnownHostsEntry }
  /**
   * A certificate that must be refused: `reason` says why (its CA is not
   * one the host's `@cert-authority` entries name, it expired, names other
   * hosts, ...); `entry` is the `@cert-authority` line, when one names its CA.
   */
  | { kind: 'certificate-invalid'; reason: string; entry?: KnownHostsEntry; certificate: OpenSshCertificate };

const DEFAULT_SSH_PORT = 22;
const HASH_MAGIC = '|1|';
const SHA1_BYTES = 20;
const MARKERS: ReadonlyMap<string, KnownHostsMarker> = new Map([
  ['@revoked', 'revoked'],
  ['@cert-authority', 'cert-authority'],
]);

/** Parses known_hosts text; malformed lines are skipped. */
export function parseKnownHosts(text: string, file: string): KnownHostsEntry[] {
  return parseKnownHostsWithWarnings(text, file).entries;
}

/** Parses known_hosts text and reports each skipped malformed line. */
export function parseKnownHostsWithWarnings(text: string, file: string): ParsedKnownHosts {
  const entries: KnownHostsEntry[] = [];
  const warnings: KnownHostsWarning[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const result = parseLine(lines[i] ?? '', file, i + 1);
    if (result === undefined) continue;
    if (typeof result === 'string') warnings.push({ file, line: i + 1, reason: result });
    else entries.push(result);
  }
  return { entries, warnings };
}

/** Returns an entry, a reason the line is malformed, or undefined for blank and comment lines. */
function parseLine(raw: string, file: string, line: number): KnownHostsEntry | string | undefined {
  const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const fields = splitFields(text);
  const first = fields[0];
  if (first === undefined || first.startsWith('#')) return undefined;

  let marker: KnownHostsMarker = 'none';
  if (first.startsWith('@')) {
    const known = MARKERS.get(first);
    if (known === undefined) return `unknown marker ${first}`;
    marker = known;
    fields.shift();
  }
  const [hostField, keyType, keyBase64, ...commentWords] = fields;
  if (hostField === undefined || keyType === undefined || keyBase64 === undefined) {
    return 'expected host names, key type and key';
  }
  if (hostField.startsWith('@')) return 'more than one marker';

  const hosts = parseHosts(hostField);
  if (typeof hosts === 'string') return hosts;

  const keyBlob = decodeBase64Strict(keyBase64);
  if (keyBlob === undefined) return 'key is not valid base64';
  const blobType = keyTypeOfBlob(keyBlob);
  if (blobType === undefined) return 'key is not an SSH public key';
  if (blobType !== keyType) return `key type ${keyType} does not match the key's own type ${blobType}`;

  return { file, line, marker, hosts, keyType, keyBlob, comment: commentWords.join(' ') };
}

/** Splits on runs of spaces and tabs, as OpenSSH does. */
function splitFields(text: string): string[] {
  return text.split(/[ \t]+/).filter((field) => field.length > 0);
}

function parseHosts(field: string): KnownHostsHosts | string {
  if (field.startsWith('|')) {
    if (!field.startsWith(HASH_MAGIC)) return 'unsupported hashed host name format';
    const [saltText, hashText, ...extra] = field.slice(HASH_MAGIC.length).split('|');
    if (saltText === undefined || hashText === undefined || extra.length > 0) return 'malformed hashed host name';
    const salt = decodeBase64Strict(saltText);
    const hash = decodeBase64Strict(hashText);
    if (salt?.length !== SHA1_BYTES || hash?.length !== SHA1_BYTES) return 'malformed hashed host name';
    return { kind: 'hashed', salt, hash };
  }
  const patterns = field.split(',').map(function toPattern(item): HostPattern {
    const negated = item.startsWith('!');
    return { pattern: (negated ? item.slice(1) : item).toLowerCase(), negated };
  });
  return { kind: 'patterns', patterns };
}

/** Decodes base64, refusing characters or trailing bits that Node would silently drop. */
function decodeBase64Strict(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  const unpadded = text.replace(/=+$/, '');
  if (bytes.toString('base64').replace(/=+$/, '') !== unpadded) return undefined;
  return bytes;
}

/** The key type named by the first SSH string of a public key blob, or undefined if malformed. */
export function keyTypeOfBlob(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const length = keyBlob.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length >= keyBlob.length) return undefined;
  const type = keyBlob.toString('latin1', 4, 4 + length);
  return /^[\x21-\x7e]+$/.test(type) ? type : undefined;
}

/** The name OpenSSH looks up: `host` for port 22, `[host]:port` otherwise; lowercased. */
export function hostKeyLookupName(host: string, port: number): string {
  const name = host.toLowerCase();
  return port === DEFAULT_SSH_PORT ? name : `[${name}]:${port}`;
}

/** Whether an entry's host field covers a lookup name (see hostKeyLookupName). */
export function entryMatchesHost(entry: KnownHostsEntry, lookupName: string): boolean {
  const { hosts } = entry;
  if (hosts.kind === 'hashed') {
    const computed = createHmac('sha1', hosts.salt).update(lookupName).digest();
    return timingSafeEqual(computed, hosts.hash);
  }
  // A matching negated pattern rules the line out even if another pattern matches.
  let matched = false;
  for (const { pattern, negated } of hosts.patterns) {
    if (!matchSshPattern(lookupName, pattern)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/**
 * Decides whether `keyBlob` is the right host key for host:port, with
 * OpenSSH's precedence (hostfile.c check_hostkeys_by_key_or_type(),
 * sshconnect.c check_host_key()):
 *  1. a `@revoked` entry holding this key (or a certificate's key or CA)
 *     refuses it, whatever else is listed;
 *  2. a certificate signed by the CA of a `@cert-authority` entry for the
 *     host is accepted if it is valid now for `host` (checkHostCertificate);
 *     otherwise its certified key is checked as a plain key, as ssh retries;
 *  3. any plain entry holding this key accepts it (a host may have several);
 *  4. plain entries with other keys mean the key changed, whatever their
 *     type: a server offering a type not on record may be avoiding the one
 *     it cannot forge;
 *  5. a `@cert-authority` entry means a certificate was expected;
 *  6. otherwise the key is unknown.
 */
export function checkHostKey(
  entries: readonly KnownHostsEntry[],
  host: string,
  port: number,
  keyBlob: Buffer,
  now: Date = new Date(),
): HostKeyCheckResult {
  const keyType = keyTypeOfBlob(keyBlob);
  if (keyType === undefined) throw new FtpfwdError('ERR_FTPFWD_SSH', 'server sent a malformed host key');
  const lookupName = hostKeyLookupName(host, port);
  const forHost = entries.filter((entry) => entryMatchesHost(entry, lookupName));
  const revokedFor = (blob: Buffer): KnownHostsEntry | undefined => forHost.find((entry) => entry.marker === 'revoked' && entry.keyBlob.equals(blob));

  let plainKey = keyBlob;
  let refusedCertificate: Extract<HostKeyCheckResult, { kind: 'certificate-invalid' }> | undefined;
  if (isCertificateType(keyType)) {
    let certificate: OpenSshCertificate;
    try {
      certificate = parseCertificate(keyBlob);
    } catch (error) {
      throw new FtpfwdError('ERR_FTPFWD_SSH', `server sent a malformed host certificate: ${(error as Error).message}`, { cause: error });
    }
    const revokedKey = revokedFor(certificate.publicKeyBlob);
    if (revokedKey !== undefined) return { kind: 'revoked', entry: revokedKey, what: 'certified key' };
    const revokedCa = revokedFor(certificate.signatureKey);
    if (revokedCa !== undefined) return { kind: 'revoked', entry: revokedCa, what: 'CA' };
    const authority = forHost.find((entry) => entry.marker === 'cert-authority' && entry.keyBlob.equals(certificate.signatureKey));
    const reason = authority === undefined ? 'its CA is not one a @cert-authority line for this host names' : checkHostCertificate(certificate, host, now);
    if (authority !== undefined && reason === null) return { kind: 'certificate', entry: authority, certificate };
    refusedCertificate = { kind: 'certificate-invalid', reason: reason!, certificate, ...(authority === undefined ? {} : { entry: authority }) };
    plainKey = certificate.publicKeyBlob;
  } else {
    const revoked = revokedFor(keyBlob);
    if (revoked !== undefined) return { kind: 'revoked', entry: revoked, what: 'key' };
  }

  const plain = forHost.filter((entry) => entry.marker === 'none');
  const same = plain.find((entry) => entry.keyBlob.equals(plainKey));
  if (same !== undefined) return { kind: 'match', entry: same };
  if (refusedCertificate !== undefined) return refusedCertificate;

  const plainType = keyTypeOfBlob(plainKey);
  const changed = plain.find((entry) => entry.keyType === plainType) ?? plain[0];
  if (changed !== undefined) return { kind: 'changed', entry: changed };

  const authority = forHost.find((entry) => entry.marker === 'cert-authority');
  if (authority !== undefined) return { kind: 'certificate-expected', entry: authority };

  return { kind: 'unknown' };
}

/** Key types of the plain entries known for host:port, in file order, without repeats. */
export function knownKeyTypesForHost(entries: readonly KnownHostsEntry[], host: string, port: number): string[] {
  const lookupName = hostKeyLookupName(host, port);
  const types = new Set<string>();
  for (const entry of entries) {
    if (entry.marker === 'none' && entryMatchesHost(entry, lookupName)) types.add(entry.keyType);
  }
  return [...types];
}

/** Host key algorithms that use a key of the given type (RSA keys sign with three). */
function algorithmKeyType(algorithm: string): string {
  return algorithm === 'rsa-sha2-256' || algorithm === 'rsa-sha2-512' ? 'ssh-rsa' : algorithm;
}

/**
 * Reorders `algorithms` (e.g. ssh2's `algorithms.serverHostKey`) so that those
 * whose key type is already known for the host come first, keeping the
 * relative order otherwise. OpenSSH does the same, so that a server with
 * several host keys presents the one on record instead of a new type.
 */
export function preferKnownHostKeyAlgorithms<T extends string>(
  algorithms: readonly T[],
  knownKeyTypes: readonly string[],
): T[] {
  const known = new Set(knownKeyTypes);
  const first = algorithms.filter((algorithm) => known.has(algorithmKeyType(algorithm)));
  const rest = algorithms.filter((algorithm) => !known.has(algorithmKeyType(algorithm)));
  return [...first, ...rest];
}

/** `SHA256:<unpadded base64>`, exactly as `ssh-keygen -l` prints it. */
export function sha256Fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

export interface FormatKnownHostsLineOptions {
  /** Write a hashed host name, like OpenSSH's HashKnownHosts. */
  hashed?: boolean;
  /** Salt for the hashed name (20 bytes); random when omitted. */
  salt?: Buffer;
}

/** One known_hosts line, without a trailing newline. */
export function formatKnownHostsLine(
  host: string,
  port: number,
  keyBlob: Buffer,
  options: FormatKnownHostsLineOptions = {},
): string {
  const keyType = keyTypeOfBlob(keyBlob);
  if (keyType === undefined) throw new FtpfwdError('ERR_FTPFWD_SSH', 'cannot record a malformed host key');
  const lookupName = hostKeyLookupName(host, port);
  let hostField = lookupName;
  if (options.hashed === true) {
    const salt = options.salt ?? randomBytes(SHA1_BYTES);
    if (salt.length !== SHA1_BYTES) throw new RangeError(`known_hosts salt must be ${SHA1_BYTES} bytes`);
    const hash = createHmac('sha1', salt).update(lookupName).digest();
    hostField = `${HASH_MAGIC}${salt.toString('base64')}|${hash.toString('base64')}`;
  }
  return `${hostField} ${keyType} ${keyBlob.toString('base64')}`;
}

/**
 * The host key algorithms to offer host:port, as sshconnect2.c
 * order_hostkeyalgs() orders them: when a `@cert-authority` entry covers the
 * host, certificates first (only then, since only then can one be checked);
 * then the types on record; then the rest.
 */
export function hostKeyAlgorithmsFor(entries: readonly KnownHostsEntry[], host: string, port: number, algorithms: readonly string[]): string[] {
  const lookupName = hostKeyLookupName(host, port);
  const authority = entries.some((entry) => entry.marker === 'cert-authority' && entryMatchesHost(entry, lookupName));
  const plain = preferKnownHostKeyAlgorithms(algorithms, knownKeyTypesForHost(entries, host, port));
  return authority ? [...HOST_CERTIFICATE_ALGORITHMS, ...plain] : plain;
}
