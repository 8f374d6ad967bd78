// What the load loop needs from a protocol: queues to set up, producers
// that publish stamped messages and report confirms, consumers that hand
// each body over and settle it as told. Callbacks, not promises: no
// allocation per message beyond the bytes themselves.

export interface BenchSink {
  /** A publish was confirmed (ok) or refused by the broker. */
  confirmed(producer: number, seq: number, ok: boolean): void;
  /** A message arrived; answers true to ack it, false to nack (requeue). */
  consumed(body: Buffer): boolean;
  /** A connection failed; the run ends with this error. */
  failed(error: Error): void;
}

export interface PublishSettings {
  /** The message body, stamp room included at its start. */
  body: Buffer;
  /** Persistent messages (AMQP delivery-mode 2) and durable queues. */
  persistent: boolean;
}

export interface ProducerDriver {
  /** Sends message `seq` of this producer; intendedMs goes in its stamp. */
  publish(seq: number, intendedMs: number, priority: number): void;
  close(): Promise<void>;
}

export interface ConsumerDriver {
  close(): Promise<void>;
}

export interface ConsumerSettings {
  prefetch: number;
  /** 'manual': ack each (batched); 'none': the broker considers it done on send. */
  ackMode: 'manual' | 'none';
}

export interface Driver {
  readonly protocol: string;
  setup(
    queues: readonly string[],
    options: { priorities: boolean; persistent: boolean },
  ): Promise<void>;
  producer(
    index: number,
    queue: string,
    settings: PublishSettings,
    sink: BenchSink,
  ): Promise<ProducerDriver>;
  consumer(queue: string, settings: ConsumerSettings, sink: BenchSink): Promise<ConsumerDriver>;
  /** Deletes the run's queues. */
  teardown(queues: readonly string[]): Promise<void>;
  /** The broker's own count of CPU seconds, where it publishes one. */
  brokerCpuSeconds?(): Promise<number | null>;
}
