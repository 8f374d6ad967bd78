// Deliveries on one connection past the socket's room (amqp-latency: a
// flush at the end of the task, channels woken after a write only when a
// consumer was refused for room). Over amqplib on loopback: many channels,
// bodies of 1 byte to 700 KiB, consumers that ack late, one cancelled
// while its deliveries are under way. Every message must arrive intact,
// within prefetch, and none may be stranded once the socket drains.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { it } from 'node:test';

import type { Channel, ConsumeMessage } from 'amqplib';

import { seededRandom } from '../helpers.js';
import { useAmqpFixture } from './amqp-fixture.js';

const fixture = useAmqpFixture('usher-delivery-backpressure-');

const connect = () => fixture.connect();
const connectStallable = () => fixture.connectStallable();

/** A body of `size` bytes that names itself: its index, then seeded noise. */
function bodyOf(index: number, size: number, random: () => number): Buffer {
  const body = Buffer.alloc(size);
  for (let i = 4; i < size; i++) body[i] = Math.floor(random() * 256);
  body.writeUInt32BE(index, 0);
  return body;
}

const digest = (body: Buffer) => createHash('sha256').update(body).digest('hex');

const QUEUES = 8;
const PER_QUEUE = 40;
const PREFETCH = 8;

it('many channels past the socket room: bodies intact, prefetch kept, none stranded', async () => {
  const publisher = await connect();
  const out = await publisher.createConfirmChannel();
  const random = seededRandom(5);
  // queue -> index -> digest of what was sent
  const sent = new Map<string, Map<number, string>>();
  for (let q = 0; q < QUEUES; q++) {
    const queue = `bp-${q}`;
    await out.assertQueue(queue, { durable: q % 2 === 0 });
    const digests = new Map<number, string>();
    for (let index = 0; index < PER_QUEUE; index++) {
      // Mostly tiny, one in five large: about 28 MiB in all, 7 times the room.
      const size = index % 5 === 0 ? 200_000 + Math.floor(random() * 500_000) : 4 + (index % 7);
      const body = bodyOf(index, size, random);
      digests.set(index, digest(body));
      out.sendToQueue(queue, body, { persistent: q % 2 === 0 });
    }
    sent.set(queue, digests);
  }
  await out.waitForConfirms();

  const { connection: consumer, stall } = await connectStallable();
  const got = new Map<string, Map<number, string>>();
  let overPrefetch = '';
  let cancelledQueue = '';
  const done = new Promise<void>((resolve) => {
    const finished = new Set<string>();
    const consumeOn = async (queue: string, channel: Channel, cancelAfter: number) => {
      await channel.prefetch(PREFETCH);
      const digests = got.get(queue) ?? new Map<number, string>();
      got.set(queue, digests);
      let held = 0;
      let tag = '';
      const onMessage = (message: ConsumeMessage | null) => {
        if (message === null) return;
        held++;
        if (held > PREFETCH) overPrefetch = `${queue} held ${held}`;
        const index = message.content.readUInt32BE(0);
        digests.set(index, digest(message.content));
        // Acked late, so the socket fills while it waits.
        setTimeout(() => {
          held--;
          channel.ack(message);
          if (digests.size >= cancelAfter && tag !== '') {
            // Cancelled with deliveries under way; a new consumer takes the rest.
            const old = tag;
            tag = '';
            cancelledQueue = queue;
            void channel.cancel(old).then(() => consumeOn(queue, channel, Infinity));
          }
          if (digests.size === PER_QUEUE && !finished.has(queue)) {
            finished.add(queue);
            if (finished.size === QUEUES) resolve();
          }
        }, 2);
      };
      tag = (await channel.consume(queue, onMessage)).consumerTag;
    };
    for (let q = 0; q < QUEUES; q++) {
      void consumer.createChannel().then((channel) =>
        consumeOn(`bp-${q}`, channel, q === 3 ? PER_QUEUE / 2 : Infinity));
    }
  });

  // Unread for a while, then read in fits: the broker meets a full socket
  // again and again, and must wake its consumers each time it drains.
  stall(true);
  await sleep(300);
  let stalled = true;
  let ended = false;
  void done.then(() => (ended = true));
  void (async () => {
    for (let fit = 0; fit < 1_000 && !ended; fit++) {
      stalled = !stalled;
      stall(stalled);
      await sleep(stalled ? 30 : 60);
    }
    stall(false);
  })();
  const timeout = sleep(60_000, null, { ref: false }).then(() => 'timeout');
  const finished = await Promise.race([done.then(() => 'done'), timeout]);
  const missing = [...sent].map(([queue, digests]) =>
    `${queue}: ${digests.size - (got.get(queue)?.size ?? 0)}`);
  assert.equal(finished, 'done', `stranded: ${missing.join(', ')}`);
  assert.equal(overPrefetch, '', 'prefetch kept');
  assert.equal(cancelledQueue, 'bp-3', 'a consumer was cancelled mid-way');
  for (const [queue, digests] of sent) {
    assert.deepEqual(got.get(queue), digests, `${queue}: every body as sent`);
  }
});

it('a connection closed mid-flush leaves its messages for the next consumer', async () => {
  const publisher = await connect();
  const out = await publisher.createConfirmChannel();
  const random = seededRandom(9);
  await out.assertQueue('bp-close', { durable: true });
  const digests = new Map<number, string>();
  for (let index = 0; index < 30; index++) {
    const body = bodyOf(index, index % 3 === 0 ? 700_000 : 10, random);
    digests.set(index, digest(body));
    out.sendToQueue('bp-close', body, { persistent: true });
  }
  await out.waitForConfirms();

  // A consumer without prefetch that closes while megabytes are on their way.
  const { connection: first, stall } = await connectStallable();
  const channel = await first.createChannel();
  await channel.prefetch(0);
  let firstGot = 0;
  await channel.consume('bp-close', () => firstGot++);
  stall(true);
  await sleep(200);
  stall(false);
  await sleep(1);
  await first.close();

  const second = await connect();
  const next = await second.createChannel();
  const got = new Map<number, string>();
  const all = new Promise<void>((resolve) => {
    void next.consume('bp-close', (message) => {
      if (message === null) return;
      got.set(message.content.readUInt32BE(0), digest(message.content));
      next.ack(message);
      if (got.size === digests.size) resolve();
    });
  });
  const timeout = sleep(30_000, null, { ref: false }).then(() => 'timeout');
  const finished = await Promise.race([all.then(() => 'done'), timeout]);
  assert.equal(finished, 'done', `got ${got.size} of ${digests.size} (first took ${firstGot})`);
  assert.deepEqual(got, digests);
});
