// The node flags `./bin/usher` starts with, read from its shebang, so a
// benchmark that starts the broker as `node <flags> bin/usher` measures
// what users run, and the flags live in one place.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const USHER_BIN = fileURLToPath(new URL('../../bin/usher', import.meta.url));

/** The flags after `node` on bin/usher's first line. */
export function usherNodeFlags(): string[] {
  const shebang = readFileSync(USHER_BIN, 'utf8').split('\n', 1)[0];
  const words = shebang.split(/\s+/);
  return words.slice(words.indexOf('node') + 1).filter((word) => word !== '');
}
