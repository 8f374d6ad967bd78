// AMQP properties and queue arguments onto Usher's and back.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  EXCHANGE_HEADER,
  fromAmqp,
  PRIORITY_HEADER,
  ROUTING_KEY_HEADER,
  settingsFromArguments,
  toAmqp,
  TYPED_HEADERS,
} from '../../src/amqp/mapping.js';
import { tableFrom } from '../../src/amqp/field-table.js';
import { encodeProperties, type BasicProperties } from '../../src/amqp/content.js';

const BODY = Buffer.from('body');

describe('message properties', () => {
  // Found publishing these over HTTP and consuming over AMQP: the delivery
  // could not be encoded, the consumer's channel closed with 541, and the
  // message came back to close the next one (a poison message).
  it('delivers headers from an HTTP producer that no AMQP property can hold', () => {
    const longName = 'k'.repeat(300);
    const headers = {
      'message-id': 'é'.repeat(200),
      'content-type': 'a'.repeat(256),
      timestamp: '99999999999999999999999',
      [longName]: 'v',
      tenant: 'eu',
    };
    const properties = toAmqp(headers, 0);
    assert.doesNotThrow(() => encodeProperties(properties));

    assert.equal(properties.messageId, undefined);
    assert.equal(properties.timestamp, undefined);
    const table = properties.headers!;
    assert.deepEqual(table.get('message-id'), { type: 'S', value: 'é'.repeat(200) });
    assert.deepEqual(table.get('content-type'), { type: 'S', value: 'a'.repeat(256) });
    assert.deepEqual(table.get('timestamp'), { type: 'S', value: '99999999999999999999999' });
    assert.equal(table.has(longName), false, 'a field name over 255 bytes cannot be sent');
    assert.deepEqual(table.get('tenant'), { type: 'S', value: 'eu' });

    const fitting = toAmqp({ 'message-id': 'm'.repeat(255), timestamp: '18446744073709551615' }, 0);
    assert.equal(fitting.messageId, 'm'.repeat(255));
    assert.equal(fitting.timestamp, 2n ** 64n - 1n);
  });

  it('round-trips every property and typed headers', () => {
    const properties = {
      contentType: 'application/json',
      contentEncoding: 'gzip',
      correlationId: 'c-1',
      replyTo: 'amq.rabbitmq.reply-to',
      messageId: 'm-1',
      type: 'TICKET_PURCHASED',
      userId: 'guest',
      appId: 'ticketing',
      timestamp: 1_700_000_000n,
      deliveryMode: 2,
      priority: 7,
      headers: tableFrom({ tenant: 'eu', retries: 3, vip: true, nested: { a: [1, 'x'] } }),
    };
    const mapped = fromAmqp(properties, 'tickets', 'eu.sold', BODY);

    assert.equal(mapped.body, BODY, 'the body as it came, not a copy');
    assert.equal(mapped.priority, 7);
    assert.equal(mapped.ttlMs, undefined);
    assert.equal(mapped.headers['content-type'], 'application/json');
    assert.equal(mapped.headers.tenant, 'eu', 'text headers are readable over HTTP');
    assert.equal(mapped.headers.retries, undefined, 'typed ones travel in the table only');
    assert.ok(mapped.headers[TYPED_HEADERS]);

    const back = toAmqp(mapped.headers, mapped.priority);
    assert.deepEqual(back, properties);
  });

  it('lists as its own exactly the headers it wrote, the publisher\'s table apart', () => {
    // The properties, the own headers written from them, and the
    // publisher's text headers from its table.
    const cases: Array<[BasicProperties, string[], string[]]> = [
      [{}, [], []],
      [{ deliveryMode: 2 }, ['delivery-mode'], []],
      [{ deliveryMode: 2, contentType: 'text/plain' }, ['content-type', 'delivery-mode'], []],
      [{ timestamp: 5n, appId: 'a', messageId: undefined }, ['app-id', 'timestamp'], []],
      [{ type: 't', headers: tableFrom({}) }, ['type'], []],
      // A table entry named as a property stays in the typed table only.
      [
        { type: 't', userId: 'u', headers: tableFrom({ type: 'mine', n: 1 }) },
        ['type', 'user-id', TYPED_HEADERS],
        [],
      ],
    ];
    for (const [properties, written, publishers] of cases) {
      const own = [...written, EXCHANGE_HEADER, ROUTING_KEY_HEADER];
      const mapped = fromAmqp(properties, 'ex', 'rk', BODY);
      assert.deepEqual(mapped.ownHeaders, own, JSON.stringify(written));
      assert.equal(mapped.headers[EXCHANGE_HEADER], 'ex');
      assert.equal(mapped.headers[ROUTING_KEY_HEADER], 'rk');
      assert.deepEqual(Object.keys(mapped.headers).sort(), [...own, ...publishers].sort());

      // Lists shared between messages cannot be changed through one.
      const again = fromAmqp(properties, 'other', 'key', BODY);
      assert.deepEqual(again.ownHeaders, own);
      if (properties.headers === undefined) {
        assert.throws(() => (again.ownHeaders as string[]).push('x'), TypeError);
      }
    }
  });

  it('clamps priorities to 9 and reads expiration as a TTL', () => {
    const mapped = fromAmqp({ priority: 200, expiration: '1500' }, '', 'q', BODY);
    assert.equal(mapped.priority, 9);
    assert.equal(mapped.ttlMs, 1500);
    assert.throws(() => fromAmqp({ expiration: 'soon' }, '', 'q', BODY), { replyCode: 406 });
  });

  it('gives HTTP-published text headers to AMQP consumers as strings', () => {
    const properties = toAmqp({ 'content-type': 'text/plain', trace: 't-1' }, 0);
    assert.equal(properties.contentType, 'text/plain');
    assert.deepEqual([...(properties.headers ?? [])], [['trace', { type: 'S', value: 't-1' }]]);
    assert.equal(properties.deliveryMode, undefined, 'only what the publisher gave');
    assert.equal(properties.priority, undefined);
  });

  it('keeps headers added after publish beside the typed ones, not Usher\'s own', () => {
    const mapped = fromAmqp({ headers: tableFrom({ n: 1 }) }, '', 'q', BODY);
    const headers = { ...mapped.headers, added: 'later', 'x-usher-death-reason': 'rejected' };
    const table = toAmqp(headers, 0).headers;
    assert.deepEqual(table?.get('n'), { type: 'I', value: 1 });
    assert.deepEqual(table?.get('added'), { type: 'S', value: 'later' });
    assert.equal(table?.has('x-usher-death-reason'), false);
  });
});

