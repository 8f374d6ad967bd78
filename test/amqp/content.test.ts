import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import {
  type BasicProperties,
  DELIVERY_HEADERS_BUDGET,
  decodeContentHeader,
  encodeContentHeader,
  encodeProperties,
} from '../../src/amqp/content.js';
import {
  AmqpEncodeError,
  AmqpError,
  BodyTooLargeError,
} from '../../src/amqp/errors.js';
import { TOO_MANY_ENTRIES, tableFrom } from '../../src/amqp/field-table.js';
import { properties } from './arbitraries.js';

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');
}

function amqpError(
  fn: () => unknown,
  replyCode: number,
  pattern: RegExp,
): AmqpError {
  let caught: AmqpError | undefined;
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AmqpError, String(err));
    assert.equal(err.replyCode, replyCode);
    assert.match(err.message, pattern);
    caught = err;
    return true;
  });
  return caught!;
}

const bodySize = fc.oneof(
  fc.integer({ min: 0, max: 1 << 20 }),
  fc.maxSafeNat(),
  fc.constant(2 ** 32),
  fc.constant(Number.MAX_SAFE_INTEGER),
);

test('any subset of the properties round-trips with any body size', () => {
  fc.assert(
    fc.property(properties, bodySize, (props, size) => {
      const wire = encodeContentHeader(size, props);
      assert.deepEqual(decodeContentHeader(wire), {
        classId: 60,
        bodySize: size,
        properties: props,
      });
      assert.deepEqual(
        encodeContentHeader(size, decodeContentHeader(wire).properties),
        wire,
      );
    }),
    { numRuns: 1000 },
  );
});

test('pre-encoded properties give the same bytes', () => {
  fc.assert(
    fc.property(properties, bodySize, (props, size) => {
      assert.deepEqual(
        encodeContentHeader(size, encodeProperties(props)),
        encodeContentHeader(size, props),
      );
    }),
    { numRuns: 300 },
  );
});

test('a header matches bytes written from the spec', () => {
  const wire = hex(`
    003c                   # class basic
    0000                   # weight
    00000001 00000001      # body size 2^32 + 1
    9000                   # flags: content-type (15), delivery-mode (12)
    0a 746578742f706c61696e   # "text/plain"
    02                     # persistent
  `);
  const header = {
    classId: 60,
    bodySize: 2 ** 32 + 1,
    properties: { contentType: 'text/plain', deliveryMode: 2 },
  };
  assert.deepEqual(
    encodeContentHeader(header.bodySize, header.properties),
    wire,
  );
  assert.deepEqual(decodeContentHeader(wire), header);

  const all: BasicProperties = {
    contentType: 'a',
    contentEncoding: 'b',
    headers: tableFrom({ h: true }),
    deliveryMode: 1,
    priority: 9,
    correlationId: 'c',
    replyTo: 'd',
    expiration: '60000',
    messageId: 'e',
    timestamp: 1_700_000_000n,
    type: 'f',
    userId: 'g',
    appId: 'h',
    clusterId: 'i',
  };
  const full = encodeContentHeader(0, all);
  assert.equal(full.readUInt16BE(12), 0xfffc);
  assert.deepEqual(full.subarray(14, 22), hex('01 61  01 62  00000004'));
});

test('a body size past 2^53 - 1 is a FRAME_ERROR, not a rounded number', () => {
  const err = amqpError(
    () => decodeContentHeader(hex('003c 0000 0020000000000000 0000')),
    501,
    /body-size 9007199254740992 exceeds 9007199254740991/,
  );
  assert.equal(err.scope, 'connection');
  assert.equal(
    decodeContentHeader(hex('003c 0000 001fffffffffffff 0000')).bodySize,
    Number.MAX_SAFE_INTEGER,
  );
});

