// Four synced batches in flight (in-flight.ts), attacked: a failed
// fdatasync at each position among four full batches, the syncs ending
// in every order, with and without a segment roll due right after them;
// a writeback error as Linux reports it (once to each open descriptor of
// the file); close() while four are in flight; and power cuts with four
// in flight. An append confirmed is in the log after it, one that failed
// is not, and those behind a failed one are written again.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';

import { StoreUnavailableError } from '../../src/errors.js';
import { type StoreIo, nodeIo } from '../../src/storage/io.js';
import { EARLY_START_BYTES } from '../../src/storage/log-store.js';
import { seededRandom } from '../helpers.js';
import { fullBatchTicket, openStore, replayOf, withTempDir } from './helpers.js';
import { PowerCutIo, type PowerCutMode } from './power-cut.js';

interface HeldSync {
  fd: number;
  release(code?: string): void;
}

/**
 * nodeIo whose fdatasyncs wait while `holding`. With `writebackError()`
 * it behaves as Linux does after a page of the file failed to reach the
 * disk: the next fdatasync through each descriptor open then fails once.
 */
class HeldIo implements StoreIo {
  readonly held: HeldSync[] = [];
  holding = false;
  readonly #open = new Set<number>();
  readonly #errorPending = new Set<number>();
  #onHeld: (() => void) | undefined;

