// The three services behind the queues, each a consumer working at its own
// pace (concurrency and a simulated processing time). The e-mail service
// crashes once and comes back; the SMS provider fails a share of sends;
// every service dead-letters purchases it can never process.
//
// Each service keeps its own record of what it did, the way a real one
// keeps a sent-mail log: the final report checks those records, and the
// dead-letter queues as the broker lists them, ticket id by ticket id.

import {
  connect,
  type Consumer,
  type ConsumerMessage,
  type UsherClient,
} from '../../client/index.js';
import { checkPurchase } from './purchases.js';
import { between, chance, hashText } from './random.js';
import type { ServiceName } from './setup.js';

export interface ServicePace {
  /** Handlers running at once. */
  concurrency: number;
  /** Simulated processing time per message, from min to max. */
  minMs: number;
  maxMs: number;
}

export interface CrashPlan {
  /** Crash once this many tickets have been processed (and more are in hand). */
  afterProcessed: number;
  /** Stay down this long, then a new process starts. */
  downMs: number;
}

export interface ServiceOptions {
  name: ServiceName;
  url: string;
  queue: string;
  pace: ServicePace;
  seed: number;
  crash?: CrashPlan;
  /** Share of sends the provider fails, each on one of the first two attempts. */
  failureRate?: number;
  /** Told when something worth a line happens (crash, restart). */
  note(text: string): void;
}

export interface ServiceStats {
  /** Handler runs, redeliveries included. */
  deliveries: number;
  /** Deliveries with attempt > 1: after a nack or an expired lease. */
  retried: number;
  /** Nacked to be retried: the provider failed. */
  transientFailures: number;
  /** Nacked without requeue: malformed, straight to the dead-letter queue. */
  rejected: number;
  /** Deliveries of a ticket whose side effect had already happened. */
  duplicates: number;
  crashes: number;
  /** Messages its handlers held when it crashed (the last crash). */
  inHandAtCrash: number;
  /** Receives, acks or nacks that failed and were absorbed by the consumer. */
  clientErrors: number;
}

/** Pace per service: payment is quick and wide, notifications slower. */
export const DEFAULT_PACE: Record<ServiceName, ServicePace> = {
  payment: { concurrency: 16, minMs: 1, maxMs: 4 },
  email: { concurrency: 16, minMs: 10, maxMs: 25 },
  sms: { concurrency: 8, minMs: 1, maxMs: 6 },
};

/** One running process of a service: a consumer on its own connection. */
interface ServiceProcess {
  client: UsherClient;
  consumer: Consumer;
  /** Shared with the process's handlers, which check it after each step. */
  life: { killed: boolean };
}

/** A dead process never answers: its handlers wait on this forever. */
const NEVER = new Promise<never>(() => {});

export class Service {
  readonly name: ServiceName;
  readonly stats: ServiceStats = {
    deliveries: 0,
    retried: 0,
    transientFailures: 0,
    rejected: 0,
    duplicates: 0,
    crashes: 0,
    inHandAtCrash: 0,
    clientErrors: 0,
  };
  /** Ticket ids handled to the end and acked. */
  readonly processed = new Set<string>();
  /** Ticket ids whose side effect (charge, mail, text) happened. */
  readonly #done = new Set<string>();
  readonly #options: ServiceOptions;
  #process: ServiceProcess | undefined;
  #restart: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: ServiceOptions) {
    this.name = options.name;
    this.#options = options;
  }

  /** True while the service has no running process (crashed). */
  get down(): boolean {
    return this.#process === undefined || this.#process.life.killed;
  }

  start(): void {
    const { url, queue, pace } = this.#options;
    const life = { killed: false };
    const client = connect(url);
    const consumer = client.consume(
      queue,
      (message) => this.#handle(message, life),
      {
        concurrency: pace.concurrency,
        // A short long-poll keeps stop() quick at the end of the run.
        waitMs: 1_000,
        // Handler throws (with a message) are the provider failures
        // counted already; only the client's own calls count here.
        onError: (_err, message) => {
          if (message === undefined) this.stats.clientErrors++;
        },
      },
    );
    this.#process = { client, consumer, life };
  }

  /** Stops the running process gracefully: finish, ack, leave. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restart);
    const running = this.#process;
    if (running && !running.life.killed) await running.client.close();
  }

  async #handle(
    message: ConsumerMessage,
    life: { killed: boolean },
  ): Promise<void> {
    const { seed, pace } = this.#options;
    const ticket = message.id;
    const draw = hashText(ticket);
    this.stats.deliveries++;
    if (message.attempt > 1) this.stats.retried++;
    if (this.#done.has(ticket)) this.stats.duplicates++;

    await sleep(between(pace.minMs, pace.maxMs, seed, draw, message.attempt));
    if (life.killed) return NEVER;

    const problem = checkPurchase(message.body);
    if (problem !== null) {
      this.stats.rejected++;
      await message.nack({ requeue: false, reason: problem });
      return;
    }

    // The provider fails a send on one of the first two attempts at most,
    // so every good purchase gets through well within maxAttempts. One
    // failure in three is a timeout after the text went out: the retry
    // sends it again, the duplicate at-least-once delivery allows.
    const attempt = message.attempt;
    const failureRate = this.#options.failureRate ?? 0;
    if (attempt <= 2 && chance(seed, draw, attempt, 7) < failureRate) {
      this.stats.transientFailures++;
      const provider = `${this.name} provider`;
      if (chance(seed, draw, attempt, 8) < 1 / 3) {
        this.#done.add(ticket);
        throw new Error(`${provider} timed out after accepting ${ticket}`);
      }
      throw new Error(`${provider} unavailable (503) for ${ticket}`);
    }

    this.#done.add(ticket);
    this.processed.add(ticket);
    this.#maybeCrash();
  }

  /**
   * Kills the process abruptly: it stops receiving and never acks or nacks
   * what it holds, so those leases run out and the broker redelivers the
   * messages to the next process.
   */
  #maybeCrash(): void {
    const plan = this.#options.crash;
    const running = this.#process;
    if (!plan || !running || this.stats.crashes > 0) return;
    if (this.processed.size < plan.afterProcessed) return;
    // Only a crash with work in hand shows anything: wait until this
    // handler is not the only one running.
    if (running.consumer.active < 2) return;

    running.life.killed = true;
    this.stats.crashes++;
    this.stats.inHandAtCrash = running.consumer.active - 1;
    // The consumer stops without waiting for its handlers, which never
    // return, and the connection goes: over AMQP the broker hands the
    // messages back at once, over HTTP when their leases run out.
    running.client.abort();
    this.#options.note(
      `${this.name} service crashed with ${this.stats.inHandAtCrash} ` +
        `message(s) in hand; back in ${plan.downMs} ms`,
    );

    this.#restart = setTimeout(() => {
      if (this.#stopped) return;
      this.start();
      this.#options.note(`${this.name} service restarted`);
    }, plan.downMs);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
