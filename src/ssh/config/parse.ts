/**
 * Lexing and parsing glue over the `ssh-config` package: its directives in
 * file order with line numbers, arguments split as OpenSSH splits them,
 * quoting it would misread refused, and each line turned into an entry.
 */
import SSHConfig, { LineType, type Directive, type Line } from 'ssh-config';
import { errorMessage } from '../../errors.js';
import { keywordSpec } from './keywords.js';
import { COMMAND_LINE, lineError } from './source.js';
import type { SshConfigEntry, SshConfigSource, SshMatchCriterion } from './types.js';
import { interpretOption } from './values.js';


/** Keywords whose values the ssh-config package splits into words (its RE_MULTI_VALUE_DIRECTIVE); others come as one string. */
const LIBRARY_MULTI_VALUE = new Set([
  'globalknownhostsfile', 'host', 'ipqos', 'sendenv', 'userknownhostsfile', 'proxycommand', 'knownhostscommand', 'match', 'canonicaldomains', 'include',
]);

function directiveArgs(directive: Directive, keyword: string): string[] {
  const { value } = directive;
  if (Array.isArray(value)) return value.map((item) => item.val);
  if (LIBRARY_MULTI_VALUE.has(keyword) || directive.quoted === true) return [value];
  return value === '' ? [] : value.split(/[ \t]+/);
}

function countNewlines(text: string): number {
  let count = 0;
  for (const char of text) if (char === '\n' || char === '\r') count++;
  // \r\n is one line break
  return count - (text.match(/\r\n/g)?.length ?? 0);
}

/** The directives in file order with their line numbers (the package keeps the whitespace around each line). */
function directivesWithLines(config: readonly Line[]): Array<{ directive: Directive; line: number }> {
  const result: Array<{ directive: Directive; line: number }> = [];
  let breaks = 0;
  const visit = (lines: readonly Line[]): void => {
    for (const node of lines) {
      breaks += countNewlines(node.before);
      if (node.type === LineType.DIRECTIVE) {
        result.push({ directive: node, line: breaks + 1 });
        breaks += countNewlines(node.param);
      }
      breaks += countNewlines(node.after);
      if ('config' in node) visit(node.config);
    }
  };
  visit(config);
  return result;
}

function parseWithLibrary(text: string, path: string): SSHConfig {
  try {
    return SSHConfig.parse(text);
  } catch (error) {
    // The package does not say which line failed: find it by parsing line by line.
    const lines = text.split(/\r\n|\r|\n/);
    let line: number | undefined;
    for (let index = 0; index < lines.length && line === undefined; index++) {
      try {
        SSHConfig.parse(lines[index]!);
      } catch {
        line = index + 1;
      }
    }
    throw lineError(line === undefined ? { file: path } : { file: path, line }, `cannot parse: ${errorMessage(error)}`, error);
  }
}

export interface UnresolvedInclude {
  kind: 'pending-include';
  patterns: string[];
  source: SshConfigSource;
}

export type PendingEntry = Exclude<SshConfigEntry, { kind: 'include' }> | UnresolvedInclude;

/**
 * OpenSSH reads `#` as a comment only at the start of a word and accepts
 * single quotes; the ssh-config package cuts a value at any `#` and keeps
 * single quotes. Lines whose values are used are refused rather than misread.
 */
function checkQuoting(rawLine: string, source: SshConfigSource): void {
  let quoted = false;
  for (let index = 0; index < rawLine.length; index++) {
    const char = rawLine[index]!;
    if (char === '\\') index++;
    else if (char === '"') quoted = !quoted;
    else if (!quoted && char === "'") throw lineError(source, 'single quotes are not supported: use double quotes');
    else if (!quoted && char === '#') {
      if (index === 0 || /[ \t=]/.test(rawLine[index - 1]!)) return; // a comment
      throw lineError(source, "a '#' inside a value must be in double quotes");
    }
  }
}

/**
 * readconf.c keeps a ProxyCommand as the rest of its line, for the shell to
 * read: quotes, `#` and all. (The package would split it into words.)
 */
function restOfLine(rawLine: string): string {
  return rawLine.replace(/^[ \t]*[^ \t=]+[ \t=]*/, '').replace(/[ \t\f]+$/, '');
}

/** One file's lines as entries, values checked; Include left for the loader. */
export function parseConfigText(text: string, path: string): PendingEntry[] {
  const entries: PendingEntry[] = [];
  const rawLines = text.split(/\r\n|\r|\n/);
  for (const { directive, line } of directivesWithLines(parseWithLibrary(text, path))) {
    const source: SshConfigSource = { file: path, line };
    const written = directive.param.split(/\s/)[0]!;
    if (written !== directive.param) throw lineError(source, `no argument after keyword "${written.toLowerCase()}"`);
    const keyword = written.toLowerCase();
    const rawLine = rawLines[line - 1] ?? '';
    if (keyword === 'proxycommand') {
      entries.push(parseEntry(written, [restOfLine(rawLine)], source));
      continue;
    }
    if (keywordSpec(keyword, written)?.kind === 'supported') checkQuoting(rawLine, source);
    entries.push(parseEntry(written, directiveArgs(directive, keyword), source));
  }
  return entries;
}

