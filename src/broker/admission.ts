// Admission control (issue #6): under overload the broker sheds the least
// important publishes first and says so, instead of falling over.
//
// Measured signals put the broker at one of three levels:
//
//   normal    everything is accepted
//   pressure  publishes below --pressure-min-priority, and every publish to
//             a sheddable queue, are refused (HTTP 429, AMQP nack)
//   critical  only publishes at or above --critical-min-priority to queues
//             that are not sheddable are accepted (HTTP 503, AMQP nack)
//
// Nothing already accepted is ever dropped by shedding: only publishes are
// judged; consumers, acks and dead-lettering go on at every level.
//
// Levels rise at once, on the first sample over a threshold, and fall with
// hysteresis: each signal holds the level it reached until it is below
// `recoverShare` of that level's threshold, and the broker steps down not
// sooner than `holdMs` after the last change, so a broker hovering at a
// threshold does not flap. A signal that never reached a threshold holds
// nothing: an RSS left at 75% of its pressure threshold after a spike that
// the backlog alone raised must not keep the broker shedding for good.

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

import { OverloadedError } from '../errors.js';

export type Level = 'normal' | 'pressure' | 'critical';

/** Which signal set the level; 'none' at normal. */
export type Reason = 'none' | 'memory' | 'disk' | 'backlog' | 'backlog-growth' | 'event-loop';

export interface AdmissionSettings {
  /** Process RSS budget in bytes; null = memory is not watched. */
  memoryBudgetBytes: number | null;
  /** Share of the budget at which pressure starts (default 0.7). */
  memoryPressureShare: number;
  /** Share of the budget at which critical starts (default 0.85). Below
   * 1, so that shedding starts before the budget is spent. */
  memoryCriticalShare: number;
  /** Free disk floor: critical below it, pressure below twice it. */
  diskFloorBytes: number;
  /** Waiting messages over all queues for pressure / critical; null = off. */
  pressureBacklog: number | null;
  criticalBacklog: number | null;
  /** Waiting messages in one queue past which that queue alone sheds as
   * at pressure, while the broker and other queues stay as they are: a
   * queue whose consumers fell behind refuses its least important work
   * first. null = off. A hard bound per queue is its maxLength. */
  queuePressureBacklog: number | null;
  /** Publishes in over acks out, over one sample, that mean pressure
   * while the backlog is past half of pressureBacklog (default 2). */
  growthRatio: number;
  /** Event-loop delay (p99 of a sample, ms) for pressure / critical;
   * null = not a signal (the default; see DEFAULT_ADMISSION). */
  eventLoopPressureMs: number | null;
  eventLoopCriticalMs: number | null;
  /** At pressure, lower priorities are refused (default 4). */
  pressureMinPriority: number;
  /** At critical, lower priorities are refused (default 7). */
  criticalMinPriority: number;
  /** A signal clears below this share of its threshold (default 0.8). */
  recoverShare: number;
  /** Least time between a change and a step down (default 2000 ms). */
  holdMs: number;
  /** How often the signals are sampled (default 250 ms). */
  sampleMs: number;
}

export const DEFAULT_ADMISSION: AdmissionSettings = {
  memoryBudgetBytes: null,
  memoryPressureShare: 0.7,
  memoryCriticalShare: 0.85,
  diskFloorBytes: 100 * 1024 * 1024,
  pressureBacklog: null,
  criticalBacklog: null,
  queuePressureBacklog: null,
  growthRatio: 2,
  // Off unless asked for: on a busy machine (or one handling a 16 MiB
  // body) the loop stalls for seconds now and then, and shedding on that
  // refused work the broker could take; measured, it is still reported.
  eventLoopPressureMs: null,
  eventLoopCriticalMs: null,
  pressureMinPriority: 4,
  criticalMinPriority: 7,
  recoverShare: 0.8,
  holdMs: 2000,
  sampleMs: 250,
};

/** What the controller reads; tests pass their own to drive the levels. */
export interface Signals {
  rssBytes(): number;
  freeDiskBytes(): number;
  /** Waiting messages over all queues, and running totals of publishes
   * and acks, for the growth rate. */
  backlog(): { waiting: number; published: number; acked: number };
  /** Event-loop delay since the last call, p99 in ms. */
  eventLoopDelayMs(): number;
}

export interface AdmissionStats {
  level: Level;
  reason: Reason;
  /** When the level last changed (epoch ms). */
  since: number;
  /** Publishes refused, by level. */
  refused: { pressure: number; critical: number };
  /** Publishes refused, by message priority (index 0 to 9). */
  refusedByPriority: number[];
  /** Publishes refused, by level and then priority. */
  refusedByLevel: { pressure: number[]; critical: number[] };
  /** Times the level changed, by the level entered. */
  transitions: Record<Level, number>;
  /** The last sample of each signal. */
  signals: {
    rssBytes: number;
    memoryBudgetBytes: number | null;
    freeDiskBytes: number;
    backlog: number;
    eventLoopDelayMs: number;
  };
}

