// Publishes read while a method before them is still pending wait behind
// it, copied (channel-publishing.ts, queuePublish). Their bodies count
// toward the connection's bound of bodies not published yet, as
// unfinished and transaction-held ones do; they were bounded only by
// count (20,000).
// And a channel that closes with publishes still queued settles them: its
// connection's count of unanswered publishes no longer keeps them.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { encodeContent } from '../../src/amqp/frame-encoder.js';
import type { Method } from '../../src/amqp/methods.js';
import { heldDisk } from '../helpers.js';
import { useAmqpFixture } from './amqp-fixture.js';
import { FRAME_MAX, Raw } from './raw-client.js';

const MiB = 1024 * 1024;
const disk = heldDisk();
const fixture = useAmqpFixture('usher-queued-publish-', { sync: true, storeIo: disk.io },
  { heldBodyLimits: { connection: 32 * MiB, all: 96 * MiB } });

const publish: Method = {
  name: 'basic.publish', exchange: '', routingKey: 'queued', mandatory: false, immediate: false,
};

test('publishes queued behind a pending purge count toward the connection\'s bound', {
  timeout: 30_000,
}, async () => {
  const raw = new Raw(fixture.port);
  try {
    await raw.open('none');
    raw.method(1, {
      name: 'queue.declare', queue: 'queued', passive: false, durable: true, exclusive: false,
      autoDelete: false, noWait: false, arguments: new Map(),
    });
    assert.ok(await raw.expect('queue.declare-ok'));

    // The purge waits for the publish before it to land, and the disk holds it.
    disk.hold();
    raw.send(encodeContent(1, publish, { deliveryMode: 2 }, Buffer.from('first'), FRAME_MAX));
    raw.method(1, { name: 'queue.purge', queue: 'queued', noWait: false });
    for (let i = 0; i < 40; i++) {
      raw.send(encodeContent(1, publish, { deliveryMode: 2 }, Buffer.alloc(MiB, 2), FRAME_MAX));
    }
    const closed = await raw.expect('connection.close');
    assert.equal(closed?.name === 'connection.close' && closed.replyCode, 506);
  } finally {
    disk.release();
    raw.close();
  }
});
