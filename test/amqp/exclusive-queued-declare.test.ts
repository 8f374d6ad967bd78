// Exclusive queues and their gone connections, beyond
// exclusive-delete-retry.test.ts: a declare that waited for another
// declare of its name (oneDeclareAtATime) as its connection went.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Channel, ChannelModel } from 'amqplib';

import { failNextToFinish, heldDisk, until } from '../helpers.js';
import { openAmqpFixture } from './amqp-fixture.js';
import { Raw } from './raw-client.js';

/** The reply code of the channel error `attempt` causes, or 'ok'. */
async function answer(
  connection: ChannelModel,
  attempt: (channel: Channel) => Promise<unknown>,
): Promise<number | 'ok'> {
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  try {
    await attempt(channel);
    await channel.close();
    return 'ok';
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

it('makes no exclusive queue for a connection gone while its declare waited behind one that failed', {
  timeout: 20_000,
}, async () => {
  const disk = heldDisk();
  const failing = failNextToFinish(disk.io);
  const usher = await openAmqpFixture('usher-exclusive-queued-', {
    storeIo: failing.io, sync: true,
  });
  try {
    // A shared declare of the name, held on its way to the log.
    const first = await usher.connect();
    disk.hold();
    const firstAnswer = answer(first, (ch) => ch.assertQueue('queued-exclusive'));
    await until('the first declare held', () => disk.syncsWaiting >= 1);

    // An exclusive declare of it waits behind that one; its connection goes.
    const gone = new Raw(usher.port);
    await gone.open('none');
    gone.method(1, {
      name: 'queue.declare', queue: 'queued-exclusive', passive: false, durable: true,
      exclusive: true, autoDelete: false, noWait: false, arguments: new Map(),
    });
    await sleep(100);
    gone.socket.destroy();
    await sleep(200);

    // The first declare fails: the waiting one makes the queue, for no one.
    failing.arm();
    disk.release();
    assert.notEqual(await firstAnswer, 'ok', 'the first declare failed');

    // Behind the waiting declare too (oneDeclareAtATime).
    const other = await usher.connect();
    assert.equal(await answer(other, (ch) => ch.assertQueue('queued-exclusive')), 'ok',
      'the name is free, not locked by a connection that has gone');
  } finally {
    disk.release();
    await usher.close();
  }
});
