// Reading rates and increases out of a run of samples, as PromQL's
// increase() and rate() do over a range, minus their extrapolation to the
// range's edges: over `seconds`, from the newest sample at least that old
// (or the oldest kept, while the broker is younger) to the latest.

import type { Sample } from './sampler.js';

export class SampleWindow {
  constructor(private readonly samples: readonly Sample[]) {
    if (samples.length === 0) throw new Error('a sample window needs a sample');
  }

  get latest(): Sample {
    return this.samples[this.samples.length - 1];
  }

  /** The sample `seconds` before the latest, or the oldest kept. */
  before(seconds: number): Sample {
    const at = this.latest.at - seconds * 1000;
    for (let i = this.samples.length - 1; i >= 0; i--) {
      if (this.samples[i].at <= at) return this.samples[i];
    }
    return this.samples[0];
  }

  /**
   * How much a counter grew over `seconds`. A counter found lower than
   * before was reset (a queue deleted and declared again, a restart) and
   * counts from zero; one missing before counts from zero too.
   */
  increase(seconds: number, read: (sample: Sample) => number | undefined): number {
    const now = read(this.latest) ?? 0;
    const then = read(this.before(seconds)) ?? 0;
    return now >= then ? now - then : now;
  }

  /** Per-second rate of a counter over `seconds`; 0 with one sample. */
  rate(seconds: number, read: (sample: Sample) => number | undefined): number {
    const span = (this.latest.at - this.before(seconds).at) / 1000;
    return span > 0 ? this.increase(seconds, read) / span : 0;
  }
}
