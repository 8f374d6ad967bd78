// The broker's budget for waiting messages in memory (hot-memory.ts):
// past its own window a durable queue keeps new messages in memory while
// the budget, shared by every queue, has room, and on disk once it is
// spent; a queue deleted gives back what its messages were charged.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { HOT_HEADER_BYTES, HotMemory, hotCharge } from '../../src/engine/hot-memory.js';
import { QueueEngine } from '../../src/engine/queue.js';
import { DEFAULT_SETTINGS, type Message } from '../../src/engine/types.js';

const BODY = Buffer.from('sixteen bytes ..');
const CHARGE = hotCharge({ body: BODY, headers: {} });
const records = new Map<number, Message>();
let nextSeq = 0;

function message(headers: Record<string, string> = {}): Message {
  const seq = ++nextSeq;
  const fields: Message = {
    seq, id: `m${seq}`, priority: 0, group: null, headers, body: BODY,
    publishedAt: 0, availableAt: 0, expiresAt: null, failures: 0, state: 'ready', lease: null,
  };
  records.set(seq, { ...fields });
  return fields;
}

const pageIn = (seqs: number[]) => seqs.map((seq) => {
  const record = records.get(seq);
  return record === undefined ? undefined : { ...record };
});

function engine(name: string, hotMemory: HotMemory, memory = false): QueueEngine {
  const durability = memory ? 'memory' : 'fsync';
  return new QueueEngine(name, { ...DEFAULT_SETTINGS, durability }, {
    pageIn, hotReadyLimit: 2, hotMemory,
  });
}

function publish(queue: QueueEngine, count: number, headers?: Record<string, string>): void {
  for (let i = 0; i < count; i++) queue.enqueue(message(headers), 0, true);
}

describe('the broker-wide budget for messages in memory', () => {
  it('keeps messages past a queue\'s window in memory until the budget is spent', () => {
    const hot = new HotMemory(10 * CHARGE);
    const q = engine('q', hot);
    publish(q, 10);
    // Past its own window of 2, held by the budget of 10.
    assert.equal(q.coldCount, 0);
    assert.equal(hot.used, 10 * CHARGE);
    publish(q, 5);
    assert.equal(q.coldCount, 5);
    assert.equal(hot.used, 10 * CHARGE);
  });

  it('keeps messages past a queue\'s window of bytes in memory until the budget is spent', () => {
    const hot = new HotMemory(10 * CHARGE);
    const q = new QueueEngine('q', { ...DEFAULT_SETTINGS, durability: 'fsync' }, {
      pageIn, hotReadyLimit: 1000, hotWaitingBytes: 2 * BODY.length, hotMemory: hot,
    });
    publish(q, 10);
    // Past its own window of two bodies' bytes, held by the budget.
    assert.equal(q.coldCount, 0);
    publish(q, 5);
    assert.equal(q.coldCount, 5);
    assert.equal(hot.used, 10 * CHARGE);
  });

  it('charges headers by their length: large ones spend it sooner', () => {
    const hot = new HotMemory(10 * CHARGE);
    const q = engine('q', hot);
    const large = { 'x-note': 'n'.repeat(3 * CHARGE) };
    publish(q, 4, large);
    // Two for its own window, one more while the budget had room.
    assert.equal(q.coldCount, 1);
    assert.equal(hot.used, 3 * hotCharge({ body: BODY, headers: large }));
  });

  it('stays a number when a header is not text', () => {
    const hot = new HotMemory(10 * CHARGE);
    const q = engine('q', hot);
    publish(q, 3, { odd: 5 as unknown as string });
    assert.equal(hot.used, 3 * (CHARGE + HOT_HEADER_BYTES + 'odd'.length));
    publish(q, 20);
    assert.ok(q.coldCount > 0);
  });

  it('is shared: one queue\'s backlog leaves another only its own window', () => {
    const hot = new HotMemory(10 * CHARGE);
    const busy = engine('busy', hot);
    const other = engine('other', hot);
    publish(busy, 10);
    publish(other, 6);
    assert.equal(busy.coldCount, 0);
    // Its own window still.
    assert.equal(other.coldCount, 4);
  });

  it('counts memory queues, which keep everything in memory, against it', () => {
    const hot = new HotMemory(10 * CHARGE);
    publish(engine('memory', hot, true), 10);
    const q = engine('q', hot);
    publish(q, 6);
    assert.equal(q.coldCount, 4);
  });

  it('is given back as messages are delivered and when a queue is deleted', () => {
    const hot = new HotMemory(10 * CHARGE);
    const gone = engine('gone', hot);
    publish(gone, 10);
    const delivered = gone.receive(0, 3, 30_000);
    assert.equal(delivered.length, 3);
    assert.equal(hot.used, 7 * CHARGE);

    gone.releaseHotMemory();
    assert.equal(hot.used, 0);
    // Acks and nacks after the delete charge nothing.
    gone.nack(delivered[0].receipt, 0, { requeue: true, delayMs: 0 });
    assert.equal(hot.used, 0);

    const q = engine('q', hot);
    publish(q, 10);
    assert.equal(q.coldCount, 0);
  });
});
