// `usher demo onsale`: the on-sale spike (src/demo/ticketing/onsale.ts)
// against the broker at --url, or with --embedded against one started in
// this process with admission control on and low thresholds. Prints per
// priority what was accepted, shed and processed, and payment latency.
// Exit status 1 when an accepted event was lost, a payment was shed, or
// the payment p99 in the spike passed twice its normal value.

import type { Command } from 'commander';

import { intFlag, type Cli } from '../cli/context.js';
import { durationOption } from '../cli/duration-option.js';
import { table } from '../cli/output.js';
import { startEmbeddedBroker } from './embedded.js';
import { runOnSale, type OnSaleReport } from './ticketing/onsale.js';

interface OnSaleFlags {
  embedded?: boolean;
  capacity: number;
  spikeFactor: number;
  spike: number;
  json?: boolean;
}

export function registerOnSale(demo: Command, cli: Cli): void {
  demo
    .command('onsale')
    .description(
      'an on-sale spike far above what consumers take: payments (high), ' +
        'notifications (normal), recommendations (low, sheddable)',
    )
    .option('--embedded', 'run a broker in this process, with admission control on')
    .option('--capacity <n>', 'messages per second the workers take', intFlag(10, 100_000), 400)
    .option('--spike-factor <x>', 'spike load as a multiple of capacity', intFlag(1, 100), 5)
    .addOption(durationOption('--spike <duration>', 'how long the spike lasts', 8000))
    .option('--json', 'print the report as one JSON object')
    .addHelpText(
      'after',
      '\nAgainst --url, run the broker with admission control, e.g.\n' +
        '  usher serve --pressure-backlog 1500 --critical-backlog 3000\n',
    )
    .action((flags: OnSaleFlags) => onSale(flags, cli));
}

async function onSale(flags: OnSaleFlags, cli: Cli): Promise<void> {
  const embedded = flags.embedded
    ? await startEmbeddedBroker({
        admission: {
          pressureBacklog: Math.max(50, flags.capacity * 4),
          criticalBacklog: Math.max(100, flags.capacity * 8),
        },
      })
    : undefined;
  try {
    const url = embedded ? embedded.url : cli.client().url;
    const report = await runOnSale({
      url,
      capacityPerSecond: flags.capacity,
      spikeFactor: flags.spikeFactor,
      spikeMs: flags.spike,
      onNote: (text) => process.stderr.write(`${text}\n`),
    });
    if (flags.json) cli.out(JSON.stringify(report));
    else for (const line of reportLines(report)) cli.out(line);
    if (!report.ok) process.exitCode = 1;
  } finally {
    await embedded?.close();
  }
}

function reportLines(report: OnSaleReport): string[] {
  const { normal, spike } = report.offeredPerSecond;
  const rows = report.kinds.map((k) => [
    k.kind,
    String(k.priority),
    String(k.sent),
    String(k.accepted),
    String(k.shed),
    String(k.processed),
    String(k.lost),
  ]);
  return [
    `capacity ${report.capacityPerSecond} msg/s; offered ${normal} msg/s, then ${spike} msg/s`,
    ...table(['KIND', 'PRIORITY', 'SENT', 'ACCEPTED', 'SHED', 'PROCESSED', 'LOST'], rows),
    `payment p99: ${report.paymentLatencyMs.normalP99} ms normal ` +
      `(${report.paymentTimings.normal.samples} payments), ` +
      `${report.paymentLatencyMs.spikeP99} ms in the spike ` +
      `(${report.paymentTimings.spike.samples} payments) (x${report.paymentLatencyRatio})`,
    `levels: ${report.levels.join(' -> ')}`,
    report.ok ? 'ok: nothing accepted was lost' : `PROBLEMS: ${report.problems.join('; ')}`,
  ];
}
