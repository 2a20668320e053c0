import { join } from 'node:path';
import { FtpfwdError } from '../errors.js';
import type { SshOptions } from '../forwarder.js';
import type { SshHopOptions } from '../ssh/hops.js';
import { resolveHost, type ParsedSshConfig, type ResolvedSshConfig, type UnsupportedSshOption } from '../ssh/sshConfig.js';
import { parseDestination, type Destination } from './arguments.js';

/** What the command line says about the SSH side, before ssh_config is consulted. */
export interface SshCommandLine {
  destination: Destination;
  /** `-l` */
  login?: string;
  /** `-p` */
  port?: number;
  /** `-i`, in order */
  identityFiles: string[];
  /** `-o Key=Value`, in order */
  options: string[];
  /** `-J`, overriding ProxyJump */
  jump?: string;
  password?: string;
  passphrase?: string;
}

export interface Environment {
  localUser: string;
  homeDir: string;
  env: Record<string, string | undefined>;
  /** The environment of commands ftpfwd runs (ProxyCommand): `env` without ftpfwd's own secrets; default `env`. */
  commandEnv?: NodeJS.ProcessEnv;
}

export interface ResolvedSshTarget {
  ssh: SshOptions;
  /** BatchMode=yes on the target: never ask a person anything. */
  batchMode: boolean;
  /** Options ftpfwd does not implement, for one warning line each. */
  unsupported: UnsupportedSshOption[];
}

/** OpenSSH's own limit on chained jump hosts is far above anything sane; a loop must end. */
const MAX_JUMP_HOSTS = 8;

/** `-o Key=Value` (or `Key Value`) into ssh_config overrides; a key given twice keeps every value, first first. */
export function parseOptionOverrides(entries: readonly string[]): Record<string, string | string[]> {
  const overrides: Record<string, string | string[]> = {};
  for (const entry of entries) {
    const match = /^\s*([A-Za-z0-9]+)\s*(?:=\s*|\s+)(.*?)\s*$/.exec(entry);
    if (!match || match[2] === '') throw new FtpfwdError('ERR_FTPFWD_USAGE', `bad -o option ${JSON.stringify(entry)}: use Key=Value`);
    const key = match[1]!;
    const previous = overrides[key];
    overrides[key] = previous === undefined ? match[2]! : [...(Array.isArray(previous) ? previous : [previous]), match[2]!];
  }
  return overrides;
}

