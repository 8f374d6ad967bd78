// The properties a channel keeps from its last delivery (LastProperties,
// delivery-properties.ts) must be exactly what mapping each message
// afresh gives, whatever changes from one message to the next.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import { DEATH_HEADERS } from '../../src/broker/dead-letter.js';
import type { ReceivedMessage } from '../../src/broker/types.js';
import { encodeProperties } from '../../src/amqp/content.js';
import { LastProperties, propertiesOf } from '../../src/amqp/delivery-properties.js';
import { EXCHANGE_HEADER, ROUTING_KEY_HEADER } from '../../src/amqp/mapping.js';

const BASE = {
  'delivery-mode': '2',
  [EXCHANGE_HEADER]: '',
  [ROUTING_KEY_HEADER]: 'orders',
};

function message(headers: Record<string, string>, priority = 0, attempt = 1): ReceivedMessage {
  return {
    id: 'm', queue: 'orders', receipt: 'r', body: Buffer.alloc(0), headers, priority,
    group: null, attempt, redelivered: attempt > 1, publishedAt: 0, leaseDeadline: 0,
  };
}

function bytesOf(properties: ReturnType<LastProperties['of']>): Buffer {
  return Buffer.isBuffer(properties) ? properties : encodeProperties(properties);
}

test('the same headers again give the kept bytes, equal to a fresh mapping', () => {
  const last = new LastProperties();
  const first = last.of(message({ ...BASE }));
  const second = last.of(message({ ...BASE }));
  assert.equal(second, first, 'kept');
  assert.deepEqual(bytesOf(second), encodeProperties(propertiesOf(message({ ...BASE }))));
});

test('any change of headers, their order, priority or attempt maps afresh', () => {
  const variants: ReceivedMessage[] = [
    message({ ...BASE }),
    message({ ...BASE, 'delivery-mode': '1' }),
    message({ [ROUTING_KEY_HEADER]: 'orders', 'delivery-mode': '2', [EXCHANGE_HEADER]: '' }),
    message({ ...BASE, 'content-type': 'text/plain' }),
    message({ ...BASE, 'x-tenant': 'a' }),
    message({ ...BASE, 'x-tenant': 'b' }),
    message({ 'delivery-mode': '2', [EXCHANGE_HEADER]: '' }),
    message({ ...BASE }, 3),
    message({ ...BASE }, 0, 2),
    message(JSON.parse('{"__proto__":"x","delivery-mode":"2"}')),
    message({ ...BASE, [DEATH_HEADERS.history]: '[]' }),
    message({}),
  ];
  fc.assert(
    fc.property(fc.array(fc.nat(variants.length - 1), { maxLength: 40 }), (picks) => {
      const last = new LastProperties();
      for (const pick of picks) {
        const got = bytesOf(last.of(variants[pick]));
        assert.deepEqual(got, encodeProperties(propertiesOf(variants[pick])), `variant ${pick}`);
      }
    }),
  );
});
