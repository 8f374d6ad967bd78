// A managed consumer: long-polls a queue, runs up to `concurrency` handlers
// at once, acks what they finish (batched) and nacks what they throw,
// telling onError of the throw.
//
//   receive(max = free slots) ──> handler ──returns──> ack (batched)
//        ^                           ├──throws───> nack (error message), onError
//        └── slot freed ─────────────┘
//
// The loop only asks for as many messages as it has free handler slots, so
// no lease sits on the client waiting for a handler while its time runs out.
//
// Over AMQP the messages are pushed instead (basic.consume with a prefetch
// of `concurrency`, amqp-subscription.ts): the loop takes what arrived in
// place of a receive, and stop() cancels the AMQP consumer first and closes
// its channel once the handlers' acks are sent. `batch` and `waitMs` do
// not apply there: the prefetch bounds what is delivered.
//
// On a FIFO queue one receive may hand out several messages of a group, in
// order. They run one after another, never side by side, and when one
// fails the rest of its group is released unprocessed, so that nothing of
// the group runs before the failed message is retried.

import { CLIENT_ERROR_CODES, UsherClientError } from './errors.js';
import { type PushSource, unsupportedLease } from './amqp-subscription.js';
import type { UsherClient } from './client.js';
import type {
  NackOptions,
  ReceivedBody,
  ReceivedMessage,
} from './types.js';

/** Runs for every message; its promise settles the message (see consume). */
export type Handler = (message: ConsumerMessage) => unknown;

export interface ConsumeOptions {
  /** Handlers running at once; default 1. */
  concurrency?: number;
  /** Most messages per receive (1 to 1000); default: concurrency. Over
   * AMQP the prefetch (concurrency) bounds deliveries instead. */
  batch?: number;
  /** Long-poll wait per receive, at most 20000; default 20000. Not used
   * over AMQP, where messages are pushed. */
  waitMs?: number;
  /** Lease length per delivery; the queue's visibilityTimeoutMs by default.
   * Over AMQP it cannot be set (UNSUPPORTED): leases last 30 minutes. */
  visibilityTimeoutMs?: number;
  /**
   * Told about every failure the consumer absorbs; ignored by default.
   * With `message`: the handler threw `error` on it, and it was nacked
   * with the error's message as reason (unless the handler had settled
   * it), so it is retried or dead-lettered; the broker keeps the reason
   * in the x-usher-last-error header. Without: a receive, ack or nack
   * that did not go through (the loop retries receives with backoff; a
   * message not settled is redelivered when its lease runs out).
   *
   * @example
   *   usher.consume('emails', sendEmail, {
   *     onError: (err, message) => console.error(message?.id ?? 'consumer', err),
   *   });
   */
  onError?: (error: unknown, message?: ConsumerMessage) => void;
}

/** Nack reasons are cut here; a stack-sized message helps nobody. */
const MAX_REASON_CHARS = 1000;
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 10_000;
/** The broker's most receipts per ack request. */
const MAX_ACK_BATCH = 1000;

/**
 * A message handed to a consume() handler. By default the consumer acks it
 * when the handler returns and nacks it when the handler throws; calling
 * ack() or nack() here settles it yourself and turns that off.
 */
export class ConsumerMessage implements ReceivedMessage {
  readonly id: string;
  readonly queue: string;
  readonly receipt: string;
  readonly body: ReceivedBody;
  readonly headers: Record<string, string>;
  readonly priority: number;
  readonly group: string | null;
  readonly attempt: number;
  readonly redelivered: boolean;
  readonly publishedAt: number;
  leaseDeadline: number;
  /** True once acked or nacked, by the handler or the consumer. */
  settled = false;
  /** True once nacked, by the handler or the consumer. */
  failed = false;
  readonly #consumer: Consumer;

  constructor(consumer: Consumer, message: ReceivedMessage) {
    this.#consumer = consumer;
    this.id = message.id;
    this.queue = message.queue;
    this.receipt = message.receipt;
    this.body = message.body;
    this.headers = message.headers;
    this.priority = message.priority;
    this.group = message.group;
    this.attempt = message.attempt;
    this.redelivered = message.redelivered;
    this.publishedAt = message.publishedAt;
    this.leaseDeadline = message.leaseDeadline;
  }

  /**
   * Acks now instead of when the handler returns.
   *
   * @example
   *   usher.consume('jobs', async (m) => {
   *     await m.ack();
   *     await slowCleanup();
   *   });
   */
  async ack(): Promise<void> {
    this.settled = true;
    const { client } = this.#consumer;
    await this.#consumer.track(client.ack(this.queue, this.receipt));
  }

