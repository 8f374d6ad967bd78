// What happens to the outcomes a queue engine decides (engine/queue.ts
// takeOutcomes): a retried message gets a `retried` record, a dying one
// goes to its dead-letter destinations as copies (RabbitMQ's x-death
// headers, or Usher's own dead-letter queue, made on demand) or, with
// nowhere to go, is dropped and settled. The broker writes the records
// and wakes the queues this touched; this writes only the dead letters
// that wait for their dead-letter queue's delete (#whenDeleted).

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
import type { QueuesDeps } from './queues.js';
import { DEAD_LETTER_QUEUE_SETTINGS, resolveSettings } from './settings.js';

/** What dead-lettering needs of the broker. */
export interface DeadLetteringDeps {
  engines: Map<string, QueueEngine>;
  /** Queues whose delete is being written (queues.ts): nothing moves into one. */
  deleting: ReadonlyMap<QueueEngine, Promise<void>>;
  /** A new queue engine, for a dead-letter queue made on demand. */
  newEngine(name: string, settings: QueueSettings): QueueEngine;
  allocateSeq(): number;
  /** The protocol adapter's router (AMQP's x-dead-letter-exchange), if any. */
  router(): DeadLetterRouter | null;
  clock(): number;
  /** Logs records moving messages out of `engine` (Broker.appendMoves). */
  appendMoves: QueuesDeps['appendMoves'];
  /** Serves the consumers of a queue that messages entered. */
  afterChange(engine: QueueEngine): void;
  observed: Observations;
  logger: Logger;
}

/** Where a dying message goes, its headers there, and the records
 * declaring a queue made for it. */
interface Way {
  destinations: QueueEngine[];
  headers: Record<string, string>;
  records: LogRecord[];
}

/** A dead letter whose `deadLetter` queue is being deleted: it goes
 * there once `after`, that delete, settles. */
interface Held {
  after: Promise<void>;
  target: string;
  headers: Record<string, string>;
}

export class DeadLettering {
  /**
   * Seqs of the messages dead in each queue that wait for their
   * dead-letter queue's delete (#whenDeleted): a delete of the queue they
   * died in settles them with its other messages (queues.ts), as their
   * records are still that queue's.
   */
  readonly #held = new Map<QueueEngine, Set<number>>();

  constructor(private readonly deps: DeadLetteringDeps) {}

  /**
   * Records of what the engine decided, adding the queues it touched.
   * Dead letters held for their dead-letter queue's delete are written
   * later, by this: `held` gets a promise of each one written, else a
   * failure is only logged.
   */
  records(
    engine: QueueEngine,
    now: number,
    error: string | undefined,
    touched: Set<QueueEngine>,
    dropped?: Set<Outcome>,
    held?: Promise<void>[],
  ): LogRecord[] {
    const records: LogRecord[] = [];
    for (const outcome of engine.takeOutcomes()) {
      if (outcome.kind === 'dead') {
        records.push(...this.#deadLetter(engine, outcome, now, error, touched, dropped, held));
        continue;
      }
      const record = isLogged(engine) ? retriedRecord(engine, outcome, error) : undefined;
      // A queue being deleted: its delete's write settles the message, and
      // a `published` record (a nack with a reason) after it logged the
      // message back, for a queue made again under the name to take. Its
      // attempt goes unlogged should the delete fail.
      if (record !== undefined && !this.deps.deleting.has(engine)) records.push(record);
    }
    return records;
  }

  /** Seqs of the messages dead in `engine` waiting for a dead-letter queue's delete. */
  heldSeqs(engine: QueueEngine): number[] {
    return [...(this.#held.get(engine) ?? [])];
  }

  #deadLetter(
    engine: QueueEngine,
    outcome: Extract<Outcome, { kind: 'dead' }>,
    now: number,
    error: string | undefined,
    touched: Set<QueueEngine>,
    dropped?: Set<Outcome>,
    held?: Promise<void>[],
  ): LogRecord[] {
    const { message, reason } = outcome;
    const way = this.#way(engine, message, reason, now, error);
    if (way !== null && 'after' in way) {
      const written = this.#whenDeleted(engine, way, message.seq, (ready, at, into) =>
        this.#moveOut(engine, outcome, ready, at, into, dropped));
      this.#wait(engine, this.#countOnceWritten(engine, reason, written), held);
      return [];
    }
    this.#count(engine, reason, way === null ? 'dropped' : 'deadLettered');
    return this.#moveOut(engine, outcome, way, now, touched, dropped);
  }

  /** A message that died in `engine`: its death observed, its end counted, together. */
  #count(engine: QueueEngine, reason: DeathReason, end: 'deadLettered' | 'dropped'): void {
    this.deps.observed.died(engine.name, reason);
    engine.totals[end]++;
  }

  /**
   * A dead letter held for its dead-letter queue's delete counts once its
   * records are written, as the others count with theirs. Observed as it
   * died, it was in the deaths while not in `deadLettered`, and for good
   * when it ended otherwise: a close() while held fails its write, and
   * the message stays its queue's. Its own queue deleted meanwhile, that
   * queue's figures went with it (Observations.forgetQueue) and counting
   * would bring them back: it still goes into its dead-letter queue.
   */
  async #countOnceWritten(
    engine: QueueEngine,
    reason: DeathReason,
    written: Promise<void>,
  ): Promise<void> {
    await written;
    const stillThere = this.deps.engines.get(engine.name) === engine;
    if (stillThere) this.#count(engine, reason, 'deadLettered');
  }

