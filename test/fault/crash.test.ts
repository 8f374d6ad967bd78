// SIGKILL during a publish and ack storm, many times over. After every
// restart: every confirmed publish is present exactly once unless its ack
// was confirmed, and no message whose ack was confirmed comes back.
// CASES.md C13 (double crash) is the fixed-count variant at the end.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { tempDir } from '../helpers.js';
import { ServeProcess, freePort } from './serve-process.js';

const ROUNDS = Number(process.env.USHER_CRASH_ROUNDS ?? 6);

let dir: ReturnType<typeof tempDir>;
let usher: ServeProcess;

before(async () => {
  dir = tempDir('usher-crash-');
  usher = new ServeProcess(dir.path, await freePort());
  await usher.start();
});

after(async () => {
  await usher.kill();
  dir.remove();
});

/** Every message id in the queue, by paging through it without leasing. */
async function storedIds(queue: string): Promise<string[]> {
  const ids: string[] = [];
  for (let offset = 0; ; offset += 1000) {
    const { status, json } = await usher.request('GET', `/queues/${queue}/messages?limit=1000&offset=${offset}`);
    assert.equal(status, 200);
    ids.push(...json.messages.map((m: { id: string }) => m.id));
    if (json.messages.length < 1000) return ids;
  }
}

/** Duplicated ids, with how many times each appears. */
function duplicatesOf(ids: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return new Map([...counts].filter(([, count]) => count > 1));
}

describe('SIGKILL during a publish and ack storm', () => {
  it(`keeps every confirmed message and no acked one, ${ROUNDS} crashes`, async () => {
    await usher.request('PUT', '/queues/storm', { visibilityTimeoutMs: 60_000 });
    const confirmed = new Set<string>();
    const acked = new Set<string>();
    // Acks sent whose answer never came: the broker may have logged them.
    const ackUnknown = new Set<string>();
    let counter = 0;

    for (let round = 0; round < ROUNDS; round++) {
      let stop = false;

      const publisher = async () => {
        while (!stop) {
          const ids = Array.from({ length: 1 + (counter % 20) }, () => `m-${counter++}`);
          try {
            const { status } = await usher.request('POST', '/queues/storm/messages/batch', {
              messages: ids.map((id) => ({ id, body: { id, round } })),
            });
            if (status === 201) for (const id of ids) confirmed.add(id);
          } catch {
            return; // The broker died mid-request: outcome unknown.
          }
        }
      };
      const consumer = async () => {
        while (!stop) {
          try {
            const { json } = await usher.request('POST', '/queues/storm/receive', { max: 20, waitMs: 50 });
            const messages: { id: string; receipt: string }[] = json.messages;
            if (messages.length === 0) continue;
            for (const m of messages) ackUnknown.add(m.id);
            const answer = await usher.request('POST', '/queues/storm/ack', {
              receipts: messages.map((m) => m.receipt),
            });
            for (const m of messages) ackUnknown.delete(m.id);
            if (answer.status !== 200) continue;
            answer.json.results.forEach((ok: boolean, i: number) => {
              if (ok) acked.add(messages[i].id);
            });
          } catch {
            return;
          }
        }
      };

      const workers = [publisher(), publisher(), publisher(), publisher(), consumer(), consumer()];
      await new Promise((resolve) => setTimeout(resolve, 150 + Math.random() * 350));
      await usher.kill();
      stop = true;
      await Promise.all(workers);
      await usher.start();

      const stored = await storedIds('storm');
      const present = new Set(stored);
      const missing = [...confirmed].filter(
        (id) => !acked.has(id) && !ackUnknown.has(id) && !present.has(id),
      );
      const resurrected = [...acked].filter((id) => present.has(id));
      const duplicated = duplicatesOf(stored);
      // Settle the unknown acks by what the log says, so later rounds are exact.
      for (const id of ackUnknown) if (!present.has(id)) acked.add(id);
      ackUnknown.clear();

      assert.deepEqual(missing, [], `round ${round}: confirmed messages lost`);
      assert.deepEqual(resurrected, [], `round ${round}: acked messages came back`);
      assert.equal(duplicated.size, 0, `round ${round}: duplicates ${[...duplicated.keys()]}`);
    }
    assert.ok(confirmed.size > 100, `only ${confirmed.size} publishes were confirmed`);
    assert.ok(acked.size > 10, `only ${acked.size} acks were confirmed`);
  });

  it('double crash leaves exactly the unacked messages (C13)', async () => {
    await usher.request('PUT', '/queues/c13', {});

    async function publish(from: number, count: number) {
      for (let start = from; start < from + count; start += 500) {
        const messages = Array.from({ length: 500 }, (_, i) => ({ id: `c-${start + i}`, body: 'x' }));
        const { status } = await usher.request('POST', '/queues/c13/messages/batch', { messages });
        assert.equal(status, 201);
      }
    }
    async function ack(count: number): Promise<string[]> {
      const done: string[] = [];
      while (done.length < count) {
        const max = Math.min(500, count - done.length);
        const { json } = await usher.request('POST', '/queues/c13/receive', { max, waitMs: 0 });
        const messages: { id: string; receipt: string }[] = json.messages;
        const answer = await usher.request('POST', '/queues/c13/ack', { receipts: messages.map((m) => m.receipt) });
        assert.equal(answer.json.acked, messages.length);
        done.push(...messages.map((m) => m.id));
      }
      return done;
    }

    await publish(0, 10_000);
    const firstAcks = await ack(5000);
    await usher.kill();
    await usher.start();
    await publish(10_000, 1000);
    const secondAcks = await ack(500);
    await usher.kill();
    await usher.start();

    const stored = await storedIds('c13');
    assert.equal(stored.length, 5500);
    assert.equal(new Set(stored).size, 5500);
    const ackedIds = new Set([...firstAcks, ...secondAcks]);
    assert.equal(stored.filter((id) => ackedIds.has(id)).length, 0);
  });
});
