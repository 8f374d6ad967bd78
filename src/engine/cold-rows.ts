// What the cold tier must know of a cold message beyond its place in a
// deque (cold-backlog.ts): the scheduling fields that may differ from its
// `published` record on disk. A delayed message (its due time), a retried
// one (its attempts and due time) and every cold message of a FIFO queue
// (its group) have a row here; a plain new publish of a best-effort queue
// has none and costs only its deque entry.
//
// Rows live in a SeqTable (typed arrays, about 29 bytes a row, no JS
// object per message), keyed by seq. Delayed rows are also in a min-heap
// of (due time, seq) pairs in one Float64Array. Removing a row leaves its
// heap entry behind; entries are checked against the row when they come
// up, and the heap is rebuilt once stale entries outnumber live ones.
//
// A reject-lowest-priority queue gives every cold message a row, for the
// number of when it became waiting (ORDER, waiting-order.ts); a plain one
// is marked ORDER_ONLY, its record holding its attempts and due time.
//
// For a checkpoint (issue #3) these columns are the whole cold state of a
// queue beside its deques: seq, priority, delayed flag, body bytes,
// failures, group, due time and wait number.

import { SeqTable } from '../storage/seq-table.js';

const META = 0;
const BYTES = 1;
const FAILURES = 2;
const GROUP = 3;
const DUE_HIGH = 4;
const DUE_LOW = 5;
// Only a reject-lowest-priority queue's rows have ORDER: 4 bytes a row
// (8 B/message of heap in bench:cold) that other queues do not pay.
const ORDER = 6;
const WIDTH = 6;
const ORDERED_WIDTH = 7;

const PRIORITY_MASK = 0x0f;
const DELAYED = 0x10;
const ORDER_ONLY = 0x20;
const TWO_TO_32 = 2 ** 32;

/** One cold row, as handed in and out (never stored as an object). */
export interface ColdRow {
  seq: number;
  priority: number;
  bytes: number;
  failures: number;
  /** Group id (fifo-groups.ts); 0 in a best-effort queue. */
  group: number;
  /** availableAt: due time of a delayed one, past for a ready one. */
  availableAt: number;
  delayed: boolean;
  /** When it became waiting, in a reject-lowest-priority queue; else 0. */
  order: number;
  /** Kept only for `order`: failures and availableAt are its record's. */
  orderOnly: boolean;
}

export class ColdRows {
  readonly #table: SeqTable;
  readonly #values: number[];
  readonly #ordered: boolean;
  readonly #timers = new TimerHeap();
  /** Rows whose message waits for its due time. */
  delayed = 0;

  /** `ordered`: rows keep their wait number (a reject-lowest-priority queue). */
  constructor(ordered = false) {
    const width = ordered ? ORDERED_WIDTH : WIDTH;
    this.#ordered = ordered;
    this.#table = new SeqTable(width);
    this.#values = new Array<number>(width).fill(0);
  }

  get count(): number {
    return this.#table.size;
  }

  has(seq: number): boolean {
    return this.#table.has(seq);
  }

