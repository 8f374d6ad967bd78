// The load loop: starts consumers and producers through a driver, sends
// on schedule (open loop, at a rate or a profile) or as fast as the
// confirm window allows (closed loop), counts what comes back, samples
// progress, and drains before judging delivery. Every run is bounded: by
// its count, its duration, and a drain timeout.

import type { CpuFigures } from './cpu.js';
import { CpuMeter, brokerCpuSource } from './cpu.js';
import { DeliveryTracker } from './delivery.js';
import type { BenchSink, ConsumerDriver, Driver, ProducerDriver } from './driver.js';
import { type LatencySummary, LatencyRecorder } from './histogram.js';
import { type Profile, Schedule, totalDurationMs } from './profile.js';
import { type Stamp, nowMs, readStamp } from './stamp.js';

export interface BenchOptions {
  driver: Driver;
  producers: number;
  consumers: number;
  queues: number;
  /** Body template, stamp room included (see stamp.ts). */
  body: Buffer;
  /** Open loop when set: the publish rate over time, all producers. */
  profile: Profile | null;
  /** Stop after this many messages (all producers). */
  count: number | null;
  /** Closed loop: stop publishing after this long. */
  durationMs: number | null;
  confirmWindow: number;
  prefetch: number;
  ackMode: 'manual' | 'none';
  /** Priorities cycled through by each producer, e.g. [0, 0, 0, 9]. */
  priorities: number[];
  /** Share of deliveries nacked (requeued) instead of acked, 0 to 1. */
  nackShare: number;
  persistent: boolean;
  /** After publishing ends, how long to wait for the rest to arrive. */
  drainTimeoutMs: number;
  sampleMs: number;
  queuePrefix: string;
  keepQueues: boolean;
  brokerPid?: number;
  /** Ends publishing early (Ctrl-C); what was sent is still drained and judged. */
  stop?: AbortSignal;
  onSample?: (sample: Sample, run: RunState) => void;
}

/** One point of the time series. */
export interface Sample {
  tMs: number;
  publishRate: number;
  consumeRate: number;
  backlog: number;
  p50: number;
  p99: number;
  confirmP99: number;
}

/** What the progress line shows besides the sample. */
export interface RunState {
  elapsedMs: number;
  plannedMs: number | null;
  published: number;
  consumed: number;
  latencyP99: number;
}

export interface BenchResult {
  protocol: string;
  mode: 'open-loop' | 'closed-loop';
  profile: string | null;
  producers: number;
  consumers: number;
  queues: number;
  bodyBytes: number;
  confirmWindow: number;
  prefetch: number;
  ackMode: string;
  persistent: boolean;
  startedAt: string;
  durationMs: number;
  /** Publishes sent, confirmed, refused by the broker. */
  sent: number;
  published: number;
  publishErrors: number;
  /** Scheduled but never sent (the run hit its time bound). */
  unsent: number;
  consumed: number;
  nacked: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  /**
   * Why outOfOrder is expected above 0 (a priority mix, requeued nacks:
   * both reorder by design), or null when order should hold.
   */
  reorderedByDesign: string | null;
  /** Messages without our stamp (left in the queue by someone else). */
  foreign: number;
  /** (publish errors + lost) / sent, in percent. */
  errorRatePercent: number;
  publishRate: number;
  consumeRate: number;
  latencyMs: LatencySummary;
  confirmLatencyMs: LatencySummary;
  cpu: CpuFigures;
  series: Sample[];
  /** Delivery not checked (no consumers, or the run failed). */
  deliveryChecked: boolean;
}

export class BenchRunError extends Error {
  override name = 'BenchRunError';
}

/** Per-tick cap per producer, so one tick never starves the event loop. */
const MAX_PER_TICK = 2000;

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const queues = Array.from({ length: options.queues }, (_, i) => `${options.queuePrefix}-${i}`);
  const priorityMix = options.priorities.some((p) => p !== 0);
  await options.driver.setup(queues, { priorities: priorityMix, persistent: options.persistent });
  try {
    return await new Run(options, queues).execute();
  } finally {
    if (!options.keepQueues) await options.driver.teardown(queues).catch(() => undefined);
  }
}

class Run implements BenchSink {
  readonly #tracker: DeliveryTracker;
  readonly #latency = new LatencyRecorder();
  readonly #confirmLatency = new LatencyRecorder();
  readonly #stamp: Stamp = { producer: 0, seq: 0, intendedMs: 0 };
  readonly #series: Sample[] = [];

