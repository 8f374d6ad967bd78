// Bad requests: each is refused with a coded error that names the field and
// the value, nothing reaches the log as an error, and the broker keeps
// serving afterwards.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  call,
  errorsLogged,
  startHttp,
  type Answer,
  type Harness,
} from './harness.js';

let h: Harness;

before(async () => {
  h = await startHttp();
  await call(h.app, 'PUT', '/queues/q');
});

after(async () => {
  await h.close();
});

function assertRefused(
  answer: Answer,
  expected: { status?: number; code: string; field?: string; message: RegExp },
): void {
  const detail = JSON.stringify(answer.body);
  assert.equal(answer.status, expected.status ?? 400, detail);
  assert.equal(answer.body.error.code, expected.code, detail);
  assert.equal(answer.body.error.field, expected.field, detail);
  assert.match(answer.body.error.message, expected.message, detail);
}

const publish = (message: unknown) =>
  call(h.app, 'POST', '/queues/q/messages', message);

describe('schema validation names the field and the value', () => {
  const cases: Array<[string, unknown, string | undefined, RegExp]> = [
    ['a string priority', { body: 1, priority: 'high' }, 'priority',
      /^priority must be integer, got "high"$/],
    ['priority 10', { body: 1, priority: 10 }, 'priority',
      /^priority must be <= 9, got 10$/],
    ['a fractional priority', { body: 1, priority: 1.5 }, 'priority',
      /^priority must be integer, got 1\.5$/],
    ['a huge priority', { body: 1, priority: 1e308 }, 'priority',
      /must be <= 9, got 1e\+308/],
    ['a negative delay', { body: 1, delayMs: -1 }, 'delayMs',
      /^delayMs must be >= 0, got -1$/],
    ['a delay of 1e300', { body: 1, delayMs: 1e300 }, 'delayMs',
      /^delayMs must be <= 86400000, got 1e\+300$/],
    ['a zero ttl', { body: 1, ttlMs: 0 }, 'ttlMs', /^ttlMs must be >= 1/],
    ['a numeric id', { body: 1, id: 7 }, 'id', /^id must be string, got 7$/],
    ['an empty id', { body: 1, id: '' }, 'id',
      /^id must NOT have fewer than 1 characters, got ""$/],
    ['a numeric group', { body: 1, group: 5 }, 'group',
      /^group must be string or must be null, got 5$/],
    ['a header that is not a string', { body: 1, headers: { n: 1 } },
      'headers.n', /^headers\.n must be string, got 1$/],
    ['an unknown field', { body: 1, delaysMs: 5 }, 'delaysMs',
      /^delaysMs is not a known field$/],
    ['both body fields', { body: 1, bodyBase64: 'AA==' }, 'body',
      /exactly one of "body" and "bodyBase64", got both/],
    ['no body field', { priority: 1 }, 'body',
      /exactly one of "body" and "bodyBase64", got neither/],
    ['bad base64', { bodyBase64: 'no spaces!' }, 'bodyBase64',
      /^bodyBase64 is not valid base64 \("no spaces!"\)$/],
    ['base64 with wrong padding', { bodyBase64: 'A===' }, 'bodyBase64',
      /not valid base64/],
    ['an array instead of an object', [1, 2], undefined,
      /^request body must be a JSON object such as \{"body":\{"ticket":"TCKT-1"\}\}, got an array of 2 items$/],
    ['a bare JSON string, naming the object expected', '"x"', undefined,
      /^request body must be a JSON object such as \{"body":\{"ticket":"TCKT-1"\}\}, got "x"$/],
  ];

  for (const [name, message, field, text] of cases) {
    it(`refuses ${name}`, async () => {
      assertRefused(await publish(message), {
        code: 'INVALID_ARGUMENT',
        field,
        message: text,
      });
    });
  }

  it('refuses a string with a lone surrogate (no UTF-8 form)', async () => {
    const answer = await publish('{"body":"a\\ud800b"}');

    assertRefused(answer, {
      code: 'INVALID_ARGUMENT',
      field: 'body',
      message: /lone UTF-16 surrogate/,
    });
  });
});

