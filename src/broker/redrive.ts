// A redrive: messages leave a dead-letter queue for the queue they died
// in (from their death headers) or for one named target, as copies that
// keep their first arrival's place. The broker checks the request and
// writes the records this returns.

import type { QueueEngine } from '../engine/queue.js';
import type { Message } from '../engine/types.js';
import type { LogRecord } from '../storage/records.js';
import { DEATH_HEADERS, redriveFilter } from './dead-letter.js';
import { moveRecords } from './durability.js';
import { moveTo } from './messages.js';
import type { RedriveOptions } from './types.js';

export interface MoveContext {
  engines: Map<string, QueueEngine>;
  /** Queues whose delete is being written: they take nothing (queues.ts). */
  deleting: ReadonlyMap<QueueEngine, unknown>;
  now: number;
  /** Throws to refuse a destination (the caller's access check). */
  checkDestination?: (queue: string) => void;
}

/**
 * Takes up to `max` chosen messages out of `engine` into their
 * destinations. Returns the records to write and the queues moved to.
 */
export function moveOut(
  engine: QueueEngine,
  target: QueueEngine | undefined,
  options: RedriveOptions,
  max: number,
  { engines, deleting, now, checkDestination }: MoveContext,
): { records: LogRecord[]; touched: Set<QueueEngine>; moved: number } {
  const chosen = redriveFilter(options);
  const movable = (message: Message) => {
    if (!chosen(message) || message.state === 'in-flight') return undefined;
    return target ?? sourceOf(message, engine, engines, deleting);
  };

  // With `max`, the messages moved are those the queue would deliver
  // first (inDeliveryOrder), whether they are in memory or cold.

  // Every destination is checked before the first message moves, so a
  // refusal leaves the dead-letter queue as it was. With `to` there is
  // one; without, a pass of its own finds them rather than a list of
  // the moves: a cold backlog is read a page at a time, never held whole.
  if (checkDestination !== undefined && target !== undefined) {
    checkDestination(target.name);
  } else if (checkDestination !== undefined) {
    const destinations = new Set<string>();
    let counted = 0;
    for (const message of engine.inDeliveryOrder(now)) {
      if (counted >= max) break;
      const destination = movable(message);
      if (destination === undefined) continue;
      destinations.add(destination.name);
      counted++;
    }
    for (const name of destinations) checkDestination(name);
  }

  const records: LogRecord[] = [];
  const touched = new Set<QueueEngine>();
  let moved = 0;
  // inDeliveryOrder() reads cold messages a page at a time; take() below
  // is safe while it runs.
  for (const message of engine.inDeliveryOrder(now)) {
    if (moved >= max) break;
    const destination = movable(message);
    if (destination === undefined) continue;

    engine.take(message.seq);
    const copy = moveTo(destination, message, message.headers, now);
    // Between two memory queues a move leaves no record.
    records.push(...moveRecords(engine, destination, copy));
    touched.add(destination);
    moved++;
  }
  return { records, touched, moved };
}

/** The queue a dead letter died in, unless that is gone, going, or is `from`. */
function sourceOf(
  message: Message,
  from: QueueEngine,
  engines: Map<string, QueueEngine>,
  deleting: ReadonlyMap<QueueEngine, unknown>,
): QueueEngine | undefined {
  const name = message.headers[DEATH_HEADERS.queue];
  const source = name === undefined ? undefined : engines.get(name);
  if (source === undefined || deleting.has(source)) return undefined;
  return source === from ? undefined : source;
}
