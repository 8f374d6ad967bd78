import assert from 'node:assert/strict';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  MessageTooLargeError,
  StoreUnavailableError,
} from '../../src/errors.js';
import { MAX_RECORD_BYTES, encodeRecord, frameBytes } from '../../src/storage/codec.js';
import type { LogRecord } from '../../src/storage/records.js';
import { EARLY_START_BYTES } from '../../src/storage/log-store.js';
import { SEGMENT_HEADER_BYTES } from '../../src/storage/segment-file.js';
import { openStore, replayOf, ticket, withTempDir } from './helpers.js';

const declared: LogRecord = {
  type: 'queue-declared',
  name: 'tickets',
  settings: { maxAttempts: 5, deadLetter: 'tickets.dlq' },
};

test('appended records replay in order after reopening', () => {
  return withTempDir(async (dir) => {
    const { store, replayed } = await openStore(dir);
    assert.deepEqual(replayed, []);

    const records: LogRecord[] = [
      declared,
      ticket(store.allocateSeq()),
      ticket(store.allocateSeq()),
      { type: 'retried', seq: 1, failures: 1, availableAt: 99 },
      { type: 'settled', seqs: [2] },
    ];
    await store.append(records.slice(0, 3));
    await store.append(records.slice(3));

    const bytes = records.reduce((n, r) => n + encodeRecord(r).length, 0);
    const stats = store.stats();
    assert.equal(stats.bytesWritten, bytes);
    assert.equal(stats.liveMessages, 1);
    assert.equal(stats.liveBytes, encodeRecord(records[1]).length);
    assert.equal(stats.batches, 2);
    assert.equal(stats.syncs, 2);
    assert.equal(stats.segments, 1);
    assert.equal(stats.diskBytes, SEGMENT_HEADER_BYTES + bytes);
    await store.close();

    const again = await replayOf(dir);
    assert.deepEqual(again.replayed, records);
    assert.equal(again.store.stats().corruptTails, 0);
  });
});

test('seqs keep increasing across restarts, even once reclaimed', () => {
  return withTempDir(async (dir) => {
    const first = await openStore(dir);
    const seqs = [1, 2, 3].map(() => first.store.allocateSeq());
    assert.deepEqual(seqs, [1, 2, 3]);
    await first.store.append(seqs.map((seq) => ticket(seq)));
    await first.store.append([{ type: 'settled', seqs }]);
    await first.store.close();

    // Every record is dead, so the segment naming seqs 1-3 is deleted;
    // only the new segment's header still knows the highest seq.
    const second = await openStore(dir);
    assert.equal(second.store.stats().segments, 1);
    await second.store.close();

    const third = await openStore(dir);
    assert.deepEqual(await readdir(dir), ['00000000000000000003.log']);
    assert.equal(third.store.allocateSeq(), 4);
    await third.store.close();
  });
});

test('each open starts a new segment named by an increasing number', () => {
  return withTempDir(async (dir) => {
    for (let i = 0; i < 3; i++) {
      const { store } = await openStore(dir);
      await store.append([ticket(store.allocateSeq())]);
      await store.close();
    }
    const names = (await readdir(dir)).sort();
    assert.deepEqual(names, [
      '00000000000000000001.log',
      '00000000000000000002.log',
      '00000000000000000003.log',
    ]);
    const newest = await stat(join(dir, names[2]));
    const frame = encodeRecord(ticket(3)).length;
    assert.equal(newest.size, SEGMENT_HEADER_BYTES + frame);
  });
});

test('an append of no records resolves at once and writes nothing', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    const before = store.stats();
    const settled = await Promise.race([
      store.append([]).then(() => 'resolved'),
      new Promise((resolve) => setTimeout(resolve, 2000, 'still pending')),
    ]);
    assert.equal(settled, 'resolved');
    assert.equal(store.stats().batches, before.batches);
    await store.close();
  });
});

