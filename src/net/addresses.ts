import { isIP, isIPv4 } from 'node:net';

/** IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as plain IPv4, and IPv6 in lower case, so that addresses compare. */
export function normalizeAddress(address: string): string {
  const lower = address.toLowerCase();
  return lower.startsWith('::ffff:') && isIPv4(lower.slice(7)) ? lower.slice(7) : lower;
}

export function sameAddress(a: string, b: string): boolean {
  return normalizeAddress(a) === normalizeAddress(b);
}

/** `host:port`, with an IPv6 host in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** 127.0.0.0/8 and ::1 (an IPv4-mapped loopback address too). */
export function isLoopbackAddress(address: string): boolean {
  const normal = normalizeAddress(address);
  return /^127\.\d+\.\d+\.\d+$/.test(normal) || normal === '::1';
}

/** `localhost`, or a loopback address literal. */
export function isLoopbackHost(host: string): boolean {
  return host.toLowerCase() === 'localhost' || (isIP(host) !== 0 && isLoopbackAddress(host));
}

/**
 * Addresses that never name the FTP server's own data port when a 227
 * reply names them: the unspecified address, loopback (the SSH server's
 * own services), link-local, multicast and broadcast. A server (or an
 * attacker in its place) naming one would make the SSH server connect to
 * something that is not the FTP server.
 */
export function isSpecialPurposeAddress(address: string): boolean {
  const normal = normalizeAddress(address);
  if (isIPv4(normal)) {
    const [a, b] = normal.split('.').map(Number) as [number, number];
    return a === 0 || a === 127 || (a === 169 && b === 254) || a >= 224;
  }
  if (isIP(normal) !== 6) return true;
  return normal === '::' || /^[0:]+$/.test(normal) || normal === '::1' || /^fe[89ab]/.test(normal) || normal.startsWith('ff');
}

/**
 * Where the SSH server connects for a passive data connection: the FTP
 * host of the control connection, or, when the reply's address is to be
 * honoured, that address, unless it names something that cannot be the
 * FTP server (`replyAddressRefused`).
 */
export function passiveDataHost(ftpHost: string, replyHost: string | null, honourReplyAddress: boolean): { host: string; replyAddressRefused: boolean } {
  if (!honourReplyAddress || replyHost === null) return { host: ftpHost, replyAddressRefused: false };
  if (isSpecialPurposeAddress(replyHost)) return { host: ftpHost, replyAddressRefused: true };
  return { host: replyHost, replyAddressRefused: false };
}