type LevelListener = (level: Level, reason: Reason) => void;

const RANK: Record<Level, number> = { normal: 0, pressure: 1, critical: 2 };
/** In the order a tie between signals at one level names the reason. */
const SIGNALS: readonly Exclude<Reason, 'none'>[] = [
  'memory',
  'disk',
  'backlog',
  'backlog-growth',
  'event-loop',
];

export class AdmissionController {
  private level: Level = 'normal';
  private reason: Reason = 'none';
  private since: number;
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners: LevelListener[] = [];
  private last = { published: 0, acked: 0 };
  private sampled: AdmissionStats['signals'];
  private readonly refused = { pressure: 0, critical: 0 };
  private readonly refusedByLevel = {
    pressure: new Array<number>(10).fill(0),
    critical: new Array<number>(10).fill(0),
  };
  private readonly transitions: Record<Level, number> = { normal: 0, pressure: 0, critical: 0 };
  /** The level each signal holds, with its own hysteresis. */
  private readonly held = new Map<Reason, Level>();

  constructor(
    readonly settings: AdmissionSettings,
    private readonly signals: Signals,
    private readonly clock: () => number = Date.now,
  ) {
    this.since = clock();
    const { published, acked } = signals.backlog();
    this.last = { published, acked };
    this.sampled = {
      rssBytes: 0,
      memoryBudgetBytes: settings.memoryBudgetBytes,
      freeDiskBytes: Number.POSITIVE_INFINITY,
      backlog: 0,
      eventLoopDelayMs: 0,
    };
  }

  /** Samples every `sampleMs` until stop(); the timer keeps no process alive. */
  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.sample(), this.settings.sampleMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  onChange(listener: LevelListener): () => void {
    this.listeners.push(listener);
    return () => {
      const at = this.listeners.indexOf(listener);
      if (at >= 0) this.listeners.splice(at, 1);
    };
  }

  get current(): { level: Level; reason: Reason } {
    return { level: this.level, reason: this.reason };
  }

  /** Reads every signal once and moves the level; tests call it directly. */
  sample(): Level {
    const now = this.clock();
    const backlog = this.signals.backlog();
    const published = backlog.published - this.last.published;
    const acked = backlog.acked - this.last.acked;
    this.last = { published: backlog.published, acked: backlog.acked };
    this.sampled = {
      rssBytes: this.signals.rssBytes(),
      memoryBudgetBytes: this.settings.memoryBudgetBytes,
      freeDiskBytes: this.signals.freeDiskBytes(),
      backlog: backlog.waiting,
      eventLoopDelayMs: this.signals.eventLoopDelayMs(),
    };
    const growing = published > this.settings.growthRatio * Math.max(acked, 1);

    // A signal rises to what its thresholds say at once; it comes down
    // only to what the thresholds lowered by recoverShare say.
    const raw = this.judge(1, growing);
    const relaxed = this.judge(this.settings.recoverShare, growing);
    let worst: { level: Level; reason: Reason } = { level: 'normal', reason: 'none' };
    for (const signal of SIGNALS) {
      const before = this.held.get(signal) ?? 'normal';
      const up = raw.get(signal) ?? 'normal';
      const down = relaxed.get(signal) ?? 'normal';
      const level = RANK[up] > RANK[before] ? up : RANK[down] < RANK[before] ? down : before;
      this.held.set(signal, level);
      if (RANK[level] > RANK[worst.level]) worst = { level, reason: signal };
    }

    if (RANK[worst.level] > RANK[this.level]) {
      this.change(worst.level, worst.reason, now);
    } else if (RANK[worst.level] === RANK[this.level] && worst.level !== 'normal') {
      this.reason = worst.reason;
    } else if (RANK[worst.level] < RANK[this.level] && now - this.since >= this.settings.holdMs) {
      this.change(worst.level, worst.reason, now);
    }
    return this.level;
  }

