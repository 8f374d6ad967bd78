// `usher consume QUEUE`: receive messages and print them, optionally acking
// or nacking them all; `usher ack` and `usher nack` settle leases left
// open by a plain `consume` (its receipts are in the output).

import { Option, type Command } from 'commander';

import {
  UsherClientError,
  type NackOptions,
  type NackResult,
  type ReceivedMessage,
  type UsherClient,
} from '../client/index.js';
import {
  UsageError,
  dayFlag,
  intFlag,
  type Cli,
  type CommandGroup,
} from './context.js';
import { durationOption } from './duration-option.js';
import { bodyText, headersText, keyValues, messageJson } from './output.js';

interface ConsumeFlags {
  max: number;
  wait: number;
  visibilityTimeout?: number;
  ack?: boolean;
  nack?: boolean;
  reason?: string;
  requeue: boolean;
  delay?: number;
  json?: boolean;
}

interface NackFlags {
  reason?: string;
  requeue: boolean;
  delay?: number;
}

export const consumeCommands: CommandGroup = {
  register(program: Command, cli: Cli): void {
    program
      .command('consume')
      .description(
        'receive messages and print them; without --ack or --nack they ' +
          'stay leased until their visibility timeout',
      )
      .argument('<queue>', 'queue name')
      .option('--max <n>', 'receive at most this many', intFlag(1, 1000), 1)
      .addOption(durationOption('--wait <duration>', 'wait for a message', 0))
      .option('--visibility-timeout <duration>', 'lease length', dayFlag)
      .addOption(
        new Option('--ack', 'ack what was received').conflicts('nack'),
      )
      .option('--nack', 'nack what was received')
      .option('--reason <text>', 'with --nack: why processing failed')
      .option('--no-requeue', 'with --nack: dead-letter now, no retry')
      .option('--delay <duration>', 'with --nack: retry after', dayFlag)
      .option('--json', 'print one JSON object per message')
      .action(async (queue: string, flags: ConsumeFlags) => {
        const nackOnly = flags.reason !== undefined || !flags.requeue ||
          flags.delay !== undefined;
        if (nackOnly && !flags.nack) {
          throw new UsageError(
            '--reason, --no-requeue and --delay need --nack',
          );
        }

        const client = cli.client();
        const messages = await client.receive(queue, {
          max: flags.max,
          waitMs: flags.wait,
          visibilityTimeoutMs: flags.visibilityTimeout,
        });
        printMessages(cli, messages, !!flags.json);
        if (messages.length === 0) {
          if (!flags.json) cli.note(`no messages ready in "${queue}"`);
          return;
        }

        if (flags.ack) {
          const receipts = messages.map((m) => m.receipt);
          const { acked } = await client.ack(queue, receipts);
          cli.note(`acked ${acked} of ${messages.length}`);
        } else if (flags.nack) {
          const options = nackOptions(flags);
          const results = await Promise.all(
            messages.map((m) => client.nack(queue, m.receipt, options)),
          );
          cli.note(`nacked ${messages.length}: ${nackSummary(results)}`);
        }
      });

    program
      .command('ack')
      .description('ack leases by receipt')
      .argument('<queue>', 'queue name')
      .argument('<receipts...>', 'receipts printed by consume')
      .action(async (queue: string, receipts: string[]) => {
        const client = cli.client();
        const { results } = await client.ack(queue, receipts);
        let acked = results.filter(Boolean).length;
        for (const [i, receipt] of receipts.entries()) {
          if (results[i]) continue;
          const refusal = await whyNotAcked(client, queue, receipt);
          if (refusal === null) acked++;
          else cli.note(`usher: ${refusal}`);
        }
        cli.out(`acked ${acked} of ${receipts.length}`);
        if (acked < receipts.length) process.exitCode = 1;
      });

    program
      .command('nack')
      .description('nack a lease by receipt')
      .argument('<queue>', 'queue name')
      .argument('<receipt>', 'receipt printed by consume')
      .option('--reason <text>', 'why processing failed')
      .option('--no-requeue', 'dead-letter now instead of retrying')
      .option('--delay <duration>', 'retry after this delay', dayFlag)
      .action(async (queue: string, receipt: string, flags: NackFlags) => {
        const options = nackOptions(flags);
        const result = await cli.client().nack(queue, receipt, options);
        cli.out(`nacked: ${nackSummary([result])}`);
      });
  },
};

/**
 * The broker's own words for a receipt a batch ack answered false for:
 * a batch answers only true or false, while the receipt acked alone is
 * refused with the whole reason (settled, expired, never existed, or a
 * lease of another queue). That second ack settles nothing: a receipt
 * names one delivery of one broker run, so once it is no current lease
 * it never is again. null if it was acked after all.
 */
async function whyNotAcked(
  client: UsherClient,
  queue: string,
  receipt: string,
): Promise<string | null> {
  try {
    await client.ack(queue, receipt);
    return null;
  } catch (err) {
    if (err instanceof UsherClientError && err.code === 'RECEIPT_NOT_FOUND') {
      return err.message;
    }
    throw err;
  }
}

/** "2 retried, 1 dead-lettered (max-attempts)": what became of nacked messages. */
function nackSummary(results: Array<NackResult | null>): string {
  const counts = new Map<string, number>();
  for (const result of results) {
    const said =
      result === null ? 'sent'
      : result.outcome === 'retried' ? 'retried'
      : result.outcome === 'dropped' ? `dropped (${result.reason}; no dead-letter queue)`
      : `dead-lettered (${result.reason})`;
    counts.set(said, (counts.get(said) ?? 0) + 1);
  }
  return [...counts].map(([said, count]) => `${count} ${said}`).join(', ');
}

function nackOptions(flags: NackFlags): NackOptions {
  return { requeue: flags.requeue, delayMs: flags.delay, reason: flags.reason };
}

function printMessages(
  cli: Cli,
  messages: ReceivedMessage[],
  json: boolean,
): void {
  if (json) {
    for (const message of messages) cli.out(messageJson(message));
    return;
  }
  messages.forEach((message, i) => {
    if (i > 0) cli.out('');
    const lines = keyValues([
      ['id', message.id],
      ['attempt', message.attempt],
      ['priority', message.priority],
      ['group', message.group ?? '-'],
      ['headers', headersText(message.headers)],
      ['receipt', message.receipt],
      ['body', bodyText(message.body)],
    ]);
    for (const line of lines) cli.out(line);
  });
}
