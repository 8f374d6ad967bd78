// `usher publish QUEUE (BODY | --file F | --lines)`: one message from the
// command line or a file, or one message per line of stdin, streamed in
// batches with a few requests in flight.

import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';

import type { Command } from 'commander';

import {
  UsherClientError,
  type MessageBody,
  type OutgoingMessage,
  type PublishOptions,
  type UsherClient,
} from '../client/index.js';
import {
  UsageError,
  dayFlag,
  ttlFlag,
  headerFlag,
  intFlag,
  type Cli,
  type CommandGroup,
} from './context.js';

/** Messages per batch request in --lines mode (the broker takes up to 1000). */
const LINES_PER_BATCH = 500;
/** Batch requests in flight at once in --lines mode. */
const BATCHES_IN_FLIGHT = 4;

interface PublishFlags {
  priority?: number;
  group?: string;
  delay?: number;
  id?: string;
  ttl?: number;
  header?: Record<string, string>;
  file?: string;
  lines?: boolean;
}

export const publishCommands: CommandGroup = {
  register(program: Command, cli: Cli): void {
    program
      .command('publish')
      .description(
        'publish a message: BODY (JSON when it is an object or array, ' +
          'text otherwise), a file, or each line of stdin',
      )
      .argument('<queue>', 'queue name')
      .argument('[body]', 'message body')
      .option('--priority <p>', 'priority, 0 (lowest) to 9', intFlag(0, 9))
      .option('--group <key>', 'FIFO message group')
      .option('--delay <duration>', 'deliver no sooner than this', dayFlag)
      .option('--id <id>', 'message id, for deduplication')
      .option('--ttl <duration>', 'expire after this long', ttlFlag)
      .option('--header <key=value>', 'a header; repeat for more', headerFlag)
      .option('--file <path>', 'publish the bytes of a file ("-" for stdin)')
      .option('--lines', 'publish each non-empty line of stdin as a message')
      .action((queue: string, body: string | undefined, flags: PublishFlags) =>
        publish(cli, queue, body, flags),
      );
  },
};

async function publish(
  cli: Cli,
  queue: string,
  body: string | undefined,
  flags: PublishFlags,
): Promise<void> {
  const sources = [body, flags.file, flags.lines || undefined];
  if (sources.filter((source) => source !== undefined).length !== 1) {
    throw new UsageError('give exactly one of BODY, --file or --lines');
  }
  if (flags.lines && flags.id !== undefined) {
    throw new UsageError(
      '--id cannot be used with --lines: every line would share it',
    );
  }

  const options: PublishOptions = {
    id: flags.id,
    headers: flags.header,
    priority: flags.priority,
    group: flags.group,
    delayMs: flags.delay,
    ttlMs: flags.ttl,
  };
  if (flags.lines) return publishLines(cli, queue, options, process.stdin);

  const message =
    flags.file !== undefined ? await fileBody(flags.file) : textBody(body!);
  const result = await cli.client().publish(queue, message, options);
  cli.out(result.id);
  if (result.duplicate) {
    cli.note(`usher: message "${result.id}" was already stored; kept once`);
  }
}

/** JSON when the text is a JSON object or array, the text itself otherwise. */
function textBody(text: string): MessageBody {
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') return text;
  try {
    return JSON.parse(text) as MessageBody;
  } catch {
    return text;
  }
}

