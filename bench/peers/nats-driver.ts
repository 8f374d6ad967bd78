// bench/compare's driver for NATS JetStream, through the `nats` npm
// client: one stream per queue (memory or file storage), a durable pull
// consumer with explicit acks. Each publish is the client's own promise,
// so this generator costs more per message than the AMQP driver's.

import { AckPolicy, StorageType, connect, type ConsumerMessages, type NatsConnection } from 'nats';

import type {
  BenchSink,
  ConsumerDriver,
  ConsumerSettings,
  Driver,
  ProducerDriver,
  PublishSettings,
} from '../../src/bench/driver.js';
import { writeStamp } from '../../src/bench/stamp.js';

export class NatsDriver implements Driver {
  readonly protocol = 'nats';
  readonly #connections: NatsConnection[] = [];

  constructor(
    private readonly server: string,
    private readonly storage: 'memory' | 'file',
  ) {}

  async #connect(): Promise<NatsConnection> {
    const connection = await connect({ servers: this.server, reconnect: false });
    this.#connections.push(connection);
    return connection;
  }

  async setup(queues: readonly string[]): Promise<void> {
    const jsm = await (await this.#connect()).jetstreamManager();
    for (const name of queues) {
      await jsm.streams.add({
        name,
        subjects: [name],
        storage: this.storage === 'memory' ? StorageType.Memory : StorageType.File,
      });
    }
  }

  async teardown(queues: readonly string[]): Promise<void> {
    const jsm = await (await this.#connect()).jetstreamManager();
    for (const name of queues) await jsm.streams.delete(name).catch(() => false);
    await Promise.allSettled(this.#connections.map((c) => c.close()));
  }

  async producer(
    index: number,
    queue: string,
    settings: PublishSettings,
    sink: BenchSink,
  ): Promise<ProducerDriver> {
    const js = (await this.#connect()).jetstream();
    return {
      publish(seq, intendedMs) {
        const body = Buffer.from(settings.body);
        writeStamp(body, 0, index, seq, intendedMs);
        js.publish(queue, body).then(
          () => sink.confirmed(index, seq, true),
          () => sink.confirmed(index, seq, false),
        );
      },
      close: async () => undefined,
    };
  }

  async consumer(
    queue: string,
    settings: ConsumerSettings,
    sink: BenchSink,
  ): Promise<ConsumerDriver> {
    const connection = await this.#connect();
    const jsm = await connection.jetstreamManager();
    const durable = `bench-${Math.random().toString(36).slice(2, 8)}`;
    await jsm.consumers.add(queue, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      max_ack_pending: settings.prefetch,
    });
    const consumer = await connection.jetstream().consumers.get(queue, durable);
    const messages: ConsumerMessages = await consumer.consume({ max_messages: settings.prefetch });
    const loop = (async () => {
      for await (const message of messages) {
        if (sink.consumed(Buffer.from(message.data))) message.ack();
        else message.nak();
      }
    })().catch((err: Error) => sink.failed(err));
    return {
      close: async () => {
        await messages.close().catch(() => undefined);
        await loop;
      },
    };
  }
}
