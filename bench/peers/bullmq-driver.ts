// bench/compare's driver for BullMQ on Redis: a Queue per producer adds
// jobs (the body as base64 in the job data), a Worker per consumer runs
// them with `prefetch` concurrency. A job that completes is acked; BullMQ
// has no requeueing nack, so compare runs it with --nack-share 0.

import { Queue, Worker } from 'bullmq';

import type {
  BenchSink,
  ConsumerDriver,
  ConsumerSettings,
  Driver,
  ProducerDriver,
  PublishSettings,
} from '../../src/bench/driver.js';
import { writeStamp } from '../../src/bench/stamp.js';

export class BullmqDriver implements Driver {
  readonly protocol = 'bullmq';

  constructor(private readonly port: number) {}

  get #connection() {
    return { host: '127.0.0.1', port: this.port, maxRetriesPerRequest: null };
  }

  async setup(): Promise<void> {}

  async teardown(queues: readonly string[]): Promise<void> {
    for (const name of queues) {
      const queue = new Queue(name, { connection: this.#connection });
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
  }

  async producer(
    index: number,
    name: string,
    settings: PublishSettings,
    sink: BenchSink,
  ): Promise<ProducerDriver> {
    const queue = new Queue(name, { connection: this.#connection });
    await queue.waitUntilReady();
    const body = Buffer.from(settings.body);
    return {
      publish(seq, intendedMs, priority) {
        writeStamp(body, 0, index, seq, intendedMs);
        queue
          .add(
            'm',
            { b: body.toString('base64') },
            {
              removeOnComplete: true,
              removeOnFail: true,
              ...(priority > 0 ? { priority: 10 - priority } : {}),
            },
          )
          .then(
            () => sink.confirmed(index, seq, true),
            () => sink.confirmed(index, seq, false),
          );
      },
      close: () => queue.close(),
    };
  }

  async consumer(
    name: string,
    settings: ConsumerSettings,
    sink: BenchSink,
  ): Promise<ConsumerDriver> {
    const worker = new Worker(
      name,
      async (job) => {
        if (!sink.consumed(Buffer.from(job.data.b as string, 'base64'))) throw new Error('nacked');
      },
      { connection: this.#connection, concurrency: settings.prefetch },
    );
    worker.on('error', (err) => sink.failed(err));
    await worker.waitUntilReady();
    return { close: () => worker.close() };
  }
}
