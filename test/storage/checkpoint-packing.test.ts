// Checkpoint format version 2 (issue #3): ledger rows and recent ids
// packed against their neighbours. Round trips of random input, a
// decoder that refuses every cut or trailing byte instead of reading past
// its frame, version 1 files that still load, and the live-data policy
// that spaces checkpoints as a backlog grows.

import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import {
  BadCheckpoint,
  CHECKPOINT_HEADER_BYTES,
  FRAME_HEADER_BYTES,
  FrameKind,
  encodeHeader,
  jsonFrame,
  listCheckpoints,
  sealFrame,
  sealInPlace,
} from '../../src/storage/checkpoint-file.js';
import { canPackRecent, packRecent, unpackRecent } from '../../src/storage/checkpoint-recent.js';
import { RowPacker, unpackRows } from '../../src/storage/checkpoint-rows.js';
import { LogStore, type LogStoreOptions } from '../../src/storage/log-store.js';
import type { LogRecord } from '../../src/storage/records.js';
import { SeqColumn } from '../../src/storage/seq-column.js';
import { SeqTable } from '../../src/storage/seq-table.js';
import { randomId } from '../../src/util/random-id.js';
import { checkpointingOptions, recordingLogger, ticket, withTempDir } from './helpers.js';

interface Row {
  seq: number;
  columns: number[];
}

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const rowsArbitrary = fc
  .array(
    fc.record({
      gap: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 2 ** 40 })),
      // Runs of the same segment with frames back to back, as in a log.
      columns: fc.oneof(
        fc.constant(undefined),
        fc.tuple(u32, u32, u32, u32),
      ),
    }),
    { maxLength: 300 },
  )
  .map((steps) => {
    const rows: Row[] = [];
    let seq = 0;
    let previous = [3, 16, 500 | (5 << 27), 7 | (60 << 16)];
    for (const step of steps) {
      seq += step.gap;
      if (seq > Number.MAX_SAFE_INTEGER) break;
      const columns = step.columns ??
        [previous[0], previous[1] + (previous[2] & 0x07ff_ffff), previous[2], previous[3]];
      if (columns[1] > 0xffff_ffff) columns[1] = 0;
      rows.push({ seq, columns });
      previous = columns;
    }
    return rows;
  });

function pack(rows: readonly Row[]): Buffer {
  const packer = new RowPacker(Math.max(1, rows.length));
  const seqs = new SeqColumn(rows.length);
  const cols = new Uint32Array(4 * rows.length);
  rows.forEach((row, i) => {
    seqs.set(i, row.seq);
    cols.set(row.columns, 4 * i);
  });
  const alive = new Uint8Array(rows.length).fill(1);
  packer.addRun({ seqs, cols, alive, from: 0, to: rows.length });
  return sealInPlace(packer.take(FrameKind.PackedRows)).subarray(FRAME_HEADER_BYTES);
}

function unpack(payload: Buffer): Row[] {
  const rows: Row[] = [];
  const count = unpackRows(payload, (seq, columns) => rows.push({ seq, columns: [...columns] }));
  assert.equal(count, rows.length);
  return rows;
}

const recentArbitrary = fc
  .array(
    fc.tuple(
      fc.oneof(fc.uuid(), fc.string({ unit: 'grapheme', maxLength: 40 })),
      fc.integer({ min: -(2 ** 50), max: 2 ** 50 }),
    ),
    { maxLength: 200 },
  )
  .map((entries) => ({
    queue: 'tickets',
    lastSeq: entries.length * 3,
    ids: entries.map(([id]) => id),
    times: entries.map(([, time]) => time),
  }));

