// Service-level checks on a bench result, so a run can gate a release:
//
//   --slo 'p99<200ms,lost=0,error<0.1%'
//
// Terms are comma-separated `metric op value`; op is < <= > >= or =.
// Latency metrics (p50 p95 p99 p999 max, and confirm-p50 ... confirm-max)
// take ms or s (bare numbers are ms); error takes a percentage; lost,
// duplicated, out-of-order take counts; publish-rate and consume-rate
// take messages per second.

import type { LatencySummary } from './histogram.js';

export interface SloTerm {
  text: string;
  metric: string;
  op: '<' | '<=' | '>' | '>=' | '=';
  /** In the metric's unit: ms, percent, count or msg/s. */
  value: number;
}

export interface SloOutcome {
  term: string;
  actual: number;
  pass: boolean;
}

export class SloError extends Error {
  override name = 'SloError';
}

/** What SLO terms are checked against (see BenchResult). */
export interface SloInput {
  latencyMs: LatencySummary;
  confirmLatencyMs: LatencySummary;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  errorRatePercent: number;
  publishRate: number;
  consumeRate: number;
}

const LATENCY = new Set(['p50', 'p95', 'p99', 'p999', 'max']);
const COUNTS = new Set(['lost', 'duplicated', 'out-of-order']);
const RATES = new Set(['publish-rate', 'consume-rate']);

export function parseSlo(spec: string): SloTerm[] {
  const terms = spec
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (terms.length === 0) throw new SloError('--slo is empty');
  return terms.map(parseTerm);
}

function parseTerm(text: string): SloTerm {
  const match = /^([a-z0-9-]+)\s*(<=|>=|<|>|=)\s*([0-9.]+)\s*([a-z%]*)$/.exec(text);
  if (match === null) {
    throw new SloError(
      `cannot read SLO term "${text}": expected e.g. p99<200ms, lost=0, error<0.1%`,
    );
  }
  const [, metric, op, number, unit] = match;
  const value = Number(number);
  if (!Number.isFinite(value)) throw new SloError(`SLO term "${text}": ${number} is not a number`);
  const latency = LATENCY.has(metric.replace(/^confirm-/, ''));
  if (latency) {
    if (unit !== '' && unit !== 'ms' && unit !== 's') {
      throw new SloError(`SLO term "${text}": latency takes ms or s, got "${unit}"`);
    }
    return { text, metric, op: op as SloTerm['op'], value: unit === 's' ? value * 1000 : value };
  }
  if (metric === 'error') {
    if (unit !== '%' && unit !== '')
      throw new SloError(`SLO term "${text}": error takes a percentage`);
    return { text, metric, op: op as SloTerm['op'], value };
  }
  if (COUNTS.has(metric) || RATES.has(metric)) {
    if (unit !== '') throw new SloError(`SLO term "${text}": ${metric} takes a plain number`);
    return { text, metric, op: op as SloTerm['op'], value };
  }
  throw new SloError(
    `SLO term "${text}": unknown metric "${metric}"; known: p50 p95 p99 p999 max, ` +
      'confirm-p99 (and the other confirm-*), lost, duplicated, out-of-order, error, ' +
      'publish-rate, consume-rate',
  );
}

export function checkSlo(terms: readonly SloTerm[], input: SloInput): SloOutcome[] {
  return terms.map((term) => {
    const actual = actualOf(term.metric, input);
    return { term: term.text, actual, pass: compare(actual, term.op, term.value) };
  });
}

function actualOf(metric: string, input: SloInput): number {
  type Key = keyof LatencySummary;
  if (metric.startsWith('confirm-')) return input.confirmLatencyMs[metric.slice(8) as Key];
  if (LATENCY.has(metric)) return input.latencyMs[metric as Key];
  switch (metric) {
    case 'lost':
      return input.lost;
    case 'duplicated':
      return input.duplicated;
    case 'out-of-order':
      return input.outOfOrder;
    case 'error':
      return input.errorRatePercent;
    case 'publish-rate':
      return input.publishRate;
    default:
      return input.consumeRate;
  }
}

function compare(actual: number, op: SloTerm['op'], limit: number): boolean {
  switch (op) {
    case '<':
      return actual < limit;
    case '<=':
      return actual <= limit;
    case '>':
      return actual > limit;
    case '>=':
      return actual >= limit;
    case '=':
      return actual === limit;
  }
}