function parseEntry(written: string, args: string[], source: SshConfigSource): PendingEntry {
  const keyword = written.toLowerCase();
  if (args.length === 0) throw lineError(source, `no argument after keyword "${keyword}"`);
  if (args.some((arg) => arg === '')) throw lineError(source, `keyword ${keyword} empty argument`);
  switch (keyword) {
    case 'host':
      return { kind: 'host', patterns: args, source };
    case 'match':
      return { kind: 'match', criteria: parseMatchCriteria(args, source), source };
    case 'include':
      return { kind: 'pending-include', patterns: args, source };
    default:
      return { kind: 'option', keyword, args, value: interpretOption(keyword, written, args, source), source };
  }
}

const MATCH_ATTRIBUTES_WITH_ARGUMENT = new Set(['host', 'originalhost', 'user', 'localuser']);
/** Match attributes of OpenSSH (some newer than 9.x) that are not evaluated here. */
const MATCH_ATTRIBUTES_UNSUPPORTED = new Set(['exec', 'tagged', 'localnetwork', 'version', 'sessiontype', 'command']);

/** readconf.c match_cfg_line(), parsing half. */
function parseMatchCriteria(args: readonly string[], source: SshConfigSource): SshMatchCriterion[] {
  const criteria: SshMatchCriterion[] = [];
  let attributes = 0;
  for (let index = 0; index < args.length; index++) {
    const written = args[index]!;
    const negate = written.startsWith('!');
    const name = (negate ? written.slice(1) : written).toLowerCase();
    if (name === 'all') {
      if (attributes > 1 || index + 1 < args.length) throw lineError(source, `'${written}' cannot be combined with other Match attributes`);
      criteria.push({ attribute: 'all', negate });
      return criteria;
    }
    attributes++;
    if (name === 'canonical' || name === 'final') {
      criteria.push({ attribute: name, negate });
      continue;
    }
    const known = MATCH_ATTRIBUTES_WITH_ARGUMENT.has(name) || MATCH_ATTRIBUTES_UNSUPPORTED.has(name);
    if (!known) throw lineError(source, `Unsupported Match attribute ${written}`);
    const argument = args[index + 1];
    if (argument === undefined || argument === '') throw lineError(source, `Missing Match criteria for ${written}`);
    index++;
    if (name === 'host' || name === 'originalhost' || name === 'user' || name === 'localuser') {
      criteria.push({ attribute: name, negate, patterns: argument });
    } else {
      criteria.push({ attribute: 'unsupported', name, negate, argument });
    }
  }
  if (attributes === 0) throw lineError(source, 'One or more attributes required for Match');
  return criteria;
}

/** `-o Key=Value` options as entries, parsed by the same rules as the file. */
export function overrideEntries(overrides: Record<string, string | string[]>): SshConfigEntry[] {
  const entries: SshConfigEntry[] = [];
  for (const [key, raw] of Object.entries(overrides)) {
    for (const value of Array.isArray(raw) ? raw : [raw]) {
      const source: SshConfigSource = { file: COMMAND_LINE, option: `${key}=${value}` };
      if (!/^[A-Za-z0-9]+$/.test(key)) throw lineError(source, `bad option name ${JSON.stringify(key)}`);
      if (/[\r\n]/.test(value)) throw lineError(source, 'line breaks are not allowed');
      const [directive] = directivesWithLines(parseWithLibraryForOption(`${key} ${value}`, source));
      if (directive === undefined) throw lineError(source, `no argument after keyword "${key.toLowerCase()}"`);
      const keyword = key.toLowerCase();
      if (keyword === 'host' || keyword === 'match' || keyword === 'include') {
        throw lineError(source, `${key} directive not supported as a command-line option`);
      }
      const entry = parseEntry(key, keyword === 'proxycommand' ? [value.trim()] : directiveArgs(directive.directive, keyword), source);
      if (entry.kind !== 'option') throw lineError(source, `${key} directive not supported as a command-line option`);
      entries.push(entry);
    }
  }
  return entries;
}

function parseWithLibraryForOption(text: string, source: SshConfigSource): SSHConfig {
  try {
    return SSHConfig.parse(text);
  } catch (error) {
    throw lineError(source, `cannot parse: ${errorMessage(error)}`, error);
  }
}
