import type { FtpfwdError } from '../errors.js';
import { formatHostPort } from '../net/addresses.js';
import type { ProbeFailure } from '../session/activeProbe.js';
import type { DialogFailure } from './controlDialog.js';

/**
 * What to change for the usual failures of a setup, as one line each. Pure:
 * the facts come in, the advice goes out, so every text can be tested.
 */

/** What the SSH side of the options says about how the login was attempted. */
export interface AuthContext {
  /** An ssh-agent socket was given (SSH_AUTH_SOCK, IdentityAgent). */
  agent: boolean;
  /** A passphrase or password could be asked on a terminal. */
  canPrompt: boolean;
}

export function sshFailureHint(error: FtpfwdError, auth: AuthContext): string | undefined {
  switch (error.code) {
    case 'ERR_FTPFWD_HOST_KEY_UNKNOWN':
      return (
        `compare the fingerprint with the server's own (on it: ssh-keygen -lf ${hostKeyFile(error.details['keyType'])}); ` +
        'if they match, run once with -o StrictHostKeyChecking=accept-new to record the key'
      );
    case 'ERR_FTPFWD_HOST_KEY_CHANGED':
      return 'if the server was reinstalled or its key replaced, remove the old key as shown; if not, the connection may be intercepted: ask the server\'s administrator first';
    case 'ERR_FTPFWD_HOST_KEY_REVOKED':
      return 'the key is marked @revoked in a known_hosts file on this machine: ask whoever manages it which key the server has now';
    case 'ERR_FTPFWD_AUTH':
      return authHint(auth);
    case 'ERR_FTPFWD_RESOLVE':
      return 'the name does not resolve on this machine: check the spelling, and HostName for it in ssh_config';
    case 'ERR_FTPFWD_CONNECT':
      if (error.details['viaJumpHost'] === true) return jumpHint(error.details['channelOpenFailure']);
      return 'check the host and port (-p, Port in ssh_config), that sshd runs there, and that no firewall refuses the connection';
    case 'ERR_FTPFWD_TIMEOUT':
      return 'nothing answered in time: a wrong address, or a firewall that drops packets; -o ConnectTimeout=N waits longer';
    case 'ERR_FTPFWD_CONFIG':
      return 'fix the file named above (a key given with -i must exist and be readable)';
    default:
      return undefined;
  }
}

function jumpHint(failure: string | number | boolean | undefined): string {
  if (failure === 'administratively prohibited') {
    return 'the jump host forbids forwarding to the next hop: its sshd_config needs AllowTcpForwarding yes or local, and PermitOpen (when set) must name the next hop';
  }
  return 'the jump host cannot connect to the next hop: check that hop\'s HostName and Port as the jump host sees them';
}

function authHint(auth: AuthContext): string {
  const parts = ['check the user name (user@host, -l, User in ssh_config) and that the server\'s authorized_keys holds your public key'];
  parts.push(auth.agent ? 'ssh-add -l lists the keys ssh-agent offers' : 'no ssh-agent was used (SSH_AUTH_SOCK is not set): load the key with ssh-add or give it with -i');
  if (!auth.canPrompt) {
    parts.push('nothing could be asked (BatchMode=yes, -f, or no terminal): an encrypted key needs the agent or --passphrase-file, a password --password-file');
  }
  return parts.join('; ');
}

/** The usual path of a host key of this type on an OpenSSH server. */
function hostKeyFile(keyType: string | number | boolean | undefined): string {
  const type = String(keyType ?? '');
  const name = type.includes('ed25519') ? 'ed25519' : type.includes('ecdsa') ? 'ecdsa' : type.includes('rsa') ? 'rsa' : '*';
  return `/etc/ssh/ssh_host_${name}_key.pub`;
}

/** Which channel could not be opened: the control connection's, or a passive data connection's. */
export type ChannelPurpose = 'control' | 'data';

export interface ChannelTarget {
  /** Where the channel was to lead. */
  host: string;
  port: number;
  /** The forward's FTP server (its control port). */
  ftpHost: string;
  ftpPort: number;
}

export function channelFailureHint(error: FtpfwdError, purpose: ChannelPurpose, target: ChannelTarget): string | undefined {
  const { host, port, ftpHost, ftpPort } = target;
  const where = formatHostPort(host, port);
  if (error.code === 'ERR_FTPFWD_TIMEOUT') return 'the SSH server did not answer the channel request in time: it may be overloaded, or its connection to the FTP host hangs (a firewall that drops)';
  if (error.code !== 'ERR_FTPFWD_FORWARD_REFUSED') return undefined;
  switch (error.details['channelOpenFailure']) {
    case 'administratively prohibited':
      return purpose === 'control'
        ? `the SSH server forbids forwarding to ${where}: its sshd_config (and any Match block for this user) needs AllowTcpForwarding yes or local, PermitOpen (when set) must name ${where}, and the key's authorized_keys line must not say no-port-forwarding or a permitopen= without it`
        : `the SSH server forbids forwarding to the passive port ${where}: when PermitOpen (or permitopen= in authorized_keys) is set, it must name the FTP server's passive ports too, e.g. PermitOpen ${formatHostPort(ftpHost, ftpPort)} ${host.includes(':') ? `[${host}]` : host}:*`;
    case 'connect failed':
      return purpose === 'control'
        ? `the SSH server could not connect to ${where}: check the host and port as the SSH server sees them (its DNS and routes, not this machine's); on it, nc -vz ${host} ${port} tells`
        : `the SSH server reaches the FTP server's control port but not its passive port ${where}: a firewall between them that lets only port ${ftpPort} through, or the FTP server's passive address and port settings`;
    default:
      return undefined;
  }
}

/** Why the greeting step failed: as the dialog saw it, or a reply other than 220. */
export type GreetingFailure = DialogFailure | 'refused';

export function greetingFailureHint(failure: GreetingFailure, host: string, port: number): string {
  const where = formatHostPort(host, port);
  switch (failure) {
    case 'timeout':
      return `something accepted the connection at ${where} but sent no FTP greeting: is it the FTP port (an implicit-FTPS port such as 990 waits for TLS)? a firewall that accepts and then drops?`;
    case 'closed':
      return `the server at ${where} hung up at once: its access rules (every session through SSH comes from the SSH server's address), or its limit of sessions`;
    case 'refused':
      return `the FTP server at ${where} turned the session away: its limit of sessions (per address: every session through SSH comes from the SSH server), or its access rules`;
    case 'not-ftp':
      return `the server at ${where} does not speak FTP: check the port as the SSH server sees it`;
  }
}

export function activeProbeHint(failure: ProbeFailure, address: string, forced: boolean): string {
  const instead = forced ? 'or leave out --active-mode forward, so that PORT/EPRT are converted to passive upstream' : 'or --active-mode convert to say so and skip this check';
  switch (failure) {
    case 'refused':
      return `the SSH server refuses remote forwards: its sshd_config needs AllowTcpForwarding yes or remote, and PermitListen (when set) must allow ${address}; ${instead}`;
    case 'not-listening':
    case 'not-returned':
      return `set GatewayPorts clientspecified (or yes) in the SSH server's sshd_config and reload sshd, so that a remote forward can listen on ${address}; ${instead}`;
  }
}
