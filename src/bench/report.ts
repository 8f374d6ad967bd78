// A bench result as text: the progress line, the short markdown report,
// and an HTML page with rate, backlog and latency over time drawn as
// inline SVG (no scripts, nothing fetched: it opens offline).

import type { BenchResult, RunState, Sample } from './run.js';
import { type SloOutcome, formatActual } from './slo.js';
import { escapeHtml, summaryHtml } from './summary-html.js';

export function progressLine(sample: Sample, run: RunState): string {
  const total = run.plannedMs === null ? '' : ` / ${seconds(run.plannedMs)}`;
  return (
    `${seconds(run.elapsedMs)}${total}  pub ${sample.publishRate}/s  ` +
    `con ${sample.consumeRate}/s  backlog ${sample.backlog}  ` +
    `p99 ${sample.p99} ms (run ${run.latencyP99} ms)  ` +
    `published ${run.published} consumed ${run.consumed}`
  );
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export function markdownReport(result: BenchResult, slo: SloOutcome[] | null): string {
  const l = result.latencyMs;
  const c = result.confirmLatencyMs;
  const cpu = result.cpu;
  const profile = result.profile ? ` (${result.profile})` : '';
  const delivery = result.deliveryChecked
    ? `${result.lost} / ${result.duplicated} / ${result.outOfOrder}` +
      (result.reorderedByDesign === null ? '' : ` (out of order ${result.reorderedByDesign})`)
    : 'not checked (no consumers)';
  const broker =
    cpu.brokerCores === null
      ? 'broker not measured (pass --broker-pid PID, or use HTTP to Usher)'
      : `broker ${cpu.brokerCores}`;
  const lines = [
    `# usher bench: ${result.protocol}, ${result.mode}${profile}`,
    '',
    `${result.startedAt}, ${(result.durationMs / 1000).toFixed(1)} s; ` +
      `${result.producers} producers, ${result.consumers} consumers, ${result.queues} queues, ` +
      `${result.bodyBytes} B bodies, confirm window ${result.confirmWindow}, ` +
      `prefetch ${result.prefetch}, ack ${result.ackMode}, ` +
      `${result.persistent ? 'persistent' : 'transient'}.`,
    '',
    '| | |',
    '|---|---|',
    `| published (confirmed) | ${result.published} of ${result.sent} sent, ` +
      `${result.publishErrors} refused, ${result.unsent} unsent |`,
    `| consumed | ${result.consumed} (${result.nacked} nacks) |`,
    `| lost / duplicated / out of order | ${delivery} |`,
    `| publish rate | ${result.publishRate} msg/s |`,
    `| consume rate | ${result.consumeRate} msg/s |`,
    `| end-to-end latency ms | p50 ${l.p50}, p95 ${l.p95}, p99 ${l.p99}, ` +
      `p99.9 ${l.p999}, max ${l.max} |`,
    `| confirm latency ms | p50 ${c.p50}, p95 ${c.p95}, p99 ${c.p99}, max ${c.max} |`,
    `| CPU (cores) | generator ${cpu.generatorCores}, ${broker} |`,
  ];
  if (cpu.clientBound) {
    lines.push(
      '',
      '**Client-bound:** the generator used more CPU than the broker; ' +
        'the rates measure the client as much as the broker.',
    );
  }
  if (result.mode === 'open-loop') {
    lines.push(
      '',
      "Latencies are measured from each message's scheduled send time " +
        '(corrected for coordinated omission).',
    );
  }
  if (slo !== null) {
    lines.push('', '| SLO | actual | |', '|---|---|---|');
    for (const o of slo)
      lines.push(`| \`${o.term}\` | ${formatActual(o)} | ${o.pass ? 'pass' : '**FAIL**'} |`);
  }
  return `${lines.join('\n')}\n`;
}

export function htmlReport(result: BenchResult, slo: SloOutcome[] | null): string {
  const series = result.series;
  const t = series.map((s) => s.tMs / 1000);
  const charts = [
    chart('Rate (msg/s)', t, [
      { name: 'publish', color: '#1f77b4', values: series.map((s) => s.publishRate) },
      { name: 'consume', color: '#2ca02c', values: series.map((s) => s.consumeRate) },
    ]),
    chart('Backlog (messages)', t, [
      { name: 'backlog', color: '#d62728', values: series.map((s) => s.backlog) },
    ]),
    chart('Latency per interval (ms)', t, [
      { name: 'p50', color: '#9467bd', values: series.map((s) => s.p50) },
      { name: 'p99', color: '#ff7f0e', values: series.map((s) => s.p99) },
      { name: 'confirm p99', color: '#8c564b', values: series.map((s) => s.confirmP99) },
    ]),
  ];
  // One sample a second (a quarter second on a terminal): a run shorter
  // than two samples has no line to draw.
  const plots =
    series.length < 2
      ? `<p>No plots: the run took ${(result.durationMs / 1000).toFixed(1)} s, shorter than ` +
        'two samples (one a second, a quarter second on a terminal). Run longer ' +
        '(--duration, --count) to see rate, backlog and latency over time.</p>'
      : charts.join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>usher bench</title>
<style>body{font:14px system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
svg{display:block;margin:1rem 0}code{background:#f6f6f6;padding:0 .2rem}</style>
</head><body>
${summaryHtml(markdownReport(result, slo))}
${plots}
</body></html>
`;
}

interface Line {
  name: string;
  color: string;
  values: number[];
}

const WIDTH = 800;
const HEIGHT = 220;
const PAD = 40;

function chart(title: string, t: number[], lines: Line[]): string {
  const maxT = Math.max(1, ...t);
  const maxY = Math.max(1, ...lines.flatMap((line) => line.values));
  const x = (v: number) => PAD + ((WIDTH - 2 * PAD) * v) / maxT;
  const y = (v: number) => HEIGHT - PAD + (-(HEIGHT - 2 * PAD) * v) / maxY;
  const paths = lines.map((line) => {
    const points = line.values.map((v, i) => `${x(t[i]).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    return `<polyline fill="none" stroke="${line.color}" stroke-width="1.5" points="${points}"/>`;
  });
  const legend = lines
    .map(
      (line, i) =>
        `<text x="${PAD + i * 130}" y="16" fill="${line.color}">${escapeHtml(line.name)}</text>`,
    )
    .join('');
  return `<h3>${escapeHtml(title)}</h3>
<svg width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}"
 role="img" aria-label="${escapeHtml(title)}">
<line x1="${PAD}" y1="${HEIGHT - PAD}" x2="${WIDTH - PAD}" y2="${HEIGHT - PAD}" stroke="#999"/>
<line x1="${PAD}" y1="${PAD}" x2="${PAD}" y2="${HEIGHT - PAD}" stroke="#999"/>
<text x="2" y="${PAD}" font-size="11">${formatNumber(maxY)}</text>
<text x="${WIDTH - PAD}" y="${HEIGHT - PAD + 16}" font-size="11">${maxT.toFixed(0)} s</text>
${legend}
${paths.join('\n')}
</svg>`;
}

function formatNumber(value: number): string {
  return value >= 1000 ? value.toFixed(0) : String(Math.round(value * 100) / 100);
}
