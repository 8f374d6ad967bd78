// `usher demo onsale`: the on-sale spike of issue #6. Buyers arrive far
// faster than the services can take: payment events at high priority,
// notifications at normal, recommendations at low (in a sheddable queue).
// A shared pool of workers with a fixed capacity serves payments first,
// one message at a time (onsale-workers.ts).
// The broker's admission control refuses the least important events first;
// the run reports per kind what was sent, accepted, shed and processed,
// and the latency of payments at normal load and during the spike.
//
//   phase    offered load            expected
//   normal   half the capacity       nothing shed
//   spike    `spikeFactor` x capacity   recommendations, then notifications shed
//   drain    none                    backlog drains, level back to normal
//
// With `rounds` above 1 the three phases run in turn that many times and
// payment latency is pooled by phase: normal load is then measured across
// the same stretch of the machine's time as the spike, not only before
// it (on a shared machine the background load drifts within a minute).
//
// Latency is publish-to-consume: from just before the publish request to
// a worker starting on the message, both on this process's clock.

import { connect, type ReceivedMessage, type UsherClient } from '../../client/index.js';
import { UsherClientError } from '../../client/errors.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { PaymentTimings, type PhaseLatency } from './onsale-timing.js';
import { WorkerPool, type TakenTimes } from './onsale-workers.js';

export interface OnSaleOptions {
  url: string;
  /** Part of every queue name; a fresh one by default. */
  runId?: string;
  /** Messages per second the worker pool takes, all kinds together. */
  capacityPerSecond?: number;
  /** Offered load during the spike, as a multiple of capacity. */
  spikeFactor?: number;
  /** Normal load whose latencies are not counted: connections, JIT. */
  warmupMs?: number;
  /** Default: long enough for NORMAL_PAYMENTS payments (at least 3 s, at
   * most 60 s), so that the normal p99 is not the noise of a few samples. */
  normalMs?: number;
  spikeMs?: number;
  /** Times normal load, spike and drain run in turn (default 1). */
  rounds?: number;
  /** The backlog must drain within this after the spike. */
  drainTimeoutMs?: number;
  onNote?: (text: string) => void;
  /** Called every 100 ms while the run lasts, with the phase under way
   * (the bench samples RSS and CPU time). */
  onTick?: (phase: Phase) => void;
  /** How often the publisher sends what is owed (default 10 ms). */
  publishTickMs?: number;
}

export interface KindReport {
  kind: Kind;
  priority: number;
  sent: number;
  accepted: number;
  shed: number;
  processed: number;
  /** Accepted but never processed. */
  lost: number;
}

export interface OnSaleReport {
  ok: boolean;
  problems: string[];
  runId: string;
  capacityPerSecond: number;
  offeredPerSecond: { normal: number; spike: number };
  /** What the workers took while the phase lasted, all kinds together. */
  takenPerSecond: { normal: number; spike: number };
  kinds: KindReport[];
  /** By the phase a payment was sent in; spike includes those consumed
   * after the spike ended. */
  paymentLatencyMs: { normalP50: number; normalP99: number; spikeP50: number; spikeP99: number };
  /** spikeP99 / normalP99; the issue asks for at most 2. */
  paymentLatencyRatio: number;
  /** The same p99s and ratio within each round, in order, with the
   * payments behind each. */
  roundLatencyMs: RoundLatency[];
  /** Where payments' time went, by the phase they were sent in. */
  paymentTimings: { normal: PhaseLatency; spike: PhaseLatency };
  /** Event-loop delay p99 by phase: this process (publisher and workers)
   * and the broker's largest admission sample (0 when it reports none). */
  eventLoopDelayMs: { demo: PhaseDelays; broker: PhaseDelays };
  /** Admission levels the broker reported during the run, in order. */
  levels: string[];
  totalMs: number;
}

type PhaseDelays = { normal: number; spike: number };
type RoundLatency = {
  normalP99: number;
  spikeP99: number;
  ratio: number;
  samples: { normal: number; spike: number };
};
type Kind = 'payment' | 'notification' | 'recommendation';
export type Phase = 'warmup' | 'normal' | 'spike' | 'drain';

const KINDS: ReadonlyArray<{ kind: Kind; priority: number; share: number; sheddable: boolean }> = [
  { kind: 'payment', priority: 8, share: 0.1, sheddable: false },
  { kind: 'notification', priority: 5, share: 0.3, sheddable: false },
  { kind: 'recommendation', priority: 1, share: 0.6, sheddable: true },
];
/** Buyers arrive one by one: the publisher sends what is owed every tick,
 * by the time that really passed, so even in the spike a kind comes in
 * small batches (2 payments a tick at 2,000 msg/s). A 50 ms tick sent
 * payments in bursts of 10 that four workers take in three rounds. */
