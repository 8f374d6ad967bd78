// Settling what was handed out: an ack ends a lease for good once it is
// logged, a nack retries or dead-letters (the engine decides, the broker
// logs the outcome), a release hands a lease back and an extend lengthens
// it. Apart from broker.ts because these answer a consumer about one
// lease; handing messages out is in consumers.ts.

import { ReceiptNotFoundError } from '../errors.js';
import type { Outcome, QueueEngine } from '../engine/queue.js';
import type { Message } from '../engine/types.js';
import type { Observations } from '../observe/observations.js';
import type { LogRecord } from '../storage/records.js';
import { cutText } from './checks.js';
import { messageFrom } from './messages.js';
import { checkDuration } from './settings.js';
import type { AckOptions, NackOptions, NackResult } from './types.js';

const MAX_REASON_LENGTH = 1024;

/** What settling needs of the broker. */
export interface SettlingDeps {
  engines: Map<string, QueueEngine>;
  observed: Observations;
  clock(): number;
  checkOpen(): void;
  engineOf(name: string, field?: string): QueueEngine;
  afterChange(engine: QueueEngine): void;
  /** Makes sure the broker's timer fires no later than `at`. */
  arm(at: number | null): void;
  /** Logs changes to `engine`'s messages, as its durability says. */
  append(engine: QueueEngine, records: LogRecord[], synced?: boolean): Promise<void>;
  /** Persists what the engine decided; dead outcomes that found nowhere
   * to go are added to `dropped`. */
  settleOutcomes(
    engine: QueueEngine,
    now: number,
    error?: string,
    dropped?: Set<Outcome>,
  ): Promise<void>;
}

export class Settling {
  constructor(private readonly deps: SettlingDeps) {}

  async ack(queue: string, receipts: string[], options: AckOptions = {}): Promise<boolean[]> {
    this.deps.checkOpen();
    const engine = this.deps.engineOf(queue);
    const settled: Message[] = [];

    const results = receipts.map((receipt) => {
      const message = engine.ack(String(receipt));
      if (message !== undefined) settled.push(message);
      return message !== undefined;
    });
    this.deps.afterChange(engine);
    if (settled.length === 0) return results;

    try {
      const records: LogRecord[] = [{ type: 'settled', seqs: settled.map((m) => m.seq) }];
      await this.deps.append(engine, records, options.synced ?? true);
    } catch (err) {
      // Not durable, so not settled: the messages are ready again rather
      // than gone until the next restart brings them back.
      if (this.deps.engines.get(queue) === engine) {
        const now = this.deps.clock();
        for (const message of settled) engine.enqueue(messageFrom(message), now);
        this.deps.afterChange(engine);
      }
      throw err;
    }

    // Timed once durable, when the ack is confirmed; not for a queue
    // deleted meanwhile, whose figures went with it.
    if (this.deps.engines.get(queue) === engine) {
      const acked = this.deps.clock();
      const latency = this.deps.observed.queueLatency(queue).publishToAck;
      for (const message of settled) latency.observeMs(acked - message.publishedAt);
    }
    return results;
  }

  /**
   * nack() of several receipts of one queue as one change: every message
   * is back (or dead) before any is served again, so requeued messages go
   * out in their own order, not the first of them ahead of newer ones and
   * the rest after (AMQP's nack with multiple, basic.recover, a closed
   * channel; RabbitMQ requeues such a batch at once). Receipts no longer
   * leased are passed over.
   */
  async nackMany(queue: string, receipts: readonly string[], options: NackOptions): Promise<void> {
    this.deps.checkOpen();
    const engine = this.deps.engineOf(queue);
    const { request, reason } = nackRequestOf(options);

    const now = this.deps.clock();
    for (const receipt of receipts) engine.nack(receipt, now, request);
    await this.deps.settleOutcomes(engine, now, reason);
  }

  async nack(queue: string, receipt: string, options: NackOptions): Promise<NackResult> {
    this.deps.checkOpen();
    const engine = this.deps.engineOf(queue);
    const { request, reason } = nackRequestOf(options);

    const now = this.deps.clock();
    const outcome = engine.nack(receipt, now, request);
    if (outcome === undefined) throw this.notLeased(queue, receipt);

    // Whether this message found a dead-letter queue is known as its
    // outcome is settled; other messages of the queue may die meanwhile
    // (expired ones met while serving its consumers).
    const dropped = new Set<Outcome>();
    await this.deps.settleOutcomes(engine, now, reason, dropped);
    if (outcome.kind === 'retry') return { outcome: 'retried' };
    return {
      outcome: dropped.has(outcome) ? 'dropped' : 'dead-lettered',
      reason: outcome.reason,
    };
  }

  release(queue: string, receipts: string[]): number {
    const engine = this.deps.engineOf(queue);
    const now = this.deps.clock();
    let released = 0;
    for (const receipt of receipts) if (engine.release(String(receipt), now)) released++;
    this.deps.afterChange(engine);
    return released;
  }

  async extend(queue: string, receipt: string, timeoutMs: number): Promise<number> {
    this.deps.checkOpen();
    const engine = this.deps.engineOf(queue);
    checkDuration(timeoutMs, 'timeoutMs', { min: 1 });

    const deadline = engine.extend(receipt, this.deps.clock(), timeoutMs);
    if (deadline === undefined) throw this.notLeased(queue, receipt);
    this.deps.arm(deadline);
    return deadline;
  }

  /**
   * RECEIPT_NOT_FOUND for a receipt `queue` holds no lease for, naming the
   * queue that does when the receipt was sent to another queue's path (a
   * new user's mistake that "settled, expired or never existed" hid).
   * A receipt starts with its message's seq, so each queue is asked once,
   * and only on this path.
   */
  notLeased(queue: string, receipt: string): ReceiptNotFoundError {
    const seq = seqOfReceipt(receipt);
    for (const engine of this.deps.engines.values()) {
      if (engine.name === queue) continue;
      if (engine.get(seq)?.lease?.receipt === receipt) {
        return new ReceiptNotFoundError(receipt, queue, engine.name);
      }
    }
    return new ReceiptNotFoundError(receipt, queue);
  }
}

/**
 * The message seq a receipt (`<seq base 36>.<delivery>`, engine/queue.ts)
 * starts with; -1 when it has none. A guess only: notLeased compares the
 * whole receipt with the lease's.
 */
function seqOfReceipt(receipt: string): number {
  const dot = receipt.indexOf('.');
  if (dot <= 0 || !/^[0-9a-z]+$/.test(receipt.slice(0, dot))) return -1;
  const seq = parseInt(receipt.slice(0, dot), 36);
  return Number.isSafeInteger(seq) ? seq : -1;
}

/** A nack's options checked: what the engine is asked, and the reason to record. */
function nackRequestOf(options: NackOptions): {
  request: { requeue: boolean; delayMs: number | undefined };
  reason: string | undefined;
} {
  const delayMs =
    options.delayMs === undefined ? undefined : checkDuration(options.delayMs, 'delayMs');
  const reason =
    options.reason === undefined ? undefined : cutText(String(options.reason), MAX_REASON_LENGTH);
  return { request: { requeue: options.requeue ?? true, delayMs }, reason };
}
