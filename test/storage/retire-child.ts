// A child process for deletion-crash.test.ts: steady traffic on a log
// with small segments, cut small in steps as they die, until it is
// killed. After each append lands it prints the seqs that append
// published and the seqs it settled, so the parent knows what was
// confirmed when the kill came.

import { LogStore } from '../../src/storage/log-store.js';
import { settleRound } from './helpers.js';

const [dir, segmentBytes, shrinkStepBytes] = process.argv.slice(2);
const quiet = { info() {}, warn() {}, error() {} };

const store = await LogStore.open(
  {
    dir,
    logger: quiet,
    snapshotMessage: () => undefined,
    segmentBytes: Number(segmentBytes),
    shrinkStepBytes: Number(shrinkStepBytes),
  },
  () => {},
);
if (!store.queues.has('tickets')) {
  await store.append([{ type: 'queue-declared', name: 'tickets', settings: {} }]);
}

let previous: number[] = [];
for (;;) {
  const settled = previous;
  previous = await settleRound(store, previous);
  process.stdout.write(`${JSON.stringify({ published: previous, settled })}\n`);
}
