// Retry delays: exponential from `initialMs`, growing by `multiplier` per
// failure, capped at `maxMs`, with up to `jitter` of it randomised away so
// that messages failed together do not all return together.

import type { BackoffSettings } from './types.js';

/** Delay before the retry that follows failure number `failures` (1-based). */
export function backoffDelay(
  settings: BackoffSettings,
  failures: number,
  random: () => number,
): number {
  const exponent = Math.max(0, failures - 1);
  const raw = settings.initialMs * settings.multiplier ** exponent;
  const capped = Math.min(settings.maxMs, raw);
  const jittered = capped * (1 - settings.jitter * random());
  return Math.max(0, Math.round(jittered));
}