test('a body over maxBodySize is a 406 on the channel, before the properties are read', () => {
  const err = amqpError(
    () =>
      decodeContentHeader(hex('003c 0000 0000000000000401 ffff'), {
        maxBodySize: 1024,
        classId: 60,
        methodId: 40,
      }),
    406,
    /message size 1025 is larger than configured max size 1024/,
  );
  assert.ok(err instanceof BodyTooLargeError);
  assert.equal(err.scope, 'channel');
  assert.equal(err.bodySize, 1025);
  assert.deepEqual([err.classId, err.methodId], [60, 40]);
  assert.equal(
    decodeContentHeader(hex('003c 0000 0000000000000400 0000'), {
      maxBodySize: 1024,
    }).bodySize,
    1024,
  );
});

test("a publisher's headers past 256 entries are skipped; the properties after are read", () => {
  const headers = new Map(
    Array.from({ length: 300 }, (_, i) => [`h${i}`, { type: 'I' as const, value: i }]),
  );
  const wire = encodeContentHeader(5, { headers, deliveryMode: 2, messageId: 'm-1' });

  const published = decodeContentHeader(wire).properties;
  assert.equal(published.headers, TOO_MANY_ENTRIES);
  assert.equal(published.deliveryMode, 2);
  assert.equal(published.messageId, 'm-1');

  // A client reads a delivery's headers whole: the broker adds its own.
  const delivered = decodeContentHeader(wire, { headersBudget: DELIVERY_HEADERS_BUDGET });
  assert.deepEqual(delivered.properties, { headers, deliveryMode: 2, messageId: 'm-1' });
});

test('continuation flag words are read; properties they would announce are refused', () => {
  assert.deepEqual(
    decodeContentHeader(hex('003c 0000 0000000000000000  0801 0001 0000  05'))
      .properties,
    { priority: 5 },
  );
  amqpError(
    () => decodeContentHeader(hex('003c 0000 0000000000000000 0001 8000')),
    502,
    /unknown property flags 0x8000 in a continuation/,
  );
  amqpError(
    () => decodeContentHeader(hex('003c 0000 0000000000000000 0002')),
    502,
    /unknown property flags 0x2/,
  );
});

test('every cut of a header is a SYNTAX_ERROR', () => {
  fc.assert(
    fc.property(properties, (props) => {
      const wire = encodeContentHeader(10, props);
      for (let length = 0; length < wire.length; length++) {
        amqpError(
          () => decodeContentHeader(wire.subarray(0, length)),
          502,
          /^content header: .* needs \d+ bytes/,
        );
      }
    }),
    { numRuns: 100 },
  );
});

test('bytes after the properties are a SYNTAX_ERROR', () => {
  amqpError(
    () => decodeContentHeader(hex('003c 0000 0000000000000000 0000 00')),
    502,
    /1 bytes left over after the properties/,
  );
});

test('a header for a class without content is NOT_IMPLEMENTED', () => {
  amqpError(
    () => decodeContentHeader(hex('0046 0000 0000000000000000 0000')),
    540,
    /content header for class 70/,
  );
});

test('properties that do not fit are refused on encode', () => {
  const cases: [BasicProperties, RegExp][] = [
    [
      { priority: 256 },
      /properties\.priority: expected an integer in \[0, 255\]/,
    ],
    [{ deliveryMode: -1 }, /properties\.deliveryMode/],
    [
      { timestamp: 1 as unknown as bigint },
      /properties\.timestamp: expected a u64 bigint, got 1/,
    ],
    [
      { replyTo: 'r'.repeat(300) },
      /properties\.replyTo: shortstr is 300 bytes/,
    ],
    [
      { headers: new Map([['bad', { type: 'b', value: 999 }]]) },
      /properties\.headers\.bad/,
    ],
  ];
  for (const [props, pattern] of cases) {
    assert.throws(
      () => encodeProperties(props),
      (err: unknown) => {
        assert.ok(err instanceof AmqpEncodeError);
        assert.match(err.message, pattern);
        return true;
      },
    );
  }
  assert.throws(() => encodeContentHeader(-1, {}), /bodySize/);
});
