// SIGKILL during a publish and ack storm, many times over. After every
// restart: every confirmed publish is present exactly once unless its ack
// was confirmed, and no message whose ack was confirmed comes back.
// CASES.md C13 (double crash) is the fixed-count variant at the end.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { tempDir } from '../helpers.js';
import { ServeProcess } from './serve-process.js';

const ROUNDS = Number(process.env.USHER_CRASH_ROUNDS ?? 6);

let dir: ReturnType<typeof tempDir>;
let usher: ServeProcess;

before(async () => {
  dir = tempDir('usher-crash-');
  usher = new ServeProcess(dir.path);
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

describe('attempts and delays survive SIGKILL', () => {
  it('nacked twice, killed, redelivered as attempt 3, then dead-lettered (C3)', async () => {
    await usher.request('PUT', '/queues/c3', {
      maxAttempts: 3, deadLetter: 'c3.dlq', backoff: { initialMs: 0, jitter: 0 },
    });
    await usher.request('POST', '/queues/c3/messages', { id: 'job', body: 'x' });
    for (let i = 0; i < 2; i++) {
      const { json } = await usher.request('POST', '/queues/c3/receive', { max: 1 });
      await usher.request('POST', '/queues/c3/nack', { receipt: json.messages[0].receipt });
    }
    await usher.kill();
    await usher.start();

    const { json } = await usher.request('POST', '/queues/c3/receive', { max: 1 });
    const [message] = json.messages;
    assert.equal(message.attempt, 3);
    assert.equal(message.redelivered, true);
    await usher.request('POST', '/queues/c3/nack', { receipt: message.receipt });

    const dead = await usher.request('GET', '/queues/c3.dlq/messages');
    assert.equal(dead.json.messages[0].id, 'job');
    assert.equal(dead.json.messages[0].headers['x-usher-death-reason'], 'max-attempts');
  });

  it('a consumer that crashes counts as a failed attempt too (C3)', async () => {
    await usher.request('PUT', '/queues/c3b', { maxAttempts: 3, deadLetter: 'c3b.dlq' });
    await usher.request('POST', '/queues/c3b/messages', { id: 'job', body: 'x' });
    // Two consumers take the message and die: their leases run out.
    for (let i = 0; i < 2; i++) {
      await usher.request('POST', '/queues/c3b/receive', { max: 1, visibilityTimeoutMs: 50 });
      await new Promise((resolve) => setTimeout(resolve, 120));
    }
    await usher.kill();
    await usher.start();

    const { json } = await usher.request('POST', '/queues/c3b/receive', { max: 1, visibilityTimeoutMs: 50 });
    assert.equal(json.messages[0].attempt, 3);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const dead = await usher.request('GET', '/queues/c3b.dlq/messages');
    assert.equal(dead.json.messages.length, 1);
    assert.equal(dead.json.messages[0].headers['x-usher-death-reason'], 'max-attempts');
  });

  it('priority survives requeue, retry and SIGKILL (C7)', async () => {
    await usher.request('PUT', '/queues/c7', { backoff: { initialMs: 0, jitter: 0 } });
    for (let i = 0; i < 5; i++) {
      await usher.request('POST', '/queues/c7/messages', { id: `low${i}`, body: 'x', priority: 0 });
    }
    await usher.request('POST', '/queues/c7/messages', { id: 'high', body: 'x', priority: 9 });
    // Requeued by a nack, then retried after a lease that ran out.
    const first = await usher.request('POST', '/queues/c7/receive', { max: 1 });
    assert.equal(first.json.messages[0].id, 'high');
    await usher.request('POST', '/queues/c7/nack', { receipt: first.json.messages[0].receipt });
    const second = await usher.request('POST', '/queues/c7/receive', { max: 1, visibilityTimeoutMs: 50 });
    assert.equal(second.json.messages[0].id, 'high');
    await new Promise((resolve) => setTimeout(resolve, 120));
    await usher.kill();
    await usher.start();

    await usher.request('POST', '/queues/c7/messages', { id: 'mid', body: 'x', priority: 5 });
    const { json } = await usher.request('POST', '/queues/c7/receive', { max: 10 });
    assert.deepEqual(
      json.messages.map((m: { id: string }) => m.id),
      ['high', 'mid', 'low0', 'low1', 'low2', 'low3', 'low4'],
    );
    assert.equal(json.messages[0].attempt, 3);
  });

  it('a due delay fires at once after restart, a later one at its time (C11)', async () => {
    await usher.request('PUT', '/queues/c11', {});
    const publishedAt = Date.now();
    await usher.request('POST', '/queues/c11/messages/batch', {
      messages: [{ body: 'A', delayMs: 500 }, { body: 'B', delayMs: 2500 }],
    });
    await usher.kill();
    await new Promise((resolve) => setTimeout(resolve, 800));
    await usher.start();

    // On a loaded machine the restart itself may outlast B's delay: then B
    // is due and comes at once too. It must never come before its time.
    const first = await usher.request('POST', '/queues/c11/receive', { max: 10, waitMs: 0 });
    const firstBodies = first.json.messages.map((m: { body: string }) => m.body);
    if (firstBodies.includes('B')) {
      assert.deepEqual(firstBodies, ['A', 'B']);
      assert.ok(Date.now() - publishedAt >= 2500, 'B came before its time');
      return;
    }
    assert.deepEqual(firstBodies, ['A']);
    const second = await usher.request('POST', '/queues/c11/receive', { max: 10, waitMs: 5000 });
    assert.deepEqual(second.json.messages.map((m: { body: string }) => m.body), ['B']);
    const late = Date.now() - publishedAt - 2500;
    assert.ok(late >= 0, 'B came before its time');
    assert.ok(late < 1500, `B was held ${late} ms past its time`);
  });

  it('a delayed message arrives within a long poll at its time (C10)', async () => {
    await usher.request('PUT', '/queues/c10', {});
    const polled = usher.request('POST', '/queues/c10/receive', { max: 1, waitMs: 20_000 });
    const publishedAt = Date.now();
    await usher.request('POST', '/queues/c10/messages', { body: 'late', delayMs: 2000 });

    const { json } = await polled;
    const waited = Date.now() - publishedAt;
    assert.equal(json.messages[0].body, 'late');
    assert.ok(waited >= 1800 && waited <= 2200, `arrived after ${waited} ms`);
  });
});