test('concurrent appends share batches and replay in call order', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    const clients = 50;
    const perClient = 100;
    const order: number[] = [];

    // Each client appends one record at a time, as a request handler would.
    async function client(): Promise<void> {
      for (let i = 0; i < perClient; i++) {
        const seq = store.allocateSeq();
        order.push(seq);
        await store.append([ticket(seq)]);
      }
    }
    const started = performance.now();
    await Promise.all(Array.from({ length: clients }, client));
    const elapsed = performance.now() - started;

    const appends = clients * perClient;
    const stats = store.stats();
    assert.equal(order.length, appends);
    assert.equal(stats.liveMessages, appends);
    assert.equal(stats.syncs, stats.batches);
    assert.ok(
      stats.syncs * 20 < appends,
      `${stats.syncs} syncs for ${appends} appends in ${elapsed} ms`,
    );
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(
      replayed.map((record) => record.type === 'published' && record.seq),
      order,
    );
  });
});

test('appends of one tick share one batch and one sync below EARLY_START_BYTES', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    const pending: Promise<void>[] = [];
    for (let bytes = 0; ;) {
      const record = ticket(store.allocateSeq());
      bytes += frameBytes(record);
      if (bytes >= EARLY_START_BYTES) break;
      pending.push(store.append([record]));
    }
    assert.equal(new Set(pending).size, 1, 'one shared promise');
    await Promise.all(pending);
    assert.equal(store.stats().syncs, 1);
    await store.close();
  });
});

test('a batch that reaches EARLY_START_BYTES starts within the tick; the rest gather behind it', () => {
  return withTempDir(async (dir) => {
    // Two sync slots, so that the third batch finds none free.
    const { store } = await openStore(dir, { syncsInFlight: 2 });
    const perBatch = Math.ceil(EARLY_START_BYTES / frameBytes(ticket(1)));
    const pending: Promise<void>[] = [];
    const order: number[] = [];
    for (let i = 0; i < perBatch * 3; i++) {
      const seq = store.allocateSeq();
      pending.push(store.append([ticket(seq)]).then(() => void order.push(seq)));
    }
    await Promise.all(pending);
    // Two start as they fill up; the third gathers while they are in
    // flight and goes when one lands.
    assert.equal(store.stats().batches, 3);
    assert.deepEqual(order, [...order].sort((a, b) => a - b), 'confirmed in append order');
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.equal(replayed.length, perBatch * 3);
  });
});

test('sync: false confirms without fdatasync and still replays', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir, { sync: false });
    await store.append([declared, ticket(store.allocateSeq())]);
    await store.append([ticket(store.allocateSeq())]);
    assert.equal(store.stats().syncs, 0);
    assert.equal(store.stats().batches, 2);
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [declared, ticket(1), ticket(2)]);
  });
});

test('a record over the size limit rejects only its own append', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    const huge = { ...ticket(2), body: Buffer.allocUnsafe(MAX_RECORD_BYTES) };
    const ok = store.append([ticket(1)]);
    const small = { ...ticket(3), body: Buffer.from('short') };
    await assert.rejects(store.append([small, huge]), MessageTooLargeError);
    // The refused call leaves no frame size behind in the batch it would
    // have joined: the next record there is found where it was written.
    const next = store.append([ticket(4)]);
    await ok;
    await next;
    assert.deepEqual(store.readPublished([1, 4]), [ticket(1), ticket(4)]);
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), ticket(4)]);
  });
});

test('close waits for gathered appends; later appends reject', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    let landed = false;
    const pending = store.append([ticket(1)]).then(() => (landed = true));
    await store.close();
    assert.equal(landed, true);
    await pending;
    await store.close();
    await assert.rejects(store.append([ticket(2)]), (err: unknown) => {
      assert.ok(err instanceof StoreUnavailableError);
      assert.equal(err.code, 'STORE_UNAVAILABLE');
      assert.match(err.message, /closed/);
      return true;
    });
  });
});

