// What a nack answers became of its message (retried, dead-lettered or
// dropped) is what became of that message, not of another one that died
// in the same queue while the nack's changes were being settled.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import amqp from 'amqplib';

import type { Broker } from '../../src/broker/broker.js';
import type { Subscription } from '../../src/broker/types.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { ManualClock, openBroker, silentLogger, tempDir, text } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let clock: ManualClock;
let broker: Broker;

beforeEach(async () => {
  dir = tempDir('usher-nack-outcome-');
  clock = new ManualClock();
  broker = await openBroker(dir.path, { clock: clock.read, random: () => 0 });
});

afterEach(async () => {
  await broker.close();
  dir.remove();
});

describe('nack outcome', () => {
  it('a nack with requeue false into a dead-letter queue answers dead-lettered', async () => {
    await broker.createQueue('q', { deadLetter: 'dlq' });
    await broker.publish('q', [{ body: text('a') }]);
    const [message] = await broker.receive('q', { max: 1, waitMs: 0 });

    const answer = await broker.nack('q', message.receipt, { requeue: false });
    assert.deepEqual(answer, { outcome: 'dead-lettered', reason: 'rejected' });
    assert.equal(broker.getQueue('dlq').stats.ready, 1);
    assert.equal(broker.getQueue('q').stats.dropped, 0);
  });

  it('the last allowed attempt without a dead-letter queue answers dropped', async () => {
    await broker.createQueue('q', { maxAttempts: 2, backoff: { initialMs: 0, jitter: 0 } });
    await broker.publish('q', [{ body: text('a') }]);

    const [first] = await broker.receive('q', { max: 1, waitMs: 0 });
    assert.deepEqual(await broker.nack('q', first.receipt, {}), { outcome: 'retried' });
    const [second] = await broker.receive('q', { max: 1, waitMs: 0 });
    assert.equal(second.attempt, 2);
    assert.deepEqual(await broker.nack('q', second.receipt, {}),
      { outcome: 'dropped', reason: 'max-attempts' });
    assert.equal(broker.getQueue('q').stats.dropped, 1);
    assert.equal(broker.getQueue('q').stats.total, 0);
  });

  it('another message dropped while the nack settles does not make it answer dropped',
    async () => {
      const server: AmqpServer = await createAmqpServer({
        broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
      });
      const { port } = await server.listen(0, '127.0.0.1');
      let subscription: Subscription | undefined;
      try {
        // Dead letters go through the exchange `dlx`; only key "a" is bound.
        const connection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
        const channel = await connection.createConfirmChannel();
        await channel.assertExchange('in', 'direct');
        await channel.assertExchange('dlx', 'direct');
        await channel.assertQueue('dlq');
        await channel.bindQueue('dlq', 'dlx', 'a');
        await channel.assertQueue('q', { arguments: { 'x-dead-letter-exchange': 'dlx' } });
        await channel.bindQueue('q', 'in', 'a');
        channel.publish('in', 'a', Buffer.from('routed'));
        await channel.waitForConfirms();
        await connection.close();

        const [routed] = await broker.receive('q', { max: 1, waitMs: 0 });
        // Published over HTTP, so it dead-letters with key "q": dropped.
        // It expires unseen (no timer ran) and dies when the consumer,
        // whose credit grew meanwhile, is next served: as the nack settles.
        let credit = 0;
        subscription = broker.subscribe('q', {
          leaseMs: 60_000, credit: () => credit, deliver: () => {},
        });
        await broker.publish('q', [{ body: text('lost'), ttlMs: 30_000 }]);
        clock.advance(60_000);
        credit = 1;

        const answer = await broker.nack('q', routed.receipt, { requeue: false });
        assert.deepEqual(answer, { outcome: 'dead-lettered', reason: 'rejected' });
        assert.equal(broker.getQueue('dlq').stats.ready, 1);
        assert.equal(broker.getQueue('q').stats.dropped, 1, 'the expired one was dropped');
      } finally {
        subscription?.cancel();
        await server.close();
      }
    });
});
