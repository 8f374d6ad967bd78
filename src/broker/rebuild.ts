// Puts replayed messages back into their queues after a restart. Most go
// straight to their queue's cold backlog as (seq, priority, size), with no
// read of their bodies: restart time and memory then depend on the number
// of live messages, not on their bytes. The rest are read back from the
// log a batch at a time: delayed ones (their due time), ones changed by
// `retried` records since their `published` one (attempts and due time),
// and those of FIFO queues (their group). The queue then keeps what
// scheduling needs of them and lets the body go past its window, as it
// does at run time; only a message changed by a `moved` record (logs from
// before moves were written as `published` copies) is not its record on
// disk, and stays in memory.

import type { Logger } from 'pino';
import type { QueueEngine } from '../engine/queue.js';
import type { LogStore } from '../storage/log-store.js';
import { messageFrom } from './messages.js';
import type { ReplayState, ReplayedChange } from './recovery.js';

const READ_BATCH = 256;

interface Pending {
  engine: QueueEngine;
  seq: number;
  change: ReplayedChange | undefined;
}

export function rebuildMessages(
  replay: ReplayState,
  engines: Map<string, QueueEngine>,
  store: LogStore,
  now: number,
  logger: Logger,
): void {
  let pending: Pending[] = [];
  let unreadable = 0;
  const flush = () => {
    const records = store.readPublished(pending.map((entry) => entry.seq));
    pending.forEach(({ engine, change }, at) => {
      const record = records[at];
      if (record === undefined) {
        unreadable++;
        return;
      }
      engine.enqueue(messageFrom({ ...record, ...change }), now, isOnDisk(change));
    });
    pending = [];
  };

  replay.drain((row) => {
    const queue = row.change?.queue ?? row.queue;
    const engine = engines.get(queue);
    if (engine === undefined) {
      logger.warn({ queue, seq: row.seq }, 'message of unknown queue skipped');
      return;
    }
    if (row.change === undefined && !row.delayed &&
      engine.enqueueCold(row.priority, row.seq, row.bodyBytes)) {
      return;
    }
    pending.push({ engine, seq: row.seq, change: row.change });
    if (pending.length >= READ_BATCH) flush();
  });
  flush();

  if (unreadable > 0) {
    // The store logged each one; they stay in the log for the next start.
    logger.error({ unreadable }, 'replayed messages could not be read back');
  }
}

/** Whether a message's `published` record is its state but for attempts and due time. */
function isOnDisk(change: ReplayedChange | undefined): boolean {
  return change === undefined ||
    (change.headers === undefined && change.queue === undefined && change.expiresAt === undefined);
}
