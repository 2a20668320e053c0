/**
 * The bridge's file namespace. FTP clients see virtual paths: absolute,
 * `/`-separated, normalised, with `/` standing for the session's root on
 * the SSH server (`--sftp-root`, or the server's `/` without it). Every
 * path a client names goes through resolvePath, so `..` can climb to the
 * virtual `/` but never above it, whatever the spelling (`a/../../..`,
 * `//..`, `/./..`). Symbolic links are the I/O layer's business: it checks
 * the server's realpath against the root (see isInsideRoot).
 */

/** Normalises `argument` against the working directory `cwd` (itself virtual). */
export function resolvePath(cwd: string, argument: string): string {
  const joined = argument.startsWith('/') ? argument : `${cwd}/${argument}`;
  const parts: string[] = [];
  for (const part of joined.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

/** The server-side path of a virtual path under `root` (an absolute server path). */
export function toRemotePath(root: string, virtual: string): string {
  if (root === '/') return virtual;
  return virtual === '/' ? root : `${trimTrailingSlash(root)}${virtual}`;
}

/** The virtual path of a server-side path, or null when it lies outside `root`. */
export function toVirtualPath(root: string, remote: string): string | null {
  const base = trimTrailingSlash(root);
  if (base === '') return remote.startsWith('/') ? resolvePath('/', remote) : null;
  if (remote === base) return '/';
  if (!remote.startsWith(`${base}/`)) return null;
  return resolvePath('/', remote.slice(base.length));
}

/** Whether a server-side absolute path (as the server's realpath gives it) is `root` or below it. */
export function isInsideRoot(root: string, remote: string): boolean {
  return toVirtualPath(root, remote) !== null;
}

export function parentPath(virtual: string): string {
  const slash = virtual.lastIndexOf('/');
  return slash <= 0 ? '/' : virtual.slice(0, slash);
}

export function baseName(virtual: string): string {
  return virtual.slice(virtual.lastIndexOf('/') + 1);
}

/** Joins a virtual directory and one name. */
export function joinPath(directory: string, name: string): string {
  return directory === '/' ? `/${name}` : `${directory}/${name}`;
}

function trimTrailingSlash(path: string): string {
  return path.replace(/\/+$/, '');
}

/** A pathname inside a reply (RFC 959 appendix II): quoted, with every `"` doubled. */
export function quoteForReply(path: string): string {
  return `"${path.replace(/"/g, '""')}"`;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const IAC = 0xff;

/**
 * The pathname argument of a command, as text. Arguments arrive as bytes
 * (kept as latin1 by the command parser); names are UTF-8 (RFC 2640), a
 * Telnet IAC inside one is doubled (RFC 959) and is undoubled here. Bytes
 * that are not UTF-8 cannot name a file over SFTP, whose paths are text:
 * null.
 */
export function decodePathArgument(argument: string): string | null {
  const raw = Buffer.from(argument, 'latin1');
  const bytes: number[] = [];
  for (let index = 0; index < raw.length; index += 1) {
    const byte = raw[index]!;
    bytes.push(byte);
    if (byte === IAC && raw[index + 1] === IAC) index += 1;
  }
  try {
    return UTF8.decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

/** Whether a name can travel in a listing line or a reply: CR and LF would end the line early. */
export function isPrintableName(name: string): boolean {
  return !/[\r\n\0]/.test(name);
}

/** `*`, `?` and `[...]` in the last component of a LIST/NLST argument, as shells and most FTP servers expand them. */
export function hasGlob(name: string): boolean {
  return /[*?[]/.test(name);
}

/**
 * Matches a name against a shell-style pattern (`*`, `?`, `[abc]`,
 * `[a-z]`, `[!x]`); a dot at the start must be matched explicitly, as in
 * shells. A set of positions is walked
 * token by token, so a hostile pattern cannot cause a backtracking blow-up.
 */
export function matchGlob(pattern: string, name: string): boolean {
  if (name.startsWith('.') && !pattern.startsWith('.')) return false;
  const tokens = tokenizeGlob(pattern);
  const chars = [...name];
  // Positions of `name` reachable after each token, as a set (an NFA walk).
  let states = new Set<number>([0]);
  for (const token of tokens) {
    const next = new Set<number>();
    for (const position of states) {
      if (token.kind === 'star') {
        for (let end = position; end <= chars.length; end += 1) next.add(end);
      } else if (position < chars.length && tokenMatches(token, chars[position]!)) {
        next.add(position + 1);
      }
    }
    states = next;
    if (states.size === 0) return false;
  }
  return states.has(chars.length);
}

type GlobToken = { kind: 'star' } | { kind: 'any' } | { kind: 'char'; char: string } | { kind: 'class'; negated: boolean; ranges: Array<[string, string]> };

function tokenizeGlob(pattern: string): GlobToken[] {
  const tokens: GlobToken[] = [];
  const chars = [...pattern];
  for (let index = 0; index < chars.length; index += 1) {
    const char = chars[index]!;
    if (char === '*') {
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' });
    } else if (char === '?') tokens.push({ kind: 'any' });
    else if (char === '[') {
      const close = chars.indexOf(']', index + 2);
      if (close === -1) {
        tokens.push({ kind: 'char', char });
        continue;
      }
      let body = chars.slice(index + 1, close);
      const negated = body[0] === '!' || body[0] === '^';
      if (negated) body = body.slice(1);
      const ranges: Array<[string, string]> = [];
      for (let at = 0; at < body.length; at += 1) {
        if (body[at + 1] === '-' && at + 2 < body.length) {
          ranges.push([body[at]!, body[at + 2]!]);
          at += 2;
        } else ranges.push([body[at]!, body[at]!]);
      }
      tokens.push({ kind: 'class', negated, ranges });
      index = close;
    } else tokens.push({ kind: 'char', char });
  }
  return tokens;
}

function tokenMatches(token: GlobToken, char: string): boolean {
  switch (token.kind) {
    case 'any':
      return true;
    case 'char':
      return token.char === char;
    case 'class': {
      const inside = token.ranges.some(([from, to]) => char >= from && char <= to);
      return inside !== token.negated;
    }
    case 'star':
      return true;
  }
}
