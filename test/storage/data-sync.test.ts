// Synced batches written and synced in one call, through descriptors
// opened with StoreIo.openDataSync (write-loop.ts, batch-io.ts): one trip
// to the thread pool a batch instead of a write and then an fdatasync.
// Such a write covers its own bytes only, so a batch behind a write
// without a sync still fdatasyncs; several are in flight at once, each
// through a descriptor of its own; and a failed one is cut back with the batches
// written past it, which are written again.

import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';
import { StoreUnavailableError } from '../../src/errors.js';
import { DEFAULT_SYNCS_IN_FLIGHT } from '../../src/storage/in-flight.js';
import { type StoreIo, nodeIo } from '../../src/storage/io.js';
import { segmentPath } from '../../src/storage/segment-file.js';
import {
  eventually, fullBatchTicket, openStore, replayOf, settledYet, ticket, withTempDir,
} from './helpers.js';
import { PowerCutIo } from './power-cut.js';

interface HeldWrite {
  fd: number;
  position: number;
  /** Lets the write return (or fail with `code`, its bytes written). */
  release(code?: string): void;
}

/**
 * nodeIo with data-sync descriptors, counting calls; once `hold()` is
 * called, a write through a data-sync descriptor writes its bytes, then
 * waits to be released, as if its sync were under way.
 */
class DataSyncIo implements StoreIo {
  readonly held: HeldWrite[] = [];
  /** Positions of every write, in the order they were made. */
  readonly writes: number[] = [];
  readonly dataSyncFds = new Set<number>();
  fdatasyncs = 0;
  #holding = false;
  #onHeld: (() => void) | undefined;

  hold(): void {
    this.#holding = true;
  }

  /** Resolves once `count` writes have been held. */
  async writesHeld(count: number): Promise<void> {
    while (this.held.length < count) {
      await new Promise<void>((resolve) => (this.#onHeld = resolve));
    }
  }

  open = nodeIo.open;
  ftruncate = nodeIo.ftruncate;
  unlink = nodeIo.unlink;
  rename = nodeIo.rename;
  fsyncDir = nodeIo.fsyncDir;

  async openDataSync(path: string): Promise<number> {
    const fd = await nodeIo.openDataSync!(path);
    this.dataSyncFds.add(fd);
    return fd;
  }

  close(fd: number): Promise<void> {
    this.dataSyncFds.delete(fd);
    return nodeIo.close(fd);
  }

  async writev(fd: number, buffers: readonly Buffer[], position: number): Promise<number> {
    this.writes.push(position);
    const written = await nodeIo.writev(fd, buffers, position);
    if (this.#holding && this.dataSyncFds.has(fd)) {
      const code = await new Promise<string | undefined>((resolve) => {
        this.held.push({ fd, position, release: resolve });
        this.#onHeld?.();
      });
      if (code !== undefined) {
        throw Object.assign(new Error(`${code}: write`), { code });
      }
    }
    return written;
  }

  fdatasync(fd: number): Promise<void> {
    this.fdatasyncs++;
    return nodeIo.fdatasync(fd);
  }
}

test('a synced batch is written and synced in one call, without an fdatasync', () => {
  return withTempDir(async (dir) => {
    const io = new DataSyncIo();
    const { store } = await openStore(dir, { io, syncsInFlight: 2 });
    const syncsAtOpen = io.fdatasyncs;
    const writesAtOpen = io.writes.length;

    for (let seq = 1; seq <= 3; seq++) await store.append([ticket(seq)]);
    assert.equal(io.fdatasyncs, syncsAtOpen, 'no fdatasync');
    assert.equal(io.writes.length, writesAtOpen + 3, 'one write a batch');
    assert.equal(store.stats().syncs, 3);
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), ticket(2), ticket(3)]);
  });
});

test('a synced batch behind a write without a sync fdatasyncs the whole file', () => {
  return withTempDir(async (dir) => {
    const io = new DataSyncIo();
    const { store } = await openStore(dir, { io, syncsInFlight: 2 });
    const syncsAtOpen = io.fdatasyncs;

    await store.append([ticket(1)], { sync: false });
    await store.append([ticket(2)]);
    assert.equal(io.fdatasyncs, syncsAtOpen + 1, 'the os-mode batch is synced by the next');
    await store.append([ticket(3)]);
    assert.equal(io.fdatasyncs, syncsAtOpen + 1, 'after which one call does again');
    await store.close();
  });
});

