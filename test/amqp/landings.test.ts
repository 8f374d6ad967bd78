// A channel's publish batches in flight (landings.ts): a wait covers
// every batch started before it, whatever order they land in, and none
// started after it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Landings } from '../../src/amqp/landings.js';

/** Whether `promise` has settled, after the microtasks now queued. */
async function settled(promise: Promise<void>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('publish batches landing', () => {
  it('answers at once with nothing in flight', async () => {
    const landings = new Landings();
    assert.equal(await settled(landings.all()), true);
    landings.landed(landings.start());
    assert.equal(await settled(landings.all()), true);
  });

  it('waits for every batch started before, in any order, not for later ones', async () => {
    const landings = new Landings();
    const first = landings.start();
    const second = landings.start();
    const both = landings.all();
    const third = landings.start();
    const all = landings.all();

    landings.landed(second);
    assert.equal(await settled(both), false, 'the first is still in flight');
    landings.landed(first);
    assert.equal(await settled(both), true, 'the third was started after the wait');
    assert.equal(await settled(all), false);
    landings.landed(third);
    assert.equal(await settled(all), true);
  });

  it('ignores a batch told twice', async () => {
    const landings = new Landings();
    const first = landings.start();
    const second = landings.start();
    const wait = landings.all();
    landings.landed(first);
    landings.landed(first);
    assert.equal(await settled(wait), false);
    landings.landed(second);
    assert.equal(await settled(wait), true);
  });
});
