import assert from 'node:assert/strict';
import { test } from 'node:test';

import { REPLY, replyScope } from '../../src/amqp/constants.js';
import {
  AMQP_ERROR_CODES,
  AmqpEncodeError,
  AmqpError,
  AmqpSyntaxError,
  BodyTooLargeError,
  ChannelError,
  CommandInvalidError,
  FrameError,
  NotImplementedError,
  UnexpectedFrameError,
  fitShortstr,
} from '../../src/amqp/errors.js';

test('each error class carries its reply code, code and scope', () => {
  const cases: [AmqpError, number, string][] = [
    [new FrameError('f'), 501, 'AMQP_FRAME_ERROR'],
    [new AmqpSyntaxError('s'), 502, 'AMQP_SYNTAX_ERROR'],
    [new CommandInvalidError('c'), 503, 'AMQP_COMMAND_INVALID'],
    [new ChannelError('c'), 504, 'AMQP_CHANNEL_ERROR'],
    [new UnexpectedFrameError('u'), 505, 'AMQP_UNEXPECTED_FRAME'],
    [new NotImplementedError('n'), 540, 'AMQP_NOT_IMPLEMENTED'],
    [new BodyTooLargeError(2, 1), 406, 'AMQP_PRECONDITION_FAILED'],
  ];
  for (const [error, replyCode, code] of cases) {
    assert.equal(error.replyCode, replyCode);
    assert.equal(error.code, code);
    assert.ok(AMQP_ERROR_CODES.includes(code));
    assert.equal(error.scope, replyCode === 406 ? 'channel' : 'connection');
    assert.equal(error.name, error.constructor.name);
  }
});

test('soft reply codes close the channel, hard ones the connection', () => {
  const channel = Object.entries(REPLY)
    .filter(([, code]) => replyScope(code) === 'channel')
    .map(([name]) => name);
  assert.deepEqual(channel, [
    'CONTENT_TOO_LARGE',
    'NO_ROUTE',
    'NO_CONSUMERS',
    'ACCESS_REFUSED',
    'NOT_FOUND',
    'RESOURCE_LOCKED',
    'PRECONDITION_FAILED',
  ]);
  assert.equal(new AmqpError(404, "no queue 'q'").scope, 'channel');
  assert.equal(new AmqpError(320, 'shutdown').scope, 'connection');
});

test('the broker can raise any error reply code, with the method at fault', () => {
  const error = new AmqpError(
    REPLY.NOT_FOUND,
    "no queue 'orders' in vhost '/'",
    {
      classId: 50,
      methodId: 10,
      cause: new Error('lookup'),
    },
  );
  assert.equal(error.code, 'AMQP_NOT_FOUND');
  assert.equal(error.replyText, "NOT_FOUND - no queue 'orders' in vhost '/'");
  assert.deepEqual([error.classId, error.methodId], [50, 10]);
  assert.ok(error.cause instanceof Error);
  assert.throws(
    () => new AmqpError(200, 'ok'),
    /200 is not an AMQP error reply code/,
  );
  assert.throws(
    () => new AmqpError(999, 'x'),
    /999 is not an AMQP error reply code/,
  );
});

test('reply text is cut to 255 bytes without splitting a character', () => {
  const error = new AmqpError(404, `no queue '${'é'.repeat(200)}'`);
  const text = error.replyText;
  assert.ok(Buffer.byteLength(text) <= 255);
  assert.ok(Buffer.byteLength(text) >= 254);
  assert.ok(text.startsWith("NOT_FOUND - no queue 'éé"));
  assert.equal(fitShortstr('short'), 'short');
  assert.equal(fitShortstr('😀'.repeat(64)), '😀'.repeat(63));
});

test('encode errors say where the value sits', () => {
  const error = new AmqpEncodeError('basic.deliver.routingKey', 'too long');
  assert.equal(error.code, 'AMQP_UNENCODABLE');
  assert.equal(error.field, 'basic.deliver.routingKey');
  assert.equal(
    error.message,
    'cannot encode basic.deliver.routingKey: too long',
  );
  assert.ok(AMQP_ERROR_CODES.includes(error.code));
});