  put(row: ColdRow): void {
    const values = this.#values;
    values[META] = row.priority | (row.delayed ? DELAYED : 0) | (row.orderOnly ? ORDER_ONLY : 0);
    values[BYTES] = row.bytes;
    values[FAILURES] = row.failures;
    values[GROUP] = row.group;
    values[DUE_HIGH] = Math.floor(row.availableAt / TWO_TO_32);
    values[DUE_LOW] = row.availableAt % TWO_TO_32;
    if (this.#ordered) values[ORDER] = row.order;
    // No get(): a restart puts millions of new rows, and its object each
    // was a fifth of the time.
    const replaced = this.#table.find(row.seq);
    if (replaced !== undefined && (this.#table.col(replaced, META) & DELAYED) !== 0) this.delayed--;
    this.#table.put(row.seq, values);
    if (row.delayed) {
      this.delayed++;
      this.#timers.push(row.availableAt, row.seq);
    }
  }

  get(seq: number): ColdRow | undefined {
    const table = this.#table;
    const ref = table.find(seq);
    if (ref === undefined) return undefined;
    const meta = table.col(ref, META);
    return {
      seq,
      priority: meta & PRIORITY_MASK,
      bytes: table.col(ref, BYTES),
      failures: table.col(ref, FAILURES),
      group: table.col(ref, GROUP),
      availableAt: table.col(ref, DUE_HIGH) * TWO_TO_32 + table.col(ref, DUE_LOW),
      delayed: (meta & DELAYED) !== 0,
      order: this.#ordered ? table.col(ref, ORDER) : 0,
      orderOnly: (meta & ORDER_ONLY) !== 0,
    };
  }

  /** Takes the row of `seq` out; what it was, or undefined. */
  remove(seq: number): ColdRow | undefined {
    const row = this.get(seq);
    if (row === undefined) return undefined;
    this.#table.delete(seq);
    if (row.delayed) this.delayed--;
    if (this.#timers.size > 1024 && this.#timers.size > 2 * this.delayed) this.#rebuildTimers();
    return row;
  }

  /** The earliest due time of a delayed row, or null. */
  nextDue(): number | null {
    for (;;) {
      const top = this.#timers.peek();
      if (top === undefined) return null;
      if (this.#isCurrent(top.at, top.seq)) return top.at;
      this.#timers.pop();
    }
  }

  /** Marks delayed rows due by `now` ready and returns them, earliest first. */
  due(now: number): ColdRow[] {
    const ready: ColdRow[] = [];
    for (let at = this.nextDue(); at !== null && at <= now; at = this.nextDue()) {
      const { seq } = this.#timers.pop() as { seq: number };
      const row = this.get(seq) as ColdRow;
      const ref = this.#table.find(seq);
      const meta = row.priority | (row.orderOnly ? ORDER_ONLY : 0);
      if (ref !== undefined) this.#table.setCol(ref, META, meta);
      this.delayed--;
      row.delayed = false;
      ready.push(row);
    }
    return ready;
  }

  /** Every seq with a row, in seq order; `onlyDelayed` for delayed ones. */
  seqs(onlyDelayed = false): number[] {
    const seqs: number[] = [];
    const table = this.#table;
    table.forEach((seq, ref) => {
      if (!onlyDelayed || (table.col(ref, META) & DELAYED) !== 0) seqs.push(seq);
    });
    return seqs;
  }

  /** The lowest seq with a row, or undefined. */
  first(): number | undefined {
    let first: number | undefined;
    this.#table.forEach((seq) => {
      first = seq;
      return false;
    });
    return first;
  }

  clear(): void {
    this.#table.clear();
    this.#timers.clear();
    this.delayed = 0;
  }

  #isCurrent(at: number, seq: number): boolean {
    const row = this.get(seq);
    return row !== undefined && row.delayed && row.availableAt === at;
  }

  #rebuildTimers(): void {
    const live: Array<[number, number]> = [];
    const table = this.#table;
    table.forEach((seq, ref) => {
      if ((table.col(ref, META) & DELAYED) === 0) return;
      live.push([table.col(ref, DUE_HIGH) * TWO_TO_32 + table.col(ref, DUE_LOW), seq]);
    });
    this.#timers.clear();
    for (const [at, seq] of live) this.#timers.push(at, seq);
  }
}

/** A binary min-heap of (time, seq) pairs in one growing Float64Array. */
class TimerHeap {
  #pairs = new Float64Array(64);
  size = 0;

  peek(): { at: number; seq: number } | undefined {
    if (this.size === 0) return undefined;
    return { at: this.#pairs[0], seq: this.#pairs[1] };
  }

  push(at: number, seq: number): void {
    if (2 * this.size === this.#pairs.length) {
      const grown = new Float64Array(this.#pairs.length * 2);
      grown.set(this.#pairs);
      this.#pairs = grown;
    }
    let index = this.size++;
    const pairs = this.#pairs;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(at, seq, pairs[2 * parent], pairs[2 * parent + 1])) break;
      pairs[2 * index] = pairs[2 * parent];
      pairs[2 * index + 1] = pairs[2 * parent + 1];
      index = parent;
    }
    pairs[2 * index] = at;
    pairs[2 * index + 1] = seq;
  }

  pop(): { at: number; seq: number } | undefined {
    const top = this.peek();
    if (top === undefined) return undefined;
    const pairs = this.#pairs;
    const last = --this.size;
    const at = pairs[2 * last];
    const seq = pairs[2 * last + 1];
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= last) break;
      const right = left + 1;
      const child = right < last &&
        before(pairs[2 * right], pairs[2 * right + 1], pairs[2 * left], pairs[2 * left + 1])
        ? right
        : left;
      if (!before(pairs[2 * child], pairs[2 * child + 1], at, seq)) break;
      pairs[2 * index] = pairs[2 * child];
      pairs[2 * index + 1] = pairs[2 * child + 1];
      index = child;
    }
    pairs[2 * index] = at;
    pairs[2 * index + 1] = seq;
    if (this.#pairs.length > 1024 && 8 * this.size < this.#pairs.length) {
      this.#pairs = this.#pairs.slice(0, this.#pairs.length / 2);
    }
    return top;
  }

  clear(): void {
    this.#pairs = new Float64Array(64);
    this.size = 0;
  }
}

function before(at: number, seq: number, otherAt: number, otherSeq: number): boolean {
  return at !== otherAt ? at < otherAt : seq < otherSeq;
}
