// Rebuilding the ledger from the segment files when a store opens: every
// segment is read in order and each valid record is replayed. A segment
// ends at its first bad frame; the bad tail is cut off so the file holds
// only what was replayed, and reading goes on with the next segment.

import { unlink } from 'node:fs/promises';
import type { Ledger, SegmentState } from './ledger.js';
import type { StoreLogger } from './log-store.js';
import type { LogRecord } from './records.js';
import {
  fsyncDir,
  listSegments,
  readSegment,
  truncateFile,
} from './segment-file.js';

export interface Recovered {
  /** Surviving segments, oldest first. */
  segments: SegmentState[];
  /** Highest segment id seen, including deleted unborn ones. */
  lastSegmentId: number;
  /** Highest seq the log names or any segment header recorded. */
  lastSeq: number;
  corruptTails: number;
}

export async function recover(
  dir: string,
  ledger: Ledger,
  logger: StoreLogger,
  replay: (record: LogRecord) => void,
): Promise<Recovered> {
  const files = await listSegments(dir);
  const segments: SegmentState[] = [];
  let lastSeq = 0;
  let corruptTails = 0;
  let deletedAny = false;

  for (const file of files) {
    const segment: SegmentState = {
      id: file.id,
      path: file.path,
      size: 0,
      live: 0,
      liveBytes: 0,
    };
    const result = await readSegment(file.path, (record, frameBytes) => {
      ledger.apply(record, segment, frameBytes);
      replay(record);
    });

    // A crash between creating a segment and syncing its header leaves a
    // file with no records in it; nothing is lost by removing it.
    if (result.kind === 'unborn') {
      logger.warn(
        { file: file.path, droppedBytes: result.fileBytes },
        'removing segment with an incomplete header',
      );
      await unlink(file.path);
      deletedAny = true;
      corruptTails++;
      continue;
    }

    if (result.tailReason !== undefined) {
      logger.warn(
        {
          file: file.path,
          offset: result.validBytes,
          droppedBytes: result.fileBytes - result.validBytes,
          reason: result.tailReason,
        },
        'dropping bad tail of segment',
      );
      await truncateFile(file.path, result.validBytes);
      corruptTails++;
    }

    segment.size = result.validBytes;
    lastSeq = Math.max(lastSeq, result.seqFloor);
    segments.push(segment);
  }

  if (deletedAny) await fsyncDir(dir);
  return {
    segments,
    lastSegmentId: files.length > 0 ? files[files.length - 1].id : 0,
    lastSeq: Math.max(lastSeq, ledger.highestSeq),
    corruptTails,
  };
}
