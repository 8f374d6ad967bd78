// `usher dlq list|redrive QUEUE`: look into a dead-letter queue without
// leasing anything, and move its messages back. QUEUE may name the
// dead-letter queue itself or a queue that dead-letters into one.

import { Option, type Command } from 'commander';

import { DEATH_HEADERS } from '../broker/dead-letter.js';
import type { PeekedMessage, RedriveOptions, UsherClient } from '../client/index.js';
import { DEATH_REASONS, type DeathReason } from '../engine/types.js';
import { CliError, intFlag, type Cli, type CommandGroup } from './context.js';
import { bodyText, headersText, keyValues, messageJson } from './output.js';

interface ListFlags {
  limit: number;
  offset: number;
  json?: boolean;
}

interface RedriveFlags {
  to?: string;
  max?: number;
  id?: string[];
  reason?: DeathReason;
  source?: string;
  anyQueue?: boolean;
}

/** Gathers a repeated flag's values. */
function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export const dlqCommands: CommandGroup = {
  register(program: Command, cli: Cli): void {
    const dlq = program
      .command('dlq')
      .description('inspect and redrive dead letters');

    dlq
      .command('list')
      .description('list dead-lettered messages (no lease is taken)')
      .argument('<queue>', 'dead-letter queue, or a queue that has one')
      .option('--limit <n>', 'list at most this many', intFlag(1, 1000), 20)
      .option('--offset <n>', 'skip this many first', intFlag(0), 0)
      .option('--json', 'print one JSON object per message')
      .action(async (queue: string, flags: ListFlags) => {
        const client = cli.client();
        const name = await resolveDeadLetterQueue(client, cli, queue);
        const { limit, offset } = flags;
        const messages = await client.peek(name, { limit, offset });

        if (flags.json) {
          for (const message of messages) cli.out(messageJson(message));
          return;
        }
        if (messages.length === 0) return cli.note(`no messages in "${name}"`);
        messages.forEach((message, i) => {
          if (i > 0) cli.out('');
          const lines = keyValues([
            ['id', message.id],
            ['state', message.state],
            ['died', deathText(message)],
            ['published', new Date(message.publishedAt).toISOString()],
            ['headers', headersText(ownHeaders(message))],
            ['body', bodyText(message.body)],
          ]);
          for (const line of lines) cli.out(line);
        });
      });

    dlq
      .command('redrive')
      .description('move dead letters back where they came from, or --to')
      .argument('<queue>', 'dead-letter queue, or a queue that has one')
      .option('--to <queue>', 'move them here instead')
      .option('--max <n>', 'move at most this many', intFlag(1))
      .option('--id <id>', 'only this message id; repeat for more (up to 1000)', collect)
      .addOption(
        new Option('--reason <reason>', 'only messages that last died for this reason')
          .choices(DEATH_REASONS),
      )
      .option('--source <queue>', 'only messages that last died in this queue')
      .option('--any-queue', 'move the messages of a queue that is no dead-letter queue')
      .action(async (queue: string, flags: RedriveFlags) => {
        const client = cli.client();
        const anyQueue = flags.anyQueue === true;
        const name = await resolveDeadLetterQueue(client, cli, queue, !anyQueue);
        const { to, max, id: ids, reason, source } = flags;
        const request: RedriveOptions = { to, max, ids, reason, source };
        if (anyQueue) request.anyQueue = true;
        const moved = await client.redrive(name, request);
        const target = to ? `"${to}"` : 'their source queues';
        const messages = moved === 1 ? 'message' : 'messages';
        cli.out(`moved ${moved} ${messages} from "${name}" to ${target}`);
      });
  },
};

/**
 * The dead-letter queue meant by `name`: itself when some queue
 * dead-letters into it, by Usher's setting or an AMQP dead-letter exchange;
 * else the queue it dead-letters into, by either. A queue that is
 * neither is itself, unless `strict`: a redrive would move live messages
 * (a new-user session moved a work queue's that way). Throws
 * QUEUE_NOT_FOUND.
 */
async function resolveDeadLetterQueue(
  client: UsherClient,
  cli: Cli,
  name: string,
  strict = false,
): Promise<string> {
  const info = await client.getQueue(name);
  if (info.deadLetterSources.length > 0) return name;
  let target = info.settings.deadLetter;
  if (target === null) {
    // Its AMQP dead-letter exchange may lead to one.
    const fed = (await client.listQueues())
      .filter((queue) => queue.deadLetterSources.includes(name))
      .map((queue) => queue.name);
    if (fed.length > 1) {
      throw new CliError(`"${name}" dead-letters into ${fed.map((q) => `"${q}"`).join(', ')}: ` +
        'name one of them');
    }
    target = fed[0] ?? null;
  }
  if (target === null) {
    if (!strict) return name;
    throw new CliError(`"${name}" is not a dead-letter queue: no queue dead-letters into it ` +
      'and it has none of its own, so its messages may be live; --any-queue moves them anyway');
  }

  cli.note(`using "${target}", the dead-letter queue of "${name}"`);
  return target;
}

/**
 * The latest death in a line, from the headers the broker adds when it
 * dead-letters (src/broker/dead-letter.ts):
 * `rejected in "orders" after 3 attempts: card declined`.
 */
function deathText({ headers }: PeekedMessage): string {
  const reason = headers[DEATH_HEADERS.reason];
  if (reason === undefined) return '-';
  const attempts = headers[DEATH_HEADERS.attempts] ?? '?';
  let text =
    `${reason} in "${headers[DEATH_HEADERS.queue]}" after ${attempts} ` +
    `attempt${attempts === '1' ? '' : 's'} at ${headers[DEATH_HEADERS.time]}`;

  const error = lastDeathError(headers[DEATH_HEADERS.history]);
  if (error !== undefined) text += `: ${error}`;
  return text;
}

function lastDeathError(history: string | undefined): string | undefined {
  try {
    const deaths = JSON.parse(history ?? '[]') as Array<{ error?: string }>;
    return deaths.at(-1)?.error;
  } catch {
    return undefined;
  }
}

/** Headers without the broker's death bookkeeping, shown as `died`. */
function ownHeaders({ headers }: PeekedMessage): Record<string, string> {
  const own: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (!key.startsWith('x-usher-')) own[key] = value;
  }
  return own;
}
