// Message routes over a real broker: publish (single and batch), body
// encodings both ways, peek, receive, ack, nack and extend.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { call, startHttp, type Harness } from './harness.js';

let h: Harness;

beforeEach(async () => {
  h = await startHttp();
  await call(h.app, 'PUT', '/queues/q');
});

afterEach(async () => {
  await h.close();
});

async function publish(message: Record<string, unknown>) {
  const answer = await call(h.app, 'POST', '/queues/q/messages', message);
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body as { id: string; duplicate: boolean };
}

async function receiveOne() {
  const answer = await call(h.app, 'POST', '/queues/q/receive', { max: 1 });
  assert.equal(answer.status, 200);
  assert.equal(answer.body.messages.length, 1);
  return answer.body.messages[0];
}

describe('body encodings round trip', () => {
  it('a JSON object comes back parsed, labelled application/json', async () => {
    await publish({ body: { order: 7, items: ['a', 'b'], ok: true } });

    const message = await receiveOne();

    assert.deepEqual(message.body, { order: 7, items: ['a', 'b'], ok: true });
    assert.equal(message.bodyBase64, undefined);
    assert.deepEqual(message.headers, { 'content-type': 'application/json' });
  });

  it('a string is stored as UTF-8 bytes and comes back a string', async () => {
    const text = 'héllo wörld ✓ 😀';
    await publish({ body: text });

    const stats = await call(h.app, 'GET', '/queues/q');
    const message = await receiveOne();

    assert.equal(stats.body.stats.bytes, Buffer.byteLength(text));
    assert.equal(message.body, text);
    assert.deepEqual(message.headers, {});
  });

  it('base64 bytes that are not UTF-8 come back as base64', async () => {
    const bytes = Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x80, 0xc3]);
    await publish({ bodyBase64: bytes.toString('base64') });

    const message = await receiveOne();

    assert.equal(message.body, undefined);
    assert.equal(message.bodyBase64, bytes.toString('base64'));
  });

  it('base64 of UTF-8 text comes back as the text', async () => {
    await publish({ bodyBase64: Buffer.from('plain').toString('base64') });

    const message = await receiveOne();

    assert.equal(message.body, 'plain');
  });

  it('accepts base64 without padding', async () => {
    await publish({ bodyBase64: '/w' });

    const message = await receiveOne();

    assert.equal(message.bodyBase64, '/w==');
  });

  for (const value of [42, -1.5, [1, 'two', null], false, null, '', {}]) {
    it(`round-trips the JSON value ${JSON.stringify(value)}`, async () => {
      await publish({ body: value });

      const message = await receiveOne();

      assert.deepEqual(message.body, value);
    });
  }

  it('keeps a content-type the producer gave with a JSON value', async () => {
    await publish({
      body: { a: 1 },
      headers: { 'Content-Type': 'text/x-log' },
    });

    const message = await receiveOne();

    assert.equal(message.body, '{"a":1}');
    assert.deepEqual(message.headers, { 'Content-Type': 'text/x-log' });
  });

  it('shows bytes labelled JSON that do not parse as text', async () => {
    await publish({
      body: 'not { json',
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });

    const message = await receiveOne();

    assert.equal(message.body, 'not { json');
  });
});

describe('POST /queues/{name}/messages', () => {
  it('stores every field the message gives', async () => {
    const result = await publish({
      id: 'order-1',
      body: 'x',
      headers: { trace: 'abc' },
      priority: 7,
      group: 'customer-9',
      ttlMs: 60_000,
    });

    const [peeked] = (await call(h.app, 'GET', '/queues/q/messages')).body
      .messages;

    assert.deepEqual(result, { id: 'order-1', duplicate: false });
    assert.equal(peeked.id, 'order-1');
    assert.equal(peeked.priority, 7);
    assert.equal(peeked.group, 'customer-9');
    assert.deepEqual(peeked.headers, { trace: 'abc' });
    assert.equal(peeked.state, 'ready');
    // The TTL runs from when the message is durable in the queue: after
    // the publish, by the milliseconds its write took, and before now.
    assert.ok(peeked.expiresAt >= peeked.publishedAt + 60_000, JSON.stringify(peeked));
    assert.ok(peeked.expiresAt <= Date.now() + 60_000, JSON.stringify(peeked));
  });

  it('stores a repeated id once and says it was a duplicate', async () => {
    const first = await publish({ id: 'same', body: 1 });
    const second = await publish({ id: 'same', body: 2 });

    const stats = (await call(h.app, 'GET', '/queues/q')).body.stats;

    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(stats.total, 1);
    assert.equal(stats.duplicates, 1);
  });

  it('holds a delayed message back until its delay passes', async () => {
    await publish({ body: 'later', delayMs: 60_000 });

    const peeked = (await call(h.app, 'GET', '/queues/q/messages')).body
      .messages[0];
    const received = await call(h.app, 'POST', '/queues/q/receive', {});

    assert.equal(peeked.state, 'delayed');
    assert.equal(peeked.availableAt, peeked.publishedAt + 60_000);
    assert.deepEqual(received.body, { messages: [] });
  });

  it('answers 404 for a queue that does not exist', async () => {
    const answer = await call(h.app, 'POST', '/queues/ghost/messages', {
      body: 1,
    });

    assert.equal(answer.status, 404);
    assert.equal(answer.body.error.code, 'QUEUE_NOT_FOUND');
  });
});

