// A channel closed for an error names the method at fault in its
// class-id and method-id, as RabbitMQ does and clients show (amqplib puts
// them on the error). They came as 0 and 0 for every method a channel
// runs in order (declares, binds, consumes) and for publishes; found by a
// session trying the README as a new user.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import type amqp from 'amqplib';

import { useAmqpFixture } from './amqp-fixture.js';
import { Raw } from './raw-client.js';

const fixture = useAmqpFixture('usher-close-ids-');

interface ChannelClose {
  code: number;
  classId: number;
  methodId: number;
}

/** The close `use` brings on a fresh channel. */
async function closeOf(
  use: (channel: amqp.ConfirmChannel) => Promise<unknown>,
): Promise<ChannelClose> {
  const connection = await fixture.connect();
  const channel = await connection.createConfirmChannel();
  const closed = new Promise<ChannelClose>((resolve) => {
    channel.on('error', (err: ChannelClose) => resolve(err));
  });
  await use(channel).catch(() => {});
  const { code, classId, methodId } = await closed;
  return { code, classId, methodId };
}

test('a passive declare of a missing queue names queue.declare (50, 10)', async () => {
  assert.deepEqual(await closeOf((ch) => ch.checkQueue('ids-missing')),
    { code: 404, classId: 50, methodId: 10 });
});

test('a bind to a missing exchange names queue.bind (50, 20)', async () => {
  assert.deepEqual(await closeOf(async (ch) => {
    await ch.assertQueue('ids-bound');
    await ch.bindQueue('ids-bound', 'ids-no-exchange', 'k');
  }), { code: 404, classId: 50, methodId: 20 });
});

test('a consume of a missing queue names basic.consume (60, 20)', async () => {
  assert.deepEqual(await closeOf((ch) => ch.consume('ids-missing', () => {})),
    { code: 404, classId: 60, methodId: 20 });
});

test('a publish to a missing exchange names basic.publish (60, 40)', async () => {
  assert.deepEqual(await closeOf(async (ch) => {
    ch.publish('ids-no-exchange', 'k', Buffer.from('x'));
    await ch.waitForConfirms();
  }), { code: 404, classId: 60, methodId: 40 });
});

test('a method on a channel that is not open names it in the connection close (60, 80)', async () => {
  // An ack sent after its channel's close: aio-pika does this when a
  // handler acks late (new user); RabbitMQ names basic.ack, Usher said 0, 0.
  const raw = new Raw(fixture.port);
  try {
    await raw.open('none');
    raw.method(7, { name: 'basic.ack', deliveryTag: 1, multiple: false });
    const closed = await raw.expect('connection.close');
    assert.ok(closed !== null && closed.name === 'connection.close', JSON.stringify(closed));
    assert.deepEqual([closed.replyCode, closed.classId, closed.methodId], [504, 60, 80]);
  } finally {
    raw.close();
  }
});
