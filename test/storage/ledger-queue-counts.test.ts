// The ledger counts live messages by queue so that a `queue-deleted`
// record looks through the rows only when its queue still has some, and
// stops once it found that many (ledger.ts). A count that drifts low
// leaves a message of a deleted queue live, for a queue made again under
// the name to take at a restart from a later checkpoint. These tests run
// random logs, as the broker writes them, through the ledger at run time,
// through a checkpoint load (exact, and fuzzy as checkpoint.ts writes
// one while batches land) followed by the log after it, and through a
// full replay of what segment deletion leaves, and compare each with a
// model. Deleting every queue at the end then must leave nothing live:
// a count too low anywhere would leave something.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { Ledger, type MessageChange, type SegmentState } from '../../src/storage/ledger.js';
import type { LogRecord, PublishedRecord } from '../../src/storage/records.js';

const NOW = 1_700_000_000_000;
const QUEUES = ['a', 'b', 'c', 'd'];
/** A frame whose bytes beyond the body do not fit the narrow column. */
const WIDE_FRAME = 70_000;
const NARROW_FRAME = 100;

interface Entry {
  segment: number;
  record: LogRecord;
  frameBytes: number;
}

// What a step of the generated traffic does; `pick` chooses among the
// live messages or the queues, `wide` the frame size of a `published`.
type Step =
  | { kind: 'declare'; pick: number }
  | { kind: 'publish'; pick: number; wide: boolean; late: boolean }
  | { kind: 'settle'; pick: number }
  | { kind: 'retry'; pick: number }
  | { kind: 'move'; pick: number; to: number }
  | { kind: 'copy'; pick: number; wide: boolean }
  | { kind: 'moveWhole'; pick: number; to: number; wide: boolean }
  | { kind: 'delete'; pick: number; leftovers: number }
  | { kind: 'nextSegment' };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('declare' as const), pick: fc.nat() }),
  fc.record({
    kind: fc.constant('publish' as const), pick: fc.nat(), wide: fc.boolean(), late: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('publish' as const), pick: fc.nat(), wide: fc.boolean(), late: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('settle' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('retry' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('move' as const), pick: fc.nat(), to: fc.nat() }),
  fc.record({ kind: fc.constant('copy' as const), pick: fc.nat(), wide: fc.boolean() }),
  fc.record({
    kind: fc.constant('moveWhole' as const), pick: fc.nat(), to: fc.nat(), wide: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('delete' as const), pick: fc.nat(), leftovers: fc.nat(3) }),
  fc.record({ kind: fc.constant('nextSegment' as const) }),
);

function published(seq: number, queue: string): PublishedRecord {
  return {
    type: 'published', seq, queue, id: `id-${seq}`, priority: seq % 10, group: null,
    headers: {}, body: Buffer.alloc(seq % 5), publishedAt: NOW, availableAt: NOW,
    expiresAt: null, failures: 0,
  };
}

/**
 * The log a broker would write for `steps`: every segment starts by
 * declaring the queues declared then, nothing is written into a queue
 * between its delete and a declare again (queues.ts), and a delete
 * settles what it knows of but `leftovers` of its messages (an ack that
 * failed meanwhile put them back).
 */
function logOf(steps: Step[]): Entry[] {
  const entries: Entry[] = [];
  const declared = new Set<string>();
  const queueOf = new Map<number, string>();
  const memorySeqs: number[] = [];
  let segment = 1;
  let nextSeq = 1;
  const put = (record: LogRecord, frameBytes = NARROW_FRAME) => {
    entries.push({ segment, record, frameBytes });
  };
  const live = () => [...queueOf.keys()];
  const frame = (wide: boolean) => (wide ? WIDE_FRAME : NARROW_FRAME);

  for (const s of steps) {
    switch (s.kind) {
      case 'declare': {
        const name = QUEUES[s.pick % QUEUES.length];
        if (declared.has(name)) break;
        declared.add(name);
        put({ type: 'queue-declared', name, settings: {} });
        break;
      }
      case 'publish': {
        const names = [...declared];
        if (names.length === 0) break;
        const queue = names[s.pick % names.length];
        // A seq a memory queue took, published late (a move out of it).
        let seq = s.late ? memorySeqs.shift() : undefined;
        if (seq === undefined) {
          if (s.late) memorySeqs.push(nextSeq++);
          seq = nextSeq++;
        }
        queueOf.set(seq, queue);
        put(published(seq, queue), frame(s.wide));
        break;
      }
      case 'settle': {
        const seqs = live();
        if (seqs.length === 0) break;
        const seq = seqs[s.pick % seqs.length];
        queueOf.delete(seq);
        put({ type: 'settled', seqs: [seq] });
        break;
      }
      case 'retry': {
        const seqs = live();
        if (seqs.length === 0) break;
        put({ type: 'retried', seq: seqs[s.pick % seqs.length], failures: 1, availableAt: NOW });
        break;
      }
      case 'move':
      case 'moveWhole': {
        const seqs = live();
        const names = [...declared];
        if (seqs.length === 0 || names.length === 0) break;
        const seq = seqs[s.pick % seqs.length];
        const queue = names[s.to % names.length];
        queueOf.set(seq, queue);
        if (s.kind === 'move') {
          put({
            type: 'moved', seq, queue, headers: { to: queue }, failures: 1,
            availableAt: NOW, expiresAt: null,
          });
        } else {
          put(published(seq, queue), frame(s.wide));
        }
        break;
      }
      case 'copy': {
        const seqs = live();
        if (seqs.length === 0) break;
        const seq = seqs[s.pick % seqs.length];
        put(published(seq, queueOf.get(seq)!), frame(s.wide));
        break;
      }
      case 'delete': {
        const names = [...declared];
        if (names.length === 0) break;
        const name = names[s.pick % names.length];
        const inQueue = live().filter((seq) => queueOf.get(seq) === name);
        const settled = inQueue.slice(s.leftovers);
        if (settled.length > 0) put({ type: 'settled', seqs: settled });
        put({ type: 'queue-deleted', name });
        for (const seq of inQueue) queueOf.delete(seq);
        declared.delete(name);
        break;
      }
      case 'nextSegment':
        segment++;
        for (const name of declared) put({ type: 'queue-declared', name, settings: {} });
        break;
    }
  }
  return entries;
}

/** Live messages and their queues, as the model of a replay has them. */
function modelOf(entries: Entry[]): Array<[number, string]> {
  const queueOf = new Map<number, string>();
  for (const { record } of entries) {
    switch (record.type) {
      case 'published':
        queueOf.set(record.seq, record.queue);
        break;
      case 'settled':
        for (const seq of record.seqs) queueOf.delete(seq);
        break;
      case 'moved':
        if (queueOf.has(record.seq)) queueOf.set(record.seq, record.queue);
        break;
      case 'queue-deleted':
        for (const [seq, queue] of queueOf) if (queue === record.name) queueOf.delete(seq);
        break;
      default:
        break;
    }
  }
  return [...queueOf].sort((x, y) => x[0] - y[0]);
}

class Segments {
  readonly #states = new Map<number, SegmentState>();

  of(id: number): SegmentState {
    let state = this.#states.get(id);
    if (state === undefined) {
      state = { id, path: `s${id}`, size: 24, live: 0, liveBytes: 0 };
      this.#states.set(id, state);
    }
    return state;
  }

  all(): SegmentState[] {
    return [...this.#states.values()].sort((x, y) => x.id - y.id);
  }
}

function applyEntries(ledger: Ledger, segments: Segments, entries: Entry[]): void {
  for (const { segment, record, frameBytes } of entries) {
    const state = segments.of(segment);
    ledger.apply(record, state, frameBytes, state.size);
    state.size += frameBytes;
  }
}

function liveOf(ledger: Ledger): Array<[number, string]> {
  const seen: Array<[number, string]> = [];
  ledger.forEachLive((m) => void seen.push([m.seq, m.change?.queue ?? m.queue]));
  return seen;
}

/** Each segment's live count and bytes add up to the ledger's. */
function assertSegmentsAddUp(ledger: Ledger, segments: Segments): void {
  const all = segments.all();
  assert.equal(all.reduce((n, s) => n + s.live, 0), ledger.liveMessages, 'segment live counts');
  assert.equal(all.reduce((n, s) => n + s.liveBytes, 0), ledger.liveBytes, 'segment live bytes');
}

/** A `queue-deleted` record for every queue named: nothing may stay live. */
function deleteEveryQueue(ledger: Ledger, segments: Segments): void {
  const names = new Set([...QUEUES, ...ledger.queueNames]);
  const entries = [...names].map((name): Entry => ({
    segment: 99, record: { type: 'queue-deleted', name }, frameBytes: NARROW_FRAME,
  }));
  applyEntries(ledger, segments, entries);
  assert.deepEqual(liveOf(ledger), [], 'left live after every queue was deleted');
  assertSegmentsAddUp(ledger, segments);
}

// What a checkpoint frame holds, taken when checkpoint.ts builds it.
interface Frames {
  rows: Array<[number, number[]]>;
  names: string[];
  wide: Array<[number, readonly [number, number]]>;
  changes: Array<[number, MessageChange]>;
}

function rowsAfter(ledger: Ledger, after: number, max: number): Array<[number, number[]]> {
  const rows: Array<[number, number[]]> = [];
  ledger.forEachRunAfter(after, (run) => {
    for (let i = run.from; i < run.to && rows.length < max; i++) {
      if (run.alive[i] === 0) continue;
      rows.push([run.seqs.at(i), Array.from(run.cols.subarray(i * 4, i * 4 + 4))]);
    }
    return rows.length < max;
  });
  return rows;
}

const copied = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

function restore(frames: Frames, segments: Segments): Ledger {
  const loaded = new Ledger();
  for (const [seq, columns] of frames.rows) loaded.restoreRow(seq, columns, segments.of(columns[0]));
  for (const name of frames.names) loaded.restoreQueueName(name);
  for (const [seq, [index, bytes]] of frames.wide) loaded.restoreWide(seq, index, bytes);
  for (const [seq, change] of frames.changes) loaded.restoreChange(seq, change);
  return loaded;
}

/**
 * A Map's entries read as checkpoint.ts's mapFrames reads them: one
 * frame, `between` (batches landing), then the rest from the same
 * iterator, which skips entries deleted meanwhile and visits ones added.
 * Each entry is copied when read, as the frame encodes it then.
 */
function readAcross<V>(map: ReadonlyMap<number, V>, between: () => void): Array<[number, V]> {
  const entries = map.entries();
  const read: Array<[number, V]> = [];
  const first = entries.next();
  if (first.done === true) return read;
  read.push(copied(first.value));
  between();
  for (const entry of entries) read.push(copied(entry));
  return read;
}

/**
 * The frames of a checkpoint with position `at[0]` written while the
 * records up to `at[6]` land (see the test), or undefined if its watch
 * saw a move into a queue deleted since P and checkpoint.ts gives it up.
 */
function fuzzyFrames(entries: Entry[], at: number[]): Frames | undefined {
  const ledger = new Ledger();
  let landed = 0;
  const landTo = (to: number) => {
    applyEntries(ledger, new Segments(), entries.slice(landed, to));
    landed = Math.max(landed, to);
  };
  landTo(at[0]);
  ledger.watchDeletes();
  landTo(at[1]);
  const first = rowsAfter(ledger, -1, 2);
  landTo(at[2]);
  const rest = rowsAfter(ledger, first.at(-1)?.[0] ?? -1, Infinity);
  landTo(at[3]);
  const names = [...ledger.queueNames];
  const wide = readAcross(ledger.wide, () => landTo(at[4]));
  landTo(at[5]);
  const changes = readAcross(ledger.changes, () => landTo(at[6]));
  if (ledger.endWatch()) return undefined;
  return { rows: [...first, ...rest], names, wide, changes };
}

/**
 * The live messages a restart finds after the fuzzy checkpoint
 * fuzzyFrames makes: loaded with the log after it replayed, or, if the
 * checkpoint was given up, the whole log replayed. Checks the counts.
 */
function restartAfter(entries: Entry[], at: number[]): Array<[number, string]> {
  const frames = fuzzyFrames(entries, at);
  const segments = new Segments();
  const ledger = frames === undefined ? new Ledger() : restore(frames, segments);
  for (const s of segments.all()) s.size = 1e9;
  applyEntries(ledger, segments, frames === undefined ? entries : entries.slice(at[0]));
  const live = liveOf(ledger);
  deleteEveryQueue(ledger, segments);
  return live;
}

const runs = { numRuns: 400 };
const logs = fc.array(step, { minLength: 1, maxLength: 60 });

describe('the ledger\'s live count by queue', () => {
  it('at run time: the model\'s messages, and none left once every queue is deleted', () => {
    fc.assert(fc.property(logs, (steps) => {
      const entries = logOf(steps);
      const ledger = new Ledger();
      const segments = new Segments();
      applyEntries(ledger, segments, entries);
      assert.deepEqual(liveOf(ledger), modelOf(entries));
      assertSegmentsAddUp(ledger, segments);
      deleteEveryQueue(ledger, segments);
    }), runs);
  });

  it('after a checkpoint at any position and the log after it', () => {
    fc.assert(fc.property(logs, fc.nat(), (steps, at) => {
      const entries = logOf(steps);
      const cut = at % (entries.length + 1);
      const written = new Ledger();
      applyEntries(written, new Segments(), entries.slice(0, cut));
      const frames: Frames = {
        rows: rowsAfter(written, -1, Infinity),
        names: [...written.queueNames],
        wide: copied([...written.wide]),
        changes: copied([...written.changes]),
      };
      const segments = new Segments();
      const loaded = restore(frames, segments);
      for (const s of segments.all()) s.size = 1e9;
      applyEntries(loaded, segments, entries.slice(cut));
      assert.deepEqual(liveOf(loaded), modelOf(entries));
      deleteEveryQueue(loaded, segments);
    }), runs);
  });

  it('after a fuzzy checkpoint: frames taken as later records landed, no queue deleted meanwhile', () => {
    // checkpoint.ts takes the position P, then packs the rows a frame at
    // a time, then the names, wide rows and changes, batches landing in
    // between; a checkpoint during which a queue was deleted is given up.
    fc.assert(fc.property(logs, fc.array(fc.nat(), { minLength: 5, maxLength: 5 }), (steps, cuts) => {
      const entries = logOf(steps);
      const at = cuts.map((c) => c % (entries.length + 1)).sort((x, y) => x - y);
      const [position, , , , end] = at;
      const window = entries.slice(position, end);
      fc.pre(!window.some((e) => e.record.type === 'queue-deleted'));

      const ledger = new Ledger();
      const landTo = (() => {
        let landed = 0;
        return (to: number) => {
          applyEntries(ledger, new Segments(), entries.slice(landed, to));
          landed = Math.max(landed, to);
        };
      })();
      landTo(position);
      landTo(at[1]);
      const first = rowsAfter(ledger, -1, 2);
      landTo(at[2]);
      const rest = rowsAfter(ledger, first.at(-1)?.[0] ?? -1, Infinity);
      landTo(at[3]);
      const frames: Frames = {
        rows: [...first, ...rest],
        names: [...ledger.queueNames],
        wide: copied([...ledger.wide]),
        changes: [],
      };
      landTo(end);
      frames.changes = copied([...ledger.changes]);

      const segments = new Segments();
      const loaded = restore(frames, segments);
      for (const s of segments.all()) s.size = 1e9;
      applyEntries(loaded, segments, entries.slice(position));
      assert.deepEqual(liveOf(loaded), modelOf(entries));
      deleteEveryQueue(loaded, segments);
    }), runs);
  });

  it('after a fuzzy checkpoint with queues deleted and made again meanwhile, if it is used', () => {
    // As checkpoint.ts writes one: the position P and the watch
    // (Ledger.watchDeletes) at once, the rows in two chunks, the names,
    // then the wide rows and the changes each read through a live Map
    // iterator as checkpoint.ts's mapFrames does, batches landing between
    // every two steps; the watch ends once the changes are taken. A
    // checkpoint whose watch tripped is not used: the restart replays
    // everything.
    const cutsOf = fc.array(fc.nat(), { minLength: 7, maxLength: 7 });
    fc.assert(fc.property(logs, cutsOf, (steps, cuts) => {
      const entries = logOf(steps);
      const at = cuts.map((c) => c % (entries.length + 1)).sort((x, y) => x - y);
      assert.deepEqual(restartAfter(entries, at), modelOf(entries));
    }), { numRuns: 3000 });
  });

  it('after a fuzzy checkpoint during which a delete ended a message moved in before P', () => {
    // The row of 1 goes out in `b`, its queue when published; the delete
    // of `a` ends it (an ack that failed as the delete was written left
    // it) and its change naming `a` with it; the changes go out without
    // it. Loaded, 1 is in `b`, and the replayed delete of `a` leaves it
    // live. Fails on 6a9509c ([[1, 'b']]); the watch now gives it up.
    const entries: Entry[] = [
      { segment: 1, record: { type: 'queue-declared', name: 'a', settings: {} }, frameBytes: 100 },
      { segment: 1, record: { type: 'queue-declared', name: 'b', settings: {} }, frameBytes: 100 },
      { segment: 1, record: published(1, 'b'), frameBytes: NARROW_FRAME },
      {
        segment: 1,
        record: {
          type: 'moved', seq: 1, queue: 'a', headers: {}, failures: 1,
          availableAt: NOW, expiresAt: null,
        },
        frameBytes: NARROW_FRAME,
      },
      { segment: 1, record: { type: 'queue-deleted', name: 'a' }, frameBytes: NARROW_FRAME },
    ];
    assert.deepEqual(modelOf(entries), []);
    assert.deepEqual(restartAfter(entries, [4, 4, 4, 4, 4, 5, 5]), []);
  });

  it('after a fuzzy checkpoint during which a delete ended a message packed wide', () => {
    // What the property above found first. The row goes out wide, the
    // delete of `a` ends the message (left by a failed ack), and the wide
    // rows go out without it: loaded, the row has no queue, and the
    // replayed delete does not find it. Fails on 6a9509c ([[1, 'a']]).
    const entries: Entry[] = [
      { segment: 1, record: { type: 'queue-declared', name: 'a', settings: {} }, frameBytes: 100 },
      { segment: 1, record: published(1, 'a'), frameBytes: WIDE_FRAME },
      { segment: 1, record: { type: 'queue-deleted', name: 'a' }, frameBytes: NARROW_FRAME },
    ];
    assert.deepEqual(modelOf(entries), []);
    assert.deepEqual(restartAfter(entries, [2, 2, 2, 3, 3, 3, 3]), []);
  });

  it('after a full replay of what segment deletion leaves (a dead prefix)', () => {
    fc.assert(fc.property(logs, (steps) => {
      const entries = logOf(steps);
      const ledger = new Ledger();
      const segments = new Segments();
      applyEntries(ledger, segments, entries);
      // dead-segments.ts: the oldest segments with nothing live, the
      // newest always kept.
      const all = segments.all();
      let firstKept = 0;
      while (firstKept < all.length - 1 && all[firstKept].live === 0) firstKept++;
      const keptFrom = all[firstKept]?.id ?? 1;
      const left = entries.filter((e) => e.segment >= keptFrom);

      const replayed = new Ledger();
      applyEntries(replayed, new Segments(), left);
      assert.deepEqual(liveOf(replayed), modelOf(entries));
    }), runs);
  });

  it('after a fuzzy checkpoint that packed a row wide, replaced by a narrow copy before the wide rows', () => {
    // What the property above found first. The row goes out wide, the
    // narrow copy lands, and the wide rows go out without it: the loaded
    // row has no queue and is not counted. Fails on a1be018 (`left live
    // after every queue was deleted`: [[1, 'a']]): the copy's replay took
    // the row for queue 0's, took one from `a`'s count, and the delete of
    // `a` found none to look for.
    const entries: Entry[] = [
      { segment: 1, record: { type: 'queue-declared', name: 'a', settings: {} }, frameBytes: 100 },
      { segment: 1, record: published(1, 'a'), frameBytes: WIDE_FRAME },
      { segment: 1, record: published(1, 'a'), frameBytes: NARROW_FRAME },
    ];
    const ledger = new Ledger();
    applyEntries(ledger, new Segments(), entries.slice(0, 2));
    const rows = rowsAfter(ledger, -1, Infinity);
    applyEntries(ledger, new Segments(), entries.slice(2));
    const frames: Frames = {
      rows,
      names: [...ledger.queueNames],
      wide: copied([...ledger.wide]),
      changes: copied([...ledger.changes]),
    };
    assert.deepEqual([rows[0][1][3], frames.wide], [0xffff_ffff, []]);

    const segments = new Segments();
    const loaded = restore(frames, segments);
    applyEntries(loaded, segments, entries);
    assert.deepEqual(liveOf(loaded), [[1, 'a']]);
    deleteEveryQueue(loaded, segments);
  });
});
