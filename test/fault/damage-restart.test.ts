// Damage to the log between two runs of a broker, seen from the queues:
// a bit flipped at a random place in an older segment, and the last
// segment cut at a random byte. The store's own tests pin down each frame
// (test/storage/recovery.test.ts, damage.test.ts) and bad-input.test.ts
// runs fixed cuts and flips against `usher serve`; these add seeded random
// places (many more under USHER_SOAK=1) and exact bounds: the broker
// starts, loses only the message the damage touched, keeps every other
// one whole, and counts the damage in its health.

import assert from 'node:assert/strict';
import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { listSegments } from '../../src/storage/segment-file.js';
import { openBroker, seededRandom, tempDir } from '../helpers.js';
import { bodyOf, fillSmallSegments } from './small-segments.js';

const SEED = Number(process.env.USHER_FAULT_SEED ?? Date.now() % 1_000_000);
const ROUNDS = process.env.USHER_SOAK === '1' ? 50 : 5;
const random = seededRandom(SEED);


function kept(broker: Broker): Map<string, string> {
  const messages = new Map<string, string>();
  for (const message of broker.peek('q', { limit: 1000, offset: 0 })) {
    messages.set(message.id, message.body.toString());
  }
  return messages;
}

it(`a flipped bit in an older segment costs the message it hits only (seed ${SEED})`, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const dir = tempDir('usher-damage-');
    try {
      await fillSmallSegments(dir.path);
      const segments = await listSegments(join(dir.path, 'log'));
      // Past the 24-byte header, in any segment but the last. A flip in a
      // segment's queue declaration costs no message: later segments
      // declare the queue again.
      const target = segments[Math.floor(random() * (segments.length - 1))].path;
      const bytes = readFileSync(target);
      const offset = 24 + Math.floor(random() * (bytes.length - 24));
      bytes[offset] ^= 1 << Math.floor(random() * 8);
      writeFileSync(target, bytes);

      // A full replay: with the checkpoint of the clean close the older
      // segment would not be read at start, and the damage would show
      // only when the message it hit is read back.
      const broker = await openBroker(dir.path, { checkpoints: { enabled: false } });
      try {
        const messages = kept(broker);
        const context = `seed ${SEED}, round ${round}, ${target} byte ${offset}`;
        assert.ok(messages.size >= 299, `${context}: ${300 - messages.size} messages lost`);
        for (const [id, body] of messages) assert.equal(body, bodyOf(Number(id.slice(2))), context);
        assert.equal(broker.health().store.corruptRegions, 1, context);
      } finally {
        await broker.close();
      }
    } finally {
      dir.remove();
    }
  }
});

it(`a last segment cut at a random byte loses only its tail (seed ${SEED})`, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const dir = tempDir('usher-damage-');
    try {
      await fillSmallSegments(dir.path);
      const segments = await listSegments(join(dir.path, 'log'));
      const { path } = segments.at(-1)!;
      const size = statSync(path).size;
      const cut = Math.floor(random() * size);
      truncateSync(path, cut);

      const broker = await openBroker(dir.path);
      try {
        const messages = kept(broker);
        const ids = [...messages.keys()].map((id) => Number(id.slice(2)));
        const context = `seed ${SEED}, round ${round}, ${path} cut at ${cut} of ${size}`;
        // What is left is a prefix of what was published, bodies whole.
        assert.deepEqual(ids, ids.map((_, i) => i), context);
        for (const [id, body] of messages) assert.equal(body, bodyOf(Number(id.slice(2))), context);
        assert.ok(broker.health().store.corruptTails <= 1, context);
        assert.equal(broker.health().store.corruptRegions, 0, context);
      } finally {
        await broker.close();
      }
    } finally {
      dir.remove();
    }
  }
});
