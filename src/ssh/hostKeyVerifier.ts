/**
 * Host key verification against OpenSSH known_hosts files, following
 * ssh_config(5) StrictHostKeyChecking. The decision itself is the pure
 * checkHostKey() in knownHosts.ts; this module reads the files, appends new
 * keys under accept-new, and turns refusals into FtpfwdErrors.
 */
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { HostVerifier, VerifyCallback } from 'ssh2';
import { errorCode, errorMessage, FtpfwdError, isFtpfwdError } from '../errors.js';
import type { OpenSshCertificate } from './certificates.js';
import {
  checkHostKey,
  formatKnownHostsLine,
  hostKeyLookupName,
  keyTypeOfBlob,
  parseKnownHostsWithWarnings,
  sha256Fingerprint,
  type KnownHostsEntry,
  type KnownHostsWarning,
  type ParsedKnownHosts,
} from './knownHosts.js';

export type StrictHostKeyChecking = 'yes' | 'accept-new' | 'no';

/**
 * The values OpenSSH accepts for StrictHostKeyChecking. 'off' is OpenSSH's
 * synonym for 'no'. 'ask' is handled as 'yes': ftpfwd never prompts (it may
 * run without a terminal), and refusing an unknown key with a message that
 * says how to add it is the non-interactive equivalent of a declined prompt.
 */
export type StrictHostKeyCheckingSetting = StrictHostKeyChecking | 'off' | 'ask';

export function normalizeStrictHostKeyChecking(setting: StrictHostKeyCheckingSetting): StrictHostKeyChecking {
  switch (setting) {
    case 'off':
      return 'no';
    case 'ask':
      return 'yes';
    default:
      return setting;
  }
}

const STRICT_SPELLINGS: ReadonlyMap<string, StrictHostKeyChecking> = new Map([
  ['yes', 'yes'],
  ['true', 'yes'],
  ['ask', 'yes'],
  ['accept-new', 'accept-new'],
  ['no', 'no'],
  ['false', 'no'],
  ['off', 'no'],
]);

/** Parses a StrictHostKeyChecking value from a flag or ssh_config, case-insensitively as OpenSSH does. */
export function parseStrictHostKeyChecking(text: string): StrictHostKeyChecking {
  const value = STRICT_SPELLINGS.get(text.trim().toLowerCase());
  if (value === undefined) {
    throw new FtpfwdError(
      'ERR_FTPFWD_CONFIG',
      `invalid StrictHostKeyChecking value ${JSON.stringify(text)}; use yes, accept-new or no`,
    );
  }
  return value;
}

export interface HostKeyAcceptedInfo {
  host: string;
  port: number;
  /** `host` or `[host]:port`, as written in known_hosts. */
  lookupName: string;
  keyType: string;
  fingerprint: string;
  /**
   * 'known': the key is on record at file:line. 'certificate': it is a host
   * certificate from the CA at file:line. 'added': it was unknown and has
   * been appended to file (accept-new). 'unchecked': it is not on record and
   * was accepted because checking is off.
   */
  outcome: 'known' | 'certificate' | 'added' | 'unchecked';
  file?: string;
  line?: number;
}

export interface HostKeyVerifierOptions {
  host: string;
  port: number;
  /** Files to read, in order; the first is where accept-new writes. `~` must already be expanded. */
  knownHostsFiles: readonly string[];
  strict: StrictHostKeyCheckingSetting;
  /** Write hashed host names when adding keys (OpenSSH's HashKnownHosts). */
  hashKnownHosts?: boolean;
  onAccepted?(info: HostKeyAcceptedInfo): void;
  /** Called for each malformed known_hosts line that was skipped. */
  onWarning?(warning: KnownHostsWarning): void;
  /** Called with the host certificate that was accepted, before onAccepted. */
  onCertificate?(info: HostCertificateInfo): void;
}

export interface HostCertificateInfo {
  lookupName: string;
  certificate: OpenSshCertificate;
  caFingerprint: string;
  /** Where the @cert-authority line is. */
  file: string;
  line: number;
}

export interface HostKeyVerifier {
  /** Resolves if the key is acceptable; rejects with an FtpfwdError otherwise. */
  verify(keyBlob: Buffer): Promise<void>;
}

/** Reads and parses known_hosts files; missing files count as empty. */
export async function readKnownHostsFiles(files: readonly string[]): Promise<ParsedKnownHosts> {
  const parsed: ParsedKnownHosts = { entries: [], warnings: [] };
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if (isMissingFileError(error)) continue;
      throw new FtpfwdError('ERR_FTPFWD_CONFIG', `cannot read known_hosts file ${file}: ${errorMessage(error)}`, {
        cause: error,
        details: { file },
      });
    }
    const result = parseKnownHostsWithWarnings(text, file);
    parsed.entries.push(...result.entries);
    parsed.warnings.push(...result.warnings);
  }
  return parsed;
}

