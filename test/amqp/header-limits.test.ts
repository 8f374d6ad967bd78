// The documented header limits (README, "Keep the limits": 256 headers
// and 64 KiB of them) hold exactly for the publisher, over AMQP and HTTP
// alike: the headers Usher writes beside the user's (properties, exchange,
// routing key, the typed table copy, a JSON body's content type) take
// nothing from them. Refusals close only the channel (AMQP) or answer 400
// naming the field (HTTP), and headers cross between the two intact.
// Over AMQP a table past the limits is refused without being read past
// them, and a method's table past 1024 values closes its connection.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { FastifyInstance } from 'fastify';

import { MAX_TABLE_VALUES, tableFrom } from '../../src/amqp/field-table.js';
import { createAmqpServer, type AmqpServer } from '../../src/amqp/server.js';
import type { Broker } from '../../src/broker/broker.js';
import { createHttpServer } from '../../src/http/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';
import { frame } from './helpers.js';
import { Raw } from './raw-client.js';

const LIMIT_BYTES = 64 * 1024;

let dir: ReturnType<typeof tempDir>;
let broker: Broker;
let server: AmqpServer;
let http: FastifyInstance;
let port: number;
let client: ChannelModel;
let bystander: ChannelModel;

before(async () => {
  dir = tempDir('usher-header-limits-');
  broker = await openBroker(dir.path);
  server = await createAmqpServer({
    broker,
    logger: silentLogger,
    dataDir: dir.path,
    maxMessageBytes: 1 << 20,
  });
  port = (await server.listen(0, '127.0.0.1')).port;
  http = createHttpServer(broker, { logger: silentLogger, processMetrics: false });
  await http.ready();
  const url = `amqp://guest:guest@127.0.0.1:${port}?frameMax=131072`;
  client = await amqp.connect(url);
  bystander = await amqp.connect(url);
  const setup = await client.createChannel();
  await setup.assertQueue('limits', { durable: true });
  await setup.assertQueue('limits.memory', { durable: false });
  await setup.close();
});

after(async () => {
  await client.close().catch(() => {});
  await bystander.close().catch(() => {});
  await http.close();
  await server.close();
  await broker.close();
  dir.remove();
});

/** `count` headers h000, h001, … with short values. */
function manyHeaders(count: number): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < count; i++) headers[`h${String(i).padStart(3, '0')}`] = `v${i}`;
  return headers;
}

/** 16 headers whose names and values total exactly `bytes` (ASCII). */
function headersOfBytes(bytes: number): Record<string, string> {
  const headers: Record<string, string> = {};
  const each = Math.floor(bytes / 16);
  for (let i = 0; i < 16; i++) {
    const name = `b${String(i).padStart(2, '0')}`;
    const size = i === 15 ? bytes - 15 * each : each;
    headers[name] = 'x'.repeat(size - name.length);
  }
  return headers;
}

/** Every property that Usher keeps as a header of its own. */
const PROPERTIES = {
  contentType: 'text/plain',
  contentEncoding: 'identity',
  correlationId: 'corr-1',
  replyTo: 'replies',
  messageId: 'm-1',
  type: 'order',
  appId: 'shop',
  timestamp: 1_700_000_000,
  persistent: true,
};

/** The same properties, as Usher's encoder takes them: no amqplib-only
 * `persistent`, and the timestamp as a bigint. */
const { persistent: _amqplibOnly, ...textProperties } = PROPERTIES;
const RAW_PROPERTIES = { ...textProperties, timestamp: BigInt(PROPERTIES.timestamp) };

/** Publishes with confirms; resolves true on ack, false on a nack or close. */
async function publishOver(
  channel: ConfirmChannel,
  queue: string,
  headers: Record<string, string>,
  body = 'b',
): Promise<boolean> {
  return new Promise((resolve) => {
    channel.once('error', () => resolve(false));
    channel.once('close', () => resolve(false));
    channel.sendToQueue(queue, Buffer.from(body), { ...PROPERTIES, headers }, (err) =>
      resolve(err === null || err === undefined),
    );
  });
}

