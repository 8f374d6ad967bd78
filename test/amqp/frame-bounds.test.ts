// What the decoder refuses, with which reply code, and what it does after.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { BasicProperties } from '../../src/amqp/content.js';
import { BodyTooLargeError } from '../../src/amqp/errors.js';
import { TOO_MANY_ENTRIES } from '../../src/amqp/field-table.js';
import { AmqpFrameDecoder, type Inbound } from '../../src/amqp/frame-decoder.js';
import type { Method } from '../../src/amqp/methods.js';
import {
  encodeContent,
  encodeMethodFrame,
  heartbeatFrame,
} from '../../src/amqp/frame-encoder.js';
import {
  closeOk,
  connectionError,
  frame,
  message,
  opened,
  types,
  wire,
} from './helpers.js';

describe('frame size', () => {
  test('an oversized frame is refused from its header, before the payload', () => {
    const decoder = opened();
    const events = decoder.push(wire('03 0001 ffffffff'));
    const { fatal } = connectionError(
      events,
      501,
      /4294967295-byte payload; frame-max is 8192/,
    );
    assert.equal(fatal, true);
    assert.equal(decoder.buffered, 0);
    assert.deepEqual(
      decoder.push(encodeMethodFrame(0, closeOk)),
      [],
      'nothing after a fatal error',
    );
  });

  test('a payload of frame-max bytes is accepted; one more is not', () => {
    const [method, header, body] = message(1, Buffer.alloc(8192, 1), 9000);
    assert.equal(body.length, 8192 + 8);
    const events = opened().push(Buffer.concat([method, header, body]));
    assert.deepEqual(types(events), ['1:basic.publish', 'header', 'body']);

    const [m2, h2, b2] = message(1, Buffer.alloc(8193, 1), 9000);
    connectionError(
      opened().push(Buffer.concat([m2, h2, b2])),
      501,
      /8193-byte payload; frame-max is 8192/,
    );
  });

  test('frame-max can be raised after tune', () => {
    const decoder = opened();
    decoder.frameMax = 131072;
    assert.equal(decoder.frameMax, 131072);
    const events = decoder.push(
      Buffer.concat(message(1, Buffer.alloc(131000, 2), 131072)),
    );
    assert.deepEqual(types(events), ['1:basic.publish', 'header', 'body']);
    assert.throws(() => {
      decoder.frameMax = 4095;
    }, /frame-max must be an integer in \[4096, 4294967295\], got 4095/);
    assert.throws(() => {
      decoder.frameMax = 0;
    }, RangeError);
    assert.throws(
      () => new AmqpFrameDecoder({ frameMax: 2 ** 32 }),
      RangeError,
    );
    assert.throws(
      () => new AmqpFrameDecoder({ maxBodySize: -1 }),
      /maxBodySize must be a safe integer >= 0, got -1/,
    );
  });
});

describe('headers tables', () => {
  const headers = new Map(
    Array.from({ length: 300 }, (_, i) => [`h${i}`, { type: 'S' as const, value: `${i}` }]),
  );
  const headerOf = (events: Inbound[]) => {
    const found = events.find((event) => event.type === 'header');
    assert.ok(found?.type === 'header', JSON.stringify(types(events)));
    return found.header.properties.headers;
  };

  test("the broker's decoder reads a publisher's no further than 256 entries", () => {
    const publish = encodeContent(
      1,
      { name: 'basic.publish', exchange: '', routingKey: 'q', mandatory: false, immediate: false },
      { headers },
      Buffer.from('x'),
      8192,
    );
    assert.equal(headerOf(opened().push(publish)), TOO_MANY_ENTRIES);
  });

  test("a client's decoder reads a delivery's whole", () => {
    const deliver = deliverFrames({ headers }, 8192);
    const decoder = new AmqpFrameDecoder({ from: 'server' });
    assert.deepEqual(headerOf(decoder.push(deliver)), headers);
  });
});

