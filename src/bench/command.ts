// `usher bench`: load, latency and delivery checks against Usher (HTTP or
// AMQP) or any AMQP 0-9-1 broker. Prints a live progress line, a short
// report, and writes JSON / markdown / HTML when asked. Exits 1 when an
// --slo term fails, so a run can gate a release.

import type { Command } from 'commander';

import {
  CliError,
  UsageError,
  durationFlag,
  intFlag,
  numberFlag,
  sizeFlag,
  type Cli,
  type CommandGroup,
} from '../cli/context.js';
import { durationOption } from '../cli/duration-option.js';
import { AmqpDriver } from './amqp-driver.js';
import { usableBrokerPid } from './cpu.js';
import { runCalibration } from './calibrate.js';
import type { Driver } from './driver.js';
import { HttpDriver } from './http-driver.js';
import { type BenchFlags, DEFAULT_AMQP_URL, redactUrl, resolveFlags } from './options.js';
import { prepareOutputs, writeOutputFiles } from './outputs.js';
import { htmlReport, markdownReport, progressLine } from './report.js';
import { BenchRunError, type BenchResult, runBench } from './run.js';
import {
  SLO_TERMS,
  type SloOutcome,
  SloError,
  checkSlo,
  formatActual,
  parseSlo,
} from './slo.js';

interface CommandFlags extends BenchFlags {
  slo?: string;
  json?: string;
  report?: string;
  calibrate?: string;
  quiet?: boolean;
}

export const benchCommands: CommandGroup = {
  register(program: Command, cli: Cli): void {
    program
      .command('bench')
      .description('measure throughput, latency and delivery of a broker')
      .option('--protocol <http|amqp>', 'protocol (default: from --url; http)')
      .option('--producers <n>', 'producer connections', intFlag(1, 1000), 1)
      .option('--consumers <n>', 'consumer connections (0: publish only)', intFlag(0, 1000), 1)
      .option(
        '--queues <n>',
        'queues; producers and consumers spread over them',
        intFlag(1, 1000),
        1,
      )
      .option('--size <bytes>', 'body size, at least 20 (the stamp)', sizeFlag, 1024)
      .option('--body <file>', 'body from a file (e.g. the ticket event), stamp in front')
      .option(
        '--rate <n>',
        'open loop: messages/s over all producers (default: as fast as possible)',
        intFlag(1),
      )
      .option('--duration <dur>', 'how long to publish (default 10s)', durationFlag)
      .option('--count <n>', 'messages to publish over all producers', intFlag(1))
      .option(
        '--confirm-window <n>',
        'unconfirmed publishes per producer',
        intFlag(1, 100_000),
        256,
      )
      .option('--prefetch <n>', 'unacked deliveries per consumer', intFlag(1, 65_535), 256)
      .option(
        '--ack <manual|none>',
        'ack each message (batched), or consume without acks (AMQP)',
        'manual',
      )
      .option('--priority-mix <p:w,...>', 'priorities and their weights, e.g. 0:90,9:10')
      .option(
        '--nack-share <x>',
        'share of deliveries nacked and requeued, 0 to 1',
        numberFlag(0, 1),
        0,
      )
      .option('--profile <name|file>', 'spike, steady, or a JSON/YAML stage file')
      .option('--spike-factor <n>', 'peak of the spike profile, times --rate', intFlag(1, 1000), 10)
      .option('--transient', 'non-persistent messages in non-durable queues (AMQP peers)')
      .addOption(
        durationOption(
          '--drain-timeout <dur>',
          'wait this long for stragglers after publishing',
          10_000,
        ),
      )
      .option('--broker-pid <pid>', "the broker's PID, to report its CPU beside ours", intFlag(1))
      .option('--queue-prefix <name>', 'queue names (default usher-bench-<random>)')
      .option('--keep-queues', "leave the run's queues behind")
      .option('--slo <spec>', "pass/fail terms, e.g. 'p99<200ms,lost=0,error<0.1%'")
      .option('--json <file>', 'write the result as JSON ("-" for stdout)')
      .option('--report <dir>', 'write result.json, report.md and report.html there')
      .option('--quiet', 'no progress lines')
      .option(
        '--calibrate <file>',
        'measure per-message costs for `usher plan`; write them to <file>',
      )
      .addHelpText(
        'after',
        `\nThe URL is the global --url: http://... for Usher's HTTP API, amqp://... for\n` +
          `AMQP 0-9-1 (Usher or RabbitMQ; default ${DEFAULT_AMQP_URL} with --protocol amqp).\n` +
          '--calibrate starts its own Usher on a temporary folder and ignores --url;\n' +
          '--count sets its messages a phase (default 20000).\n' +
          `--slo terms (names case-insensitive): ${SLO_TERMS}.`,
      )
      .action((flags: CommandFlags, command: Command) => bench(flags, command, cli));
  },
};

