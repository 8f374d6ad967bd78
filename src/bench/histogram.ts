// Latency histograms (HdrHistogram, 3 significant digits), recorded in
// microseconds and reported in milliseconds. Each recorder keeps the
// whole run and the current interval, which the progress line and the
// time series read and reset.

import hdr from 'hdr-histogram-js';

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** One minute in µs: larger values are clamped (and counted as such). */
const HIGHEST_US = 3_600_000_000;

function newHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
  });
}

export class LatencyRecorder {
  readonly total = newHistogram();
  readonly interval = newHistogram();

  recordMs(ms: number): void {
    // A negative value means clocks disagree (not expected in-process).
    const us = Math.min(HIGHEST_US, Math.max(1, Math.round(ms * 1000)));
    this.total.recordValue(us);
    this.interval.recordValue(us);
  }

  /** The interval's summary; starts a new interval. */
  takeInterval(): LatencySummary {
    const summary = summarize(this.interval);
    this.interval.reset();
    return summary;
  }

  summary(): LatencySummary {
    return summarize(this.total);
  }
}

export function summarize(histogram: hdr.Histogram): LatencySummary {
  const count = histogram.totalCount;
  // A percentile reads the top of its bucket: never report above the max.
  const max = histogram.maxValue;
  const ms = (us: number) => (count === 0 ? 0 : Math.round(Math.min(us, max)) / 1000);
  return {
    count,
    p50: ms(histogram.getValueAtPercentile(50)),
    p95: ms(histogram.getValueAtPercentile(95)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
    max: ms(histogram.maxValue),
    mean: ms(histogram.mean),
  };
}
