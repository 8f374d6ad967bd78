// AMQP transactions (tx.select, tx.commit, tx.rollback) as RabbitMQ runs
// them: on a transactional channel, publishes and acks/nacks/rejects are
// held; tx.commit hands them to the broker (publishes first) and answers
// commit-ok once the publishes and then the acks are durable; tx.rollback
// throws the publishes away and puts the held acks' deliveries back among
// the channel's unacked ones (they are not requeued). After either, the next
// transaction starts at once. Deliveries to consumers are not part of it.
//
// What a transaction holds is taken when tx.commit or tx.rollback is read,
// not when its turn comes among the channel's slower methods: a publish
// read just after tx.commit belongs to the next transaction.

import { REPLY } from './constants.js';
import { AmqpError } from './errors.js';
import type { Method } from './methods.js';

/**
 * `retry`: basic.nack with requeue, ready again after the queue's backoff
 * (none unless x-usher-backoff-* or Usher's settings give one);
 * `requeue`: ready again at once (basic.reject with requeue, recover, a
 * closed channel); `reject`: dead-lettered or dropped.
 */
export type SettleHow = 'ack' | 'retry' | 'requeue' | 'reject';

/** Acks, nacks or rejects held until commit: the tags taken out of unacked. */
interface HeldSettlement<Entry> {
  how: SettleHow;
  entries: Array<[number, Entry]>;
}

/** What the channel lends a transaction to do its work. */
export interface TxHost<Publish, Entry> {
  isConfirming(): boolean;
  /** Runs after the channel's earlier synchronous methods. */
  inOrder(run: () => Promise<void> | void): void;
  send(method: Method): void;
  /** Routes a publish and batches it, as outside a transaction. */
  publish(publish: Publish): void;
  /** Throws the refusal publish() would meet, changing nothing. */
  check(publish: Publish): void;
  /** Hands the batched publishes to the broker; settles once durable. */
  land(): Promise<unknown>;
  /** Settles once the acks, nacks or rejects are durable. */
  settle(entries: Array<[number, Entry]>, how: SettleHow): Promise<unknown>;
  /** Makes a delivery unacked again. */
  unsettle(tag: number, entry: Entry): void;
  /** Held publishes grew (or, negative, shrank) by `bytes` (the connection's bound). */
  held(bytes: number): void;
}

/**
 * What one transaction may hold before tx.commit: the bytes of its bodies
 * and HELD_PUBLISH_BYTES for each publish. Held publishes are memory
 * nothing else bounds (the broker keeps reading a blocked connection, see
 * blocking.ts), so one channel that never committed grew the process past
 * its memory budget. A first publish is held whatever its size. The
 * connection bounds what all its channels hold, and all connections
 * together (AmqpConnection.heldBodies).
 */
export const MAX_HELD_BYTES = 64 * 1024 * 1024;
/** About what a held publish costs besides its body (route, properties). */
export const HELD_PUBLISH_BYTES = 512;

export class ChannelTransactions<Publish, Entry> {
  /** False until tx.select. */
  private selected = false;
  private publishes: Publish[] = [];
  /** What `publishes` hold, as MAX_HELD_BYTES counts it. */
  private heldBytes = 0;
  private settlements: Array<HeldSettlement<Entry>> = [];

  constructor(private readonly host: TxHost<Publish, Entry>) {}

  /** Whether publishes and acks are held (tx.select was sent). */
  get active(): boolean {
    return this.selected;
  }

  onMethod(name: 'tx.select' | 'tx.commit' | 'tx.rollback'): void {
    if (name === 'tx.select') {
      if (this.host.isConfirming()) {
        throw new AmqpError(REPLY.PRECONDITION_FAILED, 'cannot switch from confirm to tx mode');
      }
      this.selected = true;
      this.host.inOrder(() => this.host.send({ name: 'tx.select-ok' }));
      return;
    }
    if (!this.selected) {
      throw new AmqpError(REPLY.PRECONDITION_FAILED, 'channel is not transactional');
    }

    const publishes = this.publishes;
    const settlements = this.settlements;
    this.publishes = [];
    this.letGo();
    this.settlements = [];
    if (name === 'tx.rollback') {
      this.restore(settlements);
      this.host.inOrder(() => this.host.send({ name: 'tx.rollback-ok' }));
      return;
    }
    this.host.inOrder(async () => {
      // All or nothing: one publish refused (a queue the user may not
      // publish to, say) closes the channel before any is handed over.
      // Publishing them in turn stored those before it, half a commit.
      for (const publish of publishes) this.host.check(publish);
      for (const publish of publishes) this.host.publish(publish);
      await this.host.land();
      // commit-ok promises the acks too: a crash after it must not bring
      // a committed ack's message back.
      await Promise.all(settlements.map(({ entries, how }) => this.host.settle(entries, how)));
      this.host.send({ name: 'tx.commit-ok' });
    });
  }

  /** 406 for confirm.select once the channel is transactional. */
  checkConfirmSelect(): void {
    if (this.selected) {
      throw new AmqpError(REPLY.PRECONDITION_FAILED, 'cannot switch from tx to confirm mode');
    }
  }

  /** Holds a publish of `bodyBytes`; 406 if the transaction would hold too much. */
  holdPublish(publish: Publish, bodyBytes: number): void {
    const held = this.heldBytes + bodyBytes + HELD_PUBLISH_BYTES;
    if (held > MAX_HELD_BYTES && this.publishes.length > 0) {
      throw new AmqpError(
        REPLY.PRECONDITION_FAILED,
        `a transaction may hold ${MAX_HELD_BYTES} bytes of publishes before tx.commit; ` +
          `this one holds ${this.publishes.length} publishes, ${this.heldBytes} bytes`,
      );
    }
    this.heldBytes = held;
    this.publishes.push(publish);
    // Last: past the connection's bound it closes, and release() counts
    // this one out too.
    this.host.held(bodyBytes + HELD_PUBLISH_BYTES);
  }

  /** Held publishes are let go of (committed, rolled back, dropped). */
  private letGo(): void {
    if (this.heldBytes > 0) this.host.held(-this.heldBytes);
    this.heldBytes = 0;
  }

  holdSettlement(how: SettleHow, entries: Array<[number, Entry]>): void {
    if (entries.length > 0) this.settlements.push({ how, entries });
  }

  /** The channel closes: held publishes go, held acks' deliveries return. */
  release(): void {
    this.publishes = [];
    this.letGo();
    this.restore(this.settlements);
    this.settlements = [];
  }

  private restore(settlements: Array<HeldSettlement<Entry>>): void {
    for (const { entries } of settlements) {
      for (const [tag, entry] of entries) this.host.unsettle(tag, entry);
    }
  }
}
