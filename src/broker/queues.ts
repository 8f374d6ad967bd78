// A queue as a whole, as HTTP's queue routes see it: declaring it (and
// the dead-letter queue its settings name), purging it, deleting it with
// whatever waits on it, and the info it shows; and for its dead letters
// (usher dlq), peeking at its messages and redriving them (redrive.ts
// chooses them). Apart from broker.ts because these are an operator's
// acts on queues, not the path a message takes through one.

import type { Logger } from 'pino';

import {
  InvalidArgumentError,
  NotDeadLetterQueueError,
  QueueExistsError,
  QueueNotFoundError,
  type UsherError,
} from '../errors.js';
import type { QueueEngine } from '../engine/queue.js';
import type { QueueSettings } from '../engine/types.js';
import type { Observations } from '../observe/observations.js';
import type { LogStore } from '../storage/log-store.js';
import type { LogRecord } from '../storage/records.js';
import { checkCount } from './checks.js';
import { MAX_RECEIVE, type Waiter } from './consumers.js';
import type { DeadLetterRouter } from './dead-letter.js';
import { isLogged, settledRecords } from './durability.js';
import { declared } from './messages.js';
import { moveOut } from './redrive.js';
import {
  DEAD_LETTER_QUEUE_SETTINGS,
  checkQueueName,
  resolveSettings,
  settingsDifference,
} from './settings.js';
import type {
  PeekedMessage,
  QueueInfo,
  QueueSettingsInput,
  RedriveOptions,
  Subscriber,
} from './types.js';

/** What these acts on queues need of the broker. */
export interface QueuesDeps {
  engines: Map<string, QueueEngine>;
  waiters: Map<QueueEngine, Waiter[]>;
  subscribers: Map<QueueEngine, Subscriber[]>;
  /** Deletes being written, by queue: compaction leaves their messages alone. */
  deleting: Map<QueueEngine, Promise<void>>;
  /** Seqs of the publishes to a queue still being written (publish-landing.ts). */
  publishesWriting(engine: QueueEngine): number[];
  /** Seqs of a queue's dead letters waiting for their dead-letter queue's
   * delete (dead-lettering.ts): still that queue's in the log. */
  deadLettersHeld(engine: QueueEngine): number[];
  observed: Observations;
  logger: Logger;
  clock(): number;
  store(): LogStore;
  newEngine(name: string, settings: QueueSettings): QueueEngine;
  /** The protocol adapter's router (AMQP's x-dead-letter-exchange), if any. */
  deadLetterRouter(): DeadLetterRouter | null;
  /** Tells the listener of Broker.onQueueDeleted, if there is one. */
  queueDeleted(name: string): void;
  checkOpen(): void;
  engineOf(name: string, field?: string): QueueEngine;
  storeError(err: unknown): UsherError;
  /** Logs changes to `engine`'s messages, as its durability says. */
  append(engine: QueueEngine, records: LogRecord[], synced?: boolean): Promise<void>;
  /** Logs changes touching several queues: synced if any one wants it. */
  appendMoves(
    engine: QueueEngine,
    touched: Iterable<QueueEngine>,
    records: LogRecord[],
  ): Promise<void>;
  afterChange(engine: QueueEngine): void;
}

export class Queues {
  constructor(private readonly deps: QueuesDeps) {}

