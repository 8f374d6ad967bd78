// The publish path of an AMQP channel (channel.ts): basic.publish with
// its content header and body frames, routed and batched, held behind
// pending methods or for tx.commit, returned when mandatory and
// unroutable, and confirmed (confirms.ts). Apart from channel.ts because
// it is the one hot path, read on its own when tuning it.
//
// Publishes read from one socket chunk are handed to the broker together,
// one batch per queue, and confirmed when the batch is durable.

import { checkHeaders } from '../broker/checks.js';
import { logsMessages } from '../broker/durability.js';
import { pinsLittle } from '../broker/messages.js';
import type { PublishInput } from '../broker/types.js';
import { LoadRefusalError } from '../errors.js';
import { METHOD_IDS } from './access.js';
import { allow } from './channel-topology.js';
import { REPLY } from './constants.js';
import type { AmqpConnection } from './connection.js';
import { ConfirmTracker } from './confirms.js';
import type { BasicProperties, ContentHeader } from './content.js';
import { REPLY_QUEUE, type ReplyConsumer, isReplyName } from './direct-reply.js';
import { AmqpError } from './errors.js';
import { EMPTY_TABLE } from './field-table.js';
import { type Incoming, addBodyFrame, bodyOf, clearIncoming, startIncoming } from './incoming.js';
import { Landings } from './landings.js';
import { checkTableLimits, checkTableRead, fromAmqp, type MappedPublish } from './mapping.js';
import type { Method, MethodName, MethodOf } from './methods.js';
import { routingKeysOf, withoutBcc } from './sender-selected.js';
import type { ChannelTransactions } from './tx.js';
import { checkUserId } from './user-id.js';

/** planPublish's answer. */
interface PublishPlan {
  /** The keys it is routed by: its routing key, CC's and BCC's. */
  keys: string | string[];
  queues: readonly string[];
  properties: BasicProperties;
  input: MappedPublish | null;
}

interface QueueBatch {
  inputs: PublishInput[];
  tags: number[];
}

/** What publishing needs of its channel. */
export interface ChannelPublishingDeps {
  /** The direct reply-to consumer, whose name a reply-to asks for (direct-reply.ts). */
  readonly replies: ReplyConsumer;
  /** The channel's transaction, which holds publishes until tx.commit (tx.ts). */
  readonly tx: Pick<ChannelTransactions<Incoming, unknown>, 'active' | 'holdPublish'>;
  closed(): boolean;
  /** Whether methods read before this one still run (method-order.ts). */
  pending(): boolean;
  /** Runs `run` once the methods before it are done. */
  inOrder(run: () => Promise<void> | void): void;
  send(method: Method): void;
  /** Closes the channel (or the connection) with `err`, at method `at`. */
  fail(err: unknown, at?: MethodName): void;
  /** Hands the acks read with this chunk to the broker. */
  flushAcks(): void;
  /** Tells the connection the channel has confirms to answer. */
  confirmsAnswered(): void;
}

export class ChannelPublishing {
  private incoming: Incoming | null = null;
  /** The last publish routed, for the next one (not one a transaction holds). */
  private spareIncoming: Incoming | null = null;
  private batches = new Map<string, QueueBatch>();
  private spareBatches = new Map<string, QueueBatch>();
  /** Publishes handed to the broker, until they land (or fail). */
  readonly landings = new Landings();

  private confirming = false;
  /** Publisher confirms, once confirm.select turned them on. */
  private readonly confirms = new ConfirmTracker((method) => this.deps.send(method));
  private readonly plan: PublishPlan = { keys: '', queues: [], properties: {}, input: null };
  /** Publishes waiting behind pending methods (queuePublish), and their body bytes. */
  private readonly queued = { publishes: 0, bytes: 0 };

  constructor(
    private readonly connection: AmqpConnection,
    private readonly number: number,
    private readonly deps: ChannelPublishingDeps,
  ) {}

  private get broker() {
    return this.connection.broker;
  }

  private get topology() {
    return this.connection.context.topology;
  }

  /** confirm.select took effect: publishes from here on are confirmed. */
  startConfirming(): void {
    this.confirming = true;
  }

  // --- publishing -----------------------------------------------------

