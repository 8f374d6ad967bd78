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
import type { PublishedHead } from '../storage/codec-decode.js';
import type { LiveMessage, MessageChange } from '../storage/ledger.js';
import type { LogStore } from '../storage/log-store.js';
import { messageFrom } from './messages.js';

const READ_BATCH = 256;

/**
 * Where a message's scheduling fields come from: the ledger alone, the
 * head of its record, or (a legacy moved message) its whole record.
 */
type Source = 'ledger' | 'head' | 'whole';

interface Pending {
  engine: QueueEngine;
  message: LiveMessage;
  source: Source;
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

  const putBackFromHead = (engine: QueueEngine, message: LiveMessage, head?: PublishedHead) => {
    if (head === undefined) {
      unreadable++;
      return;
    }
    const { change } = message;
    engine.enqueueColdEntry({
      seq: message.seq,
      priority: head.priority,
      bytes: head.bodyBytes,
      failures: change?.failures ?? head.failures,
      availableAt: change?.availableAt ?? head.availableAt,
    }, head.group, now);
    rebuilt++;
  };

  // Messages go back in seq order, as a restart always put them: a FIFO
  // queue offers its groups, and a reject-lowest-priority queue numbers
  // its waiting messages (waiting-order.ts), in the order they come.
  const flush = () => {
    const seqsFrom = (source: Source) =>
      pending.filter((entry) => entry.source === source).map((entry) => entry.message.seq);
    const records = store.readPublished(seqsFrom('whole'));
    const heads = store.readPublishedHeads(seqsFrom('head'));
    let wholeAt = 0;
    let headAt = 0;
    for (const { engine, message, source } of pending) {
      if (source === 'ledger') {
        if (putBackFromLedger(engine, message, now)) rebuilt++;
        else putBackFromHead(engine, message, store.readPublishedHeads([message.seq])[0]);
      } else if (source === 'head') {
        putBackFromHead(engine, message, heads[headAt++]);
      } else {
        const record = records[wholeAt++];
        if (record === undefined) {
          unreadable++;
          continue;
        }
        const { change } = message;
        engine.enqueue(messageFrom({ ...record, ...change }), now, isOnDisk(change));
        rebuilt++;
      }
    }
    pending = [];
  };

  store.forEachLive((live) => {
    const queue = live.change?.queue ?? live.queue;
    const engine = engines.get(queue);
    if (engine === undefined) {
      logger.warn({ queue, seq: live.seq }, 'message of unknown queue skipped');
      return;
    }
    let source = sourceOf(engine, live);
    // The common case, a plain publish with nothing pending before it,
    // costs no copy of the visitor's object.
    if (source === 'ledger' && pending.length === 0) {
      if (putBackFromLedger(engine, live, now)) {
        rebuilt++;
        return;
      }
      source = 'head';
    }
    pending.push({ engine, message: { ...live }, source });
    if (pending.length >= READ_BATCH) flush();
  });
  flush();

  if (unreadable > 0) {
    // The store logged each one; they stay in the log for the next start.
    logger.error({ unreadable }, 'live messages could not be read back');
  }
  return rebuilt;
}

function sourceOf(engine: QueueEngine, message: LiveMessage): Source {
  const { change } = message;
  if (!isOnDisk(change) || !engine.keepsAnyCold) return 'whole';
  if (engine.settings.fifo) return 'head';
  if (change === undefined) return message.delayed ? 'head' : 'ledger';
  // Changed by `retried` records only: the last one has attempts and due time.
  return change.failures !== undefined && change.availableAt !== undefined ? 'ledger' : 'head';
}

/**
 * Puts back a message whose source is the ledger; false when its queue
 * takes it no other way than sorted in (then its head is read).
 */
function putBackFromLedger(engine: QueueEngine, message: LiveMessage, now: number): boolean {
  const { change } = message;
  if (change === undefined) {
    return engine.enqueueCold(message.priority, message.seq, message.bodyBytes);
  }
  return engine.enqueueColdEntry({
    seq: message.seq,
    priority: message.priority,
    bytes: message.bodyBytes,
    failures: change.failures as number,
    availableAt: change.availableAt as number,
  }, null, now);
}

/** Whether a message's `published` record is its state but for attempts and due time. */
function isOnDisk(change: MessageChange | undefined): boolean {
  return change === undefined ||
    (change.headers === undefined && change.queue === undefined && change.expiresAt === undefined);
}