  /**
   * Gives the message back now (retry after `delayMs` or the queue's
   * backoff, or dead-letter with `requeue: false`); no auto-ack follows.
   *
   * @example
   *   usher.consume('jobs', async (m) => {
   *     if (!ready()) return m.nack({ delayMs: 30_000, reason: 'not ready' });
   *   });
   */
  async nack(options: NackOptions = {}): Promise<void> {
    this.settled = true;
    this.failed = true;
    await this.#consumer.track(
      this.#consumer.client.nack(this.queue, this.receipt, options),
    );
  }

  /**
   * Keeps the lease for `timeoutMs` more; the consumer still acks or nacks
   * when the handler ends. Answers the new deadline.
   *
   * @example
   *   usher.consume('videos', async (m) => {
   *     const timer = setInterval(() => m.extend(60_000), 30_000);
   *     try { await transcode(m.body); } finally { clearInterval(timer); }
   *   });
   */
  async extend(timeoutMs: number): Promise<number> {
    const { client } = this.#consumer;
    const extending = client.extend(this.queue, this.receipt, timeoutMs);
    this.leaseDeadline = await this.#consumer.track(extending);
    return this.leaseDeadline;
  }
}

/** A running consume() loop. Stop it with stop(). */
export class Consumer {
  readonly queue: string;
  /** @internal */
  readonly client: UsherClient;
  readonly #handler: Handler;
  readonly #concurrency: number;
  readonly #batch: number;
  readonly #waitMs: number;
  readonly #visibilityTimeoutMs: number | undefined;
  readonly #onError: (error: unknown, message?: ConsumerMessage) => void;
  readonly #onStopped: () => void;
  /** Over AMQP: the pushed deliveries taken instead of receive(). */
  readonly #pushed: PushSource<ReceivedMessage> | null;

  /** Handlers running now. */
  #active = 0;
  /** Acks, nacks and extends not yet answered (ack batches included). */
  #settling = 0;
  #acks: ConsumerMessage[] = [];
  #ackScheduled = false;

  /** Whether the queue is FIFO; asked of the broker before the first receive. */
  #fifo: boolean | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  #poll: AbortController | undefined;
  /** Wakes the loop: a handler slot freed, a retry wait ended, stop(). */
  #wake: (() => void) | undefined;
  /** Resolves stop() once nothing is running or settling. */
  #drained: (() => void) | undefined;
  readonly #loop: Promise<void>;

  /** @internal Use UsherClient.consume(). */
  constructor(
    client: UsherClient,
    queue: string,
    handler: Handler,
    options: ConsumeOptions,
    onStopped: () => void,
  ) {
    this.client = client;
    this.queue = queue;
    this.#handler = handler;
    this.#concurrency = positiveInt(options.concurrency ?? 1, 'concurrency');
    this.#batch = Math.min(
      positiveInt(options.batch ?? this.#concurrency, 'batch'),
      1000,
    );
    this.#waitMs = options.waitMs ?? 20_000;
    this.#visibilityTimeoutMs = options.visibilityTimeoutMs;
    this.#onError = options.onError ?? (() => {});
    this.#onStopped = onStopped;
    this.#pushed = client.pushSource(queue, this.#concurrency);
    if (this.#pushed !== null) {
      if (options.visibilityTimeoutMs !== undefined) throw unsupportedLease();
      // Over AMQP messages carry no group: each runs on its own.
      this.#fifo = false;
    }
    this.#loop = this.#run();
  }

  /** Handlers running right now. */
  get active(): number {
    return this.#active;
  }