describe('POST /queues/{name}/messages/batch', () => {
  it('publishes every message in order and answers per message', async () => {
    const answer = await call(h.app, 'POST', '/queues/q/messages/batch', {
      messages: [
        { id: 'a', body: 'first' },
        { id: 'b', bodyBase64: Buffer.from([0xff]).toString('base64') },
        { id: 'a', body: 'again' },
      ],
    });
    const peeked = await call(h.app, 'GET', '/queues/q/messages');

    assert.equal(answer.status, 201);
    assert.deepEqual(answer.body.results, [
      { id: 'a', duplicate: false },
      { id: 'b', duplicate: false },
      { id: 'a', duplicate: true },
    ]);
    assert.deepEqual(
      peeked.body.messages.map((m: { id: string }) => m.id),
      ['a', 'b'],
    );
    assert.equal(peeked.body.messages[1].bodyBase64, '/w==');
  });

  it('stores nothing when one message is refused', async () => {
    const answer = await call(h.app, 'POST', '/queues/q/messages/batch', {
      messages: [{ body: 1 }, { body: 2, bodyBase64: 'AA==' }],
    });
    const stats = (await call(h.app, 'GET', '/queues/q')).body.stats;

    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.field, 'messages.1.body');
    assert.equal(stats.total, 0);
  });
});

describe('GET /queues/{name}/messages', () => {
  it('pages with limit and offset and takes no lease', async () => {
    await call(h.app, 'POST', '/queues/q/messages/batch', {
      messages: ['m0', 'm1', 'm2', 'm3', 'm4'].map((body) => ({ body })),
    });

    const page = await call(
      h.app,
      'GET',
      '/queues/q/messages?limit=2&offset=1',
    );
    const all = await call(h.app, 'GET', '/queues/q/messages');
    const stats = (await call(h.app, 'GET', '/queues/q')).body.stats;

    assert.deepEqual(
      page.body.messages.map((m: { body: string }) => m.body),
      ['m1', 'm2'],
    );
    assert.equal(all.body.messages.length, 5);
    assert.equal(stats.inFlight, 0);
    assert.equal(stats.ready, 5);
  });
});