  startPublish(method: MethodOf<'basic.publish'>): void {
    if (method.immediate) {
      throw new AmqpError(REPLY.NOT_IMPLEMENTED, 'immediate=true', {
        classId: 60,
        methodId: 40,
      });
    }
    this.incoming = startIncoming(this.spareIncoming, method);
    this.spareIncoming = null;
  }

  onHeader(header: ContentHeader): void {
    if (this.incoming === null) return;
    this.incoming.properties = header.properties;
    if (header.bodySize === 0) this.finishPublish();
  }

  onBody(body: Buffer, last: boolean): void {
    const incoming = this.incoming;
    if (incoming === null) return;
    addBodyFrame(incoming, body);
    if (!last) {
      this.connection.heldBodies(body.length);
      return;
    }
    if (incoming.received > body.length) {
      this.connection.heldBodies(body.length - incoming.received);
    }
    this.finishPublish();
  }

  private finishPublish(): void {
    const incoming = this.incoming;
    this.incoming = null;
    if (incoming === null || this.deps.closed()) return;
    try {
      checkUserId(incoming.properties.userId, this.connection.principal);
    } catch (err) {
      this.deps.fail(err);
      return;
    }
    if (this.deps.tx.active) {
      this.holdPublish(incoming);
    } else if (this.deps.pending()) {
      this.queuePublish(incoming);
    } else {
      this.routePublish(incoming);
      // Holds nothing of it from here: see dropInputBodies in flushPublishes.
      clearIncoming(incoming);
      this.spareIncoming = incoming;
    }
  }

  /** Routes a publish and adds it to this chunk's batches. */
  routePublish(incoming: Incoming): void {
    const tag = this.confirming ? this.confirms.open() : 0;
    try {
      // A view of the socket chunk while the publish is in hand: the
      // broker copies it for a message it keeps in memory (a logged one
      // kept on disk only needs none), and a memory queue's message gets
      // a copy of its own below, so no chunk stays pinned.
      const body = bodyOf(incoming);
      const { keys, queues, properties, input } = this.planPublish(incoming, body);
      const replied = incoming.exchange === '' &&
        this.deliverReplies(keys, incoming.routingKey, properties, body);
      if (input === null) {
        if (!replied && incoming.mandatory) this.returnUnroutable(incoming, properties, body);
        if (tag > 0) this.confirm(tag, true);
        return;
      }

      if (tag > 0) this.confirms.waitFor(tag, queues.length);
      for (let i = 0; i < queues.length; i++) {
        const queue = queues[i];
        let batch = this.batches.get(queue);
        if (batch === undefined) {
          batch = { inputs: [], tags: [] };
          this.batches.set(queue, batch);
        }
        // A non-durable queue is a memory queue: no log frame takes over
        // the body, so it is copied rather than pinning the socket's chunk,
        // unless it pins little else (a body that arrived split across
        // chunks or frames is a copy of its own; see pinsLittle).
        const pinsMore = !this.topology.isDurable(queue) && !pinsLittle(body);
        batch.inputs.push(pinsMore ? withBody(input, copyOf(body)) : input);
        batch.tags.push(tag);
      }
      // Kept as a view somewhere: memory queues copy the others above,
      // and the broker copies the others it keeps in memory.
      if (pinsLittle(body)) this.connection.keepsBody(body);
    } catch (err) {
      // The channel's close is the answer, with the reason: no basic.nack
      // before it, as in RabbitMQ. With one, aio-pika raised a nack instead
      // of the 404 for a missing exchange, and php-amqp's waitForConfirm
      // returned quietly, so code that declares the exchange on a 404 and
      // tries again never ran (new user).
      this.deps.fail(err, 'basic.publish');
    }
  }