export function createHostKeyVerifier(options: HostKeyVerifierOptions): HostKeyVerifier {
  const { host, port, knownHostsFiles } = options;
  const strict = normalizeStrictHostKeyChecking(options.strict);
  const lookupName = hostKeyLookupName(host, port);
  const addTarget = knownHostsFiles[0];

  async function verify(keyBlob: Buffer): Promise<void> {
    const keyType = keyTypeOfBlob(keyBlob);
    if (keyType === undefined) throw new FtpfwdError('ERR_FTPFWD_SSH', `server ${lookupName} sent a malformed host key`);
    const fingerprint = sha256Fingerprint(keyBlob);
    const presented = `${keyType} ${fingerprint}`;
    const details = { host: lookupName, keyType, fingerprint };

    const { entries, warnings } = await readKnownHostsFiles(knownHostsFiles);
    for (const warning of warnings) options.onWarning?.(warning);

    const accepted = (outcome: HostKeyAcceptedInfo['outcome'], file?: string, line?: number): void => {
      options.onAccepted?.({ host, port, lookupName, keyType, fingerprint, outcome, file, line });
    };

    const result = checkHostKey(entries, host, port, keyBlob);
    switch (result.kind) {
      case 'match':
        accepted('known', result.entry.file, result.entry.line);
        return;

      case 'certificate':
        options.onCertificate?.({ lookupName, certificate: result.certificate, caFingerprint: sha256Fingerprint(result.certificate.signatureKey), file: result.entry.file, line: result.entry.line });
        accepted('certificate', result.entry.file, result.entry.line);
        return;

      case 'revoked': {
        const what = result.what === 'CA' ? `the CA of its certificate (${sha256Fingerprint(result.entry.keyBlob)})` : result.what === 'certified key' ? 'the key of its certificate' : 'it';
        throw new FtpfwdError(
          'ERR_FTPFWD_HOST_KEY_REVOKED',
          `host key for ${lookupName} (${presented}) is refused: ${what} is marked @revoked at ${where(result.entry)}`,
          { details: { ...details, file: result.entry.file, line: result.entry.line } },
        );
      }

      case 'changed': {
        // Refused under every setting, 'no' included. OpenSSH with 'no' would
        // still connect (with password and forwarding restrictions); a
        // forwarder that carries credentials should not.
        const { entry } = result;
        throw new FtpfwdError(
          'ERR_FTPFWD_HOST_KEY_CHANGED',
          `host key for ${lookupName} has changed: the server sent ${presented} but ${where(entry)} ` +
            `records ${entry.keyType} ${sha256Fingerprint(entry.keyBlob)}; if the change is expected, ` +
            `remove the old key with: ssh-keygen -R '${lookupName}' -f '${entry.file}'`,
          {
            details: {
              ...details,
              file: entry.file,
              line: entry.line,
              knownFingerprint: sha256Fingerprint(entry.keyBlob),
            },
          },
        );
      }

      case 'certificate-invalid': {
        if (strict === 'no') {
          accepted('unchecked');
          return;
        }
        const { certificate, entry } = result;
        throw new FtpfwdError(
          'ERR_FTPFWD_HOST_KEY_UNKNOWN',
          `host certificate for ${lookupName} (ID "${certificate.keyId}", CA ${sha256Fingerprint(certificate.signatureKey)}) is refused: ` +
            `${result.reason}${entry === undefined ? '' : ` (CA at ${where(entry)})`}`,
          { details: { ...details, keyId: certificate.keyId, reason: result.reason, ...(entry === undefined ? {} : { file: entry.file, line: entry.line }) } },
        );
      }

      case 'certificate-expected':
        if (strict === 'no') {
          accepted('unchecked');
          return;
        }
        // Not added under accept-new: that would pin a plain key where the
        // administrator chose certificate trust.
        throw new FtpfwdError(
          'ERR_FTPFWD_HOST_KEY_UNKNOWN',
          `host key for ${lookupName} (${presented}) is a plain key but ${where(result.entry)} expects ` +
            `a certificate from a @cert-authority; add the host's plain key to ${addTarget ?? 'a known_hosts file'} ` +
            `if it is genuine`,
          { details: { ...details, file: result.entry.file, line: result.entry.line } },
        );

      case 'unknown': {
        if (strict === 'no') {
          accepted('unchecked');
          return;
        }
        if (strict === 'accept-new' && addTarget !== undefined) {
          const added = await addHostKey(addTarget, host, port, keyBlob, formatKnownHostsLine(host, port, keyBlob, { hashed: options.hashKnownHosts }));
          accepted(added ? 'added' : 'known', addTarget);
          return;
        }
        throw new FtpfwdError(
          'ERR_FTPFWD_HOST_KEY_UNKNOWN',
          addTarget === undefined
            ? `host key for ${lookupName} is not known (${presented}) and no known_hosts file is configured`
            : `host key for ${lookupName} is not known (${presented}); add it to ${addTarget} ` +
                `or use -o StrictHostKeyChecking=accept-new`,
          { details },
        );
      }
    }
  }

  return { verify };
}