describe('packed checkpoint rows', () => {
  it('come back as they went in, for any increasing seqs and any u32 columns', () => {
    fc.assert(fc.property(rowsArbitrary, (rows) => {
      assert.deepEqual(unpack(pack(rows)), rows);
    }));
  });

  it('come out whole from a table packed a frame at a time, dead rows left out', () => {
    // Three chunks of the table (16 Ki rows each), frames that end
    // inside a chunk, and every seventh row dead.
    const table = new SeqTable(4);
    const live: Row[] = [];
    for (let seq = 1; seq <= 40_000; seq++) {
      const columns = [1, 100 * seq, 100, seq % 3];
      table.put(seq, columns);
      if (seq % 7 === 0) table.delete(seq);
      else live.push({ seq, columns });
    }

    const packer = new RowPacker(1_000);
    const unpacked: Row[] = [];
    let after = -1;
    for (;;) {
      table.forEachRunAfter(after, (run) => packer.addRun(run));
      const count = packer.count;
      if (count === 0) break;
      after = packer.lastSeq;
      unpacked.push(...unpack(sealInPlace(packer.take(FrameKind.PackedRows))
        .subarray(FRAME_HEADER_BYTES)));
    }
    assert.deepEqual(unpacked, live);
  });

  it('take one byte a row for a backlog of one queue written back to back', () => {
    const rows: Row[] = [];
    for (let i = 0; i < 1000; i++) {
      rows.push({ seq: 1000 + i, columns: [9, 16 + 578 * i, 578 | (3 << 27), 2 | (118 << 16)] });
    }
    const payload = pack(rows);
    assert.ok(payload.length < 8 + 1000 + 20, `${payload.length} bytes`);
    assert.deepEqual(unpack(payload), rows);
  });

  it('refuse a frame cut anywhere, with a byte too many, or with unknown flags', () => {
    fc.assert(fc.property(rowsArbitrary.filter((rows) => rows.length > 0), (rows) => {
      const payload = pack(rows);
      for (let end = 0; end < payload.length; end++) {
        assert.throws(() => unpack(payload.subarray(0, end)), BadCheckpoint);
      }
      assert.throws(() => unpack(Buffer.concat([payload, Buffer.from([0])])), BadCheckpoint);
      const flagged = Buffer.from(payload);
      flagged[8] |= 0x80;
      assert.throws(() => unpack(flagged), BadCheckpoint);
    }), { numRuns: 30 });
  });
});

describe('packed recent ids', () => {
  it('come back as they went in: UUIDs, other ids, times up and down', () => {
    fc.assert(fc.property(recentArbitrary, (piece) => {
      assert.ok(canPackRecent(piece));
      const payload = packRecent(piece).subarray(FRAME_HEADER_BYTES);
      assert.deepEqual(unpackRecent(payload), piece);
    }));
  });

  it('keep a UUID in 17 bytes and an upper-case one as it was written', () => {
    const ids = ['0f8fad5b-d9cb-469f-a165-70867728950e', '0F8FAD5B-D9CB-469F-A165-70867728950E'];
    const piece = { queue: 'q', lastSeq: 2, ids, times: [1_700_000_000_000, 1_700_000_000_001] };
    const payload = packRecent(piece).subarray(FRAME_HEADER_BYTES);
    assert.deepEqual(unpackRecent(payload), piece);
    // Head 16, queue 2, ids 17 + 38, times 6 + 1.
    assert.equal(payload.length, 16 + 2 + 17 + 38 + 6 + 1);
  });

  it('keep ids that only look like UUIDs as they were written', () => {
    const uuid = '0f8fad5b-d9cb-469f-a165-70867728950e';
    const nearMisses = [
      `${uuid.slice(0, 35)}g`, // not hex, last
      `g${uuid.slice(1)}`, // not hex, first
      `${uuid.slice(0, 8)}x${uuid.slice(9)}`, // a dash missing
      `${uuid.slice(0, 7)}-${uuid.slice(7, 8)}${uuid.slice(9)}`, // a dash moved
      `${uuid}0`, // too long
      uuid.slice(0, 35), // too short
      `${uuid.slice(0, 35)}E`, // upper case, last
    ];
    const times = nearMisses.map((_, i) => 1_700_000_000_000 + i);
    const piece = { queue: 'q', lastSeq: 9, ids: nearMisses, times };
    const payload = packRecent(piece).subarray(FRAME_HEADER_BYTES);
    assert.deepEqual(unpackRecent(payload), piece);
    // Head 16, queue 2; each id as text: kind 1, length 1, its bytes.
    const idBytes = nearMisses.reduce((sum, id) => sum + 2 + id.length, 0);
    assert.equal(payload.length, 16 + 2 + idBytes + 6 + nearMisses.length - 1);
  });

  it('leave times that are not integers to JSON', () => {
    assert.equal(canPackRecent({ queue: 'q', lastSeq: 1, ids: ['a'], times: [1.5] }), false);
  });

  it('refuse a frame cut anywhere or with a byte too many', () => {
    fc.assert(fc.property(recentArbitrary, (piece) => {
      const payload = packRecent(piece).subarray(FRAME_HEADER_BYTES);
      for (let end = 0; end < payload.length; end++) {
        assert.throws(() => unpackRecent(payload.subarray(0, end)), BadCheckpoint);
      }
      assert.throws(() => unpackRecent(Buffer.concat([payload, Buffer.from([0])])), BadCheckpoint);
    }), { numRuns: 20 });
  });
});