describe('framing', () => {
  test('a bad frame-end is fatal; frames before it still come out', () => {
    const good = encodeMethodFrame(1, { name: 'channel.open' });
    const bad = frame(1, 1, wire('0014 000a 00'), 0xcd);
    const events = opened().push(Buffer.concat([good, bad, good]));
    assert.deepEqual(types(events), ['1:channel.open', 'connection-error']);
    const { fatal } = connectionError(
      events,
      501,
      /type 1 on channel 1 ends with 0xcd after 5 bytes, not 0xce/,
    );
    assert.equal(fatal, true);
  });

  test('an unknown frame type is a FRAME_ERROR, but framing holds', () => {
    const decoder = opened();
    const events = decoder.push(
      Buffer.concat([
        frame(4, 1, Buffer.from('oob')),
        encodeMethodFrame(1, { name: 'channel.open' }),
        encodeMethodFrame(0, closeOk),
      ]),
    );
    const { fatal } = connectionError(
      events,
      501,
      /unknown frame type 4 on channel 1/,
    );
    assert.equal(fatal, false);
    assert.deepEqual(types(events), [
      'connection-error',
      '0:connection.close-ok',
    ]);
  });

  test('heartbeats belong on channel 0 and are empty', () => {
    assert.deepEqual(opened().push(heartbeatFrame()), [{ type: 'heartbeat' }]);
    connectionError(
      opened().push(wire('08 0001 00000000 ce')),
      505,
      /heartbeat frame on channel 1/,
    );
    connectionError(
      opened().push(wire('08 0000 00000001 00 ce')),
      501,
      /heartbeat frame with a 1-byte payload/,
    );
  });
});

describe('methods', () => {
  test('truncated arguments are a SYNTAX_ERROR naming the method', () => {
    const full = encodeMethodFrame(1, {
      name: 'queue.bind',
      queue: 'q',
      exchange: 'x',
      routingKey: 'k',
      noWait: false,
      arguments: new Map(),
    });
    const payload = full.subarray(7, full.length - 1);
    const events = opened().push(
      frame(1, 1, payload.subarray(0, payload.length - 3)),
    );
    const { error, fatal } = connectionError(
      events,
      502,
      /^queue\.bind: arguments needs 4 bytes at offset \d+, 1 left$/,
    );
    assert.equal(fatal, false);
    assert.deepEqual([error.classId, error.methodId], [50, 20]);
    assert.match(error.replyText, /^SYNTAX_ERROR - queue\.bind: /);
  });

  test('unknown methods are NOT_IMPLEMENTED', () => {
    const { error } = connectionError(
      opened().push(frame(1, 0, wire('000a 0046 00000000 00'))),
      540,
      /class 10, method 70/,
    );
    assert.deepEqual([error.classId, error.methodId], [10, 70]);
    connectionError(
      opened().push(frame(1, 1, wire('00c8 000a'))),
      540,
      /class 200, method 10/,
    );
  });

  test('a table nesting bomb in arguments is a SYNTAX_ERROR', () => {
    const depth = 100_000;
    const nest = Buffer.alloc(5 * depth);
    for (let level = 0; level < depth; level++) {
      nest[5 * level] = 0x41;
      nest.writeUInt32BE(5 * (depth - level - 1), 5 * level + 1);
    }
    const args = Buffer.concat([Buffer.from([1, 0x61]), nest]);
    const size = Buffer.alloc(4);
    size.writeUInt32BE(args.length);
    const payload = Buffer.concat([
      wire('0032 000a 0000 01 "q" 00'),
      size,
      args,
    ]);
    const decoder = opened({ frameMax: 1 << 20 });
    connectionError(
      decoder.push(frame(1, 1, payload)),
      502,
      /queue\.declare: arguments\.a\[0\].* nests deeper than 32 levels/,
    );
  });

  test('a method the client may not send is COMMAND_INVALID', () => {
    const deliver = deliverFrames({}, 4096);
    connectionError(
      opened().push(deliver),
      503,
      /basic\.deliver is sent by the server, not the client/,
    );
    connectionError(
      opened().push(
        encodeMethodFrame(0, {
          name: 'connection.tune',
          channelMax: 0,
          frameMax: 0,
          heartbeat: 0,
        }),
      ),
      503,
      /connection\.tune is sent by the server/,
    );
  });

  test('a client-side decoder takes server methods and no protocol header', () => {
    const decoder = new AmqpFrameDecoder({ from: 'server' });
    const start = encodeMethodFrame(0, {
      name: 'connection.start',
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: new Map(),
      mechanisms: Buffer.from('PLAIN'),
      locales: Buffer.from('en_US'),
    });
    assert.deepEqual(types(decoder.push(start)), ['0:connection.start']);
    connectionError(
      decoder.push(Buffer.concat(message(1, Buffer.from('x')))),
      503,
      /basic\.publish is sent by the client, not the server/,
    );
  });

  test('connection methods belong on channel 0, others elsewhere', () => {
    connectionError(
      opened().push(
        encodeMethodFrame(1, { name: 'connection.open', virtualHost: '/' }),
      ),
      503,
      /connection\.open on channel 1; connection methods use channel 0/,
    );
    connectionError(
      opened().push(
        encodeMethodFrame(0, {
          name: 'basic.qos',
          prefetchSize: 0,
          prefetchCount: 1,
          global: false,
        }),
      ),
      504,
      /basic\.qos on channel 0/,
    );
  });
});

