// `usher demo ticketing`: the demo's command group for the CLI. It runs
// against the broker at --url (or USHER_URL), or with --embedded one it
// starts in this process. Exit status 1 when the audit fails (a lost
// ticket, a well-formed one dead-lettered) or the run takes too long.

import type { Command } from 'commander';

import {
  CliError,
  DEFAULT_URL,
  durationFlag,
  intFlag,
  type Cli,
  type CommandGroup,
} from '../cli/context.js';
import { startEmbeddedBroker } from './embedded.js';
import { registerOnSale } from './onsale-command.js';
import { printReport, progressDisplay } from './terminal.js';
import {
  DEFAULT_BUYERS,
  DemoTimeoutError,
  runTicketingDemo,
  timeoutFor,
} from './ticketing/run.js';

interface TicketingFlags {
  buyers: number;
  embedded?: boolean;
  json?: boolean;
  seed: number;
  timeout?: number;
  emailDown?: number;
  deleteQueues?: boolean;
  amqp?: string | boolean;
}

export const demoCommands: CommandGroup = {
  register(program: Command, cli: Cli): void {
    const demo = program.command('demo').description('run a demonstration');

    demo
      .command('ticketing')
      .description(
        'a ticket sale spike: payment, e-mail and SMS services behind ' +
          'queues, with a crash, provider failures and malformed purchases',
      )
      .option(
        '--buyers <n>',
        'purchases to publish',
        intFlag(1, 1_000_000),
        DEFAULT_BUYERS,
      )
      .option('--embedded', 'run a broker in this process, not at --url')
      .option('--json', 'print the report as one JSON object')
      .option('--seed <n>', 'fixes names, pace and failures', intFlag(0), 1)
      .option(
        '--timeout <duration>',
        'fail past this (default 30s + 5ms per buyer)',
        durationFlag,
      )
      .option(
        '--email-down <duration>',
        'how long the e-mail service stays down (default 1.5s)',
        durationFlag,
      )
      .option('--delete-queues', "delete the run's queues at the end")
      .option(
        '--amqp [url]',
        'publish and consume over AMQP 0-9-1, the faster path (default: ' +
          'the embedded listener, or the AMQP port the broker at --url reports)',
      )
      .addHelpText(
        'after',
        `\nRuns against the broker at --url (default ${DEFAULT_URL}, or ` +
          'USHER_URL)\nunless --embedded. Exits 1 when a ticket is lost or ' +
          'a well-formed one\nis dead-lettered.',
      )
      .action((flags: TicketingFlags) => ticketing(flags, cli));

    registerOnSale(demo, cli);
  },
};

async function ticketing(flags: TicketingFlags, cli: Cli): Promise<void> {
  const display = progressDisplay();
  const embedded = flags.embedded
    ? await startEmbeddedBroker({ amqp: flags.amqp !== undefined })
    : undefined;

  try {
    // Without --embedded, the client for --url checks the URL first.
    const url = embedded ? embedded.url : cli.client().url;
    if (embedded) {
      display.note(`embedded broker on ${url} (data in ${embedded.dataDir})`);
    }

    const report = await runTicketingDemo({
      url,
      amqpUrl: await amqpUrlOf(flags.amqp, embedded?.amqpUrl, cli, url),
      buyers: flags.buyers,
      seed: flags.seed,
      timeoutMs: flags.timeout ?? timeoutFor(flags.buyers),
      emailCrash:
        flags.emailDown === undefined
          ? undefined
          : { afterFraction: 0.3, downMs: flags.emailDown },
      deleteQueues: flags.deleteQueues,
      progressIntervalMs: display.intervalMs,
      onProgress: display.show,
      onNote: display.note,
    });
    display.finish();
    printReport(report, flags.json === true);
    if (!report.ok) process.exitCode = 1;
  } catch (err) {
    display.finish();
    if (err instanceof DemoTimeoutError) {
      throw new CliError(err.message, { cause: err });
    }
    throw err;
  } finally {
    await embedded?.close();
  }
}

/**
 * The AMQP URL --amqp asks for, if any. Given no URL, the broker's: the
 * embedded one's, or the port --url's broker reports in /healthz on its
 * host (a guess of 5672 met a broker started with another --amqp-port).
 */
async function amqpUrlOf(
  flag: string | boolean | undefined,
  embedded: string | undefined,
  cli: Cli,
  httpUrl: string,
): Promise<string | undefined> {
  if (flag === undefined || flag === false) return undefined;
  if (typeof flag === 'string') return flag;
  if (embedded !== undefined) return embedded;
  const { listeners } = await cli.client().health();
  if (listeners?.amqp === undefined) {
    throw new CliError(`the broker at ${httpUrl} has no plain AMQP listener ` +
      '(started with --amqp-port -1 or --tls-only?); give its URL: --amqp amqp://HOST:PORT');
  }
  return `amqp://guest:guest@${new URL(httpUrl).hostname}:${listeners.amqp}`;
}
