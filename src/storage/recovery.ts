// Rebuilding the ledger from the segment files when a store opens: every
// segment is read in order and each valid record is replayed.
//
// What is done about damage depends on where it lies. Only the last
// segment was being written when the process stopped, so only it can end
// in a torn frame (a crash mid-write) or be blank (a crash while it was
// being created): the tail is cut off, the blank file removed, and both
// are logged as warnings. Anything wrong in an older segment struck data
// that was complete and confirmed: that is corruption, not a crash. Such
// a file is never changed. Reading skips each bad stretch to the next
// whole frame (see resync.ts), replays what follows, and logs an error.
//
// A bad stretch in the last segment with whole frames after it is not a
// torn tail either. It may be corruption, or pages of the one batch in
// flight reaching the disk out of order. It is skipped like one in an
// older segment: replaying a record that was never confirmed makes a
// duplicate at worst, while cutting there would destroy confirmed ones.
// Only what follows the last whole frame is cut.
//
// With a checkpoint (checkpoint.ts) the ledger starts as the checkpoint
// left it and reading starts at its position: segments before it are not
// read at all, only measured.

import { stat, unlink } from 'node:fs/promises';
import type { CheckpointOptions } from './checkpoint.js';
import type { LogPosition } from './checkpoint-file.js';
import { loadCheckpoint } from './checkpoint-load.js';
import { Ledger, type RecentIdLimits, type SegmentState } from './ledger.js';
import type { StoreLogger } from './log-store-types.js';
import type { LogRecord } from './records.js';
import {
  type Damage,
  type SegmentFile,
  type SegmentScan,
  fsyncDir,
  isBlankSegment,
  listSegments,
  listRetiredSegments,
  listUnfinishedSegments,
  readSegment,
  segmentPath,
  truncateFile,
} from './segment-file.js';

export interface Recovered {
  /** The ledger as the log (and checkpoint) left it. */
  ledger: Ledger;
  /** The checkpoint replay started from, if one was used. */
  checkpoint: string | undefined;
  /** Its position: the log before it was not read (scrub.ts checks it later). */
  checkpointPosition: LogPosition | undefined;
  /** Records replayed (after the checkpoint, if one was used). */
  records: number;
  /** Bytes of log read for them. */
  replayedBytes: number;
  /** Surviving segments, oldest first. */
  segments: SegmentState[];
  /** The next segment takes the id after this one. */
  lastSegmentId: number;
  /** Highest seq the log names or any segment header recorded. */
  lastSeq: number;
  /** Torn tails cut off, and blank last segments removed. */
  corruptTails: number;
  /** Damaged stretches skipped and left as they are on disk. */
  corruptRegions: number;
  /** Where each of them starts, so that a scrub does not count it again. */
  regionStarts: RegionStart[];
  /** Ids missing between the oldest segment file and the newest. */
  missingSegments: number;
}

export interface RegionStart {
  segmentId: number;
  offset: number;
}

export interface RecoverOptions {
  copyBodies: boolean;
  checkpoints: CheckpointOptions;
  recentIds: RecentIdLimits | undefined;
}

