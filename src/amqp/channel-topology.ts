// The queue and exchange methods of an AMQP channel: queue.declare,
// bind, unbind, purge and delete; exchange.declare, delete, bind and
// unbind. They run in the channel's order (channel.ts onSyncMethod) and
// change the broker's queues and the connection context's topology
// (topology.ts), which holds exchanges, bindings and AMQP-only queue
// features.

import { randomBytes } from 'node:crypto';

import type { QueueSettingsInput } from '../broker/types.js';
import { recordUnauthorized } from '../observe/observations.js';
import { METHOD_IDS, checkAccess } from './access.js';
import type { AmqpConnection } from './connection.js';
import { REPLY } from './constants.js';
import { REPLY_QUEUE } from './direct-reply.js';
import { AmqpError, preconditionFailed } from './errors.js';
import { settingsFromArguments } from './mapping.js';
import type { Method, MethodOf } from './methods.js';
import { featuresFromArguments, type QueueFeatures } from './queue-features.js';

type TopologyMethodName =
  | 'queue.declare'
  | 'queue.bind'
  | 'queue.unbind'
  | 'queue.purge'
  | 'queue.delete'
  | 'exchange.declare'
  | 'exchange.delete'
  | 'exchange.bind'
  | 'exchange.unbind';

/** The methods ChannelTopology.run takes. */
export type TopologyMethod = Extract<Method, { name: TopologyMethodName }>;

/** A queue declared over AMQP without x-usher-backoff-*: none, as in RabbitMQ. */
const NO_BACKOFF = { initialMs: 0, multiplier: 1, maxMs: 0, jitter: 0 };
export class ChannelTopology {
  constructor(
    private readonly connection: AmqpConnection,
    private readonly send: (method: Method) => void,
  ) {}

  private get broker() {
    return this.connection.broker;
  }

  private get topology() {
    return this.connection.context.topology;
  }

  run(method: TopologyMethod): Promise<void> {
    switch (method.name) {
      case 'queue.declare':
        return this.declareQueue(method);
      case 'queue.bind':
        return this.bindQueue(method, true);
      case 'queue.unbind':
        return this.bindQueue({ ...method, noWait: false }, false);
      case 'queue.purge':
        return this.purgeQueue(method);
      case 'queue.delete':
        return this.deleteQueue(method);
      case 'exchange.declare':
        return this.declareExchange(method);
      case 'exchange.delete':
        return this.deleteExchange(method);
      case 'exchange.bind':
        return this.bindExchange(method, true);
      case 'exchange.unbind':
        return this.bindExchange(method, false);
    }
  }

  private async declareQueue(method: MethodOf<'queue.declare'>): Promise<void> {
    const replies = this.connection.context.directReplies;
    if (method.queue === REPLY_QUEUE || replies.has(method.queue)) {
      // The direct reply-to pseudo-queue (direct-reply.ts) is always there,
      // and a reply name while its client is: RabbitMQ 3.10 answers so,
      // one consumer and all. Clients probe for the feature with a passive
      // declare of the first, and RPC servers for a caller still waiting
      // with one of the second (404 once it has gone).
      if (!method.noWait) {
        this.send({
          name: 'queue.declare-ok', queue: method.queue, messageCount: 0, consumerCount: 1,
        });
      }
      return;
    }
    if (method.queue.startsWith('amq.') && !method.passive) {
      throw new AmqpError(
        REPLY.ACCESS_REFUSED,
        `queue name '${method.queue}' contains reserved prefix 'amq.*'`,
      );
    }
    const name =
      method.queue === ''
        ? `amq.gen-${randomBytes(12).toString('base64url')}`
        : method.queue;
    const action = method.passive ? 'see' : 'manage';
    allow(this.connection, action, 'queue', name, METHOD_IDS.queueDeclare);

    if (method.passive) {
      if (!this.topology.hasQueue(name)) throw notFound(`no queue '${name}' in vhost '/'`);
      this.topology.checkAccess(name, this.connection);
    } else {
      await this.topology.oneDeclareAtATime(name, () => this.declareActive(name, method));
    }
    // Any declare, passive too, restarts x-expires' clock (RabbitMQ).
    this.topology.queueUsed(name);
    if (method.noWait) return;
    const { stats } = this.broker.getQueue(name);
    this.send({
      name: 'queue.declare-ok',
      queue: name,
      messageCount: stats.ready,
      consumerCount: this.topology.consumerCount(name),
    });
  }

