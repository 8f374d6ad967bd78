// The decoder fed whole streams, byte by byte, split at every offset and
// at random offsets, from chunks that are views into larger buffers.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import { PROTOCOL_HEADER } from '../../src/amqp/constants.js';
import {
  type BasicProperties,
  propertiesSize,
} from '../../src/amqp/content.js';
import { tableFrom } from '../../src/amqp/field-table.js';
import {
  AmqpFrameDecoder,
  type Inbound,
} from '../../src/amqp/frame-decoder.js';
import {
  encodeContent,
  encodeMethodFrame,
  heartbeatFrame,
  methodFrameSize,
} from '../../src/amqp/frame-encoder.js';
import { METHOD_NAMES, type Method } from '../../src/amqp/methods.js';
import { METHOD_SPECS } from '../../src/amqp/method-table.js';
import { bytes, methodOf, properties } from './arbitraries.js';
import { cutAt, decodeChunks, pooled, splitFrames } from './helpers.js';

const FRAME_MAX = 4096;
const CHUNK = FRAME_MAX - 8;

const body = Buffer.alloc(CHUNK * 2 + 100, 0);
for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;

const publish: Method = {
  name: 'basic.publish',
  exchange: 'orders',
  routingKey: 'eu.new',
  mandatory: true,
  immediate: false,
};
const props: BasicProperties = {
  contentType: 'application/json',
  headers: tableFrom({ 'x-trace': 'abc', attempt: 2 }),
  deliveryMode: 2,
  timestamp: 1_700_000_000n,
};
const emptyPublish: Method = {
  ...publish,
  routingKey: 'empty',
  mandatory: false,
};

// A client session, with the content of channels 1 and 2 interleaved.
const [pub1, head1, ...bodies1] = splitFrames(
  encodeContent(1, publish, props, body, FRAME_MAX),
);
const [pub2, head2] = splitFrames(
  encodeContent(2, emptyPublish, {}, Buffer.alloc(0), FRAME_MAX),
);
const startOk: Method = {
  name: 'connection.start-ok',
  clientProperties: tableFrom({
    product: 'test',
    capabilities: { publisher_confirms: true },
  }),
  mechanism: 'PLAIN',
  response: Buffer.from('\0guest\0guest'),
  locale: 'en_US',
};
const tuneOk: Method = {
  name: 'connection.tune-ok',
  channelMax: 2047,
  frameMax: FRAME_MAX,
  heartbeat: 60,
};
const ack: Method = {
  name: 'basic.ack',
  deliveryTag: 2 ** 40 + 1,
  multiple: true,
};
const session = Buffer.concat([
  PROTOCOL_HEADER,
  encodeMethodFrame(0, startOk),
  encodeMethodFrame(0, tuneOk),
  encodeMethodFrame(0, { name: 'connection.open', virtualHost: '/' }),
  encodeMethodFrame(1, { name: 'channel.open' }),
  encodeMethodFrame(2, { name: 'channel.open' }),
  pub1,
  pub2,
  head1,
  bodies1[0],
  head2,
  heartbeatFrame(),
  bodies1[1],
  encodeMethodFrame(2, ack),
  bodies1[2],
  encodeMethodFrame(0, {
    name: 'connection.close',
    replyCode: 200,
    replyText: 'bye',
    classId: 0,
    methodId: 0,
  }),
]);

// Written out from the inputs above, not from the decoder.
const expected: Inbound[] = [
  { type: 'protocol-header' },
  { type: 'method', channel: 0, method: startOk },
  { type: 'method', channel: 0, method: tuneOk },
  {
    type: 'method',
    channel: 0,
    method: { name: 'connection.open', virtualHost: '/' },
  },
  { type: 'method', channel: 1, method: { name: 'channel.open' } },
  { type: 'method', channel: 2, method: { name: 'channel.open' } },
  { type: 'method', channel: 1, method: publish },
  { type: 'method', channel: 2, method: emptyPublish },
  {
    type: 'header',
    channel: 1,
    header: { classId: 60, bodySize: body.length, properties: props },
  },
  { type: 'body', channel: 1, body: body.subarray(0, CHUNK), last: false },
  {
    type: 'header',
    channel: 2,
    header: { classId: 60, bodySize: 0, properties: {} },
  },
  { type: 'heartbeat' },
  {
    type: 'body',
    channel: 1,
    body: body.subarray(CHUNK, 2 * CHUNK),
    last: false,
  },
  { type: 'method', channel: 2, method: ack },
  { type: 'body', channel: 1, body: body.subarray(2 * CHUNK), last: true },
  {
    type: 'method',
    channel: 0,
    method: {
      name: 'connection.close',
      replyCode: 200,
      replyText: 'bye',
      classId: 0,
      methodId: 0,
    },
  },
];

test('a session decodes whole, with body frames as views of the chunk', () => {
  assert.equal(bodies1.length, 3);
  const chunk = pooled(session, 13);
  const decoder = new AmqpFrameDecoder();
  const events = decoder.push(chunk);
  assert.deepEqual(events, expected);
  assert.equal(decoder.buffered, 0);

  for (const event of events) {
    if (event.type !== 'body') continue;
    assert.equal(event.body.buffer, chunk.buffer, 'a view, not a copy');
    assert.ok(event.body.byteOffset >= chunk.byteOffset);
    assert.ok(
      event.body.byteOffset + event.body.length <=
        chunk.byteOffset + chunk.length,
    );
  }
});

