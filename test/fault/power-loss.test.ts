// Simulated power loss under a publish, ack, retry and dead-letter load.
// The broker writes through PowerCutIo; at a random moment the power goes,
// and the next broker boots on an image of the disk in which everything
// written after the last fdatasync is dropped, torn at a random byte or
// zeroed. Rounds are chained, so every boot after the first follows a
// crash that itself followed a crash. After each boot: every confirmed
// publish is present (in the queue or its dead-letter queue) unless its
// ack was confirmed, no acked message comes back, and duplicates are
// counted and reported (there must be none: every id is published once).
//
// USHER_FAULT_SEED repeats a run; USHER_SOAK=1 runs many more rounds.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { openBroker, seededRandom, text } from '../helpers.js';
import { PowerCutIo, type PowerCutMode } from '../storage/power-cut.js';

const SOAK = process.env.USHER_SOAK === '1';
const ROUNDS = Number(process.env.USHER_POWER_ROUNDS ?? (SOAK ? 60 : 6));
const SEED = Number(process.env.USHER_FAULT_SEED ?? Date.now() % 1_000_000);
const MODES: PowerCutMode[] = ['drop', 'torn', 'zeros'];

const random = seededRandom(SEED);
const dirs: string[] = [];

after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'usher-power-'));
  dirs.push(dir);
  return dir;
}

async function idsIn(broker: Broker, queue: string): Promise<string[]> {
  const ids: string[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = broker.peek(queue, { limit: 1000, offset });
    ids.push(...page.map((message) => message.id));
    if (page.length < 1000) return ids;
  }
}

interface Books {
  confirmed: Set<string>;
  acked: Set<string>;
  /** Acks sent whose answer never came: the log may hold them or not. */
  ackUnknown: Set<string>;
  next: number;
}

// Publishers, and consumers that ack, retry or dead-letter what they get,
// until the power goes. Nothing is awaited past the cut: those calls hang.
function load(broker: Broker, io: PowerCutIo, books: Books, round: number): void {
  const publisher = async () => {
    while (!io.isCut) {
      const count = 1 + Math.floor(random() * 10);
      const ids = Array.from({ length: count }, () => `r${round}-${books.next++}`);
      try {
        await broker.publish('q', ids.map((id) => ({ id, body: text(`${id}:${'x'.repeat(300)}`) })));
        for (const id of ids) books.confirmed.add(id);
      } catch {
        return;
      }
    }
  };
  const consumer = async () => {
    while (!io.isCut) {
      try {
        const messages = await broker.receive('q', { max: 10, waitMs: 20 });
        const acks: typeof messages = [];
        for (const message of messages) {
          const roll = random();
          if (roll < 0.7) acks.push(message);
          else await broker.nack('q', message.receipt, { requeue: roll < 0.9 });
        }
        if (acks.length === 0) continue;
        for (const message of acks) books.ackUnknown.add(message.id);
        const results = await broker.ack('q', acks.map((message) => message.receipt));
        acks.forEach((message, i) => {
          books.ackUnknown.delete(message.id);
          if (results[i]) books.acked.add(message.id);
        });
      } catch {
        return;
      }
    }
  };
  for (let i = 0; i < 3; i++) void publisher();
  for (let i = 0; i < 2; i++) void consumer();
}

it(`every confirmed message survives ${ROUNDS} chained power cuts (seed ${SEED})`, async (t) => {
  const books: Books = { confirmed: new Set(), acked: new Set(), ackUnknown: new Set(), next: 0 };
  let dataDir = newDir();
  let duplicates = 0;
  let unconfirmedKept = 0;
  const lostBytes: number[] = [];

  for (let round = 0; round < ROUNDS; round++) {
    const mode = MODES[round % MODES.length];
    const context = `round ${round}, mode ${mode}, seed ${SEED}`;
    const io = new PowerCutIo();
    const broker = await openBroker(dataDir, {
      storeIo: io,
      sync: true,
      segmentBytes: 64 * 1024,
      diskFloorBytes: 0,
    });
    await broker.createQueue('q', {
      deadLetter: 'q.dlq',
      maxAttempts: 3,
      backoff: { initialMs: 0, jitter: 0 },
    });

    load(broker, io, books, round);
    await new Promise((resolve) => setTimeout(resolve, 100 + random() * 300));
    io.cut();
    await io.settled();

    // The dead broker is left as it is: its lock names this very process,
    // so the image leaves the lock file out, as a reboot would.
    const image = newDir();
    const lost = await io.image(dataDir, image, mode, random, (name) => name === 'usher.lock');
    lostBytes.push([...lost.values()].reduce((sum, bytes) => sum + bytes, 0));
    dataDir = image;

    const reborn = await openBroker(dataDir, { diskFloorBytes: 0 });
    try {
      const stored = [...(await idsIn(reborn, 'q')), ...(await idsIn(reborn, 'q.dlq'))];
      const present = new Set(stored);
      const missing = [...books.confirmed].filter(
        (id) => !books.acked.has(id) && !books.ackUnknown.has(id) && !present.has(id),
      );
      const resurrected = [...books.acked].filter((id) => present.has(id));
      duplicates += stored.length - present.size;
      unconfirmedKept += stored.filter((id) => !books.confirmed.has(id)).length;
      for (const id of books.ackUnknown) if (!present.has(id)) books.acked.add(id);
      books.ackUnknown.clear();
      // An unconfirmed publish that survived is a message like any other.
      for (const id of present) books.confirmed.add(id);

      assert.deepEqual(missing, [], `${context}: confirmed messages lost`);
      assert.deepEqual(resurrected, [], `${context}: acked messages came back`);
      assert.equal(stored.length, present.size, `${context}: duplicates`);
      const store = reborn.health().store;
      assert.equal(store.corruptRegions, 0, `${context}: damage before the tail`);
      assert.equal(store.missingSegments, 0, `${context}: segments lost`);
    } finally {
      await reborn.close();
    }
  }

  t.diagnostic(
    `seed ${SEED}: ${books.confirmed.size} confirmed, ${books.acked.size} acked, ` +
      `${duplicates} duplicates, ${unconfirmedKept} unconfirmed publishes kept, ` +
      `unsynced bytes lost per cut: ${lostBytes.join(' ')}`,
  );
  assert.ok(books.confirmed.size > 50, `only ${books.confirmed.size} publishes confirmed`);
  assert.ok(books.acked.size > 10, `only ${books.acked.size} acks confirmed`);
});
