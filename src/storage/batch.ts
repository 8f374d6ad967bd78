// One group commit of the log store (write-loop.ts): the records gathered
// while the previous batch is being written, and the promise every append
// that joins shares.
//
// Records are encoded straight into buffers of the batch's own, CHUNK_BYTES
// each (or one record's size, when larger): the write gets a few large
// pieces instead of a buffer per record, and no frame is allocated on its
// own. Nothing outside keeps a view of these buffers: a body kept in memory
// is the caller's, or a copy of its own (broker.ts), so a batch's memory
// goes once it has been written. A large body is not copied in: the
// caller's buffer is a piece of the write itself (BODY_APART_BYTES), so
// it must not change until the batch lands; bodies never do. The batch
// keeps what it writes, copy or buffer, so the caller's records may let
// go of their bodies once add() returns (broker.ts, publishBatch).

import { frameBytes, writeFrame, writeFrameHead } from './codec.js';
import type { LogRecord, PublishedRecord } from './records.js';
import { UuidTable } from './uuid-bytes.js';

// Under glibc's mmap threshold (128 KiB): a chunk comes from the heap and
// reuses its pages, rather than being mapped and zero-filled afresh.
const CHUNK_BYTES = 64 * 1024;
// A batch starts with a chunk its size and doubles from there. At a low
// rate a batch holds a record or two, and a fresh 64 KiB each (thousands a
// second) cost more than the copies saved: V8 counts them as external
// memory and collects garbage more often, which showed in the p99 of a
// fixed 5,000 msg/s (bench:amqp --only latency).
const FIRST_CHUNK_BYTES = 1024;
// A body this large is written from its own buffer, a piece of the
// writev, and not copied into a chunk: copying 16 KiB bodies, and the
// chunks that held them, were a tenth of the broker's CPU in a durable
// publish. Smaller ones cost less to copy than a piece and a checksum
// call of their own.
const BODY_APART_BYTES = 4 * 1024;

// Chunks of landed batches, reused by the next ones. Allocated afresh,
// a 64 KiB chunk (one every ~120 ticket events) cost a malloc and a free,
// the page faults and zeroing of memory given back and taken again, and
// V8's count of external memory, which brings collections forward. At
// most MAX_SPARE_CHUNKS are kept: 4 MiB, a few batches' worth, held while
// the log is idle.
const MAX_SPARE_CHUNKS = 64;
const spareChunks: Buffer[] = [];
// Id tables of landed batches, likewise: a few batches live at once, the
// one gathering and those in flight.
const MAX_SPARE_TABLES = 4;
const spareTables: UuidTable[] = [];

export class Batch {
  readonly records: LogRecord[] = [];
  /** Frame bytes of each record, in order. */
  readonly frameBytes: number[] = [];
  /** Bytes of all the frames. */
  bytes = 0;
  /** Some append in the batch wants it on disk, not only in the OS. */
  sync = false;
  /** Some append in the batch has a caller waiting for its answer. */
  awaited = false;
  /** Nobody awaits it, and it has waited its while to ride with a synced batch (write-loop.ts). */
  waited = false;
  waitTimer: NodeJS.Timeout | undefined;
  /** Compaction copies in this batch. */
  copies = 0;
  /**
   * The id of each `published` record, by its index in `records`: read
   * once as the record is measured, copied into its frame and, once the
   * batch lands, into the ledger's recent ids.
   */
  readonly ids = spareTables.pop() ?? new UuidTable();

  /** Filled parts of chunks, in log order. */
  readonly #pieces: Buffer[] = [];
  /** The chunks of CHUNK_BYTES, given back to spareChunks once landed. */
  readonly #fullChunks: Buffer[] = [];
  #chunk: Buffer | null = null;
  /** Where the unsealed piece of #chunk starts, and its first free byte. */
  #pieceStart = 0;
  #at = 0;
  #nextChunkBytes = FIRST_CHUNK_BYTES;

  #promise: Promise<void> | undefined;
  #resolve: () => void = noop;
  #reject: (err: Error) => void = noop;

  get isEmpty(): boolean {
    return this.records.length === 0;
  }

  get promise(): Promise<void> {
    this.#promise ??= new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    return this.#promise;
  }

  /**
   * Encodes `records` into the batch, in order. Every record is measured
   * first, so one that cannot be encoded (too large) throws here and
   * nothing of the call joins the batch.
   */
  add(records: readonly LogRecord[]): void {
    // The sizes go straight into frameBytes, taken out again if one throws:
    // no array of sizes a call.
    const first = this.frameBytes.length;
    let left = 0;
    try {
      for (let i = 0; i < records.length; i++) {
        const record = records[i];
        if (record.type === 'published') this.ids.put(first + i, record.id);
        const size = frameBytes(record, this.ids, first + i);
        this.frameBytes.push(size);
        left += size;
      }
    } catch (err) {
      this.frameBytes.length = first;
      throw err;
    }

    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      const size = this.frameBytes[first + i];
      const body = record.type === 'published' && record.body.length >= BODY_APART_BYTES
        ? record.body
        : null;
      const inChunk = body === null ? size : size - body.length;
      const chunk = this.#room(inChunk, left);
      left -= size;
      if (body === null) {
        writeFrame(record, chunk, this.#at, size, this.ids, first + i);
        this.#at += size;
      } else {
        writeFrameHead(record as PublishedRecord, chunk, this.#at, size, this.ids, first + i);
        this.#at += inChunk;
        this.#seal();
        this.#pieces.push(body);
      }
      this.records.push(record);
      this.bytes += size;
    }
  }

  /** The frames as a few buffers, for one writev; call once, when full. */
  buffers(): Buffer[] {
    this.#seal();
    this.#chunk = null;
    return this.#pieces;
  }

  /** The batch landed: its chunks are written and nothing reads them again. */
  resolve(): void {
    clearTimeout(this.waitTimer);
    for (const chunk of this.#fullChunks) {
      if (spareChunks.length < MAX_SPARE_CHUNKS) spareChunks.push(chunk);
    }
    this.#fullChunks.length = 0;
    if (spareTables.length < MAX_SPARE_TABLES) spareTables.push(this.ids);
    this.#resolve();
  }

  reject(err: Error): void {
    clearTimeout(this.waitTimer);
    this.#reject(err);
  }

  /** A chunk with `size` bytes free at #at; `wanted`: what the caller has left to add. */
  #room(size: number, wanted: number): Buffer {
    if (this.#chunk !== null && this.#chunk.length - this.#at >= size) return this.#chunk;
    this.#seal();
    const capacity = Math.max(size, Math.min(CHUNK_BYTES, Math.max(wanted, this.#nextChunkBytes)));
    this.#nextChunkBytes = Math.min(CHUNK_BYTES, capacity * 2);
    if (capacity === CHUNK_BYTES) {
      this.#chunk = spareChunks.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
      this.#fullChunks.push(this.#chunk);
    } else {
      this.#chunk = Buffer.allocUnsafeSlow(capacity);
    }
    this.#pieceStart = 0;
    this.#at = 0;
    return this.#chunk;
  }

  #seal(): void {
    if (this.#chunk !== null && this.#at > this.#pieceStart) {
      this.#pieces.push(this.#chunk.subarray(this.#pieceStart, this.#at));
    }
    this.#pieceStart = this.#at;
  }
}

function noop(): void {}
