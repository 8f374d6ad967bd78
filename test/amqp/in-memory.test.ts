// A queue declared durable=false is a memory queue: its messages are not
// logged, so they are confirmed without waiting for the disk and are gone
// after a restart with the queue, as in RabbitMQ. Everything else is
// confirmed only once durable, and comes back.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import amqp from 'amqplib';

import { createAmqpServer } from '../../src/amqp/server.js';
import type { Broker } from '../../src/broker/broker.js';
import { heldDisk, openBroker, silentLogger, tempDir, until } from '../helpers.js';

const dir = tempDir('usher-amqp-in-memory-');
after(() => dir.remove());

async function serve(broker: Broker) {
  const server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1 << 20,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  const connection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
  return { server, connection };
}

function publish(channel: amqp.ConfirmChannel, queue: string, persistent: boolean) {
  let state = 'waiting';
  const confirm = new Promise<void>((resolve, reject) => {
    channel.sendToQueue(queue, Buffer.from(`${queue} ${persistent}`), { persistent },
      (err) => {
        state = err ? 'nacked' : 'acked';
        if (err) reject(err);
        else resolve();
      });
  });
  return { confirm, state: () => state };
}

test('a non-durable queue is a memory queue: confirmed before the sync, gone after a restart',
  { timeout: 10_000 }, async () => {
  const disk = heldDisk();
  const broker = await openBroker(dir.path, { sync: true, storeIo: disk.io });
  const { server, connection } = await serve(broker);
  try {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue('memory', { durable: false });
    await channel.assertQueue('disk', { durable: true });

    disk.hold();
    // Persistent or not, a message on a non-durable queue is never logged
    // (the queue itself is not), as RabbitMQ loses both on a restart.
    await publish(channel, 'memory', true).confirm;
    await publish(channel, 'memory', false).confirm;
    const onDurableQueue = publish(channel, 'disk', false);

    await sleep(200);
    assert.equal(onDurableQueue.state(), 'waiting', 'confirmed before durable');

    disk.release();
    await onDurableQueue.confirm;
    assert.equal(broker.getQueue('memory').stats.ready, 2);
  } finally {
    disk.release();
    await connection.close();
    await server.close();
    await broker.close();
  }

  const reopened = await openBroker(dir.path, { sync: true });
  try {
    assert.throws(() => reopened.getQueue('memory'), { code: 'QUEUE_NOT_FOUND' });
    assert.equal(reopened.getQueue('disk').stats.ready, 1);
  } finally {
    await reopened.close();
  }
});

test('transient on a non-durable queue alone: confirmed while the disk is held',
  { timeout: 10_000 }, async () => {
  const disk = heldDisk();
  const broker = await openBroker(dir.path, { sync: true, storeIo: disk.io });
  const { server, connection } = await serve(broker);
  try {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue('memory-only', { durable: false });
    await channel.prefetch(10);
    disk.hold();

    await publish(channel, 'memory-only', false).confirm;
    // Consumed and acked with the disk still held: nothing to log.
    const consumer = await connection.createChannel();
    const got = await new Promise<string>((resolve) => {
      void consumer.consume('memory-only', (message) => {
        consumer.ack(message!);
        resolve(message!.content.toString());
      });
    });
    assert.equal(got, 'memory-only false');
    // The ack is sent without an answer: waited for, not slept on (50 ms
    // was too short once, with the machine busy).
    await until('the ack, with the disk held', () =>
      broker.getQueue('memory-only').stats.inFlight === 0, 3000);
    assert.equal(broker.getQueue('memory-only').stats.ready, 0);
  } finally {
    disk.release();
    await connection.close();
    await server.close();
    await broker.close();
  }
});
