// A background check of the segments a checkpoint covers (issue #3). A
// start from a checkpoint reads only the log after the checkpoint's
// position (recovery.ts), so a bit flipped or a stretch torn in an older
// segment would otherwise be found only when the message it hit is read
// back, and not counted with the damage a full replay finds. The scrub
// reads those segments after the store has opened, checking every
// frame's length and CRC as replay would, and reports what it finds.
//
// It stays off the critical path: it starts a turn after open, reads one
// chunk at a time with async reads (the event loop runs between them;
// the work done in a turn is the CRCs of the frames in one chunk, about
// 1 ms for 1 MiB of ticket events), and stop() makes it end at the next
// chunk. Reads go through the page
// cache: a segment the log wrote recently costs no disk read.
//
// After a bad frame the next whole one is searched for as replay does
// (resync.ts), in a window of at most 4 MiB, and the walk goes on from
// there, so the stretches counted are those a full replay would skip.
// A stretch longer than the window sends the segment to replay's own
// read (readSegment), which holds the rest of it in memory and decodes
// it on the event loop: about half a second for a 64 MiB segment on a
// loaded machine. TODO(#3): search a chunk at a time there too.

import { type FileHandle, open } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { FRAME_HEADER_BYTES, MAX_RECORD_BYTES } from './codec.js';
import { crc32c } from './crc32c.js';
import type { StoreLogger } from './log-store-types.js';
import { Resync } from './resync.js';
import {
  type Damage,
  SEGMENT_HEADER_BYTES,
  isSoundHeader,
  readSegment,
} from './segment-file.js';

/** Bytes read and checked per turn of the event loop. */
const CHUNK_BYTES = 1024 * 1024;
/**
 * Bytes after a bad frame searched for the next whole one (resync.ts).
 * A longer damaged stretch, or a frame larger than this just after one,
 * sends the segment to replay's own search over all of it.
 */
const RESYNC_WINDOW_BYTES = 4 * 1024 * 1024;

/** One segment to check, from its header up to `end` (a frame boundary). */
export interface ScrubTarget {
  id: number;
  path: string;
  end: number;
}

export interface ScrubStats {
  /** 1 while a scrub runs. */
  scrubRunning: number;
  /** Scrubs that checked every segment they were given. */
  scrubsCompleted: number;
  /** Bytes of segments checked, over every scrub. */
  scrubbedBytes: number;
}

export interface ScrubOptions {
  logger: StoreLogger;
  /** Damage found in one segment: stretches below its target's end. */
  onDamage(target: ScrubTarget, damage: Damage[]): void;
}

export class Scrubber {
  readonly #logger: StoreLogger;
  readonly #onDamage: ScrubOptions['onDamage'];
  #running: Promise<void> | undefined;
  #stopping = false;
  #completed = 0;
  #bytes = 0;

  constructor({ logger, onDamage }: ScrubOptions) {
    this.#logger = logger;
    this.#onDamage = onDamage;
  }

