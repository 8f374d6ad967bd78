// Admission control over AMQP with amqplib: refused confirmed publishes are
// nacked one by one (the rest of the batch is acked), unconfirmed ones are
// dropped without closing the channel, and clients that announce the
// connection.blocked capability hear blocked at critical and unblocked
// after. The level is driven through injected signals.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import type { ChannelModel, ConfirmChannel } from 'amqplib';

import type { Broker } from '../../src/broker/broker.js';
import { openAmqpFixture, type AmqpFixture } from './amqp-fixture.js';

let fixture: AmqpFixture;
let broker: Broker;
let connection: ChannelModel;
/** The backlog the admission controller reads. */
let waiting = 0;

before(async () => {
  fixture = await openAmqpFixture('usher-amqp-admission-', {
    admission: {
      pressureBacklog: 100,
      criticalBacklog: 200,
      holdMs: 0,
      sampleMs: 60_000,
      pressureMinPriority: 4,
      criticalMinPriority: 7,
    },
    signals: { backlog: () => ({ waiting, published: 0, acked: 0 }) },
  });
  broker = fixture.broker;
  connection = await fixture.connect();
});

after(async () => {
  await fixture.close();
});

function setLevel(backlog: number): void {
  waiting = backlog;
  broker.admission!.sample();
}

/** true when acked, false when nacked. */
function confirmed(channel: ConfirmChannel, queue: string, priority: number): Promise<boolean> {
  return new Promise((resolve) => {
    channel.publish('', queue, Buffer.from(`p${priority}`), { priority }, (err) => resolve(err == null));
  });
}

describe('admission control over AMQP', () => {
  it('nacks exactly the refused confirmed publishes of one batch', async () => {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue('amqp-admission');
    setLevel(150);

    // Sent back to back: they reach the broker as one batch.
    const results = await Promise.all(
      [0, 9, 3, 4, 8].map((priority) => confirmed(channel, 'amqp-admission', priority)),
    );
    assert.deepEqual(results, [false, true, false, true, true]);
    const { messageCount } = await channel.checkQueue('amqp-admission');
    assert.equal(messageCount, 3);
    setLevel(0);
    await channel.close();
  });

  it('drops refused unconfirmed publishes and keeps the channel open', async () => {
    const channel = await connection.createChannel();
    await channel.assertQueue('amqp-admission-plain');
    setLevel(150);
    channel.sendToQueue('amqp-admission-plain', Buffer.from('low'), { priority: 0 });
    channel.sendToQueue('amqp-admission-plain', Buffer.from('high'), { priority: 9 });
    await sleep(100);
    const { messageCount } = await channel.checkQueue('amqp-admission-plain');
    assert.equal(messageCount, 1, 'the channel still answers, and only the high one is stored');
    setLevel(0);
    await channel.close();
  });

  it('sends connection.blocked at critical and unblocked after', async () => {
    const events: string[] = [];
    connection.on('blocked', (reason: string) => events.push(`blocked: ${reason}`));
    connection.on('unblocked', () => events.push('unblocked'));

    setLevel(150);
    await sleep(50);
    assert.deepEqual(events, [], 'pressure does not block');
    setLevel(250);
    await sleep(50);
    setLevel(0);
    await sleep(50);
    assert.equal(events.length, 2, events.join(', '));
    assert.match(events[0], /^blocked: Usher at critical \(backlog\)/);
    assert.equal(events[1], 'unblocked');
  });
});
