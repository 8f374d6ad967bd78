// The AMQP view of the broker shared by every connection: exchanges and
// bindings (src/routing), which queues are auto-delete, and how many
// consumers each queue has. Durable exchanges and bindings are kept in
// `<data>/exchanges.json` and the journal of changes since,
// `<data>/exchanges.journal` (topology-journal.ts): a bind-ok or
// declare-ok goes out once its change is on disk.

import type { Logger } from 'pino';

import type { Broker } from '../broker/broker.js';
import type { QueueSettingsInput } from '../broker/types.js';
import { resolveSettings } from '../broker/settings.js';
import type { ExchangeTable } from '../routing/exchanges.js';
import { RoutingError } from '../routing/errors.js';
import { REPLY } from './constants.js';
import { deadLetterExchangeRouter, deadLetterRoutes } from './dead-letter-exchange.js';
import { AmqpError } from './errors.js';
import { ExclusiveReaper } from './exclusive-reaper.js';
import { EMPTY_TABLE, plainTable, type FieldTable } from './field-table.js';
import { QueueExpiry } from './queue-expiry.js';
import { checkQueueEquivalent, inequivalentArg } from './queue-equivalence.js';
import {
  QueueFeatureTable,
  checkFeaturesEquivalent,
  type QueueFeatures,
} from './queue-features.js';
import { SingleActiveConsumers } from './single-active.js';
import { type JournalOptions, TopologyJournal } from './topology-journal.js';

export interface ExchangeDeclaration {
  name: string;
  type: string;
  passive: boolean;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  arguments: FieldTable;
}

export interface BindingRequest {
  source: string;
  destination: string;
  destinationKind: 'queue' | 'exchange';
  routingKey: string;
  arguments: FieldTable;
}

/** No queue: read only, shared by every publish that routes nowhere. */
const NOWHERE: readonly string[] = [];

/**
 * The owner of an exclusive queue whose connection has gone and whose
 * delete is not written yet: no connection is it, so every one gets 405.
 */
const GONE_OWNER: object = Object.freeze({});

export class Topology {
  private readonly consumers = new Map<string, number>();
  private readonly autoDelete = new Set<string>();
  /** Queues declared durable=false (memory queues in Usher). */
  private readonly transient = new Set<string>();
  /** Exclusive queues and the connection that owns each (or GONE_OWNER). */
  private readonly owners = new Map<string, object>();
  /** Connections whose exclusive queues were handed to the reaper. */
  private readonly goneOwners = new WeakSet<object>();
  private readonly reaper: ExclusiveReaper;
  /** Queues with an exclusive consumer. */
  private readonly exclusiveConsumers = new Set<string>();
  /** The last declare under way of each queue name (oneDeclareAtATime). */
  private readonly declaring = new Map<string, Promise<void>>();
  readonly singleActive = new SingleActiveConsumers();
  private readonly expiry: QueueExpiry;
  /** deadLetterRoutes as the topology stands; null after any change. */
  private deadLetterInto: Map<string, string[]> | null = null;
  /** route's last answer for the default exchange (read only). */
  private lastDirect: readonly string[] = NOWHERE;

  private constructor(
    private readonly table: ExchangeTable,
    private readonly journal: TopologyJournal,
    private readonly broker: Broker,
    private readonly logger: Logger,
    private readonly features: QueueFeatureTable,
  ) {
    this.reaper = new ExclusiveReaper((queue) => this.deleteExclusive(queue));
    this.expiry = new QueueExpiry({
      inUse: (queue) => this.consumerCount(queue) > 0,
      expire: (queue) => this.expire(queue),
    });
    for (const [queue, { expiresMs }] of features.entries()) this.expiry.touch(queue, expiresMs);
    broker.routeDeadLetters(deadLetterExchangeRouter({
      featuresOf: (queue) => this.features.get(queue),
      route: (exchange, key, headers) => this.route(exchange, key, headers),
      onDropped: (queue, why) => this.logger.debug({ queue, why }, 'dead letter dropped'),
      routes: () => (this.deadLetterInto ??= deadLetterRoutes(this.features.entries(),
        this.table.bindings(), (exchange, key) => this.route(exchange, key, EMPTY_TABLE))),
    }));
    // A queue deleted over HTTP or the CLI takes its AMQP state too; an
    // AMQP queue.delete also awaits queueDeleted itself, which is harmless
    // twice.
    broker.onQueueDeleted((queue) => {
      this.queueDeleted(queue).catch((err: unknown) =>
        this.logger.error({ err, queue }, 'AMQP state of a deleted queue not saved'));
    });
  }

