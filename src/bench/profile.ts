// Publish-rate schedules. A profile is a list of stages, each a straight
// line from one rate to another over a duration; the built-in `spike`
// replays an on-sale: steady, a ramp to N times, a plateau, a decay.
//
// A user profile is a small JSON or YAML file:
//
//   {"stages": [{"duration": "10s", "rate": 500},
//               {"duration": "5s", "from": 500, "to": 5000}]}
//
//   stages: [{duration: 10s, rate: 500}, {duration: 5s, from: 500, to: 5000}]
//
//   stages:
//     - duration: 10s
//       rate: 500
//     - duration: 5s
//       from: 500
//       to: 5000
//
// The schedule answers, for message k of a producer, the moment it is due
// (the inverse of the rate's integral), which open-loop runs send at and
// measure latency from.

import { parse as parseYaml } from 'yaml';

import { parseDuration } from '../util/duration.js';

export interface Stage {
  durationMs: number;
  /** Messages per second at the stage's start and end, all producers. */
  fromRate: number;
  toRate: number;
}

export interface Profile {
  name: string;
  stages: Stage[];
}

export class ProfileError extends Error {
  override name = 'ProfileError';
}

/** A constant rate for `durationMs`. */
export function steadyProfile(rate: number, durationMs: number): Profile {
  return { name: 'steady', stages: [{ durationMs, fromRate: rate, toRate: rate }] };
}

/**
 * The on-sale: 20% of the time steady at `rate`, 10% ramping to
 * `factor` x rate, 40% on that plateau, 30% decaying back to `rate`.
 */
export function spikeProfile(rate: number, durationMs: number, factor = 10): Profile {
  const part = (share: number) => Math.round(durationMs * share);
  const peak = rate * factor;
  return {
    name: `spike x${factor}`,
    stages: [
      { durationMs: part(0.2), fromRate: rate, toRate: rate },
      { durationMs: part(0.1), fromRate: rate, toRate: peak },
      { durationMs: part(0.4), fromRate: peak, toRate: peak },
      { durationMs: part(0.3), fromRate: peak, toRate: rate },
    ],
  };
}

export function totalDurationMs(profile: Profile): number {
  return profile.stages.reduce((sum, stage) => sum + stage.durationMs, 0);
}

/** Messages the whole profile sends (all producers). */
export function totalMessages(profile: Profile): number {
  let sum = 0;
  for (const s of profile.stages) sum += ((s.fromRate + s.toRate) / 2) * (s.durationMs / 1000);
  return Math.floor(sum);
}

/**
 * For one of `producers` producers sharing the profile's rate: when its
 * message k is due, in ms from the start, or Infinity past the end. Calls
 * must come with k rising (the stage cursor only moves forward).
 */
export class Schedule {
  readonly #stages: Stage[];
  readonly #share: number;
  #stage = 0;
  /** Messages before the current stage, and the time it starts. */
  #before = 0;
  #startMs = 0;

  constructor(profile: Profile, producers: number) {
    this.#stages = profile.stages.filter((s) => s.durationMs > 0);
    this.#share = 1 / producers;
  }

  dueMs(k: number): number {
    while (this.#stage < this.#stages.length) {
      const stage = this.#stages[this.#stage];
      const inStage = this.#messagesIn(stage);
      if (k < this.#before + inStage)
        return this.#startMs + this.#timeInto(stage, k - this.#before);
      this.#before += inStage;
      this.#startMs += stage.durationMs;
      this.#stage++;
    }
    return Infinity;
  }

  #messagesIn(stage: Stage): number {
    return ((stage.fromRate + stage.toRate) / 2) * (stage.durationMs / 1000) * this.#share;
  }

  /** Solves a*t + b*t^2/2 = n for t (seconds), rates per producer. */
  #timeInto(stage: Stage, n: number): number {
    const a = stage.fromRate * this.#share;
    const b = ((stage.toRate - stage.fromRate) * this.#share) / (stage.durationMs / 1000);
    let seconds: number;
    if (Math.abs(b) < 1e-12) seconds = n / a;
    else seconds = (-a + Math.sqrt(Math.max(0, a * a + 2 * b * n))) / b;
    return seconds * 1000;
  }
}

/**
 * Reads a user profile from JSON or YAML (any YAML: block or flow style,
 * quoted or plain scalars; JSON is YAML too, but its own parser gives
 * clearer messages for JSON files).
 */
export function parseProfile(text: string, name: string): Profile {
  const trimmed = text.trim();
  const data: unknown = trimmed.startsWith('{')
    ? parseJson(trimmed, name)
    : parseYamlText(trimmed, name);
  const stages = (data as { stages?: unknown })?.stages;
  if (!Array.isArray(stages) || stages.length === 0) {
    throw new ProfileError(`profile ${name}: expected a non-empty "stages" list`);
  }
  return { name, stages: stages.map((raw, i) => stageOf(raw, `${name} stage ${i + 1}`)) };
}
function stageOf(raw: unknown, where: string): Stage {
  if (raw === null || typeof raw !== 'object')
    throw new ProfileError(`${where}: expected an object`);
  const fields = raw as Record<string, unknown>;
  const known = new Set(['duration', 'rate', 'from', 'to']);
  for (const key of Object.keys(fields)) {
    if (!known.has(key)) throw new ProfileError(`${where}: unknown field "${key}"`);
  }
  let durationMs: number;
  try {
    durationMs = parseDuration(String(fields.duration ?? ''), `${where} duration`);
  } catch (err) {
    throw new ProfileError(`${where}: ${(err as Error).message}`);
  }
  const rate = (key: string): number => {
    const value = Number(fields[key]);
    if (!Number.isFinite(value) || value < 0) {
      throw new ProfileError(`${where}: ${key} must be a rate >= 0, got ${String(fields[key])}`);
    }
    return value;
  };
  if (fields.rate !== undefined) {
    if (fields.from !== undefined || fields.to !== undefined) {
      throw new ProfileError(`${where}: give either "rate" or "from" and "to"`);
    }
    const r = rate('rate');
    return { durationMs, fromRate: r, toRate: r };
  }
  if (fields.from === undefined || fields.to === undefined) {
    throw new ProfileError(`${where}: give either "rate" or "from" and "to"`);
  }
  const from = rate('from');
  const to = rate('to');
  if (from === 0 && to === 0) throw new ProfileError(`${where}: a stage needs a rate above 0`);
  return { durationMs, fromRate: from, toRate: to };
}

function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ProfileError(`profile ${name}: invalid JSON: ${(err as Error).message}`);
  }
}

function parseYamlText(text: string, name: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true });
  } catch (err) {
    const firstLine = (err as Error).message.split('\n')[0];
    throw new ProfileError(`profile ${name}: invalid YAML: ${firstLine}`);
  }
}
