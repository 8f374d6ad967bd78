// AMQP transactions (tx.select, tx.commit, tx.rollback) as RabbitMQ runs
// them: on a transactional channel, publishes and acks/nacks/rejects are
// held; tx.commit hands them to the broker (publishes first) and answers
// commit-ok once the publishes are durable; tx.rollback throws the
// publishes away and puts the held acks' deliveries back among the
// channel's unacked ones (they are not requeued). After either, the next
// transaction starts at once. Deliveries to consumers are not part of it.
//
// What a transaction holds is taken when tx.commit or tx.rollback is read,
// not when its turn comes among the channel's slower methods: a publish
// read just after tx.commit belongs to the next transaction.

import { REPLY } from './constants.js';
import { AmqpError } from './errors.js';

/** Acks, nacks or rejects held until commit, with what undoes them. */
export interface HeldSettlement<Entry> {
  how: 'ack' | 'requeue' | 'reject';
  /** The delivery tags and entries taken out of the channel's unacked. */
  entries: Array<[number, Entry]>;
}

/** What a transaction held when it was committed or rolled back. */
export interface HeldWork<Publish, Entry> {
  publishes: Publish[];
  settlements: Array<HeldSettlement<Entry>>;
}

export class Transaction<Publish, Entry> {
  private publishes: Publish[] = [];
  private settlements: Array<HeldSettlement<Entry>> = [];

  holdPublish(publish: Publish): void {
    this.publishes.push(publish);
  }

  holdSettlement(settlement: HeldSettlement<Entry>): void {
    if (settlement.entries.length > 0) this.settlements.push(settlement);
  }

  /** Everything held so far; the transaction starts empty again. */
  take(): HeldWork<Publish, Entry> {
    const held = { publishes: this.publishes, settlements: this.settlements };
    this.publishes = [];
    this.settlements = [];
    return held;
  }
}

/** 406 for tx.select on a confirm channel (RabbitMQ's words). */
export function txOnConfirmChannel(): AmqpError {
  return new AmqpError(REPLY.PRECONDITION_FAILED, 'cannot switch from confirm to tx mode');
}

/** 406 for confirm.select on a transactional channel. */
export function confirmOnTxChannel(): AmqpError {
  return new AmqpError(REPLY.PRECONDITION_FAILED, 'cannot switch from tx to confirm mode');
}

/** 406 for tx.commit or tx.rollback before tx.select. */
export function notTransactional(): AmqpError {
  return new AmqpError(REPLY.PRECONDITION_FAILED, 'channel is not transactional');
}
