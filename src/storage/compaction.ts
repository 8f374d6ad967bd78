// Compaction: copying the oldest segment's live messages to the end of
// the log, so that a few messages nobody settles do not keep every later
// segment on disk. Apart from log-store.ts because it is a policy of its
// own (when garbage outweighs live data, and what one round copies); the
// write loop runs a round after each batch lands and appends its copies.

import type { Ledger, SegmentState } from './ledger.js';
import type { StoreLogger } from './log-store-types.js';
import type { PublishedRecord } from './records.js';

// One compaction round copies at most this much, so a segment full of
// live messages is moved over several batches rather than one huge one.
const COMPACTION_MAX_MESSAGES = 1024;
const COMPACTION_MAX_BYTES = 8 * 1024 * 1024;

export interface CompactionOptions {
  logger: StoreLogger;
  ledger: Ledger;
  /** The store's segments, oldest first, the active one last: shared, not copied. */
  segments: readonly SegmentState[];
  /** LogStoreOptions.segmentBytes, as the store applies it. */
  segmentBytes: number;
  /** LogStoreOptions.snapshotMessage: where the copies come from. */
  snapshotMessage(seq: number): PublishedRecord | undefined;
  /** Bytes in all segment files. */
  diskBytes(): number;
  /** The store is closing: no round starts. */
  closing(): boolean;
  /**
   * Appends the copies as one round's batch; throws, as an append does,
   * if one cannot be encoded.
   */
  append(copies: PublishedRecord[]): Promise<void>;
}

export class Compaction {
  /** Messages copied forward, once their batch landed. */
  compactedMessages = 0;
  /** A round's copies are on their way: no other round starts. */
  #compacting = false;
  /** Set while free disk is below the floor: compact at less garbage. */
  #diskLow = false;
  #stalledSegment: SegmentState | undefined;

  constructor(private readonly options: CompactionOptions) {}

  /** LogStore.setDiskLow. */
  setDiskLow(low: boolean): void {
    this.#diskLow = low;
  }

  /** A batch holding `copies` of a round's copies landed. */
  landed(copies: number): void {
    this.compactedMessages += copies;
    this.#compacting = false;
  }

  /** A batch holding a round's copies failed; the next round tries again. */
  failed(): void {
    this.#compacting = false;
  }

  // A few messages that are never settled (a dead-letter queue nobody
  // drains) would pin the oldest segment, and with it every later one.
  // When garbage outweighs live data, copy the oldest segment's live
  // messages to the end of the log; once the copies are durable the ledger
  // counts the segment dead and DeadSegments removes it.
  run(): void {
    if (this.#compacting || this.options.closing()) return;
    const { logger, ledger, segments, segmentBytes, snapshotMessage } = this.options;
    // Dead segments still being deleted (dead-segments.ts) are neither
    // garbage to count nor the oldest to copy from. Waiting for their
    // deletion instead ended the chain of copy, delete, copy at the first
    // deletion, until some other batch landed (none may, with the disk
    // low and publishes refused).
    let first = 0;
    let dying = 0;
    while (first < segments.length - 1 && segments[first].live === 0) {
      dying += segments[first].size;
      first++;
    }
    if (segments.length - first < 2) return;
    const live = ledger.liveBytes;
    const limit = (this.#diskLow ? live : 2 * live) + 2 * segmentBytes;
    if (this.options.diskBytes() - dying <= limit) return;

    const oldest = segments[first];
    const copies: PublishedRecord[] = [];
    let bytes = 0;
    for (const [seq, frameBytes] of ledger.oldestIn(oldest, COMPACTION_MAX_MESSAGES)) {
      if (bytes >= COMPACTION_MAX_BYTES) break;
      // undefined: the broker has let go of the message (its `settled`
      // record is on the way) or not taken it up yet (its append has not
      // resolved). Either way the next round looks again.
      const copy = snapshotMessage(seq);
      if (copy === undefined || copy.seq !== seq) continue;
      copies.push(copy);
      bytes += frameBytes;
    }

    if (copies.length === 0) {
      if (this.#stalledSegment !== oldest) {
        this.#stalledSegment = oldest;
        logger.warn(
          { file: oldest.path, liveMessages: oldest.live },
          'compaction found nothing to copy from the oldest segment',
        );
      }
      return;
    }

    try {
      // A failed batch is already logged by #rollBack (write-loop.ts),
      // and the next round tries again, so nobody needs to hear of it
      // here.
      this.options.append(copies).catch(noop);
      this.#compacting = true;
    } catch (err) {
      logger.error({ err, file: oldest.path }, 'compaction failed');
    }
  }
}

function noop(): void {}
