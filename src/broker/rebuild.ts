// Puts live messages back into their queues after a restart, from the log
// store's ledger (broker/recovery.ts), with no read of a body: restart
// time and memory then depend on the number of live messages, not on
// their bytes. Bodies are read when a message is paged in (cold-tier.ts).
//
// What a queue's cold tier needs of a message (cold-rows.ts) comes from:
// - the ledger alone for a plain message (seq, priority, size) and for
//   one changed by `retried` records only (attempts and due time too);
// - the head of its `published` record (store.readPublishedHeads: the
//   frame is read and checked, but neither its headers nor its body are
//   decoded or copied) for a message of a FIFO queue (its group) and for
//   one whose record was written with a due time after its publish time
//   and not retried since (a delayed publish, a dead-lettered or redriven
//   copy, a copy made by a nack that set headers): the ledger keeps only
//   that flag, not the time.
// Only a message changed by a `moved` record (logs from before moves were
// written as `published` copies) is read back whole and kept in memory:
// its record on disk is not its state.
//
// Why the due time and group are read rather than kept in the ledger: a
// due-time column (f64) would cost every live message 8 bytes, 80 MB at
// ten million, of a 600 MB budget, and a group column 4 more, to save a
// restart a sequential read of the log's live bytes, which the page cache
// usually holds (figures in docs/storage.md, bench:cold).

import type { Logger } from 'pino';
import type { QueueEngine } from '../engine/queue.js';
import type { LiveMessage, MessageChange } from '../storage/ledger.js';
import type { LogStore } from '../storage/log-store.js';
import { messageFrom } from './messages.js';

const READ_BATCH = 256;

interface Pending {
  engine: QueueEngine;
  seq: number;
  change: MessageChange | undefined;
  /** Read back whole and kept in memory, not put back cold from its head. */
  whole: boolean;
}

/** Returns how many messages were put back. */
export function rebuildMessages(
  store: LogStore,
  engines: Map<string, QueueEngine>,
  now: number,
  logger: Logger,
): number {
  let unreadable = 0;
  let rebuilt = 0;
  let pending: Pending[] = [];

  // Enqueued in seq order, as a restart always did: a FIFO queue offers
  // its groups, and a queue that keeps all in memory orders its waiting
  // messages, by the order they come.
  const flush = () => {
    const wholes = pending.filter((entry) => entry.whole);
    const records = store.readPublished(wholes.map((entry) => entry.seq));
    const heads = store.readPublishedHeads(
      pending.filter((entry) => !entry.whole).map((entry) => entry.seq));
    let wholeAt = 0;
    let headAt = 0;
    for (const { engine, seq, change, whole } of pending) {
      if (whole) {
        const record = records[wholeAt++];
        if (record === undefined) {
          unreadable++;
          continue;
        }
        engine.enqueue(messageFrom({ ...record, ...change }), now, isOnDisk(change));
        rebuilt++;
        continue;
      }
      const head = heads[headAt++];
      if (head === undefined) {
        unreadable++;
        continue;
      }
      engine.enqueueColdEntry({
        seq,
        priority: head.priority,
        bytes: head.bodyBytes,
        failures: change?.failures ?? head.failures,
        availableAt: change?.availableAt ?? head.availableAt,
      }, head.group, now);
      rebuilt++;
    }
    pending = [];
  };

  store.forEachLive((message) => {
    const queue = message.change?.queue ?? message.queue;
    const engine = engines.get(queue);
    if (engine === undefined) {
      logger.warn({ queue, seq: message.seq }, 'message of unknown queue skipped');
      return;
    }
    if (putBackFromLedger(engine, message, now)) {
      rebuilt++;
      return;
    }
    const whole = !engine.keepsAnyCold || !isOnDisk(message.change);
    pending.push({ engine, seq: message.seq, change: message.change, whole });
    if (pending.length >= READ_BATCH) flush();
  });
  flush();

  if (unreadable > 0) {
    // The store logged each one; they stay in the log for the next start.
    logger.error({ unreadable }, 'live messages could not be read back');
  }
  return rebuilt;
}

/**
 * Puts a message back from what the ledger holds, when that is all its
 * queue needs: false when its record must be read (FIFO group, due time of
 * a record written delayed, a moved message) or its queue keeps nothing cold.
 */
function putBackFromLedger(engine: QueueEngine, message: LiveMessage, now: number): boolean {
  const { change } = message;
  if (engine.settings.fifo || !isOnDisk(change)) return false;
  if (change === undefined) {
    return !message.delayed &&
      engine.enqueueCold(message.priority, message.seq, message.bodyBytes);
  }
  // Changed by `retried` records only: the last one has attempts and due time.
  if (change.failures === undefined || change.availableAt === undefined) return false;
  return engine.enqueueColdEntry({
    seq: message.seq,
    priority: message.priority,
    bytes: message.bodyBytes,
    failures: change.failures,
    availableAt: change.availableAt,
  }, null, now);
}

/** Whether a message's `published` record is its state but for attempts and due time. */
function isOnDisk(change: MessageChange | undefined): boolean {
  return change === undefined ||
    (change.headers === undefined && change.queue === undefined && change.expiresAt === undefined);
}
