// Batches in flight at once (write-loop.ts, batch-io.ts): an append
// that arrives while a batch waits for its fdatasync is written and synced
// at once, yet appends still resolve in call order, and a failure of the
// earlier batch costs the later one nothing but a second write.

import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';
import { StoreUnavailableError } from '../../src/errors.js';
import { frameBytes } from '../../src/storage/codec.js';
import type { LogRecord } from '../../src/storage/records.js';
import { DEFAULT_SYNCS_IN_FLIGHT } from '../../src/storage/in-flight.js';
import { type StoreIo, nodeIo } from '../../src/storage/io.js';
import { EARLY_START_BYTES, UNANSWERED_WAIT_MS } from '../../src/storage/log-store.js';
import { segmentPath } from '../../src/storage/segment-file.js';
import {
  eventually, fullBatchTicket, openStore, replayOf, settledYet, ticket, withTempDir,
} from './helpers.js';

interface HeldSync {
  fd: number;
  /** Lets the sync run (or fail with `code`). */
  release(code?: string): void;
}

/** nodeIo whose fdatasyncs wait, once `hold()` is called, until released one by one. */
class GatedIo implements StoreIo {
  readonly held: HeldSync[] = [];
  readonly writes: number[] = [];
  #holding = false;
  #onHeld: (() => void) | undefined;

  hold(): void {
    this.#holding = true;
  }

  /** Resolves once `count` syncs are waiting. */
  async syncsHeld(count: number): Promise<void> {
    while (this.held.length < count) {
      await new Promise<void>((resolve) => (this.#onHeld = resolve));
    }
  }

  #heldTruncate: (() => void) | undefined;
  #holdingTruncate = false;
  #onTruncateHeld: (() => void) | undefined;

  /** From now on ftruncate waits for releaseTruncate(). */
  holdTruncate(): void {
    this.#holdingTruncate = true;
  }

  /** Resolves once an ftruncate is waiting. */
  async truncateHeld(): Promise<void> {
    while (this.#heldTruncate === undefined) {
      await new Promise<void>((resolve) => (this.#onTruncateHeld = resolve));
    }
  }

  releaseTruncate(): void {
    this.#holdingTruncate = false;
    this.#heldTruncate?.();
  }

  /** Stops holding syncs and lets every held one run. */
  letGo(): void {
    this.#holding = false;
    for (const sync of this.held) sync.release();
  }

  open = nodeIo.open;
  unlink = nodeIo.unlink;
  rename = nodeIo.rename;
  fsyncDir = nodeIo.fsyncDir;
  close = nodeIo.close;

  async ftruncate(fd: number, length: number): Promise<void> {
    if (this.#holdingTruncate) {
      await new Promise<void>((resolve) => {
        this.#heldTruncate = resolve;
        this.#onTruncateHeld?.();
      });
    }
    return nodeIo.ftruncate(fd, length);
  }

  writev(fd: number, buffers: readonly Buffer[], position: number): Promise<number> {
    this.writes.push(position);
    return nodeIo.writev(fd, buffers, position);
  }

  async fdatasync(fd: number): Promise<void> {
    if (this.#holding) {
      const code = await new Promise<string | undefined>((resolve) => {
        this.held.push({ fd, release: resolve });
        this.#onHeld?.();
      });
      if (code !== undefined) {
        throw Object.assign(new Error(`${code}: fdatasync`), { code });
      }
    }
    return nodeIo.fdatasync(fd);
  }
}

test('an append made during a batch\'s sync is written and synced before it lands', () => {
  return withTempDir(async (dir) => {
    const io = new GatedIo();
    const { store } = await openStore(dir, { io, syncsInFlight: 2 });
    io.hold();

    const first = store.append([ticket(1)]);
    await io.syncsHeld(1);
    const second = store.append([ticket(2)]);
    // Serially, the second batch would not be written before the first
    // landed; in flight together, its sync starts while the first waits.
    await io.syncsHeld(2);
    assert.equal(io.writes.length, 3, 'segment header, batch 1, batch 2');
    assert.notEqual(io.held[0].fd, io.held[1].fd, 'two descriptors, one per sync');

    // The second batch's sync ends first, but it lands second.
    io.held[1].release();
    assert.equal(await settledYet(second), false);
    const order: number[] = [];
    const landed = [first.then(() => order.push(1)), second.then(() => order.push(2))];
    io.held[0].release();
    await Promise.all(landed);
    assert.deepEqual(order, [1, 2]);
    assert.equal(store.stats().batches, 2);
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), ticket(2)]);
  });
});

test('no third batch starts while two are in flight', () => {
  return withTempDir(async (dir) => {
    const io = new GatedIo();
    const { store } = await openStore(dir, { io, syncsInFlight: 2 });
    io.hold();

    const first = store.append([ticket(1)]);
    await io.syncsHeld(1);
    const second = store.append([ticket(2)]);
    await io.syncsHeld(2);
    const third = store.append([ticket(3)]);
    const fourth = store.append([ticket(4)]);
    await nextTurn();
    await nextTurn();
    assert.equal(io.writes.length, 3, 'the third batch waits for room');

    io.held[0].release();
    await first;
    // Room for one: the third and fourth appends went out as one batch.
    await io.syncsHeld(3);
    assert.equal(io.writes.length, 4);
    io.held[1].release();
    io.held[2].release();
    await Promise.all([second, third, fourth]);
    assert.equal(store.stats().batches, 3);
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), ticket(2), ticket(3), ticket(4)]);
  });
});