  /**
   * Where a publish goes and what is stored, or the refusal it gets
   * (thrown), changing nothing: the queues it reaches, each allowed to
   * the user; its properties with BCC taken out; the broker's input,
   * null when it reaches no queue. A transaction checks each of its
   * publishes with it at tx.commit before handing any over (checkPublish).
   * One object, used again: this runs for every publish.
   */
  planPublish(incoming: Incoming, body: Buffer): PublishPlan {
    const plan = this.plan;
    const sent = incoming.properties.headers ?? EMPTY_TABLE;
    checkTableRead(sent);
    // CC and BCC add routing keys; BCC is taken out before anything is
    // stored, routed on or returned (sender-selected.ts).
    const keys = routingKeysOf(incoming.routingKey, sent);
    plan.keys = keys;
    const headersTable = withoutBcc(sent);
    plan.properties = headersTable === sent
      ? incoming.properties
      : { ...incoming.properties, headers: headersTable };
    if (plan.properties.replyTo === REPLY_QUEUE) {
      plan.properties = { ...plan.properties, replyTo: this.deps.replies.name() };
    }
    const queues = this.topology.route(incoming.exchange, keys, headersTable);
    plan.queues = queues;

    // One queue refused refuses the whole message: nothing is stored.
    // Indexed: for-of left an iterator result a queue in the profile.
    for (let i = 0; i < queues.length; i++) {
      allow(this.connection, 'publish', 'queue', queues[i], METHOD_IDS.basicPublish);
    }
    if (incoming.exchange === '') this.allowReplies(keys);
    if (queues.length === 0) {
      plan.input = null;
      return plan;
    }

    const input = fromAmqp(plan.properties, incoming.exchange, incoming.routingKey, body);
    // Checked here, not only in the broker: a refusal then closes the
    // channel with 406 and the reason, instead of a bare nack (C19).
    // The user's limits count the table as sent; the rest is Usher's.
    checkTableLimits(headersTable);
    checkHeaders(input.headers, 'headers', input.ownHeaders);
    plan.input = input;
    return plan;
  }

  /**
   * A reply is a publish to its reply name, so it needs the right to
   * publish to that name as to a queue's (a pattern such as
   * `amq.rabbitmq.reply-to.*`); RabbitMQ asks for write on the default
   * exchange. Any user could reply to a name it knew (breaker).
   */
  private allowReplies(keys: string | string[]): void {
    if (typeof keys === 'string') {
      this.allowReply(keys);
      return;
    }
    for (let i = 0; i < keys.length; i++) this.allowReply(keys[i]);
  }

  private allowReply(key: string): void {
    if (isReplyName(key)) allow(this.connection, 'publish', 'queue', key, METHOD_IDS.basicPublish);
  }

