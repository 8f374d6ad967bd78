// Queue arguments only AMQP has words for, which Usher's queue settings do
// not hold: x-dead-letter-exchange (with its routing key), x-expires and
// x-single-active-consumer, the storage and placement hints a redeclare
// must repeat (queue-hints.ts), and whether a durable queue is exclusive
// (its connection's, so it goes at restart). They are kept per queue in
// `<data>/amqp-queues.json`, rewritten whole on each change as
// exchanges.json is: queues with such arguments are declared rarely.
//
// Version 1 of the file had no hints: the queues there at the first start
// with version 2 were declared with hints nobody kept, and their
// redeclares are not compared on them (hints 'unknown').

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

import { CoalescingFile, setAside } from '../util/atomic-file.js';
import { REPLY } from './constants.js';
import { AmqpError } from './errors.js';
import { plainValue, type FieldTable } from './field-table.js';
import { inequivalentArg } from './queue-equivalence.js';
import { type QueueHints, checkHintsEquivalent, hintsFromArguments } from './queue-hints.js';

const FILE = 'amqp-queues.json';
/** The file's version since it keeps hints. */
const VERSION = 2;

export interface QueueFeatures {
  /** Where dying messages are published; '' is the default exchange. */
  deadLetterExchange?: string;
  /** The key they are published with; absent: their own routing keys. */
  deadLetterRoutingKey?: string;
  /** Delete the queue after this long unused (no consumer, get or declare). */
  expiresMs?: number;
  /** One consumer at a time gets deliveries; the next takes over. */
  singleActiveConsumer?: boolean;
  /**
   * Declared exclusive (and durable, so it outlives the process): it
   * belongs to a connection no restart keeps, and goes at the next start
   * (RabbitMQ). Not an argument: a redeclare does not compare it.
   */
  exclusive?: boolean;
  /**
   * x-queue-type and RabbitMQ's storage and placement hints as declared;
   * 'unknown' for a queue declared before Usher kept them.
   */
  hints?: QueueHints | 'unknown';
}

/** Arguments read here; mapping.ts leaves them alone. */
export const FEATURE_ARGUMENTS: ReadonlySet<string> = new Set([
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-expires',
  'x-single-active-consumer',
]);

/** The features queue.declare's arguments ask for; 406 on bad values. */
export function featuresFromArguments(args: FieldTable): QueueFeatures {
  const features: QueueFeatures = {};
  for (const [name, field] of args) {
    const value = plainValue(field);
    switch (name) {
      case 'x-dead-letter-exchange':
        features.deadLetterExchange = text(name, value);
        break;
      case 'x-dead-letter-routing-key':
        features.deadLetterRoutingKey = text(name, value);
        break;
      case 'x-expires':
        features.expiresMs = positiveInteger(name, value);
        break;
      case 'x-single-active-consumer':
        if (typeof value !== 'boolean') invalid(name, `${String(value)} is not a boolean`);
        features.singleActiveConsumer = value;
        break;
    }
  }
  // As RabbitMQ: a key with no exchange to publish to means nothing.
  if (features.deadLetterRoutingKey !== undefined && features.deadLetterExchange === undefined) {
    throw new AmqpError(REPLY.PRECONDITION_FAILED, 'Key x-dead-letter-routing-key should be ' +
      'specified together with x-dead-letter-exchange');
  }
  if (features.singleActiveConsumer === false) delete features.singleActiveConsumer;
  const hints = hintsFromArguments(args);
  if (hints !== undefined) features.hints = hints;
  return features;
}

