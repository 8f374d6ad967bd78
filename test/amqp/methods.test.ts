import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';

import { AmqpEncodeError, AmqpError } from '../../src/amqp/errors.js';
import { tableFrom } from '../../src/amqp/field-table.js';
import { METHOD_SPECS } from '../../src/amqp/method-table.js';
import {
  METHOD_NAMES,
  type Method,
  type MethodOf,
  decodeMethod,
  encodeMethod,
  methodInfo,
  methodInfoById,
} from '../../src/amqp/methods.js';
import { methodOf } from './arbitraries.js';

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');
}

function amqpError(fn: () => unknown, replyCode: number, pattern: RegExp) {
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

describe('every method round-trips', () => {
  for (const name of METHOD_NAMES) {
    test(name, () => {
      fc.assert(
        fc.property(methodOf(name), (method) => {
          const wire = encodeMethod(method);
          const info = methodInfo(name);
          assert.equal(wire.readUInt16BE(0), info.classId);
          assert.equal(wire.readUInt16BE(2), info.methodId);
          assert.deepEqual(decodeMethod(wire), method);
          assert.deepEqual(encodeMethod(decodeMethod(wire)), wire);
        }),
        { numRuns: 60 },
      );
    });
  }
});

test('the table has the ids of the 0-9-1 spec and RabbitMQ extensions', () => {
  const ids = Object.fromEntries(
    METHOD_NAMES.map((name) => {
      const { classId, methodId } = methodInfo(name);
      return [name, `${classId}/${methodId}`];
    }),
  );
  // connection 12, channel 6, exchange 8, queue 10, basic 18, confirm 2, tx 6
  assert.equal(METHOD_NAMES.length, 62);
  assert.equal(ids['connection.start'], '10/10');
  assert.equal(ids['connection.blocked'], '10/60');
  assert.equal(ids['channel.close-ok'], '20/41');
  assert.equal(ids['exchange.unbind-ok'], '40/51');
  assert.equal(ids['queue.unbind'], '50/50');
  assert.equal(ids['basic.recover-async'], '60/100');
  assert.equal(ids['basic.nack'], '60/120');
  assert.equal(ids['confirm.select-ok'], '85/11');
  assert.equal(ids['tx.rollback-ok'], '90/31');
  assert.equal(methodInfoById(60, 40)?.name, 'basic.publish');
  assert.equal(new Set(Object.values(ids)).size, METHOD_NAMES.length);
});

test('consecutive bits share an octet, lowest bit first', () => {
  const declare: MethodOf<'queue.declare'> = {
    name: 'queue.declare',
    queue: 'q',
    passive: false,
    durable: true,
    exclusive: false,
    autoDelete: true,
    noWait: false,
    arguments: new Map(),
  };
  assert.deepEqual(
    encodeMethod(declare),
    hex(`
      0032 000a      # queue.declare
      0000           # reserved ticket
      01 71          # queue "q"
      0a             # bits: durable (1), auto-delete (3)
      00000000       # arguments: empty table
    `),
  );

  const nack: MethodOf<'basic.nack'> = {
    name: 'basic.nack',
    deliveryTag: 2 ** 32 + 5,
    multiple: false,
    requeue: true,
  };
  assert.deepEqual(encodeMethod(nack), hex('003c 0078  00000001 00000005  02'));
});

test('a bit between other arguments takes an octet of its own', () => {
  const deliver: MethodOf<'basic.deliver'> = {
    name: 'basic.deliver',
    consumerTag: 'c',
    deliveryTag: 1,
    redelivered: true,
    exchange: 'x',
    routingKey: 'k',
  };
  assert.deepEqual(
    encodeMethod(deliver),
    hex('003c 003c  01 63  0000000000000001  01  01 78  01 6b'),
  );
});

test('reserved arguments are written empty and ignored when read', () => {
  const open: MethodOf<'connection.open'> = {
    name: 'connection.open',
    virtualHost: '/',
  };
  assert.deepEqual(encodeMethod(open), hex('000a 0028  01 2f  00  00'));

  // Old clients send a ticket, capabilities and insist: all dropped.
  assert.deepEqual(
    decodeMethod(hex('000a 0028  01 2f  03 61 62 63  01')),
    open,
  );
  assert.deepEqual(decodeMethod(hex('003c 0028  1234  00  01 71  03')), {
    name: 'basic.publish',
    exchange: '',
    routingKey: 'q',
    mandatory: true,
    immediate: true,
  });
});

test('every cut of an encoded method is a SYNTAX_ERROR naming the method', () => {
  fc.assert(
    fc.property(
      fc
        .constantFrom(
          ...METHOD_NAMES.filter((n) => METHOD_SPECS[n].args.length > 0),
        )
        .chain(methodOf),
      (method) => {
        const wire = encodeMethod(method);
        for (let length = 4; length < wire.length; length++) {
          const err = amqpError(
            () => decodeMethod(wire.subarray(0, length)),
            502,
            /needs \d+ bytes/,
          );
          assert.ok(err.message.startsWith(`${method.name}: `), err.message);
          assert.equal(err.scope, 'connection');
          assert.deepEqual(
            [err.classId, err.methodId],
            [wire.readUInt16BE(0), wire.readUInt16BE(2)],
          );
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('bytes after the last argument are a SYNTAX_ERROR', () => {
  const wire = Buffer.concat([
    encodeMethod({ name: 'basic.qos-ok' }),
    Buffer.from([0]),
  ]);
  amqpError(() => decodeMethod(wire), 502, /basic\.qos-ok: 1 bytes left over/);
});

test('a payload too short for its ids is a SYNTAX_ERROR', () => {
  amqpError(() => decodeMethod(hex('003c 00')), 502, /method-id needs 2 bytes/);
});

test('unknown class or method ids are NOT_IMPLEMENTED, with the ids', () => {
  const update = amqpError(
    () => decodeMethod(hex('000a 0046 00000000 00')),
    540,
    /class 10, method 70/,
  );
  assert.deepEqual([update.classId, update.methodId], [10, 70]);
  amqpError(() => decodeMethod(hex('001e 000a')), 540, /class 30, method 10/);
});

test('a delivery tag beyond 2^53 - 1 is refused, not rounded', () => {
  amqpError(
    () => decodeMethod(hex('003c 0050  0020000000000000  00')),
    502,
    /basic\.ack: deliveryTag 9007199254740992 exceeds 9007199254740991/,
  );
  assert.deepEqual(decodeMethod(hex('003c 0050  001fffffffffffff  01')), {
    name: 'basic.ack',
    deliveryTag: Number.MAX_SAFE_INTEGER,
    multiple: true,
  });
});

const DELIVER: MethodOf<'basic.deliver'> = {
  name: 'basic.deliver',
  consumerTag: 'c',
  deliveryTag: 1,
  redelivered: false,
  exchange: '',
  routingKey: 'k',
};

test('values that do not fit are refused on encode with their path', () => {
  const cases: [Method, RegExp][] = [
    [
      {
        name: 'basic.publish',
        exchange: '',
        routingKey: 'k'.repeat(256),
        mandatory: false,
        immediate: false,
      },
      /basic\.publish\.routingKey: shortstr is 256 bytes, the limit is 255/,
    ],
    [
      { name: 'connection.tune', channelMax: 65536, frameMax: 0, heartbeat: 0 },
      /connection\.tune\.channelMax: expected an integer in \[0, 65535\], got 65536/,
    ],
    [
      { name: 'basic.ack', deliveryTag: -1, multiple: false },
      /basic\.ack\.deliveryTag/,
    ],
    [
      { name: 'channel.flow', active: 'yes' } as unknown as Method,
      /channel\.flow\.active: expected a boolean/,
    ],
    [
      {
        name: 'queue.declare-ok',
        queue: 'q',
        messageCount: 1,
      } as unknown as Method,
      /queue\.declare-ok\.consumerCount: expected an integer .* got undefined/,
    ],
    [
      { name: 'queue.purge-ok', messageCount: 1.5 },
      /queue\.purge-ok\.messageCount/,
    ],
    [
      {
        name: 'queue.bind',
        queue: 'q',
        exchange: 'x',
        routingKey: '',
        noWait: false,
        arguments: {},
      } as unknown as Method,
      /queue\.bind\.arguments: a field table must be a Map/,
    ],
    [
      { name: 'basic.consume-ok', consumerTag: 7 } as unknown as Method,
      /basic\.consume-ok\.consumerTag: expected a string, got number/,
    ],
    [
      { name: 'connection.secure', challenge: 'abc' } as unknown as Method,
      /connection\.secure\.challenge: expected a Buffer/,
    ],
    [
      { name: 'basic.frobnicate' } as unknown as Method,
      /unknown method "basic\.frobnicate"/,
    ],
    // basic.deliver has an encoder of its own (methods.ts); it refuses
    // what the table-driven one does, in the same words.
    [
      { ...DELIVER, consumerTag: 'c'.repeat(256) },
      /basic\.deliver\.consumerTag: shortstr is 256 bytes, the limit is 255/,
    ],
    [
      { ...DELIVER, deliveryTag: 1.5 },
      /basic\.deliver\.deliveryTag: expected an integer in \[0, 9007199254740991\], got 1\.5/,
    ],
    [
      { ...DELIVER, redelivered: 1 } as unknown as Method,
      /basic\.deliver\.redelivered: expected a boolean/,
    ],
    [
      { ...DELIVER, exchange: undefined } as unknown as Method,
      /basic\.deliver\.exchange: expected a string, got undefined/,
    ],
    [
      { ...DELIVER, routingKey: 'é'.repeat(128) },
      /basic\.deliver\.routingKey: shortstr is 256 bytes, the limit is 255/,
    ],
  ];
  for (const [method, pattern] of cases) {
    assert.throws(
      () => encodeMethod(method),
      (err: unknown) => {
        assert.ok(err instanceof AmqpEncodeError);
        assert.equal(err.code, 'AMQP_UNENCODABLE');
        assert.match(err.message, pattern);
        return true;
      },
    );
  }
});

test('decoded longstrs are copies of the payload', () => {
  const wire = encodeMethod({
    name: 'connection.secure-ok',
    response: Buffer.from('secret'),
  });
  const method = decodeMethod(wire);
  wire.fill(0);
  assert.deepEqual(method, {
    name: 'connection.secure-ok',
    response: Buffer.from('secret'),
  });
});

test('method types follow the table', () => {
  const declare: MethodOf<'exchange.declare'> = {
    name: 'exchange.declare',
    exchange: 'logs',
    type: 'fanout',
    passive: false,
    durable: true,
    autoDelete: false,
    internal: false,
    noWait: false,
    arguments: tableFrom({ 'alternate-exchange': 'ae' }),
  };
  const ticket: MethodOf<'basic.get'> = {
    name: 'basic.get',
    queue: 'q',
    noAck: true,
    // @ts-expect-error reserved arguments are not part of the type
    _ticket: 0,
  };
  assert.equal(decodeMethod(encodeMethod(declare)).name, 'exchange.declare');
  assert.equal(ticket.name, 'basic.get');
});

// decodeMethod and decodeContentHeader each read with one reader, reset
// for every payload: nothing of a payload read before, or of a read that
// failed half way, may show in the next.
describe('one reader for every payload', () => {
  const publish = (routingKey: string) =>
    encodeMethod({
      name: 'basic.publish',
      exchange: 'orders',
      routingKey,
      mandatory: true,
      immediate: false,
    });

  test('a method read after one cut short is read whole', () => {
    const whole = publish('eu.paid');
    amqpError(() => decodeMethod(whole.subarray(0, 9)), 502, /^basic\.publish: /);

    assert.deepEqual(decodeMethod(whole), {
      name: 'basic.publish',
      exchange: 'orders',
      routingKey: 'eu.paid',
      mandatory: true,
      immediate: false,
    });
  });

  test('offsets and context in errors are the failing payload’s own', () => {
    // Read at an offset first, then a shorter payload from 0 that is cut.
    const padded = Buffer.concat([Buffer.alloc(20, 0xff), publish('eu.paid')]);
    assert.equal(decodeMethod(padded, 20).name, 'basic.publish');

    const ack = encodeMethod({ name: 'basic.ack', deliveryTag: 7, multiple: false });
    amqpError(
      () => decodeMethod(ack.subarray(0, 8)),
      502,
      /^basic\.ack: deliveryTag needs 8 bytes at offset 4, 4 left/,
    );
  });
});
