/**
 * Private keys for public-key authentication, loaded the way OpenSSH picks
 * them: explicit IdentityFile paths, or its default files in its order.
 * Parsing is ssh2's (OpenSSH, PEM and PuTTY formats).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import ssh2, { type ParsedKey } from 'ssh2';
import { errorCode, errorMessage, FtpfwdError, isFtpfwdError } from '../errors.js';
import type { Prompter, SshIdentity } from './authentication.js';
import { isCertificateType, parseCertificate } from './certificates.js';
import { keyTypeOfBlob } from './knownHosts.js';

/**
 * OpenSSH 9's default identity files, in the order `ssh -G` lists them
 * (id_rsa, id_ecdsa, id_ecdsa_sk, id_ed25519, id_ed25519_sk, id_xmss,
 * id_dsa), keeping only the types ssh2 can authenticate with: security-key
 * (_sk) and XMSS keys are unsupported, and DSA is left out as OpenSSH no
 * longer offers it by default.
 */
const DEFAULT_IDENTITY_NAMES = ['id_rsa', 'id_ecdsa', 'id_ed25519'] as const;

export interface LoadedIdentity {
  path: string;
  key: ParsedKey;
  /** The public key in SSH wire format, as a server's authorized_keys holds it. */
  publicKeyBlob: Buffer;
}

export interface LoadIdentityOptions {
  passphrase?: string | Buffer;
}

/** `<homeDir>/.ssh/id_*` for each default identity ssh2 supports, in OpenSSH's order. */
export function defaultIdentityFiles(homeDir: string): string[] {
  return DEFAULT_IDENTITY_NAMES.map((name) => join(homeDir, '.ssh', name));
}

/**
 * Reads and parses one private key. Throws ERR_FTPFWD_CONFIG for a missing,
 * unreadable or unusable file, and ERR_FTPFWD_AUTH for an encrypted key with
 * no or the wrong passphrase. Messages name the file, never the passphrase.
 */
export async function loadIdentity(path: string, options: LoadIdentityOptions = {}): Promise<LoadedIdentity> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (error) {
    const code = errorCode(error);
    const missing = code === 'ENOENT' || code === 'ENOTDIR';
    throw new FtpfwdError(
      'ERR_FTPFWD_CONFIG',
      missing ? `identity file ${path} does not exist` : `cannot read identity file ${path}: ${code ?? 'read error'}`,
      { cause: error, details: { path, reason: missing ? 'not-found' : 'unreadable' } },
    );
  }

  const { passphrase } = options;
  const hasPassphrase = passphrase !== undefined && passphrase.length > 0;
  const parsed = ssh2.utils.parseKey(data, hasPassphrase ? passphrase : undefined);
  if (parsed instanceof Error) {
    // ssh2's messages starting "Unsupported" (cipher, KDF, key type) are not passphrase problems.
    if (isEncryptedPrivateKey(data) && !/^Unsupported/.test(parsed.message)) {
      throw new FtpfwdError(
        'ERR_FTPFWD_AUTH',
        hasPassphrase
          ? `wrong passphrase for identity file ${path}`
          : `identity file ${path} is encrypted; give its passphrase with --passphrase-file`,
        { cause: parsed, details: { path, reason: hasPassphrase ? 'bad-passphrase' : 'encrypted' } },
      );
    }
    throw new FtpfwdError('ERR_FTPFWD_CONFIG', `cannot use identity file ${path}: ${parsed.message}`, {
      cause: parsed,
      details: { path, reason: 'unparsable' },
    });
  }
  if (!parsed.isPrivateKey()) {
    throw new FtpfwdError('ERR_FTPFWD_CONFIG', `identity file ${path} does not contain a private key`, {
      details: { path, reason: 'not-private' },
    });
  }
  return { path, key: parsed, publicKeyBlob: parsed.getPublicSSH() };
}

/** How to unlock encrypted keys: a passphrase given beforehand, else a person at a prompt. */
export interface Unlock {
  passphrase?: string;
  prompt?: Prompter;
  log: Logger;
}

const PASSPHRASE_ATTEMPTS = 3;

export interface IdentityPolicy {
  /** Named by the user: missing or locked is an error, not a skip. */
  explicit: boolean;
  mayPrompt: boolean;
}

/**
 * Loads identity files in order, as OpenSSH's load_public_identity_files()
 * lists them. A missing default or configured file is passed over; a
 * missing file the user named (-i) is an error: OpenSSH only warns and
 * carries on, but a key the user asked for that cannot be used is almost
 * always a typo, and failing early says so. A private key that cannot be
 * used (missing, or locked with nobody to ask) still counts by its public
 * half (`file.pub`, or the file itself when it is one): an agent may hold
 * it. With `certificates`, each key's `file-cert.pub` follows it.
 */
export async function loadIdentities(paths: readonly string[], policy: IdentityPolicy, unlock: Unlock, options: { certificates?: boolean } = {}): Promise<SshIdentity[]> {
  const identities: SshIdentity[] = [];
  for (const path of paths) {
    const identity = (await loadWithPassphrase(path, policy, unlock)) ?? (await readPublicHalf(path, unlock.log));
    if (identity) identities.push(identity);
    if (options.certificates === true) {
      const certificate = await readUserCertificate(`${path}-cert.pub`, unlock.log);
      if (certificate) identities.push(certificate);
    }
  }
  return identities;
}

