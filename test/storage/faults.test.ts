import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';
import { StoreUnavailableError } from '../../src/errors.js';
import type { LogRecord } from '../../src/storage/records.js';
import { segmentPath } from '../../src/storage/segment-file.js';
import {
  FaultyIo,
  openStore,
  replayOf,
  ticket,
  withTempDir,
} from './helpers.js';

const declared: LogRecord = {
  type: 'queue-declared',
  name: 'tickets',
  settings: {},
};

function isUnavailable(code: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof StoreUnavailableError, String(err));
    assert.equal(err.code, 'STORE_UNAVAILABLE');
    assert.equal((err.cause as NodeJS.ErrnoException).code, code);
    return true;
  };
}

test('ENOSPC mid-write rejects only its batch and leaves no garbage', () => {
  return withTempDir(async (dir) => {
    const io = new FaultyIo();
    const { store, logger } = await openStore(dir, { io });
    await store.append([declared, ticket(1)]);
    const path = segmentPath(dir, 1);
    const before = (await stat(path)).size;

    // Half of the batch reaches the file before the disk fills up.
    io.failNext('writev', 'ENOSPC', true);
    const failing = store.append([ticket(2), ticket(3)]);
    // Joins the next batch while the failing one is in flight.
    await nextTurn();
    const following = store.append([ticket(4)]);

    await assert.rejects(failing, isUnavailable('ENOSPC'));
    await following;
    assert.equal(logger.errors.length, 1);
    assert.equal(logger.errors[0].msg, 'log batch failed');
    assert.equal(logger.errors[0].obj.offset, before);

    // Space is back: appends go on where the failed batch began.
    await store.append([ticket(5)]);
    const stats = store.stats();
    assert.equal(stats.liveMessages, 3);
    // Batches that landed; the failed one does not count.
    assert.equal(stats.batches, 3);
    assert.equal((await stat(path)).size, stats.diskBytes);
    await store.close();

    const { replayed, store: reopened } = await replayOf(dir);
    assert.deepEqual(replayed, [declared, ticket(1), ticket(4), ticket(5)]);
    assert.equal(reopened.stats().corruptTails, 0);
  });
});

test('EIO from fdatasync rejects the batch and cuts it back', () => {
  return withTempDir(async (dir) => {
    const io = new FaultyIo();
    const { store } = await openStore(dir, { io });
    await store.append([ticket(1)]);

    io.failNext('fdatasync', 'EIO');
    await assert.rejects(store.append([ticket(2)]), isUnavailable('EIO'));
    assert.equal(io.calls.ftruncate, 1);
    await store.append([ticket(3)]);
    await store.close();

    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1), ticket(3)]);
  });
});

test('a failed cut-back stops the store: every later append rejects', () => {
  return withTempDir(async (dir) => {
    const io = new FaultyIo();
    const { store, logger } = await openStore(dir, { io });
    await store.append([ticket(1)]);

    io.failNext('writev', 'EIO', true);
    io.failNext('ftruncate', 'EIO');
    const failing = store.append([ticket(2)]);
    await nextTurn();
    const gathered = store.append([ticket(3)]);

    await assert.rejects(failing, isUnavailable('EIO'));
    await assert.rejects(gathered, isUnavailable('EIO'));
    await assert.rejects(store.append([ticket(4)]), (err: unknown) => {
      assert.ok(err instanceof StoreUnavailableError);
      assert.match(err.message, /the log store is stopped/);
      return true;
    });
    // The new segment's header, ticket 1, the failed batch: nothing after.
    assert.equal(io.calls.writev, 3);
    assert.equal(logger.errors.at(-1)?.msg, 'log store stopped');
    await store.close();

    // What reached the file past ticket 1 is a torn tail to recovery.
    const { replayed, store: reopened } = await replayOf(dir);
    assert.deepEqual(replayed, [ticket(1)]);
    assert.equal(reopened.stats().corruptTails, 1);
  });
});

test('a segment that cannot be created leaves writing in the old one', () => {
  return withTempDir(async (dir) => {
    const io = new FaultyIo();
    const { store, logger } = await openStore(dir, { io, segmentBytes: 780 });

    io.failNext('open', 'ENOSPC');
    await store.append([declared, ticket(1), ticket(2)]);
    await store.append([ticket(3)]);
    assert.equal(
      logger.errors[0]?.msg,
      'could not start a new segment; writing on in the current one',
    );
    // The roll is retried after the next batch and succeeds, with the id
    // the failed one gave back: a gap would read as a lost segment.
    await store.close();
    assert.equal(store.stats().segments, 2);
    assert.deepEqual((await readdir(dir)).sort(), [
      '00000000000000000001.log',
      '00000000000000000002.log',
    ]);

    const { replayed, store: reopened } = await replayOf(dir);
    assert.equal(reopened.stats().missingSegments, 0);
    assert.deepEqual(replayed, [
      declared,
      ticket(1),
      ticket(2),
      ticket(3),
      declared,
    ]);
  });
});

test('a failed sync of the old segment at a roll stops the store', () => {
  // Linux reports a writeback error once: a later sync would pass, and a
  // checkpoint could then name records that never reached the disk. The
  // store only warned and rolled on (helper reading the write loop).
  return withTempDir(async (dir) => {
    const io = new SecondSyncFails();
    const { store, logger } = await openStore(dir, { io, segmentBytes: 780, sync: false });

    // Fills the segment: its roll syncs the new one, then the old one.
    io.arm();
    await store.append([declared, ticket(1), ticket(2)]);
    await assert.rejects(store.append([ticket(3)]), (err: unknown) => {
      assert.ok(err instanceof StoreUnavailableError, String(err));
      assert.match(err.message, /before starting the next failed .*the log store is stopped/);
      return true;
    });
    assert.equal(logger.errors.at(-1)?.msg, 'log store stopped');
    await store.close();

    // What the OS kept is read back; ticket 3 was never written.
    const { replayed } = await replayOf(dir);
    assert.deepEqual(replayed.filter((record) => record.type !== 'queue-declared'),
      [ticket(1), ticket(2)]);
  });
});

/** nodeIo through FaultyIo, but once armed the second fdatasync fails with EIO. */
class SecondSyncFails extends FaultyIo {
  #left = -1;

  arm(): void {
    this.#left = 2;
  }

  override async fdatasync(fd: number): Promise<void> {
    if (this.#left > 0 && --this.#left === 0) {
      this.calls.fdatasync++;
      const err: NodeJS.ErrnoException = new Error('EIO: simulated failure, fdatasync');
      err.code = 'EIO';
      throw err;
    }
    return super.fdatasync(fd);
  }
}