test('by default four full batches sync at once, each through its own descriptor, and a fifth waits', () => {
  return withTempDir(async (dir) => {
    const io = new GatedIo();
    const { store } = await openStore(dir, { io });
    assert.equal(DEFAULT_SYNCS_IN_FLIGHT, 4);
    io.hold();

    const appends: Promise<void>[] = [];
    for (let i = 1; i <= 4; i++) {
      appends.push(store.append([fullBatchTicket(i)]));
      await io.syncsHeld(i);
    }
    assert.equal(new Set(io.held.map((sync) => sync.fd)).size, 4, 'four descriptors');
    const fifth = store.append([fullBatchTicket(5)]);
    await nextTurn();
    await nextTurn();
    assert.equal(io.writes.length, 5, 'the fifth batch waits for room');

    io.held[2].release();
    assert.equal(await settledYet(appends[2]), false, 'the third lands after the first two');
    io.held[0].release();
    await appends[0];
    await io.syncsHeld(5);
    assert.equal(io.held[4].fd, io.held[0].fd, 'the descriptor the first one freed');
    io.letGo();
    await Promise.all([...appends, fifth]);
    assert.equal(store.stats().batches, 5);
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [1, 2, 3, 4, 5].map((i) => fullBatchTicket(i)));
  });
});

test('by default a small batch waits while two sync; one that fills up meanwhile takes a third slot', () => {
  return withTempDir(async (dir) => {
    const io = new GatedIo();
    const { store } = await openStore(dir, { io });
    io.hold();

    const first = store.append([ticket(1)]);
    await io.syncsHeld(1);
    const second = store.append([ticket(2)]);
    await io.syncsHeld(2);
    const third = store.append([ticket(3)]);
    await nextTurn();
    await nextTurn();
    assert.equal(io.writes.length, 3, 'header, batches 1 and 2; the third gathers');

    // The gathering batch fills up: it goes at once, beside the two.
    const filling = store.append([fullBatchTicket(4)]);
    await io.syncsHeld(3);
    assert.equal(io.writes.length, 4);
    io.letGo();
    await Promise.all([first, second, third, filling]);
    assert.equal(store.stats().batches, 3);
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), ticket(2), ticket(3), fullBatchTicket(4)]);
  });
});

test('an ack batch (no sync, nobody waiting) waits while a synced one is in flight, and rides with the next', () => {
  return withTempDir(async (dir) => {
    const io = new GatedIo();
    const { store } = await openStore(dir, { io, syncsInFlight: 2 });
    io.hold();

    const first = store.append([ticket(1)]);
    await io.syncsHeld(1);
    // An AMQP ack: nobody waits for it, so it gathers on rather than
    // cost a write of its own.
    const ack = store.append([{ type: 'settled', seqs: [1] }], { sync: false, unanswered: true });
    await nextTurn();
    await nextTurn();
    assert.equal(io.writes.length, 2, 'header and batch 1; the ack waits');
    // A publish joins it, and the two start at once in the free sync slot.
    const second = store.append([ticket(2)]);
    await io.syncsHeld(2);
    assert.equal(io.writes.length, 3);
    assert.notEqual(io.held[0].fd, io.held[1].fd, 'two descriptors, one per sync');
    io.held[0].release();
    await first;
    assert.equal(await settledYet(ack), false, 'the ack lands with the second batch');
    io.held[1].release();
    await Promise.all([second, ack]);

    // With nothing else coming, it goes alone once the synced one landed.
    const third = store.append([ticket(3)]);
    await io.syncsHeld(3);
    const lastAck = store.append([{ type: 'settled', seqs: [2] }], { sync: false, unanswered: true });
    assert.equal(await settledYet(lastAck), false);
    assert.equal(io.writes.length, 4);
    io.held[2].release();
    await Promise.all([third, lastAck]);
    assert.equal(io.writes.length, 5);
    assert.equal(store.stats().syncs, 3);
    io.letGo(); // the close syncs the last ack
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [
      ticket(1), { type: 'settled', seqs: [1] }, ticket(2), ticket(3), { type: 'settled', seqs: [2] },
    ]);
  });
});

