// One interface over the two client libraries the suite drives, amqplib
// and @cloudamqp/amqp-client, so each case is written once. Everything a
// case sees is normalised here: messages, properties, header values and
// the reply code a server closed a channel or connection with.

import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';
import type { AMQPProperties, Field } from '@cloudamqp/amqp-client';
import amqplib from 'amqplib';

export type ClientName = 'amqplib' | 'amqp-client';

/** Properties as cases write and read them, whichever client. */
export interface Props {
  contentType?: string;
  contentEncoding?: string;
  headers?: Record<string, unknown>;
  deliveryMode?: number;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  expiration?: string;
  messageId?: string;
  /** Seconds since the epoch, as on the wire. */
  timestamp?: number;
  type?: string;
  userId?: string;
  appId?: string;
}

export interface Msg {
  body: string;
  deliveryTag: number;
  redelivered: boolean;
  exchange: string;
  routingKey: string;
  consumerTag?: string;
  /** basic.get-ok's message-count. */
  messageCount?: number;
  /** basic.return's reply code and text. */
  replyCode?: number;
  replyText?: string;
  properties: Props;
}

/** Why a channel or connection ended: the server's reply code, or 0. */
export interface Closed {
  code: number;
  text: string;
  /** 'channel' for channel.close, 'connection' for connection.close. */
  scope: 'channel' | 'connection' | 'client';
}

type Args = Record<string, unknown>;

export interface QueueOptions {
  passive?: boolean;
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  args?: Record<string, unknown>;
}

export interface ExchangeOptions {
  passive?: boolean;
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  args?: Record<string, unknown>;
}

export interface ConsumeOptions {
  noAck?: boolean;
  tag?: string;
  exclusive?: boolean;
  args?: Record<string, unknown>;
}

export interface Chan {
  /** Settles when the server or the client closes the channel. */
  readonly closed: Promise<Closed>;
  queueDeclare(name: string, options?: QueueOptions):
    Promise<{ queue: string; messageCount: number; consumerCount: number }>;
  queueBind(queue: string, exchange: string, key: string, args?: Args): Promise<void>;
  queueUnbind(queue: string, exchange: string, key: string, args?: Args): Promise<void>;
  queuePurge(queue: string): Promise<number>;
  queueDelete(queue: string, options?: { ifUnused?: boolean; ifEmpty?: boolean }): Promise<number>;
  exchangeDeclare(name: string, type: string, options?: ExchangeOptions): Promise<void>;
  exchangeDelete(name: string, options?: { ifUnused?: boolean }): Promise<void>;
  exchangeBind(destination: string, source: string, key: string, args?: Args): Promise<void>;
  exchangeUnbind(destination: string, source: string, key: string, args?: Args): Promise<void>;
  /** Resolves once written, or once confirmed on a confirm channel. */
  publish(exchange: string, key: string, body: string, props?: Props,
    mandatory?: boolean): Promise<void>;
  onReturn(listener: (message: Msg) => void): void;
  /** `size`: prefetch-size in bytes; amqplib always sends 0. */
  qos(count: number, global?: boolean, size?: number): Promise<void>;
  /** `onCancel` runs when the server cancels the consumer. */
  consume(queue: string, options: ConsumeOptions, onMessage: (message: Msg) => void,
    onCancel?: () => void): Promise<string>;
  cancel(tag: string): Promise<void>;
  get(queue: string, options?: { noAck?: boolean }): Promise<Msg | null>;
  ack(tag: number, multiple?: boolean): void;
  nack(tag: number, multiple?: boolean, requeue?: boolean): void;
  reject(tag: number, requeue?: boolean): void;
  /** basic.recover; amqplib always asks for requeue. */
  recover(requeue: boolean): Promise<void>;
  /** channel.flow, where the client can send it. */
  readonly flow?: (active: boolean) => Promise<boolean>;
  /** tx.select, tx.commit and tx.rollback, where the client can send them. */
  readonly tx?: { select(): Promise<void>; commit(): Promise<void>; rollback(): Promise<void> };
  close(): Promise<void>;
}

export interface Conn {
  /** connection.start's server-properties, where the client keeps them. */
  readonly serverProperties: Record<string, unknown> | null;
  readonly closed: Promise<Closed>;
  channel(options?: { confirm?: boolean }): Promise<Chan>;
  close(): Promise<void>;
}

