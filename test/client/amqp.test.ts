// The client's AMQP transport: confirmed, pipelined publishes, and C15 —
// when the connection is cut mid-pipeline every promise settles once, every
// resolved publish is stored, and the rest say OUTCOME_UNKNOWN.

import assert from 'node:assert/strict';
import { connect as connectTcp, createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import { connectAmqp, UsherClientError } from '../../src/client/index.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let url: string;

before(async () => {
  dir = tempDir('usher-client-amqp-');
  broker = await openBroker(dir.path, { sync: true });
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  url = `amqp://guest:guest@127.0.0.1:${port}`;
});

after(async () => {
  await server.close();
  await broker.close();
  dir.remove();
});

describe('connectAmqp', () => {
  it('publishes JSON, text and bytes, each confirmed once durable', async () => {
    await broker.createQueue('amqp-in', {});
    const usher = await connectAmqp(url);
    await Promise.all([
      usher.publish('amqp-in', { ticket: 'T-1' }, { priority: 9, headers: { k: 'v' } }),
      usher.publish('amqp-in', 'plain text'),
      usher.publish('amqp-in', Buffer.from([0, 1, 2])),
    ]);
    await usher.close();

    const messages = await broker.receive('amqp-in', { max: 10, waitMs: 0 });
    assert.deepEqual(messages.map((m) => m.body.toString('hex')), [
      Buffer.from('{"ticket":"T-1"}').toString('hex'),
      Buffer.from('plain text').toString('hex'),
      '000102',
    ]);
    assert.equal(messages[0].headers['content-type'], 'application/json');
    assert.equal(messages[0].headers.k, 'v');
    assert.equal(messages[0].priority, 9);
  });

  // As over HTTP, a content-type header declares the body's type; the
  // broker keeps AMQP headers apart from properties, so the client sends
  // it as the property (the demo's JSON text went to its dead-letter
  // queues when it travelled as a header).
  it('sends a content-type header as the content type', async () => {
    await broker.createQueue('amqp-typed', {});
    const usher = await connectAmqp(url);
    await usher.publish('amqp-typed', '{"ticket":"T-2"}', { headers: { 'Content-Type': 'application/json' } });
    await usher.close();

    const [message] = await broker.receive('amqp-typed', { max: 1, waitMs: 0 });
    assert.equal(message.headers['content-type'], 'application/json');
    assert.equal(message.headers['Content-Type'], undefined);
  });

  it('consumes with a concurrency, acking on return and requeueing on throw', async () => {
    const queue = await ensure('amqp-consume');
    const usher = await connectAmqp(url);
    await Promise.all(Array.from({ length: 10 }, (_, i) => usher.publish(queue, { n: i })));

    const seen: number[] = [];
    let running = 0;
    let most = 0;
    let failed = false;
    let redelivered = false;
    const stop = await usher.consume(queue, async (message) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      const { n } = message.body as { n: number };
      if (n === 3 && !failed) {
        failed = true;
        throw new Error('once');
      }
      if (n === 3) redelivered = message.redelivered;
      seen.push(n);
    }, { concurrency: 2 });

    for (let i = 0; i < 200 && broker.getQueue(queue).stats.total > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await stop();
    await usher.close();

    assert.deepEqual([...seen].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(most, 2, 'never more than the concurrency');
    assert.equal(redelivered, true);
    assert.equal(broker.getQueue(queue).stats.total, 0);
  });

  it('rejects a publish to a missing queue with QUEUE_NOT_FOUND', async () => {
    const usher = await connectAmqp(url);
    await assert.rejects(usher.publish('nowhere', 'x'), { code: 'QUEUE_NOT_FOUND' });
    await usher.publish(await ensure('after-miss'), 'still works');
    await usher.close();
  });

  it('settles each of 3,000 pipelined publishes once when the connection is cut (C15)', async () => {
    const queue = await ensure('c15');
    const proxy = await cuttableProxy(url);
    const usher = await connectAmqp(proxy.url);
    const outcomes = new Map<number, 'stored' | 'unknown'>();
    const settledTwice: number[] = [];

    const publish = (i: number) =>
      usher.publish(queue, { n: i }, { id: `c15-${i}` }).then(
        () => {
          if (outcomes.has(i)) settledTwice.push(i);
          outcomes.set(i, 'stored');
        },
        (err: unknown) => {
          if (outcomes.has(i)) settledTwice.push(i);
          assert.ok(err instanceof UsherClientError);
          assert.equal(err.code, 'OUTCOME_UNKNOWN');
          assert.match(err.message, /may or may not be stored/);
          outcomes.set(i, 'unknown');
        },
      );
    const promises = Array.from({ length: 2000 }, (_, i) => publish(i));

    // At the first confirm, 1,000 more go out and the line is cut under
    // them: some publishes have landed, some are on their way.
    const cut = promises[0].then(() => {
      for (let i = 2000; i < 3000; i++) promises.push(publish(i));
      proxy.cut();
    });
    await cut;
    const within = AbortSignal.timeout(5000);
    await Promise.race([
      Promise.all(promises),
      new Promise((_, reject) => within.addEventListener('abort', () => reject(new Error('a promise never settled')))),
    ]);

    assert.equal(outcomes.size, 3000);
    assert.deepEqual(settledTwice, []);
    const counts = [...outcomes.values()];
    assert.ok(counts.includes('stored'), 'the cut came before any confirm');
    assert.ok(counts.includes('unknown'), 'the cut came after every confirm');
    const stored = new Set(broker.peek(queue, { limit: 1000, offset: 0 })
      .concat(broker.peek(queue, { limit: 1000, offset: 1000 }), broker.peek(queue, { limit: 1000, offset: 2000 }))
      .map((m) => m.headers['message-id']));
    for (const [i, outcome] of outcomes) {
      if (outcome === 'stored') assert.ok(stored.has(`c15-${i}`), `confirmed c15-${i} is not stored`);
    }
    await usher.close();
    proxy.close();
  });
});

/** A TCP relay to the broker whose connections can be cut at once. */
async function cuttableProxy(target: string) {
  const { port: targetPort } = new URL(target);
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const upstream = connectTcp(Number(targetPort), '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const { port } = relay.address() as { port: number };
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () => relay.close(),
  };
}

async function ensure(name: string): Promise<string> {
  await broker.createQueue(name, {});
  return name;
}
