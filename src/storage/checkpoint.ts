// Checkpoints: the ledger written to a file (format in checkpoint-file.ts)
// so that a restart loads it and replays only the log after the position
// it covers, instead of every record of every live segment. Restart time
// then follows the live messages, not the log's history.
//
// Writing. The store begins a checkpoint between two batches, once enough
// log has been written since the last one (Checkpointer.wrote). At that
// moment the ledger holds exactly the records up to the end of the active
// segment: that is the position P the checkpoint covers. The rows are then
// written a chunk at a time, yielding to the event loop between chunks, so
// batches keep landing and changing the ledger while the file is written.
// The file is therefore fuzzy: a row may show a record after P. That is
// safe because replaying the records after P over it ends in the same
// state: each record sets what it changes (a row, a change's fields, a
// queue) or deletes it; none adds to what is there. All but one: a
// `queue-deleted` record ends whatever the ledger holds in its queue
// (ledger.ts), and a fuzzy file may hold there a message moved in after
// the delete, into a queue made again under the name (a dead letter, a
// redrive). Replayed over the file, the delete ended it and the `moved`
// record after found nothing to move: the message was lost. The other
// way round, a delete that ended a message left live (an ack that failed
// as it was written) may not find it in the file: its row went out
// before the delete, in its queue of before a `moved` record, and the
// change naming the queue it was ended in was gone by the time the
// changes went out; replayed, the delete left it live. So a checkpoint
// during which such a move or such a delete landed is given up
// (Ledger.watchDeletes), and the next one tried after the usual amount
// of log. Deletes alone do not give one up: exclusive and auto-delete
// queues go many times a minute, nearly always settling every message
// in their own write, and a `published` record replayed after its
// queue's delete puts the message back whole. Before the file is
// renamed into place everything the ledger held is made durable, so the
// checkpoint never names a record the log could lose.
//
// Loading is in checkpoint-load.ts.

import { open, readdir, rename, unlink } from 'node:fs/promises';
import { endianness } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  type CheckpointMeta,
  FrameKind,
  type LogPosition,
  checkpointPath,
  encodeHeader,
  endFrame,
  jsonFrame,
  listCheckpoints,
  sealInPlace,
} from './checkpoint-file.js';
import { canPackRecent, packRecent } from './checkpoint-recent.js';
import { RowPacker } from './checkpoint-rows.js';
import { type Ledger, type RecentCopy, type RecentSnapshot, recentIdAt } from './ledger.js';
import type { StoreLogger } from './log-store-types.js';
import { fsyncDir } from './segment-file.js';
import { UUID_BYTES } from './uuid-bytes.js';

export interface CheckpointOptions {
  /** false: write none and ignore those on disk (full replay). Default true. */
  enabled?: boolean;
  /** Log bytes written before the next checkpoint begins, at least. Default 64 MiB. */
  minBytes?: number;
  /**
   * ...and at least this many times the size of the last checkpoint, so
   * that checkpoints add at most about 1/ratio to the bytes written
   * whatever their rows pack to. Default 8.
   */
  ratio?: number;
  /**
   * ...and at least this share of the log bytes of the live messages
   * (their `published` frames), so that checkpoints come further apart as
   * the backlog grows: a start after a crash replays at most this share
   * of the live data (or minBytes), and while a backlog grows each
   * checkpoint comes when it is 1 / (1 - share) times the last, so all of
   * them add up to about 1 / share times the last one. Default 0.25.
   */
  liveShare?: number;
}

/** What the writer needs from the store. */
export interface CheckpointSource {
  readonly ledger: Ledger;
  /** The end of the log as the ledger knows it; asked between batches. */
  position(): LogPosition;
  lastSeq(): number;
  /** Resolves once every record the ledger holds is durable. */
  whenDurable(): Promise<void>;
}

export interface CheckpointStats {
  checkpointsWritten: number;
  checkpointsFailed: number;
  /** Size and time of the last one written. */
  checkpointBytes: number;
  /** Bytes of every checkpoint written, on top of the log's own. */
  checkpointBytesWritten: number;
  checkpointMs: number;
  /** Longest stretch the writer held the event loop, over all checkpoints. */
  checkpointMaxStallMs: number;
}

const DEFAULT_MIN_BYTES = 64 * 1024 * 1024;
const DEFAULT_RATIO = 8;
const DEFAULT_LIVE_SHARE = 0.25;
/** Rows per frame: at most 464 KiB packed, a millisecond or two of work. */
const ROWS_PER_FRAME = 16 * 1024;
/** Changes and recent ids per JSON frame. */
const ENTRIES_PER_FRAME = 4096;
/** The newest checkpoints kept: the last and one to fall back to. */
const KEEP = 2;

/**
 * Rows go to and from the file as typed arrays, which use the host's byte
 * order; the format says little-endian, so a big-endian host neither
 * writes nor loads checkpoints (it replays the whole log).
 */
