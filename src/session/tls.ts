import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkServerIdentity, connect as connectTls, TLSSocket, type PeerCertificate, type SecureContext } from 'node:tls';
import type { FtpTlsMode } from '../ftp/upstreamTls.js';
import { certificateFingerprint, formatFingerprint, formatFingerprintHex } from '../net/fingerprint.js';

/** How ftpfwd speaks TLS to one FTP server, resolved once at start-up (see tlsSettings.ts). */
export interface ServerTlsSettings {
  mode: FtpTlsMode;
  /** The trusted CAs (and nothing else) for every handshake with this server. */
  context: SecureContext;
  /** Where those CAs came from, for messages: "the system CA store", "--ftp-tls-ca /etc/...". */
  caSource: string;
  /** SHA-256 digests of accepted certificates; when given, they replace the CA and name checks. */
  fingerprints: readonly Buffer[];
  /** Accept any certificate (said in every session's log). */
  insecure: boolean;
  /** The name the certificate must carry, also sent as SNI when it is not an IP address. */
  servername: string;
}

/** How ftpfwd serves TLS to its own clients. */
export interface ClientTlsSettings {
  context: SecureContext;
  /** TLS from the first byte (implicit FTPS) rather than after AUTH TLS. */
  implicit: boolean;
}

/** What the log says about a presented certificate. */
export interface CertificateFacts {
  fingerprint: string;
  fingerprintHex: string;
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  altNames: string;
}

/** The server's certificate failed the check: `reason` says why, in words, and `certificate` what it was. */
export class TlsCertificateError extends Error {
  constructor(
    readonly reason: string,
    readonly certificate: CertificateFacts | null,
  ) {
    super(`the FTP server's TLS certificate was refused: ${reason}`);
    this.name = 'TlsCertificateError';
  }
}

function distinguishedName(name: Record<string, string | string[]> | undefined): string {
  if (name === undefined) return '';
  return Object.entries(name)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : value}`)
    .join(', ');
}

export function certificateFacts(certificate: PeerCertificate): CertificateFacts | null {
  if (certificate.raw === undefined) return null;
  const digest = certificateFingerprint(certificate.raw);
  return {
    fingerprint: formatFingerprint(digest),
    fingerprintHex: formatFingerprintHex(digest),
    subject: distinguishedName(certificate.subject as unknown as Record<string, string | string[]>),
    issuer: distinguishedName(certificate.issuer as unknown as Record<string, string | string[]>),
    validFrom: certificate.valid_from,
    validTo: certificate.valid_to,
    altNames: certificate.subjectaltname ?? '',
  };
}

/** `TLSv1.3 TLS_AES_256_GCM_SHA384`, for the log. */
export function describeTls(socket: TLSSocket): string {
  return `${socket.getProtocol() ?? 'TLS'} ${socket.getCipher().standardName}`;
}

/**
 * An OpenSSL error in words: its reason (`wrong version number`) and code,
 * not the message, which carries OpenSSL's source file and a newline that
 * would split the 421 it ends up in.
 */
function tlsErrorText(error: Error): string {
  const { reason, code } = error as Error & { reason?: unknown; code?: unknown };
  if (typeof reason === 'string' && reason !== '') return typeof code === 'string' ? `${reason} (${code})` : reason;
  return error.message.replace(/\s+/g, ' ').trim();
}

/** Resolves once `socket` has finished its handshake; rejects (and destroys it) on error, close or timeout. */
function handshake(socket: TLSSocket, event: 'secure' | 'secureConnect', timeoutMs: number, who: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const finish = (error: Error | null): void => {
      clearTimeout(timer);
      socket.removeListener(event, onSecure);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      if (error === null) resolve();
      else {
        // The end of what it runs over can still make it emit an error
        // (a second one, or one after a timeout); nobody listens any more.
        socket.on('error', () => undefined);
        socket.destroy();
        reject(error);
      }
    };
    const onSecure = (): void => finish(null);
    const onError = (error: Error): void => finish(new Error(`TLS handshake with ${who} failed: ${tlsErrorText(error)}`));
    const onClose = (): void => finish(new Error(`${who} closed the connection during the TLS handshake`));
    const timer = setTimeout(() => finish(new Error(`TLS handshake with ${who} timed out after ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    timer.unref();
    socket.once(event, onSecure);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}

