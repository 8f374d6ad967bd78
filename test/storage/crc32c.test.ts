import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { crc32c, crc32cAppend, crc32cReference } from '../../src/storage/crc32c.js';

test('crc32c matches the RFC 3720 check value', () => {
  const input = Buffer.from('123456789', 'ascii');
  assert.equal(crc32cReference(input), 0xe3069283);
  assert.equal(crc32c(input), 0xe3069283);
});

test('crc32c of nothing is 0', () => {
  assert.equal(crc32c(Buffer.alloc(0)), 0);
  assert.equal(crc32cReference(Buffer.alloc(0)), 0);
});

test('native crc32c agrees with the reference on random input', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
      assert.equal(crc32c(bytes), crc32cReference(bytes));
    }),
    { numRuns: 500 },
  );
});

test('native crc32c agrees on views with a byteOffset', () => {
  const pool = randomBytes(10_000);
  for (const [start, end] of [[1, 9_999], [3, 4], [4095, 8193]]) {
    const view = pool.subarray(start, end);
    assert.equal(crc32c(view), crc32cReference(view));
  }
});

test('crc32cAppend continues a checksum: that of the bytes before, then these', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), fc.uint8Array({ maxLength: 2048 }), (a, b) => {
      assert.equal(crc32cAppend(b, crc32c(a)), crc32cReference(Buffer.concat([a, b])));
    }),
    { numRuns: 300 },
  );
});
