// Deduplication across restarts with every kind of id (issue #3's ledger
// keeps canonical UUIDs as 16 bytes, every other id as its string): each
// kind must be remembered, and forgotten, exactly as a string would be,
// after a clean stop (from a checkpoint) and after a full replay, past
// the ring's wrap-around and its compaction (more than 1,024 ids dropped).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { Broker, BrokerOptions } from '../../src/broker/broker.js';
import { ManualClock, openBroker, seededRandom, tempDir, text } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let copies: ReturnType<typeof tempDir>[];
let clock: ManualClock;
let broker: Broker;

beforeEach(async () => {
  dir = tempDir();
  copies = [];
  clock = new ManualClock();
  broker = await openBroker(dir.path, { clock: clock.read });
});

afterEach(async () => {
  await broker.close();
  dir.remove();
  for (const copy of copies) copy.remove();
});

/** An id of one of the kinds a client may send, chosen by `random`. */
function mixedId(random: () => number, n: number): string {
  const uuid = randomUUID();
  switch (Math.floor(random() * 9)) {
    case 0:
      return uuid;
    case 1:
      return uuid.toUpperCase();
    case 2:
      // One char off the hex range, in the last place.
      return `${uuid.slice(0, 35)}g`;
    case 3:
      // The right length with a dash moved.
      return `${uuid.slice(0, 7)}-${uuid.slice(7, 8)}${uuid.slice(9)}`;
    case 4:
      return `ordre-${n}-é€😀`;
    case 5:
      return `${'x'.repeat(240)}-${n}`;
    case 6:
      // A UUID with a full-width digit: a char code above the ASCII table.
      return `${uuid.slice(0, 35)}\uff10`;
    case 7:
      return `${uuid}-${n}`;
    default:
      return uuid.replaceAll('-', '');
  }
}

async function duplicates(queue: string, ids: string[]): Promise<boolean[]> {
  const answers = await broker.publish(queue, ids.map((id) => ({ id, body: text(id) })));
  return answers.map((answer) => answer.duplicate);
}

async function reopen(options: Partial<BrokerOptions> = {}): Promise<void> {
  await broker.close();
  broker = await openBroker(dir.path, { clock: clock.read, ...options });
}

/** Publishes `count` fresh mixed ids to each queue; returns them oldest first. */
async function publishMixed(queues: string[], count: number, seed: number) {
  const random = seededRandom(seed);
  const sent = new Map<string, string[]>(queues.map((queue) => [queue, []]));
  for (let n = 0; n < count; n += 100) {
    for (const queue of queues) {
      const ids = Array.from({ length: 100 }, (_, k) => mixedId(random, n + k));
      assert.ok((await duplicates(queue, ids)).every((duplicate) => !duplicate), 'fresh');
      sent.get(queue)?.push(...ids);
      clock.advance(1);
    }
  }
  return sent;
}

/** Whether the newest `kept` ids are duplicates and the ones before them are not. */
async function assertRemembers(queue: string, ids: string[], kept: number, when: string) {
  const remembered = ids.slice(-kept);
  const forgotten = ids.slice(-kept - 50, -kept);
  const sample = remembered.filter((_, index) => index % 7 === 0 || index >= kept - 30);
  assert.deepEqual(
    await duplicates(queue, sample),
    sample.map(() => true),
    `${queue}: the newest ${kept} are remembered ${when}`,
  );
  // Each forgotten id is now published afresh, and remembered from then on.
  const answers = await duplicates(queue, forgotten);
  const wronglyRemembered = forgotten.filter((_, index) => answers[index]);
  assert.deepEqual(wronglyRemembered, [], `${queue}: older ids forgotten ${when}`);
}

