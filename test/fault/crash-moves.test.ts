// SIGKILL while messages move inside the log rather than arrive or leave:
// dead-lettering, retries and redrive (`moved` and `retried` records), and
// compaction (a message's `published` record copied to a later segment).
// After every restart each confirmed message is present exactly once, in
// one queue, with its body as published.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { tempDir } from '../helpers.js';
import { ServeProcess } from './serve-process.js';

const ROUNDS = Number(process.env.USHER_CRASH_ROUNDS ?? (process.env.USHER_SOAK === '1' ? 30 : 4));

const dirs: ReturnType<typeof tempDir>[] = [];
const processes: ServeProcess[] = [];

after(async () => {
  for (const usher of processes) await usher.kill();
  for (const dir of dirs) dir.remove();
});

async function startUsher(flags: string[] = []): Promise<ServeProcess> {
  const dir = tempDir('usher-moves-');
  dirs.push(dir);
  const usher = new ServeProcess(dir.path, flags);
  processes.push(usher);
  await usher.start();
  return usher;
}

interface Stored {
  id: string;
  body: string;
}

async function stored(usher: ServeProcess, queue: string): Promise<Stored[]> {
  const messages: Stored[] = [];
  for (let offset = 0; ; offset += 1000) {
    const { status, json } = await usher.request('GET', `/queues/${queue}/messages?limit=1000&offset=${offset}`);
    assert.equal(status, 200);
    messages.push(...json.messages);
    if (json.messages.length < 1000) return messages;
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Longest a round waits for its work before the kill comes anyway. */
const MAX_ROUND_MS = 60_000;

/**
 * Runs `workers` for a random while and until `done()` says they did the
 * round's work, then kills the broker under them. A fixed 200-600 ms did
 * too little on a loaded machine: 80 publishes in four rounds, and no
 * compaction, in a full `npm test` at load 12.
 */
async function killDuring(
  usher: ServeProcess,
  workers: ((stop: () => boolean) => Promise<void>)[],
  done: () => boolean,
) {
  let stopped = false;
  const running = workers.map((worker) => worker(() => stopped).catch(() => undefined));
  await pause(200 + Math.random() * 400);
  for (const began = Date.now(); !done() && Date.now() - began < MAX_ROUND_MS;) await pause(20);
  await usher.kill();
  stopped = true;
  await Promise.all(running);
  await usher.start();
}

describe('SIGKILL during moves', () => {
  it(`dead-lettering, retries and redrive lose and double nothing, ${ROUNDS} crashes`, async () => {
    const usher = await startUsher();
    await usher.request('PUT', '/queues/work', {
      deadLetter: 'work.dlq', maxAttempts: 2, backoff: { initialMs: 0, jitter: 0 },
    });
    const confirmed = new Set<string>();
    let next = 0;

    const publisher = async (stop: () => boolean) => {
      while (!stop()) {
        const ids = Array.from({ length: 10 }, () => `d-${next++}`);
        const { status } = await usher.request('POST', '/queues/work/messages/batch', {
          messages: ids.map((id) => ({ id, body: id })),
        });
        if (status === 201) for (const id of ids) confirmed.add(id);
      }
    };
    // Half dead-lettered at once, half retried until the attempt limit.
    const nacker = async (stop: () => boolean) => {
      while (!stop()) {
        const { json } = await usher.request('POST', '/queues/work/receive', { max: 20, waitMs: 50 });
        for (const [i, message] of json.messages.entries()) {
          await usher.request('POST', '/queues/work/nack', { receipt: message.receipt, requeue: i % 2 === 0 });
        }
      }
    };
    let redriven = 0;
    const redriver = async (stop: () => boolean) => {
      while (!stop()) {
        const { status, json } = await usher.request('POST', '/queues/work.dlq/redrive', { max: 20 });
        if (status === 200) redriven += json.moved;
        await pause(30);
      }
    };

    for (let round = 0; round < ROUNDS; round++) {
      // Enough publishes each round for the total below, and a redrive by the last.
      const target = confirmed.size + 30 + Math.floor(Math.random() * 60);
      const last = round === ROUNDS - 1;
      await killDuring(usher, [publisher, nacker, nacker, redriver],
        () => confirmed.size >= target && (!last || redriven > 0));

      const everywhere = [...(await stored(usher, 'work')), ...(await stored(usher, 'work.dlq'))];
      const ids = everywhere.map((message) => message.id);
      const present = new Set(ids);
      const missing = [...confirmed].filter((id) => !present.has(id));
      assert.deepEqual(missing, [], `round ${round}: confirmed messages lost`);
      assert.equal(ids.length, present.size, `round ${round}: a message is in two places`);
      for (const message of everywhere) assert.equal(message.body, message.id);
      for (const id of present) confirmed.add(id);
    }
    assert.ok(confirmed.size > 100, `only ${confirmed.size} publishes confirmed`);
    assert.ok(redriven > 0, 'nothing was dead-lettered and redriven');
  });

  it(`compaction copies forward without loss or doubles, ${ROUNDS} crashes`, async () => {
    // Small segments, and a queue nobody reads pinning the oldest one, so
    // churn on another queue makes compaction run all the time.
    const usher = await startUsher(['--segment-size', '32KiB']);
    await usher.request('PUT', '/queues/pinned', {});
    await usher.request('PUT', '/queues/churn', {});
    const pinned = Array.from({ length: 200 }, (_, i) => ({ id: `p-${i}`, body: `pinned ${i} ${'p'.repeat(i)}` }));
    for (let i = 0; i < pinned.length; i += 50) {
      const { status } = await usher.request('POST', '/queues/pinned/messages/batch', {
        messages: pinned.slice(i, i + 50),
      });
      assert.equal(status, 201);
    }

    const confirmed = new Set<string>();
    const acked = new Set<string>();
    const ackUnknown = new Set<string>();
    let next = 0;
    const publisher = async (stop: () => boolean) => {
      while (!stop()) {
        const ids = Array.from({ length: 20 }, () => `c-${next++}`);
        const { status } = await usher.request('POST', '/queues/churn/messages/batch', {
          messages: ids.map((id) => ({ id, body: `${id} ${'c'.repeat(400)}` })),
        });
        if (status === 201) for (const id of ids) confirmed.add(id);
      }
    };
    const acker = async (stop: () => boolean) => {
      while (!stop()) {
        const { json } = await usher.request('POST', '/queues/churn/receive', { max: 50, waitMs: 50 });
        const messages: { id: string; receipt: string }[] = json.messages;
        if (messages.length === 0) continue;
        for (const m of messages) ackUnknown.add(m.id);
        const answer = await usher.request('POST', '/queues/churn/ack', { receipts: messages.map((m) => m.receipt) });
        for (const m of messages) ackUnknown.delete(m.id);
        if (answer.status === 200) for (const m of messages) acked.add(m.id);
      }
    };

    let compacted = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // Some churn each round, and a compaction seen by the last.
      const target = confirmed.size + 40 + Math.floor(Math.random() * 120);
      const last = round === ROUNDS - 1;
      const done = () => confirmed.size >= target && (!last || compacted > 0);
      await killDuring(usher, [
        async (stop) => {
          while (!stop()) {
            compacted = Math.max(compacted, (await usher.request('GET', '/healthz')).json.store.compactedMessages);
            await pause(50);
          }
        },
        publisher,
        acker,
      ], done);

      const kept = (await stored(usher, 'pinned'))
        .map(({ id, body }) => ({ id, body }))
        .sort((a, b) => Number(a.id.slice(2)) - Number(b.id.slice(2)));
      assert.equal(kept.length, pinned.length, `round ${round}: pinned messages lost or doubled`);
      assert.ok(
        kept.every((message, i) => message.id === pinned[i].id && message.body === pinned[i].body),
        `round ${round}: pinned messages changed`,
      );
      const churn = (await stored(usher, 'churn')).map((m) => m.id);
      const present = new Set(churn);
      assert.equal(churn.length, present.size, `round ${round}: duplicates in churn`);
      const missing = [...confirmed].filter((id) => !acked.has(id) && !ackUnknown.has(id) && !present.has(id));
      assert.deepEqual(missing, [], `round ${round}: confirmed messages lost`);
      assert.deepEqual([...acked].filter((id) => present.has(id)), [], `round ${round}: acked came back`);
      for (const id of ackUnknown) if (!present.has(id)) acked.add(id);
      ackUnknown.clear();
    }
    // Compaction counts since the broker started: some round saw it work.
    assert.ok(compacted > 0, 'compaction never ran');
    const { json } = await usher.request('GET', '/healthz');
    assert.ok(json.store.segments < 40, `${json.store.segments} segments: the log is not reclaimed`);
  });
});