test('an os-mode append confirmed before a synced one survives a power cut', () => {
  return withTempDir(async (dir) => {
    const io = new PowerCutIo({ dataSync: true });
    const { store } = await openStore(dir, { io, syncsInFlight: 2 });
    await store.append([ticket(1)], { sync: false });
    await store.append([ticket(2)]);
    io.cut();
    await io.settled();

    await withTempDir(async (image) => {
      await io.image(dir, image, 'drop', () => 0);
      const { replayed } = await replayOf(image);
      assert.deepEqual(replayed, [ticket(1), ticket(2)]);
    });
  });
});

test('two batches written and synced in one call each are in flight at once', () => {
  return withTempDir(async (dir) => {
    const io = new DataSyncIo();
    const { store } = await openStore(dir, { io, syncsInFlight: 2 });
    io.hold();

    const first = store.append([ticket(1)]);
    await io.writesHeld(1);
    // Its write has not returned, yet the next batch's starts at once.
    const second = store.append([ticket(2)]);
    await io.writesHeld(2);
    assert.notEqual(io.held[0].fd, io.held[1].fd, 'two descriptors, one per sync');
    const third = store.append([ticket(3)]);
    await nextTurn();
    await nextTurn();
    assert.equal(io.held.length, 2, 'no third sync while two are in flight');

    // The second ends first, but lands second.
    io.held[1].release();
    assert.equal(await settledYet(second), false);
    const order: number[] = [];
    const landed = [first.then(() => order.push(1)), second.then(() => order.push(2))];
    io.held[0].release();
    await Promise.all(landed);
    assert.deepEqual(order, [1, 2]);
    await io.writesHeld(3);
    assert.notEqual(io.held[2].fd, io.held[1].fd, 'the free descriptor');
    io.held[2].release();
    await third;
    assert.equal(io.fdatasyncs, 1, 'only the segment header\'s');
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), ticket(2), ticket(3)]);
  });
});

test('by default four full data-sync writes are in flight at once, each through its own descriptor', () => {
  return withTempDir(async (dir) => {
    const io = new DataSyncIo();
    const { store } = await openStore(dir, { io });
    assert.equal(DEFAULT_SYNCS_IN_FLIGHT, 4);
    io.hold();

    const appends: Promise<void>[] = [];
    for (let i = 1; i <= 4; i++) {
      appends.push(store.append([fullBatchTicket(i)]));
      await io.writesHeld(i);
    }
    assert.equal(new Set(io.held.map((write) => write.fd)).size, 4, 'four descriptors');
    const fifth = store.append([fullBatchTicket(5)]);
    await nextTurn();
    await nextTurn();
    assert.equal(io.held.length, 4, 'no fifth while four are in flight');

    // They end last first, and land in order all the same.
    const order: number[] = [];
    appends.forEach((append, i) => void append.then(() => order.push(i + 1)));
    for (let i = 3; i >= 1; i--) io.held[i].release();
    assert.equal(await settledYet(appends[3]), false, 'the fourth waits for the first');
    io.held[0].release();
    await Promise.all(appends);
    assert.deepEqual(order, [1, 2, 3, 4]);
    await io.writesHeld(5);
    assert.equal(io.held[4].fd, io.held[0].fd, 'the first descriptor freed');
    io.held[4].release();
    await fifth;
    assert.equal(io.fdatasyncs, 1, 'only the segment header\'s');
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [1, 2, 3, 4, 5].map((i) => fullBatchTicket(i)));
  });
});

test('a failed data-sync write among four full ones in flight: the one before it lands, it fails, the two past it are written again', () => {
  return withTempDir(async (dir) => {
    const io = new DataSyncIo();
    const { store } = await openStore(dir, { io });
    await store.append([ticket(1)]);
    const path = segmentPath(dir, 1);
    io.hold();

    const first = store.append([fullBatchTicket(2)]);
    await io.writesHeld(1);
    const failing = store.append([fullBatchTicket(3)]).then(() => undefined, (err: unknown) => err);
    await io.writesHeld(2);
    const failedAt = io.held[1].position;
    const behind = [store.append([fullBatchTicket(4)])];
    await io.writesHeld(3);
    behind.push(store.append([fullBatchTicket(5)]));
    await io.writesHeld(4);
    io.held[3].release();
    io.held[2].release();
    io.held[1].release('EIO');
    io.held[0].release();

    await first;
    const err = await failing;
    assert.ok(err instanceof StoreUnavailableError, String(err));
    assert.ok(await eventually(() => io.writes.lastIndexOf(failedAt) > io.writes.indexOf(failedAt)),
      'rewritten from where the failed batch began');
    // Rewritten through data-sync descriptors, they are held too.
    let released = 4;
    const rewritten = Promise.all(behind);
    for (let turn = 0; turn < 1_000 && !(await settledYet(rewritten)); turn++) {
      for (; released < io.held.length; released++) io.held[released].release();
    }
    await rewritten;

    const stats = store.stats();
    assert.equal(stats.liveMessages, 4);
    assert.equal((await stat(path)).size, stats.diskBytes);
    await store.close();

    const { replayed, store: reopened } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), fullBatchTicket(2), fullBatchTicket(4), fullBatchTicket(5)]);
    assert.equal(reopened.stats().corruptTails, 0);
  });
});

