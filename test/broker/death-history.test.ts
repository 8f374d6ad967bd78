// A message in a retry loop (rejected into a queue whose TTL sends it
// back: the TTL retry pattern of RabbitMQ users) dies twice a lap for as
// long as its consumer rejects it. Its death history must stay bounded, as
// RabbitMQ's x-death does (one entry per queue and reason, with a count):
// it is written with the message at every move, so a history growing by a
// record a death made each lap's write larger than the last.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseHistory } from '../../src/broker/dead-letter.js';
import { deathEntries } from '../../src/amqp/x-death.js';
import { brokerPerTest, text } from '../helpers.js';

const usher = brokerPerTest();
const LAPS = 300;

describe('death history of a message in a retry loop', () => {
  it('stays bounded, with the counts and first death of the whole history', async () => {
    const { broker, clock } = usher;
    await broker.createQueue('work', { deadLetter: 'wait', maxAttempts: 0 });
    await broker.createQueue('wait', { deadLetter: 'work', messageTtlMs: 1000 });
    await broker.publish('work', [{ body: text('poison') }]);

    let headers: Record<string, string> = {};
    for (let lap = 0; lap < LAPS; lap++) {
      const [message] = await broker.receive('work', { max: 1, waitMs: 0 });
      assert.ok(message !== undefined, `lap ${lap}: the message came back`);
      headers = message.headers;
      await broker.nack('work', message.receipt, { requeue: false, reason: `lap ${lap}` });
      clock.advance(1000);
      broker.runDue();
    }
    const [last] = await broker.receive('work', { max: 1, waitMs: 0 });
    headers = last.headers;

    assert.equal(headers['x-usher-death-count'], String(2 * LAPS));
    assert.equal(headers['x-usher-first-death-queue'], 'work');
    assert.equal(headers['x-usher-death-queue'], 'wait');
    assert.ok(headers['x-usher-deaths'].length < 2048,
      `x-usher-deaths is ${headers['x-usher-deaths'].length} bytes after ${LAPS} laps`);

    const history = parseHistory(headers['x-usher-deaths']);
    assert.deepEqual(history[0], { ...history[0], queue: 'work', reason: 'rejected',
      error: 'lap 0' });
    assert.deepEqual(history.at(-1), { ...history.at(-1), queue: 'wait', reason: 'expired' });
    assert.deepEqual(deathEntries(headers).map((e) => [e.queue, e.reason, e.count]),
      [['wait', 'expired', LAPS], ['work', 'rejected', LAPS]]);
  });
});

describe('death history a producer set itself', () => {
  it('is read for its object records only', async () => {
    const { broker } = usher;
    await broker.createQueue('q', { deadLetter: 'dlq' });
    await broker.publish('q', [{
      body: text('forged'),
      headers: { 'x-usher-deaths': '[null, 3, "x", {"queue":"a","reason":"expired"}]' },
    }]);
    const [message] = await broker.receive('q', { max: 1, waitMs: 0 });
    assert.deepEqual(await broker.nack('q', message.receipt, { requeue: false }),
      { outcome: 'dead-lettered', reason: 'rejected' });
    const [dead] = await broker.receive('dlq', { max: 1, waitMs: 0 });
    assert.equal(dead.headers['x-usher-death-count'], '2');
    assert.deepEqual(parseHistory(dead.headers['x-usher-deaths']).map((d) => d.queue), ['a', 'q']);
  });
});
