// The bench's HTTP driver for Usher: publishes in batches (POST
// .../messages/batch, up to 1000 a request), receives in batches with a
// long poll and acks each batch with one request. fetch (undici) keeps the
// connections alive. Cheaper per message than one request each, but still
// JSON and base64: the AMQP driver costs the generator less.

import type {
  BenchSink,
  ConsumerDriver,
  ConsumerSettings,
  Driver,
  ProducerDriver,
  PublishSettings,
} from './driver.js';
import { writeStamp } from './stamp.js';

const MAX_BATCH = 1000;
const RECEIVE_WAIT_MS = 500;

export class HttpBenchError extends Error {
  override name = 'HttpBenchError';
}

export class HttpDriver implements Driver {
  readonly protocol = 'http';
  readonly #base: string;

  constructor(url: string) {
    this.#base = url.replace(/\/+$/, '');
  }

  async setup(queues: readonly string[]): Promise<void> {
    for (const queue of queues) {
      // Unlimited attempts: nacked messages come back, never dead-letter.
      await request(this.#base, 'PUT', `/queues/${queue}`, { maxAttempts: 0 });
    }
  }

  async teardown(queues: readonly string[]): Promise<void> {
    for (const queue of queues) await request(this.#base, 'DELETE', `/queues/${queue}`);
  }

  /** Usher's /metrics carries its process CPU (prom-client default metrics). */
  async brokerCpuSeconds(): Promise<number | null> {
    try {
      const response = await fetch(`${this.#base}/metrics`);
      const text = await response.text();
      const match = /^usher_process_cpu_seconds_total\s+([\d.e+-]+)$/m.exec(text);
      return match === null ? null : Number(match[1]);
    } catch {
      return null;
    }
  }

  async producer(index: number, queue: string, settings: PublishSettings, sink: BenchSink) {
    return new HttpProducer(this.#base, index, queue, settings.body, sink);
  }

  async consumer(queue: string, settings: ConsumerSettings, sink: BenchSink) {
    const consumer = new HttpConsumer(this.#base, queue, settings, sink);
    consumer.start();
    return consumer;
  }
}

class HttpProducer implements ProducerDriver {
  #seqs: number[] = [];
  #parts: string[] = [];
  #scheduled = false;
  readonly #body: Buffer;
  readonly #running = new Set<Promise<void>>();

  constructor(
    private readonly base: string,
    private readonly index: number,
    private readonly queue: string,
    body: Buffer,
    private readonly sink: BenchSink,
  ) {
    this.#body = Buffer.from(body);
  }

  publish(seq: number, intendedMs: number, priority: number): void {
    writeStamp(this.#body, 0, this.index, seq, intendedMs);
    this.#seqs.push(seq);
    this.#parts.push(`{"bodyBase64":"${this.#body.toString('base64')}","priority":${priority}}`);
    if (this.#parts.length >= MAX_BATCH) this.#send();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#send());
    }
  }

  async close(): Promise<void> {
    this.#send();
    await Promise.allSettled([...this.#running]);
  }

  #send(): void {
    this.#scheduled = false;
    if (this.#parts.length === 0) return;
    const seqs = this.#seqs;
    const json = `{"messages":[${this.#parts.join(',')}]}`;
    this.#seqs = [];
    this.#parts = [];
    const sent = request(this.base, 'POST', `/queues/${this.queue}/messages/batch`, json).then(
      () => {
        for (const seq of seqs) this.sink.confirmed(this.index, seq, true);
      },
      (err: Error) => {
        // A refused batch: none of it was stored (the route is all or nothing).
        for (const seq of seqs) this.sink.confirmed(this.index, seq, false);
        if (!(err instanceof HttpStatusError)) this.sink.failed(err);
      },
    );
    this.#running.add(sent);
    void sent.finally(() => this.#running.delete(sent));
  }
}

interface Received {
  receipt: string;
  body?: string;
  bodyBase64?: string;
}

class HttpConsumer implements ConsumerDriver {
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();
  readonly #abort = new AbortController();

  constructor(
    private readonly base: string,
    private readonly queue: string,
    private readonly settings: ConsumerSettings,
    private readonly sink: BenchSink,
  ) {}

  start(): void {
    this.#loop = this.#run().catch((err: Error) => {
      if (!this.#stopped) this.sink.failed(err);
    });
  }

  async close(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const max = Math.min(MAX_BATCH, this.settings.prefetch);
    const path = `/queues/${this.queue}`;
    while (!this.#stopped) {
      const answer = (await request(
        this.base,
        'POST',
        `${path}/receive`,
        { max, waitMs: RECEIVE_WAIT_MS },
        this.#abort.signal,
      )) as { messages: Received[] };
      const acks: string[] = [];
      const nacks: string[] = [];
      for (const message of answer.messages) {
        // Our bodies carry no content-type: bytes come back as base64, or
        // as a string when they happen to be UTF-8 (which round-trips).
        const body =
          message.bodyBase64 !== undefined
            ? Buffer.from(message.bodyBase64, 'base64')
            : Buffer.from(message.body ?? '', 'utf8');
        (this.sink.consumed(body) ? acks : nacks).push(message.receipt);
      }
      if (acks.length > 0) await request(this.base, 'POST', `${path}/ack`, { receipts: acks });
      for (const receipt of nacks) {
        await request(this.base, 'POST', `${path}/nack`, { receipt, requeue: true, delayMs: 0 });
      }
    }
  }
}

export class HttpStatusError extends HttpBenchError {}

/**
 * fetch says only "fetch failed"; the socket's reason (ECONNRESET when the
 * broker died mid-run, ECONNREFUSED when it is gone) is down its causes.
 */
export function fetchFailure(err: unknown): string {
  const reasons: string[] = [];
  for (let e = err as (Error & { code?: string }) | undefined; e !== undefined; ) {
    const message = e.message ?? '';
    const part =
      e.code === undefined || message.includes(e.code) ? message : `${message} (${e.code})`.trim();
    if (part !== '' && !reasons.includes(part)) reasons.push(part);
    e = e.cause as (Error & { code?: string }) | undefined;
    if (reasons.length > 4) break;
  }
  return reasons.join(': ');
}

async function request(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<unknown> {
  let response: Response;
  let text: string;
  try {
    response = await fetch(base + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body:
        body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal,
    });
    text = await response.text();
  } catch (err) {
    if (signal?.aborted === true) throw err;
    throw new HttpBenchError(`${method} ${path}: ${fetchFailure(err)}`, { cause: err });
  }
  if (!response.ok) {
    throw new HttpStatusError(
      `${method} ${path} answered ${response.status}: ${text.slice(0, 200)}`,
    );
  }
  return text === '' ? undefined : JSON.parse(text);
}