export const CHECKPOINTS_SUPPORTED = endianness() === 'LE';

export class Checkpointer {
  readonly #dir: string;
  readonly #minBytes: number;
  readonly #ratio: number;
  readonly #liveShare: number;
  readonly #logger: StoreLogger;
  readonly #source: CheckpointSource;
  #bytesSince = 0;
  #lastBytes = 0;
  #running: Promise<void> | undefined;
  readonly #stats: CheckpointStats = {
    checkpointsWritten: 0,
    checkpointsFailed: 0,
    checkpointBytes: 0,
    checkpointBytesWritten: 0,
    checkpointMs: 0,
    checkpointMaxStallMs: 0,
  };

  constructor(
    dir: string,
    options: CheckpointOptions,
    logger: StoreLogger,
    source: CheckpointSource,
  ) {
    this.#dir = dir;
    this.#minBytes = options.minBytes ?? DEFAULT_MIN_BYTES;
    this.#ratio = options.ratio ?? DEFAULT_RATIO;
    this.#liveShare = options.liveShare ?? DEFAULT_LIVE_SHARE;
    this.#logger = logger;
    this.#source = source;
  }

  /** Counts `bytes` of log read at open as not yet covered by a checkpoint. */
  replayed(bytes: number): void {
    this.#bytesSince += bytes;
  }

  /** `bytes` more of log landed; call between batches. May begin a checkpoint. */
  wrote(bytes: number): void {
    this.#bytesSince += bytes;
    if (this.#running !== undefined) return;
    const due = Math.max(
      this.#minBytes,
      this.#ratio * this.#lastBytes,
      this.#liveShare * this.#source.ledger.liveBytes,
    );
    if (this.#bytesSince < due) return;
    this.#begin();
  }

  /**
   * At close, with the log synced and idle: waits for a checkpoint being
   * written, then writes one covering the end of the log if anything was
   * written since.
   */
  async finish(): Promise<void> {
    if (this.#running !== undefined) await this.#running;
    if (this.#bytesSince > 0) {
      this.#begin();
      await this.#running;
    }
  }

  /** Resolves once the checkpoint being written, if any, is done (never rejects). */
  async whenIdle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  stats(): CheckpointStats {
    return { ...this.#stats };
  }

  #begin(): void {
    this.#bytesSince = 0;
    this.#running = this.#write().finally(() => {
      this.#running = undefined;
    });
  }

  // Never rejects: a checkpoint that cannot be written is logged and the
  // next one tried later; the log alone is always enough to start.
  async #write(): Promise<void> {
    const began = performance.now();
    const source = this.#source;
    const position = source.position();
    const final = checkpointPath(this.#dir, position);
    const temp = `${final}.tmp`;
    const meta: CheckpointMeta = { ...position, lastSeq: source.lastSeq(), createdAt: Date.now() };
    const writer = new StallMeter();
    // Taken with the position, before anything awaits: the queues as
    // declared at P, and the recent ids (a replay after P adds its own,
    // so any later ones would count twice).
    writer.start();
    const ledger = source.ledger;
    const queues = jsonFrame(FrameKind.Queues, [...ledger.queues]);
    const recent = ledger.recentSnapshot();
    ledger.watchDeletes();
    writer.stop();
    let file: Awaited<ReturnType<typeof open>> | undefined;
    try {
      file = await open(temp, 'w');
      let at = 0;
      let frames = 0;
      const put = async (buf: Buffer) => {
        let done = 0;
        while (done < buf.length) {
          const { bytesWritten } = await file!.write(buf, done, buf.length - done, at + done);
          done += bytesWritten;
        }
        at += buf.length;
      };
      const putFrame = async (frame: Buffer) => {
        await put(frame);
        frames++;
      };

      await put(encodeHeader());
      await putFrame(jsonFrame(FrameKind.Meta, meta));
      await putFrame(queues);

      const rows = await this.#writeRows(ledger, writer, putFrame);

      // After the rows, so every queue index they name is in the list.
      writer.start();
      const names = jsonFrame(FrameKind.Names, ledger.queueNames);
      writer.stop();
      await putFrame(names);
      const wide = mapFrames(FrameKind.Wide, ledger.wide, writer);
      for await (const frame of wide) await putFrame(frame);
      const changes = mapFrames(FrameKind.Changes, ledger.changes, writer);
      for await (const frame of changes) await putFrame(frame);
      if (ledger.endWatch()) {
        throw new Error(
          'a queue was deleted while the checkpoint was written and a message moved into ' +
            'it since, or one left live ended by the delete: the replayed delete could end ' +
            'a message the file shows there, or miss one it shows elsewhere',
        );
      }
      for await (const frame of recentFrames(recent, writer)) await putFrame(frame);
      await putFrame(endFrame(rows, frames));
      await file.sync();
      await file.close();
      file = undefined;

      // Rows may show records of batches that landed while the file was
      // written; in `os` mode those may not be on disk yet.
      await source.whenDurable();
      await rename(temp, final);
      await fsyncDir(this.#dir);

      this.#lastBytes = at;
      const ms = performance.now() - began;
      this.#stats.checkpointsWritten++;
      this.#stats.checkpointBytes = at;
      this.#stats.checkpointBytesWritten += at;
      this.#stats.checkpointMs = ms;
      this.#stats.checkpointMaxStallMs = Math.max(this.#stats.checkpointMaxStallMs, writer.max);
      this.#logger.info(
        { file: final, rows, bytes: at, ms: Math.round(ms), maxStallMs: round2(writer.max) },
        'checkpoint written',
      );
      await this.#deleteOld();
    } catch (err) {
      ledger.endWatch();
      this.#stats.checkpointsFailed++;
      this.#logger.warn({ err, file: temp }, 'writing a checkpoint failed; the log is still whole');
      await file?.close().catch(noop);
      await unlink(temp).catch(noop);
    }
  }

  // Rows go out ROWS_PER_FRAME at a time, each chunk packed from the
  // ledger in one synchronous step into one reused buffer
  // (checkpoint-rows.ts); the write in between lets the event loop run.
  // The chunk resumes after the last seq written, so rows added or removed
  // meanwhile do not shift it.
  async #writeRows(
    ledger: Ledger,
    writer: StallMeter,
    putFrame: (frame: Buffer) => Promise<void>,
  ): Promise<number> {
    const packer = new RowPacker(ROWS_PER_FRAME);
    let after = -1;
    let total = 0;
    for (;;) {
      writer.start();
      ledger.forEachRunAfter(after, (run) => packer.addRun(run));
      const count = packer.count;
      if (count > 0) after = packer.lastSeq;
      const frame = count > 0 ? sealInPlace(packer.take(FrameKind.PackedRows)) : undefined;
      writer.stop();
      if (frame === undefined) return total;
      await putFrame(frame);
      total += count;
      if (count < ROWS_PER_FRAME) return total;
    }
  }

  async #deleteOld(): Promise<void> {
    const old = listCheckpoints(await readdir(this.#dir), this.#dir).slice(KEEP);
    for (const file of old) {
      await unlink(file.path).catch((err) => {
        this.#logger.warn({ err, file: file.path }, 'deleting an old checkpoint failed');
      });
    }
  }
}

