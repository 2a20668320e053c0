import { join } from 'node:path';
import type { Logger } from 'pino';
import { errorMessage, FtpfwdError, isFtpfwdError } from '../errors.js';
import { formatHostPort } from '../net/addresses.js';
import { clampTimerMs } from '../timers.js';
import type { Prompter } from './authentication.js';
import { describeCertificate } from './certificates.js';
import { createHostKeyVerifier, readKnownHostsFiles, type HostKeyAcceptedInfo, type StrictHostKeyCheckingSetting } from './hostKeyVerifier.js';
import { defaultIdentityFiles, loadCertificates, loadIdentities } from './identities.js';
import { hostKeyAlgorithmsFor } from './knownHosts.js';
import type { ProxyCommandOptions } from './proxyCommand.js';
import { SshConnection, type SshConnectOptions } from './sshConnection.js';

/** How to reach and log in to one SSH server: the target, or a jump host on the way. */
export interface SshHopOptions {
  host: string;
  port?: number;
  username: string;
  /** Private key files named by the user (-i); a missing one is an error. */
  identityFiles?: string[];
  /** Key files from configuration (ssh_config IdentityFile); missing ones are passed over. */
  optionalIdentityFiles?: string[];
  /** Also try ~/.ssh/id_rsa, id_ecdsa, id_ed25519 when present (default true). */
  useDefaultIdentities?: boolean;
  /** Passphrase for encrypted identity files; without it, `prompt` is asked. */
  passphrase?: string;
  /** ssh-agent socket path (SSH_AUTH_SOCK); no agent when absent. */
  agentSocket?: string;
  /** IdentitiesOnly: use only the agent's keys that are also identity files (default false). */
  identitiesOnly?: boolean;
  /** CertificateFile: user certificates, offered first; when given, no `<identity>-cert.pub` is looked for. */
  certificateFiles?: string[];
  /** Password for password and keyboard-interactive authentication; without it, `prompt` is asked. */
  password?: string;
  /** Which methods may be used (ssh_config's *Authentication options); all by default. */
  authMethods?: { publicKey?: boolean; keyboardInteractive?: boolean; password?: boolean };
  knownHostsFiles?: string[];
  strictHostKeyChecking?: StrictHostKeyCheckingSetting;
  hashKnownHosts?: boolean;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /**
   * Reach this host through a command (ssh_config ProxyCommand) instead of
   * TCP; only the first hop of a chain can be, the others are reached
   * through the hop before them.
   */
  proxyCommand?: ProxyCommandOptions;
}

export interface HopContext {
  homeDir: string;
  /** Asks a person for passphrases and passwords; absent: never ask (batch mode). */
  prompt?: Prompter;
  log: Logger;
}

/** ssh2's own default order of host key algorithms. */
const HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/** ConnectTimeout=0 means no limit of our own for TCP; a channel open still gets this one. */
const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;

export function describeHop(hop: SshHopOptions): string {
  return `${hop.username}@${formatHostPort(hop.host, hop.port ?? 22)}`;
}

/**
 * Everything a hop needs that is read once: keys (passphrases asked now,
 * not on every reconnect), host-key checking and auth settings.
 */