/** The close a refused publish brings: its code and text. */
async function refusalOf(
  queue: string,
  headers: Record<string, string>,
): Promise<{ code: number; text: string; otherChannelWorks: boolean }> {
  const channel = await client.createConfirmChannel();
  const other = await client.createChannel();
  const closed = new Promise<{ code: number; text: string }>((resolve) => {
    channel.on('error', (err: { code: number; message: string }) =>
      resolve({ code: err.code, text: err.message }),
    );
  });
  channel.sendToQueue(queue, Buffer.from('refused'), { ...PROPERTIES, headers }, () => {});
  const refusal = await closed;
  const otherChannelWorks = await other.checkQueue(queue).then(() => true, () => false);
  await other.close();
  return { ...refusal, otherChannelWorks };
}

async function takeOverAmqp(channel: Channel, queue: string) {
  const got = await channel.get(queue, { noAck: true });
  assert.ok(got !== false, `a message on ${queue}`);
  return got;
}

async function takeOverHttp(queue: string): Promise<Record<string, string>> {
  const answer = await http.inject({
    method: 'POST',
    url: `/queues/${queue}/receive`,
    payload: { max: 1 },
  });
  assert.equal(answer.statusCode, 200, answer.body);
  const [message] = answer.json().messages;
  assert.ok(message !== undefined, `a message on ${queue}`);
  const acked = await http.inject({
    method: 'POST',
    url: `/queues/${queue}/ack`,
    payload: { receipt: message.receipt },
  });
  assert.ok(acked.statusCode < 300, acked.body);
  return message.headers;
}

/** The bystander connection still publishes and gets. */
async function bystanderCarriesOn(): Promise<void> {
  const channel = await bystander.createConfirmChannel();
  await channel.assertQueue('limits.bystander', { durable: true });
  assert.equal(await publishOver(channel, 'limits.bystander', { a: '1' }, 'still'), true);
  const got = await channel.get('limits.bystander', { noAck: true });
  assert.ok(got !== false && got.content.toString() === 'still');
  await channel.close();
}

/** Own keys of `actual` named in `expected`, for a compact comparison. */
function pick(actual: Record<string, unknown>, expected: Record<string, string>) {
  return Object.fromEntries(Object.keys(expected).map((name) => [name, actual[name]]));
}