  /**
   * Declares a queue. A new queue takes the defaults for settings left out;
   * an existing one keeps its current value for them and changes only the
   * settings named, so declaring `{}` never undoes an operator's tuning.
   * `fifo` cannot change once the queue exists. With `onlyNew` (an AMQP
   * queue.declare, which may not change a queue it did not make) an
   * existing queue is left as it is and the answer is created false.
   */
  async createQueue(
    name: string,
    input: QueueSettingsInput,
    { onlyNew = false, shortLived = false }: { onlyNew?: boolean; shortLived?: boolean } = {},
  ): Promise<{ created: boolean; updated: boolean; queue: QueueInfo }> {
    this.deps.checkOpen();
    checkQueueName(name, 'name');
    // And its dead-letter queue's: one gone when this lands is made anew.
    const deadLetter = input.deadLetter ?? this.deps.engines.get(name)?.settings.deadLetter;
    await this.deletedFirst(name, deadLetter ?? name);
    const existing = this.deps.engines.get(name);
    if (existing !== undefined && onlyNew) {
      return { created: false, updated: false, queue: this.info(existing) };
    }
    const settings = resolveSettings(
      name,
      existing === undefined
        ? input
        : {
            ...existing.settings,
            ...input,
            backoff: { ...existing.settings.backoff, ...input.backoff },
          },
    );

    if (existing !== undefined) {
      // Taken and then never used, it read as set (new-user session).
      if (input.deadLetter && this.deps.deadLetterRouter()?.decidesFor(name) === true) {
        throw new QueueExistsError(name, 'deadLetter: its AMQP x-dead-letter-exchange ' +
          'decides where its dead letters go; redeclare it over AMQP to change that');
      }
      for (const fixed of ['fifo', 'durability'] as const) {
        if (settings[fixed] !== existing.settings[fixed]) {
          throw new QueueExistsError(
            name,
            `${fixed}: ${existing.settings[fixed]} now, ${settings[fixed]} asked`,
          );
        }
      }
      if (settingsDifference(existing.settings, settings) === null) {
        return { created: false, updated: false, queue: this.info(existing) };
      }
    }

    const records: LogRecord[] = [];
    const added: string[] = [];
    if (settings.deadLetter !== null && !this.deps.engines.has(settings.deadLetter)) {
      const dlqSettings = resolveSettings(
        settings.deadLetter,
        DEAD_LETTER_QUEUE_SETTINGS,
      );
      this.deps.engines.set(
        settings.deadLetter,
        this.deps.newEngine(settings.deadLetter, dlqSettings),
      );
      records.push(declared(settings.deadLetter, dlqSettings));
      added.push(settings.deadLetter);
    }
    const engine = existing ?? this.deps.newEngine(name, settings);
    const previous = engine.settings;
    engine.settings = settings;
    this.deps.engines.set(name, engine);
    if (isLogged(engine)) records.push(declared(name, settings));
    if (existing === undefined) added.push(name);

    try {
      if (records.length > 0) await this.deps.store().append(records);
    } catch (err) {
      engine.settings = previous;
      for (const queue of added) {
        if (this.deps.engines.get(queue)?.size === 0) this.deps.engines.delete(queue);
      }
      throw this.deps.storeError(err);
    }
    this.deps.logger[shortLived ? 'debug' : 'info'](
      { queue: name, settings },
      existing ? 'queue updated' : 'queue created',
    );
    return {
      created: existing === undefined,
      updated: existing !== undefined,
      queue: this.info(engine),
    };
  }

  /**
   * Waits out deletes of these queues being written: a declare asked
   * meanwhile comes after them. Answered as of the queue still there, its
   * record (settings changed) followed the `queue-deleted` one, and a
   * restart brought back a queue gone from memory; a dead-letter queue
   * found there was not made, and was gone once the declare answered.
   */
  private async deletedFirst(...names: string[]): Promise<void> {
    for (;;) {
      const underway = names
        .map((name) => this.deps.engines.get(name))
        .map((engine) => (engine === undefined ? undefined : this.deps.deleting.get(engine)))
        .find((deleting) => deleting !== undefined);
      if (underway === undefined) return;
      // Refused, the delete leaves the queue as it was: declared over it.
      await underway.catch(() => {});
    }
  }

