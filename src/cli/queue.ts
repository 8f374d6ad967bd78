// `usher queue create|list|stats|purge|delete`: queue administration.

import { InvalidArgumentError as FlagError, Option, type Command } from 'commander';

import type { QueueInfo, QueueSettingsInput } from '../client/index.js';
import { OVERFLOW_POLICIES, type OverflowPolicy } from '../engine/types.js';
import { formatDuration, formatSize } from '../util/duration.js';
import {
  dayFlag,
  ttlFlag,
  intFlag,
  numberFlag,
  sizeFlag,
  type Cli,
  type CommandGroup,
} from './context.js';
import { keyValues, table } from './output.js';

interface CreateFlags {
  fifo?: boolean;
  maxAttempts?: number;
  backoff?: number;
  backoffMax?: number;
  backoffMultiplier?: number;
  backoffJitter?: number;
  visibilityTimeout?: number;
  deadLetter?: string;
  messageTtl?: number;
  ttl?: number;
  dedupWindow?: number;
  dedupMaxIds?: number;
  durability?: QueueSettingsInput['durability'];
  maxLength?: number;
  maxBytes?: number;
  overflow?: OverflowPolicy;
  sheddable?: boolean;
  json?: boolean;
}

function overflowFlag(text: string): OverflowPolicy {
  const policy = OVERFLOW_POLICIES.find((known) => known === text);
  if (policy === undefined) {
    throw new FlagError(`expected one of ${OVERFLOW_POLICIES.join(', ')}`);
  }
  return policy;
}

export const queueCommands: CommandGroup = {
  register(program: Command, cli: Cli): void {
    const queue = program.command('queue').description('manage queues');

    queue
      .command('create')
      .description(
        'create a queue; on an existing one, change only the settings given',
      )
      .argument('<name>', 'queue name')
      .option('--fifo', 'strict order within each message group')
      .option(
        '--max-attempts <n>',
        'deliveries before dead-lettering; 0 = unlimited',
        intFlag(0),
      )
      .option('--backoff <duration>', 'first retry delay', dayFlag)
      .option('--backoff-max <duration>', 'longest retry delay', dayFlag)
      .option(
        '--backoff-multiplier <x>',
        'each retry waits this many times longer (default 2)',
        numberFlag(1, 100),
      )
      .option(
        '--backoff-jitter <fraction>',
        'share of a delay randomised away, 0 to 1 (default 0.1)',
        numberFlag(0, 1),
      )
      .option('--visibility-timeout <duration>', 'lease length', dayFlag)
      .option('--dead-letter <queue>', 'where failed and expired messages go')
      .option(
        '--message-ttl <duration>',
        'time to live of each message (messageTtlMs); --ttl works too',
        ttlFlag,
      )
      // The first name of the flag, kept for the scripts that use it.
      .addOption(
        new Option('--ttl <duration>')
          .argParser(ttlFlag)
          .conflicts('messageTtl')
          .hideHelp(),
      )
      .option(
        '--dedup-window <duration>',
        'how long a message id is remembered',
        dayFlag,
      )
      .option(
        '--dedup-max-ids <n>',
        'most message ids remembered, the newest (default 100000)',
        intFlag(1),
      )
      .addOption(
        new Option(
          '--durability <mode>',
          'fsync: confirm once on disk (default); os: once written to the ' +
            'OS; memory: never written, gone at restart',
        ).choices(['fsync', 'os', 'memory']),
      )
      .option(
        '--max-length <n>',
        'most waiting messages (ready or delayed)',
        intFlag(0),
      )
      .option('--max-bytes <size>', 'most body bytes waiting, e.g. 64MiB', sizeFlag)
      .option(
        '--overflow <policy>',
        'past a limit: reject-publish (default), reject-publish-dlx, drop-oldest, ' +
          'reject-lowest-priority',
        overflowFlag,
      )
      .option('--sheddable', 'refused first when the broker is under pressure')
      .option('--json', 'print the queue as JSON')
      .action(async (name: string, flags: CreateFlags) => {
        const settings = settingsFrom(flags);
        const before = await cli.client().getQueue(name).catch(() => null);
        const { created, queue: info } = await cli.client().createQueue(name, settings);
        if (flags.json) return cli.out(JSON.stringify(info));
        const changed = before === null
          ? false
          : JSON.stringify(before.settings) !== JSON.stringify(info.settings);
        cli.out(
          created
            ? `created queue "${name}"`
            : changed
              ? `updated queue "${name}"`
              : Object.keys(settings).length === 0
                ? `queue "${name}" already exists (${settingsSummary(info)}); ` +
                  'no settings given, nothing changed'
                : `queue "${name}" already exists with these settings`,
        );
      });

    queue
      .command('list')
      .description('list queues with their message counts')
      .option('--json', 'print a JSON array of queues')
      .action(async (flags: { json?: boolean }) => {
        const queues = await cli.client().listQueues();
        if (flags.json) return cli.out(JSON.stringify(queues));
        if (queues.length === 0) return cli.note('no queues');

        const rows = queues.map((q) => [
          q.name,
          String(q.stats.ready),
          String(q.stats.inFlight),
          String(q.stats.delayed),
          String(q.stats.total),
          q.settings.deadLetter ?? '-',
        ]);
        const header = [
          'NAME', 'READY', 'IN-FLIGHT', 'DELAYED', 'TOTAL', 'DEAD-LETTER',
        ];
        for (const line of table(header, rows)) cli.out(line);
      });

    queue
      .command('stats')
      .description("show a queue's counters and settings")
      .argument('<name>', 'queue name')
      .option('--json', 'print the queue as JSON')
      .action(async (name: string, flags: { json?: boolean }) => {
        const info = await cli.client().getQueue(name);
        if (flags.json) return cli.out(JSON.stringify(info));
        for (const line of keyValues(statsPairs(info))) cli.out(line);
      });

    queue
      .command('purge')
      .description(
        'remove the ready and delayed messages of a queue; leased ones stay ' +
          'leased until acked, nacked or their lease runs out',
      )
      .argument('<name>', 'queue name')
      .action(async (name: string) => {
        const purged = await cli.client().purgeQueue(name);
        const messages = purged === 1 ? 'message' : 'messages';
        cli.out(`purged ${purged} ${messages} from "${name}"`);
      });

    queue
      .command('delete')
      .description('delete a queue and its messages')
      .argument('<name>', 'queue name')
      .action(async (name: string) => {
        await cli.client().deleteQueue(name);
        cli.out(`deleted queue "${name}"`);
      });
  },
};

