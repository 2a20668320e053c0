/**
 * Host and Match evaluation: the file's entries walked for one destination
 * as readconf.c does, each keyword keeping its first obtained value.
 */
import { matchSshPattern } from '../patterns.js';
import { expandPercent } from './expand.js';
import { COMMAND_LINE, lineError } from './source.js';
import type { FlagKey, ListKey, SshConfigEntry, SshConfigSource, SshMatchCriterion, StrictHostKeyCheckingValue, StringKey, TimeKey, UnsupportedSshOption } from './types.js';

/** SSH_MAX_IDENTITY_FILES, and SSH_MAX_CERTIFICATE_FILES too */
const MAX_IDENTITY_FILES = 100;

/** match_pattern_list(): comma-separated, `!` negates; 1 match, 0 no match, -1 negated match. */
export function matchSshPatternList(text: string, list: string, lowerCasePatterns: boolean): -1 | 0 | 1 {
  let positive = false;
  for (const item of list.split(',')) {
    const negated = item.startsWith('!');
    let pattern = negated ? item.slice(1) : item;
    if (lowerCasePatterns) pattern = pattern.toLowerCase();
    if (matchSshPattern(text, pattern)) {
      if (negated) return -1;
      positive = true;
    }
  }
  return positive ? 1 : 0;
}

/** A `Host` line: some pattern matches and no negated one does. */
export function hostLineMatches(patterns: readonly string[], host: string): boolean {
  let active = false;
  for (const written of patterns) {
    const negated = written.startsWith('!');
    if (matchSshPattern(host, negated ? written.slice(1) : written)) {
      if (negated) return false;
      active = true;
    }
  }
  return active;
}

export interface Sourced<T> {
  value: T;
  source: SshConfigSource;
}

export interface Obtained {
  strings: Partial<Record<StringKey, Sourced<string>>>;
  port?: number;
  flags: Partial<Record<FlagKey, boolean>>;
  times: Partial<Record<TimeKey, number>>;
  serverAliveCountMax?: number;
  lists: Partial<Record<ListKey, Sourced<string[]>>>;
  strictHostKeyChecking?: StrictHostKeyCheckingValue;
  identityFiles: Array<Sourced<string>>;
  certificateFiles: Array<Sourced<string>>;
  proxy?: Sourced<{ command: boolean; value: string }>;
  /** Unsupported single-valued keywords already obtained, with whether the value was inert. */
  unsupportedSlots: Map<string, boolean>;
}

export interface Walk {
  alias: string;
  /** What `Host` lines match: the alias, or the resolved host name in the final pass. */
  host: string;
  finalPass: boolean;
  wantFinalPass: boolean;
  localUser: string;
  obtained: Obtained;
  unsupported: UnsupportedSshOption[];
  reported: Set<string>;
}

function report(walk: Walk, key: string, value: string, source: SshConfigSource, securityRelevant: boolean): void {
  const file = source.option === undefined ? source.file : COMMAND_LINE;
  const id = `${key}\0${value}\0${file}\0${source.line ?? ''}`;
  if (walk.reported.has(id)) return;
  walk.reported.add(id);
  walk.unsupported.push({ key, value, file, ...(source.line === undefined ? {} : { line: source.line }), securityRelevant });
}

/** The host `Match host` sees: HostName with %h expanded, else the alias. */
function matchHostName(walk: Walk): string {
  const hostName = walk.obtained.strings.hostName;
  if (walk.finalPass || hostName === undefined) return hostName?.value ?? walk.alias;
  return expandPercent(hostName.value, { h: walk.alias }, undefined, hostName.source, 'HostName');
}