  static async open(
    dataDir: string,
    broker: Broker,
    logger: Logger,
    options: JournalOptions = {},
  ): Promise<Topology> {
    // Usher's queues are all durable: they survive restarts in the log.
    const queues = { hasQueue: (name: string) => broker.hasQueue(name), isDurable: () => true };
    const { table, journal } = await TopologyJournal.open(dataDir, queues, logger, options);
    const features = await QueueFeatureTable.open(dataDir, {
      has: (name) => broker.hasQueue(name),
      names: () => broker.listQueues().map((queue) => queue.name),
    }, logger);
    const topology = new Topology(table, journal, broker, logger, features);
    await topology.dropBindingsOfMissingQueues();
    await topology.deleteOrphanedExclusive();
    return topology;
  }

  /**
   * A queue's delete is written to the log before its bindings leave
   * exchanges.journal: a crash in between leaves bindings to a queue that
   * is gone, which a new queue of that name would otherwise inherit.
   */
  private async dropBindingsOfMissingQueues(): Promise<void> {
    const missing = new Set<string>();
    for (const binding of this.table.bindings()) {
      if (binding.destinationKind === 'queue' && !this.broker.hasQueue(binding.destination)) {
        missing.add(binding.destination);
      }
    }
    if (missing.size === 0) return;
    for (const queue of missing) this.table.queueDeleted(queue);
    this.logger.warn({ queues: [...missing] }, 'bindings of queues deleted before a crash dropped');
    await this.save().catch((err: unknown) =>
      this.logger.error({ err }, 'dropped bindings not saved; the next change retries'));
  }

  /**
   * Exclusive queues left by a previous run (a crash, or a stop before
   * their connections' cleanup ended) belong to connections that are
   * gone: they are deleted before anyone can connect, as RabbitMQ does.
   */
  private async deleteOrphanedExclusive(): Promise<void> {
    const orphans = [...this.features.entries()]
      .filter(([, features]) => features.exclusive === true)
      .map(([queue]) => queue);
    for (const queue of orphans) {
      try {
        await this.broker.deleteQueue(queue, { shortLived: true });
        await this.queueDeleted(queue);
        this.logger.info({ queue }, 'exclusive queue of a previous run deleted');
      } catch (err) {
        this.logger.warn({ err, queue }, 'exclusive queue of a previous run not deleted');
      }
    }
  }

  /**
   * Stops expiry timers and dead-letter routing: the listener is closing.
   * The journal closes once the saves under way end (see flush()).
   */
  close(): void {
    this.expiry.close();
    this.reaper.close();
    this.broker.routeDeadLetters(null);
    this.broker.onQueueDeleted(null);
    void this.journal.close();
  }

  // --- queues ---------------------------------------------------------

  hasQueue(name: string): boolean {
    return this.broker.hasQueue(name);
  }

  /** Dead-letter exchange, x-expires, single active consumer of `queue`. */
  featuresOf(queue: string): QueueFeatures {
    return this.features.get(queue);
  }

  /** 406 when a redeclare asks for other AMQP-only arguments. */
  checkFeatures(queue: string, asked: QueueFeatures): void {
    checkFeaturesEquivalent(queue, this.features.get(queue), asked);
  }

  /**
   * Runs `declare` once every declare of `queue` begun before it has
   * ended. A new queue's declare awaits two writes (its arguments, then
   * the queue); a second declare of the name in between must find the
   * first one's queue and be compared with it, not create it again.
   */
  async oneDeclareAtATime(queue: string, declare: () => Promise<void>): Promise<void> {
    const previous = this.declaring.get(queue);
    let release!: () => void;
    const turn = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.declaring.set(queue, turn);
    try {
      await previous;
      await declare();
    } finally {
      release();
      if (this.declaring.get(queue) === turn) this.declaring.delete(queue);
    }
  }

  /** Keeps the AMQP-only arguments of a queue just created. */
  async setFeatures(queue: string, features: QueueFeatures): Promise<void> {
    this.deadLetterInto = null;
    await this.features.set(queue, features);
  }

  /** A declare or basic.get: the queue's x-expires clock starts again. */
  queueUsed(queue: string): void {
    this.expiry.touch(queue, this.features.get(queue).expiresMs);
  }

  private async expire(queue: string): Promise<void> {
    if (!this.broker.hasQueue(queue)) return;
    try {
      const shortLived = this.isShortLived(queue);
      await this.broker.deleteQueue(queue, { shortLived });
      await this.queueDeleted(queue);
      this.logger[shortLived ? 'debug' : 'info']({ queue }, 'queue expired (x-expires)');
    } catch (err) {
      this.logger.warn({ err, queue }, 'expired queue not deleted');
    }
  }

  /**
   * RabbitMQ refuses a redeclare with other arguments; so does Usher,
   * naming the argument (`sent` are the declare's own).
   */
  checkEquivalent(name: string, asked: QueueSettingsInput, sent: FieldTable): void {
    const current = this.broker.settingsOf(name);
    const merged = resolveSettings(name, {
      ...current,
      ...asked,
      backoff: { ...current.backoff, ...asked.backoff },
    });
    checkQueueEquivalent(name, current, merged, sent);
  }