export interface Client {
  readonly name: ClientName;
  connect(url: string): Promise<Conn>;
  /**
   * Typed header values in this client's notation, and what the client
   * hands back after a round trip through the broker.
   */
  readonly typedHeaders: { sent: Record<string, unknown>; received: Record<string, unknown> };
}

/** The reply code in an error either client raised for a close. */
export function replyCodeOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return code;
  const match = /\((\d{3})\)\s*$/.exec(String((err as Error | null)?.message ?? err));
  return match === null ? undefined : Number(match[1]);
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

// --- amqplib --------------------------------------------------------------

type AmqplibMessage = amqplib.Message & { fields: Record<string, unknown> };

function fromAmqplib(message: AmqplibMessage): Msg {
  const f = message.fields;
  const p = message.properties as unknown as Record<string, unknown>;
  const props: Props = {};
  for (const key of ['contentType', 'contentEncoding', 'deliveryMode', 'priority',
    'correlationId', 'replyTo', 'expiration', 'messageId', 'timestamp', 'type',
    'userId', 'appId'] as const) {
    if (p[key] !== undefined) (props as Record<string, unknown>)[key] = p[key];
  }
  if (p.headers !== undefined) props.headers = normalise(p.headers) as Record<string, unknown>;
  return {
    body: message.content.toString(),
    deliveryTag: f.deliveryTag as number,
    redelivered: f.redelivered as boolean,
    exchange: f.exchange as string,
    routingKey: f.routingKey as string,
    ...(f.consumerTag !== undefined ? { consumerTag: f.consumerTag as string } : {}),
    ...(f.messageCount !== undefined ? { messageCount: f.messageCount as number } : {}),
    ...(f.replyCode !== undefined
      ? { replyCode: f.replyCode as number, replyText: f.replyText as string } : {}),
    properties: props,
  };
}

/** A message object amqplib's ack/nack/reject accept: only the tag counts. */
const byTag = (deliveryTag: number) => ({ fields: { deliveryTag } }) as unknown as amqplib.Message;

class AmqplibChan implements Chan {
  readonly closed: Promise<Closed>;

  constructor(private readonly ch: amqplib.Channel, private readonly confirming: boolean) {
    const done = deferred<Closed>();
    let error: Closed | null = null;
    ch.on('error', (err: Error & { code?: number }) => {
      const scope = /^Connection closed/.test(err.message) ? 'connection' : 'channel';
      error = { code: err.code ?? 0, text: err.message, scope };
    });
    ch.on('close', () => done.resolve(error ?? { code: 0, text: 'closed', scope: 'client' }));
    this.closed = done.promise;
  }

  async queueDeclare(name: string, o: QueueOptions = {}) {
    if (o.passive) return this.ch.checkQueue(name);
    return this.ch.assertQueue(name, {
      durable: o.durable ?? false, exclusive: o.exclusive ?? false,
      autoDelete: o.autoDelete ?? false, arguments: o.args,
    });
  }
  async queueBind(q: string, x: string, key: string, args?: Record<string, unknown>) {
    await this.ch.bindQueue(q, x, key, args);
  }
  async queueUnbind(q: string, x: string, key: string, args?: Record<string, unknown>) {
    await this.ch.unbindQueue(q, x, key, args);
  }
  async queuePurge(q: string) {
    return (await this.ch.purgeQueue(q)).messageCount;
  }
  async queueDelete(q: string, o: { ifUnused?: boolean; ifEmpty?: boolean } = {}) {
    return (await this.ch.deleteQueue(q, o)).messageCount;
  }
  async exchangeDeclare(name: string, type: string, o: ExchangeOptions = {}) {
    if (o.passive) {
      await this.ch.checkExchange(name);
      return;
    }
    await this.ch.assertExchange(name, type, {
      durable: o.durable ?? false, autoDelete: o.autoDelete ?? false,
      internal: o.internal ?? false, arguments: o.args,
    });
  }
  async exchangeDelete(name: string, o: { ifUnused?: boolean } = {}) {
    await this.ch.deleteExchange(name, o);
  }
  async exchangeBind(d: string, s: string, key: string, args?: Record<string, unknown>) {
    await this.ch.bindExchange(d, s, key, args);
  }
  async exchangeUnbind(d: string, s: string, key: string, args?: Record<string, unknown>) {
    await this.ch.unbindExchange(d, s, key, args);
  }

