// CoalescingFile: saves asked for while a write is under way share the
// next write, and each save, once settled, has its change on disk.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';

import { CoalescingFile } from '../../src/util/atomic-file.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('usher-atomic-file-');
after(() => dir.remove());

it('shares writes between concurrent saves, each settling with its change on disk', async () => {
  const path = join(dir.path, 'state.json');
  let state = 0;
  let writes = 0;
  const file = new CoalescingFile(path, () => {
    writes++;
    return JSON.stringify({ state });
  });

  const saves: Promise<void>[] = [];
  for (let i = 1; i <= 50; i++) {
    state = i;
    const changed = i;
    saves.push(file.save().then(() => {
      const onDisk = JSON.parse(readFileSync(path, 'utf8')).state as number;
      assert.ok(onDisk >= changed, `save ${changed} settled with ${onDisk} on disk`);
    }));
  }
  await Promise.all(saves);
  await file.flush();

  assert.equal(JSON.parse(readFileSync(path, 'utf8')).state, 50);
  assert.ok(writes <= 2, `${writes} writes for 50 saves`);
});
