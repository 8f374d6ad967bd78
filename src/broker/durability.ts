// Per-queue durability (README "Durability modes"). `fsync` and `os`
// queues log every change, `os` without waiting for fdatasync; `memory`
// queues log nothing, not even their declaration, so they and their
// messages are gone after a restart. A message moving between a logged
// queue and a memory queue is logged as arriving or leaving.

import type { QueueEngine } from '../engine/queue.js';
import type { Message, QueueSettings } from '../engine/types.js';
import type { LogRecord, PublishedRecord } from '../storage/records.js';

export function isLogged(engine: QueueEngine): boolean {
  return logsMessages(engine.settings);
}

/** Whether a queue with these settings logs its messages. */
export function logsMessages(settings: QueueSettings): boolean {
  return settings.durability !== 'memory';
}

/** Whether records about these queues must be on disk before answering. */
export function needsSync(engines: Iterable<QueueEngine>): boolean {
  for (const engine of engines) {
    if (engine.settings.durability === 'fsync') return true;
  }
  return false;
}

// A `settled` record of a purge or a queue delete names every message of
// a backlog that may be millions long (issue #3): one record would pass
// MAX_RECORD_BYTES (8 bytes a seq), so it is cut into records of this many.
const SEQS_PER_SETTLED_RECORD = 64 * 1024;

/** `settled` records for `seqs`, none when there are none. */
export function settledRecords(seqs: number[]): LogRecord[] {
  const records: LogRecord[] = [];
  for (let at = 0; at < seqs.length; at += SEQS_PER_SETTLED_RECORD) {
    records.push({ type: 'settled', seqs: seqs.slice(at, at + SEQS_PER_SETTLED_RECORD) });
  }
  return records;
}

/**
 * The records of `moved` (already in `to`) having left `from`. Into a
 * logged queue that is a whole `published` record, body included, rather
 * than a `moved` record of the changes: the destination may then keep the
 * message cold and read it back by seq as it is now (issue #3), and the
 * old record is garbage at once instead of pinning its segment until
 * compaction copies it (a dead-letter queue nobody drains did that).
 */
export function moveRecords(
  from: QueueEngine,
  to: QueueEngine,
  moved: Message,
): LogRecord[] {
  if (!isLogged(to)) {
    return isLogged(from) ? [{ type: 'settled', seqs: [moved.seq] }] : [];
  }
  return [publishedRecord(to.name, moved)];
}

/**
 * Tells the queues that records about their messages landed, so that a
 * message whose record is now its state may go cold (QueueEngine.landed):
 * a `published` copy names its queue, a `retried` record is `source`'s.
 */
export function noteLanded(
  engines: ReadonlyMap<string, QueueEngine>,
  source: QueueEngine,
  records: readonly LogRecord[],
): void {
  for (const record of records) {
    if (record.type === 'published') engines.get(record.queue)?.landed(record.seq, record.headers);
    else if (record.type === 'retried') source.landed(record.seq);
  }
}

/** A message as a whole `published` record: for a log that lacks it. */
export function publishedRecord(queue: string, message: Message): PublishedRecord {
  return {
    type: 'published',
    seq: message.seq,
    queue,
    id: message.id,
    priority: message.priority,
    group: message.group,
    headers: message.headers,
    body: message.body,
    publishedAt: message.publishedAt,
    availableAt: message.availableAt,
    expiresAt: message.expiresAt,
    failures: message.failures,
  };
}
