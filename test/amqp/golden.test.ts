// Frames written out by hand from the AMQP 0-9-1 spec (sections 2.3.5 and
// 4.2, and the class reference), so the codec is checked against the
// protocol and not only against itself.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PROTOCOL_HEADER } from '../../src/amqp/constants.js';
import { tableFrom } from '../../src/amqp/field-table.js';
import {
  encodeContent,
  encodeMethodFrame,
} from '../../src/amqp/frame-encoder.js';
import type { Method } from '../../src/amqp/methods.js';
import { decodeChunks, wire } from './helpers.js';

test('connection.start, as a server sends it', () => {
  const bytes = wire(`
    01 0000 00000062             # method frame, channel 0, 98-byte payload
    000a 000a                    # connection.start
    00 09                        # version 0-9
    00000046                     # server-properties: 70 bytes
      07 "product" 53 00000005 "Usher"
      0c "capabilities" 46 00000022
        12 "publisher_confirms" 74 01
        0a "basic.nack" 74 01
    00000005 "PLAIN"             # mechanisms
    00000005 "en_US"             # locales
    ce
  `);
  const start: Method = {
    name: 'connection.start',
    versionMajor: 0,
    versionMinor: 9,
    serverProperties: tableFrom({
      product: 'Usher',
      capabilities: { publisher_confirms: true, 'basic.nack': true },
    }),
    mechanisms: Buffer.from('PLAIN'),
    locales: Buffer.from('en_US'),
  };
  assert.deepEqual(encodeMethodFrame(0, start), bytes);
  assert.deepEqual(decodeChunks([bytes], { from: 'server' }), [
    { type: 'method', channel: 0, method: start },
  ]);
});

test('basic.publish, its content header and body, as a client sends them', () => {
  const bytes = wire(`
    01 0001 0000000f             # method frame, channel 1, 15 bytes
      003c 0028                  # basic.publish
      0000                       # reserved ticket
      00                         # exchange ""
      06 "orders"                # routing key
      01                         # bits: mandatory
    ce
    02 0001 0000001d             # content header, channel 1, 29 bytes
      003c 0000                  # class basic, weight 0
      00000000 00000005          # body size 5
      9080                       # content-type, delivery-mode, message-id
      0a "text/plain"
      02
      02 "m1"
    ce
    03 0001 00000005 "hello" ce  # body frame
  `);
  const publish: Method = {
    name: 'basic.publish',
    exchange: '',
    routingKey: 'orders',
    mandatory: true,
    immediate: false,
  };
  const properties = {
    contentType: 'text/plain',
    deliveryMode: 2,
    messageId: 'm1',
  };
  assert.deepEqual(
    encodeContent(1, publish, properties, Buffer.from('hello'), 131072),
    bytes,
  );
  assert.deepEqual(decodeChunks([PROTOCOL_HEADER, bytes]), [
    { type: 'protocol-header' },
    { type: 'method', channel: 1, method: publish },
    {
      type: 'header',
      channel: 1,
      header: { classId: 60, bodySize: 5, properties },
    },
    { type: 'body', channel: 1, body: Buffer.from('hello'), last: true },
  ]);
});

test('basic.deliver with a delivery tag past 32 bits', () => {
  const bytes = wire(`
    01 0002 0000001a             # method frame, channel 2, 26 bytes
      003c 003c                  # basic.deliver
      04 "ctag"                  # consumer tag
      00000001 00000007          # delivery tag 2^32 + 7
      01                         # redelivered
      00                         # exchange ""
      06 "orders"                # routing key
    ce
    02 0002 0000000f
      003c 0000 00000000 00000005
      0800 03                    # priority 3
    ce
    03 0002 00000005 "hello" ce
  `);
  const deliver: Method = {
    name: 'basic.deliver',
    consumerTag: 'ctag',
    deliveryTag: 2 ** 32 + 7,
    redelivered: true,
    exchange: '',
    routingKey: 'orders',
  };
  assert.deepEqual(
    encodeContent(2, deliver, { priority: 3 }, Buffer.from('hello'), 4096),
    bytes,
  );
  assert.deepEqual(decodeChunks([bytes], { from: 'server' })[0], {
    type: 'method',
    channel: 2,
    method: deliver,
  });
});

test('connection.close with a reply code and text', () => {
  const bytes = wire(`
    01 0000 00000027
      000a 0032                  # connection.close
      0140                       # 320 CONNECTION_FORCED
      1c "CONNECTION_FORCED - shutdown"
      0000 0000                  # not caused by a method
    ce
  `);
  const close: Method = {
    name: 'connection.close',
    replyCode: 320,
    replyText: 'CONNECTION_FORCED - shutdown',
    classId: 0,
    methodId: 0,
  };
  assert.deepEqual(encodeMethodFrame(0, close), bytes);
  assert.deepEqual(decodeChunks([bytes], { from: 'server' })[0], {
    type: 'method',
    channel: 0,
    method: close,
  });
});

test('connection.tune and tune-ok', () => {
  const tune = wire('01 0000 0000000c  000a 001e  07ff 00020000 003c  ce');
  const method: Method = {
    name: 'connection.tune',
    channelMax: 2047,
    frameMax: 131072,
    heartbeat: 60,
  };
  assert.deepEqual(encodeMethodFrame(0, method), tune);
  const tuneOk = wire('01 0000 0000000c  000a 001f  07ff 00020000 003c  ce');
  assert.deepEqual(decodeChunks([PROTOCOL_HEADER, tuneOk])[1], {
    type: 'method',
    channel: 0,
    method: { ...method, name: 'connection.tune-ok' },
  });
});