describe('batch errors name the message', () => {
  const batch = (messages: unknown) =>
    call(h.app, 'POST', '/queues/q/messages/batch', { messages });

  it('names the index of a bad priority', async () => {
    const messages = [{ body: 0 }, { body: 1 }, { body: 2 }];
    const answer = await batch([...messages, { body: 3, priority: 10 }]);

    assertRefused(answer, {
      code: 'INVALID_ARGUMENT',
      field: 'messages.3.priority',
      message: /^messages\.3\.priority must be <= 9, got 10$/,
    });
  });

  it('names the object expected in place of a bare string', async () => {
    const whole = await call(h.app, 'POST', '/queues/q/messages/batch', '"x"');
    const one = await batch([{ body: 0 }, 'x']);
    const nack = await call(h.app, 'POST', '/queues/q/nack', '"x"');

    assertRefused(whole, {
      code: 'INVALID_ARGUMENT',
      message: /^request body must be a JSON object such as \{"messages":\[\{"body":"a"\},\{"body":"b"\}\]\}, got "x"$/,
    });
    assertRefused(one, {
      code: 'INVALID_ARGUMENT',
      field: 'messages.1',
      message: /^messages\.1 must be a JSON object such as \{"body":\{"ticket":"TCKT-1"\}\}, got "x"$/,
    });
    // Without an example in its schema, the fields it cannot do without.
    assertRefused(nack, {
      code: 'INVALID_ARGUMENT',
      message: /^request body must be a JSON object with "receipt", got "x"$/,
    });
  });

  it('names the index of a missing body', async () => {
    const answer = await batch([{ body: 0 }, { id: 'x' }]);

    assertRefused(answer, {
      code: 'INVALID_ARGUMENT',
      field: 'messages.1.body',
      message: /got neither/,
    });
  });

  it('names the index of bad base64', async () => {
    const answer = await batch([{ body: 0 }, { body: 1 }, { bodyBase64: '*' }]);

    assertRefused(answer, {
      code: 'INVALID_ARGUMENT',
      field: 'messages.2.bodyBase64',
      message: /^messages\.2\.bodyBase64 is not valid base64/,
    });
  });

  it('refuses an empty batch and one over 1000', async () => {
    const empty = await batch([]);
    const tooMany = await batch(
      Array.from({ length: 1001 }, () => ({ body: 1 })),
    );

    assertRefused(empty, {
      code: 'INVALID_ARGUMENT',
      field: 'messages',
      message: /^messages must NOT have fewer than 1 items/,
    });
    assertRefused(tooMany, {
      code: 'INVALID_ARGUMENT',
      field: 'messages',
      message: /^messages must NOT have more than 1000 items, got an array/,
    });
  });
});

describe('other routes', () => {
  it('refuses nack and extend without a receipt', async () => {
    const nack = await call(h.app, 'POST', '/queues/q/nack', {
      requeue: false,
    });
    const extend = await call(h.app, 'POST', '/queues/q/extend', {
      timeoutMs: 1000,
    });

    for (const answer of [nack, extend]) {
      assertRefused(answer, {
        code: 'INVALID_ARGUMENT',
        field: 'receipt',
        message: /^receipt is required$/,
      });
    }
  });

  it('refuses an ack with neither or both receipt forms', async () => {
    const neither = await call(h.app, 'POST', '/queues/q/ack', {});
    const both = await call(h.app, 'POST', '/queues/q/ack', {
      receipt: 'a',
      receipts: ['b'],
    });

    assertRefused(neither, {
      code: 'INVALID_ARGUMENT',
      field: 'receipt',
      message: /got neither/,
    });
    assertRefused(both, {
      code: 'INVALID_ARGUMENT',
      field: 'receipt',
      message: /got both/,
    });
  });

  it('refuses receive bounds', async () => {
    const receive = (body: unknown) =>
      call(h.app, 'POST', '/queues/q/receive', body);

    assertRefused(await receive({ max: 0 }), {
      code: 'INVALID_ARGUMENT',
      field: 'max',
      message: /^max must be >= 1, got 0$/,
    });
    assertRefused(await receive({ waitMs: 20_001 }), {
      code: 'INVALID_ARGUMENT',
      field: 'waitMs',
      message: /^waitMs must be <= 20000, got 20001$/,
    });
    assertRefused(await receive({ max: '5' }), {
      code: 'INVALID_ARGUMENT',
      field: 'max',
      message: /^max must be integer, got "5"$/,
    });
  });

  it('refuses peek query bounds', async () => {
    const peek = (query: string) =>
      call(h.app, 'GET', `/queues/q/messages?${query}`);

    assertRefused(await peek('limit=abc'), {
      code: 'INVALID_ARGUMENT',
      field: 'limit',
      message: /^limit must be integer, got "abc"$/,
    });
    assertRefused(await peek('limit=1001'), {
      code: 'INVALID_ARGUMENT',
      field: 'limit',
      message: /^limit must be <= 1000, got 1001$/,
    });
    assertRefused(await peek('offset=-1'), {
      code: 'INVALID_ARGUMENT',
      field: 'offset',
      message: /^offset must be integer, got "-1"$/,
    });
  });

  it('refuses bad queue settings by their path', async () => {
    const put = (body: unknown) => call(h.app, 'PUT', '/queues/other', body);

    assertRefused(await put({ backoff: { jitter: 2 } }), {
      code: 'INVALID_ARGUMENT',
      field: 'backoff.jitter',
      message: /^backoff\.jitter must be <= 1, got 2$/,
    });
    assertRefused(await put({ backoff: { factor: 2 } }), {
      code: 'INVALID_ARGUMENT',
      field: 'backoff.factor',
      message: /is not a known field/,
    });
    assertRefused(await put({ messageTtlMs: -5 }), {
      code: 'INVALID_ARGUMENT',
      field: 'messageTtlMs',
      message: /^messageTtlMs must be >= 1 or must be null, got -5$/,
    });
    // A choice of values names them, not "must be equal to constant" thrice.
    assertRefused(await put({ durability: 'disk' }), {
      code: 'INVALID_ARGUMENT',
      field: 'durability',
      message: /^durability must be one of "fsync", "os", "memory", got "disk"$/,
    });
    assertRefused(await put({ deadLetter: 'other' }), {
      code: 'INVALID_ARGUMENT',
      field: 'deadLetter',
      message: /cannot be its own dead-letter queue/,
    });
  });
});

