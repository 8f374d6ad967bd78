// The cold backlog in the engine: a queue that keeps only a window of its
// ready messages in memory must deliver, count, list, purge and overflow
// exactly as one that keeps them all. The "disk" is a Map the page-in
// reads copies from, as the broker reads them from the log.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { QueueEngine, type Outcome } from '../../src/engine/queue.js';
import { DEFAULT_SETTINGS, type Message, type QueueSettings } from '../../src/engine/types.js';

class FakeLog {
  readonly records = new Map<number, Message>();
  reads = 0;
  readonly unreadable = new Set<number>();
  #seq = 0;

  publish(fields: Partial<Message> = {}): Message {
    const seq = ++this.#seq;
    const message: Message = {
      seq,
      id: `m${seq}`,
      priority: 0,
      group: null,
      headers: {},
      body: Buffer.from(`body ${seq}`),
      publishedAt: seq,
      availableAt: 0,
      expiresAt: null,
      failures: 0,
      state: 'ready',
      lease: null,
      ...fields,
    };
    this.records.set(seq, { ...message });
    return message;
  }

  pageIn = (seqs: number[]): (Message | undefined)[] => {
    this.reads++;
    return seqs.map((seq) => {
      const record = this.records.get(seq);
      if (record === undefined || this.unreadable.has(seq)) return undefined;
      return { ...record, state: 'ready', lease: null };
    });
  };
}

function coldEngine(log: FakeLog, settings: Partial<QueueSettings> = {}, hot = 4): QueueEngine {
  return new QueueEngine('q', { ...DEFAULT_SETTINGS, ...settings }, {
    random: () => 0,
    pageIn: log.pageIn,
    hotReadyLimit: hot,
  });
}

const ids = (messages: { message: Message }[]) => messages.map((d) => d.message.id);