describe('queue arguments', () => {
  it('maps what Usher has', () => {
    const settings = settingsFromArguments(tableFrom({
      'x-queue-type': 'quorum',
      'x-max-priority': 10,
      'x-message-ttl': 60_000,
      'x-delivery-limit': 4,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': 'orders.dlq',
      'x-usher-fifo': true,
      'x-usher-backoff-initial': 500,
      'x-usher-backoff-jitter': 0.2,
    }));
    // The dead-letter arguments are queue-features.ts's.
    assert.deepEqual(settings, {
      messageTtlMs: 60_000,
      maxAttempts: 5,
      fifo: true,
      backoff: { initialMs: 500, jitter: 0.2 },
    });
  });

  it('maps queue limits, drop-head by default as in RabbitMQ', () => {
    assert.deepEqual(settingsFromArguments(tableFrom({ 'x-max-length': 5 })), {
      maxLength: 5,
      overflow: 'drop-oldest',
    });
    assert.deepEqual(
      settingsFromArguments(tableFrom({ 'x-max-length-bytes': 100, 'x-overflow': 'reject-publish' })),
      { maxBytes: 100, overflow: 'reject-publish' },
    );
    assert.deepEqual(
      settingsFromArguments(tableFrom({ 'x-max-length': 1, 'x-usher-overflow': 'reject-lowest-priority' })),
      { maxLength: 1, overflow: 'reject-lowest-priority' },
    );
    assert.deepEqual(
      settingsFromArguments(tableFrom({ 'x-max-length': 1, 'x-overflow': 'reject-publish-dlx' })),
      { maxLength: 1, overflow: 'reject-publish-dlx' },
    );
    assert.throws(() => settingsFromArguments(tableFrom({ 'x-overflow': 'drop-tail' })),
      (err: Error & { replyCode: number }) => err.replyCode === 406 && /drop-tail/.test(err.message));
    assert.throws(() => settingsFromArguments(tableFrom({ 'x-max-length': -1 })), { replyCode: 406 });
  });

  it('refuses what Usher does not have, naming the argument', () => {
    assert.throws(() => settingsFromArguments(tableFrom({ 'x-queue-type': 'stream' })),
      (err: Error & { replyCode: number }) =>
        err.replyCode === 406 && /x-queue-type/.test(err.message));
    assert.throws(() => settingsFromArguments(tableFrom({ 'x-consistent-hash': 1 })),
      (err: Error & { replyCode: number }) =>
        err.replyCode === 406 && /x-consistent-hash.*README/.test(err.message));
    assert.throws(() => settingsFromArguments(tableFrom({ 'x-message-ttl': -5 })),
      { replyCode: 406 });
  });

  it('takes RabbitMQ\'s storage and placement hints, checked, with nothing to set', () => {
    assert.deepEqual(settingsFromArguments(tableFrom({
      'x-queue-mode': 'lazy', 'x-queue-version': 2, 'x-queue-leader-locator': 'least-leaders',
      'x-queue-master-locator': 'min-masters', 'x-quorum-initial-group-size': 3,
      'x-max-in-memory-length': 100, 'x-max-in-memory-bytes': 0,
      'x-dead-letter-strategy': 'at-least-once',
    })), {});
    for (const wrong of [{ 'x-queue-mode': 'eager' }, { 'x-queue-version': 3 },
      { 'x-queue-leader-locator': 'far' }, { 'x-quorum-initial-group-size': 0 }]) {
      assert.throws(() => settingsFromArguments(tableFrom(wrong)),
        (err: Error & { replyCode: number }) =>
          err.replyCode === 406 && err.message.includes(Object.keys(wrong)[0]),
        JSON.stringify(wrong));
    }
  });
});

