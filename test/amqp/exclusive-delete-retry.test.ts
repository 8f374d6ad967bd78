// An exclusive queue goes with its connection (RabbitMQ). When the log
// refuses that delete, the queue stays locked to every connection (405
// RESOURCE_LOCKED, as RabbitMQ answers before it has reaped a gone
// owner's queue) and the delete is tried again until it is written, or
// until the listener closes.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Channel } from 'amqplib';

import { refusingDisk, until } from '../helpers.js';
import { channelAnswer, openAmqpFixture } from './amqp-fixture.js';
import { Raw } from './raw-client.js';

it('keeps an exclusive queue whose delete failed locked, and deletes it once the disk takes it', {
  timeout: 20_000,
}, async () => {
  const disk = refusingDisk();
  const usher = await openAmqpFixture('usher-exclusive-retry-', { storeIo: disk.io });
  try {
    const owner = await usher.connect();
    const ownerChannel = await owner.createConfirmChannel();
    await ownerChannel.assertQueue('exclusive-retry', { exclusive: true });
    ownerChannel.sendToQueue('exclusive-retry', Buffer.from('kept'));
    await ownerChannel.waitForConfirms();

    disk.refusing = true;
    await owner.close();
    await until('the delete refused', () => disk.refused >= 1);
    assert.equal(usher.broker.hasQueue('exclusive-retry'), true);

    const other = await usher.connect();
    const attempts: Array<[string, (channel: Channel) => Promise<unknown>]> = [
      ['passive declare', (ch) => ch.checkQueue('exclusive-retry')],
      ['exclusive declare', (ch) => ch.assertQueue('exclusive-retry', { exclusive: true })],
      ['shared declare', (ch) => ch.assertQueue('exclusive-retry')],
      ['consume', (ch) => ch.consume('exclusive-retry', () => {})],
      ['get', (ch) => ch.get('exclusive-retry')],
      ['purge', (ch) => ch.purgeQueue('exclusive-retry')],
      ['delete', (ch) => ch.deleteQueue('exclusive-retry')],
    ];
    for (const [what, attempt] of attempts) {
      assert.equal(await channelAnswer(other, attempt), 405, what);
    }
    await until('a retry refused', () => disk.refused >= 2);
    assert.equal(usher.broker.getQueue('exclusive-retry').stats.ready, 1);

    disk.refusing = false;
    await until('the queue deleted', () => !usher.broker.hasQueue('exclusive-retry'), 5000);
    assert.equal(
      await channelAnswer(other, (ch) => ch.assertQueue('exclusive-retry', { exclusive: true })),
      'ok',
      'the name is free again',
    );
  } finally {
    disk.refusing = false;
    await usher.close();
  }
});

it('stops retrying when the listener closes', { timeout: 20_000 }, async () => {
  const disk = refusingDisk();
  const usher = await openAmqpFixture('usher-exclusive-retry-close-', { storeIo: disk.io });
  const broker = usher.broker;
  const deleteQueue = broker.deleteQueue.bind(broker);
  let deletes = 0;
  broker.deleteQueue = (name, options) => {
    deletes++;
    return deleteQueue(name, options);
  };
  let closed = false;
  try {
    const owner = await usher.connect();
    await (await owner.createChannel()).assertQueue('exclusive-close', { exclusive: true });
    disk.refusing = true;
    await owner.close();
    await until('a retry refused', () => disk.refused >= 2);

    const closing = Date.now();
    await usher.close();
    closed = true;
    assert.ok(Date.now() - closing < 3000, 'the close waited for the retries');
    const tried = deletes;
    await sleep(1000);
    assert.equal(deletes, tried, 'a delete tried after the close');
  } finally {
    disk.refusing = false;
    if (!closed) await usher.close();
  }
});

it('deletes exclusive queues whose declares were still being written as their connections went', {
  timeout: 20_000,
}, async () => {
  const usher = await openAmqpFixture('usher-exclusive-declaring-');
  try {
    // The connection ends right behind its declare, while the queue's
    // AMQP arguments (exclusive: gone at restart) are being written,
    // before the queue is made: on most runs for most of these.
    const names = Array.from({ length: 10 }, (_, i) => `exclusive-declaring-${i}`);
    for (const name of names) {
      const raw = new Raw(usher.port);
      await raw.open('none');
      raw.method(1, {
        name: 'queue.declare', queue: name, passive: false, durable: true,
        exclusive: true, autoDelete: false, noWait: false, arguments: new Map(),
      });
      raw.socket.end();
    }
    await until('every queue gone', () => names.every((name) => !usher.broker.hasQueue(name)), 3000);
    // None made after that, and none left locked.
    await sleep(300);
    assert.deepEqual(names.filter((name) => usher.broker.hasQueue(name)), []);
    const other = await usher.connect();
    for (const name of names) {
      assert.equal(await channelAnswer(other, (ch) => ch.assertQueue(name)), 'ok', name);
    }
  } finally {
    await usher.close();
  }
});
