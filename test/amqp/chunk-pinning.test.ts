// Bodies published over AMQP are kept as views of the socket chunk they
// arrived in when that costs little (pinsLittle, connection.ts). A chunk
// that held one kept 16 KiB body among 48 KiB of unroutable publishes
// must not stay whole in memory for that body: queue byte limits and the
// hot-body budget count 16 KiB, and it held 64 KiB (3.2x, measured).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { useAmqpFixture } from './amqp-fixture.js';

const fixture = useAmqpFixture('usher-chunk-pinning-');

const KEPT_BYTES = 16 * 1024;
// With a kept body, about one 64 KiB socket read: the kept body is a
// quarter of it, as much as pinsLittle lets one body hold.
const UNROUTABLE_BYTES = 48_000;
const PAIRS = 300;
/** The ticket event: a body never kept as a view of its chunk (pinsLittle). */
const SMALL_BYTES = 464;

/** Bytes of memory the bodies hold: each distinct ArrayBuffer once. */
function heldBytes(bodies: readonly Buffer[]): number {
  const memories = new Set<ArrayBufferLike>(bodies.map((body) => body.buffer));
  let held = 0;
  for (const memory of memories) held += memory.byteLength;
  return held;
}

async function publishAmongUnroutable(queue: string, durable: boolean): Promise<Buffer[]> {
  const connection = await fixture.connect();
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(queue, { durable });
  const kept = Buffer.alloc(KEPT_BYTES, 0x6b);
  const unroutable = Buffer.alloc(UNROUTABLE_BYTES, 0x75);
  for (let i = 0; i < PAIRS; i++) {
    channel.publish('', queue, kept);
    channel.publish('', 'no-such-queue', unroutable);
  }
  await channel.waitForConfirms();

  const bodies: Buffer[] = [];
  while (bodies.length < PAIRS) {
    const received = await fixture.broker.receive(queue, { max: 1000, waitMs: 0 });
    assert.ok(received.length > 0, `only ${bodies.length} of ${PAIRS} messages stored`);
    for (const message of received) bodies.push(message.body);
  }
  await connection.close();
  return bodies;
}

describe('bodies kept from socket chunks that were mostly not kept', () => {
  for (const durable of [false, true]) {
    it(`hold at most twice their bytes (${durable ? 'durable' : 'memory'} queue)`, async () => {
      const bodies = await publishAmongUnroutable(`pinning-${durable}`, durable);

      const bodyBytes = bodies.reduce((sum, body) => sum + body.length, 0);
      assert.equal(bodyBytes, PAIRS * KEPT_BYTES);
      assert.ok(bodies.every((body) => body.every((byte) => byte === 0x6b)), 'bodies intact');
      const held = heldBytes(bodies);
      assert.ok(held <= 2 * bodyBytes, `${bodyBytes} body bytes hold ${held} bytes`);
    });
  }

  // Durable to AMQP, but made over HTTP with durability "memory": nothing
  // is logged, so the broker copies none of the bodies it keeps.
  it('hold at most twice their bytes (AMQP-durable queue kept in memory)', async () => {
    await fixture.broker.createQueue('pinning-memory', { durability: 'memory' });
    const connection = await fixture.connect();
    const channel = await connection.createConfirmChannel();
    const small = Buffer.alloc(SMALL_BYTES, 0x6b);
    const unroutable = Buffer.alloc(UNROUTABLE_BYTES, 0x75);
    for (let i = 0; i < PAIRS; i++) {
      channel.publish('', 'pinning-memory', small);
      channel.publish('', 'no-such-queue', unroutable);
    }
    await channel.waitForConfirms();
    const received = await fixture.broker.receive('pinning-memory', { max: 1000, waitMs: 0 });
    await connection.close();

    assert.equal(received.length, PAIRS);
    const bodies = received.map((message) => message.body);
    assert.ok(bodies.every((body) => body.equals(small)), 'bodies intact');
    const bodyBytes = PAIRS * SMALL_BYTES;
    const held = heldBytes(bodies);
    assert.ok(held <= 2 * bodyBytes, `${bodyBytes} body bytes hold ${held} bytes`);
  });
});

// Small bodies are never kept as views of their chunk: the broker copies
// one it keeps in memory. A publish refused under reject-publish-dlx is
// kept only as its dead-lettered copies, which must not view the chunk
// either, here one mostly of unroutable publishes.
describe('small bodies refused into a dead-letter queue', () => {
  const REFUSED = 300;

  it('hold at most twice their bytes', async () => {
    const connection = await fixture.connect();
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue('pinning-dead', { durable: true });
    await channel.assertQueue('pinning-full', {
      durable: true,
      arguments: {
        'x-max-length': 0,
        'x-overflow': 'reject-publish-dlx',
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'pinning-dead',
      },
    });
    const small = Buffer.alloc(SMALL_BYTES, 0x73);
    const unroutable = Buffer.alloc(UNROUTABLE_BYTES, 0x75);
    // Every publish answered, the refused ones with a nack (waitForConfirms
    // would reject at the first).
    let nacked = 0;
    await new Promise<void>((resolve) => {
      let answered = 0;
      const onAnswer = (err: unknown) => {
        if (err) nacked++;
        if (++answered === 2 * REFUSED) resolve();
      };
      for (let i = 0; i < REFUSED; i++) {
        channel.publish('', 'pinning-full', small, {}, onAnswer);
        channel.publish('', 'no-such-queue', unroutable, {}, onAnswer);
      }
    });
    assert.equal(nacked, REFUSED);

    const bodies: Buffer[] = [];
    while (bodies.length < REFUSED) {
      const received = await fixture.broker.receive('pinning-dead', { max: 1000, waitMs: 0 });
      assert.ok(received.length > 0, `only ${bodies.length} of ${REFUSED} dead-lettered`);
      for (const message of received) bodies.push(message.body);
    }
    await connection.close();

    assert.ok(bodies.every((body) => body.equals(small)), 'bodies intact');
    const bodyBytes = REFUSED * SMALL_BYTES;
    const held = heldBytes(bodies);
    assert.ok(held <= 2 * bodyBytes, `${bodyBytes} body bytes hold ${held} bytes`);
  });
});