test('readPublished reads live messages back by position, after copies and a restart', () => {
  return withTempDir(async (dir) => {
    const current = new Map<number, LogRecord>();
    const first = await openStore(dir, {
      segmentBytes: 4096,
      snapshotMessage: (seq) => current.get(seq) as ReturnType<typeof ticket> | undefined,
    });
    await first.store.append([declared]);
    const kept = ticket(first.store.allocateSeq());
    current.set(kept.seq, kept);
    await first.store.append([kept]);

    // Enough churn to roll segments and copy `kept` forward.
    let last = ticket(0);
    for (let i = 0; i < 200; i++) {
      last = ticket(first.store.allocateSeq());
      await first.store.append([last]);
      await first.store.append([{ type: 'settled', seqs: [last.seq] }]);
    }
    const live = [ticket(first.store.allocateSeq()), ticket(first.store.allocateSeq())];
    await first.store.append(live);
    assert.ok(first.store.stats().compactedMessages >= 1);

    const seqs = [live[1].seq, kept.seq, last.seq, live[0].seq, 999_999];
    const read = first.store.readPublished(seqs);
    assert.deepEqual(read, [live[1], kept, undefined, live[0], undefined]);
    await first.store.close();

    const again = await openStore(dir);
    assert.deepEqual(again.store.readPublished([kept.seq, live[0].seq]), [kept, live[0]]);
    await again.store.close();
  });
});

test('readPublished gives undefined and logs for a frame damaged after open', () => {
  return withTempDir(async (dir) => {
    const { store, logger } = await openStore(dir);
    const records = [ticket(store.allocateSeq()), ticket(store.allocateSeq())];
    await store.append([declared, ...records]);

    // Flip one bit in the first message's body, behind the store's back.
    const [file] = (await readdir(dir)).filter((name) => name.endsWith('.log'));
    const path = join(dir, file);
    const bytes = await readFile(path);
    const at = bytes.indexOf(records[0].body) + 10;
    bytes[at] ^= 0x04;
    await writeFile(path, bytes);

    const read = store.readPublished([records[0].seq, records[1].seq]);
    assert.deepEqual(read, [undefined, records[1]]);
    assert.equal(logger.errors.length, 1);
    assert.match(String((logger.errors[0].obj.err as Error).message), /checksum/);
    await store.close();
  });
});

test('readPublished reads large and small bodies mixed, with gaps, large ones into buffers of their own', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    await store.append([declared]);
    const sizes = [16, 20_000, 4096, 4095, 16_384, 16, 70_000, 300, 16_384];
    const records = sizes.map((size, i) => {
      const record = ticket(store.allocateSeq());
      return { ...record, body: Buffer.alloc(size, 97 + i) };
    });
    // Settled records between the messages: gaps inside one span.
    for (const record of records) {
      await store.append([record, { type: 'settled', seqs: [999_000 + record.seq] }]);
    }

    // Asked out of order, with one that is not there.
    const seqs = [...records.map((r) => r.seq).reverse(), 999_999];
    const read = store.readPublished(seqs);
    assert.deepEqual(read, [...[...records].reverse(), undefined]);
    // One of them twice: read the plain way, same answer.
    assert.deepEqual(store.readPublished([records[1].seq, records[2].seq, records[1].seq]),
      [records[1], records[2], records[1]]);
    for (const record of read.filter((r) => r !== undefined)) {
      if (record.body.length >= 4096) {
        // A view into its own frame, not into a span of other messages.
        assert.ok(record.body.buffer.byteLength < record.body.length + 512,
          `a ${record.body.length} B body holds ${record.body.buffer.byteLength} B`);
      }
    }
    await store.close();
  });
});

test('records of every size, across a batch\'s 64 KiB buffers, replay intact and readable', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    // Sizes around a batch buffer (64 KiB) and beyond it, in one append
    // and across appends joining the same batch.
    const sizes = [0, 100, 60_000, 65_000, 65_536, 70_000, 200_000, 1_000_000, 10];
    const records = sizes.map((size, i) => {
      const record = ticket(store.allocateSeq());
      record.body = Buffer.alloc(size, 0x41 + i);
      return record;
    });
    await Promise.all([
      store.append(records.slice(0, 5)),
      store.append(records.slice(5, 6)),
      store.append(records.slice(6)),
    ]);
    const bytes = records.reduce((n, r) => n + encodeRecord(r).length, 0);
    assert.equal(store.stats().bytesWritten, bytes);
    const readBack = store.readPublished(records.map((r) => r.seq));
    assert.deepEqual(readBack.map((r) => r?.body), records.map((r) => r.body));
    await store.close();

    const again = await replayOf(dir);
    assert.deepEqual(again.replayed, records);
    assert.equal(again.store.stats().corruptTails, 0);
  });
});
