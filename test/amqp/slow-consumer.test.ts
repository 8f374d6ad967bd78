// Consumer-side protection (issue #6) with amqplib on loopback: prefetch
// bounds what a consumer holds under load, a consumer that stops reading
// its socket does not make the broker buffer the queue for it, and a
// stalled consumer on one queue does not hold up another queue.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';

import { until } from '../helpers.js';
import { useAmqpFixture } from './amqp-fixture.js';

const fixture = useAmqpFixture('usher-slow-consumer-');

const connect = () => fixture.connect();
const connectStallable = () => fixture.connectStallable();

async function fill(queue: string, count: number, bytes: number): Promise<void> {
  await fixture.broker.createQueue(queue, {});
  for (let sent = 0; sent < count; sent += 100) {
    const batch = Array.from({ length: Math.min(100, count - sent) }, () => ({
      body: Buffer.alloc(bytes, 0x61),
    }));
    await fixture.broker.publish(queue, batch);
  }
}

describe('consumer-side protection', () => {
  it('holds a consumer to its prefetch however deep the queue', async () => {
    await fill('prefetched', 500, 100);
    const channel = await (await connect()).createChannel();
    await channel.prefetch(5);
    let received = 0;
    await channel.consume('prefetched', () => void received++, { noAck: false });

    await until('5 deliveries', () => received === 5);
    await sleep(200);
    assert.equal(received, 5);
    const { stats } = fixture.broker.getQueue('prefetched');
    assert.equal(stats.inFlight, 5);
    assert.equal(stats.ready, 495);
  });

  it('buffers a bounded amount for a no-ack consumer that stops reading', async () => {
    const size = 32 * 1024;
    const count = 1000;
    await fill('unread', count, size);
    const { connection, stall } = await connectStallable();
    const channel = await connection.createChannel();
    let received = 0;
    stall(true);
    void channel.consume('unread', () => void received++, { noAck: true });

    // Let the broker push as far as it will.
    let delivered = -1;
    await until('the broker to stop pushing', () => {
      const now = fixture.broker.getQueue('unread').stats.delivered;
      const settled = now === delivered;
      delivered = now;
      return settled && now > 0;
    });
    await sleep(300);
    delivered = fixture.broker.getQueue('unread').stats.delivered;
    // 4 MiB of socket buffer in the broker, one push batch past it, and
    // what the kernel holds on both ends of the loopback connection.
    assert.ok(delivered * size < 12 * 1024 * 1024, `${delivered} messages pushed`);
    assert.ok(fixture.broker.getQueue('unread').stats.ready > 0, 'the rest waits in the queue');

    stall(false);
    await until('every message', () => received === count, 30_000);
    assert.equal(fixture.broker.getQueue('unread').stats.total, 0);
  });

  it('keeps serving one queue while the consumer of another is stuck', async () => {
    await fill('stuck', 300, 32 * 1024);
    await fill('flowing', 300, 100);

    const stuck = await connectStallable();
    const stuckChannel = await stuck.connection.createChannel();
    stuck.stall(true);
    void stuckChannel.consume('stuck', () => {}, { noAck: true });
    const slow = await (await connect()).createChannel();
    await slow.prefetch(1);
    await slow.consume('stuck', () => {}, { noAck: false });

    const channel = await (await connect()).createChannel();
    await channel.prefetch(10);
    let acked = 0;
    await channel.consume('flowing', (message) => {
      if (message === null) return;
      channel.ack(message);
      acked++;
    });
    await until('all of the flowing queue', () => acked === 300);
    assert.ok(fixture.broker.getQueue('stuck').stats.ready > 0);
    stuck.stall(false);
  });
});