describe('bodies that are not JSON', () => {
  it('refuses malformed JSON with INVALID_JSON', async () => {
    for (const text of ['{"body": ', '{"body":1}}', "{'body':1}"]) {
      assertRefused(await publish(text), {
        code: 'INVALID_JSON',
        message: /^request body is not valid JSON: /,
      });
    }
  });

  it('refuses a __proto__ key', async () => {
    const answer = await publish('{"body":1,"__proto__":{"polluted":true}}');

    assertRefused(answer, {
      code: 'INVALID_JSON',
      message: /forbidden "__proto__"/,
    });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('refuses bytes that are not UTF-8 with INVALID_UTF8', async () => {
    const prefix = Buffer.from('{"body":"');
    const suffix = Buffer.from('"}');
    const invalid = [
      [0xff],
      [0xc3], // a two-byte sequence cut short
      [0xc0, 0xaf], // overlong "/"
      [0xed, 0xa0, 0x80], // a UTF-16 surrogate written as UTF-8
    ];

    for (const bytes of invalid) {
      const body = Buffer.concat([prefix, Buffer.from(bytes), suffix]);
      assertRefused(await publish(body), {
        code: 'INVALID_UTF8',
        message: /not valid UTF-8/,
      });
    }
  });

  it('refuses other content types with 415', async () => {
    const answer = await call(h.app, 'POST', '/queues/q/messages', 'hi', {
      'content-type': 'text/plain',
    });

    assertRefused(answer, {
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: /"text\/plain" is not supported/,
    });
  });

  it('refuses a body with no content type with 415', async () => {
    const answer = await h.app.inject({
      method: 'POST',
      url: '/queues/q/messages',
      payload: '{"body":1}',
    });

    assert.equal(answer.statusCode, 415);
    assert.deepEqual(answer.json().error, {
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: 'a request body needs content type application/json',
    });
  });

  it('accepts a charset parameter on application/json', async () => {
    const answer = await call(
      h.app,
      'POST',
      '/queues/q/messages',
      '{"body":1}',
      { 'content-type': 'application/json; charset=utf-8' },
    );

    assert.equal(answer.status, 201);
  });
});

describe('routes and queues that do not exist', () => {
  it('answers NOT_FOUND for an unknown route or method', async () => {
    const unknown = await call(h.app, 'GET', '/nope');
    const method = await call(h.app, 'PATCH', '/queues/q');

    assertRefused(unknown, {
      status: 404,
      code: 'NOT_FOUND',
      message: /^no route for GET \/nope$/,
    });
    assertRefused(method, {
      status: 404,
      code: 'NOT_FOUND',
      message: /^no route for PATCH \/queues\/q$/,
    });
  });

  it('answers BAD_REQUEST for a path that cannot be decoded', async () => {
    const badEscape = await call(h.app, 'GET', '/queues/%E0%A4%A');
    const tooLong = await call(h.app, 'GET', `/queues/${'a'.repeat(1025)}`);

    assertRefused(badEscape, {
      code: 'BAD_REQUEST',
      message: /is not a valid url component/,
    });
    assertRefused(tooLong, {
      code: 'BAD_REQUEST',
      message: /max param length/,
    });
  });

  it('answers QUEUE_NOT_FOUND on every queue route', async () => {
    const routes: Array<[Parameters<typeof call>[1], string, unknown?]> = [
      ['GET', '/queues/ghost'],
      ['DELETE', '/queues/ghost'],
      ['POST', '/queues/ghost/purge'],
      ['POST', '/queues/ghost/redrive', {}],
      ['POST', '/queues/ghost/messages', { body: 1 }],
      ['POST', '/queues/ghost/messages/batch', { messages: [{ body: 1 }] }],
      ['GET', '/queues/ghost/messages'],
      ['POST', '/queues/ghost/receive', { waitMs: 1000 }],
      ['POST', '/queues/ghost/ack', { receipt: 'r' }],
      ['POST', '/queues/ghost/nack', { receipt: 'r' }],
      ['POST', '/queues/ghost/extend', { receipt: 'r', timeoutMs: 1 }],
    ];

    for (const [method, url, body] of routes) {
      assertRefused(await call(h.app, method, url, body), {
        status: 404,
        code: 'QUEUE_NOT_FOUND',
        field: 'queue',
        message: /^queue "ghost" does not exist$/,
      });
    }
  });
});

describe('afterwards', () => {
  it('keeps serving, having logged no error for any of the above', async () => {
    await call(h.app, 'POST', '/queues/q/purge');
    const published = await publish({ body: 'still here' });
    const received = await call(h.app, 'POST', '/queues/q/receive', {});

    assert.equal(published.status, 201);
    assert.equal(received.body.messages[0].body, 'still here');
    assert.deepEqual(errorsLogged(h.logs), []);
  });
});
