// The bench's AMQP 0-9-1 driver, for Usher and any other AMQP broker.
// Cheap on purpose, so the generator does not eat the broker's cores:
// each publish is one copy of a frame set encoded once (method, header,
// body) with the stamp patched in; a tick's publishes leave in one socket
// write; confirms and acks are settled with `multiple` where the protocol
// allows, one ack frame per tick.

import { FRAME_OVERHEAD } from '../amqp/constants.js';
import { tableFrom } from '../amqp/field-table.js';
import { type BasicProperties, contentHeaderSize } from '../amqp/content.js';
import { encodeContent, encodeMethodFrame, methodFrameSize } from '../amqp/frame-encoder.js';
import type { Inbound } from '../amqp/frame-decoder.js';
import type { Method } from '../amqp/methods.js';
import { AmqpLink, CHANNEL } from './amqp-link.js';
import type {
  BenchSink,
  ConsumerDriver,
  ConsumerSettings,
  Driver,
  ProducerDriver,
  PublishSettings,
} from './driver.js';
import { STAMP_BYTES, writeStamp } from './stamp.js';

/** Publishes gathered before a write even within one tick. */
const BATCH_BYTES = 256 * 1024;

export class AmqpDriver implements Driver {
  readonly protocol = 'amqp';

  constructor(readonly url: string) {}

  async setup(
    queues: readonly string[],
    options: { priorities: boolean; persistent: boolean },
  ): Promise<void> {
    const link = await AmqpLink.open(this.url);
    try {
      // RabbitMQ orders by priority only in queues declared for it.
      const args = tableFrom(options.priorities ? { 'x-max-priority': 9 } : {});
      for (const queue of queues) {
        await link.call(
          {
            name: 'queue.declare',
            queue,
            passive: false,
            durable: options.persistent,
            exclusive: false,
            autoDelete: false,
            noWait: false,
            arguments: args,
          },
          'queue.declare-ok',
        );
      }
    } finally {
      await link.close();
    }
  }

  async teardown(queues: readonly string[]): Promise<void> {
    const link = await AmqpLink.open(this.url);
    try {
      for (const queue of queues) {
        await link.call(
          { name: 'queue.delete', queue, ifUnused: false, ifEmpty: false, noWait: false },
          'queue.delete-ok',
        );
      }
    } finally {
      await link.close();
    }
  }

  async producer(
    index: number,
    queue: string,
    settings: PublishSettings,
    sink: BenchSink,
  ): Promise<ProducerDriver> {
    const link = await AmqpLink.open(this.url);
    await link.call({ name: 'confirm.select', noWait: false }, 'confirm.select-ok');
    return new AmqpProducer(link, index, queue, settings, sink);
  }

  async consumer(
    queue: string,
    settings: ConsumerSettings,
    sink: BenchSink,
  ): Promise<ConsumerDriver> {
    const link = await AmqpLink.open(this.url);
    const consumer = new AmqpConsumer(link, settings, sink);
    await link.call(
      { name: 'basic.qos', prefetchSize: 0, prefetchCount: settings.prefetch, global: false },
      'basic.qos-ok',
    );
    await link.call(
      {
        name: 'basic.consume',
        queue,
        consumerTag: 'bench',
        noLocal: false,
        noAck: settings.ackMode === 'none',
        exclusive: false,
        noWait: false,
        arguments: new Map(),
      },
      'basic.consume-ok',
    );
    return consumer;
  }
}

interface Template {
  frames: Buffer;
  stampAt: number;
}

class AmqpProducer implements ProducerDriver {
  readonly #templates = new Map<number, Template>();
  #batch = Buffer.allocUnsafe(BATCH_BYTES);
  #used = 0;
  #pushScheduled = false;
  /** Delivery tag n is this producer's seq n - 1: both count publishes. */
  #nextTag = 1;
  #lowestUnsettled = 1;
  readonly #settledEarly = new Set<number>();

  constructor(
    private readonly link: AmqpLink,
    private readonly index: number,
    private readonly queue: string,
    private readonly settings: PublishSettings,
    private readonly sink: BenchSink,
  ) {
    link.onFrame = (frame) => this.#onFrame(frame);
    link.onClose = (error) => sink.failed(error);
  }