/**
 * Adapts a verifier to ssh2's `hostVerifier` option. ssh2 passes the raw
 * host key blob (as long as `hostHash` is NOT set) and a callback; answering
 * through the callback makes the check asynchronous. On refusal ssh2 aborts
 * the handshake with a generic "Host denied" error, so `onError` receives the
 * precise FtpfwdError first, for the connection code to report instead.
 */
export function toSsh2HostVerifier(verifier: HostKeyVerifier, onError: (error: FtpfwdError) => void): HostVerifier {
  return function hostVerifier(key: Buffer, callback: VerifyCallback): void {
    if (!Buffer.isBuffer(key)) {
      refuse(new FtpfwdError('ERR_FTPFWD_SSH', 'host key verification needs the raw key; do not set hostHash'));
      return;
    }
    void verifier.verify(key).then(
      function hostKeyAccepted() {
        callback(true);
      },
      function hostKeyRefused(error: unknown) {
        refuse(
          isFtpfwdError(error)
            ? error
            : new FtpfwdError('ERR_FTPFWD_SSH', `host key verification failed: ${errorMessage(error)}`, {
                cause: error,
              }),
        );
      },
    );

    function refuse(error: FtpfwdError): void {
      try {
        onError(error);
      } finally {
        callback(false);
      }
    }
  };
}

/** How long to wait for another process's lock on a known_hosts file, and when a lock is stale. */
const LOCK_WAIT_MS = 5_000;
const LOCK_STALE_MS = 30_000;

/**
 * Appends one line to a known_hosts file, unless the key is there already:
 * under a lock file (`<file>.lock`, created exclusively), so that two
 * accept-new runs at once add one line, and with a single write of the
 * whole line (O_APPEND), so that no reader sees half of one. Creates the
 * directory (0700) and file (0600) if needed. Returns whether it appended.
 */
async function addHostKey(file: string, host: string, port: number, keyBlob: Buffer, line: string): Promise<boolean> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const release = await lockFile(`${file}.lock`);
    try {
      const current = await readKnownHostsFiles([file]);
      if (checkHostKey(current.entries, host, port, keyBlob).kind === 'match') return false;
      const handle = await open(file, 'a+', 0o600);
      try {
        const { size } = await handle.stat();
        let separator = '';
        if (size > 0) {
          const last = Buffer.alloc(1);
          await handle.read(last, 0, 1, size - 1);
          if (last[0] !== 0x0a) separator = '\n';
        }
        const data = Buffer.from(`${separator}${line}\n`, 'utf8');
        const { bytesWritten } = await handle.write(data, 0, data.length);
        if (bytesWritten !== data.length) throw new Error(`short write (${bytesWritten} of ${data.length} bytes)`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return true;
    } finally {
      await release();
    }
  } catch (error) {
    throw new FtpfwdError('ERR_FTPFWD_CONFIG', `cannot add the host key to ${file}: ${errorMessage(error)}`, {
      cause: error,
      details: { file },
    });
  }
}

/**
 * Takes an exclusive lock file, waiting (bounded) while another process
 * holds it; a lock older than LOCK_STALE_MS is left from a crash and taken
 * over. Returns the function that releases it.
 */
async function lockFile(path: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let attempt = 0; ; attempt += 1) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
      const age = await stat(path).then((info) => Date.now() - info.mtimeMs, () => 0);
      if (age > LOCK_STALE_MS) {
        await rm(path, { force: true });
        continue;
      }
      if (Date.now() >= deadline) throw new Error(`${path} is held by another process`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, Math.min(20 * 2 ** Math.min(attempt, 4), 250)));
    }
  }
}

function where(entry: KnownHostsEntry): string {
  return `${entry.file}:${entry.line}`;
}

function isMissingFileError(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}
