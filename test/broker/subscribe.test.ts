// Push consumers (the base of AMQP basic.consume): credit, turns between
// subscribers, redelivery to another subscriber, and queue deletion.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import type { ReceivedMessage, Subscriber } from '../../src/broker/types.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker;

beforeEach(async () => {
  dir = tempDir();
  broker = await openBroker(dir.path, { clock: new ManualClock().read });
  await broker.createQueue('q', { backoff: { initialMs: 0, jitter: 0 } });
});

afterEach(async () => {
  await broker.close();
  dir.remove();
});

/** A subscriber with a prefetch, counting what it holds. */
function consumer(prefetch: number) {
  const held: ReceivedMessage[] = [];
  const seen: string[] = [];
  let cancelled = false;
  const subscriber: Subscriber = {
    leaseMs: 60_000,
    credit: () => prefetch - held.length,
    deliver: (messages) => {
      held.push(...messages);
      seen.push(...messages.map((m) => m.body.toString()));
    },
    cancelled: () => {
      cancelled = true;
    },
  };
  return {
    subscriber,
    held,
    seen,
    isCancelled: () => cancelled,
    take: () => held.shift() as ReceivedMessage,
  };
}

const publish = (...bodies: string[]) =>
  broker.publish('q', bodies.map((b) => ({ body: text(b) })));

describe('subscribe', () => {
  it('never holds more than its credit, and gets more as it acks (C1)', async () => {
    const c = consumer(2);
    broker.subscribe('q', c.subscriber);
    await publish('1', '2', '3', '4', '5');
    assert.deepEqual(c.seen, ['1', '2']);

    await broker.ack('q', [c.take().receipt]);
    assert.deepEqual(c.seen, ['1', '2', '3']);
    assert.equal(broker.getQueue('q').stats.inFlight, 2);
  });

  it('takes turns between subscribers', async () => {
    const a = consumer(10);
    const b = consumer(10);
    broker.subscribe('q', a.subscriber);
    broker.subscribe('q', b.subscriber);
    for (let i = 0; i < 6; i++) await publish(String(i));

    assert.equal(a.seen.length + b.seen.length, 6);
    assert.ok(a.seen.length >= 2 && b.seen.length >= 2, `${a.seen} / ${b.seen}`);
  });

  it('serves higher priorities while they have credit, turns within one (x-priority)', async () => {
    const low = consumer(10);
    const highA = consumer(1);
    const highB = consumer(1);
    const middle = consumer(2);
    broker.subscribe('q', low.subscriber);
    broker.subscribe('q', { ...highA.subscriber, priority: 5 });
    broker.subscribe('q', { ...middle.subscriber, priority: 1 });
    broker.subscribe('q', { ...highB.subscriber, priority: 5 });
    await publish('1', '2', '3', '4', '5', '6', '7');

    assert.deepEqual([...highA.seen, ...highB.seen].sort(), ['1', '2']);
    assert.deepEqual(middle.seen, ['3', '4']);
    assert.deepEqual(low.seen, ['5', '6', '7']);

    // Credit back at the top: the next message goes there, not below.
    await broker.ack('q', [highA.take().receipt]);
    await publish('8');
    assert.deepEqual(highA.seen.at(-1), '8');
  });

  // A subscriber may cancel from its deliver (take one, then stop). The
  // serving round rotated its tier in place by indexes taken before the
  // cancel, so a lower priority moved ahead of the higher one left.
  it('keeps priorities in order when a subscriber cancels while served', async () => {
    const once = consumer(1);
    const high = consumer(10);
    const low = consumer(10);
    const sub = broker.subscribe('q', {
      ...once.subscriber,
      priority: 5,
      deliver: (messages) => {
        once.subscriber.deliver(messages);
        sub.cancel();
      },
    });
    broker.subscribe('q', { ...high.subscriber, priority: 5 });
    broker.subscribe('q', low.subscriber);
    await publish('1', '2');
    assert.deepEqual([once.seen, high.seen, low.seen], [['1'], ['2'], []]);

    // high has credit for 9 more: the next messages are its, not low's.
    await publish('3');
    await publish('4');
    assert.deepEqual([high.seen, low.seen], [['2', '3', '4'], []]);
  });

  it('a message a subscriber gives back goes to another, attempt raised', async () => {
    const a = consumer(1);
    const sub = broker.subscribe('q', a.subscriber);
    await publish('x');
    sub.cancel();

    const b = consumer(1);
    broker.subscribe('q', b.subscriber);
    assert.deepEqual(b.seen, [], 'nothing ready while a holds it');
    await broker.nack('q', a.take().receipt, { delayMs: 0 });

    assert.deepEqual(b.seen, ['x']);
    assert.equal(b.held[0].attempt, 2);
    assert.equal(b.held[0].redelivered, true);
  });

  it('wake() delivers when credit grows without an ack', async () => {
    let credit = 0;
    const seen: string[] = [];
    const sub = broker.subscribe('q', {
      leaseMs: 60_000,
      credit: () => credit,
      deliver: (messages) => {
        credit -= messages.length;
        seen.push(...messages.map((m) => m.body.toString()));
      },
    });
    await publish('a', 'b');
    assert.deepEqual(seen, []);

    credit = 5;
    sub.wake();
    assert.deepEqual(seen, ['a', 'b']);
  });

  it('tells subscribers when their queue is deleted', async () => {
    const c = consumer(5);
    broker.subscribe('q', c.subscriber);
    await broker.deleteQueue('q');
    assert.equal(c.isCancelled(), true);
  });
});
