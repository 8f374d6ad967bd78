// Every error code Usher can give is documented in docs/errors.md, and the
// document lists no code the code no longer has.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { AMQP_ERROR_CODES } from '../src/amqp/errors.js';
import { CLIENT_ERROR_CODES } from '../src/client/errors.js';
import { ROUTING_ERROR_CODES } from '../src/routing/errors.js';

// Compiled to dist/test/, two levels below the checkout.
const root = fileURLToPath(new URL('../../', import.meta.url));

/** Server codes: `super('CODE', ...)` in UsherError subclasses. */
const SERVER_CODE = /super\(\s*'([A-Z][A-Z0-9_]*)'/g;
/** CLI codes: `readonly code = 'CODE'` on its error classes. */
const FIXED_CODE = /readonly code = '([A-Z][A-Z0-9_]*)'/g;
/** A code in the first column of a table row in the document. */
const DOCUMENTED = /^\| `([A-Z][A-Z0-9_]*)` \|/gm;

function sourceFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...sourceFiles(path));
    else if (entry.endsWith('.ts')) found.push(path);
  }
  return found;
}

function codesInSource(): Set<string> {
  const codes = new Set<string>([
    ...Object.values(CLIENT_ERROR_CODES),
    ...AMQP_ERROR_CODES,
    ...ROUTING_ERROR_CODES,
  ]);
  for (const file of sourceFiles(join(root, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const pattern of [SERVER_CODE, FIXED_CODE]) {
      for (const match of text.matchAll(pattern)) codes.add(match[1]);
    }
  }
  return codes;
}

function codesInDocs(): Set<string> {
  const text = readFileSync(join(root, 'docs', 'errors.md'), 'utf8');
  return new Set([...text.matchAll(DOCUMENTED)].map((match) => match[1]));
}

describe('docs/errors.md', () => {
  const used = codesInSource();
  const documented = codesInDocs();

  it('finds the codes it is meant to check', () => {
    for (const code of ['QUEUE_NOT_FOUND', 'INVALID_UTF8', 'INTERNAL']) {
      assert.ok(used.has(code), `${code} not found in src/`);
    }
  });

  it('documents every code used in src/', () => {
    const missing = [...used].filter((code) => !documented.has(code));
    assert.deepEqual(missing, [], `undocumented codes: ${missing.join(', ')}`);
  });

  it('documents no code that src/ does not use', () => {
    const stale = [...documented].filter((code) => !used.has(code));
    assert.deepEqual(stale, [], `stale codes: ${stale.join(', ')}`);
  });
});
