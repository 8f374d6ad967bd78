// Admission control and queue limits together in the broker: a batch shed
// under load leaves no room reserved and displaces nothing, and message by
// message (AMQP) only the shed ones are refused.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { LoadRefusalError } from '../../src/errors.js';
import { openBroker, tempDir, text } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let waiting = 0;

beforeEach(async () => {
  dir = tempDir();
  waiting = 0;
  broker = await openBroker(dir.path, {
    admission: { pressureBacklog: 10, holdMs: 0, sampleMs: 60_000, pressureMinPriority: 4 },
    signals: { backlog: () => ({ waiting, published: 0, acked: 0 }) },
  });
});

afterEach(async () => {
  await broker.close();
  dir.remove();
});

describe('shedding with queue limits', () => {
  it('refuses a mixed batch whole at pressure without taking room or displacing', async () => {
    await broker.createQueue('q', {
      maxLength: 2,
      overflow: 'reject-lowest-priority',
      deadLetter: 'q.dlq',
    });
    await broker.publish('q', [{ body: text('low'), priority: 4 }]);
    waiting = 10;
    broker.admission!.sample();

    await assert.rejects(
      broker.publish('q', [{ body: text('a'), priority: 9 }, { body: text('b'), priority: 1 }]),
      { code: 'OVERLOADED', status: 429 },
    );
    assert.equal(broker.getQueue('q.dlq').stats.total, 0, 'nothing displaced');

    // The room the refused batch would have taken is still there.
    await broker.publish('q', [{ body: text('c'), priority: 9 }]);
    assert.equal(broker.getQueue('q').stats.total, 2);
  });

  it('answers message by message for AMQP', async () => {
    await broker.createQueue('q', { maxLength: 2 });
    waiting = 10;
    broker.admission!.sample();
    const answers = await broker.publishEach('q', [
      { body: text('a'), priority: 9 },
      { body: text('b'), priority: 1 },
      { body: text('c'), priority: 5 },
      { body: text('d'), priority: 5 },
    ]);
    assert.deepEqual(
      answers.map((a) => (a instanceof LoadRefusalError ? a.code : 'stored')),
      ['stored', 'OVERLOADED', 'stored', 'QUEUE_FULL'],
    );
    assert.equal(broker.getQueue('q').stats.total, 2);
  });

  it('builds one error per priority for a shed batch, and counts every message', async () => {
    await broker.createQueue('q', {});
    waiting = 10;
    broker.admission!.sample();
    const inputs = [1, 1, 1, 2, 2, 9].map((priority) => ({ body: text('x'), priority }));

    const answers = await broker.publishEach('q', inputs);
    const [a, b, c, d, e, stored] = answers;
    assert.ok(a instanceof LoadRefusalError && d instanceof LoadRefusalError);
    assert.ok(b === a && c === a, 'priority 1 shares one error');
    assert.ok(e === d && d !== a, 'priority 2 has its own');
    assert.match(d.message, /priority 2/);
    assert.ok(!(stored instanceof LoadRefusalError), 'priority 9 is stored');

    await assert.rejects(broker.publish('q', inputs), { code: 'OVERLOADED' });
    const { refusedByPriority } = broker.admission!.stats();
    assert.equal(refusedByPriority[1], 6, 'three refused messages in each call');
    assert.equal(refusedByPriority[2], 4);
    assert.equal(broker.getQueue('q').stats.total, 1, 'the whole batch left nothing');
  });
});

describe('one queue behind (queuePressureBacklog)', () => {
  it('sheds that queue\'s low priorities while the broker and other queues stay normal',
    async () => {
      const queueDir = tempDir();
      const behind = await openBroker(queueDir.path, {
        admission: { queuePressureBacklog: 3, holdMs: 0, sampleMs: 60_000, pressureMinPriority: 4 },
      });
      try {
        await behind.createQueue('emails', {});
        await behind.createQueue('payments', {});
        for (let i = 0; i < 3; i++) {
          await behind.publish('emails', [{ body: text(`e${i}`), priority: 5 }]);
        }

        await assert.rejects(behind.publish('emails', [{ body: text('low'), priority: 1 }]), {
          code: 'OVERLOADED',
          status: 429,
          reason: 'queue-backlog',
          message: /its queue has 3 messages waiting/,
        });
        // Important work still gets into the queue that is behind...
        await behind.publish('emails', [{ body: text('high'), priority: 4 }]);
        // ...and a queue that keeps up takes everything.
        await behind.publish('payments', [{ body: text('p'), priority: 0 }]);
        assert.equal(behind.admission!.current.level, 'normal');

        // Once the consumers catch up the queue takes low priorities again.
        const taken = await behind.receive('emails', { max: 10, waitMs: 0 });
        await behind.ack('emails', taken.map((message) => message.receipt));
        await behind.publish('emails', [{ body: text('low again'), priority: 1 }]);
        assert.equal(behind.getQueue('emails').stats.ready, 1);
      } finally {
        await behind.close();
        queueDir.remove();
      }
    });
});
