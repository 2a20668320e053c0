import { createHash } from 'node:crypto';

/** SHA-256 of a certificate's DER bytes. */
export function certificateFingerprint(der: Buffer): Buffer {
  return createHash('sha256').update(der).digest();
}

/** `SHA256:` and unpadded base64, as OpenSSH prints key fingerprints. */
export function formatFingerprint(digest: Buffer): string {
  return `SHA256:${digest.toString('base64').replace(/=+$/, '')}`;
}

/** The colon-separated hex form `openssl x509 -fingerprint -sha256` prints. */
export function formatFingerprintHex(digest: Buffer): string {
  return digest.toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

/**
 * Parses a pinned certificate fingerprint: `SHA256:` with base64 (as
 * ftpfwd logs it), or the hex that `openssl x509 -noout -fingerprint
 * -sha256` prints, with or without its `sha256 Fingerprint=` prefix and
 * colons. Null when it is neither: a pin that cannot match is a mistake,
 * never a pin that matches nothing.
 */
export function parseFingerprint(text: string): Buffer | null {
  const trimmed = text.trim();
  const body = trimmed.replace(/^sha256(?:\s+fingerprint)?\s*[:=]\s*/i, '');
  const hex = body.replace(/:/g, '');
  if (/^[0-9a-f]{64}$/i.test(hex)) return Buffer.from(hex, 'hex');
  if (body === trimmed || !/^[A-Za-z0-9+/_-]{43}=?$/.test(body)) return null;
  const digest = Buffer.from(body.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return digest.length === 32 ? digest : null;
}
