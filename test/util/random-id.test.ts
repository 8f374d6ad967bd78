import assert from 'node:assert/strict';
import { test } from 'node:test';

import { putUuid } from '../../src/storage/uuid-bytes.js';
import { copyMadeId, randomId, randomIds, unshared } from '../../src/util/random-id.js';

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

test('a made id read once gives the bytes its text spells; read again, or not made, none', () => {
  let copied = 0;
  for (let publish = 0; publish < 200; publish++) {
    const ids = Array.from({ length: 100 }, () => randomId());
    for (const id of ids) {
      const spelled = new Uint8Array(16);
      assert.equal(putUuid(spelled, 0, id), 16);
      const bytes = new Uint8Array(18).fill(0xee);
      if (!copyMadeId(id, bytes, 1)) {
        assert.deepEqual(bytes, new Uint8Array(18).fill(0xee), 'a miss writes nothing');
        continue;
      }
      copied++;
      assert.deepEqual(bytes.subarray(1, 17), spelled, id);
      assert.deepEqual([bytes[0], bytes[17]], [0xee, 0xee]);
      assert.equal(copyMadeId(id, bytes, 1), false, 'a second read');
    }
  }
  // Another id made in the slot in between lets the first go: about 1%.
  assert.ok(copied > 19_000, `${copied} of 20,000 read from their slot`);

  const other = new Uint8Array(16);
  assert.equal(copyMadeId('0f8fad5b-d9cb-469f-a165-70867728950e', other, 0), false);
  assert.equal(copyMadeId('short', other, 0), false);
  assert.deepEqual(other, new Uint8Array(16));
});

test("a publish's ids, in and past a draw of 64: as many UUIDs, all different, read once", () => {
  const seen = new Set<string>();
  let made = 0;
  // 1,200 ids and more cross a refill of the random bytes (1,024 ids).
  for (const count of [0, 1, 2, 63, 64, 65, 128, 129, 1_000]) {
    const ids = randomIds(count);
    assert.equal(ids.length, count);
    for (const id of ids) {
      assert.match(id, UUID_V4);
      seen.add(id);
      const spelled = new Uint8Array(16);
      putUuid(spelled, 0, id);
      const bytes = new Uint8Array(16);
      if (copyMadeId(id, bytes, 0)) assert.deepEqual(bytes, spelled, id);
    }
    made += count;
  }
  assert.equal(seen.size, made);
});

test('an id unshared is equal to itself, whatever its chars, and ids made after are UUIDs', () => {
  const ids = [
    ...randomIds(3),
    'x'.repeat(36),
    'é'.repeat(36),
    '😀'.repeat(18),
    'short',
    'A0F8FAD5-D9CB-469F-A165-70867728950E',
  ];
  for (const id of ids) assert.equal(unshared(id), id);
  for (const id of randomIds(70)) assert.match(id, UUID_V4);
});

test('ids made for a memory queue (never logged) keep no bytes to be read', () => {
  const ids = randomIds(200, false);
  for (const id of ids) {
    assert.match(id, UUID_V4);
    assert.equal(copyMadeId(id, new Uint8Array(16), 0), false, id);
  }
  // Ids for the log made after them are kept as before.
  const logged = randomIds(10);
  assert.ok(logged.filter((id) => copyMadeId(id, new Uint8Array(16), 0)).length >= 9);
});
