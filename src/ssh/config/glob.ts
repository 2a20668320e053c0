/** glob(3) and fnmatch(3), as far as Include paths need them. */
import type { ListConfigDirectory } from './types.js';

const GLOB_MAGIC = /[*?[]/;

/** fnmatch() for one path component: `*`, `?`, `[...]`, `\` escapes; wildcards do not match a leading dot. */
function matchGlobComponent(name: string, pattern: string): boolean {
  if (name.startsWith('.') && !pattern.startsWith('.') && !pattern.startsWith('\\.')) return false;
  const match = (n: number, p: number): boolean => {
    while (p < pattern.length) {
      const char = pattern[p]!;
      if (char === '*') {
        for (let k = n; k <= name.length; k++) if (match(k, p + 1)) return true;
        return false;
      }
      if (n >= name.length) return false;
      if (char === '?') {
        n++;
        p++;
      } else if (char === '[') {
        const close = pattern.indexOf(']', p + 2);
        if (close === -1) {
          if (name[n] !== '[') return false;
          n++;
          p++;
          continue;
        }
        let set = pattern.slice(p + 1, close);
        const negated = set.startsWith('!') || set.startsWith('^');
        if (negated) set = set.slice(1);
        let found = false;
        for (let i = 0; i < set.length; i++) {
          if (set[i + 1] === '-' && i + 2 < set.length) {
            if (name[n]! >= set[i]! && name[n]! <= set[i + 2]!) found = true;
            i += 2;
          } else if (set[i] === name[n]) {
            found = true;
          }
        }
        if (found === negated) return false;
        n++;
        p = close + 1;
      } else {
        const literal = char === '\\' && p + 1 < pattern.length ? pattern[++p]! : char;
        if (name[n] !== literal) return false;
        n++;
        p++;
      }
    }
    return n === name.length;
  };
  return match(0, 0);
}

/** glob(3) for an Include path: sorted matches; a path without wildcards is returned as is (a missing file is skipped later). */
export async function expandGlob(pattern: string, listDirectory: ListConfigDirectory): Promise<string[]> {
  if (!GLOB_MAGIC.test(pattern)) return [pattern.replace(/\\(.)/g, '$1')];
  const absolute = pattern.startsWith('/');
  let bases = [absolute ? '/' : ''];
  for (const part of pattern.split('/').filter((piece) => piece !== '')) {
    const next: string[] = [];
    for (const base of bases) {
      if (!GLOB_MAGIC.test(part)) {
        next.push(`${base}${part.replace(/\\(.)/g, '$1')}/`);
        continue;
      }
      const names = await listDirectory(base === '' ? '.' : base);
      for (const name of names ?? []) if (matchGlobComponent(name, part)) next.push(`${base}${name}/`);
    }
    bases = next;
  }
  return bases.map((path) => path.slice(0, -1)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