  publish(exchange: string, key: string, body: string, props: Props = {},
    mandatory = false): Promise<void> {
    const options = { ...props, mandatory } as amqplib.Options.Publish;
    if (!this.confirming) {
      this.ch.publish(exchange, key, Buffer.from(body), options);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      (this.ch as amqplib.ConfirmChannel).publish(exchange, key, Buffer.from(body), options,
        (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()));
    });
  }
  onReturn(listener: (message: Msg) => void) {
    this.ch.on('return', (m: AmqplibMessage) => listener(fromAmqplib(m)));
  }
  async qos(count: number, global = false) {
    await this.ch.prefetch(count, global);
  }
  async consume(queue: string, o: ConsumeOptions, onMessage: (m: Msg) => void, onCancel?: () => void) {
    const reply = await this.ch.consume(queue, (m) => {
      if (m === null) onCancel?.();
      else onMessage(fromAmqplib(m as AmqplibMessage));
    }, { noAck: o.noAck ?? false, consumerTag: o.tag, exclusive: o.exclusive ?? false,
      arguments: o.args });
    return reply.consumerTag;
  }
  async cancel(tag: string) {
    await this.ch.cancel(tag);
  }
  async get(queue: string, o: { noAck?: boolean } = {}) {
    const m = await this.ch.get(queue, { noAck: o.noAck ?? false });
    return m === false ? null : fromAmqplib(m as AmqplibMessage);
  }
  ack(tag: number, multiple = false) {
    this.ch.ack(byTag(tag), multiple);
  }
  nack(tag: number, multiple = false, requeue = true) {
    this.ch.nack(byTag(tag), multiple, requeue);
  }
  reject(tag: number, requeue = true) {
    this.ch.reject(byTag(tag), requeue);
  }
  async recover(requeue: boolean) {
    if (!requeue) throw new Error('amqplib sends basic.recover with requeue=true only');
    await this.ch.recover();
  }
  async close() {
    await this.ch.close();
  }
}

class AmqplibConn implements Conn {
  readonly closed: Promise<Closed>;

  constructor(private readonly model: amqplib.ChannelModel) {
    const done = deferred<Closed>();
    model.on('error', () => {});
    model.on('close', (err?: Error & { code?: number }) => done.resolve(err === undefined
      ? { code: 0, text: 'closed', scope: 'client' }
      : { code: err.code ?? 0, text: err.message, scope: 'connection' }));
    this.closed = done.promise;
  }

  get serverProperties() {
    return normalise(this.model.connection.serverProperties) as Record<string, unknown>;
  }
  async channel(o: { confirm?: boolean } = {}) {
    const ch = o.confirm ? await this.model.createConfirmChannel() : await this.model.createChannel();
    return new AmqplibChan(ch, o.confirm ?? false);
  }
  async close() {
    await this.model.close();
  }
}

export const amqplibClient: Client = {
  name: 'amqplib',
  async connect(url) {
    return new AmqplibConn(await amqplib.connect(url));
  },
  typedHeaders: {
    sent: {
      str: 'text', yes: true, no: false, nothing: null,
      i8: { '!': 'int8', value: -5 }, u8: { '!': 'uint8', value: 200 },
      i16: { '!': 'int16', value: -300 }, u16: { '!': 'uint16', value: 60000 },
      i32: { '!': 'int32', value: -70000 }, u32: { '!': 'uint32', value: 4000000000 },
      i64: { '!': 'int64', value: 2 ** 40 }, f32: { '!': 'float', value: 1.5 },
      f64: 0.1, ts: { '!': 'timestamp', value: 1700000000 },
      dec: { '!': 'decimal', value: { places: 2, digits: 12345 } },
      bytes: Buffer.from([0, 1, 255]), list: ['a', 1, true], table: { inner: 'x', n: 7 },
    },
    received: {
      str: 'text', yes: true, no: false, nothing: null, i8: -5, u8: 200, i16: -300, u16: 60000,
      i32: -70000, u32: 4000000000, i64: 2 ** 40, f32: 1.5, f64: 0.1, ts: { timestamp: 1700000000 },
      dec: { decimal: [2, 12345] }, bytes: { bytes: '0001ff' }, list: ['a', 1, true],
      table: { inner: 'x', n: 7 },
    },
  },
};

// --- @cloudamqp/amqp-client -----------------------------------------------

