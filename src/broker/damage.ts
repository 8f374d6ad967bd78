// Live messages whose frames a scrub found damaged (storage/scrub.ts).
// The store has already logged which and where; this decides what each
// one becomes.
//
// One held in memory (read before the damage came, or never cold) is
// repaired: its state is logged again as a new `published` record, as
// compaction copies one, and the damaged frame is no longer its record.
// A cold one's body is gone, and the broker never delivers a body whose
// checksum fails: it is taken out of its queue (counted as dropped) and
// settled, as a full replay would have skipped its record, so it neither
// comes back at every start nor pins its segment (compaction cannot copy
// a message it cannot read).
//
// One of a queue whose delete is being written waits for the delete: a
// repair written now would land after the `queue-deleted` record, which
// ends every message of the queue before it (storage/ledger.ts), and
// make the message live again for a queue made again under the name.
// Should the delete fail, it is repaired or dropped then.

import type { Logger } from 'pino';

import type { QueueEngine } from '../engine/queue.js';
import type { DamagedMessage } from '../storage/log-store.js';
import type { LogRecord } from '../storage/records.js';
import { isLogged, publishedRecord, settledRecords } from './durability.js';

/**
 * Takes the lost ones out of their queues and returns the records to
 * write (repairs, then settles), the queues to wake, and the messages
 * left for the deletes of their queues being written (`deleting`).
 */
export function repairOrDrop(
  messages: DamagedMessage[],
  engines: Map<string, QueueEngine>,
  deleting: ReadonlyMap<QueueEngine, Promise<void>>,
  logger: Logger,
): {
  touched: Set<QueueEngine>;
  records: LogRecord[];
  afterDelete: Map<QueueEngine, DamagedMessage[]>;
} {
  const touched = new Set<QueueEngine>();
  const settled: number[] = [];
  const lost = new Map<string, number[]>();
  const records: LogRecord[] = [];
  const afterDelete = new Map<QueueEngine, DamagedMessage[]>();

  for (const message of messages) {
    const { seq, queue } = message;
    const engine = engines.get(queue);
    if (engine !== undefined && deleting.has(engine)) {
      const waiting = afterDelete.get(engine);
      if (waiting === undefined) afterDelete.set(engine, [message]);
      else waiting.push(message);
      continue;
    }
    const dropped = engine?.dropDamaged(seq) === true;
    if (dropped) touched.add(engine!);
    const held = dropped ? undefined : engine?.get(seq);
    if (held !== undefined && isLogged(engine!)) {
      records.push(publishedRecord(engine!.name, held));
      continue;
    }
    // Settled even if no queue holds it (a read had already failed and
    // let go of it): the ledger still counted it live.
    settled.push(seq);
    const seqs = lost.get(queue);
    if (seqs === undefined) lost.set(queue, [seq]);
    else seqs.push(seq);
  }

  // An operator tells producers about the lost ones: name only those.
  for (const [queue, seqs] of lost) {
    logger.error(
      { queue, messages: seqs.length, seqs: seqs.slice(0, 20) },
      'live messages lost to damage in the log',
    );
  }
  if (records.length > 0) {
    logger.warn(
      { repaired: records.length },
      'messages with damaged log frames logged again from memory: not lost',
    );
  }
  if (settled.length > 0) records.push(...settledRecords(settled));
  return { touched, records, afterDelete };
}
