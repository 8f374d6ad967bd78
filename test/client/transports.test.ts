// The same client cases over both transports, against one real
// `usher serve`: connect('http://...') and connect('amqp://...') must give
// the same answers wherever AMQP can express the call, and over AMQP the
// rest must throw UNSUPPORTED naming the method.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  UsherClientError,
  connect,
  type UsherClient,
} from '../../src/client/index.js';
import { startUsher, type UsherServer } from './usher-process.js';

let server: UsherServer;
const clients: UsherClient[] = [];

before(async () => {
  server = await startUsher();
});

after(async () => {
  for (const client of clients) await client.close();
  await server?.stop();
});

async function refusal(call: Promise<unknown>): Promise<UsherClientError> {
  const err = await call.then(
    () => assert.fail('expected the call to be refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof UsherClientError, `not an UsherClientError: ${err}`);
  return err;
}

/** Receives until `count` messages came, for at most `ms`. */
async function receiveAll(usher: UsherClient, queue: string, count: number, ms = 3000) {
  const got = [];
  const deadline = Date.now() + ms;
  while (got.length < count && Date.now() < deadline) {
    got.push(...(await usher.receive(queue, { max: count - got.length, waitMs: 200 })));
  }
  return got;
}

for (const transport of ['http', 'amqp'] as const) {
  describe(`client over ${transport}`, () => {
    let usher: UsherClient;
    const q = (name: string) => `${transport}.${name}`;

    before(() => {
      usher = connect(transport === 'http' ? server.url : server.amqpUrl);
      clients.push(usher);
    });

    it('round-trips JSON, text and bytes, and acks them all', async () => {
      assert.equal((await usher.createQueue(q('bodies'))).created, true);
      assert.equal((await usher.createQueue(q('bodies'))).created, false);
      const bytes = Buffer.from([0x00, 0x01, 0xff, 0xfe]);
      const view = new Uint8Array([9, 9, 0x80, 0x81, 9]).subarray(2, 4);
      for (const body of [{ order: 7, items: ['a', 'b'] }, 'plain text', bytes, view, 42]) {
        await usher.publish(q('bodies'), body);
      }

      const messages = await receiveAll(usher, q('bodies'), 5);
      assert.deepEqual(messages.map((m) => m.body), [
        { order: 7, items: ['a', 'b'] }, 'plain text', bytes, Buffer.from([0x80, 0x81]), 42,
      ]);
      assert.equal(messages[0].headers['content-type'], 'application/json');
      assert.equal(messages[0].attempt, 1);
      assert.equal(messages[0].redelivered, false);

      const { acked, results } = await usher.ack(q('bodies'), messages.map((m) => m.receipt));
      assert.equal(acked, 5);
      assert.deepEqual(results, [true, true, true, true, true]);
      assert.deepEqual(await usher.receive(q('bodies'), { max: 10 }), []);
    });

    it('publishes a batch with ids, headers and priorities, delivered by priority', async () => {
      await usher.createQueue(q('batch'));
      const results = await usher.publishBatch(q('batch'), [
        { body: 'low', id: 'id-low', headers: { tenant: 'acme' } },
        { body: 'high', id: 'id-high', priority: 9 },
      ]);
      assert.deepEqual(results.map((r) => r.id), ['id-low', 'id-high']);

      const messages = await receiveAll(usher, q('batch'), 2);
      assert.deepEqual(messages.map((m) => [m.body, m.id, m.priority]),
        [['high', 'id-high', 9], ['low', 'id-low', 0]]);
      assert.equal(messages[1].headers.tenant, 'acme');
      await usher.ack(q('batch'), messages.map((m) => m.receipt));
    });

    it('stores a repeated id once (deduplication)', async () => {
      await usher.createQueue(q('dedup'));
      await usher.publish(q('dedup'), 'first', { id: 'same' });
      await usher.publish(q('dedup'), 'again', { id: 'same' });
      const messages = await receiveAll(usher, q('dedup'), 2, 500);
      assert.deepEqual(messages.map((m) => m.body), ['first']);
    });

    it('nacks: requeued comes back redelivered, requeue false goes to the dead-letter queue', async () => {
      await usher.createQueue(q('work'), { deadLetter: q('work.dlq'), backoff: { initialMs: 0 } });
      await usher.publish(q('work'), 'retry me');
      await usher.publish(q('work'), 'poison');

      const [retry, poison] = await receiveAll(usher, q('work'), 2);
      await usher.nack(q('work'), retry.receipt);
      await usher.nack(q('work'), poison.receipt, { requeue: false });

      const [again] = await receiveAll(usher, q('work'), 1);
      assert.equal(again.body, 'retry me');
      assert.equal(again.redelivered, true);
      assert.ok(again.attempt >= 2);
      await usher.ack(q('work'), again.receipt);

      const [dead] = await receiveAll(usher, q('work.dlq'), 1);
      assert.equal(dead.body, 'poison');
      await usher.ack(q('work.dlq'), dead.receipt);
    });

    it('releases leases: the messages are ready again', async () => {
      await usher.createQueue(q('release'));
      await usher.publishBatch(q('release'), [{ body: 'a' }, { body: 'b' }]);
      const leased = await receiveAll(usher, q('release'), 2);
      assert.equal(await usher.release(q('release'), leased.map((m) => m.receipt)), 2);
      const again = await receiveAll(usher, q('release'), 2);
      assert.deepEqual(again.map((m) => m.body).sort(), ['a', 'b']);
      await usher.ack(q('release'), again.map((m) => m.receipt));
    });

    it('waits for a message published during a receive', async () => {
      await usher.createQueue(q('wait'));
      const waiting = usher.receive(q('wait'), { waitMs: 5000 });
      await sleep(100);
      await usher.publish(q('wait'), 'late');
      const [message] = await waiting;
      assert.equal(message.body, 'late');
      await usher.ack(q('wait'), message.receipt);
    });

    it('consumes with a concurrency: acks on return, retries on throw', async () => {
      await usher.createQueue(q('consume'), { backoff: { initialMs: 0 } });
      await usher.publishBatch(q('consume'), Array.from({ length: 10 }, (_, n) => ({ body: { n } })));

      const seen = new Set<number>();
      let failed = false;
      const consumer = usher.consume(q('consume'), async (message) => {
        const { n } = message.body as { n: number };
        if (n === 3 && !failed) {
          failed = true;
          throw new Error('once');
        }
        seen.add(n);
      }, { concurrency: 3, waitMs: 200 });
      const deadline = Date.now() + 5000;
      while (seen.size < 10 && Date.now() < deadline) await sleep(20);
      await consumer.stop();

      assert.equal(seen.size, 10);
      assert.equal(failed, true);
      assert.deepEqual(await usher.receive(q('consume'), { max: 10 }), []);
    });

    it('purges and deletes queues; a deleted queue is QUEUE_NOT_FOUND', async () => {
      await usher.createQueue(q('scratch'));
      await usher.publishBatch(q('scratch'), [{ body: 'x' }, { body: 'y' }]);
      assert.equal(await usher.purgeQueue(q('scratch')), 2);
      await usher.deleteQueue(q('scratch'));

      assert.equal((await refusal(usher.publish(q('scratch'), 'x'))).code, 'QUEUE_NOT_FOUND');
      assert.equal((await refusal(usher.deleteQueue(q('scratch')))).code, 'QUEUE_NOT_FOUND');
      assert.equal((await refusal(usher.purgeQueue(q('scratch')))).code, 'QUEUE_NOT_FOUND');
      // The connection carries on after those refusals.
      await usher.createQueue(q('after'));
      await usher.publish(q('after'), 'still fine');
    });

    it('refuses an unknown receipt, and answers false for it in a list', async () => {
      await usher.createQueue(q('receipts'));
      const err = await refusal(usher.ack(q('receipts'), 'no-such-receipt'));
      assert.equal(err.code, 'RECEIPT_NOT_FOUND');
      const { acked, results } = await usher.ack(q('receipts'), ['no-such-receipt']);
      assert.deepEqual([acked, results], [0, [false]]);
    });

    it('refuses a body that cannot be sent, before sending', async () => {
      const err = await refusal(usher.publish(q('bodies'), undefined as never));
      assert.equal(err.code, 'INVALID_ARGUMENT');
      assert.equal(err.field, 'body');
    });
  });
}

describe('client over amqp: what AMQP cannot express', () => {
  let usher: UsherClient;

  before(async () => {
    usher = connect(server.amqpUrl);
    clients.push(usher);
    await usher.createQueue('amqp.unsupported');
  });

  it('throws UNSUPPORTED naming the method', async () => {
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['getQueue', () => usher.getQueue('amqp.unsupported')],
      ['listQueues', () => usher.listQueues()],
      ['peek', () => usher.peek('amqp.unsupported')],
      ['redrive', () => usher.redrive('amqp.unsupported')],
      ['health', () => usher.health()],
      ['extend', () => usher.extend('amqp.unsupported', 'r', 1000)],
      ['publish', () => usher.publish('amqp.unsupported', 'x', { delayMs: 10 })],
      ['publish', () => usher.publish('amqp.unsupported', 'x', { group: 'g' })],
      ['receive', () => usher.receive('amqp.unsupported', { visibilityTimeoutMs: 10 })],
      ['nack', () => usher.nack('amqp.unsupported', 'r', { delayMs: 10 })],
    ];
    for (const [method, call] of calls) {
      const err = await refusal(call());
      assert.equal(err.code, 'UNSUPPORTED', method);
      assert.equal(err.field, method);
      assert.match(err.message, new RegExp(`^${method}\\(\\) over AMQP`));
    }
    const created = await usher.createQueue('amqp.unsupported');
    assert.throws(() => created.queue, /createQueue\(\) over AMQP/);
  });

  it('hands over to HTTP readers with id, body and headers intact', async () => {
    await usher.publish('amqp.unsupported', { seat: '12A' }, { id: 'T-1', headers: { k: 'v' } });
    const http = connect(server.url);
    const [message] = await http.receive('amqp.unsupported', { waitMs: 1000 });
    assert.equal(message.id, 'T-1');
    assert.deepEqual(message.body, { seat: '12A' });
    assert.equal(message.headers.k, 'v');
    await http.ack('amqp.unsupported', message.receipt);
  });
});
