// The segment the log appends to: its descriptors, and how a new one is
// made so that a power cut can never leave a half-made segment behind.

import { link, unlink } from 'node:fs/promises';

import type { StoreIo } from './io.js';
import type { SegmentState } from './ledger.js';
import { NEW_SEGMENT_SUFFIX, fsyncDir, segmentPath } from './segment-file.js';

export interface ActiveSegment extends SegmentState {
  fd: number;
  /**
   * More descriptors of the same file, for syncs: with `fd`, one for each
   * sync that may be in flight at once (see batch-io.ts).
   */
  syncFds: number[];
  /**
   * As many again, opened with StoreIo.openDataSync, for batches written
   * and synced in one call (one each, for the same reason); empty if the
   * io cannot open them.
   */
  dataSyncFds: number[];
}

/**
 * Makes segment `id` in `dir` holding `frames` (its header first), durable
 * with its directory entry, and opens its descriptors. Ids must stay
 * consecutive, since recovery reads a gap as a lost file: `useId` is told
 * the next free id whenever this one is used up or given back. `syncs`:
 * how many syncs may be in flight at once in it.
 */
export async function createSegment(
  io: StoreIo,
  dir: string,
  id: number,
  frames: Buffer[],
  useId: (next: number) => void,
  syncs: number,
): Promise<ActiveSegment> {
  const path = segmentPath(dir, id);
  const size = frames.reduce((sum, frame) => sum + frame.length, 0);

  // Made whole under a temporary name, then linked to its own: a power
  // cut before the header and the queue declarations are durable can
  // only leave the temporary file (removed at the next open), never a
  // segment whose header is torn, which would stop the next start. A
  // link, unlike a rename, never replaces a file of that name.
  const temp = `${path}${NEW_SEGMENT_SUFFIX}`;
  const made = await io.open(temp, 'wx');
  try {
    const written = await io.writev(made, frames, 0);
    if (written !== size) {
      throw new Error(`short write: ${written} of ${size} bytes`);
    }
    await io.fdatasync(made);
  } catch (err) {
    await io.close(made).catch(noop);
    await unlink(temp).catch(noop);
    throw err;
  }
  await io.close(made);

  // The id is used up only once its file exists, and given back below if
  // the file is removed again.
  try {
    await link(temp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') useId(id + 1);
    await unlink(temp).catch(noop);
    throw err;
  }
  await unlink(temp);
  let fd: number;
  try {
    fd = await io.open(path, 'r+');
  } catch (err) {
    await unlink(path).catch(noop);
    throw err;
  }
  useId(id + 1);
  const syncFds: number[] = [];
  const dataSyncFds: number[] = [];
  try {
    await fsyncDir(dir);
    while (syncFds.length < syncs - 1) syncFds.push(await io.open(path, 'r+'));
    if (io.openDataSync !== undefined) {
      while (dataSyncFds.length < syncs) dataSyncFds.push(await io.openDataSync(path));
    }
  } catch (err) {
    // Best effort: a leftover file holds no records. It is removed at
    // the next open if it is the newest and blank; otherwise it is read
    // as a damaged or empty segment, and deleted once it is the oldest.
    for (const other of [...dataSyncFds, ...syncFds]) await io.close(other).catch(noop);
    await io.close(fd).catch(noop);
    await unlink(path).then(() => useId(id), noop);
    throw err;
  }
  return { id, path, size, live: 0, liveBytes: 0, fd, syncFds, dataSyncFds };
}

function noop(): void {}
