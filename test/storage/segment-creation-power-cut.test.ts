// A power cut while a new segment is being made, between the write of
// its header and queue declarations and their fdatasync: the disk may
// then hold any part of those bytes, the rest zeros (power-cut.ts). Made
// in place, such a segment's header was neither whole nor zeros, and the
// next open refused to start ("does not start with the Usher log
// magic": the zeros case below, before this change; found by the second
// breaker's power-cut fuzz). A segment is now made
// under a temporary name and linked to its own once synced
// (active-segment.ts createSegment), so the next open finds only the
// temporary file, removes it, and reads every confirmed append.

import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';

import { NEW_SEGMENT_SUFFIX } from '../../src/storage/segment-file.js';
import { openStore, replayOf, ticket, withTempDir } from './helpers.js';
import { PowerCutIo, type PowerCutMode } from './power-cut.js';

/**
 * Once armed, cuts the power as soon as the first write to a file made
 * new (opened 'wx': a segment being made, its header at 0) returns.
 */
class CutWhileMakingIo extends PowerCutIo {
  readonly #making = new Set<number>();
  armed = false;

  override async open(path: string, flags: string): Promise<number> {
    const fd = await super.open(path, flags);
    if (flags === 'wx') this.#making.add(fd);
    return fd;
  }

  override close(fd: number): Promise<void> {
    this.#making.delete(fd);
    return super.close(fd);
  }

  override async writev(fd: number, buffers: readonly Buffer[], position: number) {
    const written = await super.writev(fd, buffers, position);
    if (this.armed && position === 0 && this.#making.has(fd)) this.cut();
    return written;
  }
}

for (const mode of ['zeros', 'torn', 'drop'] as PowerCutMode[]) {
  test(`a cut while a segment is made (${mode}): the next open starts, confirmed appends kept`,
    () => withTempDir(async (dir) => {
      const io = new CutWhileMakingIo();
      // Small segments: the appends below roll into a second one.
      const { store } = await openStore(dir, { io, segmentBytes: 4096 });
      io.armed = true;
      await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);
      let confirmed = 0;
      for (let seq = 1; seq <= 200 && !io.isCut; seq++) {
        await Promise.race([
          store.append([ticket(seq)]).then(() => {
            if (!io.isCut) confirmed = seq;
          }),
          new Promise((resolve) => setTimeout(resolve, 200)),
        ]);
      }
      assert.ok(io.isCut, 'the appends rolled into a new segment');
      await io.settled();

      await withTempDir(async (image) => {
        // A tenth of what the cut left unsynced is kept: inside the header.
        await io.image(dir, image, mode, () => 0.1);
        const { replayed } = await replayOf(image);
        const seqs = replayed.flatMap((record) => (record.type === 'published' ? [record.seq] : []));
        assert.deepEqual(seqs, Array.from({ length: confirmed }, (_, i) => i + 1));
        const left = (await readdir(image)).filter((name) => name.endsWith(NEW_SEGMENT_SUFFIX));
        assert.deepEqual(left, [], 'the half-made segment is removed');
      });
    }));
}
