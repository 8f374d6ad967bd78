// writeShortstr writes short ASCII text by a loop of its own and leaves
// anything else to Buffer.write (src/amqp/wire.ts): the bytes must be the
// UTF-8 of the text either way, whatever the length and wherever the
// first non-ASCII character falls.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { shortstrSize, writeShortstr } from '../../src/amqp/wire.js';

/** The shortstr as the spec lays it out: length octet, UTF-8 bytes. */
function expected(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

test('writes the UTF-8 of any text, ASCII or not, at any length', () => {
  // ASCII, then one character of two, three and four bytes, put at every
  // position of every length around the loop's limit.
  for (const odd of ['é', '€', '😀', '\u007f']) {
    for (let length = 0; length <= 40; length++) {
      for (let at = 0; at <= length; at++) {
        const tail = 'v'.repeat(Math.max(0, length - at - 1));
        const text = 'k'.repeat(at) + (at < length ? odd : '') + tail;
        const size = shortstrSize(text, 'test');
        const buf = Buffer.alloc(size + 3, 0xee);
        const end = writeShortstr(buf, 1, text);

        assert.equal(end, 1 + size, JSON.stringify(text));
        assert.deepEqual(buf.subarray(1, end), expected(text), JSON.stringify(text));
        assert.equal(buf[0], 0xee, 'nothing written before');
        assert.equal(buf[end], 0xee, 'nothing written after');
      }
    }
  }
});