describe('AMQP header limits', () => {
  for (const queue of ['limits', 'limits.memory']) {
    it(`takes 256 headers with every property, and they reach HTTP intact (${queue})`, async () => {
      const channel = await client.createConfirmChannel();
      const headers = manyHeaders(256);
      assert.equal(await publishOver(channel, queue, headers), true);
      await channel.close();

      const got = await takeOverHttp(queue);
      assert.deepEqual(pick(got, headers), headers);
      assert.equal(got['content-type'], 'text/plain');
    });

    it(`takes headers of exactly 64 KiB, and they reach HTTP intact (${queue})`, async () => {
      // amqplib encodes no table over 64 KiB, names and tags included.
      const raw = new Raw(port);
      await raw.open();
      const headers = headersOfBytes(LIMIT_BYTES);
      raw.publish(queue, tableFrom(headers), 'b', RAW_PROPERTIES);
      const answer = await raw.expect('basic.ack', 'basic.nack', 'channel.close');
      raw.close();
      assert.equal(answer?.name, 'basic.ack', JSON.stringify(answer));

      const got = await takeOverHttp(queue);
      assert.deepEqual(pick(got, headers), headers);
      assert.equal(got['content-type'], 'text/plain');
    });
  }

  it('refuses 257 headers with 406 on that channel alone', async () => {
    const before = broker.getQueue('limits').stats.total;
    const refusal = await refusalOf('limits', manyHeaders(257));
    assert.equal(refusal.code, 406);
    assert.match(refusal.text, /at most 256 headers, got 257/);
    assert.equal(refusal.otherChannelWorks, true);
    assert.equal(broker.getQueue('limits').stats.total, before);
    await bystanderCarriesOn();
  });

  it('refuses one byte over 64 KiB with 406 on that channel alone', async () => {
    const before = broker.getQueue('limits').stats.total;
    const raw = new Raw(port);
    await raw.open();
    raw.publish('limits', tableFrom(headersOfBytes(LIMIT_BYTES + 1)), 'b', RAW_PROPERTIES);
    const closed = await raw.expect('basic.ack', 'basic.nack', 'channel.close');
    assert.ok(closed !== null && closed.name === 'channel.close', JSON.stringify(closed));
    assert.equal(closed.replyCode, 406);
    assert.match(closed.replyText, /headers total 65537 bytes, over 65536/);
    // The connection stays open: its channel 2 still works.
    raw.method(2, { name: 'channel.open' });
    assert.ok(await raw.expect('channel.open-ok'));
    raw.close();
    assert.equal(broker.getQueue('limits').stats.total, before);
    await bystanderCarriesOn();
  });

  it('counts typed entries too: 257 numbers are refused', async () => {
    const channel = await client.createConfirmChannel();
    const numbers: Record<string, number> = {};
    for (let i = 0; i < 257; i++) numbers[`n${i}`] = i;
    // Settles on the close, or on an ack if the publish was taken.
    const refusal = await new Promise<{ code?: number; message: string }>((resolve) => {
      channel.on('error', resolve);
      channel.sendToQueue('limits', Buffer.from('n'), { headers: numbers }, (err) => {
        if (err === null || err === undefined) resolve({ message: 'acked' });
      });
    });
    assert.equal(refusal.code, 406);
    assert.match(refusal.message, /at most 256 headers, got 257/);
  });
});

/**
 * A content header frame on channel 1 for a body of `bodySize` bytes,
 * whose headers table is `entries` (without its size prefix).
 */
function headerFrame(entries: Buffer, bodySize: number): Buffer {
  const payload = Buffer.alloc(14 + 4);
  payload.writeUInt16BE(60, 0); // class basic, weight 0
  payload.writeUInt32BE(bodySize, 8);
  payload.writeUInt16BE(0x2000, 12); // headers only
  payload.writeUInt32BE(entries.length, 14);
  return frame(2, 1, Buffer.concat([payload, entries]));
}

/** The channel.close a refused publish brings, with no basic.ack or nack before it. */
async function refusedWithClose(raw: Raw): Promise<{ replyCode: number; replyText: string }> {
  const closed = await raw.expect('basic.ack', 'basic.nack', 'channel.close', 'connection.close');
  assert.ok(closed !== null && closed.name === 'channel.close', JSON.stringify(closed));
  return closed;
}

/** The connection of `raw` still works: its channel 2 opens. */
async function connectionCarriesOn(raw: Raw): Promise<void> {
  raw.method(2, { name: 'channel.open' });
  assert.ok(await raw.expect('channel.open-ok'));
}