  /** 405 when `queue` is exclusive to another connection (RabbitMQ). */
  checkAccess(queue: string, connection: object): void {
    const owner = this.owners.get(queue);
    if (owner !== undefined && owner !== connection) {
      throw new AmqpError(REPLY.RESOURCE_LOCKED,
        `cannot obtain exclusive access to locked queue '${queue}' in vhost '/'`);
    }
  }

  /** Undoes claim() by `connection` of a queue it then did not make. */
  unclaim(queue: string, connection: object): void {
    if (this.owners.get(queue) === connection) this.owners.delete(queue);
  }

  /**
   * Makes `queue` exclusive to `connection`; 405 if it was not made by it.
   * A connection that has gone claims nothing: its declare, having waited
   * for another of the name (oneDeclareAtATime) that then failed, made the
   * queue for an owner whose queues were already reaped, locked to every
   * connection until a restart (breaker).
   */
  claim(queue: string, connection: object, created: boolean): void {
    if (this.goneOwners.has(connection)) {
      throw new AmqpError(REPLY.CONNECTION_FORCED,
        `queue '${queue}' not declared: its connection has closed`);
    }
    if (!created && this.owners.get(queue) !== connection) {
      throw new AmqpError(REPLY.RESOURCE_LOCKED,
        `cannot obtain exclusive access to locked queue '${queue}' in vhost '/'`);
    }
    this.owners.set(queue, connection);
  }

  /**
   * An exclusive or auto-delete queue: it comes and goes with its
   * clients, and is logged at debug (Broker.createQueue).
   */
  isShortLived(queue: string): boolean {
    return this.owners.has(queue) || this.autoDelete.has(queue) ||
      this.features.get(queue).exclusive === true;
  }

  /**
   * Deletes the exclusive queues of `connection`, which has closed. Each
   * stays locked to every connection until its delete is written: one the
   * log refuses is retried (ExclusiveReaper), where it used to stay owned
   * by no one, open to all, until a restart. Settles once each queue was
   * deleted or its retry planned.
   */
  deleteExclusiveOf(connection: object, logger: Logger): Promise<void> {
    this.goneOwners.add(connection);
    const owned: string[] = [];
    for (const [queue, owner] of this.owners) {
      if (owner === connection) owned.push(queue);
    }
    for (const queue of owned) this.owners.set(queue, GONE_OWNER);
    return this.reaper.reap(owned, logger);
  }

  private async deleteExclusive(queue: string): Promise<void> {
    // A declare of it still being written as its connection went makes
    // the queue after this: it goes too, or stayed locked to all.
    await this.declaring.get(queue);
    if (this.owners.get(queue) !== GONE_OWNER) return;
    if (!this.broker.hasQueue(queue)) {
      this.owners.delete(queue);
      return;
    }
    await this.broker.deleteQueue(queue, { shortLived: true });
    await this.queueDeleted(queue).catch((err: unknown) =>
      this.logger.error({ err, queue }, 'AMQP state of a deleted queue not saved'));
  }

  /** 403 when an exclusive consumer is in the way (RabbitMQ). */
  addConsumer(queue: string, exclusive: boolean): void {
    if (this.exclusiveConsumers.has(queue) || (exclusive && this.consumerCount(queue) > 0)) {
      throw new AmqpError(REPLY.ACCESS_REFUSED, `queue '${queue}' in vhost '/' in exclusive use`);
    }
    if (exclusive) this.exclusiveConsumers.add(queue);
    this.consumerAdded(queue);
  }

  /**
   * The durable and auto-delete flags a queue was declared with, checked on
   * every redeclare as RabbitMQ does. A queue is durable unless its
   * durability is `memory`, whoever made it: a queue made over HTTP with
   * `durability: memory` is gone after a restart, so a client declaring it
   * durable must be refused, not left to lose what was confirmed to it.
   * A queue made over HTTP, or declared before a restart, is not
   * auto-delete (flags are not logged).
   */
  checkFlags(name: string, durable: boolean, autoDelete: boolean): void {
    const current = {
      durable: this.broker.settingsOf(name).durability !== 'memory',
      autoDelete: this.autoDelete.has(name),
    };
    for (const [flag, asked] of [['durable', durable], ['auto_delete', autoDelete]] as const) {
      const now = flag === 'durable' ? current.durable : current.autoDelete;
      if (asked !== now) {
        throw inequivalentArg(name, flag, `'${asked}'`, `'${now}'`);
      }
    }
  }

  /** False for a queue declared durable=false here, since the last start. */
  isDurable(name: string): boolean {
    return !this.transient.has(name);
  }

  /** Records the flags of a queue this adapter just created. */
  created(name: string, durable: boolean, autoDelete: boolean): void {
    if (!durable) this.transient.add(name);
    if (autoDelete) this.autoDelete.add(name);
  }