// Checkpoints without waiting for the log to grow by a share of the live
// bytes, so these small logs write them.
const options = (dir: string, extra: Partial<LogStoreOptions> = {}) => checkpointingOptions(dir, {
  checkpoints: { minBytes: 64 * 1024, ratio: 1, liveShare: 0 },
  ...extra,
});

function stateOf(store: LogStore) {
  const live: unknown[] = [];
  store.forEachLive((message) => void live.push({ ...message }));
  return { live, recent: store.recentIds(), queues: [...store.queues] };
}

/**
 * Appends `count` tickets, 50 a batch. `settle`: each batch waits for a
 * checkpoint it began, so how many are written depends on the log alone,
 * not on how fast this machine writes them.
 */
async function fill(store: LogStore, count: number, settle = false): Promise<void> {
  await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);
  for (let seq = 1; seq <= count; seq += 50) {
    const records: LogRecord[] = [];
    for (let i = seq; i < seq + 50; i++) records.push(ticket(i));
    if (seq > 100) records.push({ type: 'settled', seqs: [seq - 99, seq - 42] });
    await store.append(records);
    if (settle) await store.whenCheckpointed();
  }
}

/** Rewrites the newest checkpoint in `dir` as format version 1 would have it. */
async function downgradeNewest(dir: string, keepPacked = false): Promise<string> {
  const [newest] = listCheckpoints(await readdir(dir), dir);
  const bytes = await readFile(newest.path);
  const out: Buffer[] = [encodeHeader(1)];
  for (let at = CHECKPOINT_HEADER_BYTES; at < bytes.length;) {
    const length = bytes.readUInt32LE(at);
    const payload = bytes.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length);
    at += FRAME_HEADER_BYTES + length;
    if (payload[0] === FrameKind.PackedRows && !keepPacked) {
      out.push(sealFrame(version1Rows(unpack(payload))));
    } else if (payload[0] === FrameKind.PackedRecent) {
      out.push(jsonFrame(FrameKind.Recent, unpackRecent(payload)));
    } else {
      out.push(sealFrame(payload));
    }
  }
  await writeFile(newest.path, Buffer.concat(out));
  return newest.path;
}

// Kind 3: kind, 3 zero bytes, u32 count, the seqs, then the columns.
function version1Rows(rows: readonly Row[]): Buffer {
  const payload = Buffer.alloc(8 + rows.length * 24);
  payload[0] = FrameKind.Rows;
  payload.writeUInt32LE(rows.length, 4);
  rows.forEach((row, i) => {
    payload.writeDoubleLE(row.seq, 8 + 8 * i);
    row.columns.forEach((value, c) => {
      payload.writeUInt32LE(value, 8 + 8 * rows.length + 16 * i + 4 * c);
    });
  });
  return payload;
}