  /**
   * Removes the queue's waiting messages; leased ones stay leased. They
   * leave memory before their `settled` records are written, as an
   * acked message does (settling.ts): while the write is in flight
   * nothing may deliver, move or expire them, and compaction must not
   * copy them forward past those records (LogStoreOptions.snapshotMessage).
   * Should the write fail they are put back as they were, rather than be
   * gone until a restart brings them back from the log.
   */
  async purgeQueue(name: string): Promise<{ purged: number }> {
    this.deps.checkOpen();
    const engine = this.deps.engineOf(name);
    const purged = engine.purge();
    const { seqs } = purged;

    if (seqs.length > 0) {
      try {
        await this.deps.append(engine, settledRecords(seqs));
      } catch (err) {
        // Not when the queue was deleted meanwhile: nothing waits there.
        if (this.deps.engines.get(name) === engine) {
          engine.restorePurged(purged, this.deps.clock());
          this.deps.afterChange(engine);
        }
        throw err;
      }
    }
    this.deps.logger.info({ queue: name, purged: seqs.length }, 'queue purged');
    return { purged: seqs.length };
  }

  /**
   * `shortLived`: a queue that comes and goes with its clients (AMQP
   * exclusive and auto-delete ones: Celery makes and drops hundreds an
   * hour) is logged at debug, not info.
   *
   * The records are written first and memory changes after: consumers
   * told their queue is gone (and AMQP, which drops its bindings) cannot
   * be told otherwise should the write fail, and while the name is taken
   * nobody can make a new queue under it meanwhile. Until the records
   * land the queue works as before, with two exceptions: compaction
   * does not copy its messages past their `settled` records
   * (Broker.snapshot asks `deleting`), and nothing enters it. It takes
   * no publish (404) and no redrive (404); a dead letter routed there
   * goes as if routed to no queue, and one its `deadLetter` setting
   * sends there waits for the delete (dead-lettering.ts). A record
   * written into it after the delete's stayed live, and a queue made
   * again under the name took it at the next start. Publishes still
   * being written as the delete starts, and dead letters of its own
   * waiting for another queue's delete, are settled with the rest, in
   * the same write; whatever else its records left in the queue (an ack
   * or a move whose write failed meanwhile) ends at its `queue-deleted`
   * record.
   */
  async deleteQueue(
    name: string,
    { shortLived = false }: { shortLived?: boolean } = {},
  ): Promise<void> {
    this.deps.checkOpen();
    const engine = this.deps.engineOf(name);
    // Asked again while its records are written: the same delete.
    const underway = this.deps.deleting.get(engine);
    if (underway !== undefined) return underway;

    const deleted = this.writeDelete(engine, shortLived);
    this.deps.deleting.set(engine, deleted);
    try {
      await deleted;
    } finally {
      this.deps.deleting.delete(engine);
    }
  }

  private async writeDelete(engine: QueueEngine, shortLived: boolean): Promise<void> {
    const { name } = engine;
    // Publishes still being written are settled here too, their records
    // coming before these, and so are its dead letters waiting for their
    // dead-letter queue's delete, which left memory but not yet the log.
    // The `queue-deleted` record would end them as well, but only by a
    // scan of every live message; named here, the ledger finds the queue
    // empty and scans nothing (storage/ledger.ts).
    const writing = [...this.deps.publishesWriting(engine), ...this.deps.deadLettersHeld(engine)];
    const seqs = writing.length === 0 ? engine.allSeqs() : [...engine.allSeqs(), ...writing];
    const records: LogRecord[] = [...settledRecords(seqs), { type: 'queue-deleted', name }];

    // Nothing moves in meanwhile, but an ack or a purge whose write fails
    // puts its messages back. The seqs above do not name those, and they
    // need no `settled` record of their own: the `queue-deleted` record
    // ends every message still in the queue (storage/ledger.ts).
    await this.deps.append(engine, records);
    // Taken out meanwhile: only a declare that made it and failed does so.
    if (this.deps.engines.get(name) !== engine) return;

    this.deps.engines.delete(name);
    engine.releaseHotMemory();
    this.deps.observed.forgetQueue(name, engine.totals);
    // A copy: cleanup() takes each waiter out of the list being walked.
    for (const waiter of [...(this.deps.waiters.get(engine) ?? [])]) {
      waiter.cleanup();
      waiter.resolve([]);
    }
    this.deps.waiters.delete(engine);
    for (const subscriber of this.deps.subscribers.get(engine) ?? []) subscriber.cancelled?.();
    this.deps.subscribers.delete(engine);
    // After the consumers were told, so that what they undo comes first.
    this.deps.queueDeleted(name);

    const level = shortLived ? 'debug' : 'info';
    this.deps.logger[level]({ queue: name, messages: seqs.length }, 'queue deleted');
  }