  /**
   * Hands a publish to the default exchange to the reply consumer of each
   * of its keys that is a reply name (direct-reply.ts), once a name, as
   * RabbitMQ does: CC and BCC keys too, whatever queues the others reach.
   * A reply CC'd to a queue was stored there alone (breaker). True when
   * one took it.
   */
  private deliverReplies(keys: string | string[], routingKey: string,
    properties: BasicProperties, body: Buffer): boolean {
    const replies = this.connection.context.directReplies;
    if (typeof keys === 'string') {
      return isReplyName(keys) && replies.deliver(keys, routingKey, properties, body);
    }
    let replied = false;
    let named: Set<string> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      if (!isReplyName(key) || named?.has(key)) continue;
      (named ??= new Set()).add(key);
      if (replies.deliver(key, routingKey, properties, body)) replied = true;
    }
    return replied;
  }

  /**
   * Sends the publishes and acks gathered from one socket chunk to the
   * broker: one call (and one log record) per queue, not one per message.
   */
  flushPublishes(): void {
    this.deps.flushAcks();
    if (this.batches.size === 0) return;
    // The two maps take turns, so that publishes routed while these are
    // handed over go to the next chunk's, without a copy of this one.
    const batches = this.batches;
    this.batches = this.spareBatches;
    this.copyBodiesOfUnkeptChunk(batches);

    for (const [queue, batch] of batches) {
      const count = batch.inputs.length;
      // Only the tags wait for the outcome, not the bodies.
      const tags = batch.tags;
      this.connection.publishesStarted(count);
      // Message by message: one refused under load or by a queue limit is
      // nacked alone. Unconfirmed, it is dropped (and counted) as RabbitMQ
      // drops it: such a publisher asked to hear nothing back.
      const landing = this.landings.start();
      this.broker.publishEach(queue, batch.inputs).then(
        (answers) => {
          try {
            this.connection.publishesSettled(count);
            for (let at = 0; at < answers.length; at++) {
              const tag = tags[at];
              if (tag > 0) this.settleConfirm(tag, !(answers[at] instanceof LoadRefusalError));
            }
            this.sendConfirmedAcks();
          } finally {
            this.landings.landed(landing);
          }
        },
        (err: unknown) => {
          try {
            this.connection.publishesSettled(count);
            this.confirmBatch(tags, false);
            // Without confirms the publisher would never hear of a failure.
            if (!this.confirming) this.deps.fail(err);
          } finally {
            this.landings.landed(landing);
          }
        },
      );
    }
    // Only now: a message routed to several queues is one input in each.
    for (const batch of batches.values()) dropInputBodies(batch.inputs);
    batches.clear();
    this.spareBatches = batches;
  }

  // A body the chunk's other publishes mostly did not keep would hold the
  // rest of the chunk for as long as it waits (connection.pinsMostlyUnkept):
  // copied, once for all its queues. For a logged queue only one that
  // pinsLittle: the broker copies any other it keeps in memory and lets
  // it go once written if kept on disk only, and copying it here too cost
  // every small durable publish an allocation and a copy.
  private copyBodiesOfUnkeptChunk(batches: Map<string, QueueBatch>): void {
    let copies: Map<Buffer, Buffer> | undefined;
    for (const [queue, batch] of batches) {
      const inputs = batch.inputs;
      const brokerCopies = this.isLogged(queue);
      for (let i = 0; i < inputs.length; i++) {
        const body = inputs[i].body;
        if (brokerCopies && !pinsLittle(body)) continue;
        if (!this.connection.pinsMostlyUnkept(body)) continue;
        copies ??= new Map();
        let copy = copies.get(body);
        if (copy === undefined) copies.set(body, (copy = copyOf(body)));
        inputs[i] = withBody(inputs[i], copy);
      }
    }
  }

  /** Whether the broker logs `queue`'s messages (false for one gone). */
  private isLogged(queue: string): boolean {
    return this.broker.hasQueue(queue) && logsMessages(this.broker.settingsOf(queue));
  }

  private confirmBatch(tags: number[], ok: boolean): void {
    for (const tag of tags) if (tag > 0) this.settleConfirm(tag, ok);
    this.sendConfirmedAcks();
  }

  /** Settles one confirm tag for one of its queues and answers at once. */
  private confirm(tag: number, ok: boolean): void {
    this.settleConfirm(tag, ok);
    this.sendConfirmedAcks();
  }

  /** Settles one confirm tag for one of its queues (confirms.ts). */
  private settleConfirm(tag: number, ok: boolean): void {
    if (!this.deps.closed()) this.confirms.settle(tag, ok);
  }

  /**
   * Asks for one `multiple` ack for the tags answered so far, sent when
   * the connection next writes: publishes from several socket chunks land
   * with one fsync, and each landing answering at once sent an ack frame
   * apiece, for the client to read one by one.
   */
  private sendConfirmedAcks(): void {
    if (!this.deps.closed()) this.deps.confirmsAnswered();
  }

  /** The ack for every tag answered so far; the connection calls it. */
  sendAnsweredConfirms(): void {
    if (!this.deps.closed()) this.confirms.sendAcks();
  }

  private returnUnroutable(incoming: Incoming, properties: BasicProperties, body: Buffer): void {
    this.connection.sendContent(
      this.number,
      {
        name: 'basic.return',
        replyCode: REPLY.NO_ROUTE,
        replyText: 'NO_ROUTE',
        exchange: incoming.exchange,
        routingKey: incoming.routingKey,
      },
      properties,
      body,
    );
  }

  // --- held: behind pending methods, or for tx.commit (tx.ts) ---------

  /**
   * A publish read while methods before it still run (a declare waiting
   * for the topology journal's write) is routed after them, as a channel
   * runs its methods in order: routed at once, it met the topology from
   * before that declare or bind, and was confirmed and dropped, or
   * routed past an unbind. Held as one copy meanwhile, like a held
   * transaction's publish.
   */
  private queuePublish(incoming: Incoming): void {
    this.copyBody(incoming);
    const bytes = incoming.received;
    this.queued.publishes++;
    this.queued.bytes += bytes;
    // Counted as unanswered while queued, so that a client streaming
    // publishes behind a slow method is paused, and its bodies as held
    // (heldBodies), which bounds their bytes. Last: past that bound the
    // connection closes, and release() counts this one out too.
    this.connection.publishesStarted(1);
    this.connection.heldBodies(bytes);
    this.deps.inOrder(() => {
      this.queued.publishes--;
      this.queued.bytes -= bytes;
      this.connection.publishesSettled(1);
      this.connection.heldBodies(-bytes);
      this.routePublish(incoming);
      this.flushPublishes();
    });
  }

  /** Held past this chunk: one copy, not views that pin socket chunks. */
  private copyBody(incoming: Incoming): void {
    const body = bodyOf(incoming);
    incoming.body = incoming.parts === null ? copyOf(body) : body;
    incoming.parts = null;
  }

  private holdPublish(incoming: Incoming): void {
    try {
      // Refused at once as RabbitMQ refuses it (a missing exchange, a
      // queue the user may not publish to, a CC that is no array, bad
      // headers), unless a method still pending may change that (a
      // declare, a bind): then at tx.commit, which checks every publish
      // before it hands any over (checkPublish) and runs in order.
      if (!this.deps.pending()) {
        this.planPublish(incoming, bodyOf(incoming));
        this.nameReplyTo(incoming);
      } else if (incoming.properties.replyTo === REPLY_QUEUE) {
        this.deps.inOrder(() => this.nameReplyTo(incoming));
      }
      this.copyBody(incoming);
      this.deps.tx.holdPublish(incoming, incoming.received);
    } catch (err) {
      this.deps.fail(err);
    }
  }

  /**
   * A held publish asking for amq.rabbitmq.reply-to takes the reply name
   * as it is read (in its turn), as RabbitMQ names it: named at tx.commit,
   * a reply consumer cancelled in between refused the whole commit (406)
   * and stored nothing (breaker).
   */
  private nameReplyTo(incoming: Incoming): void {
    if (incoming.properties.replyTo !== REPLY_QUEUE) return;
    incoming.properties = { ...incoming.properties, replyTo: this.deps.replies.name() };
  }

  // --- the channel closes ---------------------------------------------

  /** Publishes queued behind methods, or cut short, hold nothing more. */
  release(): void {
    // Publishes still queued behind methods will not run now (MethodOrder).
    if (this.queued.publishes > 0) {
      this.connection.publishesSettled(this.queued.publishes);
      this.connection.heldBodies(-this.queued.bytes);
      this.queued.publishes = 0;
      this.queued.bytes = 0;
    }
    // A publish cut short holds its body frames no more.
    if (this.incoming !== null && this.incoming.received > 0) {
      this.connection.heldBodies(-this.incoming.received);
    }
    this.incoming = null;
  }

  /** Last as the channel closes: batches never handed over are dropped. */
  dropBatches(): void {
    this.batches.clear();
  }
}

// --- helpers --------------------------------------------------------------

/**
 * Drops the bodies of inputs the broker has taken (publishEach reads them
 * only before it returns). An input that outlived two young-generation
 * collections is in old space, and until a full collection finds it dead
 * it keeps its body, and the socket chunk under it, from being collected
 * young: with 16 KiB bodies that made most chunks old garbage, and a full
 * collection every few thousand publishes (issue #4).
 */
function dropInputBodies(inputs: PublishInput[]): void {
  for (const input of inputs) input.body = EMPTY_BODY;
}

const EMPTY_BODY = Buffer.alloc(0);

/** `input` with another body; a literal, not a spread, for one object shape. */
function withBody(input: PublishInput, body: Buffer): PublishInput {
  return {
    id: input.id,
    body,
    headers: input.headers,
    ownHeaders: input.ownHeaders,
    priority: input.priority,
    ttlMs: input.ttlMs,
  };
}

/** A copy of `bytes` (faster than Buffer.from(buffer) on node 20). */
export function copyOf(bytes: Buffer): Buffer {
  const copy = Buffer.allocUnsafe(bytes.length);
  bytes.copy(copy);
  return copy;
}
