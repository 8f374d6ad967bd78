// Publisher confirms that land together go out as one `multiple` ack: two
// publishes in one socket chunk, to two durable queues, are two broker
// calls whose writes share one fsync, and each landing used to answer at
// once with an ack frame of its own. Over a raw client, so every frame the
// broker sends is seen.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { tableFrom } from '../../src/amqp/field-table.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import type { Broker } from '../../src/broker/broker.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';
import { Raw } from './raw-client.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let port: number;

before(async () => {
  dir = tempDir('usher-confirm-batching-');
  broker = await openBroker(dir.path);
  server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1 << 20,
  });
  port = (await server.listen(0, '127.0.0.1')).port;
});

after(async () => {
  await server.close();
  await broker.close();
  dir.remove();
});

test('publishes to two queues landing together are answered by one ack', async () => {
  const raw = new Raw(port);
  try {
    await raw.open();
    for (const queue of ['batch-a', 'batch-b']) {
      raw.method(1, {
        name: 'queue.declare', queue, passive: false, durable: true, exclusive: false,
        autoDelete: false, noWait: false, arguments: new Map(),
      });
      assert.ok(await raw.expect('queue.declare-ok'));
    }

    // Several rounds: a round whose two writes happened to land apart is
    // rightly answered twice, but each ack must still cover what landed.
    let single = 0;
    let tag = 0;
    for (let round = 0; round < 5; round++) {
      raw.cork(() => {
        raw.publish('batch-a', new Map(), 'to a');
        raw.publish('batch-b', new Map(), 'to b');
      });
      tag += 2;
      const acks = await raw.acksUpTo(tag);
      assert.ok(acks.every((ack) => ack.multiple), 'acks are multiple');
      if (acks.length === 1) single++;
    }
    assert.ok(single >= 3, `one ack for both publishes in ${single} rounds of 5`);
  } finally {
    raw.close();
  }
});

// Acks now wait for the connection's next write while a nack goes out at
// once (after the acks before it): frame by frame, as a strict client
// reads them, every tag must be answered exactly once, with its outcome.
test('acks held for the next write and nacks sent at once answer each tag once', async () => {
  const raw = new Raw(port);
  try {
    await raw.open();
    const queues = [
      ['mixed-ok', new Map()],
      ['mixed-full', tableFrom({ 'x-max-length': 2, 'x-overflow': 'reject-publish' })],
    ] as const;
    for (const [queue, args] of queues) {
      raw.method(1, {
        name: 'queue.declare', queue, passive: false, durable: true, exclusive: false,
        autoDelete: false, noWait: false, arguments: args,
      });
      assert.ok(await raw.expect('queue.declare-ok'));
    }

    // Tags 1..count; every third to the full queue, of which only the first two fit.
    const count = 60;
    const expected = new Map<number, 'ack' | 'nack'>();
    let toFull = 0;
    raw.cork(() => {
      for (let tag = 1; tag <= count; tag++) {
        const full = tag % 3 === 0;
        raw.publish(full ? 'mixed-full' : 'mixed-ok', new Map(), `m${tag}`);
        expected.set(tag, full && ++toFull > 2 ? 'nack' : 'ack');
      }
    });

    const answered = new Map<number, 'ack' | 'nack'>();
    while (answered.size < count) {
      const frame = await raw.expect('basic.ack', 'basic.nack');
      assert.ok(frame !== null, `the socket closed with ${answered.size} answered`);
      assert.ok(frame.name === 'basic.ack' || frame.name === 'basic.nack');
      const outcome = frame.name === 'basic.ack' ? 'ack' : 'nack';
      const covered = frame.multiple
        ? [...expected.keys()].filter((tag) => tag <= frame.deliveryTag && !answered.has(tag))
        : [frame.deliveryTag];
      assert.ok(covered.length > 0, `${outcome} ${frame.deliveryTag} answers nothing new`);
      for (const tag of covered) {
        assert.ok(!answered.has(tag), `tag ${tag} answered twice`);
        answered.set(tag, outcome);
      }
    }
    assert.deepEqual([...answered].sort(([a], [b]) => a - b), [...expected]);
  } finally {
    raw.close();
  }
});