  /**
   * Whether a publish of `priority` to a queue (sheddable or not, with
   * `queueWaiting` messages waiting) is refused now, and why; null when
   * it is accepted. Counted here, so metrics see every refusal whatever
   * the protocol.
   *
   * `earlier`: the refusal of a message before this one in the same
   * publish (same queue, same instant). When it is for the same priority
   * it says all this one would, and is returned again, counted anew: a
   * new error captures a stack trace, about 20 µs deep in a request, and
   * a refused batch of N messages paid that N times (bench/onsale.ts:
   * a quarter of the broker's CPU in the spike went to it).
   */
  refusal(
    priority: number,
    sheddable: boolean,
    queueWaiting = 0,
    earlier: OverloadedError | null = null,
  ): OverloadedError | null {
    const { queuePressureBacklog } = this.settings;
    const queueBehind = queuePressureBacklog !== null && queueWaiting >= queuePressureBacklog;
    const level = this.level === 'normal' && queueBehind ? 'pressure' : this.level;
    if (level === 'normal') return null;
    const reason = this.level === 'normal' ? 'queue-backlog' : this.reason;
    const minimum = level === 'critical'
      ? this.settings.criticalMinPriority
      : this.settings.pressureMinPriority;
    if (!sheddable && priority >= minimum) return null;

    this.refused[level]++;
    this.refusedByLevel[level][priority]++;
    if (earlier !== null && earlier.priority === priority && earlier.level === level) {
      return earlier;
    }
    const flag = level === 'critical' ? '--critical-min-priority' : '--pressure-min-priority';
    return new OverloadedError(
      level,
      reason,
      priority,
      (sheddable
        ? 'its queue is sheddable'
        : `only priority ${minimum} and above (${flag}) are accepted now`) +
        (reason === 'queue-backlog'
          ? `; its queue has ${queueWaiting} messages waiting (--queue-pressure-backlog)`
          : ''),
    );
  }

  stats(): AdmissionStats {
    return {
      level: this.level,
      reason: this.reason,
      since: this.since,
      refused: { ...this.refused },
      refusedByPriority: this.refusedByLevel.pressure.map(
        (count, priority) => count + this.refusedByLevel.critical[priority],
      ),
      refusedByLevel: {
        pressure: [...this.refusedByLevel.pressure],
        critical: [...this.refusedByLevel.critical],
      },
      transitions: { ...this.transitions },
      signals: { ...this.sampled },
    };
  }

  private change(level: Level, reason: Reason, now: number): void {
    this.level = level;
    this.reason = reason;
    this.since = now;
    this.transitions[level]++;
    for (const listener of [...this.listeners]) listener(level, reason);
  }

  /**
   * The level each signal asks for, with thresholds scaled by `share`: 1
   * to go up, recoverShare (lower thresholds, so a signal stays "high"
   * longer) to decide whether it comes down. Signals at normal are absent.
   */
  private judge(share: number, growing: boolean): Map<Reason, Level> {
    const s = this.settings;
    const v = this.sampled;
    const levels = new Map<Reason, Level>();
    const raise = (level: Level, reason: Reason) => {
      if (RANK[level] > RANK[levels.get(reason) ?? 'normal']) levels.set(reason, level);
    };

    if (s.memoryBudgetBytes !== null) {
      if (v.rssBytes >= s.memoryBudgetBytes * s.memoryCriticalShare * share) {
        raise('critical', 'memory');
      } else if (v.rssBytes >= s.memoryBudgetBytes * s.memoryPressureShare * share) {
        raise('pressure', 'memory');
      }
    }
    // Free disk is better when higher: the floor rises as the share falls.
    if (v.freeDiskBytes < s.diskFloorBytes / share) raise('critical', 'disk');
    else if (v.freeDiskBytes < (2 * s.diskFloorBytes) / share) raise('pressure', 'disk');

    if (s.criticalBacklog !== null && v.backlog >= s.criticalBacklog * share) {
      raise('critical', 'backlog');
    }
    if (s.pressureBacklog !== null) {
      if (v.backlog >= s.pressureBacklog * share) raise('pressure', 'backlog');
      else if (growing && v.backlog >= (s.pressureBacklog / 2) * share) {
        raise('pressure', 'backlog-growth');
      }
    }

    const loop = v.eventLoopDelayMs;
    if (s.eventLoopCriticalMs !== null && loop >= s.eventLoopCriticalMs * share) {
      raise('critical', 'event-loop');
    } else if (s.eventLoopPressureMs !== null && loop >= s.eventLoopPressureMs * share) {
      raise('pressure', 'event-loop');
    }
    return levels;
  }
}

/**
 * The process's own signals: RSS from the OS, event-loop delay from
 * perf_hooks. Disk and backlog come from the broker, which measures them.
 */
export function processSignals(
  broker: { freeDiskBytes(): number; backlog(): ReturnType<Signals['backlog']> },
): Signals & { close(): void } {
  const histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  histogram.enable();
  return {
    rssBytes: () => process.memoryUsage.rss(),
    freeDiskBytes: () => broker.freeDiskBytes(),
    backlog: () => broker.backlog(),
    eventLoopDelayMs: () => {
      const p99 = histogram.count > 0 ? histogram.percentile(99) / 1e6 : 0;
      histogram.reset();
      return p99;
    },
    close: () => histogram.disable(),
  };
}