  #moveOut(
    engine: QueueEngine,
    outcome: Extract<Outcome, { kind: 'dead' }>,
    way: Way | null,
    now: number,
    touched: Set<QueueEngine>,
    dropped?: Set<Outcome>,
  ): LogRecord[] {
    const { message, reason } = outcome;
    if (way === null) {
      dropped?.add(outcome);
      this.deps.logger.debug({ queue: engine.name, id: message.id, reason }, 'message dropped');
      return isLogged(engine) ? [{ type: 'settled', seqs: [message.seq] }] : [];
    }
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
      if ('after' in way) {
        const written = this.#whenDeleted(engine, way, undefined, (ready, at, into) =>
          this.#copies(message, ready, at, into));
        this.#wait(engine, this.#countOnceWritten(engine, 'overflow', written));
        continue;
      }
      this.#count(engine, 'overflow', 'deadLettered');
      records.push(...this.#copies(message, way, now, touched));
    }
    return records;
  }

  #copies(
    message: Message,
    way: Way,
    now: number,
    touched: Set<QueueEngine>,
  ): LogRecord[] {
    const records = [...way.records];
    for (const destination of way.destinations) {
      touched.add(destination);
      records.push(...copyDeadLetter(message, destination, way.headers, now, () =>
        this.deps.allocateSeq(),
      ));
    }
    return records;
  }

  /**
   * A dead letter whose dead-letter queue is being deleted goes where one
   * for a missing queue goes, once the delete lands: into that queue made
   * anew on demand (into the old one, should the delete fail). Moved
   * into the queue going away, it was settled only by a write after the
   * `queue-deleted` record, and a crash in between left it live for a
   * queue made again under the name (README "known limits"). Meanwhile
   * its record is still its own queue's: a crash brings it back there.
   */
  async #whenDeleted(
    engine: QueueEngine,
    held: Held,
    seq: number | undefined,
    deliver: (way: Way, now: number, touched: Set<QueueEngine>) => LogRecord[],
  ): Promise<void> {
    if (seq !== undefined) this.#hold(engine, seq);
    let way: Way | Held = held;
    while ('after' in way) {
      // Refused, the delete leaves the queue as it was: the message goes in.
      await way.after.catch(() => {});
      // A turn later, so that declares of the queue waiting for the same
      // delete (Queues.deletedFirst) make it first, with their settings:
      // made here on demand, with dead-letter settings, it was there
      // before a declare asked ahead of the nack, which then answered as
      // an update of it (test/broker/held-dead-letters.test.ts). This
      // holds while a waiting declare reaches its queue without I/O (only
      // microtasks after the delete settles); an await on I/O added to
      // that path would undo it, and the test would say so.
      await new Promise<void>((resolve) => setImmediate(resolve));
      way = this.#deadLetterQueue(way.target, way.headers);
    }
    if (seq !== undefined) this.#letGo(engine, seq);

    const touched = new Set<QueueEngine>();
    const records = deliver(way, this.deps.clock(), touched);
    // Appended before the queues are woken, as in Broker.settleOutcomes.
    const written = this.deps.appendMoves(engine, touched, records);
    for (const queue of touched) this.deps.afterChange(queue);
    await written;
  }

  #hold(engine: QueueEngine, seq: number): void {
    let seqs = this.#held.get(engine);
    if (seqs === undefined) this.#held.set(engine, (seqs = new Set()));
    seqs.add(seq);
  }

  #letGo(engine: QueueEngine, seq: number): void {
    const seqs = this.#held.get(engine);
    if (seqs === undefined || !seqs.delete(seq)) return;
    if (seqs.size === 0) this.#held.delete(engine);
  }

  /** Gives `written` to whoever waits for it, else logs its failure. */
  #wait(engine: QueueEngine, written: Promise<void>, held?: Promise<void>[]): void {
    if (held !== undefined) {
      held.push(written);
      return;
    }
    written.catch((err: unknown) => {
      this.deps.logger.error({ err, queue: engine.name }, 'could not log a dead letter');
    });
  }

  /**
   * Where a message dying in `engine` goes, and its headers there: the
   * protocol adapter's router, else the queue's `deadLetter` queue (made
   * on demand; `records` declares it). Null: nowhere, it is dropped.
   * Held: that queue is being deleted.
   */
  #way(
    engine: QueueEngine,
    message: Message,
    reason: DeathReason,
    now: number,
    error: string | undefined,
  ): Way | Held | null {
    const routed = this.deps.router()?.route(
      engine.name,
      reason,
      deathHeaders(message, engine.name, reason, now, error),
    );
    if (routed !== undefined) {
      // A queue being deleted counts as no queue, as for a publish.
      const destinations = routed.queues
        .map((queue) => this.deps.engines.get(queue))
        .filter((queue): queue is QueueEngine =>
          queue !== undefined && !this.deps.deleting.has(queue));
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

    if (error !== undefined) {
      headers[LAST_ERROR_HEADER] = error;
      headers[FIRST_ERROR_HEADER] ??= error;
    }
    return this.#deadLetterQueue(target, headers);
  }

  /** `target` as a `deadLetter` queue: made on demand; held while its delete is written. */
  #deadLetterQueue(target: string, headers: Record<string, string>): Way | Held {
    const records: LogRecord[] = [];
    let dlq = this.deps.engines.get(target);
    const deleted = dlq === undefined ? undefined : this.deps.deleting.get(dlq);
    if (deleted !== undefined) return { after: deleted, target, headers };
    if (dlq === undefined) {
      const settings = resolveSettings(target, DEAD_LETTER_QUEUE_SETTINGS);
      dlq = this.deps.newEngine(target, settings);
      this.deps.engines.set(target, dlq);
      records.push(declared(target, settings));
    }
    return { destinations: [dlq], headers, records };
  }
}