describe('cold backlog', () => {
  it('keeps priority order, and arrival order within a priority, across hot and cold', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ publish: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 30 }) }),
            fc.record({ receive: fc.integer({ min: 1, max: 12 }), nack: fc.boolean() }),
          ),
          { maxLength: 60 },
        ),
        fc.integer({ min: 1, max: 8 }),
        (steps, hot) => {
          const log = new FakeLog();
          const backoff = { ...DEFAULT_SETTINGS.backoff, initialMs: 0 };
          const q = coldEngine(log, { backoff }, hot);
          const model = new Map<number, number>();
          for (const step of steps) {
            if ('publish' in step) {
              for (const priority of step.publish) {
                const message = log.publish({ priority });
                q.enqueue(message, 10, true);
                model.set(message.seq, priority);
              }
              continue;
            }
            const expected = [...model]
              .sort((a, b) => b[1] - a[1] || a[0] - b[0])
              .slice(0, step.receive)
              .map(([seq]) => `m${seq}`);
            const got = q.receive(10, step.receive, 1000);
            assert.deepEqual(ids(got), expected);
            for (const delivery of got) {
              if (step.nack) {
                // Back at once (backoff 0): hot again, with its old seq.
                q.nack(delivery.receipt, 10, { requeue: true, delayMs: 0 });
                q.takeOutcomes();
              } else {
                q.ack(delivery.receipt);
                model.delete(delivery.message.seq);
              }
            }
            assert.equal(q.counts.ready, model.size);
          }
          assert.equal(q.size, model.size);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('reads the pages after each page-in ahead, and takes them as read ahead', () => {
    const log = new FakeLog();
    const pages: number[][] = [];
    const aheads: number[][] = [];
    const q = new QueueEngine('q', DEFAULT_SETTINGS, {
      random: () => 0,
      hotReadyLimit: 4,
      pageIn: (seqs) => {
        pages.push([...seqs]);
        return log.pageIn(seqs);
      },
      readAhead: (seqs) => void aheads.push([...seqs]),
    });
    for (let i = 0; i < 1000; i++) q.enqueue(log.publish(), 0, true);

    const got: string[] = [];
    for (let d = q.receive(0, 100, 1000); d.length > 0; d = q.receive(0, 100, 1000)) {
      got.push(...ids(d));
      for (const delivery of d) q.ack(delivery.receipt);
    }
    assert.deepEqual(got, Array.from({ length: 1000 }, (_, i) => `m${i + 1}`));

    // Pages of 256 from seq 5 (1-4 stayed hot); after each, the two
    // pages that follow it (what is left of them), less what was asked
    // for after the page before, are asked ahead: each seq once.
    assert.deepEqual(pages.map((page) => page[0]), [5, 261, 517, 773]);
    assert.deepEqual(aheads.map((seqs) => [seqs[0], seqs.at(-1)]),
      [[261, 772], [773, 1000]]);
    assert.equal(aheads.flat().length, new Set(aheads.flat()).size);
    // Every page but the first was asked ahead before it was taken.
    const asked = new Set(aheads.flat());
    assert.ok(pages.slice(1).every((page) => page.every((seq) => asked.has(seq))));
  });

  it('delivers by priority when a higher one arrives after lower ones were read ahead', () => {
    const log = new FakeLog();
    const aheads: number[][] = [];
    const q = new QueueEngine('q', DEFAULT_SETTINGS, {
      random: () => 0,
      hotReadyLimit: 4,
      pageIn: log.pageIn,
      readAhead: (seqs) => void aheads.push([...seqs]),
    });
    for (let i = 0; i < 600; i++) q.enqueue(log.publish({ priority: 1 }), 0, true);
    const first = q.receive(0, 10, 1000);
    assert.deepEqual(ids(first), Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
    assert.equal(aheads.length, 1, 'the page after the first read ahead');

    // Past the window, so cold too, but ahead of everything read ahead.
    for (let i = 0; i < 300; i++) q.enqueue(log.publish({ priority: 5 }), 0, true);
    const rest = ids(q.receive(0, 1000, 1000));
    const expected = [
      ...Array.from({ length: 300 }, (_, i) => `m${601 + i}`),
      ...Array.from({ length: 590 }, (_, i) => `m${11 + i}`),
    ];
    assert.deepEqual(rest, expected);
  });

  it('keeps new publishes cold past the window and counts them', () => {
    const log = new FakeLog();
    const q = coldEngine(log);
    for (let i = 0; i < 10; i++) q.enqueue(log.publish(), 0, true);
    assert.equal(q.coldCount, 6);
    assert.equal(q.counts.ready, 10);
    assert.equal(q.size, 10);
    assert.equal(q.counts.bytes, [...log.records.values()].reduce((n, m) => n + m.body.length, 0));
    assert.equal(log.reads, 0);

    // A delayed publish goes cold too, with its due time; a moved-in
    // message stays hot until its record lands.
    q.enqueue(log.publish({ availableAt: 50 }), 0, true);
    q.enqueue(log.publish(), 0);
    assert.equal(q.coldCount, 7);
    assert.equal(q.counts.delayed, 1);
    assert.equal(q.nextWakeAt(), 50);
    q.landed(12);
    assert.equal(q.coldCount, 7, 'a retry record alone: never on disk as it is');
    q.landed(12, { other: 'headers' });
    assert.equal(q.coldCount, 7, 'a record of other headers: not its state');
    q.landed(12, q.get(12)?.headers);
    assert.equal(q.coldCount, 8, 'its own record landed: cold');
    assert.equal(q.counts.ready, 11);
  });

  it('lets retried messages that were paged in go cold again once their retry lands', () => {
    const log = new FakeLog();
    const backoff = { initialMs: 100, multiplier: 1, maxMs: 100, jitter: 0 };
    const q = coldEngine(log, { backoff });
    for (let i = 0; i < 20; i++) q.enqueue(log.publish(), 0, true);
    const deliveries = q.receive(0, 20, 1000);
    assert.equal(deliveries.length, 20);
    for (const d of deliveries) q.nack(d.receipt, 0, { requeue: true });
    // The broker logs a `retried` record for each, then tells the engine.
    for (const outcome of q.takeOutcomes()) q.landed(outcome.message.seq);
    assert.equal(q.counts.delayed, 20);
    assert.equal(q.coldCount, 16, 'all but the window of 4 wait cold for their retry');
    const again = q.receive(200, 20, 1000);
    assert.deepEqual(again.map((d) => [d.message.id, d.attempt]),
      deliveries.map((d) => [d.message.id, 2]));
  });

  it('keeps new publishes cold past a byte budget too', () => {
    const log = new FakeLog();
    const q = new QueueEngine('q', DEFAULT_SETTINGS, {
      pageIn: log.pageIn,
      hotReadyLimit: 1000,
      hotWaitingBytes: 20,
    });
    for (let i = 0; i < 10; i++) q.enqueue(log.publish(), 0, true);
    // "body 1" .. "body 4" reach 24 bytes; the rest stay on disk.
    assert.equal(q.coldCount, 6);
    assert.deepEqual(ids(q.receive(0, 10, 1000)).length, 10);
  });

  it('lists hot and cold messages in delivery order, reading only the page asked for', () => {
    const log = new FakeLog();
    const q = coldEngine(log);
    // m1..m4 in memory, m5..m10 cold; even ones of priority 1.
    for (let i = 0; i < 10; i++) q.enqueue(log.publish({ priority: i % 2 }), 0, true);
    const page = (offset: number, limit: number) => {
      const reads = log.reads;
      const listed = q.list(offset, limit).map((m) => m.id);
      return { listed, reads: log.reads - reads };
    };
    assert.deepEqual(page(0, 3), { listed: ['m2', 'm4', 'm6'], reads: 1 });
    assert.deepEqual(page(3, 4), { listed: ['m8', 'm10', 'm1', 'm3'], reads: 1 });
    assert.deepEqual(page(8, 10), { listed: ['m7', 'm9'], reads: 1 });
    assert.deepEqual(page(6, 2), { listed: ['m3', 'm5'], reads: 1 });
    assert.deepEqual(page(1, 1), { listed: ['m4'], reads: 0 });
    assert.deepEqual([...q.values()].map((m) => m.id), log.records.size === 10
      ? ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9', 'm10'] : []);
    assert.deepEqual(q.allSeqs().sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(q.find(9)?.id, 'm9');
    assert.equal(q.coldCount, 6, 'listing left the cold ones cold');
  });

  it('purges and takes cold messages', () => {
    const log = new FakeLog();
    const q = coldEngine(log);
    for (let i = 0; i < 10; i++) q.enqueue(log.publish(), 0, true);
    assert.equal(q.take(8)?.id, 'm8');
    assert.equal(q.has(8), false);
    assert.equal(q.counts.ready, 9);
    assert.deepEqual(q.purge().seqs.sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 9, 10]);
    assert.deepEqual(q.counts, { ready: 0, delayed: 0, inFlight: 0, bytes: 0 });
    assert.equal(q.size, 0);
    assert.deepEqual(q.receive(0, 10, 1000), []);
  });

  it('puts a failed purge back cold past a full window, as its records allow', () => {
    const log = new FakeLog();
    const q = coldEngine(log, {}, 2);
    q.enqueue(log.publish(), 0, true);
    q.enqueue(log.publish(), 0, true);
    assert.equal(q.coldCount, 0, 'the window of two holds both');

    const purged = q.purge();
    q.enqueue(log.publish(), 0, true);
    q.enqueue(log.publish(), 0, true);
    q.restorePurged(purged, 0);
    // The window is full with the newcomers: the two put back wait on
    // disk, not in memory past the window for good.
    assert.equal(q.coldCount, 2);
    assert.deepEqual(ids(q.receive(0, 4, 1000)), ['m1', 'm2', 'm3', 'm4']);
  });

  for (const fifo of [false, true]) {
    const kind = fifo ? 'FIFO' : 'best-effort';
    it(`restores a failed purge in place among newcomers (${kind})`, () => {
      // The same queue, purged and restored before the newcomers came or
      // not at all: it must count and deliver alike.
      const run = (purgeFails: boolean) => {
        const log = new FakeLog();
        const backoff = { ...DEFAULT_SETTINGS.backoff, initialMs: 0 };
        const q = coldEngine(log, { fifo, backoff }, 2);
        const publish = (i: number, fields: Partial<Message>) =>
          log.publish({ group: fifo ? `g${i % 2}` : null, ...fields });
        for (let i = 0; i < 8; i++) q.enqueue(publish(i, { priority: i % 3 }), 0, true);
        q.enqueue(publish(0, { availableAt: 50 }), 0, true);
        const [retried, leased] = q.receive(0, 2, 1000);
        q.nack(retried.receipt, 0, { requeue: true, delayMs: 20 });
        q.takeOutcomes();
        const cold = q.coldCount;

        const purged = purgeFails ? q.purge() : undefined;
        for (let i = 8; i < 10; i++) q.enqueue(publish(i, { priority: 1 }), 10, true);
        if (purged !== undefined) q.restorePurged(purged, 10);
        const counts = { ...q.counts };

        assert.ok(q.ack(leased.receipt), 'the lease was left alone');
        q.tick(100);
        const order: string[] = [];
        for (let got = q.receive(100, 1, 1000); got.length > 0; got = q.receive(100, 1, 1000)) {
          order.push(got[0].message.id);
          q.ack(got[0].receipt);
        }
        assert.equal(q.size, 0);
        return { cold, purged: purged?.seqs.length, counts, order };
      };

      const kept = run(false);
      const restored = run(true);
      assert.ok(kept.cold > 0);
      assert.equal(restored.purged, 8);
      assert.deepEqual(restored.counts, kept.counts);
      assert.deepEqual(restored.order, kept.order);
      assert.equal(kept.order.length, 10);
    });
  }

  it('drops the oldest, cold or hot, past maxLength', () => {
    const log = new FakeLog();
    const q = coldEngine(log, { maxLength: 5, overflow: 'drop-oldest' }, 2);
    for (let i = 0; i < 12; i++) {
      const admitted = q.admit([{ priority: 0, bytes: 6 }], true);
      assert.deepEqual(admitted, [null]);
      q.enqueue(log.publish(), 0, true);
      q.settleReservation(1, 6);
    }
    const dropped = q.takeOutcomes().map((o: Outcome) => o.message.id);
    assert.deepEqual(dropped, ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
    assert.deepEqual(ids(q.receive(0, 10, 1000)), ['m8', 'm9', 'm10', 'm11', 'm12']);
  });

  it('refuses past maxBytes counting cold bodies', () => {
    const log = new FakeLog();
    const q = coldEngine(log, { maxBytes: 30 }, 1);
    for (let i = 0; i < 5; i++) q.enqueue(log.publish(), 0, true);
    assert.equal(q.counts.bytes, 30);
    assert.deepEqual(q.admit([{ priority: 0, bytes: 1 }], true), ['max-bytes']);
  });

  it('expires a cold message when it is paged in', () => {
    const log = new FakeLog();
    const q = coldEngine(log, {}, 1);
    q.enqueue(log.publish(), 0, true);
    q.enqueue(log.publish({ expiresAt: 100 }), 0, true);
    q.enqueue(log.publish(), 0, true);
    assert.equal(q.nextWakeAt(), null, 'no timer for a cold message');
    assert.deepEqual(ids(q.receive(200, 10, 1000)), ['m1', 'm3']);
    const outcomes = q.takeOutcomes();
    assert.deepEqual(outcomes.map((o) => [o.kind, o.message.id]), [['dead', 'm2']]);
  });

  it('skips and counts a cold message that cannot be read back', () => {
    const log = new FakeLog();
    const q = coldEngine(log, {}, 1);
    for (let i = 0; i < 3; i++) q.enqueue(log.publish(), 0, true);
    log.unreadable.add(2);
    assert.deepEqual(ids(q.receive(0, 10, 1000)), ['m1', 'm3']);
    assert.equal(q.unreadable, 1);
    assert.deepEqual(q.counts, { ready: 0, delayed: 0, inFlight: 2, bytes: 12 });
  });

  it('takes every cold message in when a setting rules the cold backlog out', () => {
    const log = new FakeLog();
    const q = coldEngine(log, {}, 2);
    for (let i = 0; i < 6; i++) q.enqueue(log.publish({ priority: i % 3 }), 0, true);
    assert.equal(q.coldCount, 4);
    q.settings = { ...q.settings, maxLength: 100, overflow: 'reject-lowest-priority' };
    assert.equal(q.coldCount, 0);
    assert.equal(q.counts.ready, 6);
    assert.deepEqual(ids(q.receive(0, 10, 1000)), ['m3', 'm6', 'm2', 'm5', 'm1', 'm4']);
  });

  it('keeps memory queues wholly in memory, and FIFO ones cold past the window', () => {
    for (const [settings, cold] of [[{ fifo: true }, 4], [{ durability: 'memory' as const }, 0]] as const) {
      const log = new FakeLog();
      const q = coldEngine(log, settings, 1);
      for (let i = 0; i < 5; i++) q.enqueue(log.publish(), 0, true);
      assert.equal(q.coldCount, cold);
      assert.deepEqual(ids(q.receive(0, 10, 1000)), ['m1', 'm2', 'm3', 'm4', 'm5']);
    }
  });

  it('takes a new publish cold from its record alone exactly when enqueue would', () => {
    // Delayed, FIFO, expiring and ordered queues alike: a publish the
    // window has no room for goes cold without a Message being made, and
    // the queue then behaves as if it had been enqueued whole.
    const kinds: Partial<QueueSettings>[] = [
      {}, { fifo: true }, { maxLength: 100, overflow: 'reject-lowest-priority' },
      { maxLength: 3, overflow: 'drop-oldest' }, { durability: 'memory' },
    ];
    for (const settings of kinds) {
      const whole = new FakeLog();
      const fromRecord = new FakeLog();
      const a = coldEngine(whole, settings, 2);
      const b = coldEngine(fromRecord, settings, 2);
      for (let i = 0; i < 8; i++) {
        const fields = { priority: i % 3, availableAt: i % 4 === 3 ? 50 : 0, group: `g${i % 2}` };
        a.enqueue(whole.publish(fields), 0, true);
        const message = fromRecord.publish(fields);
        const { state: _state, lease: _lease, ...record } = message;
        if (!b.enqueueColdPublish(record, 0)) b.enqueue(message, 0, true);
      }
      const label = JSON.stringify(settings);
      assert.equal(b.coldCount, a.coldCount, label);
      assert.deepEqual(b.counts, a.counts, label);
      assert.deepEqual(ids(b.receive(100, 20, 1000)), ids(a.receive(100, 20, 1000)), label);
      const died = (q: QueueEngine) => q.takeOutcomes().map((o) => o.message.id);
      assert.deepEqual(died(b), died(a), label);
    }
  });

  it('keeps a publish in memory, changing nothing, while the window has room', () => {
    const log = new FakeLog();
    const q = coldEngine(log, {}, 2);
    const { state: _state, lease: _lease, ...record } = log.publish();
    assert.equal(q.enqueueColdPublish(record, 0), false);
    assert.deepEqual(q.counts, { ready: 0, delayed: 0, inFlight: 0, bytes: 0 });
    assert.equal(q.coldCount, 0);
  });
});