// Wide rows, changes and recent ids are JSON, a frame per
// ENTRIES_PER_FRAME. A Map iterator stays valid across the awaits in
// between: entries deleted meanwhile are skipped, ones added are visited.
async function* mapFrames<V>(
  kind: FrameKind,
  map: ReadonlyMap<number, V>,
  writer: StallMeter,
): AsyncGenerator<Buffer> {
  const entries = map.entries();
  for (;;) {
    writer.start();
    const batch: Array<[number, V]> = [];
    for (let next = entries.next(); !next.done; next = entries.next()) {
      batch.push(next.value);
      if (batch.length === ENTRIES_PER_FRAME) break;
    }
    const frame = batch.length > 0 ? jsonFrame(kind, batch) : undefined;
    writer.stop();
    if (frame === undefined) return;
    yield frame;
    if (batch.length < ENTRIES_PER_FRAME) return;
  }
}

async function* recentFrames(
  recent: RecentCopy[],
  writer: StallMeter,
): AsyncGenerator<Buffer> {
  for (const { queue, lastSeq, ids, uuids, times } of recent) {
    // One frame at least: it carries lastSeq even with no ids.
    for (let at = 0; at === 0 || at < ids.length; at += ENTRIES_PER_FRAME) {
      writer.start();
      const end = Math.min(at + ENTRIES_PER_FRAME, ids.length);
      const piece: RecentCopy = {
        queue,
        lastSeq,
        ids: ids.slice(at, end),
        uuids: uuids.subarray(UUID_BYTES * at, UUID_BYTES * end),
        times: times.slice(at, end),
      };
      const frame = canPackRecent(piece)
        ? packRecent(piece)
        : jsonFrame(FrameKind.Recent, spelledOut(piece));
      writer.stop();
      yield frame;
    }
  }
}

/** A piece of a RecentCopy with every id a string, for a JSON frame. */
function spelledOut(piece: RecentCopy): RecentSnapshot {
  const ids = piece.ids.map((_, index) => recentIdAt(piece, index));
  return { queue: piece.queue, lastSeq: piece.lastSeq, ids, times: Array.from(piece.times) };
}

/** The longest synchronous stretch between start() and stop(). */
class StallMeter {
  max = 0;
  #began = 0;

  start(): void {
    this.#began = performance.now();
  }

  stop(): void {
    this.max = Math.max(this.max, performance.now() - this.#began);
  }
}

function round2(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function noop(): void {}
