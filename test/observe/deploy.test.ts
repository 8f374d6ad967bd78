// The shipped Grafana dashboard and alert rules use only metrics that
// /metrics exports and docs/metrics.md documents.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { ALERT_RULES } from '../../src/observe/alert-rules.js';

const root = (path: string) => new URL(`../../../${path}`, import.meta.url);
const docs = readFileSync(root('docs/metrics.md'), 'utf8');

/** usher_ metric names in PromQL text, histogram suffixes taken off. */
function metricNames(promql: string): string[] {
  const names = promql.match(/\busher_[a-z_]+/g) ?? [];
  return names.map((name) => name.replace(/_(bucket|sum|count)$/, ''));
}

const undocumented = (names: string[]) =>
  [...new Set(names)].filter((name) => !docs.includes(`| \`${name}\` |`));

describe('deploy files', () => {
  it('Grafana: valid JSON whose queries use documented metrics', () => {
    const dashboard = JSON.parse(readFileSync(root('deploy/grafana/usher-dashboard.json'), 'utf8'));
    const exprs: string[] = dashboard.panels.flatMap(
      (panel: { targets?: { expr: string }[] }) => panel.targets?.map((t) => t.expr) ?? [],
    );

    assert.ok(exprs.length >= 20, `${exprs.length} queries`);
    assert.deepEqual(undocumented(exprs.flatMap(metricNames)), []);
  });

  it('alert rules use documented metrics', () => {
    assert.deepEqual(undocumented(ALERT_RULES.flatMap((rule) => metricNames(rule.expr))), []);
  });
});
