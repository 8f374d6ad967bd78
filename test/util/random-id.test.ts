import assert from 'node:assert/strict';
import { test } from 'node:test';

import { randomId } from '../../src/util/random-id.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('message ids are version 4 UUIDs, all different, across random batches', () => {
  const seen = new Set<string>();
  // Several batches of drawn bytes, so a refill is crossed.
  for (let i = 0; i < 2_000; i++) {
    const id = randomId();
    assert.match(id, UUID_V4);
    seen.add(id);
  }
  assert.equal(seen.size, 2_000);
});

test('every hex digit turns up in every free position', () => {
  const digits = Array.from({ length: 36 }, () => new Set<string>());
  for (let i = 0; i < 2_000; i++) {
    [...randomId()].forEach((char, at) => digits[at].add(char));
  }
  for (const [at, seen] of digits.entries()) {
    if ([8, 13, 18, 23].includes(at)) assert.deepEqual([...seen], ['-']);
    else if (at === 14) assert.deepEqual([...seen], ['4']);
    else if (at === 19) assert.deepEqual([...seen].sort(), ['8', '9', 'a', 'b']);
    else assert.equal(seen.size, 16, `position ${at}`);
  }
});
