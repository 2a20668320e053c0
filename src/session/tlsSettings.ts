import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, rootCertificates } from 'node:tls';
import { errorCode, errorMessage, FtpfwdError } from '../errors.js';
import type { FtpTlsMode } from '../ftp/upstreamTls.js';
import { parseFingerprint } from '../net/fingerprint.js';
import type { ClientTlsSettings, ServerTlsSettings } from './tls.js';

/** TLS to the FTP server (FTPS), as the library takes it. */
export interface FtpTlsOptions {
  mode: FtpTlsMode;
  /**
   * PEM CA certificates the server's certificate must chain to, instead of
   * the system's CA store (and Node's bundled roots).
   */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Where `ca` came from, for messages (e.g. the file name). */
  caSource?: string;
  /** Accept exactly these certificates (`SHA256:` base64, or hex): replaces the CA and name checks. */
  fingerprints?: readonly string[];
  /** The name the certificate must carry; default the FTP host of the forward. */
  servername?: string;
  /** Accept any certificate; every session says so in the log. */
  insecure?: boolean;
}

/** TLS from ftpfwd's own FTP clients: a certificate and key (PEM) to serve it with. */
export interface ClientTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
  /** Serve implicit TLS (TLS from the first byte) instead of accepting AUTH TLS. */
  implicit?: boolean;
}

/** Where Debian, Fedora and the BSDs keep their CA bundle; the first that can be read is used. */
const SYSTEM_CA_FILES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem', '/etc/ssl/ca-bundle.pem'];

let systemCas: { certificates: Array<string | Buffer>; source: string } | undefined;

/**
 * Node's bundled roots plus the system's bundle, read once: a private CA
 * added with update-ca-certificates is trusted as by curl or lftp.
 */
function systemCaCertificates(): { certificates: Array<string | Buffer>; source: string } {
  if (systemCas !== undefined) return systemCas;
  for (const file of SYSTEM_CA_FILES) {
    try {
      systemCas = { certificates: [...rootCertificates, readFileSync(file)], source: `the system CA store (${file})` };
      return systemCas;
    } catch {
      // Not this system's layout: try the next.
    }
  }
  systemCas = { certificates: [...rootCertificates], source: "Node's bundled CA store" };
  return systemCas;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Throws unless every entry holds at least one PEM certificate and each of them parses. */
function checkPemCertificates(entries: ReadonlyArray<string | Buffer>): void {
  for (const entry of entries) {
    const blocks = String(entry).match(PEM_CERTIFICATE) ?? [];
    if (blocks.length === 0) throw new Error('no PEM certificate (-----BEGIN CERTIFICATE-----) in it');
    for (const block of blocks) new X509Certificate(block);
  }
}

function tlsConfigError(what: string, error: unknown): FtpfwdError {
  return new FtpfwdError('ERR_FTPFWD_CONFIG', `${what}: ${errorCode(error) ?? errorMessage(error)}`, { cause: error });
}

/** The settings for TLS to one FTP server; bad pins or CAs are configuration errors, found before anything starts. */
export function resolveServerTls(options: FtpTlsOptions, ftpHost: string): ServerTlsSettings {
  const fingerprints = (options.fingerprints ?? []).map((text) => {
    const digest = parseFingerprint(text);
    if (digest === null) throw new FtpfwdError('ERR_FTPFWD_USAGE', `bad certificate fingerprint ${JSON.stringify(text)}: give SHA256:<base64> or the 64 hex digits of a SHA-256 fingerprint`);
    return digest;
  });
  const given = options.ca === undefined ? undefined : Array.isArray(options.ca) ? [...(options.ca as ReadonlyArray<string | Buffer>)] : [options.ca as string | Buffer];
  const cas = given === undefined ? systemCaCertificates() : { certificates: given, source: options.caSource ?? 'the given CA certificates' };
  let context;
  try {
    // Node skips whatever in `ca` is not a PEM certificate: a key or a DER
    // file given by mistake would trust nothing, and every session would be
    // refused for a reason that points away from the mistake.
    if (given !== undefined) checkPemCertificates(given);
    context = createSecureContext({ ca: cas.certificates, minVersion: 'TLSv1.2' });
  } catch (error) {
    throw tlsConfigError(`cannot use the CA certificates from ${cas.source}`, error);
  }
  return {
    mode: options.mode,
    context,
    caSource: cas.source,
    fingerprints,
    insecure: options.insecure ?? false,
    servername: options.servername ?? ftpHost,
  };
}

export function resolveClientTls(options: ClientTlsOptions): ClientTlsSettings {
  try {
    return { context: createSecureContext({ cert: options.cert, key: options.key, minVersion: 'TLSv1.2' }), implicit: options.implicit ?? false };
  } catch (error) {
    throw tlsConfigError('cannot serve TLS with the given certificate and key', error);
  }
}