const DEFAULT_TICK_MS = 10;
const WORKERS = 4;
/** Payments the normal phase should see by default: its p99 is then the
 * 4th slowest of about 400, not the slowest of 60. */
const NORMAL_PAYMENTS = 400;
/** Publish requests in flight at most; past it the publisher falls behind. */
const MAX_IN_FLIGHT = 32;

export async function runOnSale(options: OnSaleOptions): Promise<OnSaleReport> {
  const started = Date.now();
  const runId = options.runId ?? Date.now().toString(36);
  const capacity = options.capacityPerSecond ?? 400;
  const spikeFactor = options.spikeFactor ?? 5;
  const note = options.onNote ?? (() => {});
  // Refusals are the point here: counted, not retried.
  const client = connect(options.url, { retry: { retries: 0 } });
  const queueOf = (kind: Kind) => `onsale.${runId}.${kind}`;
  for (const { kind, sheddable } of KINDS) {
    await client.createQueue(queueOf(kind), { sheddable, maxAttempts: 0 });
  }

  const rounds = options.rounds ?? 1;
  const state = newState(options.publishTickMs ?? DEFAULT_TICK_MS);
  const levels: string[] = [];
  const demoLoop = monitorEventLoopDelay({ resolution: 10 });
  demoLoop.enable();
  const watch = setInterval(() => {
    options.onTick?.(state.phase);
    const { phase, loopDelay } = state;
    if (demoLoop.count > 0) {
      loopDelay.demo[phase] = Math.max(loopDelay.demo[phase], demoLoop.percentile(99) / 1e6);
      demoLoop.reset();
    }
    void client.health().then((health) => {
      const admission = health.admission as
        | { level?: string; eventLoopDelayMs?: number }
        | undefined;
      loopDelay.broker[phase] = Math.max(loopDelay.broker[phase], admission?.eventLoopDelayMs ?? 0);
      const level = admission?.level ?? 'off';
      if (levels.at(-1) !== level) {
        levels.push(level);
        note(`admission level: ${level}`);
      }
    }, () => {});
  }, 100);

  const workers = new WorkerPool(client, KINDS.map(({ kind }) => ({
    name: queueOf(kind),
    onTaken: (message, times) => taken(state, kind, message, times),
  })), { workers: WORKERS, capacityPerSecond: capacity });
  workers.start();
  try {
    note(`normal load: ${capacity / 2} msg/s against a capacity of ${capacity} msg/s`);
    await offer(client, queueOf, state, 'warmup', capacity / 2, options.warmupMs ?? 1000);
    const normalMs = options.normalMs ?? defaultNormalMs(capacity);
    for (let round = 1; round <= rounds; round++) {
      state.round = round;
      if (round > 1) note(`round ${round} of ${rounds}: normal load`);
      await offer(client, queueOf, state, 'normal', capacity / 2, normalMs);
      note(`spike: ${capacity * spikeFactor} msg/s`);
      await offer(client, queueOf, state, 'spike', capacity * spikeFactor, options.spikeMs ?? 8000);
      note('spike over: draining');
      state.phase = 'drain';
      // The next round's normal load starts from an empty backlog at the
      // normal level, as the first one did. If it cannot, the round is
      // reported: a normal phase measured behind a backlog has a higher
      // p99 and would make the spike's ratio look better than it is.
      const drainMs = options.drainTimeoutMs ?? 60_000;
      if (!(await waitForDrain(state, drainMs))) {
        state.roundTrouble.push(`round ${round}: the backlog was not drained within ${drainMs} ms`);
      }
      const level = await waitForNormal(levels, 10_000);
      if (round < rounds && level !== null) {
        state.roundTrouble.push(`round ${round + 1} began with the admission level at ${level}`);
      }
    }
  } finally {
    await workers.stop();
    clearInterval(watch);
    demoLoop.disable();
  }
  return report(state, runId, capacity, rounds, levels, Date.now() - started);
}

function defaultNormalMs(capacity: number): number {
  const paymentsPerSecond = (capacity / 2) * KINDS[0].share;
  const ms = (NORMAL_PAYMENTS / paymentsPerSecond) * 1000;
  return Math.round(Math.min(60_000, Math.max(3000, ms)));
}

