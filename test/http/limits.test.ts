// Size limits, and failures that are not the client's: an oversized body is
// refused before it is read whole (also over a real socket), a message over
// maxMessageBytes is named, an unexpected error is a logged 500, and a
// closing broker answers 503.

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { bodyLimitFor } from '../../src/http/server.js';
import { call, errorsLogged, startHttp, type Harness } from './harness.js';

const MAX_MESSAGE = 1024;
const LIMIT = bodyLimitFor(MAX_MESSAGE);

let h: Harness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A server with maxMessageBytes of 1 KiB, or the default with `null`. */
async function start(maxMessageBytes: number | null = MAX_MESSAGE) {
  h = await startHttp({ maxMessageBytes: maxMessageBytes ?? undefined });
  await call(h.app, 'PUT', '/queues/q');
  return h;
}

async function listen(harness: Harness): Promise<number> {
  await harness.app.listen({ host: '127.0.0.1', port: 0 });
  return (harness.app.server.address() as AddressInfo).port;
}

describe('body limit', () => {
  it('allows the base64 of the largest message plus 1 MiB of envelope', () => {
    assert.equal(LIMIT, 1368 + 1024 * 1024);
    assert.equal(bodyLimitFor(16 * 1024 * 1024), 22_369_624 + 1024 * 1024);
  });

  it('accepts a message of exactly maxMessageBytes as base64', async () => {
    const { app } = await start();
    const bytes = Buffer.alloc(MAX_MESSAGE, 0xff);

    const answer = await call(app, 'POST', '/queues/q/messages', {
      bodyBase64: bytes.toString('base64'),
    });

    assert.equal(answer.status, 201);
  });

  it('refuses a message one byte over, naming it in a batch', async () => {
    const { app } = await start();
    const over = Buffer.alloc(MAX_MESSAGE + 1, 0xff).toString('base64');

    const single = await call(app, 'POST', '/queues/q/messages', {
      bodyBase64: over,
    });
    const batch = await call(app, 'POST', '/queues/q/messages/batch', {
      messages: [{ body: 'ok' }, { bodyBase64: over }],
    });

    assert.equal(single.status, 413);
    assert.deepEqual(single.body.error, {
      code: 'MESSAGE_TOO_LARGE',
      message: 'message body of 1025 bytes exceeds the limit of 1024 bytes',
      field: 'body',
    });
    assert.equal(batch.status, 413);
    assert.equal(batch.body.error.field, 'messages.1.body');
  });

  it('refuses a request body over the limit with 413', async () => {
    const { app } = await start();
    const text = 'x'.repeat(LIMIT);

    const answer = await call(app, 'POST', '/queues/q/messages', {
      body: text,
    });

    assert.equal(answer.status, 413);
    assert.deepEqual(answer.body.error, {
      code: 'PAYLOAD_TOO_LARGE',
      message: `request body exceeds the limit of ${LIMIT} bytes`,
    });
  });

  it('refuses a chunked body that never ends, while it comes', async () => {
    const harness = await start();
    const port = await listen(harness);

    // The client streams forever; only an answer while it is still sending
    // proves the server did not wait to buffer the whole body.
    const client = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/queues/q/messages',
      headers: {
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
      },
    });
    client.on('error', () => {
      // The server closes the connection after answering; writes may fail.
    });
    let answered = false;
    const response = new Promise<{ status: number; text: string }>(
      (resolve) => {
        client.on('response', async (res) => {
          answered = true;
          let text = '';
          for await (const chunk of res) text += chunk;
          resolve({ status: res.statusCode ?? 0, text });
        });
      },
    );

    const chunk = Buffer.alloc(16 * 1024, 0x61);
    let sent = 0;
    client.write('{"body":"');
    while (!answered && !client.destroyed && sent < 256 * 1024 * 1024) {
      const flushed = client.write(chunk);
      sent += chunk.length;
      if (!flushed) {
        await new Promise((resolve) => {
          client.once('drain', resolve);
          client.once('close', resolve);
          client.once('response', resolve);
        });
      }
    }
    const { status, text } = await response;
    client.destroy();

    assert.equal(status, 413);
    assert.equal(JSON.parse(text).error.code, 'PAYLOAD_TOO_LARGE');
    assert.ok(sent < 64 * 1024 * 1024, `sent ${sent} bytes before the 413`);
  });

  it('refuses a Content-Length over the limit before the body', async () => {
    const harness = await start();
    const port = await listen(harness);

    const answer = await new Promise<{ status: number; text: string }>(
      (resolve, reject) => {
        const client = request({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/queues/q/messages',
          headers: {
            'content-type': 'application/json',
            'content-length': String(LIMIT + 1),
          },
        });
        client.on('error', reject);
        client.on('response', async (res) => {
          let text = '';
          for await (const chunk of res) text += chunk;
          resolve({ status: res.statusCode ?? 0, text });
          client.destroy();
        });
        // Headers only: no byte of the body is ever sent.
        client.flushHeaders();
      },
    );

    assert.equal(answer.status, 413);
    assert.equal(JSON.parse(answer.text).error.code, 'PAYLOAD_TOO_LARGE');
  });

  it('takes a 16 MiB binary message at the default limit', async () => {
    const { app } = await start(null);
    const bytes = Buffer.alloc(16 * 1024 * 1024, 0xfe);

    const answer = await call(app, 'POST', '/queues/q/messages', {
      bodyBase64: bytes.toString('base64'),
    });
    const [peeked] = (await call(app, 'GET', '/queues/q/messages')).body
      .messages;

    assert.equal(answer.status, 201);
    assert.equal(Buffer.from(peeked.bodyBase64, 'base64').equals(bytes), true);
  });
});

