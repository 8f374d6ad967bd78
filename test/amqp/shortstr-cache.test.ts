// The one-entry cache a publish's exchange and routing key are decoded
// through (src/amqp/wire.ts, ShortstrCache): it must give exactly the text
// a fresh decode gives, whatever bytes come, and in whatever order.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ShortstrCache } from '../../src/amqp/wire.js';
import { seededRandom } from '../helpers.js';

test('the same bytes give the same text; other bytes of the same length do not', () => {
  const cache = new ShortstrCache();
  const frame = Buffer.from('xxorders.euxxorders.usxx');
  const first = cache.text(frame, 2, 9);
  assert.equal(first, 'orders.eu');
  assert.equal(cache.text(Buffer.from('orders.eu'), 0, 9), 'orders.eu');
  assert.equal(cache.text(frame, 13, 9), 'orders.us', 'same length, last byte differs');
  assert.equal(cache.text(frame, 2, 6), 'orders', 'a prefix of the last one');
  assert.equal(cache.text(frame, 0, 0), '');
  assert.equal(cache.text(frame, 2, 6), 'orders', 'after an empty one');
});

test('any bytes, malformed UTF-8 included, decode as toString does', () => {
  const random = seededRandom(4);
  const cache = new ShortstrCache();
  // Few distinct byte values and short lengths, so repeats and near
  // misses are common.
  const alphabet = [0x61, 0x62, 0xc3, 0xa9, 0xff, 0x80];
  for (let round = 0; round < 20_000; round++) {
    const length = Math.floor(random() * 5);
    const start = Math.floor(random() * 3);
    const buf = Buffer.alloc(start + length + 2);
    for (let i = 0; i < buf.length; i++) buf[i] = alphabet[Math.floor(random() * alphabet.length)];
    assert.equal(cache.text(buf, start, length),
      buf.toString('utf8', start, start + length), `bytes ${buf.toString('hex')} from ${start}`);
  }
});
