// A publish whose log write fails is nacked, and publishes on the same
// channel after it are still answered: each flush's landing is chained
// after the one before (channel-publishing.ts flushPublishes), settled
// with nothing, so a failure must neither stop the chain nor go
// unanswered.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';

import type { ConfirmChannel } from 'amqplib';

import { FaultyIo } from '../storage/helpers.js';
import { type AmqpFixture, openAmqpFixture } from './amqp-fixture.js';

let fixture: AmqpFixture;
const io = new FaultyIo();

before(async () => {
  fixture = await openAmqpFixture('usher-confirm-write-failure-', {
    storeIo: io,
    diskFloorBytes: 0,
  });
});

after(() => fixture.close());

/** The publish's answer, or 'unanswered' if none came within 10 s. */
function publish(channel: ConfirmChannel, body: string): Promise<'ack' | 'nack' | 'unanswered'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('unanswered'), 10_000);
    channel.sendToQueue('jobs', Buffer.from(body), { persistent: true }, (err) => {
      clearTimeout(timer);
      resolve(err ? 'nack' : 'ack');
    });
  });
}

it('nacks a publish whose write failed and acks the ones after it', async () => {
  const connection = await fixture.connect();
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue('jobs', { durable: true });
  assert.equal(await publish(channel, 'before'), 'ack');

  io.failNext('writev', 'ENOSPC');
  assert.equal(await publish(channel, 'failed'), 'nack');
  const after = await Promise.all(['one', 'two', 'three'].map((body) => publish(channel, body)));
  assert.deepEqual(after, ['ack', 'ack', 'ack']);

  const stored = await fixture.broker.receive('jobs', { max: 10, waitMs: 0 });
  const bodies = stored.map((message) => message.body.toString()).sort();
  assert.deepEqual(bodies, ['before', 'one', 'three', 'two']);
});
