// x-death as RabbitMQ 3.10 writes it, built from Usher's death history;
// and the cycle rule that drops messages expiring round in a loop.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { encodeProperties } from '../../src/amqp/content.js';
import { type FieldValue, plainTable } from '../../src/amqp/field-table.js';
import { toAmqp } from '../../src/amqp/mapping.js';
import {
  annotateDeath,
  deathEntries,
  deathTable,
  isDeadLetterCycle,
} from '../../src/amqp/x-death.js';

const history = (deaths: object[]) => ({ 'x-usher-deaths': JSON.stringify(deaths) });

describe('x-death', () => {
  it('groups deaths by queue and reason, latest first, keeping the first one\'s fields', () => {
    const headers = history([
      { queue: 'work', reason: 'rejected', time: '2026-01-01T00:00:01Z', exchange: 'x',
        routingKeys: ['k'] },
      { queue: 'wait', reason: 'expired', time: '2026-01-01T00:00:02Z' },
      { queue: 'work', reason: 'rejected', time: '2026-01-01T00:00:03Z', exchange: '',
        routingKeys: ['work'] },
    ]);
    assert.deepEqual(deathEntries(headers).map((e) => [e.queue, e.reason, e.count, e.exchange]),
      [['work', 'rejected', 2, 'x'], ['wait', 'expired', 1, '']]);

    const table = plainTable(deathTable(headers));
    assert.equal(table['x-first-death-queue'], 'work');
    assert.equal(table['x-first-death-reason'], 'rejected');
    assert.equal(table['x-first-death-exchange'], 'x');
    const [first] = table['x-death'] as Array<Record<string, unknown>>;
    assert.deepEqual(first['routing-keys'], ['k']);
    assert.equal(first.count, 1n + 1n);
  });

  it('counts on from an x-death the message was published with, keeping the rest as sent', () => {
    const headers = history([
      { queue: 'wait', reason: 'expired', time: '2026-01-01T00:00:01Z' },
      { queue: 'new', reason: 'rejected', time: '2026-01-01T00:00:02Z' },
    ]);
    const sentDeath = (queue: string, reason: string, count: FieldValue): FieldValue => ({
      type: 'F',
      value: new Map<string, FieldValue>([
        ['count', count], ['queue', { type: 'S', value: queue }],
        ['reason', { type: 'S', value: reason }], ['extra', { type: 'S', value: 'kept' }],
      ]),
    });
    const published = new Map<string, FieldValue>([
      ['x-death', { type: 'A', value: [
        sentDeath('other', 'rejected', { type: 'I', value: 2 }),
        sentDeath('wait', 'expired', { type: 'l', value: 5n }),
      ] }],
      ['x-first-death-queue', { type: 'S', value: 'other' }],
    ]);
    const table = plainTable(deathTable(headers, published));
    const deaths = table['x-death'] as Array<Record<string, unknown>>;
    assert.deepEqual(deaths.map((d) => [d.queue, d.reason, d.count]),
      [['new', 'rejected', 1n], ['wait', 'expired', 6n], ['other', 'rejected', 2]]);
    assert.equal(deaths[1].extra, 'kept');
    assert.equal(table['x-first-death-queue'], undefined, 'the published one stands');
  });

  it('encodes whatever a producer put in x-death or x-usher-deaths', () => {
    // Each of these closed every consumer's connection at delivery, and the
    // message went back for the next one (breaker session).
    const forged = history([
      { queue: 5, reason: 'rejected', time: '-100000-01-01T00:00:00Z', routingKeys: 'k' },
      { queue: 'q', reason: ['x'], time: 7, exchange: 3, count: 1e300 },
    ]);
    const huge = new Map<string, FieldValue>([['x-death', { type: 'A', value: [{
      type: 'F', value: new Map<string, FieldValue>([
        ['count', { type: 'l', value: 2n ** 63n - 1n }], ['queue', { type: 'S', value: 'q' }],
        ['reason', { type: 'S', value: 'rejected' }],
      ]),
    }] }]]);
    const own = history([{ queue: 'q', reason: 'rejected', time: '2026-01-01T00:00:00Z' }]);
    for (const table of [deathTable(forged), deathTable(own, huge)]) {
      const properties = toAmqp({}, 0, new Map(table));
      assert.doesNotThrow(() => encodeProperties(properties));
    }
    const [counted] = plainTable(deathTable(own, huge))['x-death'] as Array<Record<string, unknown>>;
    assert.equal(counted.count, 2n ** 63n - 1n, 'a sum past a long stays at its largest');
  });

  it('names a delivery limit delivery_limit and has no headers without deaths', () => {
    const headers = history([{ queue: 'q', reason: 'max-attempts', time: '2026-01-01T00:00:00Z' }]);
    assert.equal(deathEntries(headers)[0].reason, 'delivery_limit');
    assert.equal(deathTable({}).size, 0);
    assert.equal(deathTable({ 'x-usher-deaths': 'not json' }).size, 0);
  });

  it('annotates the latest death and moves expiration into original-expiration', () => {
    const headers = { ...history([{ queue: 'q', reason: 'expired', time: 't' }]), expiration: '60' };
    const annotated = annotateDeath(headers, { exchange: 'x', routingKeys: ['k'] }, 'expiration');
    assert.equal(annotated.expiration, undefined);
    const [entry] = deathEntries(annotated);
    assert.deepEqual([entry.exchange, entry.routingKeys, entry.originalExpiration], ['x', ['k'], '60']);
    assert.equal(headers.expiration, '60', 'the input is left as it was');
  });

  it('finds a cycle only when no rejection happened since the queue last saw the message', () => {
    const expiredLoop = deathEntries(history([
      { queue: 'a', reason: 'expired', time: '1' },
      { queue: 'b', reason: 'expired', time: '2' },
    ]));
    assert.equal(isDeadLetterCycle(expiredLoop, 'a'), true);
    assert.equal(isDeadLetterCycle(expiredLoop, 'c'), false);
    const rejectedOnTheWay = deathEntries(history([
      { queue: 'a', reason: 'expired', time: '1' },
      { queue: 'b', reason: 'rejected', time: '2' },
    ]));
    assert.equal(isDeadLetterCycle(rejectedOnTheWay, 'a'), false);
  });
});