function fromCloud(message: AMQPMessage): Msg {
  const p = message.properties;
  const props: Props = {};
  for (const key of ['contentType', 'contentEncoding', 'deliveryMode', 'priority',
    'correlationId', 'replyTo', 'expiration', 'messageId', 'type', 'userId', 'appId'] as const) {
    if (p[key] !== undefined) (props as Record<string, unknown>)[key] = p[key];
  }
  if (p.timestamp !== undefined) props.timestamp = Math.floor(p.timestamp.getTime() / 1000);
  if (p.headers !== undefined) props.headers = normalise(p.headers) as Record<string, unknown>;
  return {
    body: message.bodyToString() ?? '',
    deliveryTag: message.deliveryTag,
    redelivered: message.redelivered,
    exchange: message.exchange,
    routingKey: message.routingKey,
    ...(message.consumerTag ? { consumerTag: message.consumerTag } : {}),
    ...(message.messageCount !== undefined ? { messageCount: message.messageCount } : {}),
    ...(message.replyCode !== undefined
      ? { replyCode: message.replyCode, replyText: message.replyText } : {}),
    properties: props,
  };
}

function toCloud(props: Props): AMQPProperties {
  const { timestamp, headers, ...rest } = props;
  return {
    ...rest,
    ...(timestamp !== undefined ? { timestamp: new Date(timestamp * 1000) } : {}),
    ...(headers !== undefined ? { headers: headers as Record<string, Field> } : {}),
  };
}

/** "channel 1 closed: NOT_FOUND - no queue 'x' in vhost '/' (404)" */
function closedFrom(message: string): Closed {
  const scope = /connection closed/i.test(message) ? 'connection' : 'channel';
  return { code: replyCodeOf(message) ?? 0, text: message, scope };
}

class CloudChan implements Chan {
  readonly closed: Promise<Closed>;
  private readonly done = deferred<Closed>();

  constructor(private readonly ch: AMQPChannel) {
    this.closed = this.done.promise;
    ch.onerror = (reason) => this.done.resolve(closedFrom(reason));
  }

  async queueDeclare(name: string, o: QueueOptions = {}) {
    const ok = await this.ch.queueDeclare(name, {
      passive: o.passive ?? false, durable: o.durable ?? false,
      exclusive: o.exclusive ?? false, autoDelete: o.autoDelete ?? false,
    }, o.args ?? {});
    return { queue: ok.name, messageCount: ok.messageCount, consumerCount: ok.consumerCount };
  }
  queueBind(q: string, x: string, key: string, args?: Record<string, unknown>) {
    return this.ch.queueBind(q, x, key, args ?? {});
  }
  queueUnbind(q: string, x: string, key: string, args?: Record<string, unknown>) {
    return this.ch.queueUnbind(q, x, key, args ?? {});
  }
  async queuePurge(q: string) {
    return (await this.ch.queuePurge(q)).messageCount;
  }
  async queueDelete(q: string, o: { ifUnused?: boolean; ifEmpty?: boolean } = {}) {
    return (await this.ch.queueDelete(q, o)).messageCount;
  }
  exchangeDeclare(name: string, type: string, o: ExchangeOptions = {}) {
    return this.ch.exchangeDeclare(name, type, {
      passive: o.passive ?? false, durable: o.durable ?? false,
      autoDelete: o.autoDelete ?? false, internal: o.internal ?? false,
    }, o.args ?? {});
  }
  exchangeDelete(name: string, o: { ifUnused?: boolean } = {}) {
    return this.ch.exchangeDelete(name, o);
  }
  exchangeBind(d: string, s: string, key: string, args?: Record<string, unknown>) {
    return this.ch.exchangeBind(d, s, key, args ?? {});
  }
  exchangeUnbind(d: string, s: string, key: string, args?: Record<string, unknown>) {
    return this.ch.exchangeUnbind(d, s, key, args ?? {});
  }
  async publish(exchange: string, key: string, body: string, props: Props = {}, mandatory = false) {
    await this.ch.basicPublish(exchange, key, body, toCloud(props), mandatory);
  }
  onReturn(listener: (message: Msg) => void) {
    this.ch.onReturn = (m) => listener(fromCloud(m));
  }
  qos(count: number, global = false, size = 0) {
    return this.ch.basicQos(count, size, global);
  }
  async consume(queue: string, o: ConsumeOptions, onMessage: (m: Msg) => void, onCancel?: () => void) {
    const consumer = await this.ch.basicConsume(queue,
      { noAck: o.noAck ?? false, tag: o.tag ?? '', exclusive: o.exclusive ?? false, args: o.args ?? {} },
      (m) => onMessage(fromCloud(m)));
    consumer.wait().then(() => {}, (err: unknown) => {
      if (/cancelled by the server/.test(String((err as Error).message))) onCancel?.();
    });
    return consumer.tag;
  }
  async cancel(tag: string) {
    await this.ch.basicCancel(tag);
  }
  async get(queue: string, o: { noAck?: boolean } = {}) {
    const m = await this.ch.basicGet(queue, { noAck: o.noAck ?? false });
    return m === null ? null : fromCloud(m);
  }
  ack(tag: number, multiple = false) {
    this.ch.basicAck(tag, multiple).catch(() => {});
  }
  nack(tag: number, multiple = false, requeue = true) {
    this.ch.basicNack(tag, requeue, multiple).catch(() => {});
  }
  reject(tag: number, requeue = true) {
    this.ch.basicReject(tag, requeue).catch(() => {});
  }
  recover(requeue: boolean) {
    return this.ch.basicRecover(requeue);
  }
  readonly flow = (active: boolean) => this.ch.basicFlow(active);
  readonly tx = {
    select: () => this.ch.txSelect(),
    commit: () => this.ch.txCommit(),
    rollback: () => this.ch.txRollback(),
  };
  async close() {
    await this.ch.close();
    this.ended({ code: 0, text: 'closed', scope: 'client' });
  }
  ended(closed: Closed) {
    this.done.resolve(closed);
  }
}

