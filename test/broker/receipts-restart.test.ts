// A receipt from before a restart names no lease after it, however many
// deliveries the first run made: receipts name the boot time and then a
// delivery count. When the count was added to the boot time in
// microseconds instead, the 1,001st delivery of a run and the first of a
// run started a millisecond later had the same receipt, and a stale ack
// settled the new lease.

import assert from 'node:assert/strict';
import { it } from 'node:test';

import { brokerPerTest, text } from '../helpers.js';

const usher = brokerPerTest();

it('a receipt from a busy run before a restart settles nothing after it', async () => {
  await usher.broker.createQueue('q', { maxAttempts: 0 });
  await usher.broker.publish('q', [{ body: text('again and again') }]);
  let last = '';
  for (let i = 0; i < 1001; i++) {
    const [message] = await usher.broker.receive('q', { max: 1, waitMs: 0 });
    last = message.receipt;
    await usher.broker.nack('q', last, { requeue: true, delayMs: 0 });
  }
  // A lease from the first run that is still current at the restart
  // comes back ready: the restart one millisecond later hands it out anew.
  const [held] = await usher.broker.receive('q', { max: 1, waitMs: 0 });
  assert.notEqual(held.receipt, last);

  usher.clock.advance(1);
  await usher.reopen();
  const [again] = await usher.broker.receive('q', { max: 1, waitMs: 0 });
  assert.notEqual(again.receipt, last);
  assert.deepEqual(await usher.broker.ack('q', [last]), [false]);
  assert.deepEqual(await usher.broker.ack('q', [held.receipt]), [false]);
  assert.deepEqual(await usher.broker.ack('q', [again.receipt]), [true]);
});