  peek(queue: string, options: { limit: number; offset: number }): PeekedMessage[] {
    const engine = this.deps.engineOf(queue);
    const limit = checkCount(options.limit, 'limit', MAX_RECEIVE);
    const offset = checkCount(options.offset, 'offset', Number.MAX_SAFE_INTEGER, 0);
    const listed: PeekedMessage[] = [];

    for (const message of engine.list(offset, limit)) {
      listed.push({
        id: message.id,
        body: message.body,
        headers: message.headers,
        priority: message.priority,
        group: message.group,
        state: message.state,
        failures: message.failures,
        publishedAt: message.publishedAt,
        availableAt: message.availableAt,
        expiresAt: message.expiresAt,
      });
    }
    return listed;
  }

  async redrive(
    queue: string,
    options: RedriveOptions,
    checkDestination?: (queue: string) => void,
  ): Promise<{ moved: number }> {
    this.deps.checkOpen();
    const engine = this.deps.engineOf(queue);
    const target = options.to === undefined ? undefined : this.deps.engineOf(options.to, 'to');
    // Refused as a publish to it is: a message moved in now would land
    // after its `queue-deleted` record, live again for a queue made again
    // under the name, though the delete took it from memory. Without
    // `to`, moveOut leaves such a queue's dead letters where they are, as
    // it does those of a queue that is gone.
    if (target !== undefined && this.deps.deleting.has(target)) {
      throw new QueueNotFoundError(String(options.to), 'to');
    }
    if (target === engine) {
      throw new InvalidArgumentError('to', `cannot redrive queue "${queue}" into itself`);
    }
    const max =
      options.max === undefined
        ? Number.MAX_SAFE_INTEGER
        : checkCount(options.max, 'max', Number.MAX_SAFE_INTEGER);
    if (options.deadLettersOnly === true && this.deadLetterSourcesOf(queue).length === 0) {
      throw new NotDeadLetterQueueError(queue, engine.settings.deadLetter);
    }

    const { records, touched, moved } = moveOut(engine, target, options, max, {
      engines: this.deps.engines,
      deleting: this.deps.deleting,
      now: this.deps.clock(),
      checkDestination,
    });

    // Appended before the queues are woken, as in Broker.settleOutcomes:
    // a full drop-oldest target may displace a message moved in at once.
    const written = this.deps.appendMoves(engine, touched, records);
    // The source too: inDeliveryOrder may have made delayed messages ready.
    this.deps.afterChange(engine);
    for (const destination of touched) this.deps.afterChange(destination);
    await written;
    this.deps.logger.info({ queue, to: options.to, moved }, 'redriven');
    return { moved };
  }

  info(engine: QueueEngine): QueueInfo {
    const { counts, totals } = engine;
    return {
      name: engine.name,
      settings: engine.settings,
      stats: {
        ready: counts.ready,
        inFlight: counts.inFlight,
        delayed: counts.delayed,
        total: engine.size,
        bytes: counts.bytes,
        ...totals,
        oldestReadyAgeMs: engine.oldestReadyAgeMs(this.deps.clock()),
      },
      deadLetterSources: this.deadLetterSourcesOf(engine.name),
    };
  }

  /** Queues whose `deadLetter` setting, or dead-letter router (AMQP), leads into `name`. */
  private deadLetterSourcesOf(name: string): string[] {
    const sources = [...this.deps.engines.values()]
      .filter((other) => other.settings.deadLetter === name)
      .map((other) => other.name);
    for (const source of this.deps.deadLetterRouter()?.sourcesOf(name) ?? []) {
      if (this.deps.engines.has(source) && !sources.includes(source)) sources.push(source);
    }
    return sources;
  }
}