describe('receive, ack, nack, extend', () => {
  it('receives up to max, highest priority first, with a lease', async () => {
    await publish({ body: 'low', priority: 1 });
    await publish({ body: 'high', priority: 9 });
    await publish({ body: 'mid', priority: 5 });

    const before = Date.now();
    const answer = await call(h.app, 'POST', '/queues/q/receive', {
      max: 2,
      visibilityTimeoutMs: 5_000,
    });
    const [first, second] = answer.body.messages;

    assert.equal(answer.body.messages.length, 2);
    assert.deepEqual([first.body, second.body], ['high', 'mid']);
    assert.equal(first.queue, 'q');
    assert.equal(first.attempt, 1);
    assert.equal(first.redelivered, false);
    assert.equal(first.group, null);
    assert.equal(typeof first.receipt, 'string');
    assert.ok(first.leaseDeadline >= before + 5_000);
    assert.ok(first.leaseDeadline <= Date.now() + 5_000);
  });

  it('acks one receipt, then refuses it as no longer a lease', async () => {
    await publish({ body: 'x' });
    const { receipt } = await receiveOne();

    const acked = await call(h.app, 'POST', '/queues/q/ack', { receipt });
    const again = await call(h.app, 'POST', '/queues/q/ack', { receipt });
    const stats = (await call(h.app, 'GET', '/queues/q')).body.stats;

    assert.deepEqual(acked.body, { acked: 1, results: [true] });
    assert.equal(again.status, 404);
    assert.equal(again.body.error.code, 'RECEIPT_NOT_FOUND');
    assert.equal(again.body.error.field, 'receipt');
    assert.equal(stats.total, 0);
    assert.equal(stats.acked, 1);
  });

  it('says which queue holds a lease settled through another queue', async () => {
    await call(h.app, 'PUT', '/queues/dd');
    await publish({ body: 'x' });
    const { receipt } = await receiveOne();

    const settles = [
      ['ack', { receipt }],
      ['nack', { receipt }],
      ['extend', { receipt, timeoutMs: 1_000 }],
    ] as const;
    for (const [route, body] of settles) {
      const answer = await call(h.app, 'POST', `/queues/dd/${route}`, body);
      assert.equal(answer.status, 404, route);
      assert.deepEqual(answer.body.error, {
        code: 'RECEIPT_NOT_FOUND',
        field: 'receipt',
        message: `receipt "${receipt}" is a lease of queue "q", not of queue "dd": ` +
          'settle it through queue "q"',
      }, route);
    }
    const unknown = await call(h.app, 'POST', '/queues/dd/ack', { receipt: 'nope' });
    assert.equal(unknown.body.error.message,
      'receipt "nope" is not a current lease of queue "dd": it was settled, ' +
        'its lease expired, or it never existed');

    // None of the refusals touched the lease.
    assert.equal((await call(h.app, 'GET', '/queues/q')).body.stats.inFlight, 1);
    const acked = await call(h.app, 'POST', '/queues/q/ack', { receipt });
    assert.deepEqual(acked.body, { acked: 1, results: [true] });
  });

  it('acks many receipts and reports each', async () => {
    await publish({ body: 'a' });
    await publish({ body: 'b' });
    const received = await call(h.app, 'POST', '/queues/q/receive', { max: 2 });
    const receipts = received.body.messages.map(
      (m: { receipt: string }) => m.receipt,
    );

    const answer = await call(h.app, 'POST', '/queues/q/ack', {
      receipts: [receipts[0], 'unknown', receipts[1]],
    });

    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { acked: 2, results: [true, false, true] });
  });

  it('nacks with a delay: the message waits, then comes back', async () => {
    await publish({ body: 'x' });
    const { receipt } = await receiveOne();

    const nacked = await call(h.app, 'POST', '/queues/q/nack', {
      receipt,
      delayMs: 500,
      reason: 'downstream timeout',
    });
    const peeked = (await call(h.app, 'GET', '/queues/q/messages')).body
      .messages[0];
    const retried = await call(h.app, 'POST', '/queues/q/receive', {
      waitMs: 2_000,
    });

    assert.deepEqual(nacked.body, { ok: true, outcome: 'retried' });
    assert.equal(peeked.state, 'delayed');
    assert.equal(peeked.failures, 1);
    assert.equal(retried.body.messages[0].attempt, 2);
    assert.equal(retried.body.messages[0].redelivered, true);
    assert.equal(
      retried.body.messages[0].headers['x-usher-last-error'],
      'downstream timeout',
    );
  });

  it('extends a lease and refuses unknown receipts', async () => {
    await publish({ body: 'x' });
    const { receipt, leaseDeadline } = await receiveOne();

    const before = Date.now();
    const extended = await call(h.app, 'POST', '/queues/q/extend', {
      receipt,
      timeoutMs: 120_000,
    });
    const unknownExtend = await call(h.app, 'POST', '/queues/q/extend', {
      receipt: 'nope',
      timeoutMs: 1_000,
    });
    const unknownNack = await call(h.app, 'POST', '/queues/q/nack', {
      receipt: 'nope',
    });

    assert.ok(extended.body.leaseDeadline >= before + 120_000);
    assert.ok(extended.body.leaseDeadline > leaseDeadline);
    assert.equal(unknownExtend.status, 404);
    assert.equal(unknownExtend.body.error.code, 'RECEIPT_NOT_FOUND');
    assert.equal(unknownNack.status, 404);
    assert.equal(unknownNack.body.error.code, 'RECEIPT_NOT_FOUND');
  });
});

describe('release', () => {
  it('hands leases back at once without counting an attempt', async () => {
    await publish({ body: 'x' });
    const first = await receiveOne();

    const answer = await call(h.app, 'POST', '/queues/q/release', {
      receipts: [first.receipt, 'not-a-lease'],
    });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { released: 1 });

    const again = await receiveOne();
    assert.equal(again.attempt, 1);
    assert.equal(again.redelivered, false);
  });

  it('names the field when receipts are missing', async () => {
    const answer = await call(h.app, 'POST', '/queues/q/release', {});
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.field, 'receipts');
  });
});