test('a session decodes fed byte by byte', () => {
  const decoder = new AmqpFrameDecoder();
  const events: Inbound[] = [];
  for (let i = 0; i < session.length; i++) {
    events.push(
      ...decoder.push(pooled(session.subarray(i, i + 1), 1 + (i % 9))),
    );
  }
  assert.deepEqual(events, expected);
  assert.equal(decoder.buffered, 0);
});

test('a session decodes split in two at every offset', () => {
  for (let split = 0; split <= session.length; split++) {
    const events = decodeChunks([
      pooled(session.subarray(0, split), 3),
      pooled(session.subarray(split), 5),
    ]);
    assert.deepEqual(events, expected, `split at ${split}`);
  }
});

test('a body frame split across chunks is copied; one inside a chunk is not', () => {
  const at = session.indexOf(bodies1[0]);
  const cut = at + 7 + 100; // inside the first body frame's payload
  const first = pooled(session.subarray(0, cut), 8);
  const second = pooled(session.subarray(cut), 8);
  const bodiesOut = decodeChunks([first, second]).filter(
    (e) => e.type === 'body',
  );
  assert.equal(bodiesOut.length, 3);
  const [split, ...whole] = bodiesOut;
  assert.ok(split.type === 'body');
  assert.notEqual(split.body.buffer, first.buffer);
  assert.notEqual(split.body.buffer, second.buffer);
  for (const event of whole) {
    assert.ok(event.type === 'body');
    assert.equal(event.body.buffer, second.buffer);
  }
});

// Random traffic: methods without content, and publishes with content.
const contentless = METHOD_NAMES.filter(
  (name) =>
    !('content' in METHOD_SPECS[name]) &&
    ['client', 'both'].includes(METHOD_SPECS[name].sender),
);
const message = fc.oneof(
  fc
    .constantFrom(...contentless)
    .chain(methodOf)
    // A method frame can't be split, so it must fit the smallest frame-max.
    .filter((method) => methodFrameSize(method) <= 4096)
    .map((method) => ({ method })),
  fc.record({
    method: methodOf('basic.publish'),
    // A header frame can't be split, so it must fit the smallest frame-max.
    properties: properties.filter((p) => propertiesSize(p) < 4000),
    body: fc.oneof(
      bytes,
      fc.integer({ min: 0, max: 12_000 }).map((n) => Buffer.alloc(n, 0x5a)),
    ),
  }),
);

test('random traffic decodes the same however it is cut', () => {
  fc.assert(
    fc.property(
      fc.array(message, { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 4096, max: 9000 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
      fc.integer({ min: 0, max: 63 }),
      (messages, frameMax, fractions, offset) => {
        const expectedEvents: Inbound[] = [{ type: 'protocol-header' }];
        const frames: Buffer[] = [PROTOCOL_HEADER];
        for (const m of messages) {
          const channel = m.method.name.startsWith('connection.') ? 0 : 1;
          expectedEvents.push({ type: 'method', channel, method: m.method });
          if (!('body' in m)) {
            frames.push(encodeMethodFrame(channel, m.method));
            continue;
          }
          frames.push(
            encodeContent(channel, m.method, m.properties, m.body, frameMax),
          );
          const header = {
            classId: 60,
            bodySize: m.body.length,
            properties: m.properties,
          };
          expectedEvents.push({ type: 'header', channel, header });
          for (let from = 0; from < m.body.length; from += frameMax - 8) {
            const to = Math.min(m.body.length, from + frameMax - 8);
            const last = to === m.body.length;
            expectedEvents.push({
              type: 'body',
              channel,
              body: m.body.subarray(from, to),
              last,
            });
          }
        }

        const stream = Buffer.concat(frames);
        const points = [
          ...new Set(fractions.map((f) => Math.floor(f * stream.length))),
        ]
          .filter((p) => p > 0 && p < stream.length)
          .sort((a, b) => a - b);
        const chunks = cutAt(stream, points).map((c, i) =>
          pooled(c, (offset + i) % 64),
        );
        assert.deepEqual(decodeChunks(chunks, { frameMax }), expectedEvents);
      },
    ),
    { numRuns: 500 },
  );
});

test('a large frame trickled in one byte per chunk costs linear time', () => {
  // Consumed chunks once left the queue by shift(), one at a time: 256 KiB
  // sent a byte per packet took over 5 s. Now it takes about 0.2 s; the
  // bound leaves room for a loaded machine.
  const body = Buffer.alloc(256 * 1024, 1);
  const publish: Method = {
    name: 'basic.publish',
    exchange: '',
    routingKey: 'q',
    mandatory: false,
    immediate: false,
  };
  const stream = encodeContent(1, publish, {}, body, 1 << 20);
  const decoder = new AmqpFrameDecoder({ frameMax: 1 << 20 });
  decoder.push(PROTOCOL_HEADER);

  const started = performance.now();
  let frames = 0;
  for (let i = 0; i < stream.length; i++) {
    frames += decoder.push(stream.subarray(i, i + 1)).length;
  }
  const elapsed = performance.now() - started;
  assert.equal(frames, 3);
  assert.ok(elapsed < 2500, `took ${elapsed.toFixed(0)} ms`);
});
