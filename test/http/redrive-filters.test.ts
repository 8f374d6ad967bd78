// POST /queues/{name}/redrive narrowed by ids, death reason and source
// queue: only the messages matching every filter given move.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { call, startHttp, type Harness } from './harness.js';

let h: Harness;

before(async () => {
  h = await startHttp();
});

after(async () => {
  await h.close();
});

async function kill(queue: string, ids: string[]): Promise<void> {
  await call(h.app, 'POST', `/queues/${queue}/messages/batch`, {
    messages: ids.map((id) => ({ id, body: id })),
  });
  const received = await call(h.app, 'POST', `/queues/${queue}/receive`, { max: ids.length });
  for (const message of received.body.messages) {
    await call(h.app, 'POST', `/queues/${queue}/nack`, {
      receipt: message.receipt,
      requeue: false,
    });
  }
}

const idsIn = (queue: string) =>
  h.broker
    .peek(queue, { limit: 100, offset: 0 })
    .map((m) => m.id)
    .sort();

describe('redrive filters', () => {
  it('moves only the messages matching ids, reason and source', async () => {
    await call(h.app, 'PUT', '/queues/a', { deadLetter: 'dlq' });
    await call(h.app, 'PUT', '/queues/b', { deadLetter: 'dlq' });
    await kill('a', ['a1', 'a2', 'a3']);
    await kill('b', ['b1', 'b2']);

    const byIds = await call(h.app, 'POST', '/queues/dlq/redrive', { ids: ['a1', 'b1', 'zz'] });
    const bySource = await call(h.app, 'POST', '/queues/dlq/redrive', {
      source: 'b',
      reason: 'rejected',
    });
    const otherReason = await call(h.app, 'POST', '/queues/dlq/redrive', { reason: 'expired' });

    assert.deepEqual([byIds.body, bySource.body, otherReason.body], [
      { moved: 2 },
      { moved: 1 },
      { moved: 0 },
    ]);
    assert.deepEqual(idsIn('dlq'), ['a2', 'a3']);
    assert.deepEqual(idsIn('a'), ['a1']);
    assert.deepEqual(idsIn('b'), ['b1', 'b2']);
  });

  it('refuses filters of the wrong shape', async () => {
    const answer = await call(h.app, 'POST', '/queues/dlq/redrive', { ids: 'a2' });

    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.field, 'ids');

    const misspelt = await call(h.app, 'POST', '/queues/dlq/redrive', { reason: 'rejectd' });
    assert.equal(misspelt.status, 400);
    assert.equal(misspelt.body.error.field, 'reason');
    assert.match(misspelt.body.error.message,
      /^reason must be one of "rejected", "max-attempts", "expired", "overflow", got "rejectd"$/);
  });
});
