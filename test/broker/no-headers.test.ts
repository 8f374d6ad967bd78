// A message published without headers: its record shares one frozen
// empty object (NO_HEADERS, src/broker/messages.ts), but every message a
// consumer receives has headers of its own, whether it was kept in memory
// or read back from the log, so changing one changes no other.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { brokerPerTest, text } from '../helpers.js';

describe('messages published without headers', () => {
  const fixture = brokerPerTest({ hotReadyLimit: 2, hotMemoryBytes: 0 });

  it('each come with headers of their own, in memory and read back', async () => {
    const { broker } = fixture;
    await broker.createQueue('q', {});
    await broker.publish('q', [1, 2, 3, 4, 5].map((n) => ({ body: text(`m${n}`) })));

    const received = await broker.receive('q', { max: 5, waitMs: 0 });
    assert.equal(received.length, 5);
    for (const message of received) {
      assert.deepEqual(message.headers, {});
      assert.equal(Object.isFrozen(message.headers), false);
    }
    received[0].headers.note = 'changed by its consumer';
    for (const message of received.slice(1)) assert.deepEqual(message.headers, {});
  });
});