describe('failures that are not the client\'s', () => {
  it('answers 500 INTERNAL, logs the error, and keeps serving', async () => {
    const harness = await start();
    const { app, broker } = harness;
    const getQueue = broker.getQueue;
    broker.getQueue = () => {
      throw new TypeError('wires crossed');
    };

    const failed = await call(app, 'GET', '/queues/q');
    broker.getQueue = getQueue;
    const after = await call(app, 'GET', '/queues/q');
    const logged = errorsLogged(harness.logs);

    assert.equal(failed.status, 500);
    assert.deepEqual(failed.body, {
      error: {
        code: 'INTERNAL',
        message: 'internal error; the broker log has details',
      },
    });
    assert.equal(after.status, 200);
    assert.equal(logged.length, 1);
    assert.equal(logged[0].msg, 'request failed');
    assert.equal(logged[0].err?.message, 'wires crossed');
    assert.match(logged[0].err?.stack ?? '', /TypeError/);
  });

  it('answers 503 BROKER_CLOSED once the broker is closing', async () => {
    const { app, broker } = await start();
    await broker.close();

    const answer = await call(app, 'POST', '/queues/q/messages', { body: 1 });

    assert.equal(answer.status, 503);
    assert.equal(answer.body.error.code, 'BROKER_CLOSED');
  });

  it('answers 503 BROKER_CLOSED to a request that comes late', async () => {
    const harness = await start();
    const port = await listen(harness);

    // A publish whose body is still coming holds close() open; a request
    // pipelined behind it on the same connection arrives while closing.
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    const closed = new Promise((resolve) => socket.on('close', resolve));
    const body = '{"body":"hello"}';
    socket.write(
      'POST /queues/q/messages HTTP/1.1\r\nhost: usher\r\n' +
        'content-type: application/json\r\n' +
        `content-length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
    );
    await sleep(50);
    const closing = harness.app.close();
    await sleep(100);
    // Not end(): a half-closed socket gets no answer to the second request.
    socket.write(`${body.slice(5)}GET /queues/q HTTP/1.1\r\nhost: u\r\n\r\n`);
    await closed;
    await closing;

    const answers = received.split(/(?=HTTP\/1\.1 )/);
    assert.equal(answers.length, 2, received);
    assert.match(answers[0], /^HTTP\/1\.1 201 /);
    assert.match(answers[1], /^HTTP\/1\.1 503 /);
    const [, text] = answers[1].split('\r\n\r\n');
    assert.deepEqual(JSON.parse(text), {
      error: { code: 'BROKER_CLOSED', message: 'the broker is shutting down' },
    });
  });
});
