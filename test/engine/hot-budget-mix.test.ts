// The broker's budget for waiting messages in memory (hot-memory.ts) with
// the queue's window of bytes giving way to it (cold-tier.ts `full`):
// several queues, bodies of many sizes, the budget spent and given back
// by deliveries, acks, nacks, purges (some put back) and deletes. What the budget holds
// never goes below zero, and is zero once no queue has a waiting message
// in memory; and past the spent budget, with some messages in memory and
// some on disk, a queue still delivers in its order (priority, FIFO
// groups).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { HotMemory, hotCharge } from '../../src/engine/hot-memory.js';
import { QueueEngine } from '../../src/engine/queue.js';
import { DEFAULT_SETTINGS, type Message } from '../../src/engine/types.js';

const records = new Map<number, Message>();
let nextSeq = 0;

function message(bytes: number, priority = 0, group: string | null = null): Message {
  const seq = ++nextSeq;
  const fields: Message = {
    seq, id: `m${seq}`, priority, group, headers: {}, body: Buffer.alloc(bytes, seq % 251),
    publishedAt: 0, availableAt: 0, expiresAt: null, failures: 0, state: 'ready', lease: null,
  };
  records.set(seq, { ...fields, headers: {} });
  return fields;
}

const pageIn = (seqs: number[]) => seqs.map((seq) => {
  const record = records.get(seq);
  return record === undefined ? undefined : { ...record, headers: {} };
});

// A small random generator, so that a failure repeats.
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

const BODY = 1000;
const CHARGE = hotCharge({ body: Buffer.alloc(BODY), headers: {} });

function queue(name: string, hot: HotMemory, fifo = false): QueueEngine {
  return new QueueEngine(name, { ...DEFAULT_SETTINGS, durability: 'fsync', fifo }, {
    pageIn, hotReadyLimit: 1000, hotWaitingBytes: 3 * BODY, hotMemory: hot,
  });
}

describe('the budget with the window of bytes giving way to it', () => {
  it('never goes below zero and is all given back, whatever the queues do', () => {
    let sawCold = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const next = random(seed);
      const hot = new HotMemory(12 * CHARGE);
      let queues = [queue('a', hot), queue('b', hot), queue('f', hot, true)];
      const leased = new Map<QueueEngine, string[]>();
      for (let step = 0; step < 300; step++) {
        const q = queues[Math.floor(next() * queues.length)];
        const roll = next();
        const now = step;
        if (roll < 0.45) {
          const count = 1 + Math.floor(next() * 6);
          for (let i = 0; i < count; i++) {
            const bytes = Math.floor(next() * 3 * BODY);
            const priority = q.settings.fifo ? 0 : Math.floor(next() * 4);
            const group = q.settings.fifo ? `g${Math.floor(next() * 3)}` : null;
            q.enqueue(message(bytes, priority, group), now, true);
          }
        } else if (roll < 0.7) {
          const got = q.receive(now, 1 + Math.floor(next() * 5), 1_000_000);
          const list = leased.get(q) ?? [];
          list.push(...got.map((delivery) => delivery.receipt));
          leased.set(q, list);
        } else if (roll < 0.85) {
          const list = leased.get(q) ?? [];
          const receipt = list.shift();
          if (receipt !== undefined) {
            if (next() < 0.5) q.ack(receipt);
            else q.nack(receipt, now, { requeue: true, delayMs: 0 });
            q.takeOutcomes();
          }
        } else if (roll < 0.93) {
          // Half the time its write fails, and the queue takes it all back.
          const purged = q.purge();
          if (next() < 0.5) q.restorePurged(purged, now);
        } else {
          q.releaseHotMemory();
          const name = q.name;
          queues = queues.map((other) => (other === q ? queue(name, hot, q.settings.fifo) : other));
          leased.delete(q);
        }
        assert.ok(hot.used >= 0, `seed ${seed} step ${step}: used ${hot.used}`);
        if (queues.some((other) => other.coldCount > 0)) sawCold++;
      }
      // Deliver and ack everything: nothing waits, nothing is charged.
      for (const q of queues) {
        for (const receipt of leased.get(q) ?? []) q.ack(receipt);
        for (let round = 0; round < 10_000 && q.size > 0; round++) {
          for (const delivery of q.receive(1_000, 100, 1_000_000)) q.ack(delivery.receipt);
          q.tick(1_000);
        }
        assert.equal(q.size, 0, `seed ${seed}: ${q.name} emptied`);
      }
      assert.equal(hot.used, 0, `seed ${seed}: all given back`);
    }
    assert.ok(sawCold > 1000, `messages went cold in ${sawCold} steps`);
  });

  it('past the spent budget, a priority queue still delivers highest first, oldest first within one', () => {
    const hot = new HotMemory(8 * CHARGE);
    const q = queue('p', hot);
    const published: Message[] = [];
    const next = random(7);
    for (let i = 0; i < 60; i++) {
      const m = message(BODY, Math.floor(next() * 5));
      published.push(m);
      q.enqueue(m, 0, true);
    }
    assert.ok(q.coldCount > 0, 'some on disk');
    const order: number[] = [];
    for (let round = 0; round < 1000 && q.size > 0; round++) {
      const [delivery] = q.receive(0, 1, 1_000_000);
      if (delivery === undefined) {
        q.tick(0);
        continue;
      }
      order.push(delivery.message.seq);
      q.ack(delivery.receipt);
    }
    const expected = [...published]
      .sort((x, y) => y.priority - x.priority || x.seq - y.seq)
      .map((m) => m.seq);
    assert.deepEqual(order, expected);
    assert.equal(hot.used, 0);
  });

  it('past the spent budget, a FIFO queue delivers each group in order', () => {
    const hot = new HotMemory(8 * CHARGE);
    const f = queue('f', hot, true);
    const next = random(11);
    const byGroup = new Map<string, number[]>();
    for (let i = 0; i < 80; i++) {
      const group = `g${Math.floor(next() * 4)}`;
      const m = message(Math.floor(next() * 2 * BODY), 0, group);
      byGroup.set(group, [...(byGroup.get(group) ?? []), m.seq]);
      f.enqueue(m, 0, true);
    }
    assert.ok(f.coldCount > 0, 'some on disk');
    const seen = new Map<string, number[]>();
    for (let round = 0; round < 2000 && f.size > 0; round++) {
      const got = f.receive(0, 3, 1_000_000);
      if (got.length === 0) f.tick(0);
      for (const delivery of got) {
        const group = delivery.message.group as string;
        seen.set(group, [...(seen.get(group) ?? []), delivery.message.seq]);
        f.ack(delivery.receipt);
      }
    }
    assert.deepEqual(seen, byGroup);
    assert.equal(hot.used, 0);
  });
});