class CloudConn implements Conn {
  readonly serverProperties = null;
  readonly closed: Promise<Closed>;
  private readonly done = deferred<Closed>();
  private readonly channels: CloudChan[] = [];

  constructor(private readonly client: AMQPClient) {
    this.closed = this.done.promise;
    client.onerror = (err) => {
      if (/^connection closed/.test(err.message)) this.done.resolve(closedFrom(err.message));
    };
    client.ondisconnect = (err) => this.done.resolve(err === undefined
      ? { code: 0, text: 'closed', scope: 'client' } : closedFrom(err.message));
  }

  async channel(o: { confirm?: boolean } = {}) {
    const ch = await this.client.channel();
    if (o.confirm) await ch.confirmSelect();
    const chan = new CloudChan(ch);
    this.channels.push(chan);
    return chan;
  }
  async close() {
    await this.client.close();
    // The client tells no one of channels ended by its own close.
    for (const chan of this.channels) chan.ended({ code: 0, text: 'closed', scope: 'client' });
    this.done.resolve({ code: 0, text: 'closed', scope: 'client' });
  }
}

export const cloudClient: Client = {
  name: 'amqp-client',
  async connect(url) {
    const client = new AMQPClient(url);
    await client.connect();
    return new CloudConn(client);
  },
  typedHeaders: {
    // Its encoder picks the type: I for integers below 2^31 (and, wrongly,
    // up to 2^32), l for bigint, f below 2^32 else d, T for Date, x, A, F.
    sent: {
      str: 'text', yes: true, no: false, nothing: null, int: -70000, big: 2n ** 40n,
      float: 1.5, ts: new Date(1700000000 * 1000), bytes: new Uint8Array([0, 1, 255]),
      list: ['a', 1, true], table: { inner: 'x', n: 7 },
    },
    received: {
      str: 'text', yes: true, no: false, nothing: null, int: -70000, big: 2 ** 40, float: 1.5,
      ts: { timestamp: 1700000000 }, bytes: { bytes: '0001ff' }, list: ['a', 1, true],
      table: { inner: 'x', n: 7 },
    },
  },
};

export const CLIENTS: readonly Client[] = [amqplibClient, cloudClient];

// --- header values ----------------------------------------------------------

/**
 * Header values in one notation for assertions: timestamps as
 * { timestamp: seconds }, decimals as { decimal: [places, digits] },
 * byte arrays as { bytes: hex }; the rest as the client decoded them.
 */
export function normalise(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return { timestamp: Math.floor(value.getTime() / 1000) };
  if (value instanceof Uint8Array) return { bytes: Buffer.from(value).toString('hex') };
  if (Array.isArray(value)) return value.map(normalise);
  const record = value as Record<string, unknown>;
  if (record['!'] === 'timestamp') return { timestamp: Number(record.value) };
  if (record['!'] === 'decimal') {
    const d = record.value as { places: number; digits: number };
    return { decimal: [d.places, d.digits] };
  }
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, normalise(v)]));
}
