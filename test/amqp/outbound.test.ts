import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import { propertiesSize } from '../../src/amqp/content.js';
import { AmqpEncodeError } from '../../src/amqp/errors.js';
import { tableFrom } from '../../src/amqp/field-table.js';
import {
  encodeContent,
  encodeMethodFrame,
  writeContent,
  writeMethodTo,
} from '../../src/amqp/frame-encoder.js';
import type { Method } from '../../src/amqp/methods.js';
import { ATTACH_BYTES, OutboundBytes } from '../../src/amqp/outbound.js';
import { methodOf, properties } from './arbitraries.js';
import { deliver } from './helpers.js';

test('frames written into the arena are the bytes encodeContent gives', () => {
  const contentMethods = fc.constantFrom(
    'basic.publish',
    'basic.deliver',
    'basic.get-ok',
    'basic.return' as const,
  );
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(
          contentMethods.chain(methodOf),
          properties.filter((p) => propertiesSize(p) < 4000),
          // Around the sizes where bodies stop being copied and where
          // they take a second frame.
          fc.oneof(
            fc.integer({ min: 0, max: 600 }),
            fc.integer({ min: ATTACH_BYTES - 20, max: ATTACH_BYTES + 20 }),
            fc.integer({ min: 0, max: 150_000 }),
          ),
        ),
        { minLength: 1, maxLength: 8 },
      ),
      fc.integer({ min: 4096, max: 140_000 }),
      fc.integer({ min: 1, max: 65535 }),
      (messages, frameMax, channel) => {
        const out = new OutboundBytes();
        const expected: Buffer[] = [];
        for (const [method, props, length] of messages) {
          const body = Buffer.alloc(length);
          for (let i = 0; i < length; i += 97) body[i] = i & 0xff;
          writeContent(out, channel, method, props, body, frameMax);
          expected.push(encodeContent(channel, method, props, body, frameMax));
          const ack: Method = { name: 'basic.ack', deliveryTag: length, multiple: false };
          writeMethodTo(out, channel, ack);
          expected.push(encodeMethodFrame(channel, ack));
        }
        const total = expected.reduce((sum, frame) => sum + frame.length, 0);
        assert.equal(out.length, total);
        assert.deepEqual(Buffer.concat(out.take()), Buffer.concat(expected));
        assert.equal(out.length, 0);
      },
    ),
    { numRuns: 200 },
  );
});

test('a large body is attached, not copied; a small one is copied', () => {
  const out = new OutboundBytes();
  const large = Buffer.alloc(16 * 1024, 0x61);
  writeContent(out, 1, deliver, {}, large, 131_072);
  const pieces = out.take();
  assert.equal(pieces.length, 3);
  assert.equal(pieces[1].buffer, large.buffer);

  const small = Buffer.alloc(ATTACH_BYTES - 1, 0x62);
  writeContent(out, 1, deliver, {}, small, 131_072);
  const [only, ...rest] = out.take();
  assert.equal(rest.length, 0);
  assert.notEqual(only.buffer, small.buffer);
});

test('bytes handed out are never written again', () => {
  const out = new OutboundBytes();
  const ack: Method = { name: 'basic.ack', deliveryTag: 1, multiple: false };
  writeMethodTo(out, 1, ack);
  const [first] = out.take();
  const before = Buffer.from(first);
  // Enough to fill the arena more than once.
  for (let i = 0; i < 10_000; i++) {
    writeMethodTo(out, 2, { name: 'basic.ack', deliveryTag: 1000 + i, multiple: true });
  }
  out.add(Buffer.alloc(100_000, 0x63));
  assert.deepEqual(first, before);
  assert.ok(out.length > 100_000);
});

test('a content header over frame-max is refused before anything is written', () => {
  const out = new OutboundBytes();
  const headers = tableFrom({ big: 'x'.repeat(5000) });
  assert.throws(
    () => writeContent(out, 1, deliver, { headers }, Buffer.alloc(1), 4096),
    AmqpEncodeError,
  );
  assert.equal(out.length, 0);
  assert.deepEqual(out.take(), []);
});

test('connections writing in turn into the shared arena each get their own bytes', () => {
  const outputs = [new OutboundBytes(), new OutboundBytes(), new OutboundBytes()];
  const expected: Buffer[][] = outputs.map(() => []);
  for (let i = 0; i < 3_000; i++) {
    const which = (i * 7) % outputs.length;
    const method: Method = { name: 'basic.ack', deliveryTag: i + 1, multiple: which === 1 };
    writeMethodTo(outputs[which], which + 1, method);
    expected[which].push(encodeMethodFrame(which + 1, method));
    if (i % 5 === 0) {
      const body = Buffer.alloc(i % 2 === 0 ? 100 : ATTACH_BYTES + i, i & 0xff);
      writeContent(outputs[which], which + 1, deliver, {}, body, 131_072);
      expected[which].push(encodeContent(which + 1, deliver, {}, body, 131_072));
    }
  }
  outputs.forEach((out, which) => {
    assert.deepEqual(Buffer.concat(out.take()), Buffer.concat(expected[which]));
  });
});