describe('priorities above Usher\'s 9', () => {
  it('are ordered as 9 and come back to AMQP consumers as published', () => {
    for (const published of [10, 200, 255]) {
      const input = fromAmqp({ priority: published }, '', 'q', Buffer.from('x'));
      assert.equal(input.priority, 9);
      assert.equal(input.headers[PRIORITY_HEADER], String(published));
      assert.ok(input.ownHeaders.includes(PRIORITY_HEADER));
      const back = toAmqp(input.headers, input.priority);
      assert.equal(back.priority, published);
      assert.equal(back.headers, undefined);
    }
  });

  it('leave nothing behind for priorities Usher has', () => {
    const input = fromAmqp({ priority: 9 }, '', 'q', Buffer.from('x'));
    assert.equal(input.headers[PRIORITY_HEADER], undefined);
    assert.equal(toAmqp(input.headers, 9).priority, 9);
  });

  // Found by a breaker: the header was read back from any message, so a
  // publisher's own headers-table entry of that name, or an HTTP header,
  // showed AMQP consumers a priority nobody published (3 came back as 200;
  // RabbitMQ 3.10 delivers 3, and the header as a header).
  it('are not forged by a header of that name from the publisher', () => {
    const forged = fromAmqp({ priority: 3, headers: tableFrom({ [PRIORITY_HEADER]: '200' }) },
      '', 'q', BODY);
    assert.equal(forged.priority, 3);
    const back = toAmqp(forged.headers, forged.priority);
    assert.equal(back.priority, 3);
    assert.deepEqual(back.headers?.get(PRIORITY_HEADER), { type: 'S', value: '200' });

    const none = fromAmqp({ headers: tableFrom({ [PRIORITY_HEADER]: '77' }) }, '', 'q', BODY);
    assert.equal(toAmqp(none.headers, none.priority).priority, undefined);

    // Over HTTP: a message stored below Usher's highest was not published above it.
    assert.equal(toAmqp({ [PRIORITY_HEADER]: '200' }, 0).priority, undefined);
    assert.equal(toAmqp({ [PRIORITY_HEADER]: '200' }, 4).priority, 4);
  });

  it('take no header that is not an AMQP priority above the stored one', () => {
    for (const text of ['5', '256', '-1', '1e2x', '']) {
      assert.equal(toAmqp({ [PRIORITY_HEADER]: text }, 7).priority, 7, text);
    }
  });
});
