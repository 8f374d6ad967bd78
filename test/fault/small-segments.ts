// A log of 300 messages over segments of 16 KiB, for the tests that damage
// its segments and restart (damage-restart, scrub-restart): many small
// segments, so a flipped bit or a tear hits a few messages of one.

import { openBroker, text } from '../helpers.js';

/** The body of message `m-<i>`: its number, then 200-249 bytes of filler. */
export const bodyOf = (i: number) => `message ${i} ${'z'.repeat(200 + (i % 50))}`;

/** Publishes m-0 to m-299 to queue `q` in batches of 10, then closes cleanly. */
export async function fillSmallSegments(dataDir: string): Promise<void> {
  const broker = await openBroker(dataDir, { segmentBytes: 16 * 1024 });
  await broker.createQueue('q', {});
  for (let i = 0; i < 300; i += 10) {
    await broker.publish('q', Array.from({ length: 10 }, (_, j) => ({
      id: `m-${i + j}`,
      body: text(bodyOf(i + j)),
    })));
  }
  await broker.close();
}
