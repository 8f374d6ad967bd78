import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import { PROTOCOL_HEADER } from '../../src/amqp/constants.js';
import { encodeProperties, propertiesSize } from '../../src/amqp/content.js';
import { AmqpEncodeError } from '../../src/amqp/errors.js';
import { tableFrom } from '../../src/amqp/field-table.js';
import {
  encodeContent,
  encodeMethodFrame,
  heartbeatFrame,
  methodFrameSize,
  writeMethodFrame,
} from '../../src/amqp/frame-encoder.js';
import type { Method } from '../../src/amqp/methods.js';
import { methodOf, properties } from './arbitraries.js';
import { decodeChunks, deliver, splitFrames, wire } from './helpers.js';

function encodeError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AmqpEncodeError, String(err));
    assert.match(err.message, pattern);
    return true;
  });
}

test('bodies are split at frame-max - 8, and no body frame for no body', () => {
  const chunk = 4096 - 8;
  for (const length of [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 1]) {
    const body = Buffer.alloc(length, 0x61);
    const frames = splitFrames(encodeContent(5, deliver, {}, body, 4096));
    const bodies = frames.slice(2);
    assert.equal(bodies.length, Math.ceil(length / chunk), `body of ${length}`);
    for (const [i, f] of bodies.entries()) {
      assert.equal(f[0], 3);
      assert.equal(f.readUInt16BE(1), 5);
      assert.equal(
        f.readUInt32BE(3),
        i < bodies.length - 1 ? chunk : length - chunk * i,
      );
      assert.ok(f.length <= 4096);
    }
  }
});

test('a message with content decodes back from one buffer', () => {
  const contentMethods = fc.constantFrom(
    'basic.publish',
    'basic.deliver',
    'basic.get-ok',
    'basic.return' as const,
  );
  fc.assert(
    fc.property(
      contentMethods.chain(methodOf),
      properties.filter((p) => propertiesSize(p) < 4000),
      fc.integer({ min: 0, max: 30_000 }),
      fc.integer({ min: 4096, max: 20_000 }),
      fc.integer({ min: 1, max: 65535 }),
      (method, props, length, frameMax, channel) => {
        const body = Buffer.alloc(length);
        for (let i = 0; i < length; i += 97) body[i] = i & 0xff;
        const out = encodeContent(channel, method, props, body, frameMax);
        const fromClient = method.name === 'basic.publish';
        const chunks = fromClient ? [PROTOCOL_HEADER, out] : [out];
        const events = decodeChunks(chunks, {
          from: fromClient ? 'client' : 'server',
          frameMax,
        });
        const [m, h, ...bodies] = fromClient ? events.slice(1) : events;
        assert.deepEqual(m, { type: 'method', channel, method });
        assert.deepEqual(h, {
          type: 'header',
          channel,
          header: { classId: 60, bodySize: length, properties: props },
        });
        assert.deepEqual(
          Buffer.concat(
            bodies.map((b) => (b.type === 'body' ? b.body : Buffer.alloc(0))),
          ),
          body,
        );
        assert.ok(
          bodies.every(
            (b, i) => b.type === 'body' && b.last === (i === bodies.length - 1),
          ),
        );
      },
    ),
    { numRuns: 300 },
  );
});

test('stored property bytes and property objects encode the same message', () => {
  const props = {
    contentType: 'text/plain',
    headers: tableFrom({ 'x-death': [{ count: 1n }] }),
  };
  const body = Buffer.from('hello');
  assert.deepEqual(
    encodeContent(1, deliver, encodeProperties(props), body, 4096),
    encodeContent(1, deliver, props, body, 4096),
  );
});

test('many method frames can share one buffer', () => {
  const acks: Method[] = [1, 2, 3].map((tag) => ({
    name: 'basic.ack',
    deliveryTag: tag,
    multiple: tag === 3,
  }));
  const size = acks.reduce((sum, m) => sum + methodFrameSize(m), 0);
  const buf = Buffer.alloc(size);
  let at = 0;
  for (const ack of acks) at = writeMethodFrame(buf, at, 7, ack);
  assert.equal(at, size);
  assert.deepEqual(
    decodeChunks([buf], { from: 'server' }),
    acks.map((method) => ({ type: 'method', channel: 7, method })),
  );
});

test('the heartbeat frame is type 8 on channel 0, empty', () => {
  assert.deepEqual(heartbeatFrame(), wire('08 0000 00000000 ce'));
});

test('wrong calls are refused with a coded error', () => {
  encodeError(
    () => encodeMethodFrame(1, deliver),
    /basic\.deliver: this method carries content; encode it with encodeContent/,
  );
  encodeError(
    () =>
      encodeContent(
        1,
        { name: 'basic.ack', deliveryTag: 1, multiple: false },
        {},
        Buffer.alloc(0),
        4096,
      ),
    /carries no content/,
  );
  encodeError(
    () => encodeContent(1, deliver, {}, Buffer.alloc(0), 4095),
    /frameMax: expected an integer in \[4096, 4294967295\]/,
  );
  encodeError(
    () => encodeMethodFrame(65536, { name: 'channel.open' }),
    /channel: expected an integer in \[0, 65535\], got 65536/,
  );
  encodeError(
    () => encodeContent(1, deliver, {}, 'text' as unknown as Buffer, 4096),
    /body: expected a Buffer/,
  );
});

test('a content header larger than frame-max is refused, not sent', () => {
  const headers = tableFrom({ big: 'x'.repeat(5000) });
  encodeError(
    () => encodeContent(1, deliver, { headers }, Buffer.alloc(1), 4096),
    /basic\.deliver: .*its content header frame is 50\d\d bytes, over frame-max 4096/,
  );
  assert.ok(
    encodeContent(1, deliver, { headers }, Buffer.alloc(1), 8192).length > 5000,
  );
});