  /**
   * A declare that is not passive: creates the queue, or checks that the
   * existing one is what it asks (406 naming the first difference). It
   * never changes an existing queue, even one made over HTTP while its own
   * writes were in flight.
   */
  private async declareActive(name: string, method: MethodOf<'queue.declare'>): Promise<void> {
    const settings = settingsFromArguments(method.arguments);
    const features = featuresFromArguments(method.arguments);
    // Kept on disk so the next start deletes it: its connection is gone.
    if (method.exclusive && method.durable) features.exclusive = true;

    const created = !this.topology.hasQueue(name) &&
      (await this.createDeclared(name, method, settings, features));
    if (!created) {
      this.topology.checkAccess(name, this.connection);
      this.topology.checkEquivalent(name, settings, method.arguments);
      this.topology.checkFeatures(name, features);
      this.topology.checkFlags(name, method.durable, method.autoDelete);
      if (method.exclusive) this.topology.claim(name, this.connection, false);
    }
  }

  /**
   * Creates a declared queue; false when one of its name appeared
   * meanwhile (over HTTP), which is then left exactly as it is.
   */
  private async createDeclared(
    name: string,
    method: MethodOf<'queue.declare'>,
    settings: QueueSettingsInput,
    features: QueueFeatures,
  ): Promise<boolean> {
    // Claimed first, so no other connection uses it while it is written.
    if (method.exclusive) this.topology.claim(name, this.connection, true);
    // RabbitMQ requeues without limit unless x-delivery-limit says so;
    // Usher's HTTP default of 10 attempts would drop such messages. And
    // a nacked message is ready again at once, unless x-usher-backoff-*
    // asks for a backoff (Usher's HTTP default waits 1 s, doubling).
    // A queue declared durable=false lives in memory only, as in
    // RabbitMQ: its messages are never written, and it is gone after
    // a restart. Its AMQP-only arguments are on disk first: a crash
    // in between must not leave a queue without them, which its own
    // redeclare would find inequivalent (406) and which would never
    // expire. Arguments of a queue never made are dropped at start.
    let created = false;
    try {
      await this.topology.setFeatures(name, features);
      ({ created } = await this.broker.createQueue(name, {
        maxAttempts: 0,
        backoff: NO_BACKOFF,
        ...(method.durable ? {} : { durability: 'memory' as const }),
        ...settings,
      }, { onlyNew: true, shortLived: method.exclusive || method.autoDelete }));
    } finally {
      if (!created) {
        this.topology.unclaim(name, this.connection);
        // Nothing else sets a queue's AMQP arguments while this declare
        // runs (oneDeclareAtATime), and an HTTP queue has none.
        await this.topology.setFeatures(name, {}).catch(() => {});
      }
    }
    if (created) this.topology.created(name, method.durable, method.autoDelete);
    return created;
  }

  private async bindQueue(
    method: MethodOf<'queue.bind'> | (MethodOf<'queue.unbind'> & { noWait: boolean }),
    bind: boolean,
  ): Promise<void> {
    const ids = bind ? METHOD_IDS.queueBind : METHOD_IDS.queueUnbind;
    allow(this.connection, 'manage', 'queue', method.queue, ids);
    checkQueue(this.connection, method.queue);
    const binding = {
      source: method.exchange,
      destination: method.queue,
      destinationKind: 'queue' as const,
      routingKey: method.routingKey,
      arguments: method.arguments,
    };
    if (bind) await this.topology.bind(binding);
    else await this.topology.unbind(binding);
    if (!method.noWait) this.send({ name: bind ? 'queue.bind-ok' : 'queue.unbind-ok' });
  }