export async function recover(
  dir: string,
  logger: StoreLogger,
  replay: (record: LogRecord) => void,
  { copyBodies, checkpoints, recentIds }: RecoverOptions,
): Promise<Recovered> {
  for (const unfinished of await listUnfinishedSegments(dir)) {
    logger.warn({ file: unfinished }, 'removing a segment a crash left half made');
    await unlink(unfinished);
  }
  for (const retired of await listRetiredSegments(dir)) {
    logger.warn({ file: retired }, 'removing a dead segment a crash left half deleted');
    await unlink(retired);
  }
  const files = await listSegments(dir);
  const missingSegments = reportGaps(dir, files, logger);
  let lastSegmentId = files.length > 0 ? files[files.length - 1].id : 0;
  let corruptTails = 0;
  let corruptRegions = 0;
  const regionStarts: RegionStart[] = [];

  const newest = files.at(-1);
  if (newest !== undefined && (await isBlankSegment(newest.path))) {
    const { size } = await stat(newest.path);
    logger.warn(
      { file: newest.path, droppedBytes: size },
      'removing segment with an incomplete header',
    );
    await unlink(newest.path);
    await fsyncDir(dir);
    files.pop();
    corruptTails++;
    // The next segment takes its id, or the hole would look like a lost
    // file at every later open.
    lastSegmentId = newest.id - 1;
  }

  const sizes = new Map<number, number>();
  for (const file of files) sizes.set(file.id, (await stat(file.path)).size);
  const loaded = checkpoints.enabled === false
    ? undefined
    : await loadCheckpoint(dir, files, sizes, recentIds, logger);
  const ledger = loaded?.ledger ?? new Ledger(recentIds);
  const start = loaded?.position;
  // Every segment starts by declaring every live queue: if the one the
  // checkpoint ends in is gone, its queue deletions are too, and the
  // declarations at the start of the next one are the truth.
  if (start !== undefined && !sizes.has(start.segmentId)) ledger.queues.clear();

  const segments: SegmentState[] = [];
  let lastSeq = loaded?.lastSeq ?? 0;
  let records = 0;
  let replayedBytes = 0;
  for (let i = 0; i < files.length; i++) {
    const file = files[i];
    const segment: SegmentState = loaded?.segments.get(file.id) ?? {
      id: file.id,
      path: file.path,
      size: 0,
      live: 0,
      liveBytes: 0,
    };
    if (start !== undefined && file.id < start.segmentId) {
      // Wholly covered by the checkpoint: not read.
      segment.size = sizes.get(file.id) ?? 0;
      segments.push(segment);
      continue;
    }
    const from = start !== undefined && file.id === start.segmentId ? start.offset : undefined;
    const scan = await readSegment(file.path, (record, frameBytes, offset) => {
      ledger.apply(record, segment, frameBytes, offset);
      replay(record);
      records++;
    }, { copyBodies, from });

    segment.size = scan.fileBytes;
    replayedBytes += scan.fileBytes - (from ?? 0);
    const isLast = i === files.length - 1;
    for (const damage of scan.damage) {
      const entry = {
        file: file.path,
        offset: damage.offset,
        droppedBytes: damage.bytes,
        reason: damage.reason,
      };
      if (isLast && isTornTail(scan, damage)) {
        logger.warn(entry, 'dropping bad tail of segment');
        await truncateFile(file.path, damage.offset);
        segment.size = damage.offset;
        corruptTails++;
      } else {
        logger.error(entry, 'skipping corrupt region of segment');
        corruptRegions++;
        regionStarts.push({ segmentId: file.id, offset: damage.offset });
      }
    }

    // A lost header takes its seq floor with it. Nothing depends on it
    // unless this is the newest segment and every one that named the
    // highest seqs is gone: a case we accept rather than refuse to open.
    if (scan.seqFloor !== undefined) {
      lastSeq = Math.max(lastSeq, scan.seqFloor);
    }
    segments.push(segment);
  }

  if (loaded !== undefined && loaded.missing.size > 0) {
    // Rows of segments deleted after the checkpoint was written. A segment
    // is deleted only once none of its messages is live, so these were
    // settled or copied on; the records saying so were replayed above
    // unless they lay in deleted segments too. A file lost between others
    // is reported as a gap above.
    const dropped = ledger.dropRowsIn(loaded.missing);
    logger.warn(
      { dropped, segments: [...loaded.missing] },
      'checkpoint named segments deleted since; their rows are dropped',
    );
  }

  return {
    ledger,
    checkpoint: loaded?.path,
    checkpointPosition: loaded?.position,
    records,
    replayedBytes,
    segments,
    lastSegmentId,
    lastSeq: Math.max(lastSeq, ledger.highestSeq),
    corruptTails,
    corruptRegions,
    regionStarts,
    missingSegments,
  };
}

// A tail may be cut only if nothing readable could lie in it: the header
// is sound (a damaged one means more than a crash mid-write), and the
// search for a next frame ran to the end of the file without giving up.
function isTornTail(scan: SegmentScan, damage: Damage): boolean {
  return (
    damage.offset + damage.bytes === scan.fileBytes &&
    scan.seqFloor !== undefined &&
    !scan.gaveUp
  );
}

// Segment ids are consecutive: a new segment takes the next id, and only
// the oldest are ever deleted. A gap means files were lost, and with them
// their records: messages they held are gone, and messages they settled
// come back. The store still opens with what is left.
function reportGaps(
  dir: string,
  files: readonly SegmentFile[],
  logger: StoreLogger,
): number {
  let missing = 0;
  for (let i = 1; i < files.length; i++) {
    const first = files[i - 1].id + 1;
    const last = files[i].id - 1;
    if (last < first) continue;
    missing += last - first + 1;
    logger.error(
      {
        dir,
        missingCount: last - first + 1,
        firstMissing: segmentPath(dir, first),
        lastMissing: segmentPath(dir, last),
      },
      'segment files are missing from the log',
    );
  }
  return missing;
}
