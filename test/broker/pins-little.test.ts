// Which bodies the broker keeps as they arrived (a view of an AMQP socket
// chunk) and which it copies first: a view may hold at most four times
// its own size (src/broker/messages.ts, pinsLittle).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { pinsLittle } from '../../src/broker/messages.js';

test('a body that is all of its memory, or a quarter of it or more, is kept', () => {
  const chunk = Buffer.allocUnsafeSlow(64 * 1024);
  assert.equal(pinsLittle(chunk), true);
  assert.equal(pinsLittle(chunk.subarray(0, 16 * 1024)), true, 'a quarter');
  assert.equal(pinsLittle(chunk.subarray(40_000, 40_000 + 16 * 1024)), true, 'anywhere in it');
  assert.equal(pinsLittle(Buffer.alloc(0)), true, 'empty and alone');
});

test('a small view of a large chunk is copied', () => {
  const chunk = Buffer.allocUnsafeSlow(64 * 1024);
  assert.equal(pinsLittle(chunk.subarray(0, 16 * 1024 - 1)), false, 'just under a quarter');
  assert.equal(pinsLittle(chunk.subarray(100, 564)), false, 'a 464 B ticket');
  assert.equal(pinsLittle(chunk.subarray(0, 0)), false, 'an empty view');
});
