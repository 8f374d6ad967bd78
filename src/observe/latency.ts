// A latency histogram with fixed buckets, cheap enough to observe once per
// message: one short scan over 14 bounds and three additions, no
// allocation. Prometheus histograms are cumulative; these counts are per
// bucket and summed when exported.

/** Upper bounds in seconds, shared by every latency histogram. */
export const LATENCY_BUCKETS_SECONDS = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
] as const;

export class LatencyHistogram {
  /** Observations per bucket; the last slot holds those above every bound. */
  readonly counts: Float64Array;
  count = 0;
  sumSeconds = 0;

  /** `bounds`: upper bounds in seconds, rising. */
  constructor(readonly bounds: readonly number[] = LATENCY_BUCKETS_SECONDS) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observeMs(ms: number): void {
    const seconds = Math.max(0, ms) / 1000;
    const bounds = this.bounds;
    let index = 0;
    while (index < bounds.length && seconds > bounds[index]) index++;
    this.counts[index]++;
    this.count++;
    this.sumSeconds += seconds;
  }

  /** Adds `other`'s observations (same bounds) to these. */
  add(other: LatencyHistogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sumSeconds += other.sumSeconds;
  }

  /** Cumulative counts per bound, as Prometheus exports them (no +Inf). */
  cumulative(): number[] {
    const out: number[] = [];
    let running = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      running += this.counts[i];
      out.push(running);
    }
    return out;
  }
}

/**
 * The q-quantile (0..1) of the observations counted by `cumulative` (per
 * bound) out of `total`, interpolated linearly inside the bucket the way
 * PromQL's histogram_quantile does, so the broker's own alerts and
 * Prometheus' agree. NaN when there are no observations; the highest
 * bound when the quantile falls above every bound.
 */
export function quantileOf(q: number, cumulative: number[], total: number): number {
  if (total <= 0) return Number.NaN;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (let i = 0; i < LATENCY_BUCKETS_SECONDS.length; i++) {
    const bound = LATENCY_BUCKETS_SECONDS[i];
    if (cumulative[i] >= rank) {
      const inBucket = cumulative[i] - lowerCount;
      if (inBucket <= 0) return bound;
      return lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / inBucket;
    }
    lowerBound = bound;
    lowerCount = cumulative[i];
  }
  return LATENCY_BUCKETS_SECONDS[LATENCY_BUCKETS_SECONDS.length - 1];
}