/** Only the flags given: the broker fills in its defaults for the rest. */
function settingsFrom(flags: CreateFlags): QueueSettingsInput {
  const settings: QueueSettingsInput = {};
  if (flags.fifo) settings.fifo = true;
  if (flags.maxAttempts !== undefined) settings.maxAttempts = flags.maxAttempts;
  if (flags.visibilityTimeout !== undefined) {
    settings.visibilityTimeoutMs = flags.visibilityTimeout;
  }
  if (flags.deadLetter !== undefined) settings.deadLetter = flags.deadLetter;
  const ttl = flags.messageTtl ?? flags.ttl;
  if (ttl !== undefined) settings.messageTtlMs = ttl;
  if (flags.dedupWindow !== undefined) {
    settings.dedupWindowMs = flags.dedupWindow;
  }
  if (flags.dedupMaxIds !== undefined) settings.dedupMaxIds = flags.dedupMaxIds;
  if (flags.durability !== undefined) settings.durability = flags.durability;
  if (flags.maxLength !== undefined) settings.maxLength = flags.maxLength;
  if (flags.maxBytes !== undefined) settings.maxBytes = flags.maxBytes;
  if (flags.overflow !== undefined) settings.overflow = flags.overflow;
  if (flags.sheddable) settings.sheddable = true;

  const backoff: NonNullable<QueueSettingsInput['backoff']> = {};
  if (flags.backoff !== undefined) backoff.initialMs = flags.backoff;
  if (flags.backoffMax !== undefined) backoff.maxMs = flags.backoffMax;
  if (flags.backoffMultiplier !== undefined) {
    backoff.multiplier = flags.backoffMultiplier;
  }
  if (flags.backoffJitter !== undefined) backoff.jitter = flags.backoffJitter;
  if (Object.keys(backoff).length > 0) settings.backoff = backoff;
  return settings;
}

/**
 * A queue's main settings in a few words for one line, those at their
 * defaults left out but ordering and attempts:
 * `fifo, max 5 attempts, dead-letter "orders.dlq"`. `queue stats` has all.
 */
function settingsSummary({ settings }: QueueInfo): string {
  const words = [settings.fifo ? 'fifo' : 'best-effort'];
  words.push(settings.maxAttempts === 0
    ? 'unlimited attempts'
    : `max ${settings.maxAttempts} attempts`);
  if (settings.deadLetter !== null) words.push(`dead-letter "${settings.deadLetter}"`);
  if (settings.messageTtlMs !== null) {
    words.push(`message TTL ${formatDuration(settings.messageTtlMs)}`);
  }
  if (settings.durability !== 'fsync') words.push(`durability ${settings.durability}`);
  if (settings.maxLength !== null) words.push(`max length ${settings.maxLength}`);
  if (settings.maxBytes !== null) words.push(`max bytes ${formatSize(settings.maxBytes)}`);
  return words.join(', ');
}

/** Counters first (raw numbers, easy to grep), then settings for people. */
function statsPairs(info: QueueInfo): Array<[string, unknown]> {
  const { stats, settings } = info;
  const { backoff, messageTtlMs: ttl } = settings;
  return [
    ['queue', info.name],
    ['ready', stats.ready],
    ['inFlight', stats.inFlight],
    ['delayed', stats.delayed],
    ['total', stats.total],
    ['bytes', `${stats.bytes} (${formatSize(stats.bytes)})`],
    ['oldestReadyAgeMs', stats.oldestReadyAgeMs],
    ['published', stats.published],
    ['delivered', stats.delivered],
    ['acked', stats.acked],
    ['nacked', stats.nacked],
    ['leaseExpired', stats.leaseExpired],
    ['deadLettered', stats.deadLettered],
    ['expired', stats.expired],
    ['dropped', stats.dropped],
    ['duplicates', stats.duplicates],
    ['overflowed', stats.overflowed],
    ['refused', stats.refused],
    ['fifo', settings.fifo],
    ['maxAttempts', settings.maxAttempts || 'unlimited'],
    [
      'backoff',
      `${formatDuration(backoff.initialMs)} x${backoff.multiplier} up to ` +
        `${formatDuration(backoff.maxMs)}, jitter ${backoff.jitter}`,
    ],
    ['visibilityTimeout', formatDuration(settings.visibilityTimeoutMs)],
    ['deadLetter', settings.deadLetter ?? '-'],
    ['messageTtl', ttl === null ? '-' : formatDuration(ttl)],
    ['dedupWindow', formatDuration(settings.dedupWindowMs)],
    ['dedupMaxIds', settings.dedupMaxIds],
    ['durability', settings.durability],
    ['maxLength', settings.maxLength ?? '-'],
    ['maxBytes', settings.maxBytes === null ? '-' : formatSize(settings.maxBytes)],
    ['overflow', settings.overflow],
    ['sheddable', settings.sheddable],
    ['deadLetterFor', info.deadLetterSources.join(', ') || '-'],
  ];
}