/** A file's bytes, or its JSON value when it holds an object or array. */
async function fileBody(path: string): Promise<MessageBody> {
  let bytes: Buffer;
  try {
    bytes = path === '-' ? await readAll(process.stdin) : await readFile(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT'
      ? 'no such file'
      : (err as Error).message;
    throw new UsageError(`cannot read "${path}": ${reason}`);
  }

  const first = bytes.toString('utf8', 0, 64).trimStart()[0];
  if (first === '{' || first === '[') {
    try {
      return JSON.parse(bytes.toString('utf8')) as MessageBody;
    } catch {
      // Not JSON after all: send the bytes unchanged.
    }
  }
  return bytes;
}

async function readAll(input: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Streams stdin as batches of LINES_PER_BATCH, with up to
 * BATCHES_IN_FLIGHT requests at once; reading pauses while they are all
 * busy, so memory stays flat for any input size. A FIFO queue gets one
 * batch at a time, because concurrent batches could land out of order.
 */
async function publishLines(
  cli: Cli,
  queue: string,
  options: PublishOptions,
  input: Readable,
): Promise<void> {
  const client = cli.client();
  const started = Date.now();
  const info = await client.getQueue(queue);
  const limit = info.settings.fifo ? 1 : BATCHES_IN_FLIGHT;

  const sender = new BatchSender(client, queue, limit);
  let batch: OutgoingMessage[] = [];
  // Input line number of each message in `batch`, for error messages.
  let lineNumbers: number[] = [];
  let lineNumber = 0;
  const add = (line: string) => {
    lineNumber += 1;
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (text === '') return;
    batch.push({ ...options, body: textBody(text) });
    lineNumbers.push(lineNumber);
  };

  let carry = '';
  input.setEncoding('utf8');
  for await (const chunk of input) {
    const lines = (carry + (chunk as string)).split('\n');
    carry = lines.pop() ?? '';
    for (const line of lines) {
      add(line);
      if (batch.length === LINES_PER_BATCH) {
        await sender.send(batch, lineNumbers);
        batch = [];
        lineNumbers = [];
      }
    }
  }
  if (carry !== '') add(carry);
  if (batch.length > 0) await sender.send(batch, lineNumbers);
  await sender.finish();

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const duplicates =
    sender.duplicates > 0 ? `, ${sender.duplicates} duplicates` : '';
  cli.out(
    `published ${sender.published} messages to "${queue}" in ` +
      `${sender.requests} requests (${seconds}s${duplicates})`,
  );
}

/** Keeps up to `limit` batch requests in flight; stops at the first failure. */
class BatchSender {
  published = 0;
  duplicates = 0;
  requests = 0;
  #failure: unknown;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(
    readonly client: UsherClient,
    readonly queue: string,
    readonly limit: number,
  ) {}

  /** Sends a batch; waits first while `limit` requests are in flight. */
  async send(messages: OutgoingMessage[], lines: number[]): Promise<void> {
    while (this.#inFlight.size >= this.limit) {
      await Promise.race(this.#inFlight);
    }
    this.#throwIfFailed();

    this.requests += 1;
    const request = this.client.publishBatch(this.queue, messages).then(
      (results) => {
        this.published += results.length;
        for (const result of results) {
          if (result.duplicate) this.duplicates += 1;
        }
      },
      (err: unknown) => {
        this.#failure ??= atLine(err, lines);
      },
    );
    const tracked = request.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  async finish(): Promise<void> {
    await Promise.all(this.#inFlight);
    this.#throwIfFailed();
  }

  /** Rethrows the first failure, saying how many messages went in before. */
  #throwIfFailed(): void {
    const err = this.#failure;
    if (err === undefined) return;
    const progress = `(${this.published} messages were published before this)`;
    if (err instanceof UsherClientError) {
      const message = `${err.message} ${progress}`;
      throw new UsherClientError(err.code, err.status, message, {
        field: err.field,
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Names the input line of a refused message: the broker's field says
 * `messages.3.body`, which means nothing to someone piping a file.
 */
function atLine(err: unknown, lines: number[]): unknown {
  if (!(err instanceof UsherClientError)) return err;
  const index = /^messages\.(\d+)\b/.exec(err.field ?? '')?.[1];
  const line = index === undefined ? undefined : lines[Number(index)];
  if (line === undefined) return err;

  return new UsherClientError(
    err.code,
    err.status,
    `line ${line}: ${err.message}`,
    { field: err.field, cause: err },
  );
}