/**
 * Why the server's certificate is not acceptable, or null when it is. A
 * resumed session was checked when it was first made. The check runs after
 * the handshake and before a single byte of FTP is sent, so that the log
 * can name the certificate that was refused.
 */
function refusal(socket: TLSSocket, settings: ServerTlsSettings): string | null {
  if (socket.isSessionReused() || settings.insecure) return null;
  const certificate = socket.getPeerCertificate();
  if (settings.fingerprints.length > 0) {
    const digest = certificate.raw === undefined ? null : certificateFingerprint(certificate.raw);
    if (digest !== null && settings.fingerprints.some((pin) => pin.equals(digest))) return null;
    const presented = digest === null ? 'none' : formatFingerprint(digest);
    return `its fingerprint ${presented} is not the pinned ${settings.fingerprints.map(formatFingerprint).join(' or ')}`;
  }
  if (socket.authorized) return null;
  const code = String(socket.authorizationError ?? 'unknown');
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return `it expired on ${certificate.valid_to}`;
    case 'CERT_NOT_YET_VALID':
      return `it is not valid before ${certificate.valid_from}`;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `it is for ${certificate.subjectaltname || `CN=${String(certificate.subject?.CN ?? '?')}`}, not ${settings.servername}`;
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      return `it is not signed by a CA in ${settings.caSource} (${code})`;
    case 'CERT_REVOKED':
      return 'it is revoked';
    default:
      return `it does not verify (${code})`;
  }
}

/**
 * The newest TLS session the FTP server issued, on the control connection
 * or on a data connection: what the next data connection resumes. TLS 1.3
 * servers send their tickets after the handshake, and some accept each
 * ticket once only, so every ticket is kept as it arrives.
 */
export class ResumableSession {
  private latest: Buffer | undefined;

  get current(): Buffer | undefined {
    return this.latest;
  }

  watch(socket: TLSSocket): void {
    socket.on('session', (session: Buffer) => {
      this.latest = session;
    });
  }
}

/**
 * TLS as the client over `stream` (an SSH channel to the FTP server's
 * control or data port): the FTP client side is the TLS client on every
 * data connection, passive or active (RFC 4217, as vsftpd, ProFTPD and
 * Pure-FTPd expect). `session` resumes the control connection's session,
 * which servers such as vsftpd (require_ssl_reuse) demand.
 */
export async function startServerTls(stream: Duplex, settings: ServerTlsSettings, sessions: ResumableSession, timeoutMs: number): Promise<TLSSocket> {
  const session = sessions.current;
  const { servername } = settings;
  const socket = connectTls({
    socket: stream,
    secureContext: settings.context,
    // RFC 6066: no IP addresses in SNI; the certificate is still checked against it.
    ...(isIP(servername) === 0 ? { servername } : {}),
    rejectUnauthorized: false,
    checkServerIdentity: (_host: string, certificate: PeerCertificate) => checkServerIdentity(servername, certificate),
    minVersion: 'TLSv1.2',
    ...(session === undefined ? {} : { session }),
  });
  sessions.watch(socket);
  await handshake(socket, 'secureConnect', timeoutMs, 'the FTP server');
  const why = refusal(socket, settings);
  if (why !== null) {
    const facts = certificateFacts(socket.getPeerCertificate());
    socket.destroy();
    throw new TlsCertificateError(why, facts);
  }
  return socket;
}

/** TLS as the server on a socket of one of ftpfwd's own clients (control or data). */
export async function startClientTls(socket: Socket, settings: ClientTlsSettings, timeoutMs: number): Promise<TLSSocket> {
  const secured = new TLSSocket(socket, { isServer: true, secureContext: settings.context });
  await handshake(secured, 'secure', timeoutMs, 'the FTP client');
  // TLS 1.3 session tickets go out on their own before the first data: an
  // OpenSSL client (Python's ftplib) that reads a ticket together with a
  // short listing and its close_notify fails its shutdown ("shutdown while
  // in init").
  await new Promise((resolve) => setImmediate(resolve));
  return secured;
}
