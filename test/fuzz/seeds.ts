// Builds the seed corpus (test/fuzz/corpus/) from Usher's own encoders:
// valid inputs of every kind, which the mutator then breaks. Written once
// with `npm run fuzz -- --write-corpus`; the files are kept in the repo.

import { encodeContent, encodeMethodFrame, heartbeatFrame } from '../../src/amqp/frame-encoder.js';
import { tableFrom } from '../../src/amqp/field-table.js';
import { encodeRecord, FRAME_HEADER_BYTES } from '../../src/storage/codec.js';
import type { LogRecord } from '../../src/storage/records.js';

export function amqpSeeds(): Record<string, Buffer> {
  const startOk = encodeMethodFrame(0, {
    name: 'connection.start-ok',
    clientProperties: tableFrom({ product: 'fuzz', capabilities: { publisher_confirms: true } }),
    mechanism: 'PLAIN',
    response: Buffer.from('\u0000guest\u0000guest'),
    locale: 'en_US',
  });
  const handshake = Buffer.concat([
    startOk,
    encodeMethodFrame(0, { name: 'connection.tune-ok', channelMax: 2047, frameMax: 131072, heartbeat: 60 }),
    encodeMethodFrame(0, { name: 'connection.open', virtualHost: '/' }),
    encodeMethodFrame(1, { name: 'channel.open' }),
  ]);
  const declare = encodeMethodFrame(1, {
    name: 'queue.declare',
    queue: 'orders',
    passive: false,
    durable: true,
    exclusive: false,
    autoDelete: false,
    noWait: false,
    arguments: tableFrom({ 'x-max-priority': 9, 'x-dead-letter-exchange': '', nested: { a: [1, 'b', { c: true }] } }),
  });
  const publish = encodeContent(
    1,
    { name: 'basic.publish', exchange: '', routingKey: 'orders', mandatory: true, immediate: false },
    {
      contentType: 'application/json',
      deliveryMode: 2,
      priority: 5,
      headers: tableFrom({ tenant: 'acme', n: 1.5, big: 2 ** 40, flag: false, list: ['x', 2] }),
      messageId: 'm-1',
      timestamp: 1_700_000_000n,
    },
    Buffer.from('{"sku":"A1","qty":2}'),
    131072,
  );
  const consume = encodeMethodFrame(1, {
    name: 'basic.consume',
    queue: 'orders',
    consumerTag: '',
    noLocal: false,
    noAck: false,
    exclusive: false,
    noWait: false,
    arguments: tableFrom({}),
  });
  const ack = encodeMethodFrame(1, { name: 'basic.ack', deliveryTag: 1, multiple: true });
  const close = encodeMethodFrame(0, {
    name: 'connection.close',
    replyCode: 200,
    replyText: 'bye',
    classId: 0,
    methodId: 0,
  });
  return {
    'handshake.bin': handshake,
    'declare.bin': Buffer.concat([handshake, declare]),
    'publish.bin': Buffer.concat([handshake, publish, publish]),
    'consume-ack.bin': Buffer.concat([handshake, consume, ack, heartbeatFrame(), close]),
  };
}

export function logSeeds(): Record<string, Buffer> {
  const records: Record<string, LogRecord> = {
    'declared.bin': { type: 'queue-declared', name: 'orders', settings: { fifo: true, maxAttempts: 5, deadLetter: 'orders.dlq' } },
    'deleted.bin': { type: 'queue-deleted', name: 'orders' },
    'published.bin': {
      type: 'published',
      seq: 42,
      queue: 'orders',
      id: 'm-1',
      priority: 5,
      group: 'customer-7',
      headers: { tenant: 'acme', 'content-type': 'application/json' },
      body: Buffer.from('{"sku":"A1"}'),
      publishedAt: 1_700_000_000_000,
      availableAt: 1_700_000_000_500,
      expiresAt: 1_700_000_060_000,
      failures: 1,
    },
    'settled.bin': { type: 'settled', seqs: [1, 2, 3, 2 ** 40] },
    'retried.bin': { type: 'retried', seq: 7, failures: 2, availableAt: 1_700_000_001_000 },
    'moved.bin': {
      type: 'moved',
      seq: 9,
      queue: 'orders.dlq',
      headers: { 'x-death-reason': 'rejected' },
      failures: 3,
      availableAt: 1_700_000_002_000,
      expiresAt: null,
    },
  };
  return Object.fromEntries(
    Object.entries(records).map(([file, record]) => [
      file,
      encodeRecord(record).subarray(FRAME_HEADER_BYTES),
    ]),
  );
}

/** First byte: route (targets.ts HTTP_ROUTES); second: content type. */
export function httpSeeds(): Record<string, Buffer> {
  const seed = (route: number, body: unknown) =>
    Buffer.concat([Buffer.from([route, 0]), Buffer.from(JSON.stringify(body))]);
  return {
    'publish.json': seed(0, {
      body: { sku: 'A1', qty: 2 },
      priority: 5,
      delayMs: 0,
      id: 'order-1',
      headers: { tenant: 'acme' },
    }),
    'publish-base64.json': seed(0, { bodyBase64: 'aGVsbG8=', group: 'g1', ttlMs: 60000 }),
    'batch.json': seed(1, { messages: [{ body: 'a' }, { body: { b: [1, 2, { c: null }] }, priority: 1 }] }),
    'declare.json': seed(2, {
      fifo: false,
      maxAttempts: 3,
      visibilityTimeoutMs: 30000,
      backoff: { initialMs: 100, multiplier: 2, maxMs: 5000, jitter: 0.1 },
      deadLetter: 'fuzz.dlq',
    }),
    'receive.json': seed(3, { max: 10, waitMs: 0, visibilityTimeoutMs: 1000 }),
    'ack.json': seed(4, { receipts: ['r1', 'r2'] }),
    'nack.json': seed(5, { receipt: 'r1', delayMs: 100, deadLetter: true }),
    'extend.json': seed(6, { receipt: 'r1', visibilityTimeoutMs: 5000 }),
    'release.json': seed(7, { receipt: 'r1' }),
    'redrive.json': seed(8, { to: 'fuzz', max: 10 }),
    'token.json': seed(10, { permissions: { publish: ['fuzz.*'], consume: [], manage: [] } }),
  };
}
