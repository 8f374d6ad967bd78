import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { UUID_BYTES, isUuid, putUuid } from '../../src/storage/uuid-bytes.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// A lower-case UUID with one code unit replaced: a digit, a dash, a letter
// past 'f', an upper-case digit, or one whose low byte is a hex digit's
// code ('İ' is U+0130, whose low byte is '0').
const nearUuid = fc
  .tuple(
    fc.uuid().map((id) => id.toLowerCase()),
    fc.nat({ max: 35 }),
    fc.constantFrom('0', '9', 'a', 'f', 'g', 'A', 'F', '-', ' ', 'İ', 'ｆ', '\u0161'),
  )
  .map(([id, at, unit]) => id.slice(0, at) + unit + id.slice(at + 1));

const ids = fc.oneof(
  fc.uuid().map((id) => id.toLowerCase()),
  fc.uuid(),
  nearUuid,
  fc.string({ unit: 'binary', maxLength: 40 }),
);

test('isUuid takes exactly the lower-case 8-4-4-4-12 hex ids', () => {
  fc.assert(fc.property(ids, (id) => {
    assert.equal(isUuid(id), UUID.test(id), id);
  }), { numRuns: 5000 });
});

test('putUuid writes the 16 bytes of a UUID, or answers -1 having written at most 16', () => {
  fc.assert(fc.property(ids, (id) => {
    const buf = Buffer.alloc(3 + UUID_BYTES + 3, 0xee);
    const end = putUuid(buf, 3, id);
    if (UUID.test(id)) {
      assert.equal(end, 3 + UUID_BYTES);
      assert.deepEqual(buf.subarray(3, end), Buffer.from(id.replaceAll('-', ''), 'hex'));
    } else {
      assert.equal(end, -1);
      // Nothing at all unless the id has a UUID's length and dashes.
      const shaped = id.length === 36 && [8, 13, 18, 23].every((at) => id[at] === '-');
      if (!shaped) assert.ok(buf.subarray(3, 3 + UUID_BYTES).every((byte) => byte === 0xee));
    }
    // Never outside the 16 bytes.
    assert.deepEqual([...buf.subarray(0, 3), ...buf.subarray(3 + UUID_BYTES)], Array(6).fill(0xee));
  }), { numRuns: 5000 });
});