describe('dedup with mixed ids', () => {
  it('keeps the newest ids of every kind across a clean stop and a full replay', async () => {
    const kept = 1_500;
    const queues = ['mixed-a', 'mixed-b', 'mixed-c'];
    for (const queue of queues) await broker.createQueue(queue, { dedupMaxIds: kept });
    const sent = await publishMixed(queues, 4_000, 7);

    for (const queue of queues) await assertRemembers(queue, sent.get(queue) ?? [], kept, 'live');
    // assertRemembers published 50 ids again a queue, as new: they are the newest now.
    for (const queue of queues) {
      const ids = sent.get(queue) ?? [];
      ids.push(...ids.slice(-kept - 50, -kept));
    }

    await reopen();
    for (const queue of queues) {
      await assertRemembers(queue, sent.get(queue) ?? [], kept, 'after a checkpoint');
      const ids = sent.get(queue) ?? [];
      ids.push(...ids.slice(-kept - 50, -kept));
    }

    await reopen({ checkpoints: { enabled: false } });
    for (const queue of queues) {
      await assertRemembers(queue, sent.get(queue) ?? [], kept, 'after a full replay');
    }
  });

  it('a crash copy taken between checkpoints remembers every kind', async () => {
    await broker.close();
    broker = await openBroker(dir.path, {
      clock: clock.read,
      checkpoints: { minBytes: 64 * 1024, ratio: 1, liveShare: 0 },
    });
    const kept = 2_000;
    await broker.createQueue('crash', { dedupMaxIds: kept });
    const sent = await publishMixed(['crash'], 5_000, 11);

    // The files as a crash would leave them: no clean stop, no last checkpoint.
    const copy = tempDir();
    copies.push(copy);
    cpSync(dir.path, copy.path, { recursive: true });
    // The lock names this process, which is alive: a crash leaves no live owner.
    rmSync(join(copy.path, 'usher.lock'));
    await broker.close();
    dir.remove();
    dir = copy;
    copies.pop();
    broker = await openBroker(dir.path, { clock: clock.read });
    await assertRemembers('crash', sent.get('crash') ?? [], kept, 'after a crash');
  });

  it('made ids do not push a producer\'s out, at run time or after a restart', async () => {
    // Only a producer's id is a dedup id. Before log format 3 a restart
    // kept the newest dedupMaxIds ids of any kind, so made ones after it
    // pushed 'order-1' out, which the running broker still remembered.
    await broker.createQueue('made', { dedupMaxIds: 10 });
    assert.deepEqual(await duplicates('made', ['order-1']), [false]);
    const inputs = Array.from({ length: 30 }, () => ({ body: text('x') }));
    const made = await broker.publish('made', inputs);
    const madeIds = made.map((answer) => answer.id);
    assert.deepEqual(await duplicates('made', ['order-1']), [true], 'live');

    await reopen();
    assert.deepEqual(await duplicates('made', ['order-1']), [true], 'after a checkpoint');
    await reopen({ checkpoints: { enabled: false } });
    assert.deepEqual(await duplicates('made', ['order-1']), [true], 'after a full replay');
    // Nor is a made id one: given again by a producer, it is stored again.
    assert.deepEqual(await duplicates('made', madeIds.slice(-2)), [false, false]);
  });

  it('a queue purged keeps its ids; one deleted and made again does not', async () => {
    await broker.createQueue('kept', {});
    await broker.createQueue('gone', {});
    const ids = ['AAAAAAAA-0000-0000-0000-000000000000', randomUUID(), 'plain', ''];
    const usable = [];
    for (const id of ids) {
      try {
        await duplicates('kept', [id]);
        await duplicates('gone', [id]);
        usable.push(id);
      } catch {
        // An id the broker refuses (the empty one) is no id to remember.
      }
    }
    await broker.purgeQueue('kept');
    await broker.deleteQueue('gone');
    await broker.createQueue('gone', {});
    assert.deepEqual(await duplicates('kept', usable), usable.map(() => true), 'purged');
    assert.deepEqual(await duplicates('gone', usable), usable.map(() => false), 'deleted');

    await reopen();
    assert.deepEqual(await duplicates('kept', usable), usable.map(() => true), 'restart');
    assert.deepEqual(await duplicates('gone', usable), usable.map(() => true), 'republished');
  });

  it('many quiet queues each remember their few ids, not one another\'s', async () => {
    const queues = Array.from({ length: 300 }, (_, q) => `quiet-${q}`);
    const ids = new Map<string, string[]>();
    for (const [q, queue] of queues.entries()) {
      await broker.createQueue(queue, {});
      // One to three ids; 17 for some, one past the first size of the byte ring.
      const count = q % 50 === 0 ? 17 : 1 + (q % 3);
      const own = Array.from({ length: count }, (_, k) =>
        k % 2 === 0 ? randomUUID() : `id-${q}-${k}`);
      await duplicates(queue, own);
      ids.set(queue, own);
    }

    await reopen();
    const remembered = new Map<string, string[]>();
    for (const [q, queue] of queues.entries()) {
      const own = ids.get(queue) ?? [];
      assert.deepEqual(await duplicates(queue, own), own.map(() => true), queue);
      // The next queue's ids are new here, and remembered from now on.
      const other = ids.get(queues[(q + 1) % queues.length]) ?? [];
      assert.deepEqual(await duplicates(queue, other), other.map(() => false), queue);
      remembered.set(queue, [...own, ...other]);
    }

    await reopen({ checkpoints: { enabled: false } });
    for (const [queue, own] of remembered) {
      assert.deepEqual(await duplicates(queue, own), own.map(() => true), queue);
    }
  });
});
