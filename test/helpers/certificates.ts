import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertSucceeded, run } from './processes.js';

const OPENSSL_TIMEOUT_MS = 30_000;

export interface IssuedCertificate {
  certFile: string;
  keyFile: string;
  /** The certificate's PEM. */
  pem: string;
  /** `AB:CD:...`, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprintHex: string;
}

export interface CertificateRequest {
  /** File name stem under the CA's directory. */
  name: string;
  /** Subject alternative names: DNS names and IP addresses. */
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  /** `YYYYMMDDHHMMSSZ`; default: valid from now for 30 days. */
  notBefore?: string;
  notAfter?: string;
}

export interface TestCa {
  dir: string;
  certFile: string;
  pem: string;
  issue(request: CertificateRequest): Promise<IssuedCertificate>;
}

async function openssl(args: readonly string[], what: string): Promise<void> {
  assertSucceeded(await run('openssl', args, { timeoutMs: OPENSSL_TIMEOUT_MS }), what);
}

async function issued(certFile: string, keyFile: string): Promise<IssuedCertificate> {
  const pem = await readFile(certFile, 'utf8');
  return { certFile, keyFile, pem, fingerprintHex: new X509Certificate(pem).fingerprint256 };
}

/**
 * A certificate authority made with openssl for one test run, in `dir`:
 * server certificates signed by it, with the names and validity asked for
 * (an expired one included), RSA 2048 so that every FTP server takes them.
 */
export async function createTestCa(dir: string, commonName = 'ftpfwd test CA'): Promise<TestCa> {
  await mkdir(join(dir, 'issued'), { recursive: true });
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  await openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${commonName}`, '-days', '30', '-keyout', keyFile, '-out', certFile,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    'openssl req (CA)',
  );
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '1000\n');
  const config = join(dir, 'ca.cnf');
  await writeFile(config, [
    '[ca]', 'default_ca = test',
    '[test]', `database = ${join(dir, 'index.txt')}`, `new_certs_dir = ${join(dir, 'issued')}`, `serial = ${join(dir, 'serial')}`,
    `certificate = ${certFile}`, `private_key = ${keyFile}`, 'default_md = sha256', 'policy = anything', 'unique_subject = no', 'default_days = 30',
    '[anything]', 'commonName = supplied', '',
  ].join('\n'));
  const issue = async (request: CertificateRequest): Promise<IssuedCertificate> => {
    const base = join(dir, request.name);
    const names = [...(request.dnsNames ?? []).map((name) => `DNS:${name}`), ...(request.ipAddresses ?? []).map((address) => `IP:${address}`)];
    await openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${request.dnsNames?.[0] ?? request.ipAddresses?.[0] ?? request.name}`, '-keyout', `${base}.key`, '-out', `${base}.csr`], `openssl req (${request.name})`);
    await writeFile(`${base}.ext`, [`subjectAltName = ${names.join(',')}`, 'basicConstraints = CA:FALSE', 'extendedKeyUsage = serverAuth', ''].join('\n'));
    const validity = request.notBefore !== undefined && request.notAfter !== undefined ? ['-startdate', request.notBefore, '-enddate', request.notAfter] : ['-days', '30'];
    await openssl(['ca', '-batch', '-notext', '-config', config, '-in', `${base}.csr`, '-out', `${base}.crt`, '-extfile', `${base}.ext`, ...validity], `openssl ca (${request.name})`);
    return issued(`${base}.crt`, `${base}.key`);
  };
  return { dir, certFile, pem: await readFile(certFile, 'utf8'), issue };
}