  publish(seq: number, intendedMs: number, priority: number): void {
    if (seq !== this.#nextTag - 1) {
      throw new Error(`AMQP producer ${this.index}: seq ${seq} out of turn (tag ${this.#nextTag})`);
    }
    this.#nextTag++;
    const template = this.#template(priority);
    const size = template.frames.length;
    if (this.#used + size > this.#batch.length) this.#push();
    if (size > this.#batch.length) {
      const frames = Buffer.from(template.frames);
      writeStamp(frames, template.stampAt, this.index, seq, intendedMs);
      this.link.writeNow(frames);
      return;
    }
    template.frames.copy(this.#batch, this.#used);
    writeStamp(this.#batch, this.#used + template.stampAt, this.index, seq, intendedMs);
    this.#used += size;
    if (!this.#pushScheduled) {
      this.#pushScheduled = true;
      setImmediate(() => this.#push());
    }
  }

  async close(): Promise<void> {
    this.#push();
    await this.link.close();
  }

  #push(): void {
    this.#pushScheduled = false;
    if (this.#used === 0) return;
    this.link.writeNow(this.#batch.subarray(0, this.#used));
    // The socket may hold the old buffer until written: take a new one.
    this.#batch = Buffer.allocUnsafe(BATCH_BYTES);
    this.#used = 0;
  }

  #template(priority: number): Template {
    let template = this.#templates.get(priority);
    if (template !== undefined) return template;
    const method: Method = {
      name: 'basic.publish',
      exchange: '',
      routingKey: this.queue,
      mandatory: false,
      immediate: false,
    };
    const properties: BasicProperties = {
      deliveryMode: this.settings.persistent ? 2 : 1,
      priority,
    };
    const frames = encodeContent(
      CHANNEL,
      method,
      properties,
      this.settings.body,
      this.link.frameMax,
    );
    // method frame, header frame, then the first body frame's payload.
    const stampAt = methodFrameSize(method) + FRAME_OVERHEAD + contentHeaderSize(properties) + 7;
    template = { frames, stampAt };
    this.#templates.set(priority, template);
    return template;
  }

  #onFrame(frame: Inbound): void {
    if (frame.type !== 'method') return;
    const method = frame.method;
    if (method.name === 'basic.ack' || method.name === 'basic.nack') {
      this.#settle(method.deliveryTag, method.multiple, method.name === 'basic.ack');
    }
  }

  #settle(tag: number, multiple: boolean, ok: boolean): void {
    if (multiple) {
      for (let t = this.#lowestUnsettled; t <= tag; t++) {
        if (!this.#settledEarly.delete(t)) this.sink.confirmed(this.index, t - 1, ok);
      }
      if (tag >= this.#lowestUnsettled) this.#lowestUnsettled = tag + 1;
    } else if (tag >= this.#lowestUnsettled && !this.#settledEarly.has(tag)) {
      this.sink.confirmed(this.index, tag - 1, ok);
      this.#settledEarly.add(tag);
    }
    while (this.#settledEarly.delete(this.#lowestUnsettled)) this.#lowestUnsettled++;
  }
}

class AmqpConsumer implements ConsumerDriver {
  #tag = 0;
  /** Body bytes of the current delivery, when its first frame was short. */
  #parts: Buffer[] = [];
  #ackUpTo = 0;
  #ackScheduled = false;

  constructor(
    private readonly link: AmqpLink,
    private readonly settings: ConsumerSettings,
    private readonly sink: BenchSink,
  ) {
    link.onFrame = (frame) => this.#onFrame(frame);
    link.onClose = (error) => sink.failed(error);
  }

  async close(): Promise<void> {
    this.#sendAck();
    await this.link.close();
  }

  #onFrame(frame: Inbound): void {
    if (frame.type === 'method' && frame.method.name === 'basic.deliver') {
      this.#tag = frame.method.deliveryTag;
      this.#parts = [];
    } else if (frame.type === 'body') {
      this.#parts.push(frame.body);
      if (frame.last) this.#delivered();
    }
  }

  #delivered(): void {
    const parts = this.#parts;
    this.#parts = [];
    // Only the stamp is read: the first frame holds it whole unless the
    // frame size is tiny.
    const body =
      parts[0].length >= STAMP_BYTES || parts.length === 1 ? parts[0] : Buffer.concat(parts);
    const accept = this.sink.consumed(body);
    if (this.settings.ackMode === 'none') return;
    if (!accept) {
      // Sent now, ahead of the tick's ack: `multiple` then skips it.
      this.link.write(
        encodeMethodFrame(CHANNEL, {
          name: 'basic.nack',
          deliveryTag: this.#tag,
          multiple: false,
          requeue: true,
        }),
      );
      return;
    }
    this.#ackUpTo = this.#tag;
    if (!this.#ackScheduled) {
      this.#ackScheduled = true;
      setImmediate(() => this.#sendAck());
    }
  }

  #sendAck(): void {
    this.#ackScheduled = false;
    if (this.#ackUpTo === 0) return;
    this.link.write(
      encodeMethodFrame(CHANNEL, { name: 'basic.ack', deliveryTag: this.#ackUpTo, multiple: true }),
    );
    this.#ackUpTo = 0;
  }
}
