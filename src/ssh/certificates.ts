/**
 * OpenSSH certificates (PROTOCOL.certkeys) as pure functions: the blob
 * parsed, the CA's signature verified with node:crypto, and the checks
 * sshkey_cert_check_authority() makes of a host certificate.
 *
 *   string  type (e.g. ssh-ed25519-cert-v01@openssh.com)
 *   string  nonce
 *   ...     the certified key's own fields (ed25519: pk; ecdsa: curve, Q; rsa: e, n)
 *   uint64  serial; uint32 type (1 user, 2 host); string key id
 *   string  valid principals (a packed list of strings)
 *   uint64  valid after; uint64 valid before (seconds since the epoch)
 *   string  critical options; string extensions; string reserved
 *   string  signature key (the CA); string signature (over all of the above)
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { errorMessage } from '../errors.js';
import { matchSshPattern } from './patterns.js';
import { sshString, WireReader } from './wire.js';

export const CERTIFICATE_SUFFIX = '-cert-v01@openssh.com';

/** Host key algorithms for certificates, in OpenSSH's order of preference. */
export const HOST_CERTIFICATE_ALGORITHMS = [
  'ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'rsa-sha2-512-cert-v01@openssh.com',
  'rsa-sha2-256-cert-v01@openssh.com',
] as const;

/** readconf.c's default CASignatureAlgorithms: ssh-rsa (SHA-1) signatures are not accepted. */
const CA_SIGNATURE_ALGORITHMS = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256']);

/** valid before = 2^64 - 1 */
const FOREVER = 0xffffffffffffffffn;

export interface OpenSshCertificate {
  /** e.g. ssh-ed25519-cert-v01@openssh.com */
  type: string;
  /** The certified key's plain type, e.g. ssh-ed25519. */
  keyType: string;
  /** The certified key as a plain public key blob (what known_hosts would hold). */
  publicKeyBlob: Buffer;
  serial: bigint;
  certType: 'user' | 'host';
  keyId: string;
  principals: string[];
  validAfter: bigint;
  validBefore: bigint;
  criticalOptions: Buffer;
  /** The CA's public key blob. */
  signatureKey: Buffer;
  /** The CA's signature blob. */
  signature: Buffer;
  /** The bytes the CA signed: the certificate up to its signature. */
  signedData: Buffer;
}

/** How many wire strings the certified key's fields take, by plain key type. */
const KEY_FIELDS: Readonly<Record<string, number>> = {
  'ssh-ed25519': 1,
  'ecdsa-sha2-nistp256': 2,
  'ecdsa-sha2-nistp384': 2,
  'ecdsa-sha2-nistp521': 2,
  'ssh-rsa': 2,
};

/** Whether a key blob's type names a certificate. */
export function isCertificateType(type: string | undefined): boolean {
  return type !== undefined && type.endsWith(CERTIFICATE_SUFFIX);
}

/** Parses a certificate blob; throws an Error saying what is wrong. */
export function parseCertificate(blob: Buffer): OpenSshCertificate {
  const reader = new WireReader(blob);
  try {
    const type = reader.text();
    if (!isCertificateType(type)) throw new Error(`${type} is not a certificate type`);
    const keyType = type.slice(0, -CERTIFICATE_SUFFIX.length);
    const fields = KEY_FIELDS[keyType];
    if (fields === undefined) throw new Error(`unsupported certificate key type ${keyType}`);
    reader.bytes(); // nonce
    const keyStart = reader.position;
    for (let index = 0; index < fields; index++) reader.bytes();
    const publicKeyBlob = Buffer.concat([sshString(keyType), reader.slice(keyStart, reader.position)]);
    const serial = reader.uint64();
    const certTypeCode = reader.uint32();
    if (certTypeCode !== 1 && certTypeCode !== 2) throw new Error(`unknown certificate type ${certTypeCode}`);
    const keyId = reader.text();
    const principalReader = new WireReader(reader.bytes());
    const principals: string[] = [];
    while (!principalReader.done) principals.push(principalReader.text());
    const validAfter = reader.uint64();
    const validBefore = reader.uint64();
    const criticalOptions = reader.bytes();
    reader.bytes(); // extensions
    reader.bytes(); // reserved
    const signatureKey = reader.bytes();
    const signedData = reader.slice(0, reader.position);
    const signature = reader.bytes();
    if (!reader.done) throw new Error('trailing data');
    return {
      type,
      keyType,
      publicKeyBlob,
      serial,
      certType: certTypeCode === 1 ? 'user' : 'host',
      keyId,
      principals,
      validAfter,
      validBefore,
      criticalOptions,
      signatureKey,
      signature,
      signedData,
    };
  } catch (error) {
    throw new Error(`malformed OpenSSH certificate: ${errorMessage(error)}`, { cause: error });
  }
}

function base64url(bytes: Buffer): string {
  return bytes.toString('base64url');
}

/** An mpint as unsigned big-endian bytes of exactly `size` (for r||s), or as it is (size 0). */
function unsignedBytes(mpint: Buffer, size = 0): Buffer {
  let start = 0;
  while (start < mpint.length - 1 && mpint[start] === 0) start++;
  const value = mpint.subarray(start);
  if (size === 0 || value.length === size) return value;
  if (value.length > size) throw new Error('integer too large');
  return Buffer.concat([Buffer.alloc(size - value.length), value]);
}

const CURVES: Readonly<Record<string, { crv: string; size: number; hash: string }>> = {
  'ecdsa-sha2-nistp256': { crv: 'P-256', size: 32, hash: 'sha256' },
  'ecdsa-sha2-nistp384': { crv: 'P-384', size: 48, hash: 'sha384' },
  'ecdsa-sha2-nistp521': { crv: 'P-521', size: 66, hash: 'sha512' },
};