interface State {
  phase: Phase;
  /** 1-based; payments are timed under their phase and their round. */
  round: number;
  /** Rounds that did not end drained and back at normal (see runOnSale). */
  roundTrouble: string[];
  /** How often the publisher sends what is owed. */
  tickMs: number;
  sent: Record<Kind, number>;
  shed: Record<Kind, number>;
  accepted: Map<string, Kind>;
  processed: Map<string, number>;
  timings: PaymentTimings;
  /** Event-loop delay p99 by phase (see eventLoopDelayMs in the report). */
  loopDelay: { demo: Record<Phase, number>; broker: Record<Phase, number> };
  inFlight: number;
  offered: Record<'normal' | 'spike', { messages: number; ms: number }>;
  /** Messages the workers took while each phase lasted, all kinds. */
  takenIn: Record<Phase, number>;
}

function newState(tickMs: number): State {
  const zero = () => ({ payment: 0, notification: 0, recommendation: 0 });
  return {
    phase: 'normal',
    round: 1,
    roundTrouble: [],
    tickMs,
    sent: zero(),
    shed: zero(),
    accepted: new Map(),
    processed: new Map(),
    timings: new PaymentTimings(),
    loopDelay: {
      demo: { warmup: 0, normal: 0, spike: 0, drain: 0 },
      broker: { warmup: 0, normal: 0, spike: 0, drain: 0 },
    },
    inFlight: 0,
    offered: { normal: { messages: 0, ms: 0 }, spike: { messages: 0, ms: 0 } },
    takenIn: { warmup: 0, normal: 0, spike: 0, drain: 0 },
  };
}

/** Publishes at `rate` for `ms`, in batches every tick, by kind. */
async function offer(
  client: UsherClient,
  queueOf: (kind: Kind) => string,
  state: State,
  phase: 'warmup' | 'normal' | 'spike',
  rate: number,
  ms: number,
): Promise<void> {
  state.phase = phase;
  const began = Date.now();
  const sentBefore = sentTotal(state);
  const owed = { payment: 0, notification: 0, recommendation: 0 };
  // The tick at which messages still owed were first held back by a full
  // window of requests: their latency runs from then, not from when the
  // window let them go, so a publisher that falls behind cannot hide the
  // delay. (Messages falling due between two ticks are stamped at the
  // tick that sends them: the publisher's own batching, at most a tick.)
  const owedSince: Record<Kind, number | null> = {
    payment: null,
    notification: null,
    recommendation: null,
  };
  const requests: Promise<void>[] = [];
  let failure: unknown = null;

  let last = began;
  while (Date.now() - began < ms) {
    const now = Date.now();
    const elapsedMs = now - last;
    last = now;
    for (const { kind, priority, share } of KINDS) {
      owed[kind] += (rate * share * elapsedMs) / 1000;
      const count = Math.floor(owed[kind]);
      if (count === 0) continue;
      owedSince[kind] ??= now;
      if (state.inFlight >= MAX_IN_FLIGHT) continue;
      owed[kind] -= count;
      const dueAt = owedSince[kind] as number;
      owedSince[kind] = null;
      requests.push(publishBatch(client, queueOf(kind), kind, priority, count, dueAt, state)
        .catch((err: unknown) => void (failure ??= err)));
    }
    if (failure !== null) break;
    await sleep(state.tickMs);
  }
  await Promise.all(requests);
  if (failure !== null) throw failure;
  if (phase !== 'warmup') {
    state.offered[phase].messages += sentTotal(state) - sentBefore;
    state.offered[phase].ms += Date.now() - began;
  }
}

async function publishBatch(
  client: UsherClient,
  queue: string,
  kind: Kind,
  priority: number,
  count: number,
  dueAt: number,
  state: State,
): Promise<void> {
  state.inFlight++;
  state.sent[kind] += count;
  // The earliest time any of these fell due (see offer()).
  const sentAt = dueAt;
  const { phase, round } = state;
  const messages = Array.from({ length: count }, () => ({
    body: { kind, sentAt, phase, round, seat: Math.floor(Math.random() * 50_000) },
    priority,
  }));
  try {
    const results = await client.publishBatch(queue, messages);
    const confirmedAt = Date.now();
    for (const { id } of results) state.accepted.set(id, kind);
    if (kind === 'payment') for (const { id } of results) state.timings.confirmed(id, confirmedAt);
  } catch (err) {
    // A refused batch was stored whole or not at all: here, not at all.
    if (!(err instanceof UsherClientError) || err.status === 0) throw err;
    state.shed[kind] += count;
  } finally {
    state.inFlight--;
  }
}

function taken(
  state: State,
  kind: Kind,
  message: ReceivedMessage,
  times: TakenTimes,
): void {
  const { sentAt, phase, round } = message.body as { sentAt: number; phase: Phase; round: number };
  // Counted in the phase it was sent in, over all rounds and in its own.
  if (kind === 'payment') {
    const { id, publishedAt } = message;
    const payment = { id, sentAt, publishedAt, ...times };
    state.timings.took(phase, payment);
    state.timings.took(`${phase} ${round}`, payment);
  }
  state.processed.set(message.id, (state.processed.get(message.id) ?? 0) + 1);
  state.takenIn[state.phase]++;
}

