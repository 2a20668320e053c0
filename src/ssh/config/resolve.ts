/** Resolution for one destination (`ssh -G alias`). */
import { createHash } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { FtpfwdError } from '../../errors.js';
import { walkEntries, type Obtained, type Sourced, type Walk } from './evaluate.js';
import { expandPercent, expandTilde } from './expand.js';
import { overrideEntries } from './parse.js';
import { COMMAND_LINE, lineError } from './source.js';
import type { FlagKey, ParsedSshConfig, ResolvedSshConfig, ResolveHostContext } from './types.js';

const DEFAULT_PORT = 22;

/** The user's file, then the system's: each starts outside any Host block, as readconf.c reads each file. */
function walkConfig(config: ParsedSshConfig, walk: Walk): void {
  walkEntries(config.entries, walk, false);
  if (config.system !== undefined) walkEntries(config.system.entries, walk, false);
}

/** ssh.c valid_hostname(): characters a shell or ProxyCommand could misread. */
function validAlias(alias: string): boolean {
  return alias !== '' && !alias.startsWith('-') && !/['`"$\\;&<>|(){},\s\x00-\x1f\x7f]/.test(alias);
}

/**
 * Resolves the options for one destination (`ssh -G alias`): first obtained
 * value wins; command-line user/port, then `-o` options, then the file.
 * Pure apart from os.hostname()/process.getuid() when the context omits them.
 */
export function resolveHost(config: ParsedSshConfig, alias: string, context: ResolveHostContext): ResolvedSshConfig {
  if (!validAlias(alias)) {
    throw new FtpfwdError('ERR_FTPFWD_USAGE', `hostname ${JSON.stringify(alias)} contains invalid characters`, { details: { host: alias } });
  }
  const obtained: Obtained = { strings: {}, flags: {}, times: {}, lists: {}, identityFiles: [], certificateFiles: [], unsupportedSlots: new Map() };
  const walk: Walk = {
    alias,
    host: alias,
    finalPass: false,
    wantFinalPass: false,
    localUser: context.localUser,
    obtained,
    unsupported: [],
    reported: new Set(),
  };
  if (context.userOverride !== undefined) obtained.strings.user = { value: context.userOverride, source: { file: COMMAND_LINE } };
  if (context.portOverride !== undefined) {
    if (!Number.isInteger(context.portOverride) || context.portOverride < 1 || context.portOverride > 65535) {
      throw new FtpfwdError('ERR_FTPFWD_USAGE', `Bad port '${context.portOverride}'`);
    }
    obtained.port = context.portOverride;
  }
  walkEntries(overrideEntries(context.overrides ?? {}), walk, false);
  walkConfig(config, walk);

  const hostNameEntry = obtained.strings.hostName;
  const hostName = (hostNameEntry === undefined ? alias : expandPercent(hostNameEntry.value, { h: alias }, undefined, hostNameEntry.source, 'HostName')).toLowerCase();

  if (walk.wantFinalPass || obtained.unsupportedSlots.get('canonicalizehostname') === false) {
    // ssh.c re-parses the configuration with the resolved name (and `Match canonical`/`final` true).
    obtained.strings.hostName = { value: hostName, source: { file: COMMAND_LINE } };
    walk.finalPass = true;
    walk.host = hostName;
    walkConfig(config, walk);
  }

  const port = obtained.port;
  const user = obtained.strings.user?.value;
  const localHostName = context.localHostName ?? osHostname();
  const proxy = obtained.proxy;
  const proxyJump = proxy !== undefined && !proxy.value.command && proxy.value.value.toLowerCase() !== 'none' ? proxy.value.value : undefined;
  const portText = String(port ?? DEFAULT_PORT);
  const remoteUser = user ?? context.localUser;
  const uid = context.localUid ?? process.getuid?.();
  // ssh.c DEFAULT_CLIENT_PERCENT_EXPAND_ARGS
  const tokens: Record<string, string> = {
    C: createHash('sha1').update(`${localHostName}${hostName}${portText}${remoteUser}${proxyJump ?? ''}`).digest('hex'),
    L: localHostName.split('.')[0]!,
    k: obtained.strings.hostKeyAlias?.value ?? alias,
    l: localHostName,
    n: alias,
    p: portText,
    d: context.homeDir,
    h: hostName,
    r: remoteUser,
    u: context.localUser,
    j: proxyJump ?? '',
    ...(uid === undefined ? {} : { i: String(uid) }),
  };
  const expandPath = (sourced: Sourced<string>, what: string): string =>
    expandPercent(expandTilde(sourced.value, context.homeDir, context.localUser, sourced.source), tokens, context.env, sourced.source, what);

  const resolved: ResolvedSshConfig = {
    hostName,
    identityFiles: obtained.identityFiles.filter((file) => file.value.toLowerCase() !== 'none').map((file) => expandPath(file, 'IdentityFile')),
    identityFilesConfigured: obtained.identityFiles.length > 0,
    certificateFiles: obtained.certificateFiles.filter((file) => file.value.toLowerCase() !== 'none').map((file) => expandPath(file, 'CertificateFile')),
    unsupported: walk.unsupported,
  };
  if (user !== undefined) resolved.user = user;
  if (port !== undefined) resolved.port = port;
  const agent = obtained.strings.identityAgent;
  if (agent !== undefined) resolved.identityAgent = resolveIdentityAgent(agent, context, expandPath);
  if (proxyJump !== undefined) resolved.proxyJump = proxyJump;
  if (proxy !== undefined && proxy.value.command && proxy.value.value.toLowerCase() !== 'none') {
    // sshconnect.c expand_proxy_command(): these tokens only, and no ${ENV} (the shell expands variables).
    const proxyTokens = { h: hostName, k: obtained.strings.hostKeyAlias?.value ?? alias, n: alias, p: portText, r: remoteUser };
    resolved.proxyCommand = expandPercent(proxy.value.value, proxyTokens, undefined, proxy.source, 'ProxyCommand');
  }
  const userKnownHosts = obtained.lists.userKnownHostsFiles;
  if (userKnownHosts !== undefined) {
    resolved.userKnownHostsFiles = isNone(userKnownHosts.value) ? [] : userKnownHosts.value.map((file) => expandPath({ value: file, source: userKnownHosts.source }, 'UserKnownHostsFile'));
  }
  const globalKnownHosts = obtained.lists.globalKnownHostsFiles;
  if (globalKnownHosts !== undefined) resolved.globalKnownHostsFiles = isNone(globalKnownHosts.value) ? [] : [...globalKnownHosts.value];
  if (obtained.strictHostKeyChecking !== undefined) resolved.strictHostKeyChecking = obtained.strictHostKeyChecking;
  if (obtained.times.serverAliveInterval !== undefined) resolved.serverAliveInterval = obtained.times.serverAliveInterval;
  if (obtained.serverAliveCountMax !== undefined) resolved.serverAliveCountMax = obtained.serverAliveCountMax;
  if (obtained.times.connectTimeout !== undefined) resolved.connectTimeout = obtained.times.connectTimeout;
  const flags: readonly FlagKey[] = ['identitiesOnly', 'batchMode', 'passwordAuthentication', 'kbdInteractiveAuthentication', 'pubkeyAuthentication', 'hashKnownHosts'];
  for (const key of flags) {
    const flag = obtained.flags[key];
    if (flag !== undefined) resolved[key] = flag;
  }
  return resolved;
}

function isNone(list: readonly string[]): boolean {
  return list.length === 1 && list[0]!.toLowerCase() === 'none';
}

/** `none` and `SSH_AUTH_SOCK` as they are; `$NAME` is that variable's value (no agent when unset); else an expanded path. */
function resolveIdentityAgent(agent: Sourced<string>, context: ResolveHostContext, expandPath: (sourced: Sourced<string>, what: string) => string): string {
  const { value } = agent;
  if (value === 'none' || value === 'SSH_AUTH_SOCK') return value;
  if (value.startsWith('$') && !value.startsWith('${')) {
    const name = value.slice(1);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw lineError(agent.source, `Invalid environment name ${value}.`);
    return context.env[name] ?? 'none';
  }
  return expandPath(agent, 'IdentityAgent');
}