  async syncsHeld(count: number): Promise<void> {
    while (this.held.length < count) {
      await new Promise<void>((resolve) => (this.#onHeld = resolve));
    }
  }

  letGo(): void {
    this.holding = false;
    for (const sync of this.held) sync.release();
  }

  writebackError(): void {
    for (const fd of this.#open) this.#errorPending.add(fd);
  }

  async open(path: string, flags: string): Promise<number> {
    const fd = await nodeIo.open(path, flags);
    this.#open.add(fd);
    return fd;
  }

  async close(fd: number): Promise<void> {
    this.#open.delete(fd);
    this.#errorPending.delete(fd);
    return nodeIo.close(fd);
  }

  unlink = nodeIo.unlink;
  rename = nodeIo.rename;
  fsyncDir = nodeIo.fsyncDir;
  ftruncate = nodeIo.ftruncate;
  writev = nodeIo.writev;

  async fdatasync(fd: number): Promise<void> {
    if (this.holding) {
      const code = await new Promise<string | undefined>((resolve) => {
        this.held.push({ fd, release: resolve });
        this.#onHeld?.();
      });
      if (code !== undefined) throw Object.assign(new Error(`${code}: fdatasync`), { code });
    }
    if (this.#errorPending.delete(fd)) {
      throw Object.assign(new Error('EIO: fdatasync (writeback)'), { code: 'EIO' });
    }
    return nodeIo.fdatasync(fd);
  }
}

function permutations(items: number[]): number[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

const outcome = (append: Promise<void>) =>
  append.then(() => 'ok' as const, (err: unknown) => err);

test('a failed sync at each position among four full batches, ending in every order', async () => {
  for (const failing of [0, 1, 2, 3]) {
    for (const order of permutations([0, 1, 2, 3])) {
      for (const roll of [false, true]) {
        await withTempDir(async (dir) => {
          const io = new HeldIo();
          // With `roll`, the four fill the segment: a roll is due once they land.
          const segmentBytes = roll ? EARLY_START_BYTES * 4 : 64 * 1024 * 1024;
          const { store } = await openStore(dir, { io, segmentBytes });
          io.holding = true;
          const appends = [1, 2, 3, 4].map((i) => outcome(store.append([fullBatchTicket(i)])));
          await io.syncsHeld(4);
          for (const i of order) io.held[i].release(i === failing ? 'EIO' : undefined);
          io.letGo();
          const results = await Promise.all(appends);
          const context = `failing ${failing}, order ${order}, roll ${roll}`;
          results.forEach((result, i) => {
            if (i === failing) assert.ok(result instanceof StoreUnavailableError, context);
            else assert.equal(result, 'ok', `${context}: batch ${i} ${String(result)}`);
          });
          // And the store goes on.
          await store.append([fullBatchTicket(5)]);
          await store.close();
          const { replayed } = await replayOf(dir);
          const expected = [1, 2, 3, 4, 5].filter((seq) => seq !== failing + 1);
          assert.deepEqual(replayed, expected.map((seq) => fullBatchTicket(seq)), context);
        });
      }
    }
  }
});

test('a writeback error among four in flight fails every batch whose sync came after it', async () => {
  for (let landedBefore = 0; landedBefore <= 3; landedBefore++) {
    for (const order of permutations([0, 1, 2, 3])) {
      await withTempDir(async (dir) => {
        const io = new HeldIo();
        const { store } = await openStore(dir, { io });
        io.holding = true;
        const appends = [1, 2, 3, 4].map((i) => outcome(store.append([fullBatchTicket(i)])));
        await io.syncsHeld(4);
        // Some syncs end before the error, the rest after it.
        const before = order.slice(0, landedBefore);
        for (const i of before) io.held[i].release();
        await sleep(5);
        io.writebackError();
        for (const i of order.slice(landedBefore)) io.held[i].release();
        io.letGo();
        const results = await Promise.all(appends);
        const context = `${landedBefore} before the error, order ${order}`;
        // The error may belong to any batch whose sync had not ended: each
        // of those must fail, or be written again and synced after it.
        const confirmed = results.map((result) => result === 'ok');
        const firstAfter = order.slice(landedBefore).sort()[0];
        assert.equal(confirmed[firstAfter], false,
          `${context}: batch ${firstAfter + 1}, synced after the error, confirmed`);
        await store.append([fullBatchTicket(5)]);
        await store.close();
        const { replayed } = await replayOf(dir);
        const kept = replayed.map((record) => (record.type === 'published' ? record.seq : -1));
        for (let i = 0; i < 4; i++) {
          if (confirmed[i]) assert.ok(kept.includes(i + 1), `${context}: confirmed ${i + 1} kept`);
        }
      });
    }
  }
});

test('close() while four full batches are in flight lands them all', async () => {
  await withTempDir(async (dir) => {
    const io = new HeldIo();
    const { store } = await openStore(dir, { io });
    io.holding = true;
    const appends = [1, 2, 3, 4, 5].map((i) => outcome(store.append([fullBatchTicket(i)])));
    await io.syncsHeld(4);
    const closing = store.close();
    await sleep(5);
    io.letGo();
    assert.deepEqual(await Promise.all(appends), ['ok', 'ok', 'ok', 'ok', 'ok']);
    await closing;
    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [1, 2, 3, 4, 5].map((seq) => fullBatchTicket(seq)));
  });
});

test('a power cut with four full batches in flight keeps every confirmed append', async () => {
  const modes: PowerCutMode[] = ['drop', 'torn', 'zeros'];
  let confirmedTotal = 0;
  for (let round = 0; round < 12; round++) {
    const random = seededRandom(500 + round);
    const dataSync = round % 2 === 0;
    await withTempDir(async (dir) => {
      const io = new PowerCutIo({ dataSync });
      const { store } = await openStore(dir, { io, segmentBytes: EARLY_START_BYTES * 6 });
      const confirmed = new Set<number>();
      let seq = 0;
      const cutAfter = 2 + Math.floor(random() * 12);
      for (let turn = 0; turn < 30 && confirmed.size < cutAfter; turn++) {
        const burst = 1 + Math.floor(random() * 6);
        for (let i = 0; i < burst; i++) {
          const mine = ++seq;
          void store.append([fullBatchTicket(mine)]).then(() => {
            if (!io.isCut) confirmed.add(mine);
          }, () => {});
        }
        await sleep(random() < 0.5 ? 0 : 1);
      }
      io.cut();
      await io.settled();
      await withTempDir(async (image) => {
        await io.image(dir, image, modes[round % modes.length], random);
        const { replayed } = await replayOf(image);
        const kept = replayed.map((record) => (record.type === 'published' ? record.seq : -1));
        assert.deepEqual(kept, kept.map((_, i) => i + 1), `round ${round}: a prefix`);
        for (const mine of confirmed) {
          assert.ok(kept.includes(mine), `round ${round}: confirmed ${mine} kept (${kept.length})`);
        }
        confirmedTotal += confirmed.size;
      });
    });
  }
  assert.ok(confirmedTotal > 0);
});