/** 406 naming the first feature a redeclare asks differently. */
export function checkFeaturesEquivalent(
  queue: string,
  current: QueueFeatures,
  asked: QueueFeatures,
): void {
  const names: Array<[keyof QueueFeatures, string]> = [
    ['deadLetterExchange', 'x-dead-letter-exchange'],
    ['deadLetterRoutingKey', 'x-dead-letter-routing-key'],
    ['expiresMs', 'x-expires'],
    ['singleActiveConsumer', 'x-single-active-consumer'],
  ];
  for (const [key, argument] of names) {
    if (current[key] !== asked[key]) {
      throw inequivalentArg(queue, argument, describe(asked[key]), describe(current[key]));
    }
  }
  if (current.hints !== 'unknown' && asked.hints !== 'unknown') {
    checkHintsEquivalent(queue, current.hints, asked.hints);
  }
}

/** Every queue's features, and their file. */
export class QueueFeatureTable {
  private readonly file: CoalescingFile;

  private constructor(
    private readonly features: Map<string, QueueFeatures>,
    path: string,
  ) {
    this.file = new CoalescingFile(path, () =>
      JSON.stringify({ version: VERSION, queues: Object.fromEntries(this.features) }));
  }

  /** `queues`: the broker's; the features of others are not kept. */
  static async open(
    dataDir: string,
    queues: { has(name: string): boolean; names(): Iterable<string> },
    logger: Logger,
  ): Promise<QueueFeatureTable> {
    const path = join(dataDir, FILE);
    const features = new Map<string, QueueFeatures>();
    let version = 0;
    try {
      const saved = JSON.parse(await readFile(path, 'utf8')) as {
        version?: number;
        queues?: Record<string, QueueFeatures>;
      };
      version = saved.version ?? 1;
      for (const [name, entry] of Object.entries(saved.queues ?? {})) {
        // A queue deleted over HTTP takes its features with it.
        if (queues.has(name)) features.set(name, entry);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        const aside = await setAside(path);
        logger.error(
          { err, path, aside },
          'AMQP queue arguments unreadable, set aside; starting without them',
        );
      }
    }
    const table = new QueueFeatureTable(features, path);
    if (version < VERSION) await table.forgetHintsOfOlderQueues(queues.names(), logger);
    return table;
  }

  get(queue: string): QueueFeatures {
    return this.features.get(queue) ?? {};
  }

  entries(): IterableIterator<[string, QueueFeatures]> {
    return this.features.entries();
  }

  async set(queue: string, features: QueueFeatures): Promise<void> {
    if (Object.keys(features).length === 0) {
      if (!this.features.has(queue)) return;
      this.features.delete(queue);
    } else {
      this.features.set(queue, features);
    }
    await this.save();
  }

  async forget(queue: string): Promise<void> {
    if (this.features.delete(queue)) await this.save();
  }

  async flush(): Promise<void> {
    await this.file.flush();
  }

  /**
   * Marks the hints of the queues there before this file kept them (or
   * while it could not be read) as unknown, and writes it at once: the
   * queues made from now on without an entry were declared with none.
   */
  private async forgetHintsOfOlderQueues(names: Iterable<string>, logger: Logger): Promise<void> {
    for (const name of names) {
      this.features.set(name, { ...this.features.get(name), hints: 'unknown' });
    }
    await this.save().catch((err: unknown) =>
      logger.error({ err }, 'AMQP queue arguments not saved; the next change retries'));
  }

  private save(): Promise<void> {
    return this.file.save();
  }
}

// --- helpers --------------------------------------------------------------

function text(name: string, value: unknown): string {
  if (typeof value !== 'string') invalid(name, `${String(value)} is not a string`);
  return value;
}

/** RabbitMQ takes x-expires from 1 ms to 2^32 - 1 ms (about 49 days). */
function positiveInteger(name: string, value: unknown): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 2 ** 32 - 1) {
    invalid(name, `${String(value)} is not an integer from 1 to ${2 ** 32 - 1}`);
  }
  return n;
}

function invalid(name: string, why: string): never {
  throw new AmqpError(REPLY.PRECONDITION_FAILED, `invalid arg '${name}' for queue: ${why}`);
}

function describe(value: unknown): string {
  return value === undefined ? 'none' : `'${String(value)}'`;
}