test('an ack batch waits a few ms for a publish to ride with, then goes alone', () => {
  return withTempDir(async (dir) => {
    const { store } = await openStore(dir);
    const ack: LogRecord = { type: 'settled', seqs: [1] };
    await store.append([ticket(1)]);

    // Nothing in flight: a write of its own would be free to start at
    // once, but the publish a turn later takes it along.
    const acked = store.append([ack], { sync: false, unanswered: true });
    await nextTurn();
    await nextTurn();
    await Promise.all([acked, store.append([ticket(2)])]);
    assert.deepEqual([store.stats().batches, store.stats().syncs], [2, 2]);

    // With nothing coming, it is written alone after its wait.
    const began = performance.now();
    await store.append([{ type: 'settled', seqs: [2] }], { sync: false, unanswered: true });
    assert.ok(performance.now() - began >= UNANSWERED_WAIT_MS - 1);
    assert.deepEqual([store.stats().batches, store.stats().syncs], [3, 2]);
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), ack, ticket(2), { type: 'settled', seqs: [2] }]);
  });
});

test('an os-mode batch someone awaits is written at once behind a synced one', () => {
  return withTempDir(async (dir) => {
    const io = new GatedIo();
    const { store } = await openStore(dir, { io, syncsInFlight: 2 });
    io.hold();

    const first = store.append([ticket(1)]);
    await io.syncsHeld(1);
    const osMode = store.append([ticket(2)], { sync: false });
    assert.ok(await eventually(() => io.writes.length === 3), 'header, batch 1, batch 2');
    assert.equal(await settledYet(osMode), false, 'it lands behind the first');
    io.letGo();
    await Promise.all([first, osMode]);
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), ticket(2)]);
  });
});

test('a failed sync rejects its batch alone; the batch behind it is written again', () => {
  return withTempDir(async (dir) => {
    const io = new GatedIo();
    const { store, logger } = await openStore(dir, { io, syncsInFlight: 2 });
    await store.append([ticket(1)]);
    const path = segmentPath(dir, 1);
    const before = (await stat(path)).size;
    io.hold();

    // Caught at once: it fails while the test is still releasing syncs.
    const failing = store.append([ticket(2)]).then(() => undefined, (err: unknown) => err);
    await io.syncsHeld(1);
    const behind = store.append([ticket(3)]);
    await io.syncsHeld(2);
    // The later sync succeeds first, as it may on a real disk; it must
    // not make the failed batch count as durable, nor itself count
    // before it is written again past the cut-back.
    io.held[1].release();
    io.held[0].release('EIO');

    // The cut-back's two syncs (one per descriptor), then the rewrite's.
    for (let released = 2; released < 5; released++) {
      await io.syncsHeld(released + 1);
      io.held[released].release();
    }
    const err = await failing;
    assert.ok(err instanceof StoreUnavailableError, String(err));
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'EIO');
    assert.equal(logger.errors[0]?.obj.offset, before);
    await behind;
    assert.equal(io.writes.at(-1), before, 'batch 3 rewritten where batch 2 began');

    const stats = store.stats();
    assert.equal(stats.liveMessages, 2);
    assert.equal(stats.batches, 2);
    // Batch 3 first started beside batch 2, but what landed was its
    // rewrite, started alone: counted by what lands, as syncs are.
    assert.equal(stats.syncsOverlapped, 0);
    assert.equal((await stat(path)).size, stats.diskBytes);
    await store.close();

    const { replayed, store: reopened } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), ticket(3)]);
    assert.equal(reopened.stats().corruptTails, 0);
  });
});

test('a batch that fills up while a failed write is cut back waits for the cut-back', () => {
  return withTempDir(async (dir) => {
    const io = new GatedIo();
    const { store } = await openStore(dir, { io, syncsInFlight: 2 });
    await store.append([ticket(1)]);
    io.hold();
    io.holdTruncate();

    const failing = store.append([ticket(2)]).then(() => undefined, (err: unknown) => err);
    await io.syncsHeld(1);
    io.held[0].release('EIO');
    await io.truncateHeld();

    // Past EARLY_START_BYTES in one tick, while the file is being cut
    // back to where ticket 2 began: started now, it would be written
    // where the cut-back removes it.
    const writesBefore = io.writes.length;
    const filling: Promise<void>[] = [];
    for (let seq = 3, bytes = 0; bytes < EARLY_START_BYTES * 1.5; seq++) {
      const record = ticket(seq);
      bytes += frameBytes(record);
      filling.push(store.append([record]));
    }
    assert.equal(io.writes.length, writesBefore, 'nothing written during the cut-back');

    io.releaseTruncate();
    io.letGo();
    assert.ok((await failing) instanceof StoreUnavailableError);
    await Promise.all(filling);
    await store.close();

    const { replayed } = await replayOf(dir);
    const seqs = replayed.map((record) => record.type === 'published' && record.seq);
    assert.deepEqual(seqs, [1, ...filling.map((_, i) => i + 3)]);
  });
});