  readonly #sent: number[];
  readonly #inFlight: number[];
  readonly #limit: number[];
  readonly #schedules: (Schedule | null)[];
  /** Intended send time by seq, a ring larger than the confirm window. */
  readonly #intended: Float64Array[];
  readonly #ringMask: number;

  #producers: ProducerDriver[] = [];
  #consumers: ConsumerDriver[] = [];
  #publishErrors = 0;
  #nacked = 0;
  #deliveries = 0;
  #failure: Error | null = null;
  #t0 = 0;
  #wake: (() => void) | null = null;
  #lastConfirmAt = performance.now();

  constructor(
    private readonly options: BenchOptions,
    private readonly queues: string[],
  ) {
    const n = options.producers;
    this.#tracker = new DeliveryTracker(n);
    this.#sent = new Array(n).fill(0);
    this.#inFlight = new Array(n).fill(0);
    this.#limit = Array.from({ length: n }, (_, p) => splitCount(options.count, n, p));
    this.#schedules = Array.from({ length: n }, () =>
      options.profile === null ? null : new Schedule(options.profile, n),
    );
    let ring = 1;
    while (ring <= options.confirmWindow) ring *= 2;
    this.#ringMask = ring - 1;
    this.#intended = Array.from({ length: n }, () => new Float64Array(ring));
  }

  async execute(): Promise<BenchResult> {
    const { options } = this;
    const startedAt = new Date();
    const settings = { body: options.body, persistent: options.persistent };
    try {
      for (let c = 0; c < options.consumers; c++) {
        const queue = this.queues[c % this.queues.length];
        // Each consumer reports under its own index: order is judged per consumer.
        const sink: BenchSink = {
          confirmed: () => undefined,
          consumed: (body) => this.consumedBy(c, body),
          failed: (error) => this.failed(error),
        };
        this.#consumers.push(
          await options.driver.consumer(
            queue,
            { prefetch: options.prefetch, ackMode: options.ackMode },
            sink,
          ),
        );
      }
      for (let p = 0; p < options.producers; p++) {
        const queue = this.queues[p % this.queues.length];
        this.#producers.push(await options.driver.producer(p, queue, settings, this));
      }
    } catch (err) {
      // Connections already open would keep the process alive.
      await this.#closeAll();
      throw err;
    }

    const cpu = await CpuMeter.start(
      brokerCpuSource(options.brokerPid, options.driver.brokerCpuSeconds?.bind(options.driver)),
    );
    this.#t0 = nowMs();
    this.#lastConfirmAt = performance.now();
    const sampler = this.#startSampler();
    try {
      await this.#publishAll();
      await this.#drain();
    } finally {
      clearInterval(sampler);
    }
    const endMs = nowMs();
    const cpuFigures = await cpu.read();
    await this.#closeAll();
    if (this.#failure !== null)
      throw new BenchRunError(this.#failure.message, { cause: this.#failure });
    return this.#result(startedAt, endMs - this.#t0, cpuFigures);
  }

  async #closeAll(): Promise<void> {
    await Promise.allSettled(this.#producers.map((p) => p.close()));
    await Promise.allSettled(this.#consumers.map((c) => c.close()));
  }

  // --- BenchSink --------------------------------------------------------

  confirmed(producer: number, seq: number, ok: boolean): void {
    this.#inFlight[producer]--;
    this.#lastConfirmAt = performance.now();
    if (ok) {
      this.#tracker.confirmed(producer, seq);
      this.#confirmLatency.recordMs(nowMs() - this.#intended[producer][seq & this.#ringMask]);
    } else {
      this.#publishErrors++;
    }
    this.#poke();
  }

  consumed(body: Buffer): boolean {
    return this.consumedBy(0, body);
  }

  consumedBy(consumer: number, body: Buffer): boolean {
    if (!readStamp(body, this.#stamp)) {
      this.#tracker.foreign++;
      return true;
    }
    // Deterministic share: nack when the running count crosses a step.
    const n = this.#deliveries++;
    if (Math.floor((n + 1) * this.options.nackShare) > Math.floor(n * this.options.nackShare)) {
      this.#nacked++;
      return false;
    }
    if (this.#tracker.consumed(this.#stamp.producer, this.#stamp.seq, consumer)) {
      this.#latency.recordMs(nowMs() - this.#stamp.intendedMs);
    }
    this.#poke();
    return true;
  }

  failed(error: Error): void {
    this.#failure ??= error;
    this.#poke();
  }

  // --- publishing -------------------------------------------------------

  /** Resolves when every producer has sent its share and all are settled. */
  #publishAll(): Promise<void> {
    const { options } = this;
    const planned =
      options.profile === null ? options.durationMs : totalDurationMs(options.profile);
    // Open loop: a run that falls behind stops at its plan plus the drain
    // time; the rest is reported unsent.
    const stopAt =
      planned === null
        ? Infinity
        : planned + (options.profile === null ? 0 : options.drainTimeoutMs);
    // A broker that stops confirming must not hold the run forever.
    const stallLimitMs = Math.max(options.drainTimeoutMs, 10_000);

    return new Promise((resolve) => {
      const tick = () => {
        this.#wake = null;
        const nowAbs = nowMs();
        const timeUp = nowAbs - this.#t0 >= stopAt || options.stop?.aborted === true;
        let next: Next = 'blocked';
        let done = true;
        for (let p = 0; p < this.#producers.length; p++) {
          if (!timeUp) next = later(next, this.#publishSome(p, nowAbs));
          const finished = timeUp || this.#sent[p] >= this.#limit[p] || this.#pastSchedule(p);
          if (!finished || this.#inFlight[p] > 0) done = false;
        }
        if (done || this.#failure !== null) return resolve();
        if (performance.now() - this.#lastConfirmAt > stallLimitMs && this.#inFlightTotal() > 0) {
          this.#failure = new BenchRunError(
            `no confirm from the broker for ${stallLimitMs / 1000} s ` +
              `with ${this.#inFlightTotal()} publishes in flight`,
          );
          return resolve();
        }
        if (next === 'now') setImmediate(tick);
        else if (next === 'clock') setTimeout(tick, 1);
        else {
          // Wait for a confirm to free the window (poke), checking the
          // clock now and then.
          this.#wake = tick;
          setTimeout(() => {
            if (this.#wake === tick) tick();
          }, 20);
        }
      };
      tick();
    });
  }

  #inFlightTotal(): number {
    return this.#inFlight.reduce((a, b) => a + b, 0);
  }

  /** Sends what producer p may now; answers what it waits for next. */
  #publishSome(p: number, nowAbs: number): Next {
    const schedule = this.#schedules[p];
    const producer = this.#producers[p];
    const ring = this.#intended[p];
    const priorities = this.options.priorities;
    let budget = MAX_PER_TICK;
    while (this.#inFlight[p] < this.options.confirmWindow && this.#sent[p] < this.#limit[p]) {
      if (budget-- === 0) return 'now';
      const seq = this.#sent[p];
      let intended = nowAbs;
      if (schedule !== null) {
        const due = schedule.dueMs(seq);
        if (due === Infinity) return 'blocked';
        intended = this.#t0 + due;
        if (intended > nowAbs) return 'clock';
      } else if (this.options.durationMs !== null && nowAbs - this.#t0 >= this.options.durationMs) {
        this.#limit[p] = seq;
        return 'blocked';
      }
      ring[seq & this.#ringMask] = intended;
      this.#sent[p]++;
      this.#inFlight[p]++;
      this.#tracker.sent(p, seq);
      producer.publish(seq, intended, priorities[seq % priorities.length]);
    }
    // Closed loop with time left: the clock may end the run before a confirm.
    return 'blocked';
  }

  #pastSchedule(p: number): boolean {
    const schedule = this.#schedules[p];
    return schedule !== null && schedule.dueMs(this.#sent[p]) === Infinity;
  }

  #poke(): void {
    const wake = this.#wake;
    if (wake !== null) {
      this.#wake = null;
      setImmediate(wake);
    }
  }

  // --- draining ---------------------------------------------------------

  /** Waits until everything confirmed is consumed, or progress stops. */
  async #drain(): Promise<void> {
    if (this.options.consumers === 0) return;
    let lastConsumed = -1;
    let stalledSince = performance.now();
    while (this.#failure === null && this.#tracker.outstanding > 0) {
      const consumed = this.#tracker.consumedCount;
      if (consumed !== lastConsumed) {
        lastConsumed = consumed;
        stalledSince = performance.now();
      } else if (performance.now() - stalledSince > this.options.drainTimeoutMs) {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  // --- sampling and the result -------------------------------------------

  #startSampler(): NodeJS.Timeout {
    let lastAt = nowMs();
    let lastPublished = 0;
    let lastConsumed = 0;
    const planned =
      this.options.profile === null
        ? this.options.durationMs
        : totalDurationMs(this.options.profile);
    return setInterval(() => {
      const now = nowMs();
      const seconds = Math.max(1e-3, (now - lastAt) / 1000);
      const published = this.#tracker.confirmedCount;
      const consumed = this.#tracker.consumedCount;
      const latency = this.#latency.takeInterval();
      const sample: Sample = {
        tMs: Math.round(now - this.#t0),
        publishRate: Math.round((published - lastPublished) / seconds),
        consumeRate: Math.round((consumed - lastConsumed) / seconds),
        backlog: this.#tracker.outstanding,
        p50: latency.p50,
        p99: latency.p99,
        confirmP99: this.#confirmLatency.takeInterval().p99,
      };
      lastAt = now;
      lastPublished = published;
      lastConsumed = consumed;
      this.#series.push(sample);
      this.options.onSample?.(sample, {
        elapsedMs: sample.tMs,
        plannedMs: planned,
        published,
        consumed,
        latencyP99: this.#latency.summary().p99,
      });
    }, this.options.sampleMs);
  }

  #result(startedAt: Date, durationMs: number, cpu: CpuFigures): BenchResult {
    const { options } = this;
    const counts = this.#tracker.counts();
    const sent = this.#sent.reduce((a, b) => a + b, 0);
    const scheduled = this.#scheduledTotal();
    const checked = options.consumers > 0;
    const lost = checked ? counts.lost : 0;
    const seconds = durationMs / 1000;
    return {
      protocol: options.driver.protocol,
      mode: options.profile === null ? 'closed-loop' : 'open-loop',
      profile: options.profile?.name ?? null,
      producers: options.producers,
      consumers: options.consumers,
      queues: options.queues,
      bodyBytes: options.body.length,
      confirmWindow: options.confirmWindow,
      prefetch: options.prefetch,
      ackMode: options.ackMode,
      persistent: options.persistent,
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(durationMs),
      sent,
      published: counts.confirmed,
      publishErrors: this.#publishErrors,
      unsent: Math.max(0, scheduled - sent),
      consumed: counts.consumed,
      nacked: this.#nacked,
      lost,
      duplicated: counts.duplicated,
      outOfOrder: counts.outOfOrder,
      reorderedByDesign: reorderReason(options),
      foreign: this.#tracker.foreign,
      errorRatePercent: sent === 0 ? 0 : round((100 * (this.#publishErrors + lost)) / sent),
      publishRate: Math.round(counts.confirmed / seconds),
      consumeRate: Math.round(counts.consumed / seconds),
      latencyMs: this.#latency.summary(),
      confirmLatencyMs: this.#confirmLatency.summary(),
      cpu,
      series: this.#series,
      deliveryChecked: checked,
    };
  }

  #scheduledTotal(): number {
    let total = 0;
    for (let p = 0; p < this.#schedules.length; p++) {
      const schedule = this.#schedules[p];
      if (schedule === null) {
        total += Number.isFinite(this.#limit[p]) ? this.#limit[p] : this.#sent[p];
        continue;
      }
      // Count the schedule's messages up to the limit (a bounded walk).
      let k = this.#sent[p];
      while (k < this.#limit[p] && schedule.dueMs(k) !== Infinity) k++;
      total += k;
    }
    return total;
  }
}

/** What a producer waits for: nothing (go on), the clock, a confirm. */
type Next = 'now' | 'clock' | 'blocked';

const URGENCY: Record<Next, number> = { now: 2, clock: 1, blocked: 0 };

function later(a: Next, b: Next): Next {
  return URGENCY[a] >= URGENCY[b] ? a : b;
}

/** Producer p's share of `count` (all producers); unbounded when null. */
function splitCount(count: number | null, producers: number, p: number): number {
  if (count === null) return Infinity;
  return Math.floor(count / producers) + (p < count % producers ? 1 : 0);
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Settings under which consumers see messages out of publish order on purpose. */
function reorderReason(options: BenchOptions): string | null {
  const reasons: string[] = [];
  if (new Set(options.priorities).size > 1) reasons.push('priorities jump the queue');
  if (options.nackShare > 0) reasons.push('nacked messages come back later');
  return reasons.length === 0 ? null : `expected: ${reasons.join(', ')}`;
}
