// A drop-oldest limit set on a queue that already holds more than it
// allows: the broker keeps them all until the next enqueue trims it. A
// restart, from a checkpoint or replaying the whole log, must bring back
// what the broker held, not trim it then.

import assert from 'node:assert/strict';
import { it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';

const held = (broker: Broker) => Object.fromEntries(['q', 'dlq'].map((queue) => [
  queue,
  broker.hasQueue(queue)
    ? broker.peek(queue, { limit: 10, offset: 0 }).map((m) => String(m.body)).sort()
    : [],
]));

// Plain publishes come back from the ledger alone (enqueueCold); delayed
// ones from their records' heads or whole (enqueueColdEntry, enqueue),
// which trimmed as they came back (breaker's seeds 12 and 20 of
// delete-churn-restart.test.ts, fails without QueueContents.restoring).
const kinds = { plain: {}, delayed: { delayMs: 60_000 } };

for (const restart of ['from a checkpoint', 'replaying the log'] as const) for (const [kind, extra] of Object.entries(kinds)) {
  it(`a limit lowered under what a queue holds (${kind}): a restart ${restart} keeps it`, async () => {
    const dir = tempDir();
    const options = { clock: new ManualClock().read, sync: true };
    let broker = await openBroker(dir.path, options);
    try {
      await broker.createQueue('q', { deadLetter: 'dlq' });
      await broker.publish('q', ['m1', 'm2', 'm3'].map((body) => ({ body: text(body), ...extra })));
      await broker.createQueue('q', { maxLength: 1, overflow: 'drop-oldest' });
      const before = held(broker);
      assert.deepEqual(before.q, ['m1', 'm2', 'm3']);

      await broker.close();
      const checkpoints = { enabled: restart === 'from a checkpoint' };
      broker = await openBroker(dir.path, { ...options, checkpoints });
      assert.deepEqual(held(broker), before);
    } finally {
      await broker.close();
      dir.remove();
    }
  });
}