/** Whether every accepted message was processed within `ms`. */
async function waitForDrain(state: State, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    // Fewer processed than accepted: one accepted is surely unprocessed,
    // known without a walk over every id of every round.
    const surelyBehind = state.processed.size < state.accepted.size;
    if (!surelyBehind && [...state.accepted.keys()].every((id) => state.processed.has(id))) {
      return true;
    }
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}

/** Null once the level is back at normal (or off) within `ms`; else the level it is at. */
async function waitForNormal(levels: string[], ms: number): Promise<string | null> {
  const deadline = Date.now() + ms;
  const atNormal = () => ['normal', 'off'].includes(levels.at(-1) ?? 'normal');
  while (Date.now() < deadline && !atNormal()) await sleep(100);
  return atNormal() ? null : levels.at(-1) ?? null;
}

function report(
  state: State,
  runId: string,
  capacity: number,
  rounds: number,
  levels: string[],
  totalMs: number,
): OnSaleReport {
  const kinds = KINDS.map(({ kind, priority }) => {
    const ids = [...state.accepted].filter(([, k]) => k === kind).map(([id]) => id);
    const processed = ids.filter((id) => state.processed.has(id)).length;
    return {
      kind,
      priority,
      sent: state.sent[kind],
      accepted: ids.length,
      shed: state.shed[kind],
      processed,
      lost: ids.length - processed,
    };
  });
  const normal = state.timings.summary('normal');
  const spike = state.timings.summary('spike');
  const normalP99 = normal.p99;
  const spikeP99 = spike.p99;
  const ratio = latencyRatio(normalP99, spikeP99);
  const roundLatencyMs = Array.from({ length: rounds }, (_, i): RoundLatency => {
    const inNormal = state.timings.summary(`normal ${i + 1}`);
    const inSpike = state.timings.summary(`spike ${i + 1}`);
    return {
      normalP99: inNormal.p99,
      spikeP99: inSpike.p99,
      ratio: latencyRatio(inNormal.p99, inSpike.p99),
      samples: { normal: inNormal.samples, spike: inSpike.samples },
    };
  });

  const problems: string[] = [...state.roundTrouble];
  for (const k of kinds) {
    if (k.lost > 0) problems.push(`${k.lost} accepted ${k.kind} events never processed`);
    if (k.accepted + k.shed !== k.sent) problems.push(`${k.kind}: sent != accepted + shed`);
  }
  if (kinds[0].shed > 0) problems.push(`${kinds[0].shed} payments shed`);
  if (spikeP99 > 2 * normalP99) {
    problems.push(`payment p99 ${spikeP99} ms in the spike is ${ratio.toFixed(2)}x normal`);
  }
  if (!['normal', 'off'].includes(levels.at(-1) ?? 'normal')) {
    problems.push(`admission level still ${levels.at(-1)} after the drain`);
  }
  const rate = (o: { messages: number; ms: number }) =>
    Math.round((o.messages * 1000) / Math.max(o.ms, 1));

  return {
    ok: problems.length === 0,
    problems,
    runId,
    capacityPerSecond: capacity,
    offeredPerSecond: { normal: rate(state.offered.normal), spike: rate(state.offered.spike) },
    takenPerSecond: {
      normal: rate({ messages: state.takenIn.normal, ms: state.offered.normal.ms }),
      spike: rate({ messages: state.takenIn.spike, ms: state.offered.spike.ms }),
    },
    kinds,
    paymentLatencyMs: {
      normalP50: normal.p50,
      normalP99,
      spikeP50: spike.p50,
      spikeP99,
    },
    paymentLatencyRatio: ratio,
    roundLatencyMs,
    paymentTimings: { normal, spike },
    eventLoopDelayMs: {
      demo: pick(state.loopDelay.demo),
      broker: pick(state.loopDelay.broker),
    },
    levels,
    totalMs,
  };
}

/** spike / normal, to two decimals. */
function latencyRatio(normalP99: number, spikeP99: number): number {
  return normalP99 > 0 ? Number((spikeP99 / normalP99).toFixed(2)) : Number.POSITIVE_INFINITY;
}

function sentTotal(state: State): number {
  return state.sent.payment + state.sent.notification + state.sent.recommendation;
}

function pick(delays: Record<Phase, number>): PhaseDelays {
  return { normal: Math.round(delays.normal), spike: Math.round(delays.spike) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
