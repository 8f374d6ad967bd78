// The random runs that compare two brokers step by step
// (cold-differential.test.ts, restart-differential.test.ts): each side,
// the operations, how often each is drawn, and how one is applied to a
// side and turned into a value both sides must agree on.

import type { Broker } from '../../src/broker/broker.js';
import { ManualClock, openBroker, tempDir, text } from '../helpers.js';

/** The queues of a run: a best-effort one and a FIFO one, both dead-lettering into `dlq`. */
export const QUEUES = ['q', 'f', 'dlq'];

export interface SideOptions {
  /** Ready messages a queue keeps in memory before the rest go cold. */
  hotReadyLimit: number;
  /** Whether a `restart` op closes and reopens this side. */
  restarts: boolean;
  /**
   * Ack what is in flight before a `restart` op. Leases are not logged, so
   * when only one side restarts both must hold nothing at that moment.
   */
  ackBeforeRestart: boolean;
}

/** One broker of a run, with the receipts of what it has in flight. */
export class Side {
  broker!: Broker;
  readonly dir = tempDir();
  readonly receipts = new Map<string, string[]>();

  constructor(readonly clock: ManualClock, readonly options: SideOptions) {}

  async open(): Promise<void> {
    this.broker = await openBroker(this.dir.path, {
      clock: this.clock.read, random: () => 0.5,
      hotReadyLimit: this.options.hotReadyLimit, hotMemoryBytes: 0,
    });
    this.receipts.clear();
  }

  /** Creates the run's queues, `q` and `f` retrying up to their limits. */
  async createQueues(attempts: { q: number; f: number }): Promise<void> {
    await this.broker.createQueue('dlq', {});
    await this.broker.createQueue('q', { deadLetter: 'dlq', maxAttempts: attempts.q });
    await this.broker.createQueue('f', { fifo: true, deadLetter: 'dlq', maxAttempts: attempts.f });
  }

  async restart(): Promise<void> {
    if (this.options.ackBeforeRestart) await this.ackAll();
    if (!this.options.restarts) return;
    await this.broker.close();
    await this.open();
  }

  async ackAll(): Promise<void> {
    for (const [queue, receipts] of this.receipts) {
      if (receipts.length > 0) await this.broker.ack(queue, receipts);
    }
    this.receipts.clear();
  }

  async close(): Promise<void> {
    await this.broker.close();
    this.dir.remove();
  }

  /**
   * Counts per queue, and what a peek lists in its order (delivery order),
   * which both sides must agree on after every step.
   */
  stats() {
    return QUEUES.map((name) => {
      const { ready, delayed, inFlight } = this.broker.getQueue(name).stats;
      const listed = this.broker.peek(name, { offset: 0, limit: 1000 })
        .map((m) => `${m.id}/${m.state}/${m.failures}/${m.availableAt}`);
      return { name, ready, delayed, inFlight, listed };
    });
  }
}

export type Op =
  | { kind: 'publish'; queue: string; inputs: { id: string; body: string; priority?: number;
    delayMs?: number; group?: string; headers?: Record<string, string> }[] }
  | { kind: 'receive'; queue: string; max: number }
  | { kind: 'settle'; queue: string; pick: number; how: 'ack' | 'nack' | 'delay' | 'reject';
    delayMs: number }
  | { kind: 'time'; ms: number }
  | { kind: 'redrive'; max?: number }
  | { kind: 'purge'; queue: string }
  | { kind: 'restart' };

/** How a run draws its ops. */
export interface OpMix {
  /** Cumulative shares of the draw, in the order of `Op`'s kinds; the rest is `restart`. */
  upTo: { publish: number; receive: number; settle: number; time: number; redrive: number;
    purge: number };
  /** A publish goes to the FIFO queue one time in `fifoOneIn`. */
  fifoOneIn: number;
  /** A published message is delayed one time in `delayedOneIn`. */
  delayedOneIn: number;
  /** FIFO groups the publishes spread over. */
  groups: number;
  /** Whether a redrive moves only a few messages some of the time. */
  partialRedrives: boolean;
}

/** The `n`th op of a run, drawn with `next`. */
export function randomOp(next: () => number, n: number, mix: OpMix): Op {
  const pick = (k: number) => Math.floor(next() * k);
  const roll = next();
  const { upTo } = mix;
  if (roll < upTo.publish) {
    const queue = pick(mix.fifoOneIn) === 0 ? 'f' : 'q';
    return {
      kind: 'publish', queue,
      inputs: Array.from({ length: 1 + pick(4) }, (_, i) => ({
        id: `m${n}.${i}`,
        body: `m${n}.${i}` + 'x'.repeat(pick(40)),
        priority: pick(3) === 0 ? pick(10) : undefined,
        delayMs: pick(mix.delayedOneIn) === 0 ? pick(5000) : undefined,
        group: queue === 'f' ? `g${pick(mix.groups)}` : undefined,
        headers: pick(2) === 0 ? { h: `v${n}` } : undefined,
      })),
    };
  }
  if (roll < upTo.receive) return { kind: 'receive', queue: QUEUES[pick(3)], max: 1 + pick(5) };
  if (roll < upTo.settle) {
    const how = (['ack', 'nack', 'delay', 'reject'] as const)[pick(4)];
    return { kind: 'settle', queue: QUEUES[pick(3)], pick: pick(100), how, delayMs: pick(3000) };
  }
  if (roll < upTo.time) return { kind: 'time', ms: pick(2000) };
  if (roll < upTo.redrive) {
    const partial = mix.partialRedrives && pick(2) === 0;
    return { kind: 'redrive', max: partial ? 1 + pick(4) : undefined };
  }
  if (roll < upTo.purge) return { kind: 'purge', queue: QUEUES[pick(3)] };
  return { kind: 'restart' };
}

/**
 * Applies `op` to `side` and answers what both sides must agree on. A
 * `time` op only runs what fell due: the run advances the shared clock once.
 */
export async function step(side: Side, op: Op): Promise<unknown> {
  const b = side.broker;
  switch (op.kind) {
    case 'publish':
      return b.publish(op.queue, op.inputs.map((input) => ({ ...input, body: text(input.body) })));
    case 'receive': {
      const got = await b.receive(op.queue, { max: op.max, waitMs: 0 });
      const held = side.receipts.get(op.queue) ?? [];
      side.receipts.set(op.queue, [...held, ...got.map((m) => m.receipt)]);
      return got.map((m) => ({ body: m.body.toString(), headers: m.headers, attempt: m.attempt,
        group: m.group, priority: m.priority, id: m.id, publishedAt: m.publishedAt }));
    }
    case 'settle': {
      const receipts = side.receipts.get(op.queue) ?? [];
      if (receipts.length === 0) return null;
      const receipt = receipts.splice(op.pick % receipts.length, 1)[0];
      if (op.how === 'ack') return b.ack(op.queue, [receipt]);
      // A reason on every other nack: with one, the nack logs a `published`
      // copy with headers; without, a `retried` record only.
      return b.nack(op.queue, receipt, {
        requeue: op.how !== 'reject', delayMs: op.how === 'delay' ? op.delayMs : undefined,
        reason: op.pick % 2 === 0 ? `r${op.pick}` : undefined,
      });
    }
    case 'time':
      b.runDue();
      return null;
    case 'redrive':
      return b.redrive('dlq', { max: op.max });
    case 'purge':
      return b.purgeQueue(op.queue);
    case 'restart':
      await side.restart();
      return null;
  }
}