describe('content sequence', () => {
  const [method, header, body] = message(1, Buffer.from('hello'));

  test('a header or body with nothing before it is UNEXPECTED_FRAME', () => {
    connectionError(
      opened().push(header),
      505,
      /content header frame on channel 1 with no method before it/,
    );
    connectionError(
      opened().push(body),
      505,
      /content body frame on channel 1 with no header before it/,
    );
    connectionError(
      opened().push(Buffer.concat([method, body])),
      505,
      /content body frame on channel 1 before its header/,
    );
  });

  test('a method where content was expected is UNEXPECTED_FRAME', () => {
    const open = encodeMethodFrame(1, { name: 'channel.close-ok' });
    const { error } = connectionError(
      opened().push(Buffer.concat([method, open])),
      505,
      /method frame on channel 1 while the content header of basic\.publish was expected/,
    );
    assert.deepEqual([error.classId, error.methodId], [60, 40]);
    connectionError(
      opened().push(Buffer.concat([method, header, open])),
      505,
      /while the content body of basic\.publish/,
    );
    connectionError(
      opened().push(Buffer.concat([method, header, header])),
      505,
      /content header frame on channel 1 while a body was expected/,
    );
  });

  test('a header of another class is UNEXPECTED_FRAME', () => {
    const other = Buffer.from(header);
    other.writeUInt16BE(50, 7);
    connectionError(
      opened().push(Buffer.concat([method, other])),
      505,
      /content header for class 50 on channel 1; basic\.publish needs class 60/,
    );
  });

  test('a header too short for its class id is a SYNTAX_ERROR', () => {
    const stub = frame(2, 1, wire('00'));
    connectionError(
      opened().push(Buffer.concat([method, stub])),
      502,
      /^content header: class-id needs 2 bytes at offset 0, 1 left$/,
    );
  });

  test('more body than the header announced is a FRAME_ERROR', () => {
    const long = frame(3, 1, Buffer.from('hello!'));
    const { fatal } = connectionError(
      opened().push(Buffer.concat([method, header, long])),
      501,
      /content body frame of 6 bytes on channel 1; only 5 bytes of the body remain/,
    );
    assert.equal(fatal, false);
  });

  test('a body size past 2^53 - 1 is a FRAME_ERROR', () => {
    const huge = frame(2, 1, wire('003c 0000 ffffffffffffffff 0000'));
    connectionError(
      opened().push(Buffer.concat([method, huge])),
      501,
      /body-size 18446744073709551615 exceeds/,
    );
  });

  test('a body over maxBodySize closes the channel only; its frames are skipped', () => {
    const decoder = opened({ maxBodySize: 10_000 });
    const events = decoder.push(
      Buffer.concat([
        ...message(1, Buffer.alloc(20_000, 1)),
        ...message(2, Buffer.from('other channel')),
        ...message(1, Buffer.from('fits')),
      ]),
    );
    assert.deepEqual(types(events), [
      '1:basic.publish',
      'channel-error',
      '2:basic.publish',
      'header',
      'body',
      '1:basic.publish',
      'header',
      'body',
    ]);
    const refusal = events[1];
    assert.ok(
      refusal.type === 'channel-error' &&
        refusal.error instanceof BodyTooLargeError,
    );
    assert.equal(refusal.channel, 1);
    assert.equal(refusal.error.replyCode, 406);
    assert.equal(refusal.error.scope, 'channel');
    assert.deepEqual([refusal.error.classId, refusal.error.methodId], [60, 40]);
    assert.match(
      refusal.error.message,
      /message size 20000 is larger than configured max size 10000/,
    );
  });
});

/** A basic.deliver of body 'x' on channel 1, with `properties`, as a server sends it. */
function deliverFrames(properties: BasicProperties, frameMax: number): Buffer {
  const method: Method = {
    name: 'basic.deliver',
    consumerTag: 'c',
    deliveryTag: 1,
    redelivered: false,
    exchange: '',
    routingKey: 'q',
  };
  return encodeContent(1, method, properties, Buffer.from('x'), frameMax);
}
