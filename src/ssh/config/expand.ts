/** `~` and `%` token expansion (misc.c tilde_expand_filename(), percent_expand(), dollar_expand()). */
import { lineError } from './source.js';
import type { SshConfigSource } from './types.js';

/** `~`, `~/x`, `~user` and `~user/x` (the local user only), as misc.c tilde_expand_filename(). */
export function expandTilde(path: string, homeDir: string, localUser: string, source: SshConfigSource): string {
  if (!path.startsWith('~')) return path;
  const slash = path.indexOf('/');
  const user = path.slice(1, slash === -1 ? undefined : slash);
  if (user !== '' && user !== localUser) throw lineError(source, `cannot expand ~${user}: only the local user's home directory is known`);
  const rest = slash === -1 ? '' : path.slice(slash + 1).replace(/^\/+/, '');
  return `${homeDir}${homeDir.endsWith('/') ? '' : '/'}${rest}`;
}

/** Include's `~` is glob(3)'s GLOB_TILDE: `~` and `~/` only mean the user's home here. */
export function expandTildeForInclude(path: string, homeDir: string, source: SshConfigSource): string {
  const slash = path.indexOf('/');
  const user = path.slice(1, slash === -1 ? undefined : slash);
  if (user !== '') throw lineError(source, `bad include path ${path}: only ~/ is supported`);
  return `${homeDir.replace(/\/+$/, '')}${slash === -1 ? '' : path.slice(slash)}`;
}

/**
 * misc.c percent_expand() and, with `env`, dollar_expand() in the same pass:
 * `%%`, `%x` for each given token, `${NAME}`. Unknown tokens and unset
 * variables are errors, as in ssh.
 */
export function expandPercent(text: string, tokens: Readonly<Record<string, string>>, env: Record<string, string | undefined> | undefined, source: SshConfigSource, what: string): string {
  let out = '';
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    if (char === '%') {
      const token = text[++index];
      if (token === undefined) throw lineError(source, `${what}: invalid format (trailing %)`);
      if (token === '%') {
        out += '%';
        continue;
      }
      const value = tokens[token];
      if (value === undefined) throw lineError(source, `${what}: unknown key %${token}`);
      out += value;
    } else if (char === '$' && env !== undefined && text[index + 1] === '{') {
      const close = text.indexOf('}', index + 2);
      if (close === -1) throw lineError(source, `${what}: environment variable without closing brace`);
      const name = text.slice(index + 2, close);
      const value = env[name];
      if (name === '' || value === undefined) throw lineError(source, `${what}: environment variable \${${name}} is not set`);
      out += value;
      index = close;
    } else {
      out += char;
    }
  }
  return out;
}
