// What happens to the outcomes a queue engine decides (engine/queue.ts
// takeOutcomes): a retried message gets a `retried` record, a dying one
// goes to its dead-letter destinations as copies (RabbitMQ's x-death
// headers, or Usher's own dead-letter queue, made on demand) or, with
// nowhere to go, is dropped and settled. The broker writes the records
// and wakes the queues this touched.

import type { Logger } from 'pino';

import type { Outcome, QueueEngine } from '../engine/queue.js';
import type { DeathReason, Message, QueueSettings } from '../engine/types.js';
import type { Observations } from '../observe/observations.js';
import type { LogRecord } from '../storage/records.js';
import {
  type DeadLetterRouter,
  copyDeadLetter,
  deathHeaders,
  deliverDeadLetter,
  isExpiryCycle,
} from './dead-letter.js';
import { isLogged } from './durability.js';
import { FIRST_ERROR_HEADER, LAST_ERROR_HEADER, declared, retriedRecord } from './messages.js';
import { DEAD_LETTER_QUEUE_SETTINGS, resolveSettings } from './settings.js';

/** What dead-lettering needs of the broker. */
export interface DeadLetteringDeps {
  engines: Map<string, QueueEngine>;
  /** A new queue engine, for a dead-letter queue made on demand. */
  newEngine(name: string, settings: QueueSettings): QueueEngine;
  allocateSeq(): number;
  /** The protocol adapter's router (AMQP's x-dead-letter-exchange), if any. */
  router(): DeadLetterRouter | null;
  observed: Observations;
  logger: Logger;
}

export class DeadLettering {
  constructor(private readonly deps: DeadLetteringDeps) {}

  /** Records of what the engine decided, adding the queues it touched. */
  records(
    engine: QueueEngine,
    now: number,
    error: string | undefined,
    touched: Set<QueueEngine>,
    dropped?: Set<Outcome>,
  ): LogRecord[] {
    const records: LogRecord[] = [];
    for (const outcome of engine.takeOutcomes()) {
      if (outcome.kind === 'dead') {
        records.push(...this.#deadLetter(engine, outcome, now, error, touched, dropped));
      } else if (isLogged(engine)) {
        records.push(retriedRecord(engine, outcome, error));
      }
    }
    return records;
  }

  #deadLetter(
    engine: QueueEngine,
    outcome: Extract<Outcome, { kind: 'dead' }>,
    now: number,
    error: string | undefined,
    touched: Set<QueueEngine>,
    dropped?: Set<Outcome>,
  ): LogRecord[] {
    const { message, reason } = outcome;
    this.deps.observed.died(engine.name, reason);
    const way = this.#way(engine, message, reason, now, error);
    if (way === null) {
      engine.totals.dropped++;
      dropped?.add(outcome);
      this.deps.logger.debug({ queue: engine.name, id: message.id, reason }, 'message dropped');
      return isLogged(engine) ? [{ type: 'settled', seqs: [message.seq] }] : [];
    }
    engine.totals.deadLettered++;
    for (const destination of way.destinations) touched.add(destination);
    return [
      ...way.records,
      ...deliverDeadLetter(engine, message, way.destinations, way.headers, now, () =>
        this.deps.allocateSeq(),
      ),
    ];
  }

  /**
   * reject-publish-dlx: newcomers the limits refused die at once (reason
   * overflow) into the queue's dead-letter destinations, as copies, in
   * the same write as the batch. With nowhere to go they are only
   * refused, as under reject-publish: never accepted, so not `dropped`.
   */
  refused(
    engine: QueueEngine,
    refused: Message[],
    now: number,
    touched: Set<QueueEngine>,
  ): LogRecord[] {
    const records: LogRecord[] = [];
    for (const message of refused) {
      const way = this.#way(engine, message, 'overflow', now, undefined);
      if (way === null) continue;
      this.deps.observed.died(engine.name, 'overflow');
      engine.totals.deadLettered++;
      records.push(...way.records);
      for (const destination of way.destinations) {
        touched.add(destination);
        records.push(...copyDeadLetter(message, destination, way.headers, now, () =>
          this.deps.allocateSeq(),
        ));
      }
    }
    return records;
  }

  /**
   * Where a message dying in `engine` goes, and its headers there: the
   * protocol adapter's router, else the queue's `deadLetter` queue (made
   * on demand; `records` declares it). Null: nowhere, it is dropped.
   */
  #way(
    engine: QueueEngine,
    message: Message,
    reason: DeathReason,
    now: number,
    error: string | undefined,
  ): { destinations: QueueEngine[]; headers: Record<string, string>; records: LogRecord[] } | null {
    const routed = this.deps.router()?.route(
      engine.name,
      reason,
      deathHeaders(message, engine.name, reason, now, error),
    );
    if (routed !== undefined) {
      const destinations = routed.queues
        .map((queue) => this.deps.engines.get(queue))
        .filter((queue): queue is QueueEngine => queue !== undefined);
      if (destinations.length === 0) return null;
      return { destinations, headers: routed.headers, records: [] };
    }

    const target = engine.settings.deadLetter;
    if (target === null) return null;

    const headers = deathHeaders(message, engine.name, reason, now, error);
    // Expired its way round a dead-letter loop back here: dropped (the
    // caller counts it), as RabbitMQ does, rather than circling forever.
    if (reason === 'expired' && isExpiryCycle(headers, target)) {
      this.deps.logger.debug({ queue: engine.name, id: message.id, target }, 'dead-letter cycle');
      return null;
    }

    const records: LogRecord[] = [];
    let dlq = this.deps.engines.get(target);
    if (dlq === undefined) {
      const settings = resolveSettings(target, DEAD_LETTER_QUEUE_SETTINGS);
      dlq = this.deps.newEngine(target, settings);
      this.deps.engines.set(target, dlq);
      records.push(declared(target, settings));
    }

    if (error !== undefined) {
      headers[LAST_ERROR_HEADER] = error;
      headers[FIRST_ERROR_HEADER] ??= error;
    }
    return { destinations: [dlq], headers, records };
  }
}