  /**
   * Checks `targets` in the background, oldest first; false if a scrub
   * already runs (or the scrubber is stopped), which then goes on alone.
   */
  start(targets: readonly ScrubTarget[]): boolean {
    if (this.#running !== undefined || this.#stopping) return false;
    this.#running = this.#run(targets).finally(() => {
      this.#running = undefined;
    });
    return true;
  }

  /** Resolves once the scrub that runs (if any) is over. */
  whenIdle(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  /** Ends the scrub that runs at its next chunk; starts no other. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#running;
  }

  stats(): ScrubStats {
    return {
      scrubRunning: this.#running === undefined ? 0 : 1,
      scrubsCompleted: this.#completed,
      scrubbedBytes: this.#bytes,
    };
  }

  async #run(targets: readonly ScrubTarget[]): Promise<void> {
    // Not in the turn that opened the store: what it starts comes first.
    await nextTurn();
    const began = Date.now();
    let bytes = 0;
    let regions = 0;
    for (const target of targets) {
      if (this.#stopping) break;
      try {
        const found = await this.#scrubSegment(target);
        if (found === undefined) break;
        bytes += found.bytes;
        this.#bytes += found.bytes;
        if (found.damage.length === 0) continue;
        regions += found.damage.length;
        this.#onDamage(target, found.damage);
      } catch (err) {
        // Deleted meanwhile: it held no live message, nothing to lose.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        this.#logger.warn({ err, file: target.path }, 'scrub could not read segment');
      }
    }
    if (this.#stopping) {
      this.#logger.info({ bytes, regions }, 'scrub stopped before the end');
      return;
    }
    this.#completed++;
    const summary = { segments: targets.length, bytes, regions, ms: Date.now() - began };
    if (regions > 0) this.#logger.error(summary, 'scrub found damaged log segments');
    else if (targets.length === 0) {
      // Not "no damage": nothing was read. The active segment is not a
      // scrub's to check; a start replays it, checking every frame.
      this.#logger.info(summary, 'scrub had nothing to check: no sealed segment yet');
    } else this.#logger.info(summary, 'scrub found no damage');
  }

  // Checks one segment's frames up to target.end. Undefined if stopped
  // before the end; else the bytes checked and the damage below the end.
  async #scrubSegment(
    target: ScrubTarget,
  ): Promise<{ bytes: number; damage: Damage[] } | undefined> {
    const file = await open(target.path, 'r');
    let scanned: Damage[] | 'unsure' | undefined;
    try {
      scanned = await this.#scan(file, target);
    } finally {
      await file.close();
    }
    if (scanned === undefined) return undefined;
    if (scanned !== 'unsure') return { bytes: target.end, damage: scanned };

    // The slow path: the search replay uses, over the whole segment, and
    // only what lies below the end counted (the rest was replayed at open).
    let damage: Damage[];
    try {
      const scan = await readSegment(target.path, noop, { copyBodies: false });
      damage = scan.damage.filter((stretch) => stretch.offset < target.end);
    } catch (err) {
      // A header that is not ours: replay would refuse the segment whole.
      const reason = err instanceof Error ? err.message : String(err);
      damage = [{ offset: 0, bytes: target.end, reason }];
    }
    return { bytes: target.end, damage };
  }

  // The damaged stretches below target.end; undefined if stopped first;
  // 'unsure' when only replay's search over the whole segment can tell
  // (a bad header, a stretch longer than RESYNC_WINDOW_BYTES). Frames are
  // walked in place in each chunk; one cut by the chunk's end is read
  // again at the start of the next.
  async #scan(file: FileHandle, target: ScrubTarget): Promise<Damage[] | 'unsure' | undefined> {
    const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
    const read = await file.read(header, 0, header.length, 0);
    if (read.bytesRead < header.length || !isSoundHeader(header)) return 'unsure';

    const damage: Damage[] = [];
    let buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let position = SEGMENT_HEADER_BYTES;
    while (position < target.end) {
      if (this.#stopping) return undefined;
      const want = Math.min(buffer.length, target.end - position);
      const { bytesRead } = await file.read(buffer, 0, want, position);
      const chunk = buffer.subarray(0, bytesRead);
      const walked = walkFrames(chunk);
      position += walked.bytes;
      let reason = walked.bad;
      if (reason === undefined && walked.bytes === 0) {
        // Not one whole frame in the chunk: larger than the buffer, or cut
        // short by the end (a file shorter than the checkpoint says, too).
        const frameBytes = bytesRead < FRAME_HEADER_BYTES
          ? Number.POSITIVE_INFINITY
          : FRAME_HEADER_BYTES + chunk.readUInt32LE(0);
        if (position + frameBytes <= target.end && bytesRead === want) {
          buffer = Buffer.allocUnsafe(frameBytes);
          continue;
        }
        reason = `torn frame: ${target.end - position} bytes at the end`;
      }
      if (buffer.length > CHUNK_BYTES) buffer = Buffer.allocUnsafe(CHUNK_BYTES);

      if (reason !== undefined) {
        const next = await this.#resync(file, position, target.end);
        if (next === 'unsure') return 'unsure';
        damage.push({ offset: position, bytes: next - position, reason });
        position = next;
      }
      // Nothing else is asked of the disk meanwhile: a scrub that found
      // everything in the page cache still lets the loop turn.
      await nextTurn();
    }
    return damage;
  }

  // Where the first whole frame after the bad one at `bad` starts (or
  // `end` when none does), found as replay finds it (resync.ts) within a
  // window of RESYNC_WINDOW_BYTES read for it: a small damage costs a
  // short search, not one over the rest of the segment. 'unsure' when the
  // window ends before `end` with no frame found in it.
  async #resync(file: FileHandle, bad: number, end: number): Promise<number | 'unsure'> {
    const length = Math.min(RESYNC_WINDOW_BYTES, end - bad);
    const window = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await file.read(window, filled, length - filled, bad + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const found = new Resync(window.subarray(0, filled)).next(1);
    if (found.kind === 'found') return bad + found.offset;
    return bad + length === end && found.kind === 'none' ? end : 'unsure';
  }
}

// Whole frames at the start of `chunk` that check out, and why the walk
// stopped if at a bad one (rather than at one cut by the chunk's end).
// The checks are FrameDecoder's, but the payload is not decoded: a frame
// whose checksum holds was written as it is.
function walkFrames(chunk: Buffer): { bytes: number; bad: string | undefined } {
  let at = 0;
  while (at + FRAME_HEADER_BYTES <= chunk.length) {
    const length = chunk.readUInt32LE(at);
    if (length === 0) return { bytes: at, bad: 'frame has an empty payload' };
    if (length > MAX_RECORD_BYTES) {
      return { bytes: at, bad: `frame length ${length} exceeds the limit of ${MAX_RECORD_BYTES}` };
    }
    const end = at + FRAME_HEADER_BYTES + length;
    if (end > chunk.length) break;
    const payload = chunk.subarray(at + FRAME_HEADER_BYTES, end);
    if (crc32c(payload) !== chunk.readUInt32LE(at + 4)) {
      return { bytes: at, bad: 'frame checksum mismatch' };
    }
    at = end;
  }
  return { bytes: at, bad: undefined };
}

function noop(): void {}