  /**
   * Stops gracefully: no more receives (a long poll in progress is given
   * up), running handlers finish, and their acks and nacks are sent before
   * the promise resolves. Calling it again answers the same promise.
   *
   * @example
   *   process.once('SIGTERM', async () => {
   *     await consumer.stop();
   *     process.exit(0);
   *   });
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  /** @internal Counts a settle call so that stop() waits for it. */
  track<T>(settling: Promise<T>): Promise<T> {
    this.#settling += 1;
    return settling.finally(() => {
      this.#settling -= 1;
      this.#checkDrained();
    });
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    this.#poll?.abort();
    this.#wake?.();
    await this.#loop;
    // No more deliveries; the running handlers still settle theirs.
    await this.#pushed?.cancel().catch((err: unknown) => this.#report(err));

    const drained = new Promise<void>((resolve) => (this.#drained = resolve));
    this.#checkDrained();
    await drained;
    await this.#pushed?.close().catch((err: unknown) => this.#report(err));
    this.#onStopped();
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      const free = this.#concurrency - this.#active;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        continue;
      }

      this.#poll = new AbortController();
      let messages: ReceivedMessage[];
      try {
        this.#fifo ??= await isFifo(this.client, this.queue);
        messages = this.#pushed !== null
          ? await this.#pushed.next(free, this.#poll.signal)
          : await this.client.receive(this.queue, {
            max: Math.min(free, this.#batch),
            waitMs: this.#waitMs,
            visibilityTimeoutMs: this.#visibilityTimeoutMs,
            signal: this.#poll.signal,
          });
        failures = 0;
      } catch (err) {
        if (this.#stopping) break;
        this.#report(err);
        const delay = Math.min(RETRY_FIRST_MS * 2 ** failures, RETRY_MAX_MS);
        failures += 1;
        await this.#pause(delay);
        continue;
      }

      // Messages already leased to us are handled even when stop() came
      // during the poll: their handlers count as in flight.
      const handed = messages.map((message) => new ConsumerMessage(this, message));
      if (this.#fifo) {
        for (const group of byGroup(handed)) void this.#handleInOrder(group);
      } else {
        for (const message of handed) void this.#handle(message);
      }
    }
    this.#poll = undefined;
  }

  /** Runs a FIFO group's messages one by one; stops at the first failure. */
  async #handleInOrder(group: ConsumerMessage[]): Promise<void> {
    this.#active += group.length;
    let index = 0;
    for (; index < group.length; index++) {
      const succeeded = await this.#handle(group[index], false);
      if (!succeeded) break;
    }

    const rest = group.slice(index + 1);
    this.#active -= group.length;
    if (rest.length > 0) {
      for (const message of rest) message.settled = true;
      const releasing = this.client.release(this.queue, rest.map((m) => m.receipt));
      this.track(releasing).catch((err: unknown) => this.#report(err));
    }
    this.#wake?.();
    this.#checkDrained();
  }

  /** Runs the handler and settles; true when the message was not failed. */
  async #handle(message: ConsumerMessage, counted = true): Promise<boolean> {
    if (counted) this.#active += 1;
    try {
      await this.#handler(message);
      if (!message.settled) this.#ackLater(message);
      return !message.failed;
    } catch (err) {
      if (!message.settled) this.#nackFailed(message, err);
      this.#report(err, message);
      return false;
    } finally {
      if (counted) {
        this.#active -= 1;
        this.#wake?.();
        this.#checkDrained();
      }
    }
  }

  #nackFailed(message: ConsumerMessage, err: unknown): void {
    message.settled = true;
    message.failed = true;
    const text = err instanceof Error ? err.message : String(err);
    const reason = text.slice(0, MAX_REASON_CHARS);
    this.track(this.client.nack(this.queue, message.receipt, { reason })).catch(
      (nackErr: unknown) => this.#report(nackErr),
    );
  }

  /**
   * Queues an ack; acks finished in the same turn of the event loop, or
   * while a batch is on its way, go together in the next request.
   */
  #ackLater(message: ConsumerMessage): void {
    message.settled = true;
    this.#acks.push(message);
    if (this.#ackScheduled) return;

    this.#ackScheduled = true;
    this.#settling += 1;
    setImmediate(() => void this.#flushAcks());
  }

  async #flushAcks(): Promise<void> {
    try {
      while (this.#acks.length > 0) {
        const batch = this.#acks.splice(0, MAX_ACK_BATCH);
        const receipts = batch.map((m) => m.receipt);
        try {
          const { results } = await this.client.ack(this.queue, receipts);
          results.forEach((acked, i) => {
            if (!acked) this.#report(lateAck(batch[i]));
          });
        } catch (err) {
          this.#report(err);
        }
      }
    } finally {
      this.#ackScheduled = false;
      this.#settling -= 1;
      this.#checkDrained();
    }
  }

  /** A throwing onError must not stop the loop or lose a settlement. */
  #report(error: unknown, message?: ConsumerMessage): void {
    try {
      this.#onError(error, message);
    } catch {
      // The callback's own failure has nowhere better to go.
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #checkDrained(): void {
    if (this.#drained && this.#active === 0 && this.#settling === 0) {
      this.#drained();
    }
  }
}

/**
 * Whether `queue` is FIFO. Over AMQP its settings cannot be read, and
 * messages carry no group there either: each runs on its own.
 */
async function isFifo(client: UsherClient, queue: string): Promise<boolean> {
  try {
    return (await client.getQueue(queue)).settings.fifo;
  } catch (err) {
    if (err instanceof UsherClientError && err.code === CLIENT_ERROR_CODES.UNSUPPORTED) {
      return false;
    }
    throw err;
  }
}

/** Messages by FIFO group, each group in the order received. */
function byGroup(messages: ConsumerMessage[]): ConsumerMessage[][] {
  const groups = new Map<string | null, ConsumerMessage[]>();
  for (const message of messages) {
    const group = groups.get(message.group);
    if (group === undefined) groups.set(message.group, [message]);
    else group.push(message);
  }
  return [...groups.values()];
}

function lateAck(message: ConsumerMessage): UsherClientError {
  return new UsherClientError(
    'RECEIPT_NOT_FOUND',
    404,
    `ack of message "${message.id}" came after its lease ended; it will ` +
      'be delivered again',
    { field: 'receipt' },
  );
}

function positiveInt(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new UsherClientError(
      CLIENT_ERROR_CODES.INVALID_ARGUMENT,
      0,
      `${field} must be a whole number of at least 1, got ${value}`,
      { field },
    );
  }
  return value;
}
