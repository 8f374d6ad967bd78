// Puts live messages back into their queues after a restart, from the log
// store's ledger (broker/recovery.ts). Most go straight to their queue's
// cold backlog as (seq, priority, size), with no read of their bodies:
// restart time and memory then depend on the number of live messages, not
// on their bytes. The rest are read back from the log a batch at a time:
// ones published with a delay (their due time), ones changed by `retried`
// records since their `published` one (attempts and due time), and those
// of FIFO queues (their group). The queue then keeps what scheduling needs
// of them and lets the body go past its window, as it does at run time;
// only a message changed by a `moved` record (logs from before moves were
// written as `published` copies) is not its record on disk, and stays in
// memory.
//
// A message published with a delay is read back even when it is due by
// now: the ledger keeps only that it was delayed, not until when (a
// column more for every live message).

import type { Logger } from 'pino';
import type { QueueEngine } from '../engine/queue.js';
import type { MessageChange } from '../storage/ledger.js';
import type { LogStore } from '../storage/log-store.js';
import { messageFrom } from './messages.js';

const READ_BATCH = 256;

interface Pending {
  engine: QueueEngine;
  seq: number;
  change: MessageChange | undefined;
}

/** Returns how many messages were put back. */
export function rebuildMessages(
  store: LogStore,
  engines: Map<string, QueueEngine>,
  now: number,
  logger: Logger,
): number {
  let pending: Pending[] = [];
  let unreadable = 0;
  let rebuilt = 0;
  const flush = () => {
    const records = store.readPublished(pending.map((entry) => entry.seq));
    pending.forEach(({ engine, change }, at) => {
      const record = records[at];
      if (record === undefined) {
        unreadable++;
        return;
      }
      engine.enqueue(messageFrom({ ...record, ...change }), now, isOnDisk(change));
      rebuilt++;
    });
    pending = [];
  };

  store.forEachLive((message) => {
    const queue = message.change?.queue ?? message.queue;
    const engine = engines.get(queue);
    if (engine === undefined) {
      logger.warn({ queue, seq: message.seq }, 'message of unknown queue skipped');
      return;
    }
    if (message.change === undefined && !message.delayed &&
      engine.enqueueCold(message.priority, message.seq, message.bodyBytes)) {
      rebuilt++;
      return;
    }
    pending.push({ engine, seq: message.seq, change: message.change });
    if (pending.length >= READ_BATCH) flush();
  });
  flush();

  if (unreadable > 0) {
    // The store logged each one; they stay in the log for the next start.
    logger.error({ unreadable }, 'live messages could not be read back');
  }
  return rebuilt;
}

/** Whether a message's `published` record is its state but for attempts and due time. */
function isOnDisk(change: MessageChange | undefined): boolean {
  return change === undefined ||
    (change.headers === undefined && change.queue === undefined && change.expiresAt === undefined);
}