export async function prepareHop(hop: SshHopOptions, context: HopContext): Promise<Omit<SshConnectOptions, 'transport'>> {
  const port = hop.port ?? 22;
  const target = describeHop(hop);
  const unlock = { ...(hop.passphrase === undefined ? {} : { passphrase: hop.passphrase }), ...(context.prompt === undefined ? {} : { prompt: context.prompt }), log: context.log };
  const certificateFiles = hop.certificateFiles ?? [];
  // ssh.c: each identity's -cert.pub is looked for only when no CertificateFile is given.
  const withCertificates = { certificates: certificateFiles.length === 0 };
  const identities = [
    ...(await loadIdentities(hop.identityFiles ?? [], { explicit: true, mayPrompt: true }, unlock, withCertificates)),
    ...(await loadIdentities(hop.optionalIdentityFiles ?? [], { explicit: false, mayPrompt: true }, unlock, withCertificates)),
    // Default keys are not worth a prompt at start-up: an agent usually holds them.
    ...(hop.useDefaultIdentities ?? true ? await loadIdentities(defaultIdentityFiles(context.homeDir), { explicit: false, mayPrompt: false }, unlock, withCertificates) : []),
  ];
  const certificates = await loadCertificates(certificateFiles, context.log);
  const knownHostsFiles = hop.knownHostsFiles ?? [join(context.homeDir, '.ssh', 'known_hosts')];
  const known = await readKnownHostsFiles(knownHostsFiles);
  const { log } = context;
  const verifier = createHostKeyVerifier({
    host: hop.host,
    port,
    knownHostsFiles,
    strict: hop.strictHostKeyChecking ?? 'yes',
    hashKnownHosts: hop.hashKnownHosts ?? false,
    onAccepted: (info: HostKeyAcceptedInfo) => {
      const fields = { host: info.lookupName, keyType: info.keyType, fingerprint: info.fingerprint };
      if (info.outcome === 'added') log.warn({ ...fields, file: info.file }, 'permanently added host key to known_hosts');
      else if (info.outcome === 'unchecked') log.warn(fields, 'host key not checked (StrictHostKeyChecking=no)');
      else if (info.outcome === 'known') log.debug({ ...fields, file: info.file, line: info.line }, 'host key matches known_hosts');
    },
    onWarning: (warning) => log.warn({ file: warning.file, line: warning.line }, `skipped a malformed known_hosts line: ${warning.reason}`),
    onCertificate: (info) =>
      log.info({ host: info.lookupName, ...describeCertificate(info.certificate), ca: info.caFingerprint, file: info.file, line: info.line }, 'host certificate accepted'),
  });
  const methods = hop.authMethods ?? {};
  return {
    host: hop.host,
    port,
    auth: {
      username: hop.username,
      identities,
      certificates,
      agentSocket: hop.agentSocket,
      identitiesOnly: hop.identitiesOnly ?? false,
      publicKey: methods.publicKey ?? true,
      keyboardInteractive: methods.keyboardInteractive ?? true,
      password: methods.password ?? true,
      knownPassword: hop.password,
      prompt: context.prompt,
      passwordAttempts: 3,
      target,
    },
    hostKeyVerifier: verifier,
    // Ask for the key type already on record, as OpenSSH does, so that a
    // server with several host keys is checked against the one we know.
    // A certificate is asked for first when a @cert-authority line covers the host.
    hostKeyAlgorithms: hostKeyAlgorithmsFor(known.entries, hop.host, port, HOST_KEY_ALGORITHMS),
    // ssh_config allows times up to INT_MAX seconds; a Node timer holds far less.
    connectTimeoutMs: clampTimerMs(hop.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    keepaliveIntervalMs: clampTimerMs(hop.keepaliveIntervalMs ?? 15_000),
    keepaliveCountMax: hop.keepaliveCountMax ?? 3,
    ...(hop.proxyCommand === undefined ? {} : { proxyCommand: hop.proxyCommand }),
  };
}

/**
 * Connects through each jump host in turn: every hop's SSH session runs
 * inside a direct-tcpip channel of the previous one, each with its own
 * authentication and host-key check. Returns the last hop's connection;
 * closing or losing it closes the hops before it.
 */
export async function connectThroughHops(hops: Array<Omit<SshConnectOptions, 'transport'>>, log: Logger): Promise<SshConnection> {
  const opened: SshConnection[] = [];
  try {
    for (const [index, hop] of hops.entries()) {
      const previous = opened.at(-1);
      const transport = previous
        ? await previous.openDirectTcpip({ host: '127.0.0.1', port: 0 }, hop.host, hop.port, hop.connectTimeoutMs > 0 ? hop.connectTimeoutMs : DEFAULT_CONNECT_TIMEOUT_MS).catch((error: unknown) => {
            throw new FtpfwdError('ERR_FTPFWD_CONNECT', `jump host could not reach ${formatHostPort(hop.host, hop.port)}: ${errorMessage(error)}`, {
              cause: error,
              details: { ...(isFtpfwdError(error) ? error.details : {}), viaJumpHost: true },
            });
          })
        : undefined;
      const connection = await SshConnection.connect({ ...hop, ...(transport ? { transport } : {}) }, log.child({ hop: index + 1 }));
      log.debug({ hop: index + 1, via: transport ? 'jump host' : hop.proxyCommand ? 'ProxyCommand' : 'TCP' }, 'SSH hop transport');
      log.debug({ hop: index + 1, host: formatHostPort(hop.host, hop.port) }, 'SSH hop connected');
      opened.push(connection);
    }
  } catch (error) {
    for (const connection of opened.reverse()) connection.close();
    throw error;
  }
  const last = opened.at(-1)!;
  const before = opened.slice(0, -1);
  last.onClose(() => {
    for (const connection of before.reverse()) connection.close();
  });
  for (const connection of before) connection.onClose(() => last.close());
  return last;
}