async function bench(flags: CommandFlags, command: Command, cli: Cli): Promise<void> {
  if (flags.calibrate !== undefined) {
    await prepareOutputs({ calibrate: flags.calibrate });
    await runCalibration(flags.calibrate, cli.note, flags.count);
    return;
  }
  const url = urlOf(command, flags.protocol);
  const resolved = resolveFlags(flags, url);
  const slo = parseSloFlag(flags.slo);
  await prepareOutputs({ json: flags.json, report: flags.report });
  const driver: Driver = resolved.protocol === 'amqp' ? new AmqpDriver(url) : new HttpDriver(url);

  const interactive = process.stderr.isTTY === true && flags.quiet !== true;
  let lastLine = 0;
  // Ctrl-C ends publishing; the run drains, reports and deletes its
  // queues. A second Ctrl-C exits at once (the listener is gone).
  const interrupt = new AbortController();
  const onSigint = () => {
    cli.note('\nusher bench: stopping (Ctrl-C again to quit now)');
    interrupt.abort();
  };
  process.once('SIGINT', onSigint);
  let result: BenchResult;
  try {
    result = await runBench({
      stop: interrupt.signal,
      driver,
      producers: flags.producers,
      consumers: flags.consumers,
      queues: flags.queues,
      body: resolved.body,
      profile: resolved.profile,
      count: resolved.count,
      durationMs: resolved.durationMs,
      confirmWindow: flags.confirmWindow,
      prefetch: flags.prefetch,
      ackMode: resolved.ackMode,
      priorities: resolved.priorities,
      nackShare: flags.nackShare,
      persistent: flags.transient !== true,
      drainTimeoutMs: flags.drainTimeout,
      sampleMs: interactive ? 250 : 1000,
      queuePrefix: flags.queuePrefix ?? `usher-bench-${Math.random().toString(36).slice(2, 8)}`,
      keepQueues: flags.keepQueues === true,
      brokerPid: usableBrokerPid(flags.brokerPid, cli.note),
      onSample: (sample, run) => {
        if (flags.quiet) return;
        const line = progressLine(sample, run);
        if (interactive) process.stderr.write(`\r\x1b[K${line}`);
        else if (run.elapsedMs - lastLine >= 5000) {
          lastLine = run.elapsedMs;
          cli.note(line);
        }
      },
    });
  } catch (err) {
    if (interactive) process.stderr.write('\n');
    if (err instanceof BenchRunError)
      throw new CliError(`bench failed: ${err.message}`, { cause: err });
    if (err instanceof Error && !(err instanceof UsageError)) {
      // fetch says only "fetch failed"; the reason is in its cause.
      const cause = (err.cause as Error | undefined)?.message;
      const why = cause === undefined ? err.message : `${err.message}: ${cause}`;
      throw new CliError(`bench against ${redactUrl(url)} failed: ${why}`, { cause: err });
    }
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (interactive) process.stderr.write('\n');

  const outcomes = slo === null ? null : checkSlo(slo, result);
  await writeOutputs(result, outcomes, flags, cli);
  if (outcomes?.some((o) => !o.pass)) {
    const failed = outcomes
      .filter((o) => !o.pass)
      .map((o) => `${o.term} (actual ${formatActual(o)})`);
    cli.note(`usher bench: SLO failed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

/** The global --url, or the AMQP default when --protocol amqp left it unset. */
function urlOf(command: Command, protocol: string | undefined): string {
  const root = command.parent ?? command;
  const url = String(root.opts().url);
  if (protocol === 'amqp' && root.getOptionValueSource('url') === 'default')
    return DEFAULT_AMQP_URL;
  return url;
}

function parseSloFlag(spec: string | undefined) {
  if (spec === undefined) return null;
  try {
    return parseSlo(spec);
  } catch (err) {
    if (err instanceof SloError) throw new UsageError(err.message);
    throw err;
  }
}

async function writeOutputs(
  result: BenchResult,
  slo: SloOutcome[] | null,
  flags: CommandFlags,
  cli: Cli,
): Promise<void> {
  const json = `${JSON.stringify({ ...result, slo }, null, 2)}\n`;
  const markdown = markdownReport(result, slo);
  if (flags.json === '-') process.stdout.write(json);
  else cli.out(markdown.trimEnd());
  await writeOutputFiles(flags, { json, markdown, html: () => htmlReport(result, slo) });
  if (flags.report !== undefined)
    cli.note(`report written to ${flags.report}/report.{md,html}, result.json`);
}