  consumerCount(name: string): number {
    return this.consumers.get(name) ?? 0;
  }

  consumerAdded(name: string): void {
    this.consumers.set(name, this.consumerCount(name) + 1);
  }

  /** An auto-delete queue goes with its last consumer (RabbitMQ). */
  async consumerRemoved(name: string, exclusive = false): Promise<void> {
    if (exclusive) this.exclusiveConsumers.delete(name);
    const left = this.consumerCount(name) - 1;
    if (left > 0) {
      this.consumers.set(name, left);
      return;
    }
    this.consumers.delete(name);
    this.queueUsed(name);
    if (!this.autoDelete.has(name) || !this.broker.hasQueue(name)) return;
    try {
      await this.broker.deleteQueue(name, { shortLived: true });
      await this.queueDeleted(name);
    } catch (err) {
      this.logger.warn({ err, queue: name }, 'auto-delete failed');
    }
  }

  async queueDeleted(name: string): Promise<void> {
    this.autoDelete.delete(name);
    this.transient.delete(name);
    this.consumers.delete(name);
    this.owners.delete(name);
    this.reaper.forget(name);
    this.exclusiveConsumers.delete(name);
    this.singleActive.queueDeleted(name);
    this.expiry.stop(name);
    this.table.queueDeleted(name);
    await Promise.all([this.save(), this.features.forget(name)]);
  }

  // --- exchanges ------------------------------------------------------

  async declareExchange(declaration: ExchangeDeclaration): Promise<void> {
    if (declaration.passive) {
      this.run(() => this.table.declarePassive(declaration.name));
      return;
    }
    this.run(() => this.table.declare({
      name: declaration.name,
      type: declaration.type,
      durable: declaration.durable,
      autoDelete: declaration.autoDelete,
      internal: declaration.internal,
      arguments: plainTable(declaration.arguments),
    }));
    await this.save();
  }

  async deleteExchange(name: string, ifUnused: boolean): Promise<void> {
    this.run(() => this.table.delete(name, { ifUnused }));
    await this.save();
  }

  async bind(request: BindingRequest): Promise<void> {
    this.run(() => this.table.bind(this.bindingOf(request)));
    await this.save();
  }

  async unbind(request: BindingRequest): Promise<void> {
    this.run(() => this.table.unbind(this.bindingOf(request)));
    await this.save();
  }

  /**
   * The queues a publish goes to; 404 for an exchange that is not there.
   * Several keys (CC and BCC, sender-selected.ts) route in one walk of
   * the exchanges, as RabbitMQ routes them (ExchangeTable.route): per key,
   * a CC list of thousands cost the square of its length.
   */
  route(
    exchange: string,
    routingKeys: string | readonly string[],
    headers: FieldTable,
  ): readonly string[] {
    // The default exchange, which always exists and is never internal,
    // routes to the queue named by the key: no sets made for every publish,
    // and the same answer for a run of publishes to one queue.
    if (exchange === '' && typeof routingKeys === 'string') {
      if (!this.broker.hasQueue(routingKeys)) return NOWHERE;
      // Not frozen: for-of over a frozen array makes an object a step.
      if (this.lastDirect[0] !== routingKeys) this.lastDirect = [routingKeys];
      return this.lastDirect;
    }
    const plain = headers.size === 0 ? undefined : plainTable(headers);
    const queues = this.run(() => this.table.route(exchange, routingKeys, plain));
    // One array, not a spread and a filter: this runs for every publish.
    const routed: string[] = [];
    for (const queue of queues) if (this.broker.hasQueue(queue)) routed.push(queue);
    return routed;
  }

  private bindingOf(request: BindingRequest) {
    if (request.destinationKind === 'queue' && !this.broker.hasQueue(request.destination)) {
      throw new AmqpError(REPLY.NOT_FOUND, `no queue '${request.destination}' in vhost '/'`);
    }
    return {
      source: request.source,
      destination: request.destination,
      destinationKind: request.destinationKind,
      routingKey: request.routingKey,
      arguments: plainTable(request.arguments),
    };
  }

  /** Routing refusals become AMQP channel errors with the same code. */
  private run<T>(operation: () => T): T {
    try {
      return operation();
    } catch (err) {
      if (err instanceof RoutingError) throw new AmqpError(err.replyCode, err.message);
      throw err;
    }
  }

  /** Settles when every save asked for so far is on disk (or failed). */
  async flush(): Promise<void> {
    await this.reaper.settled();
    await this.journal.flush();
    await this.features.flush();
  }

  /** Keeps every change made so far; changes made together share a write. */
  private save(): Promise<void> {
    // Every change of exchanges and bindings saves.
    this.deadLetterInto = null;
    return this.journal.sync();
  }
}
