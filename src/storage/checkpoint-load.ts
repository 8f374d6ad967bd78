// Loading a checkpoint (written by checkpoint.ts, format in
// checkpoint-file.ts) at start. The newest checkpoint whose every frame
// checks out is used; a damaged, cut-short or unknown-version one is
// skipped with a warning and the next older one tried, then a full
// replay. The log stays complete on its own (checkpoints only save
// reading it), so falling back loses nothing. A checkpoint may name
// segments deleted since (they held no live message by then, or they
// would not have been deleted); their rows are dropped after the replay
// from its position, which carried the records that freed them
// (recovery.ts).

import { mkdir, readdir, unlink } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import {
  BadCheckpoint,
  type CheckpointFile,
  type CheckpointMeta,
  CheckpointReader,
  FrameKind,
  type LogPosition,
  ROWS_HEADER_BYTES,
  ROW_BYTES,
  isCheckpointTemp,
  listCheckpoints,
  parseJson,
} from './checkpoint-file.js';
import { unpackRecent } from './checkpoint-recent.js';
import { unpackRows } from './checkpoint-rows.js';
import {
  LEDGER_COLUMNS,
  Ledger,
  type MessageChange,
  type RecentIdLimits,
  type RecentSnapshot,
  type SegmentState,
} from './ledger.js';
import type { StoreLogger } from './log-store-types.js';
import type { QueueSettingsRecord } from './records.js';
import { type SegmentFile, segmentPath } from './segment-file.js';

/** A checkpoint loaded into a fresh ledger, ready for the replay after it. */
export interface LoadedCheckpoint {
  ledger: Ledger;
  position: LogPosition;
  lastSeq: number;
  /** A state for every segment file on disk, live counts filled in. */
  segments: Map<number, SegmentState>;
  /** Segments rows name that are no longer on disk. */
  missing: Set<number>;
  path: string;
}

/**
 * Loads the newest usable checkpoint in `dir` for the segment files
 * `files`, or undefined if there is none (then replay everything). Removes
 * temporary files a crash left behind. Never throws for a bad checkpoint:
 * each one skipped is logged.
 */
export async function loadCheckpoint(
  dir: string,
  files: readonly SegmentFile[],
  sizes: ReadonlyMap<number, number>,
  limits: RecentIdLimits | undefined,
  logger: StoreLogger,
): Promise<LoadedCheckpoint | undefined> {
  await mkdir(dir, { recursive: true });
  const names = await readdir(dir);
  for (const name of names.filter(isCheckpointTemp)) {
    logger.warn({ file: `${dir}/${name}` }, 'removing a checkpoint a crash left unfinished');
    await unlink(`${dir}/${name}`).catch(noop);
  }

  for (const candidate of listCheckpoints(names, dir)) {
    try {
      const began = performance.now();
      const loaded = await loadOne(dir, candidate, files, sizes, limits);
      logger.info(
        {
          file: candidate.path,
          rows: loaded.ledger.liveMessages,
          ms: Math.round(performance.now() - began),
        },
        'checkpoint loaded',
      );
      return loaded;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      logger.warn(
        { file: candidate.path, reason },
        'checkpoint ignored; falling back to an older one or a full replay',
      );
    }
  }
  return undefined;
}

