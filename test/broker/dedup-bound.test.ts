// The dedup bound is a queue setting (dedupMaxIds, issue #3): the newest
// that many ids are remembered, at run time and across a restart, and a
// bad value is refused with an error naming the field.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let clock: ManualClock;
let broker: Broker;

beforeEach(async () => {
  dir = tempDir();
  clock = new ManualClock();
  broker = await openBroker(dir.path, { clock: clock.read });
});

afterEach(async () => {
  await broker.close();
  dir.remove();
});

async function duplicates(ids: string[]): Promise<boolean[]> {
  const answers = await broker.publish('q', ids.map((id) => ({ id, body: text(id) })));
  return answers.map((answer) => answer.duplicate);
}

describe('dedupMaxIds', () => {
  it('remembers the newest that many ids, before and after a restart', async () => {
    await broker.createQueue('q', { dedupMaxIds: 3 });
    for (const id of ['a', 'b', 'c', 'd']) await duplicates([id]);
    assert.deepEqual(await duplicates(['d']), [true]);
    assert.deepEqual(await duplicates(['a']), [false], 'a was the oldest of four');

    // Remembered now: c, d, a.
    await broker.close();
    broker = await openBroker(dir.path, { clock: clock.read });
    assert.deepEqual(await duplicates(['c']), [true]);
    assert.deepEqual(await duplicates(['b']), [false]);
  });

  it('after a restart, a raised dedupMaxIds remembers as many ids as it did before', async () => {
    await broker.createQueue('q', { dedupMaxIds: 2 });
    await duplicates(['a']);
    await broker.createQueue('q', { dedupMaxIds: 10 });
    for (const id of ['b', 'c', 'd']) await duplicates([id]);
    assert.deepEqual(await duplicates(['a']), [true], 'ten ids remembered at run time');

    await broker.close();
    broker = await openBroker(dir.path, { clock: clock.read });
    assert.deepEqual(await duplicates(['b']), [true], 'and after a restart');
  });

  it('a queue deleted and made again does not inherit its ids, at run time or after a restart', async () => {
    await broker.createQueue('q', {});
    await duplicates(['a', 'b']);
    await broker.deleteQueue('q');
    await broker.createQueue('q', {});
    assert.deepEqual(await duplicates(['a']), [false], 'a new queue');

    await broker.close();
    broker = await openBroker(dir.path, { clock: clock.read });
    assert.deepEqual(await duplicates(['b']), [false], 'b went with the deleted queue');
  });

  it('is refused out of range, naming the field', async () => {
    for (const bad of [0, -1, 1.5, 10_000_001, '5']) {
      await assert.rejects(
        broker.createQueue('q', { dedupMaxIds: bad as number }),
        (err: unknown) => err instanceof InvalidArgumentError && err.field === 'dedupMaxIds',
      );
    }
    await broker.createQueue('q', { dedupMaxIds: 10_000_000 });
  });
});
