// Per-queue durability (README "Durability modes"). `fsync` and `os`
// queues log every change, `os` without waiting for fdatasync; `memory`
// queues log nothing, not even their declaration, so they and their
// messages are gone after a restart. A message moving between a logged
// queue and a memory queue is logged as arriving or leaving.

import type { QueueEngine } from '../engine/queue.js';
import type { Message } from '../engine/types.js';
import type { LogRecord, PublishedRecord } from '../storage/records.js';
import { movedRecord } from './messages.js';

export function isLogged(engine: QueueEngine): boolean {
  return engine.settings.durability !== 'memory';
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

/** The records of `moved` (already in `to`) having left `from`. */
export function moveRecords(
  from: QueueEngine,
  to: QueueEngine,
  moved: Message,
): LogRecord[] {
  if (!isLogged(to)) {
    return isLogged(from) ? [{ type: 'settled', seqs: [moved.seq] }] : [];
  }
  if (!isLogged(from)) return [publishedRecord(to.name, moved)];
  return [movedRecord(to, moved)];
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