  private async purgeQueue(method: MethodOf<'queue.purge'>): Promise<void> {
    allow(this.connection, 'manage', 'queue', method.queue, METHOD_IDS.queuePurge);
    checkQueue(this.connection, method.queue);
    const { purged } = await this.broker.purgeQueue(method.queue);
    if (!method.noWait) this.send({ name: 'queue.purge-ok', messageCount: purged });
  }

  private async deleteQueue(method: MethodOf<'queue.delete'>): Promise<void> {
    allow(this.connection, 'manage', 'queue', method.queue, METHOD_IDS.queueDelete);
    if (!this.topology.hasQueue(method.queue)) {
      // RabbitMQ answers delete-ok for a queue that is not there.
      if (!method.noWait) this.send({ name: 'queue.delete-ok', messageCount: 0 });
      return;
    }
    this.topology.checkAccess(method.queue, this.connection);
    const { stats } = this.broker.getQueue(method.queue);
    if (method.ifUnused && this.topology.consumerCount(method.queue) > 0) {
      throw preconditionFailed(`queue '${method.queue}' in vhost '/' in use`);
    }
    if (method.ifEmpty && stats.ready > 0) {
      throw preconditionFailed(`queue '${method.queue}' in vhost '/' not empty`);
    }
    const shortLived = this.topology.isShortLived(method.queue);
    await this.broker.deleteQueue(method.queue, { shortLived });
    await this.topology.queueDeleted(method.queue);
    if (!method.noWait) this.send({ name: 'queue.delete-ok', messageCount: stats.ready });
  }

  private async declareExchange(method: MethodOf<'exchange.declare'>): Promise<void> {
    const action = method.passive ? 'see' : 'manage';
    allow(this.connection, action, 'exchange', method.exchange, METHOD_IDS.exchangeDeclare);
    await this.topology.declareExchange({
      name: method.exchange,
      type: method.type,
      passive: method.passive,
      durable: method.durable,
      autoDelete: method.autoDelete,
      internal: method.internal,
      arguments: method.arguments,
    });
    if (!method.noWait) this.send({ name: 'exchange.declare-ok' });
  }

  private async deleteExchange(method: MethodOf<'exchange.delete'>): Promise<void> {
    allow(this.connection, 'manage', 'exchange', method.exchange, METHOD_IDS.exchangeDelete);
    await this.topology.deleteExchange(method.exchange, method.ifUnused);
    if (!method.noWait) this.send({ name: 'exchange.delete-ok' });
  }

  private async bindExchange(
    method: MethodOf<'exchange.bind'> | MethodOf<'exchange.unbind'>,
    bind: boolean,
  ): Promise<void> {
    const ids = bind ? METHOD_IDS.exchangeBind : METHOD_IDS.exchangeUnbind;
    allow(this.connection, 'manage', 'exchange', method.destination, ids);
    const binding = {
      source: method.source,
      destination: method.destination,
      destinationKind: 'exchange' as const,
      routingKey: method.routingKey,
      arguments: method.arguments,
    };
    if (bind) await this.topology.bind(binding);
    else await this.topology.unbind(binding);
    if (!method.noWait)
      this.send({ name: bind ? 'exchange.bind-ok' : 'exchange.unbind-ok' });
  }
}

/** 403 unless the connection's user may do `action` (access.ts). */
export function allow(
  connection: AmqpConnection,
  action: Parameters<typeof checkAccess>[1],
  kind: 'queue' | 'exchange',
  name: string,
  ids: { classId: number; methodId: number },
): void {
  try {
    checkAccess(connection.principal, action, kind, name, ids);
  } catch (err) {
    recordUnauthorized(connection.broker, 'amqp');
    throw err;
  }
}

/** 404 for a missing queue, 405 for another connection's exclusive one. */
export function checkQueue(connection: AmqpConnection, queue: string): void {
  const topology = connection.context.topology;
  if (!topology.hasQueue(queue)) throw notFound(`no queue '${queue}' in vhost '/'`);
  topology.checkAccess(queue, connection);
}

export function notFound(message: string): AmqpError {
  return new AmqpError(REPLY.NOT_FOUND, message);
}
