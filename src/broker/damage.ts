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

import type { Logger } from 'pino';

import type { QueueEngine } from '../engine/queue.js';
import type { DamagedMessage } from '../storage/log-store.js';
import type { LogRecord } from '../storage/records.js';
import { isLogged, publishedRecord, settledRecords } from './durability.js';

/**
 * Takes the lost ones out of their queues and returns the records to
 * write (repairs, then settles) and the queues to wake.
 */
export function repairOrDrop(
  messages: DamagedMessage[],
  engines: Map<string, QueueEngine>,
  logger: Logger,
): { touched: Set<QueueEngine>; records: LogRecord[] } {
  const touched = new Set<QueueEngine>();
  const settled: number[] = [];
  const lost = new Map<string, number[]>();
  const records: LogRecord[] = [];

  for (const { seq, queue } of messages) {
    const engine = engines.get(queue);
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
  return { touched, records };
}
