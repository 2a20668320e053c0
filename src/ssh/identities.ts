/**
 * Private keys for public-key authentication, loaded the way OpenSSH picks
 * them: explicit IdentityFile paths, or its default files in its order.
 * Parsing is ssh2's (OpenSSH, PEM and PuTTY formats).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2, { type ParsedKey } from 'ssh2';
import { FtpfwdError } from '../errors.js';

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

export interface LoadIdentitiesOptions extends LoadIdentityOptions {
  /** True for files the user named; false for defaultIdentityFiles(). */
  explicit: boolean;
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

/**
 * Loads several identity files in order. A missing default file is skipped
 * silently, as OpenSSH does. A missing explicit file is an error: OpenSSH
 * only warns and carries on, but a key the user asked for that cannot be
 * used is almost always a typo, and failing early says so plainly.
 */
export async function loadIdentities(
  paths: readonly string[],
  options: LoadIdentitiesOptions,
): Promise<LoadedIdentity[]> {
  const identities: LoadedIdentity[] = [];
  for (const path of paths) {
    try {
      identities.push(await loadIdentity(path, { passphrase: options.passphrase }));
    } catch (error) {
      // A default key that is missing, or encrypted with no passphrase given,
      // is passed over as OpenSSH does when an agent or another key may work.
      if (!options.explicit && error instanceof FtpfwdError && (error.details['reason'] === 'not-found' || error.code === 'ERR_FTPFWD_AUTH')) continue;
      throw error;
    }
  }
  return identities;
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

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}
