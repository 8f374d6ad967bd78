// The decoder's states: the protocol header first, and what still comes
// out once we close a channel or the connection.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { PROTOCOL_HEADER } from '../../src/amqp/constants.js';
import { AmqpFrameDecoder } from '../../src/amqp/frame-decoder.js';
import {
  encodeMethodFrame,
  heartbeatFrame,
} from '../../src/amqp/frame-encoder.js';
import {
  closeOk,
  connectionError,
  decodeChunks,
  frame,
  message,
  opened,
  types,
  wire,
} from './helpers.js';

describe('closing', () => {
  test('after a connection error only connection.close and close-ok come out', () => {
    const decoder = opened();
    const events = decoder.push(
      Buffer.concat([
        frame(1, 1, wire('003c')),
        encodeMethodFrame(1, { name: 'channel.open' }),
        ...message(1, Buffer.from('dropped')),
        heartbeatFrame(),
        frame(9, 0, Buffer.alloc(0)),
        encodeMethodFrame(0, {
          name: 'connection.close',
          replyCode: 200,
          replyText: '',
          classId: 0,
          methodId: 0,
        }),
        encodeMethodFrame(0, closeOk),
      ]),
    );
    assert.deepEqual(types(events), [
      'connection-error',
      '0:connection.close',
      '0:connection.close-ok',
    ]);
  });

  test('closeConnection() drops all but connection.close/close-ok', () => {
    const decoder = opened();
    decoder.closeConnection();
    const events = decoder.push(
      Buffer.concat([
        ...message(1, Buffer.from('x')),
        encodeMethodFrame(0, closeOk),
      ]),
    );
    assert.deepEqual(types(events), ['0:connection.close-ok']);
  });

  test('closeChannel() drops the channel until its close-ok, checking sequence all along', () => {
    const decoder = opened();
    decoder.closeChannel(1);
    const events = decoder.push(
      Buffer.concat([
        ...message(1, Buffer.from('in flight')),
        encodeMethodFrame(1, {
          name: 'basic.ack',
          deliveryTag: 1,
          multiple: false,
        }),
        ...message(2, Buffer.from('other')),
        encodeMethodFrame(1, { name: 'channel.close-ok' }),
        encodeMethodFrame(1, { name: 'channel.open' }),
      ]),
    );
    assert.deepEqual(types(events), [
      '2:basic.publish',
      'header',
      'body',
      '1:channel.close-ok',
      '1:channel.open',
    ]);

    decoder.closeChannel(3);
    connectionError(
      decoder.push(message(3, Buffer.from('x'))[2]),
      505,
      /content body frame on channel 3 with no header/,
    );
  });
});

describe('protocol header', () => {
  test('the 0-9-1 and 0-9 headers are accepted, byte by byte too', () => {
    for (const header of [PROTOCOL_HEADER, wire('"AMQP" 01 01 00 09')]) {
      const events = decodeChunks([...header].map((b) => Buffer.from([b])));
      assert.deepEqual(events, [{ type: 'protocol-header' }]);
    }
  });

  test('another version is answered with ours once all 8 bytes are in', () => {
    const decoder = new AmqpFrameDecoder();
    assert.deepEqual(decoder.push(wire('"AMQP" 00 00 09')), []);
    const events = decoder.push(wire('00'));
    assert.deepEqual(events, [
      {
        type: 'protocol-mismatch',
        reply: PROTOCOL_HEADER,
        received: wire('"AMQP" 00 00 09 00'),
      },
    ]);
    assert.deepEqual(decoder.push(encodeMethodFrame(0, closeOk)), []);
  });

  test('AMQP 1.0 is answered with our header', () => {
    const events = decodeChunks([wire('"AMQP" 00 01 00 00')]);
    assert.equal(events[0].type, 'protocol-mismatch');
  });

  test('something that is not AMQP is answered at its first byte', () => {
    const events = new AmqpFrameDecoder().push(Buffer.from('G'));
    assert.deepEqual(events, [
      {
        type: 'protocol-mismatch',
        reply: PROTOCOL_HEADER,
        received: Buffer.from('G'),
      },
    ]);
    const http = decodeChunks([Buffer.from('GET / HTTP/1.1\r\n')]);
    assert.ok(http[0].type === 'protocol-mismatch');
    assert.deepEqual(http[0].received, Buffer.from('GET / HT'));
  });
});
