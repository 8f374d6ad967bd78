// The server cancels a consumer whose queue is deleted with basic.cancel,
// but only to a client that says it takes one (its capability
// consumer_cancel_notify), as RabbitMQ does: a client that does not know
// the method would fail on it (breaker session).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { tableFrom } from '../../src/amqp/field-table.js';
import { useAmqpFixture } from './amqp-fixture.js';
import { Raw } from './raw-client.js';

const fixture = useAmqpFixture('usher-cancel-notify-');

async function cancelSeen(queue: string, capabilities: Record<string, boolean>): Promise<boolean> {
  const raw = new Raw(fixture.port);
  try {
    await raw.open('none', tableFrom({ capabilities }));
    raw.method(1, {
      name: 'queue.declare', queue, passive: false, durable: true, exclusive: false,
      autoDelete: false, noWait: false, arguments: new Map(),
    });
    assert.ok(await raw.expect('queue.declare-ok'));
    raw.method(1, {
      name: 'basic.consume', queue, consumerTag: 'c', noLocal: false, noAck: false,
      exclusive: false, noWait: false, arguments: new Map(),
    });
    assert.ok(await raw.expect('basic.consume-ok'));

    const other = await (await fixture.connect()).createChannel();
    await other.deleteQueue(queue);
    // A round trip after the delete: a cancel would have come before it.
    raw.method(1, { name: 'basic.qos', prefetchSize: 0, prefetchCount: 1, global: false });
    await raw.expect('basic.qos-ok');
    return raw.methodsSeen.includes('basic.cancel');
  } finally {
    raw.close();
  }
}

test('a deleted queue cancels its consumer with basic.cancel for a client that takes it', async () => {
  assert.equal(await cancelSeen('notify-yes', { consumer_cancel_notify: true }), true);
});

test('and sends none to a client that does not say it takes one', async () => {
  assert.equal(await cancelSeen('notify-no', {}), false);
});
