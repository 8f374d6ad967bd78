// `usher plan`: what a load needs (disk, memory, cores, consumers, drain
// time), computed from a calibration file and explained step by step.

import type { Command } from 'commander';

import {
  UsageError,
  intFlag,
  numberFlag,
  sizeFlag,
  type Cli,
  type CommandGroup,
} from '../cli/context.js';
import { durationOption } from '../cli/duration-option.js';
import { formatDuration, formatSize } from '../util/duration.js';
import { CalibrationError, loadCalibration } from './calibration.js';
import { type Plan, plan } from './plan.js';

interface PlanFlags {
  rate: number;
  peakRate?: number;
  peakDuration: number;
  size: number;
  retention: number;
  consumers?: number;
  consumerTime: number;
  replicas: number;
  headroom: number;
  lagTarget: number;
  calibration?: string;
  json?: boolean;
}

export const planCommands: CommandGroup = {
  register(program: Command, cli: Cli): void {
    program
      .command('plan')
      .description('size a deployment for a load: disk, memory, cores, consumers')
      .requiredOption('--rate <n>', 'average publish rate, messages/s', intFlag(1))
      .option('--peak-rate <n>', 'peak publish rate, messages/s (default: --rate)', intFlag(1))
      .addOption(durationOption('--peak-duration <dur>', 'how long the peak lasts', 600_000))
      .requiredOption('--size <bytes>', 'message body size', sizeFlag)
      .addOption(
        durationOption(
          '--retention <dur>',
          'how long messages may wait unconsumed: disk and memory hold average rate x this' +
            ' (or the peak backlog if larger)',
          3_600_000,
        ),
      )
      .option('--consumers <n>', 'consumers per queue you have (default: plan them)', intFlag(1))
      .addOption(durationOption('--consumer-time <dur>', "one consumer's time per message", 10))
      .option(
        '--replicas <n>',
        'brokers holding a copy of each message, for a replicated deployment ' +
          'Usher plans but does not have yet; Usher 0.1 runs on one machine: 1',
        intFlag(1, 9),
        1,
      )
      .option(
        '--headroom <share>',
        'share of each resource kept free, 0 to 0.9',
        numberFlag(0, 0.9),
        0.3,
      )
      .addOption(durationOption('--lag-target <dur>', 'consumer lag to stay under at peak', 1000))
      .option('--calibration <file>', 'from `usher bench --calibrate` (default: 2-core reference)')
      .option('--json', 'print the plan as JSON')
      .action((flags: PlanFlags) => run(flags, cli));
  },
};

/** The broker's default --max-message-size (src/broker DEFAULT_MAX_MESSAGE_BYTES). */
const BROKER_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

function run(flags: PlanFlags, cli: Cli): void {
  if (flags.consumerTime <= 0) throw new UsageError('--consumer-time must be above 0');
  if (flags.size < 1) throw new UsageError('--size must be at least 1 byte');
  if (flags.size > BROKER_MAX_MESSAGE_BYTES) {
    cli.note(
      `usher plan: warning: --size ${formatSize(flags.size)} is above the broker's default ` +
        `largest message (${formatSize(BROKER_MAX_MESSAGE_BYTES)}); start it with ` +
        '`usher serve --max-message-size`',
    );
  }
  const peakRate = flags.peakRate ?? flags.rate;
  if (peakRate < flags.rate) throw new UsageError('--peak-rate must be at least --rate');
  let calibration;
  try {
    calibration =
      flags.calibration === undefined ? loadCalibration() : loadCalibration(flags.calibration);
  } catch (err) {
    if (err instanceof CalibrationError) throw new UsageError(err.message);
    throw err;
  }
  const result = plan(
    {
      rate: flags.rate,
      peakRate,
      peakDurationMs: flags.peakDuration,
      sizeBytes: flags.size,
      retentionMs: flags.retention,
      consumers: flags.consumers ?? null,
      consumerTimeMs: flags.consumerTime,
      replicas: flags.replicas,
      headroom: flags.headroom,
      lagTargetMs: flags.lagTarget,
    },
    calibration,
  );
  if (flags.json) {
    const replication = flags.replicas > 1 ? { replication: replicationNote(flags.replicas) } : {};
    cli.out(
      JSON.stringify(
        {
          ...result,
          drainSeconds: jsonNumber(result.drainSeconds),
          calibration: calibration.measuredAt,
          ...replication,
        },
        jsonSafe,
        2,
      ),
    );
    return;
  }
  for (const line of explain(result, calibration.machine, flags.calibration)) cli.out(line);
}

export function explain(
  result: Plan,
  machine: { cpus: number; model: string },
  file?: string,
): string[] {
  const drain = Number.isFinite(result.drainSeconds)
    ? formatDuration(result.drainSeconds * 1000)
    : 'never (capacity <= average rate)';
  const replicas = result.input.replicas;
  return [
    ...(replicas > 1 ? [`replicas         ${replicationNote(replicas)}`] : []),
    `disk             ${formatSize(result.diskBytes)}`,
    `memory           ${formatSize(result.memoryBytes)}`,
    `broker cores     ${result.cores < 0.01 ? '<0.01' : result.cores}`,
    `consumers/queue  ${result.consumersNeeded}` +
      (Number.isFinite(result.consumersForLag)
        ? ''
        : ' (the lag target is below one consumer time: no count meets it)') +
      shortHanded(result),
    `lag at peak end  ${formatDuration(result.lagAtPeakEndMs)}` +
      ` (target ${formatDuration(result.input.lagTargetMs)})`,
    `peak backlog     ${result.peakBacklog} messages, drained in ${drain}`,
    '',
    `How (costs from ${file ?? 'the default calibration'}, ` +
      `measured on ${machine.cpus} x ${machine.model}):`,
    ...result.steps.map((s) => `  ${s.what}: ${s.formula} = ${formatValue(s.value)} ${s.unit}`),
  ];
}

/**
 * What --replicas above 1 sizes: the replicated deployment of DESIGN.md,
 * not something Usher 0.1 can run. Disk and cores are the sum over the
 * brokers (plan.ts), memory is each one's.
 */
function replicationNote(replicas: number): string {
  return `${replicas}, planned only: Usher 0.1 runs on one machine and keeps one copy; ` +
    `disk and cores add up all ${replicas} brokers, memory is per broker`;
}

/** Flags a --consumers count that misses the lag target. */
function shortHanded(result: Plan): string {
  const given = result.input.consumers;
  if (given === null || result.lagAtPeakEndMs <= result.input.lagTargetMs) return '';
  return `; not enough consumers: ${result.consumersNeeded} needed, ${given} given`;
}

function formatValue(value: number): string {
  if (!Number.isFinite(value)) return 'unbounded';
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

function jsonNumber(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

/** Infinity has no JSON form: null, meaning "never". */
function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}
