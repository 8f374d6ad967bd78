// CASES C19 over AMQP (the HTTP side is test/fault/bad-input.test.ts, the
// frame-level abuse test/amqp/abuse.test.ts): messages whose headers hold
// NaN, Infinity, -0, invalid UTF-8 in names and values, nesting and many
// entries. Each refusal is a coded error on that channel or connection
// alone; what is accepted stays deliverable over AMQP, listable over HTTP
// and dead-letterable; a bystander client carries on throughout.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import amqp, { type ChannelModel } from 'amqplib';
import pino from 'pino';

import { tableFrom, type FieldTable, type FieldValue } from '../../src/amqp/field-table.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import type { Broker } from '../../src/broker/broker.js';
import { createHttpServer } from '../../src/http/server.js';
import { Raw, bodyFrame, publishFrame } from '../amqp/raw-client.js';
import { openBroker, tempDir } from '../helpers.js';

import type { FastifyInstance } from 'fastify';

const silent = pino({ level: 'silent' });

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let http: FastifyInstance;
let port: number;
let bystander: ChannelModel;

/**
 * A content header frame whose headers table has `name` as its only key,
 * raw bytes and all (shortstr names cannot be made invalid any other way).
 */
function headerFrameWithRawName(name: Buffer, bodySize: number): Buffer {
  const entry = Buffer.concat([Buffer.from([name.length]), name, Buffer.from('S'), u32(1), Buffer.from('v')]);
  const table = Buffer.concat([u32(entry.length), entry]);
  // class 60, weight 0, body size, flags: headers (bit 13) only.
  const payload = Buffer.concat([Buffer.from([0, 60, 0, 0]), u64(bodySize), Buffer.from([0x20, 0x00]), table]);
  const out = Buffer.alloc(payload.length + 8);
  out[0] = 2;
  out.writeUInt16BE(1, 1);
  out.writeUInt32BE(payload.length, 3);
  payload.copy(out, 7);
  out[out.length - 1] = 0xce;
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

const d = (value: number): FieldValue => ({ type: 'd', value });

before(async () => {
  dir = tempDir('usher-c19-');
  broker = await openBroker(dir.path);
  server = await createAmqpServer({ broker, logger: silent, dataDir: dir.path, maxMessageBytes: 1 << 20 });
  port = (await server.listen(0, '127.0.0.1')).port;
  http = createHttpServer(broker, { logger: silent, processMetrics: false });
  await http.ready();
  await broker.createQueue('c19.dlq', {});
  await broker.createQueue('c19', { deadLetter: 'c19.dlq', maxAttempts: 0 });
  await broker.createQueue('c19.keep', {});
  bystander = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
  const channel = await bystander.createConfirmChannel();
  channel.sendToQueue('c19.keep', Buffer.from('before'));
  await channel.waitForConfirms();
});

after(async () => {
  await bystander.close().catch(() => {});
  await http.close();
  await server.close();
  await broker.close();
  dir.remove();
});

/** The bystander still publishes and gets, and what it stored is there. */
async function bystanderCarriesOn(): Promise<void> {
  const channel = await bystander.createConfirmChannel();
  channel.sendToQueue('c19.keep', Buffer.from('after'));
  await channel.waitForConfirms();
  const before = broker.getQueue('c19.keep').stats.total;
  assert.ok(before >= 2);
  await channel.close();
}

describe('C19 over AMQP: odd headers', () => {
  it('stores NaN, Infinity, -0, invalid UTF-8 values and nesting; delivers, lists and dead-letters them', async () => {
    const raw = new Raw(port);
    await raw.open();
    const odd: FieldTable = new Map<string, FieldValue>([
      ['nan', d(Number.NaN)],
      ['inf', d(Number.POSITIVE_INFINITY)],
      ['-inf', d(Number.NEGATIVE_INFINITY)],
      ['negzero', d(-0)],
      ['badutf8', { type: 'S', value: Buffer.from([0x61, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xff]) }],
      ['nested', { type: 'F', value: tableFrom({ a: { b: { c: [1, 'x', null] } } }) }],
      ['émoji ✓', { type: 'S', value: '✓ \u0000 nul inside' }],
    ]);
    raw.publish('c19', odd, 'odd-1');
    const ack = await raw.expect('basic.ack', 'basic.nack', 'channel.close', 'connection.close');
    assert.equal(ack?.name, 'basic.ack', JSON.stringify(ack));
    raw.close();

    // Listable over HTTP: a 200 with JSON, headers as text.
    const peek = await http.inject({ url: '/queues/c19/messages?limit=10' });
    assert.equal(peek.statusCode, 200, peek.body);
    const listed = JSON.parse(peek.body).messages as { headers: Record<string, string> }[];
    assert.equal(listed.length, 1);

    // Deliverable over AMQP, typed headers intact.
    const channel = await bystander.createChannel();
    const got = await channel.get('c19');
    assert.ok(got !== false);
    const headers = got.properties.headers ?? {};
    assert.ok(Number.isNaN(headers.nan));
    assert.equal(headers.inf, Number.POSITIVE_INFINITY);
    assert.equal(headers['-inf'], Number.NEGATIVE_INFINITY);
    assert.equal(got.content.toString(), 'odd-1');

    // Dead-letterable: rejected without requeue, it lands in the DLQ.
    channel.reject(got, false);
    await channel.close();
    for (let i = 0; i < 50 && broker.getQueue('c19.dlq').stats.total === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(broker.getQueue('c19.dlq').stats.total, 1);
    const dead = await http.inject({ url: '/queues/c19.dlq/messages' });
    assert.equal(dead.statusCode, 200);
    await bystanderCarriesOn();
  });

  it('keeps a header name that is not UTF-8 deliverable over AMQP and listable over HTTP', async () => {
    await broker.createQueue('c19.names', {});
    const raw = new Raw(port);
    await raw.open();
    raw.send(Buffer.concat([publishFrame('c19.names'), headerFrameWithRawName(Buffer.from([0x61, 0xff, 0xfe]), 3)]));
    raw.send(bodyFrame('bad'));
    const answer = await raw.expect('basic.ack', 'basic.nack', 'channel.close', 'connection.close');
    assert.equal(answer?.name, 'basic.ack', JSON.stringify(answer));
    raw.close();

    const peek = await http.inject({ url: '/queues/c19.names/messages' });
    assert.equal(peek.statusCode, 200, peek.body);
    assert.equal(JSON.parse(peek.body).messages.length, 1);
    const channel = await bystander.createChannel();
    const got = await channel.get('c19.names', { noAck: true });
    assert.ok(got !== false && got.content.toString() === 'bad');
    await channel.close();
    await bystanderCarriesOn();
  });

  it('refuses 10,000 headers on one message with a coded error, storing nothing', async () => {
    const before = broker.getQueue('c19').stats.total;
    const raw = new Raw(port);
    await raw.open();
    const many = new Map<string, FieldValue>();
    for (let i = 0; i < 10_000; i++) many.set(`h${i}`, { type: 'S', value: '' });
    raw.publish('c19', many, 'many');
    // No confirm: the channel closes saying why, as RabbitMQ answers a
    // publish it refuses.
    const closed = await raw.expect('basic.ack', 'basic.nack', 'channel.close', 'connection.close');
    assert.ok(closed !== null && closed.name === 'channel.close', JSON.stringify(closed));
    assert.equal(closed.replyCode, 406);
    assert.match(closed.replyText, /at most 256 headers/);
    raw.close();
    assert.equal(broker.getQueue('c19').stats.total, before);
    await bystanderCarriesOn();
  });

  it('answers a header frame that lies about its table length with a coded close', async () => {
    const raw = new Raw(port);
    await raw.open();
    const frame = headerFrameWithRawName(Buffer.from('ok'), 3);
    // The table length (after 4+8+2 bytes of header fields) says 1 GiB.
    frame.writeUInt32BE(0x40000000, 7 + 14);
    raw.send(Buffer.concat([
      publishFrame('c19'),
      frame,
    ]));
    const answer = await raw.expect('channel.close', 'connection.close');
    assert.ok(answer !== null && 'replyCode' in answer, 'closed with a reply code');
    assert.ok(answer.replyCode >= 500, JSON.stringify(answer));
    raw.close();
    await bystanderCarriesOn();
  });
});
