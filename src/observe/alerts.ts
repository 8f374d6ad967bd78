// The broker's own alert evaluator: after every sample it measures each
// rule of alert-rules.ts over the kept samples and keeps, per rule and
// label set, since when the condition holds. An alert is `pending` until
// it has held for the rule's `for`, then `firing`, and is gone as soon as
// the condition stops holding (Prometheus' semantics, minus its
// keep_firing_for and resolved notifications).

import { ALERT_RULES, crosses, type AlertRule } from './alert-rules.js';
import type { Sample } from './sampler.js';
import { SampleWindow } from './window.js';

export interface ActiveAlert {
  name: string;
  severity: AlertRule['severity'];
  state: 'pending' | 'firing';
  labels: Record<string, string>;
  value: number;
  threshold: number;
  /** Epoch ms when the condition started holding. */
  since: number;
  summary: string;
}

export class AlertEvaluator {
  private active = new Map<string, ActiveAlert>();

  constructor(private readonly rules: readonly AlertRule[] = ALERT_RULES) {}

  /** Re-evaluates every rule over `samples` (oldest first). */
  evaluate(samples: readonly Sample[]): ActiveAlert[] {
    if (samples.length === 0) return [];
    const window = new SampleWindow(samples);
    const now = window.latest.at;
    const next = new Map<string, ActiveAlert>();

    for (const rule of this.rules) {
      for (const { labels, value } of rule.measure(window)) {
        if (!crosses(rule, value)) continue;
        const key = `${rule.name}${JSON.stringify(labels)}`;
        const since = this.active.get(key)?.since ?? now;
        next.set(key, {
          name: rule.name,
          severity: rule.severity,
          state: now - since >= rule.forSeconds * 1000 ? 'firing' : 'pending',
          labels,
          value,
          threshold: rule.threshold,
          since,
          summary: fillIn(rule.summary, labels, value),
        });
      }
    }
    this.active = next;
    return this.current();
  }

  /** Alerts as of the last evaluation, firing first. */
  current(): ActiveAlert[] {
    return [...this.active.values()].sort(
      (a, b) =>
        Number(b.state === 'firing') - Number(a.state === 'firing') ||
        a.name.localeCompare(b.name),
    );
  }
}

function fillIn(template: string, labels: Record<string, string>, value: number): string {
  return template
    .replaceAll(/\{\{ \$labels\.(\w+) \}\}/g, (_all, name: string) => labels[name] ?? '')
    .replaceAll('{{ printf "%.2f" $value }}', value.toFixed(2))
    // Prometheus: %.4g of value x 100, then %.
    .replaceAll('{{ $value | humanizePercentage }}', `${Number((value * 100).toPrecision(4))}%`)
    .replaceAll('{{ $value }}', String(Number(value.toPrecision(4))));
}