/** readconf.c match_cfg_line(), evaluation half. */
function evaluateMatch(criteria: readonly SshMatchCriterion[], source: SshConfigSource, walk: Walk, neverMatch: boolean): boolean {
  let result = true;
  for (const criterion of criteria) {
    let matched: boolean;
    switch (criterion.attribute) {
      case 'all':
        return result && !criterion.negate;
      case 'canonical':
      case 'final':
        if (criterion.attribute === 'final' && !walk.finalPass) walk.wantFinalPass = true;
        matched = walk.finalPass;
        break;
      case 'host':
        matched = matchSshPatternList(matchHostName(walk).toLowerCase(), criterion.patterns, true) === 1;
        break;
      case 'originalhost':
        matched = matchSshPatternList(walk.alias.toLowerCase(), criterion.patterns, true) === 1;
        break;
      case 'user':
        matched = matchSshPatternList(walk.obtained.strings.user?.value ?? walk.localUser, criterion.patterns, false) === 1;
        break;
      case 'localuser':
        matched = matchSshPatternList(walk.localUser, criterion.patterns, false) === 1;
        break;
      case 'unsupported':
        // OpenSSH skips `exec` once the line has already failed; otherwise the outcome is unknown here,
        // so the block is not applied and the line is reported.
        if (!result && criterion.name === 'exec') continue;
        if (!neverMatch) report(walk, 'Match', `${criterion.negate ? '!' : ''}${criterion.name} ${criterion.argument}`, source, true);
        result = false;
        continue;
    }
    if (matched === criterion.negate) result = false;
  }
  return result;
}

function applyOption(entry: Extract<SshConfigEntry, { kind: 'option' }>, walk: Walk, active: boolean): void {
  const { value, source } = entry;
  const obtained = walk.obtained;
  if (value.kind === 'unknown') {
    const ignored = obtained.strings.ignoreUnknown;
    if (ignored !== undefined && matchSshPatternList(entry.keyword, ignored.value, true) === 1) return;
    throw lineError(source, `Bad configuration option: ${entry.keyword}`);
  }
  if (!active) return;
  switch (value.kind) {
    case 'string':
      if (obtained.strings[value.key] !== undefined) return;
      obtained.strings[value.key] = { value: value.value, source };
      // Used for %k, but ftpfwd checks known_hosts under the host name.
      if (value.key === 'hostKeyAlias') report(walk, 'HostKeyAlias', value.value, source, true);
      return;
    case 'port':
      obtained.port ??= value.value;
      return;
    case 'flag':
      obtained.flags[value.key] ??= value.value;
      return;
    case 'time':
      if (value.value !== undefined) obtained.times[value.key] ??= value.value;
      return;
    case 'count':
      obtained.serverAliveCountMax ??= value.value;
      return;
    case 'list':
      obtained.lists[value.key] ??= { value: value.value, source };
      return;
    case 'strictHostKeyChecking':
      obtained.strictHostKeyChecking ??= value.value;
      return;
    case 'identityFile':
      // readconf.c add_identity_file(): an identical path is ignored.
      if (obtained.identityFiles.some((file) => file.value === value.value)) return;
      if (obtained.identityFiles.length >= MAX_IDENTITY_FILES) throw lineError(source, `Too many identity files specified (max ${MAX_IDENTITY_FILES})`);
      obtained.identityFiles.push({ value: value.value, source });
      return;
    case 'certificateFile':
      // readconf.c add_certificate_file(): the same rules.
      if (obtained.certificateFiles.some((file) => file.value === value.value)) return;
      if (obtained.certificateFiles.length >= MAX_IDENTITY_FILES) throw lineError(source, `Too many certificate files specified (max ${MAX_IDENTITY_FILES})`);
      obtained.certificateFiles.push({ value: value.value, source });
      return;
    case 'proxy':
      // ProxyJump and ProxyCommand compete: whichever comes first wins.
      if (obtained.proxy !== undefined) return;
      obtained.proxy = { value: { command: value.command, value: value.value }, source };
      return;
    case 'unsupported':
      if (!value.accumulates) {
        if (obtained.unsupportedSlots.has(value.slot)) return;
        obtained.unsupportedSlots.set(value.slot, value.inert);
      }
      if (!value.inert) report(walk, value.name, entry.args.join(' '), source, value.securityRelevant);
      return;
    case 'ignored':
      return;
  }
}

export function walkEntries(entries: readonly SshConfigEntry[], walk: Walk, neverMatch: boolean): void {
  let active = !neverMatch;
  for (const entry of entries) {
    switch (entry.kind) {
      case 'host':
        active = !neverMatch && hostLineMatches(entry.patterns, walk.host);
        break;
      case 'match': {
        const matched = evaluateMatch(entry.criteria, entry.source, walk, neverMatch);
        active = !neverMatch && matched;
        break;
      }
      case 'include': {
        // An included file starts in the including line's state; its Host and Match lines do not leak out.
        const outer = active;
        for (const file of entry.files) walkEntries(file.entries, walk, neverMatch || !outer);
        active = outer;
        break;
      }
      case 'option':
        applyOption(entry, walk, active);
        break;
    }
  }
}
