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

for (const restart of ['from a checkpoint', 'replaying the log'] as const) {
  it(`a limit lowered under what a queue holds: a restart ${restart} keeps it`, async () => {
    const dir = tempDir();
    const options = { clock: new ManualClock().read, sync: true };
    let broker = await openBroker(dir.path, options);
    try {
      await broker.createQueue('q', { deadLetter: 'dlq' });
      await broker.publish('q', ['m1', 'm2', 'm3'].map((body) => ({ body: text(body) })));
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
