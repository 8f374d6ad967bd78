// Queue-name patterns for permissions: `*` matches any run of characters
// (dots included, so `orders.*` covers `orders.eu.paid`), `?` matches one
// character, and everything else matches itself. No regular expressions:
// a pattern comes from an administrator, a name from any client, and a
// hand-written matcher cannot backtrack exponentially.

/** True when `name` matches `pattern` as a whole. */
export function globMatch(pattern: string, name: string): boolean {
  // The common grant, checked on every AMQP publish.
  if (pattern === '*') return true;

  let p = 0;
  let n = 0;
  // Where the last `*` was, and where in `name` it started matching, so a
  // mismatch later retries with the star taking one more character.
  let starAt = -1;
  let starName = 0;

  while (n < name.length) {
    const c = pattern[p];
    if (c === '*') {
      starAt = p;
      starName = n;
      p += 1;
    } else if (p < pattern.length && (c === '?' || c === name[n])) {
      p += 1;
      n += 1;
    } else if (starAt >= 0) {
      p = starAt + 1;
      starName += 1;
      n = starName;
    } else {
      return false;
    }
  }

  // The name is used up: what is left of the pattern must be stars only.
  while (pattern[p] === '*') p += 1;
  return p === pattern.length;
}

/** True when any of `patterns` matches `name`. */
export function anyGlobMatches(patterns: readonly string[], name: string): boolean {
  for (const pattern of patterns) if (globMatch(pattern, name)) return true;
  return false;
}