test('a failed data-sync write rejects its batch alone; the one written past it is written again', () => {
  return withTempDir(async (dir) => {
    const io = new DataSyncIo();
    const { store, logger } = await openStore(dir, { io, syncsInFlight: 2 });
    await store.append([ticket(1)]);
    const path = segmentPath(dir, 1);
    const before = (await stat(path)).size;
    io.hold();

    const failing = store.append([ticket(2)]).then(() => undefined, (err: unknown) => err);
    await io.writesHeld(1);
    const behind = store.append([ticket(3)]);
    await io.writesHeld(2);
    // The later write succeeds first; it must not count before it is
    // written again past the cut-back.
    io.held[1].release();
    io.held[0].release('EIO');

    const err = await failing;
    assert.ok(err instanceof StoreUnavailableError, String(err));
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'EIO');
    assert.equal(logger.errors[0]?.obj.offset, before);
    assert.ok(await eventually(() => io.writes.at(-1) === before),
      'batch 3 rewritten where batch 2 began');
    // Rewritten through a data-sync descriptor, it would be held too.
    for (const write of io.held.slice(2)) write.release();
    await behind;

    const stats = store.stats();
    assert.equal(stats.liveMessages, 2);
    assert.equal(stats.batches, 2);
    assert.equal((await stat(path)).size, stats.diskBytes);
    await store.close();

    const { replayed, store: reopened } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), ticket(3)]);
    assert.equal(reopened.stats().corruptTails, 0);
  });
});

/**
 * DataSyncIo whose failed writes fail as Linux reports a writeback
 * error: once to every open file description of the file, each at its
 * next sync. The descriptor whose write failed has seen it; every other
 * one reports it at its next fdatasync (or data-sync write).
 */
class WritebackErrorIo extends DataSyncIo {
  readonly #fds = new Set<number>();
  readonly #unseen = new Set<number>();

  override open = async (path: string, flags: string): Promise<number> => {
    const fd = await nodeIo.open(path, flags);
    this.#fds.add(fd);
    return fd;
  };

  override async openDataSync(path: string): Promise<number> {
    const fd = await super.openDataSync(path);
    this.#fds.add(fd);
    return fd;
  }

  override close(fd: number): Promise<void> {
    this.#fds.delete(fd);
    this.#unseen.delete(fd);
    return super.close(fd);
  }

  override async writev(fd: number, buffers: readonly Buffer[], position: number): Promise<number> {
    try {
      return await super.writev(fd, buffers, position);
    } catch (err) {
      for (const other of this.#fds) if (other !== fd) this.#unseen.add(other);
      throw err;
    }
  }

  override fdatasync(fd: number): Promise<void> {
    if (this.#unseen.delete(fd)) {
      return Promise.reject(Object.assign(new Error('EIO: fdatasync'), { code: 'EIO' }));
    }
    return super.fdatasync(fd);
  }
}

test('a data-sync write failing in writeback is cut back; the store goes on', () => {
  return withTempDir(async (dir) => {
    const io = new WritebackErrorIo();
    const { store } = await openStore(dir, { io, syncsInFlight: 2 });
    await store.append([ticket(1)]);
    io.hold();

    const failing = store.append([ticket(2)]).then(() => undefined, (err: unknown) => err);
    await io.writesHeld(1);
    io.held[0].release('EIO');
    assert.ok((await failing) instanceof StoreUnavailableError);

    // The other descriptors report that error once each. The cut-back
    // must take them, not stop the store, nor fail a later batch.
    let settled = false;
    const later = store.append([ticket(3)]).finally(() => (settled = true));
    // Written through a data-sync descriptor, it would be held.
    await eventually(() => settled || io.held.length > 1);
    for (const write of io.held.slice(1)) write.release();
    await later;
    assert.equal(store.stats().stopped, 0);
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), ticket(3)]);
  });
});