async function loadOne(
  dir: string,
  candidate: CheckpointFile,
  files: readonly SegmentFile[],
  sizes: ReadonlyMap<number, number>,
  limits: RecentIdLimits | undefined,
): Promise<LoadedCheckpoint> {
  checkPosition(candidate, files, sizes);
  const ledger = new Ledger(limits);
  const segments = new Map<number, SegmentState>();
  for (const file of files) {
    segments.set(file.id, { id: file.id, path: file.path, size: 0, live: 0, liveBytes: 0 });
  }
  const missing = new Set<number>();
  const segmentOf = (id: number): SegmentState => {
    let segment = segments.get(id);
    if (segment === undefined) {
      missing.add(id);
      segment = { id, path: segmentPath(dir, id), size: 0, live: 0, liveBytes: 0 };
      segments.set(id, segment);
    }
    return segment;
  };

  const reader = await CheckpointReader.open(candidate.path);
  try {
    const meta = parseJson(await expect(reader, FrameKind.Meta)) as CheckpointMeta;
    if (meta.segmentId !== candidate.segmentId || meta.offset !== candidate.offset) {
      throw new BadCheckpoint('its position does not match its file name');
    }
    const queuesFrame = await expect(reader, FrameKind.Queues);
    const queues = parseJson(queuesFrame) as Array<[string, QueueSettingsRecord]>;
    for (const [name, settings] of queues) ledger.queues.set(name, settings);

    let rows = 0;
    const columns = new Array<number>(LEDGER_COLUMNS).fill(0);
    for (;;) {
      const payload = await reader.next();
      const kind = payload[0];
      if (kind === FrameKind.PackedRows && reader.version >= 2) {
        rows += unpackRows(payload, (seq, columns) => {
          ledger.restoreRow(seq, columns, segmentOf(columns[0]));
        });
      } else if (kind === FrameKind.Rows) {
        const count = payload.readUInt32LE(4);
        if (payload.length !== ROWS_HEADER_BYTES + count * ROW_BYTES) {
          throw new BadCheckpoint('a rows frame has the wrong size for its count');
        }
        const at = payload.byteOffset + ROWS_HEADER_BYTES;
        const seqs = new Float64Array(payload.buffer, at, count);
        const cols = new Uint32Array(payload.buffer, at + 8 * count, LEDGER_COLUMNS * count);
        for (let i = 0; i < count; i++) {
          for (let c = 0; c < LEDGER_COLUMNS; c++) columns[c] = cols[i * LEDGER_COLUMNS + c];
          ledger.restoreRow(seqs[i], columns, segmentOf(columns[0]));
        }
        rows += count;
      } else if (kind === FrameKind.Names) {
        for (const name of parseJson(payload) as string[]) ledger.restoreQueueName(name);
      } else if (kind === FrameKind.Wide) {
        const wide = parseJson(payload) as Array<[number, [number, number]]>;
        for (const [seq, [queueIndex, bodyBytes]] of wide) {
          ledger.restoreWide(seq, queueIndex, bodyBytes);
        }
      } else if (kind === FrameKind.Changes) {
        for (const [seq, change] of parseJson(payload) as Array<[number, MessageChange]>) {
          ledger.restoreChange(seq, change);
        }
      } else if (kind === FrameKind.Recent) {
        const piece = parseJson(payload) as RecentSnapshot;
        if (!Array.isArray(piece.ids) || !Array.isArray(piece.times)) {
          throw new BadCheckpoint('a recent-ids frame is malformed');
        }
        ledger.restoreRecent(piece);
      } else if (kind === FrameKind.PackedRecent && reader.version >= 2) {
        ledger.restoreRecent(unpackRecent(payload));
      } else if (kind === FrameKind.End) {
        if (payload.readUInt32LE(1) !== rows || payload.readUInt32LE(5) !== reader.frames - 1) {
          throw new BadCheckpoint('its end frame does not match what came before it');
        }
        break;
      } else {
        throw new BadCheckpoint(`unknown frame kind ${kind}`);
      }
    }
    ledger.restoreHighestSeq(meta.lastSeq);
    return {
      ledger,
      position: candidate,
      lastSeq: meta.lastSeq,
      segments,
      missing,
      path: candidate.path,
    };
  } finally {
    await reader.close();
  }
}

async function expect(reader: CheckpointReader, kind: FrameKind): Promise<Buffer> {
  const payload = await reader.next();
  if (payload[0] !== kind) {
    throw new BadCheckpoint(`expected frame kind ${kind}, found ${payload[0]}`);
  }
  return payload;
}

// The log must still hold what came after the position: its segment at
// least that long, or, if that segment was deleted since, a later one.
function checkPosition(
  candidate: CheckpointFile,
  files: readonly SegmentFile[],
  sizes: ReadonlyMap<number, number>,
): void {
  const size = sizes.get(candidate.segmentId);
  if (size !== undefined) {
    if (size < candidate.offset) {
      throw new BadCheckpoint(
        `segment ${candidate.segmentId} holds ${size} bytes, ` +
          `less than the ${candidate.offset} it covers`,
      );
    }
    return;
  }
  const newest = files.at(-1);
  if (newest === undefined || newest.id < candidate.segmentId) {
    throw new BadCheckpoint(`the log has no segment at or after ${candidate.segmentId}`);
  }
}

function noop(): void {}
