/**
 * OpenSSH's match_pattern() (match.c), shared by ssh_config Host/Match and
 * known_hosts host patterns: `*` is any run of characters, `?` exactly one,
 * everything else literal. Iterative with one backtrack point, so linear in
 * practice and never exponential.
 */
export function matchSshPattern(text: string, pattern: string): boolean {
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] === '*') {
      starP = p++;
      starT = t;
    } else if (p < pattern.length && (pattern[p] === '?' || pattern[p] === text[t])) {
      p++;
      t++;
    } else if (starP !== -1) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

