/**
 * OpenSSH client configuration (ssh_config(5)), resolved for one destination
 * the way `ssh -G` does it.
 *
 * Parsing of the file text is the `ssh-config` package's. Its `compute()` is
 * not used: it does not follow OpenSSH (`?` matches zero or one character,
 * `Host a,b` is split on the comma, `Include` is ignored, `Match` criteria
 * are kept in a record so repeats and `!negation` are lost, `Match host`
 * sees HostName before `%h` expansion, IdentityFile is not de-duplicated,
 * keyword case matters, and it runs `Match exec` commands and nslookup).
 * Instead the parsed lines are walked here, as readconf.c does:
 *
 * - every keyword keeps its first obtained value; IdentityFile accumulates
 *   (duplicates dropped), ProxyJump and ProxyCommand share one slot;
 * - `-l`/`-p`/user@ (userOverride, portOverride) and then `-o` options are
 *   applied before the file, so they win;
 * - `Host` patterns (whitespace-separated, `*`, `?`, `!`) are matched, case
 *   sensitively, against the alias as typed; `Match host` (comma pattern
 *   list, case-insensitive) against HostName with `%h` expanded;
 * - `Match final` or CanonicalizeHostname trigger a second pass in which
 *   `Host` matches the resolved host name and `final`/`canonical` match;
 * - the user's file and then /etc/ssh/ssh_config are read, each starting
 *   outside any Host block; `-F` replaces both;
 * - `Include` is read at load time wherever it appears (so its syntax errors
 *   are reported like ssh's), relative paths under ~/.ssh (or /etc/ssh in
 *   the system file), globbed, nested at most 16 deep; inside a block that
 *   does not apply, nothing in the included file applies either;
 * - value errors are reported for every line, applied or not, with file and
 *   line; unknown keywords are errors unless IgnoreUnknown names them.
 *
 * Not done: hostname canonicalisation (reported as unsupported),
 * `Match exec`/`tagged`/... (reported; the block is treated as not
 * matching), service names as Port, and the permission check on the file.
 *
 * The parts, each in config/: types.ts (the shapes), parse.ts (the glue
 * over the package), keywords.ts and values.ts (what each keyword means and
 * how its value is typed), load.ts and glob.ts (files and Include),
 * evaluate.ts (Host/Match and first-obtained-wins), expand.ts (`~`, `%`,
 * `${ENV}`), resolve.ts (one destination, as `ssh -G`).
 */
export { matchSshPattern } from './patterns.js';
export { matchSshPatternList } from './config/evaluate.js';
export { loadSshConfig } from './config/load.js';
export { resolveHost } from './config/resolve.js';
export { parseSshTime } from './config/values.js';
export type * from './config/types.js';