describe('recent ids through a checkpoint', () => {
  // The ledger keeps a UUID as bytes (ledger.ts, RecentIds): they go out
  // packed as such, or spelled out in a JSON frame when a time is not an
  // integer, and come back as the ids a full replay finds.
  for (const times of ['whole', 'fractional'] as const) {
    it(`UUIDs and other ids, ${times} times, load as a full replay finds them`, async () => {
      await withTempDir(async (dir) => {
        const store = await LogStore.open(options(dir), () => {});
        await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);
        for (let seq = 1; seq <= 1500; seq += 50) {
          const records: LogRecord[] = [];
          for (let i = seq; i < seq + 50; i++) {
            const record = ticket(i);
            if (i % 3 !== 0) record.id = randomId();
            if (times === 'fractional') record.publishedAt += 0.5;
            records.push(record);
          }
          await store.append(records);
        }
        await store.close();
        const replayOnly = options(dir, { checkpoints: { enabled: false } });
        const full = await LogStore.open(replayOnly, () => {});
        const expected = stateOf(full);
        await full.close();
        assert.equal(expected.recent.length, 1000);

        const logger = recordingLogger();
        const reopened = await LogStore.open(options(dir, { logger }), () => {});
        assert.equal(reopened.stats().openedFromCheckpoint, 1, JSON.stringify(logger.warnings));
        assert.deepEqual(stateOf(reopened), expected);
        await reopened.close();
      });
    });
  }
});

describe('checkpoint format versions', () => {
  it('a version 1 checkpoint still loads, to the state a full replay reaches', async () => {
    await withTempDir(async (dir) => {
      const store = await LogStore.open(options(dir), () => {});
      await fill(store, 2000);
      await store.close();
      const full = await LogStore.open(options(dir, { checkpoints: { enabled: false } }), () => {});
      const expected = stateOf(full);
      await full.close();

      await downgradeNewest(dir);
      const logger = recordingLogger();
      const reopened = await LogStore.open(options(dir, { logger }), () => {});
      assert.equal(reopened.stats().openedFromCheckpoint, 1, JSON.stringify(logger.warnings));
      assert.deepEqual(stateOf(reopened), expected);
      await reopened.close();
    });
  });

  it('a version 1 file holding packed rows is ignored, not misread', async () => {
    await withTempDir(async (dir) => {
      const store = await LogStore.open(options(dir), () => {});
      await fill(store, 500);
      await store.close();
      const path = await downgradeNewest(dir, true);
      const logger = recordingLogger();
      const reopened = await LogStore.open(options(dir, { logger }), () => {});
      assert.ok(logger.warnings.some((w) => w.msg.startsWith('checkpoint ignored') &&
        w.obj.file === path && String(w.obj.reason).includes('kind 8')));
      assert.equal(reopened.stats().liveMessages, 500 - 2 * 8);
      await reopened.close();
    });
  });
});

describe('checkpoint spacing by live data', () => {
  it('a growing backlog gets checkpoints further apart with liveShare', async () => {
    const written: number[] = [];
    for (const liveShare of [0, 0.5]) {
      await withTempDir(async (dir) => {
        const checkpoints = { minBytes: 32 * 1024, ratio: 0, liveShare };
        const store = await LogStore.open(options(dir, { checkpoints }), () => {});
        await fill(store, 3000, true);
        written.push(store.stats().checkpointsWritten);
        await store.close();
      });
    }
    // About 1.2 MB of log, nearly all live: one every 32 KiB is ~38; one
    // each time the log grew by half the live data, which then doubled,
    // about log2(1.2 MB / 32 KiB) + 1.
    const [everyMin, byLive] = written;
    assert.ok(byLive >= 3 && byLive <= 9, `${byLive} checkpoints spaced by live data`);
    assert.ok(everyMin > byLive + 2, `${everyMin} at a fixed interval, ${byLive} by live data`);
  });
});
