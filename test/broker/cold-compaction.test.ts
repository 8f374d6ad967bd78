// Compaction copies the `published` records of cold messages forward
// (their bodies read back from disk) and deletes the old segments; the
// cold tier must then read each message at its new place. Small segments
// and a hot window of 3: every body, header and attempt comes back as
// published, before and after a restart.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { ManualClock, openBroker, tempDir } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let clock: ManualClock;
let broker: Broker;

const options = () => ({
  clock: clock.read, random: () => 0, hotReadyLimit: 3, hotMemoryBytes: 0, segmentBytes: 64 * 1024,
});

beforeEach(async () => {
  dir = tempDir();
  clock = new ManualClock();
  broker = await openBroker(dir.path, options());
});

afterEach(async () => {
  await broker.close();
  dir.remove();
});

function bodyOf(i: number): Buffer {
  const size = [0, 10, 900, 4095, 4096, 5000, 20_000][i % 7];
  const body = Buffer.alloc(size);
  for (let k = 0; k < size; k++) body[k] = (i * 31 + k) & 0xff;
  return body;
}

const digest = (body: Buffer) => createHash('sha1').update(body).digest('hex');

it('cold messages survive compaction of their segments, bytes intact', async () => {
  await broker.createQueue('q', { maxAttempts: 0 });
  await broker.createQueue('f', { fifo: true, maxAttempts: 0 });
  await broker.createQueue('churn', {});
  const expected = new Map<string, string>();
  for (let i = 0; i < 300; i++) {
    const queue = i % 3 === 0 ? 'f' : 'q';
    await broker.publish(queue, [{
      id: `m${i}`, body: bodyOf(i), headers: { n: String(i) }, priority: i % 3,
      group: queue === 'f' ? `g${i % 4}` : undefined, delayMs: i % 10 === 0 ? 1000 : undefined,
    }]);
    expected.set(`m${i}`, digest(bodyOf(i)));
    // Garbage: published and acked at once, so the old segments go.
    await broker.publish('churn', [{ body: Buffer.alloc(3000) }]);
    const [c] = await broker.receive('churn', { max: 1, waitMs: 0 });
    if (c !== undefined) await broker.ack('churn', [c.receipt]);
  }
  // Some retried (a `retried` record after the copy, or before it).
  const got = await broker.receive('q', { max: 5, waitMs: 0 });
  for (const m of got) await broker.nack('q', m.receipt, { requeue: true, delayMs: 0 });
  for (let i = 0; i < 300; i++) {
    await broker.publish('churn', [{ body: Buffer.alloc(3000) }]);
    const [c] = await broker.receive('churn', { max: 1, waitMs: 0 });
    if (c !== undefined) await broker.ack('churn', [c.receipt]);
  }

  assert.ok(broker.health().store.compactedMessages > 0, 'compaction ran');
  // Half before a restart, the rest after it; every message once, intact.
  const seen = new Map<string, string>();
  const take = async (limit: number) => {
    clock.advance(2000);
    broker.runDue();
    for (const queue of ['q', 'f']) {
      for (let n = 0; n < limit; ) {
        const batch = await broker.receive(queue, { max: 10, waitMs: 0 });
        if (batch.length === 0) break;
        for (const m of batch) {
          assert.equal(m.headers.n, m.id.slice(1), `headers of ${m.id}`);
          assert.ok(!seen.has(m.id), `${m.id} twice`);
          seen.set(m.id, digest(m.body));
        }
        n += batch.length;
        await broker.ack(queue, batch.map((m) => m.receipt));
      }
    }
  };
  await take(60);
  await broker.close();
  broker = await openBroker(dir.path, options());
  await take(Number.POSITIVE_INFINITY);
  assert.equal(seen.size, expected.size);
  for (const [id, sum] of expected) assert.equal(seen.get(id), sum, `body of ${id}`);
});