/** A plain SSH public key blob as a node:crypto key, with its type. */
function publicKeyObject(blob: Buffer): { type: string; key: KeyObject } {
  const reader = new WireReader(blob);
  const type = reader.text();
  if (type === 'ssh-ed25519') {
    return { type, key: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: base64url(reader.bytes()) }, format: 'jwk' }) };
  }
  if (type === 'ssh-rsa') {
    const e = unsignedBytes(reader.bytes());
    const n = unsignedBytes(reader.bytes());
    return { type, key: createPublicKey({ key: { kty: 'RSA', n: base64url(n), e: base64url(e) }, format: 'jwk' }) };
  }
  const curve = CURVES[type];
  if (curve !== undefined) {
    reader.bytes(); // curve name
    const point = reader.bytes();
    if (point[0] !== 4 || point.length !== 1 + 2 * curve.size) throw new Error('unsupported ECDSA point encoding');
    const x = point.subarray(1, 1 + curve.size);
    const y = point.subarray(1 + curve.size);
    return { type, key: createPublicKey({ key: { kty: 'EC', crv: curve.crv, x: base64url(x), y: base64url(y) }, format: 'jwk' }) };
  }
  throw new Error(`unsupported CA key type ${type}`);
}

/**
 * Verifies an SSH signature blob (`string algorithm, string signature`)
 * over `data` with a plain public key blob. Returns why it fails, or null.
 */
export function checkSshSignature(keyBlob: Buffer, signatureBlob: Buffer, data: Buffer, allowed: ReadonlySet<string> = CA_SIGNATURE_ALGORITHMS): string | null {
  try {
    const { type, key } = publicKeyObject(keyBlob);
    const reader = new WireReader(signatureBlob);
    const algorithm = reader.text();
    const signature = reader.bytes();
    if (!allowed.has(algorithm)) return `signature algorithm ${algorithm} is not accepted`;
    let valid: boolean;
    if (type === 'ssh-ed25519') {
      if (algorithm !== 'ssh-ed25519') return `signature algorithm ${algorithm} does not match the ${type} key`;
      valid = verify(null, data, key, signature);
    } else if (type === 'ssh-rsa') {
      const hash = algorithm === 'rsa-sha2-512' ? 'sha512' : algorithm === 'rsa-sha2-256' ? 'sha256' : undefined;
      if (hash === undefined) return `signature algorithm ${algorithm} does not match the ${type} key`;
      valid = verify(hash, data, key, signature);
    } else {
      const curve = CURVES[type]!;
      if (algorithm !== type) return `signature algorithm ${algorithm} does not match the ${type} key`;
      const parts = new WireReader(signature);
      const rs = Buffer.concat([unsignedBytes(parts.bytes(), curve.size), unsignedBytes(parts.bytes(), curve.size)]);
      valid = verify(curve.hash, data, { key, dsaEncoding: 'ieee-p1363' }, rs);
    }
    return valid ? null : 'the signature does not verify';
  } catch (error) {
    return `the signature cannot be checked: ${errorMessage(error)}`;
  }
}

/** Seconds since the epoch, as a certificate's validity fields count them. */
function epochSeconds(now: Date): bigint {
  return BigInt(Math.floor(now.getTime() / 1000));
}

/** A validity bound as ISO 8601 (UTC), or "forever". */
export function formatCertificateTime(seconds: bigint): string {
  if (seconds === FOREVER) return 'forever';
  if (seconds > 253402300799n) return 'forever';
  return new Date(Number(seconds) * 1000).toISOString().replace('.000Z', 'Z');
}

/**
 * sshkey_cert_check_authority() for a host, as ssh checks a host
 * certificate it got for `hostName` from a CA it trusts: the CA's
 * signature, the certificate type, the validity period, the principals
 * (wildcards allowed; none listed means any host) and no critical options.
 * Returns why the certificate must be refused, or null.
 */
export function checkHostCertificate(certificate: OpenSshCertificate, hostName: string, now: Date): string | null {
  const signatureProblem = checkSshSignature(certificate.signatureKey, certificate.signature, certificate.signedData);
  if (signatureProblem !== null) return `its CA signature is not valid: ${signatureProblem}`;
  if (certificate.certType !== 'host') return 'it is a user certificate, not a host certificate';
  const time = epochSeconds(now);
  if (time < certificate.validAfter) return `it is not valid yet (valid from ${formatCertificateTime(certificate.validAfter)})`;
  if (time >= certificate.validBefore) return `it expired at ${formatCertificateTime(certificate.validBefore)}`;
  const name = hostName.toLowerCase();
  if (certificate.principals.length > 0 && !certificate.principals.some((principal) => matchSshPattern(name, principal))) {
    return `it is not valid for ${name} (principals: ${certificate.principals.join(', ')})`;
  }
  if (certificate.criticalOptions.length > 0) return 'it has critical options, which a host certificate may not have';
  return null;
}

/** What to log about a certificate: never the key, only what identifies it. */
export function describeCertificate(certificate: OpenSshCertificate): Record<string, string> {
  return {
    keyId: certificate.keyId,
    serial: certificate.serial.toString(),
    principals: certificate.principals.length === 0 ? '(any)' : certificate.principals.join(','),
    validAfter: formatCertificateTime(certificate.validAfter),
    validBefore: formatCertificateTime(certificate.validBefore),
  };
}

/** Whether `now` lies in the certificate's validity period. */
export function certificateValidAt(certificate: OpenSshCertificate, now: Date): boolean {
  const time = epochSeconds(now);
  return time >= certificate.validAfter && time < certificate.validBefore;
}
