// Service-level checks on a bench result, so a run can gate a release:
//
//   --slo 'p99<200ms,lost=0,error<0.1%'
//
// Terms are comma-separated `metric op value`; op is < <= > >= or =.
// Names are case-insensitive; p99.9 is p999.
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
  /** The actual figure's unit: ms, %, msg/s, or '' for counts. */
  unit: string;
  pass: boolean;
}

/** Every term `--slo` accepts, for help texts and errors. */
export const SLO_TERMS =
  'p50 p95 p99 p99.9 (or p999) max in ms or s; confirm-p50 ... confirm-max; ' +
  'error in %; lost, duplicated, out-of-order as counts; publish-rate, consume-rate in msg/s';

/** The actual figure with its unit, e.g. "139.6 ms", "0.02%", "0". */
export function formatActual(outcome: SloOutcome): string {
  if (outcome.unit === '') return String(outcome.actual);
  if (outcome.unit === '%') return `${outcome.actual}%`;
  return `${outcome.actual} ${outcome.unit}`;
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
  const match = /^([a-z0-9.-]+)\s*(<=|>=|<|>|=)\s*([0-9.]+)\s*([a-z%]*)$/.exec(
    text.toLowerCase(),
  );
  if (match === null) {
    throw new SloError(
      `cannot read SLO term "${text}": expected e.g. p99<200ms, lost=0, error<0.1%`,
    );
  }
  const [, written, op, number, unit] = match;
  const metric = written.replace(/p99\.9$/, 'p999');
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
    `SLO term "${text}": unknown metric "${written}"; known: ${SLO_TERMS}`,
  );
}

export function checkSlo(terms: readonly SloTerm[], input: SloInput): SloOutcome[] {
  return terms.map((term) => {
    const actual = actualOf(term.metric, input);
    return {
      term: term.text,
      actual,
      unit: unitOf(term.metric),
      pass: compare(actual, term.op, term.value),
    };
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

function unitOf(metric: string): string {
  if (LATENCY.has(metric.replace(/^confirm-/, ''))) return 'ms';
  if (metric === 'error') return '%';
  if (RATES.has(metric)) return 'msg/s';
  return '';
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