describe('AMQP tables past their limits are not read', () => {
  it('refuses a headers table past 256 entries unread: 406 on that channel alone', async () => {
    // 256 entries, then 30,000 of a type no decoder knows: read, they
    // would close the connection with 502. The broker must stop before.
    const readable = Buffer.concat(
      Array.from({ length: 256 }, (_, i) => {
        const name = Buffer.from(`h${String(i).padStart(3, '0')}`);
        return Buffer.concat([Buffer.from([name.length]), name, Buffer.from('V')]);
      }),
    );
    const unreadable = Buffer.alloc(30_000 * 3);
    for (let at = 0; at < unreadable.length; at += 3) unreadable.set([1, 0x7a, 0x55], at);
    const before = broker.getQueue('limits').stats.total;

    const raw = new Raw(port);
    await raw.open();
    raw.publish('limits', headerFrame(Buffer.concat([readable, unreadable]), 1), 'b');
    const closed = await refusedWithClose(raw);
    assert.equal(closed.replyCode, 406);
    assert.match(closed.replyText, /at most 256 headers, got 257 or more/);
    await connectionCarriesOn(raw);
    raw.close();

    assert.equal(broker.getQueue('limits').stats.total, before);
    await bystanderCarriesOn();
  });

  it(`refuses headers of more than ${MAX_TABLE_VALUES} values, nested ones counted`, async () => {
    // 5,000 voids in one array: 5 KB, within 256 headers and 64 KiB.
    const before = broker.getQueue('limits').stats.total;
    const raw = new Raw(port);
    await raw.open();
    raw.publish('limits', tableFrom({ ids: Array(5000).fill(null) }), 'b');
    const closed = await refusedWithClose(raw);
    assert.equal(closed.replyCode, 406);
    assert.match(closed.replyText, /headers hold more than 1024 values/);
    await connectionCarriesOn(raw);
    raw.close();

    assert.equal(broker.getQueue('limits').stats.total, before);
    await bystanderCarriesOn();
  });

  it('closes a connection whose queue.declare has more than 1024 arguments with 502', async () => {
    const raw = new Raw(port);
    await raw.open('none');
    const args = new Map(
      Array.from({ length: 1025 }, (_, i) => [`x-${i}`, { type: 'V' as const, value: null }]),
    );
    raw.method(1, {
      name: 'queue.declare',
      queue: 'limits.args',
      passive: false,
      durable: true,
      exclusive: false,
      autoDelete: false,
      noWait: false,
      arguments: args,
    });
    const closed = await raw.expect('queue.declare-ok', 'channel.close', 'connection.close');
    assert.ok(closed !== null && closed.name === 'connection.close', JSON.stringify(closed));
    assert.equal(closed.replyCode, 502);
    assert.match(closed.replyText, /queue\.declare: arguments has more than 1024 entries/);
    assert.deepEqual([closed.classId, closed.methodId], [50, 10]);
    raw.close();

    assert.equal(broker.hasQueue('limits.args'), false);
    await bystanderCarriesOn();
  });
});

describe('HTTP header limits', () => {
  const publish = (queue: string, payload: object) =>
    http.inject({ method: 'POST', url: `/queues/${queue}/messages`, payload });

  it('takes 256 headers with a JSON body (whose content type Usher adds)', async () => {
    const headers = manyHeaders(256);
    const answer = await publish('limits', { body: { order: 1 }, headers });
    assert.equal(answer.statusCode, 201, answer.body);

    const channel = await client.createChannel();
    const got = await takeOverAmqp(channel, 'limits');
    await channel.close();
    assert.deepEqual(pick(got.properties.headers ?? {}, headers), headers);
    assert.equal(got.properties.contentType, 'application/json');
    assert.deepEqual(JSON.parse(got.content.toString()), { order: 1 });
  });

  it('takes headers of exactly 64 KiB, and they reach AMQP intact', async () => {
    const headers = headersOfBytes(LIMIT_BYTES);
    const answer = await publish('limits', { body: 'text', headers });
    assert.equal(answer.statusCode, 201, answer.body);

    const channel = await client.createChannel();
    const got = await takeOverAmqp(channel, 'limits');
    await channel.close();
    assert.deepEqual(pick(got.properties.headers ?? {}, headers), headers);
  });

  it('refuses 257 headers and one byte over 64 KiB with 400 naming the field', async () => {
    for (const [headers, text] of [
      [manyHeaders(257), /at most 256 headers, got 257/],
      [headersOfBytes(LIMIT_BYTES + 1), /headers total 65537 bytes, over 65536/],
    ] as const) {
      const answer = await publish('limits', { body: { order: 1 }, headers });
      assert.equal(answer.statusCode, 400, answer.body);
      const { error } = answer.json();
      assert.equal(error.code, 'INVALID_ARGUMENT');
      assert.equal(error.field, 'headers');
      assert.match(error.message, text);
    }
  });
});