/** CertificateFile: user certificates, each signed with whichever identity holds its key. */
export async function loadCertificates(paths: readonly string[], log: Logger): Promise<SshIdentity[]> {
  const certificates: SshIdentity[] = [];
  for (const path of paths) {
    const certificate = await readUserCertificate(path, log);
    if (certificate) certificates.push(certificate);
  }
  return certificates;
}

/** One `type base64 [comment]` line: the blob, if the file holds a public key or certificate of its stated type. */
async function readPublicKeyLine(path: string): Promise<Buffer | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  const [type, base64] = text.trim().split(/\s+/);
  if (type === undefined || base64 === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return null;
  const blob = Buffer.from(base64, 'base64');
  return keyTypeOfBlob(blob) === type ? blob : null;
}

async function readPublicHalf(path: string, log: Logger): Promise<SshIdentity | null> {
  for (const candidate of [`${path}.pub`, path]) {
    const blob = await readPublicKeyLine(candidate);
    if (blob === null || isCertificateType(keyTypeOfBlob(blob))) continue;
    log.debug({ path: candidate }, 'identity: public key only (the private key may be in the agent)');
    return { kind: 'key', source: path, publicKeyBlob: blob };
  }
  return null;
}

async function readUserCertificate(path: string, log: Logger): Promise<SshIdentity | null> {
  const blob = await readPublicKeyLine(path);
  if (blob === null) return null;
  try {
    const certificate = parseCertificate(blob);
    if (certificate.certType !== 'user') {
      log.debug({ path }, 'ignoring a certificate that is not a user certificate');
      return null;
    }
    return { kind: 'certificate', source: path, blob, certificate };
  } catch (error) {
    log.debug({ path, reason: errorMessage(error) }, 'ignoring a file that is not a certificate');
    return null;
  }
}

/**
 * Loads one private key, asking for its passphrase when it is encrypted and
 * none was given. Default keys that are missing or cannot be unlocked are
 * passed over (null; an agent may hold them); named ones are errors. A
 * public key given as an identity is passed over too, for its public half.
 */
async function loadWithPassphrase(path: string, policy: IdentityPolicy, unlock: Unlock): Promise<SshIdentity | null> {
  const { explicit } = policy;
  let passphrase = unlock.passphrase;
  for (let attempt = 0; ; attempt += 1) {
    try {
      const identity = await loadIdentity(path, { passphrase });
      return { kind: 'key', source: identity.path, publicKeyBlob: identity.publicKeyBlob, key: identity.key };
    } catch (error) {
      if (!isFtpfwdError(error)) throw error;
      if (error.code === 'ERR_FTPFWD_CONFIG' && error.details['reason'] === 'not-found' && !explicit) return null;
      if (error.code === 'ERR_FTPFWD_CONFIG' && error.details['reason'] === 'not-private') return null;
      if (error.code !== 'ERR_FTPFWD_AUTH') throw error;
      const canAsk = policy.mayPrompt && unlock.prompt !== undefined && attempt < PASSPHRASE_ATTEMPTS;
      if (!canAsk) {
        if (!explicit) {
          unlock.log.debug({ path }, 'skipping encrypted default identity: no passphrase');
          return null;
        }
        throw error;
      }
      const answers = await unlock.prompt!({ name: '', instructions: '', prompts: [{ prompt: `Enter passphrase for key '${path}': `, echo: false }] });
      if (!answers || answers[0] === undefined) {
        if (!explicit) return null;
        throw error;
      }
      passphrase = answers[0];
    }
  }
}

const OPENSSH_KEY = /-----BEGIN OPENSSH PRIVATE KEY-----\r?\n([\s\S]+?)\r?\n-----END OPENSSH PRIVATE KEY-----/;
const OPENSSH_MAGIC = 'openssh-key-v1\0';

/** Whether the file holds a passphrase-protected key (OpenSSH, PEM, PKCS#8 or PuTTY format). */
function isEncryptedPrivateKey(data: Buffer): boolean {
  const text = data.toString('utf8');
  if (/^Proc-Type:\s*4,\s*ENCRYPTED/m.test(text)) return true;
  if (text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----')) return true;
  const ppk = /^Encryption:\s*(\S+)/m.exec(text);
  if (ppk?.[1] !== undefined) return ppk[1] !== 'none';
  const openssh = OPENSSH_KEY.exec(text);
  if (openssh?.[1] !== undefined) {
    // Layout: magic, then string ciphername ("none" when not encrypted).
    const body = Buffer.from(openssh[1].replace(/\s+/g, ''), 'base64');
    const start = OPENSSH_MAGIC.length;
    if (body.toString('latin1', 0, start) !== OPENSSH_MAGIC || body.length < start + 4) return false;
    const length = body.readUInt32BE(start);
    return body.toString('latin1', start + 4, start + 4 + length) !== 'none';
  }
  return false;
}