/** `viaProxyCommand`: the hop is the first of its chain, so a ProxyCommand of its own applies. */
function hopFromConfig(resolved: ResolvedSshConfig, environment: Environment, explicitIdentityFiles: string[], viaProxyCommand: boolean): SshHopOptions {
  const { homeDir, env, localUser } = environment;
  // IdentitiesOnly does not turn the agent off: it narrows its keys to the identity files.
  const agentSocket =
    resolved.identityAgent === 'none'
      ? undefined
      : resolved.identityAgent === undefined || resolved.identityAgent === 'SSH_AUTH_SOCK'
        ? env['SSH_AUTH_SOCK'] || undefined
        : resolved.identityAgent;
  return {
    host: resolved.hostName,
    port: resolved.port ?? 22,
    username: resolved.user ?? localUser,
    identityFiles: explicitIdentityFiles,
    optionalIdentityFiles: resolved.identityFiles,
    // OpenSSH adds its default keys only when no IdentityFile was given at all.
    useDefaultIdentities: explicitIdentityFiles.length === 0 && !resolved.identityFilesConfigured,
    agentSocket,
    identitiesOnly: resolved.identitiesOnly ?? false,
    certificateFiles: resolved.certificateFiles,
    authMethods: {
      publicKey: resolved.pubkeyAuthentication ?? true,
      keyboardInteractive: resolved.kbdInteractiveAuthentication ?? true,
      password: resolved.passwordAuthentication ?? true,
    },
    knownHostsFiles: [
      ...(resolved.userKnownHostsFiles ?? [join(homeDir, '.ssh', 'known_hosts'), join(homeDir, '.ssh', 'known_hosts2')]),
      ...(resolved.globalKnownHostsFiles ?? ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']),
    ],
    strictHostKeyChecking: resolved.strictHostKeyChecking ?? 'yes',
    hashKnownHosts: resolved.hashKnownHosts ?? false,
    ...(resolved.connectTimeout === undefined ? {} : { connectTimeoutMs: resolved.connectTimeout * 1000 }),
    // OpenSSH leaves keepalives off by default; a long-running forwarder
    // must notice a dead link to reconnect, so ours default to 15 s.
    ...(resolved.serverAliveInterval === undefined ? {} : { keepaliveIntervalMs: resolved.serverAliveInterval * 1000 }),
    ...(resolved.serverAliveCountMax === undefined ? {} : { keepaliveCountMax: resolved.serverAliveCountMax }),
    ...(viaProxyCommand && resolved.proxyCommand !== undefined
      ? { proxyCommand: { command: resolved.proxyCommand, shell: env['SHELL'] || '/bin/sh', env: environment.commandEnv ?? env } }
      : {}),
  };
}

/**
 * Resolves the target and its jump hosts as `ssh` would: command-line
 * values first, then `-o`, then ssh_config (first match wins), each jump
 * host with its own config block. `-o`, `-i` and the password apply to the
 * target only, as with OpenSSH's ProxyJump.
 */
export function resolveSshTarget(config: ParsedSshConfig, commandLine: SshCommandLine, environment: Environment): ResolvedSshTarget {
  const context = { localUser: environment.localUser, homeDir: environment.homeDir, env: environment.env };
  const overrides = parseOptionOverrides(commandLine.options);
  if (commandLine.jump !== undefined && Object.entries(overrides).some(([key, value]) => key.toLowerCase() === 'proxycommand' && [value].flat()[0]!.toLowerCase() !== 'none')) {
    throw new FtpfwdError('ERR_FTPFWD_USAGE', 'Cannot specify -J with ProxyCommand');
  }
  const target = resolveHost(config, commandLine.destination.host, {
    ...context,
    overrides,
    ...((commandLine.login ?? commandLine.destination.user) === undefined ? {} : { userOverride: commandLine.login ?? commandLine.destination.user }),
    ...((commandLine.port ?? commandLine.destination.port) === undefined ? {} : { portOverride: commandLine.port ?? commandLine.destination.port }),
  });
  const unsupported = [...target.unsupported];
  // -J replaces both ProxyJump and ProxyCommand, as in ssh.c.
  const hop = hopFromConfig(target, environment, commandLine.identityFiles, commandLine.jump === undefined);
  const jumpHosts = resolveJumpChain(config, commandLine.jump ?? target.proxyJump, environment, unsupported, 0);
  return {
    ssh: {
      ...hop,
      ...(commandLine.password === undefined ? {} : { password: commandLine.password }),
      ...(commandLine.passphrase === undefined ? {} : { passphrase: commandLine.passphrase }),
      jumpHosts: jumpHosts.map((jump) => (commandLine.passphrase === undefined ? jump : { ...jump, passphrase: commandLine.passphrase })),
    },
    batchMode: target.batchMode ?? false,
    unsupported,
  };
}

/** `-J a,b` / ProxyJump: each entry is `[user@]host[:port]`, and may itself have a ProxyJump. */
function resolveJumpChain(config: ParsedSshConfig, proxyJump: string | undefined, environment: Environment, unsupported: UnsupportedSshOption[], depth: number): SshHopOptions[] {
  if (proxyJump === undefined || proxyJump === 'none' || proxyJump === '') return [];
  const chain: SshHopOptions[] = [];
  for (const spec of proxyJump.split(',')) {
    if (depth + chain.length >= MAX_JUMP_HOSTS) {
      throw new FtpfwdError('ERR_FTPFWD_CONFIG', `more than ${MAX_JUMP_HOSTS} jump hosts (is there a ProxyJump loop?)`);
    }
    const destination = parseDestination(spec.includes('://') ? spec : `ssh://${spec}`);
    const resolved = resolveHost(config, destination.host, {
      localUser: environment.localUser,
      homeDir: environment.homeDir,
      env: environment.env,
      ...(destination.user === undefined ? {} : { userOverride: destination.user }),
      ...(destination.port === undefined ? {} : { portOverride: destination.port }),
    });
    unsupported.push(...resolved.unsupported);
    // A jump host's own ProxyJump (or ProxyCommand) is how it is reached, for the first entry only, as ssh does.
    const first = chain.length === 0;
    if (first) chain.push(...resolveJumpChain(config, resolved.proxyJump, environment, unsupported, depth + 1));
    chain.push(hopFromConfig(resolved, environment, [], first));
  }
  return chain;
}
