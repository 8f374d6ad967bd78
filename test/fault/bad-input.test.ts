// Hostile and careless input against a real `usher serve`: malformed HTTP,
// bad JSON, wrong types at every field, oversized and deep bodies, unicode
// edge cases, forged receipts, lease races, thousands of long polls, and a
// corrupted log on disk. Every refusal must be a coded 4xx naming the field
// (or a closed connection for garbage), the broker must keep serving, and
// nothing it confirmed earlier may be lost: each group ends by checking
// /healthz and the messages of the `keep` queue.
//
// Tests that FAIL until the bug they describe is fixed (expected values are
// the documented ones):
//   - malformed HTTP is answered in the error envelope (BAD_REQUEST)
//   - a deeply nested JSON body is refused with 400, not a 500
//   - a message whose JSON body is too deep to serialise does not break
//     peek and receive for its whole queue, nor leak the leases it took
//   - lone surrogates in id, group and header names/values are refused
//   - a JSON body keeps its numbers exactly (9007199254740993)
//   - records after a damaged frame in an older segment survive
//   - a middle segment with a zeroed header is not deleted
//   - a missing middle segment is reported in the log
//   - deleting a queue wakes every long poll waiting on it

import assert from 'node:assert/strict';
import {
  cpSync,
  existsSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { tempDir } from '../helpers.js';
import { ServeProcess } from './serve-process.js';

const MiB = 1024 * 1024;
const MAX_MESSAGE = 16 * MiB;

let dir: ReturnType<typeof tempDir>;
let usher: ServeProcess;

interface Answer {
  status: number;
  json: any;
  text: string;
}

/** A request with any body: an object is sent as JSON, a string or bytes as they are. */
async function send(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body =
      typeof body === 'string' || body instanceof Uint8Array
        ? (body as BodyInit)
        : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${usher.url}${path}`, init);
  const text = await response.text();
  let json: any = null;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

function assertError(answer: Answer, status: number, code: string, field?: string): void {
  const detail = answer.text.slice(0, 500);
  assert.equal(answer.status, status, detail);
  assert.equal(answer.json?.error?.code, code, detail);
  assert.equal(answer.json?.error?.field, field, detail);
  assert.equal(typeof answer.json.error.message, 'string', detail);
}

interface RawAnswer {
  /** Everything the server sent, as latin1. */
  text: string;
  /** The server closed the connection before the timeout. */
  closed: boolean;
}

/** Writes bytes on a fresh socket and collects the answer until close or `timeoutMs`. */
function raw(
  bytes: string | Buffer,
  { halfClose = false, timeoutMs = 3000 } = {},
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect(usher.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(bytes, () => {
      if (halfClose) socket.end();
    });
  });
}

/** The HTTP answers in a raw byte stream, in order (Content-Length or chunked bodies). */
function parseAnswers(text: string): Array<{ status: number; body: string }> {
  const answers: Array<{ status: number; body: string }> = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) break;
    const head = rest.slice(0, end);
    const status = Number(head.split(' ')[1]);
    rest = rest.slice(end + 4);
    if (status === 100) continue;
    const length = /content-length:\s*(\d+)/i.exec(head);
    let body = '';
    if (length) {
      body = rest.slice(0, Number(length[1]));
      rest = rest.slice(Number(length[1]));
    } else if (/transfer-encoding:\s*chunked/i.test(head)) {
      for (;;) {
        const lineEnd = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, lineEnd), 16);
        rest = rest.slice(lineEnd + 2);
        if (!(size > 0)) {
          rest = rest.slice(2);
          break;
        }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    }
    answers.push({ status, body });
  }
  return answers;
}

/** Every message of a queue, without leasing. */
async function peekAll(queue: string): Promise<any[]> {
  const answer = await send('GET', `/queues/${queue}/messages?limit=1000`);
  assert.equal(answer.status, 200, answer.text.slice(0, 300));
  return answer.json.messages;
}

const KEEP = Array.from({ length: 5 }, (_, i) => `keep-${i}`);

/** The broker answers /healthz and still holds every `keep` message, unleased. */
async function assertIntact(): Promise<void> {
  const health = await send('GET', '/healthz');
  assert.equal(health.status, 200, health.text);
  assert.equal(health.json.status, 'ok');
  const messages = await peekAll('keep');
  assert.deepEqual(
    messages.map((m) => [m.id, m.body, m.state]),
    KEEP.map((id) => [id, `body of ${id}`, 'ready']),
  );
}

before(async () => {
  dir = tempDir('usher-bad-input-');
  usher = new ServeProcess(dir.path);
  await usher.start();
  assert.equal((await send('PUT', '/queues/keep', {})).status, 201);
  assert.equal((await send('PUT', '/queues/q', {})).status, 201);
  for (const id of KEEP) {
    assert.equal((await send('POST', '/queues/keep/messages', { id, body: `body of ${id}` })).status, 201);
  }
});

after(async () => {
  await usher?.kill();
  dir?.remove();
});

// ---------------------------------------------------------------------------

describe('malformed HTTP', () => {
  it('closes the connection on garbage bytes', async () => {
    const answer = await raw(Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a]));
    assert.equal(answer.closed, true);
  });

  it('answers pipelined requests in order on one connection', async () => {
    const publish = '{"body":"piped"}';
    const answer = await raw(
      'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' +
        `POST /queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${publish.length}\r\n\r\n${publish}` +
        'GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    const answers = parseAnswers(answer.text);
    assert.deepEqual(answers.map((a) => a.status), [200, 201, 404]);
    assert.equal(JSON.parse(answers[2].body).error.code, 'NOT_FOUND');
  });

  it('refuses Content-Length with Transfer-Encoding, a duplicate Content-Length, and a 100 KB header, closing', async () => {
    for (const request of [
      'POST /queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"bod\r\n0\r\n\r\n',
      'POST /queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n{"body":"x"}',
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`,
    ]) {
      const answer = await raw(request);
      assert.equal(answer.closed, true, request.slice(0, 80));
      const [first] = parseAnswers(answer.text);
      assert.ok(first === undefined || (first.status >= 400 && first.status < 500), answer.text.slice(0, 200));
    }
  });

  it('stores nothing from a body cut short and a socket closed', async () => {
    const before = (await send('GET', '/queues/q')).json.stats.published;
    const answer = await raw(
      'POST /queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"body":"cut',
      { timeoutMs: 300 },
    );
    assert.equal(answer.text, '');
    await sleep(50);
    assert.equal((await send('GET', '/queues/q')).json.stats.published, before);
  });

  it('answers malformed HTTP in the error envelope (BAD_REQUEST)', async () => {
    const cases = [
      // Garbage: closing without an answer is fine; an answer must be ours.
      { bytes: 'NOT HTTP AT ALL\r\n\r\n', halfClose: false },
      // HTTP/1.1 without Host.
      { bytes: 'GET /healthz HTTP/1.1\r\n\r\n', halfClose: false },
      // A body longer than its Content-Length.
      { bytes: 'POST /queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{"body":"x"}', halfClose: false },
      // A body shorter than its Content-Length, then the client stops sending.
      { bytes: 'POST /queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"body":"x"}', halfClose: true },
    ];
    for (const { bytes, halfClose } of cases) {
      const answer = await raw(bytes, { halfClose });
      for (const { status, body } of parseAnswers(answer.text)) {
        if (status < 400) continue; // a request before the malformed part
        assert.equal(status, 400, `${bytes.slice(0, 60)} -> ${answer.text.slice(0, 200)}`);
        let parsed: any;
        assert.doesNotThrow(() => (parsed = JSON.parse(body)), `not JSON: ${answer.text.slice(0, 200)}`);
        assert.equal(parsed?.error?.code, 'BAD_REQUEST', `${bytes.slice(0, 60)} -> ${body}`);
      }
    }
  });

  it('refuses bad paths: traversal, bad percent-encoding, NUL, over-long segments', async () => {
    // Queue names never become file paths: this one is just a name.
    assert.equal((await send('PUT', '/queues/..%2F..%2Fetc')).status, 201);
    assertError(await send('PUT', '/queues/a%00b'), 400, 'INVALID_ARGUMENT', 'name');
    assertError(await send('PUT', `/queues/${encodeURIComponent('a\u202eb')}`), 400, 'INVALID_ARGUMENT', 'name');
    assertError(await send('PUT', '/queues/' + 'n'.repeat(256)), 400, 'INVALID_ARGUMENT', 'name');
    assertError(await send('GET', '/queues/%zz'), 400, 'BAD_REQUEST');
    assertError(await send('GET', '/queues/a%ED%A0%80'), 400, 'BAD_REQUEST');
    assertError(await send('GET', '/queues/' + 'a'.repeat(10_000)), 400, 'BAD_REQUEST');
  });

  it('afterwards the broker is alive and earlier messages are intact', assertIntact);
});

// ---------------------------------------------------------------------------

describe('bodies that are not the JSON asked for', () => {
  const P = '/queues/q/messages';
  const utf8 = (bytes: number[]) =>
    Buffer.concat([Buffer.from('{"body":"'), Buffer.from(bytes), Buffer.from('"}')]);

  it('refuses text that is not JSON, with the parser reason and no field', async () => {
    for (const text of ['{"body":', '{}garbage', '   ', '{"priority":NaN,"body":1}', '{"delayMs":Infinity,"body":1}', '['.repeat(100_000)]) {
      assertError(await send('POST', P, text), 400, 'INVALID_JSON');
    }
  });

  it('refuses __proto__ and constructor.prototype keys', async () => {
    assertError(await send('POST', P, '{"body":"x","__proto__":{"a":1}}'), 400, 'INVALID_JSON');
    assertError(await send('POST', P, '{"body":{"constructor":{"prototype":{"a":1}}}}'), 400, 'INVALID_JSON');
  });

  it('refuses bytes that are not UTF-8: invalid, overlong, encoded surrogate', async () => {
    for (const bytes of [[0xc3, 0x28], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff]]) {
      assertError(await send('POST', P, utf8(bytes)), 400, 'INVALID_UTF8');
    }
  });

  it('refuses other content types with 415', async () => {
    for (const type of ['text/plain', 'application/jsonx', 'application/json-patch+json', 'multipart/form-data']) {
      assertError(await send('POST', P, '{"body":"x"}', { 'content-type': type }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('refuses an empty or non-object body where fields are required', async () => {
    for (const text of ['', 'null', '[]', '"x"', '5']) {
      assertError(await send('POST', P, text), 400, 'INVALID_ARGUMENT');
    }
    assertError(await send('POST', '/queues/q/ack'), 400, 'INVALID_ARGUMENT');
    assertError(await send('POST', '/queues/q/receive', '[]'), 400, 'INVALID_ARGUMENT');
  });

  it('refuses a deeply nested JSON body with a 400 naming body, not a 500', async () => {
    const depth = 20_000;
    const answer = await send('POST', P, `{"body":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    assertError(answer, 400, 'INVALID_ARGUMENT', 'body');
  });

  // A "body" given as a JSON value is a value: it is read as JSON numbers
  // are (IEEE doubles) and stored as JSON.stringify writes it. Exact bytes
  // travel as a string or as bodyBase64 (docs/http-api.md), and come back
  // exactly as stored, never parsed and re-written on the way out.
  it('keeps stored JSON bytes exactly on the way out', async () => {
    const sent = '{"orderId":9007199254740993,"price":0.1000000000000000055511151231257827}';
    const published = await send('POST', P, {
      id: 'exact-number',
      bodyBase64: Buffer.from(sent).toString('base64'),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(published.status, 201);
    const page = await send('GET', '/queues/q/messages?limit=1000');
    const shown = /"id":"exact-number".*?"body":(\{[^}]*\})/.exec(page.text)?.[1];
    assert.equal(shown, sent);
  });

  it('afterwards the broker is alive and earlier messages are intact', assertIntact);
});

// ---------------------------------------------------------------------------

describe('wrong types and bounds at every field', () => {
  type Case = [method: string, path: string, body: unknown, status: number, code: string, field: string | undefined];
  const P = '/queues/q/messages';
  const headers = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`h${i}`, 'v']));
  const cases: Case[] = [
    // publish
    ['POST', P, '{"body":"x","priority":1e400}', 400, 'INVALID_ARGUMENT', 'priority'],
    ['POST', P, { body: 'x', priority: '5' }, 400, 'INVALID_ARGUMENT', 'priority'],
    ['POST', P, { body: 'x', priority: 1.5 }, 400, 'INVALID_ARGUMENT', 'priority'],
    ['POST', P, { body: 'x', priority: 10 }, 400, 'INVALID_ARGUMENT', 'priority'],
    ['POST', P, { body: 'x', priority: -1 }, 400, 'INVALID_ARGUMENT', 'priority'],
    ['POST', P, '{"body":"x","delayMs":99999999999999999999999}', 400, 'INVALID_ARGUMENT', 'delayMs'],
    ['POST', P, { body: 'x', delayMs: 86_400_001 }, 400, 'INVALID_ARGUMENT', 'delayMs'],
    ['POST', P, { body: 'x', delayMs: -1 }, 400, 'INVALID_ARGUMENT', 'delayMs'],
    ['POST', P, { body: 'x', ttlMs: 0 }, 400, 'INVALID_ARGUMENT', 'ttlMs'],
    ['POST', P, { body: 'x', ttlMs: 1_209_600_001 }, 400, 'INVALID_ARGUMENT', 'ttlMs'],
    ['POST', P, { body: 'x', ttlMs: '1s' }, 400, 'INVALID_ARGUMENT', 'ttlMs'],
    ['POST', P, { body: 'x', id: '' }, 400, 'INVALID_ARGUMENT', 'id'],
    ['POST', P, { body: 'x', id: 'i'.repeat(257) }, 400, 'INVALID_ARGUMENT', 'id'],
    ['POST', P, { body: 'x', id: 5 }, 400, 'INVALID_ARGUMENT', 'id'],
    ['POST', P, { body: 'x', group: 1 }, 400, 'INVALID_ARGUMENT', 'group'],
    ['POST', P, { body: 'x', group: 'g'.repeat(257) }, 400, 'INVALID_ARGUMENT', 'group'],
    ['POST', P, { body: 'x', headers: ['a'] }, 400, 'INVALID_ARGUMENT', 'headers'],
    ['POST', P, { body: 'x', headers: null }, 400, 'INVALID_ARGUMENT', 'headers'],
    ['POST', P, { body: 'x', headers: { k: 1 } }, 400, 'INVALID_ARGUMENT', 'headers.k'],
    ['POST', P, { body: 'x', headers: headers(257) }, 400, 'INVALID_ARGUMENT', 'headers'],
    ['POST', P, { body: 'x', headers: { big: 'v'.repeat(64 * 1024) } }, 400, 'INVALID_ARGUMENT', 'headers'],
    ['POST', P, { body: 'x', bodyBase64: 'eA==' }, 400, 'INVALID_ARGUMENT', 'body'],
    ['POST', P, {}, 400, 'INVALID_ARGUMENT', 'body'],
    ['POST', P, { bodyBase64: '!!!' }, 400, 'INVALID_ARGUMENT', 'bodyBase64'],
    ['POST', P, { bodyBase64: 'A' }, 400, 'INVALID_ARGUMENT', 'bodyBase64'],
    ['POST', P, { bodyBase64: 5 }, 400, 'INVALID_ARGUMENT', 'bodyBase64'],
    ['POST', P, { body: 'x\ud800' }, 400, 'INVALID_ARGUMENT', 'body'],
    ['POST', P, { body: 'x', delaysMs: 5 }, 400, 'INVALID_ARGUMENT', 'delaysMs'],
    ['POST', '/queues/nope/messages', { body: 'x' }, 404, 'QUEUE_NOT_FOUND', 'queue'],
    // batch
    ['POST', `${P}/batch`, { messages: [] }, 400, 'INVALID_ARGUMENT', 'messages'],
    ['POST', `${P}/batch`, { messages: {} }, 400, 'INVALID_ARGUMENT', 'messages'],
    ['POST', `${P}/batch`, {}, 400, 'INVALID_ARGUMENT', 'messages'],
    ['POST', `${P}/batch`, { messages: Array.from({ length: 1001 }, () => ({ body: 'x' })) }, 400, 'INVALID_ARGUMENT', 'messages'],
    ['POST', `${P}/batch`, { messages: [{ body: 1 }, { body: 2 }, { body: 3 }, { body: 4, priority: 10 }] }, 400, 'INVALID_ARGUMENT', 'messages.3.priority'],
    ['POST', `${P}/batch`, { messages: [{ body: 1 }, { bodyBase64: '***' }] }, 400, 'INVALID_ARGUMENT', 'messages.1.bodyBase64'],
    ['POST', `${P}/batch`, { messages: [{ body: 1 }, {}] }, 400, 'INVALID_ARGUMENT', 'messages.1.body'],
    ['POST', `${P}/batch`, { messages: [{ body: 1 }, { body: 2, headers: headers(100_000) }] }, 400, 'INVALID_ARGUMENT', 'messages.1.headers'],
    // receive
    ['POST', '/queues/q/receive', { max: 0 }, 400, 'INVALID_ARGUMENT', 'max'],
    ['POST', '/queues/q/receive', { max: 1001 }, 400, 'INVALID_ARGUMENT', 'max'],
    ['POST', '/queues/q/receive', { max: '1' }, 400, 'INVALID_ARGUMENT', 'max'],
    ['POST', '/queues/q/receive', { max: null }, 400, 'INVALID_ARGUMENT', 'max'],
    ['POST', '/queues/q/receive', { waitMs: 20_001 }, 400, 'INVALID_ARGUMENT', 'waitMs'],
    ['POST', '/queues/q/receive', { waitMs: -1 }, 400, 'INVALID_ARGUMENT', 'waitMs'],
    ['POST', '/queues/q/receive', '{"waitMs":1e400}', 400, 'INVALID_ARGUMENT', 'waitMs'],
    ['POST', '/queues/q/receive', { visibilityTimeoutMs: 0 }, 400, 'INVALID_ARGUMENT', 'visibilityTimeoutMs'],
    ['POST', '/queues/q/receive', { maxx: 1 }, 400, 'INVALID_ARGUMENT', 'maxx'],
    ['POST', '/queues/nope/receive', {}, 404, 'QUEUE_NOT_FOUND', 'queue'],
    // ack, nack, extend
    ['POST', '/queues/q/ack', {}, 400, 'INVALID_ARGUMENT', 'receipt'],
    ['POST', '/queues/q/ack', { receipt: 'a', receipts: ['b'] }, 400, 'INVALID_ARGUMENT', 'receipt'],
    ['POST', '/queues/q/ack', { receipt: '' }, 400, 'INVALID_ARGUMENT', 'receipt'],
    ['POST', '/queues/q/ack', { receipt: null }, 400, 'INVALID_ARGUMENT', 'receipt'],
    ['POST', '/queues/q/ack', { receipt: 'r'.repeat(257) }, 400, 'INVALID_ARGUMENT', 'receipt'],
    ['POST', '/queues/q/ack', { receipts: [] }, 400, 'INVALID_ARGUMENT', 'receipts'],
    ['POST', '/queues/q/ack', { receipts: [5] }, 400, 'INVALID_ARGUMENT', 'receipts.0'],
    ['POST', '/queues/q/ack', { receipts: Array.from({ length: 1001 }, () => 'x') }, 400, 'INVALID_ARGUMENT', 'receipts'],
    ['POST', '/queues/q/ack', { receipt: 'forged' }, 404, 'RECEIPT_NOT_FOUND', 'receipt'],
    ['POST', '/queues/nope/ack', { receipt: 'x' }, 404, 'QUEUE_NOT_FOUND', 'queue'],
    ['POST', '/queues/q/nack', {}, 400, 'INVALID_ARGUMENT', 'receipt'],
    ['POST', '/queues/q/nack', { receipt: 'x', requeue: 'no' }, 400, 'INVALID_ARGUMENT', 'requeue'],
    ['POST', '/queues/q/nack', { receipt: 'x', delayMs: -1 }, 400, 'INVALID_ARGUMENT', 'delayMs'],
    ['POST', '/queues/q/nack', { receipt: 'x', reason: 1 }, 400, 'INVALID_ARGUMENT', 'reason'],
    ['POST', '/queues/q/nack', { receipt: 'forged' }, 404, 'RECEIPT_NOT_FOUND', 'receipt'],
    ['POST', '/queues/q/extend', { receipt: 'x' }, 400, 'INVALID_ARGUMENT', 'timeoutMs'],
    ['POST', '/queues/q/extend', { receipt: 'x', timeoutMs: 0 }, 400, 'INVALID_ARGUMENT', 'timeoutMs'],
    ['POST', '/queues/q/extend', { receipt: 'x', timeoutMs: 86_400_001 }, 400, 'INVALID_ARGUMENT', 'timeoutMs'],
    ['POST', '/queues/q/extend', { receipt: 'forged', timeoutMs: 5 }, 404, 'RECEIPT_NOT_FOUND', 'receipt'],
    // queue settings
    ['PUT', '/queues/q', { fifo: 'true' }, 400, 'INVALID_ARGUMENT', 'fifo'],
    ['PUT', '/queues/q', { maxAttempts: -1 }, 400, 'INVALID_ARGUMENT', 'maxAttempts'],
    ['PUT', '/queues/q', { maxAttempts: 1.5 }, 400, 'INVALID_ARGUMENT', 'maxAttempts'],
    ['PUT', '/queues/q', { backoff: null }, 400, 'INVALID_ARGUMENT', 'backoff'],
    ['PUT', '/queues/q', { backoff: { initialMs: '1' } }, 400, 'INVALID_ARGUMENT', 'backoff.initialMs'],
    ['PUT', '/queues/q', { backoff: { multiplier: 0.5 } }, 400, 'INVALID_ARGUMENT', 'backoff.multiplier'],
    ['PUT', '/queues/q', { backoff: { jitter: 2 } }, 400, 'INVALID_ARGUMENT', 'backoff.jitter'],
    ['PUT', '/queues/q', { backoff: { maxMs: 1e20 } }, 400, 'INVALID_ARGUMENT', 'backoff.maxMs'],
    ['PUT', '/queues/q', { backoff: { foo: 1 } }, 400, 'INVALID_ARGUMENT', 'backoff.foo'],
    ['PUT', '/queues/q', { visibilityTimeoutMs: 0 }, 400, 'INVALID_ARGUMENT', 'visibilityTimeoutMs'],
    ['PUT', '/queues/q', { deadLetter: 5 }, 400, 'INVALID_ARGUMENT', 'deadLetter'],
    ['PUT', '/queues/q', { deadLetter: 'x\u0007' }, 400, 'INVALID_ARGUMENT', 'deadLetter'],
    ['PUT', '/queues/q', { deadLetter: 'q' }, 400, 'INVALID_ARGUMENT', 'deadLetter'],
    ['PUT', '/queues/q', { messageTtlMs: 0 }, 400, 'INVALID_ARGUMENT', 'messageTtlMs'],
    ['PUT', '/queues/q', { dedupWindowMs: -1 }, 400, 'INVALID_ARGUMENT', 'dedupWindowMs'],
    ['PUT', '/queues/q', { fifoo: true }, 400, 'INVALID_ARGUMENT', 'fifoo'],
    ['PUT', '/queues/q', '[]', 400, 'INVALID_ARGUMENT', undefined],
    // peek, redrive
    ['GET', '/queues/q/messages?limit=0', undefined, 400, 'INVALID_ARGUMENT', 'limit'],
    ['GET', '/queues/q/messages?limit=1001', undefined, 400, 'INVALID_ARGUMENT', 'limit'],
    ['GET', '/queues/q/messages?limit=abc', undefined, 400, 'INVALID_ARGUMENT', 'limit'],
    ['GET', '/queues/q/messages?offset=-1', undefined, 400, 'INVALID_ARGUMENT', 'offset'],
    ['GET', '/queues/q/messages?foo=1', undefined, 400, 'INVALID_ARGUMENT', 'foo'],
    ['GET', '/queues/nope/messages', undefined, 404, 'QUEUE_NOT_FOUND', 'queue'],
    ['POST', '/queues/q/redrive', { max: 0 }, 400, 'INVALID_ARGUMENT', 'max'],
    ['POST', '/queues/q/redrive', { to: 'q' }, 400, 'INVALID_ARGUMENT', 'to'],
    ['POST', '/queues/q/redrive', { to: 'nope' }, 404, 'QUEUE_NOT_FOUND', 'to'],
    ['POST', '/queues/nope/purge', undefined, 404, 'QUEUE_NOT_FOUND', 'queue'],
    ['DELETE', '/queues/nope', undefined, 404, 'QUEUE_NOT_FOUND', 'queue'],
  ];

  it('refuses each with its status, code and field', async () => {
    const published = (await send('GET', '/queues/q')).json.stats.published;
    for (const [method, path, body, status, code, field] of cases) {
      const answer = await send(method, path, body);
      const label = `${method} ${path} ${typeof body === 'string' ? body : JSON.stringify(body)?.slice(0, 80)}`;
      assert.equal(answer.status, status, `${label} -> ${answer.text.slice(0, 300)}`);
      assert.equal(answer.json?.error?.code, code, `${label} -> ${answer.text.slice(0, 300)}`);
      assert.equal(answer.json?.error?.field, field, `${label} -> ${answer.text.slice(0, 300)}`);
    }
    assert.equal((await send('GET', '/queues/q')).json.stats.published, published, 'a refused request stored something');
  });

  it('refuses a million headers on a message, naming headers', async () => {
    assertError(await send('POST', P, { body: 'x', headers: headers(1_000_000) }), 400, 'INVALID_ARGUMENT', 'headers');
  });

  it('accepts values at the bounds', async () => {
    for (const message of [
      { body: 'x', delayMs: 86_400_000 },
      { body: 'x', delayMs: 0 },
      { body: 'x', ttlMs: 1 },
      { body: 'x', ttlMs: 1_209_600_000 },
      { body: 'x', priority: 9, id: 'i'.repeat(256), group: 'g'.repeat(256) },
      { body: 'x', headers: headers(256) },
      { bodyBase64: '' },
      { body: 'x', id: 'a\u0000b\u202ec' },
    ]) {
      const answer = await send('POST', P, message);
      assert.equal(answer.status, 201, `${JSON.stringify(message).slice(0, 80)} -> ${answer.text}`);
    }
    assert.equal((await send('POST', P, '{"body":"x","priority":-0}')).status, 201);
  });

  it('refuses lone UTF-16 surrogates in id, group and headers, as it does in body', async () => {
    // Stored through UTF-8 they become U+FFFD: the id changes at the next
    // restart, two ids collapse into one, dedup and FIFO groups break.
    assertError(await send('POST', P, '{"body":"x","id":"a\\ud800b"}'), 400, 'INVALID_ARGUMENT', 'id');
    assertError(await send('POST', P, '{"body":"x","group":"g\\udfff"}'), 400, 'INVALID_ARGUMENT', 'group');
    const key = await send('POST', P, '{"body":"x","headers":{"k\\ud800":"v"}}');
    assert.equal(key.status, 400, key.text);
    assert.match(key.json.error.field ?? '', /^headers/);
    const value = await send('POST', P, '{"body":"x","headers":{"k":"v\\udc00"}}');
    assert.equal(value.status, 400, value.text);
    assert.match(value.json.error.field ?? '', /^headers/);
  });

  it('afterwards the broker is alive and earlier messages are intact', assertIntact);
});

// ---------------------------------------------------------------------------

describe('oversized bodies', () => {
  const oversized = JSON.stringify({ body: 'a'.repeat(MAX_MESSAGE + 1) });

  /** Posts `text` chunked (no Content-Length), in 1 MiB writes. */
  function postChunked(path: string, text: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const request = httpRequest(
        `${usher.url}${path}`,
        { method: 'POST', headers: { 'content-type': 'application/json' } },
        (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(body), text: body }));
        },
      );
      request.on('error', reject);
      for (let i = 0; i < text.length; i += MiB) request.write(text.slice(i, i + MiB));
      request.end();
    });
  }

  it('refuses a message of 16 MiB + 1 byte, with Content-Length and chunked', async () => {
    assertError(await send('POST', '/queues/q/messages', oversized), 413, 'MESSAGE_TOO_LARGE', 'body');
    assertError(await postChunked('/queues/q/messages', oversized), 413, 'MESSAGE_TOO_LARGE', 'body');
    assertError(
      await send('POST', '/queues/q/messages/batch', `{"messages":[{"body":"x"},${oversized}]}`),
      413, 'MESSAGE_TOO_LARGE', 'messages.1.body',
    );
  });

  it('accepts a message of exactly 16 MiB', async () => {
    const answer = await send('POST', '/queues/q/messages', { id: 'sixteen', bodyBase64: Buffer.alloc(MAX_MESSAGE, 7).toString('base64') });
    assert.equal(answer.status, 201, answer.text);
    await send('POST', '/queues/q/purge');
  });

  it('refuses a Content-Length over the limit at once, and closes', async () => {
    const answer = await raw(
      `POST /queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${100 * MiB}\r\n\r\n{"body":`,
    );
    assert.equal(answer.closed, true);
    const [first] = parseAnswers(answer.text);
    assert.equal(first?.status, 413, answer.text);
    assert.equal(JSON.parse(first.body).error.code, 'PAYLOAD_TOO_LARGE');
  });

  it('refuses a chunked body past the limit before it is all sent, and closes', async () => {
    // Sends up to 48 MiB, about twice the limit, in 256 KiB chunks, and
    // stops at the first write the server no longer takes.
    const { answered, accepted, refused } = await new Promise<{ answered: string; accepted: number; refused: boolean }>((resolve) => {
      const socket = connect(usher.port, '127.0.0.1');
      let answered = '';
      let accepted = 0;
      let refused = false;
      socket.on('data', (chunk: Buffer) => (answered += chunk.toString()));
      socket.on('error', () => (refused = true));
      socket.on('close', () => resolve({ answered, accepted, refused: refused || accepted < 48 * MiB }));
      const piece = 'a'.repeat(256 * 1024);
      const frame = `${piece.length.toString(16)}\r\n${piece}\r\n`;
      socket.write(
        'POST /queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{"body":"\r\n',
      );
      void (async () => {
        for (let i = 0; i < 192 && !refused && !socket.destroyed; i++) {
          const ok = await new Promise<boolean>((done) => socket.write(frame, (err) => done(!err)));
          if (!ok) break;
          accepted += piece.length;
        }
        setTimeout(() => socket.destroy(), 2000);
      })();
    });
    assert.ok(refused && accepted < 40 * MiB, `the server took ${accepted} bytes`);
    // The 413 itself can be lost: the server closes with unread bytes
    // pending, the kernel answers them with a reset (see the report).
    const [first] = parseAnswers(answered);
    if (first !== undefined) {
      assert.equal(first.status, 413, answered.slice(0, 200));
      assert.equal(JSON.parse(first.body).error.code, 'PAYLOAD_TOO_LARGE');
    }
  });

  it('afterwards the broker is alive and earlier messages are intact', assertIntact);
});

// ---------------------------------------------------------------------------

describe('receipts, lease races and poison messages', () => {
  const receiveOne = async (queue: string, body: Record<string, unknown> = {}) => {
    const answer = await send('POST', `/queues/${queue}/receive`, body);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.messages.length, 1, answer.text);
    return answer.json.messages[0] as { id: string; receipt: string };
  };

  before(async () => {
    for (const name of ['r1', 'r2']) assert.equal((await send('PUT', `/queues/${name}`, {})).status, 201);
  });

  it('refuses a receipt from another queue and leaves its lease alone', async () => {
    await send('POST', '/queues/r2/messages', { id: 'other', body: 'other' });
    const { receipt } = await receiveOne('r2');
    assertError(await send('POST', '/queues/r1/ack', { receipt }), 404, 'RECEIPT_NOT_FOUND', 'receipt');
    assertError(await send('POST', '/queues/r1/nack', { receipt }), 404, 'RECEIPT_NOT_FOUND', 'receipt');
    assertError(await send('POST', '/queues/r1/extend', { receipt, timeoutMs: 1000 }), 404, 'RECEIPT_NOT_FOUND', 'receipt');
    assert.deepEqual((await send('POST', '/queues/r1/ack', { receipts: [receipt, 'forged'] })).json, { acked: 0, results: [false, false] });
    assert.equal((await send('GET', '/queues/r2')).json.stats.inFlight, 1);
    assert.equal((await send('POST', '/queues/r2/ack', { receipt })).status, 200);
  });

  it('settles a receipt acked twice at once exactly once', async () => {
    await send('POST', '/queues/r2/messages', { body: 'twice' });
    const { receipt } = await receiveOne('r2');
    const answers = await Promise.all([1, 2, 3].map(() => send('POST', '/queues/r2/ack', { receipt })));
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 404, 404]);
    const { receipt: next } = await (async () => {
      await send('POST', '/queues/r2/messages', { body: 'dup-in-batch' });
      return receiveOne('r2');
    })();
    assert.deepEqual((await send('POST', '/queues/r2/ack', { receipts: [next, next] })).json, { acked: 1, results: [true, false] });
  });

  it('lets exactly one of a concurrent ack and nack win', async () => {
    const before = (await send('GET', '/queues/r2')).json.stats;
    await send('POST', '/queues/r2/messages', { body: 'race' });
    const { receipt } = await receiveOne('r2');
    const [ack, nack] = await Promise.all([
      send('POST', '/queues/r2/ack', { receipt }),
      send('POST', '/queues/r2/nack', { receipt, delayMs: 0 }),
    ]);
    assert.deepEqual([ack.status, nack.status].sort(), [200, 404]);
    const after = (await send('GET', '/queues/r2')).json.stats;
    assert.equal(after.acked - before.acked + after.nacked - before.nacked, 1);
    assert.equal(after.inFlight, 0);
    assert.equal(after.total, ack.status === 200 ? 0 : 1);
    await send('POST', '/queues/r2/purge');
  });

  it('refuses a nack, extend or ack after the lease ran out; the message is ready again', async () => {
    await send('POST', '/queues/r2/messages', { id: 'expire', body: 'expire' });
    const { receipt } = await receiveOne('r2', { visibilityTimeoutMs: 50 });
    await sleep(150);
    assertError(await send('POST', '/queues/r2/nack', { receipt }), 404, 'RECEIPT_NOT_FOUND', 'receipt');
    assertError(await send('POST', '/queues/r2/extend', { receipt, timeoutMs: 1000 }), 404, 'RECEIPT_NOT_FOUND', 'receipt');
    assertError(await send('POST', '/queues/r2/ack', { receipt }), 404, 'RECEIPT_NOT_FOUND', 'receipt');
    const [message] = await peekAll('r2');
    assert.deepEqual([message.id, message.state, message.failures], ['expire', 'ready', 1]);
    await send('POST', '/queues/r2/purge');
  });

  it('serves peek and receive around a message whose JSON body is too deep to serialise', async () => {
    await send('PUT', '/queues/poison', {});
    await send('POST', '/queues/poison/messages', { id: 'good-1', body: 'good-1' });
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const published = await send('POST', '/queues/poison/messages', {
      id: 'poison',
      bodyBase64: Buffer.from(deep).toString('base64'),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(published.status, 201, published.text);
    await send('POST', '/queues/poison/messages', { id: 'good-2', body: 'good-2' });

    const peek = await send('GET', '/queues/poison/messages');
    assert.equal(peek.status, 200, peek.text.slice(0, 300));
    const received = await send('POST', '/queues/poison/receive', { max: 10 });
    assert.equal(received.status, 200, received.text.slice(0, 300));
    const ids = received.json.messages.map((m: { id: string }) => m.id);
    assert.deepEqual(ids, ['good-1', 'poison', 'good-2']);
    // Whatever was leased was handed out: no lease is stuck with nobody.
    assert.equal((await send('GET', '/queues/poison')).json.stats.inFlight, ids.length);
  });

  it('afterwards the broker is alive and earlier messages are intact', assertIntact);
});

// ---------------------------------------------------------------------------

describe('long polls', () => {
  /** A receive whose socket the caller can destroy. */
  function poll(queue: string, waitMs: number) {
    let destroy = () => {};
    let answered = false;
    const answer = new Promise<Answer | null>((resolve) => {
      const body = JSON.stringify({ waitMs });
      const request = httpRequest(
        `${usher.url}/queues/${queue}/receive`,
        { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': body.length } },
        (response) => {
          answered = true;
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(text), text }));
          response.on('close', () => {
            if (!response.complete) resolve(null);
          });
        },
      );
      request.on('error', () => resolve(null));
      request.on('close', () => {
        if (!answered) resolve(null);
      });
      request.end(body);
      destroy = () => request.destroy();
    });
    return { answer, destroy: () => destroy() };
  }

  /** Open HTTP client connections, as the broker counts them. */
  async function httpConnections(): Promise<number> {
    const { text } = await send('GET', '/metrics');
    const found = /^usher_connections\{protocol="http"\} (\d+)/m.exec(text);
    assert.ok(found, 'no usher_connections{protocol="http"} in /metrics');
    return Number(found[1]);
  }

  /** Waits up to 60 s for the broker's HTTP connection count to pass `check`. */
  async function waitForConnections(check: (count: number) => boolean, what: string) {
    const deadline = Date.now() + 60_000;
    let count = await httpConnections();
    while (!check(count) && Date.now() < deadline) {
      await sleep(50);
      count = await httpConnections();
    }
    assert.ok(check(count), `${what}: usher_connections{protocol="http"} is ${count}`);
  }

  it('1000 long polls at waitMs 20000 that hang up lease nothing and stall no one', async () => {
    await send('PUT', '/queues/lp', {});
    const before = await httpConnections();
    const polls = Array.from({ length: 1000 }, () => poll('lp', 20_000));
    // Every poll must have reached the broker before its client hangs up.
    // A request the broker reads only after the hang-up is served as from
    // a client that half-closed (HTTP allows it), and if the publishes
    // below were in by then, it leased a message that waits out its lease.
    // A fixed sleep was not enough at load 14 on 2 cores.
    await waitForConnections((count) => count >= before + 1000, 'all 1000 polls counted');
    // Stalled would mean healthz waits behind the polls: it must answer
    // while all 1000 are still waiting (none ends before its 20 s).
    let pollsEnded = 0;
    for (const p of polls) void p.answer.then(() => { pollsEnded++; });
    assert.equal((await send('GET', '/healthz')).status, 200);
    assert.equal(pollsEnded, 0, 'healthz answered only after some polls ended');
    for (const p of polls) p.destroy();
    assert.deepEqual(new Set(await Promise.all(polls.map((p) => p.answer))), new Set([null]));
    // Until the broker has read the hang-ups, a publish could still go to
    // a poll whose client is gone (and wait out its lease, as in SQS): a
    // loaded machine may take longer than any fixed sleep, so wait for
    // the broker's own count of open connections instead.
    await waitForConnections((count) => count <= before + 1, 'the hang-ups seen');

    for (let i = 0; i < 3; i++) await send('POST', '/queues/lp/messages', { body: `lp-${i}` });
    const stats = (await send('GET', '/queues/lp')).json.stats;
    assert.deepEqual([stats.ready, stats.inFlight, stats.delivered], [3, 0, 0]);
    await send('POST', '/queues/lp/purge');
  });

  it('500 waiting polls each get exactly one of 500 messages published at once', async () => {
    await send('PUT', '/queues/lp2', {});
    const polls = Array.from({ length: 500 }, () => poll('lp2', 10_000));
    await sleep(300);
    const batch = await send('POST', '/queues/lp2/messages/batch', {
      messages: Array.from({ length: 500 }, (_, i) => ({ id: `m-${i}`, body: i })),
    });
    assert.equal(batch.status, 201);
    const answers = await Promise.all(polls.map((p) => p.answer));
    const ids = answers.flatMap((a) => a?.json.messages.map((m: { id: string }) => m.id) ?? []);
    assert.equal(ids.length, 500);
    assert.equal(new Set(ids).size, 500);
  });

  it('deleting a queue answers every long poll waiting on it at once', async () => {
    await send('PUT', '/queues/lp3', {});
    const started = Date.now();
    const polls = Array.from({ length: 10 }, () =>
      send('POST', '/queues/lp3/receive', { waitMs: 20_000 })
        .then((answer) => ({ answer, ms: Date.now() - started })));
    await sleep(200);
    assert.equal((await send('DELETE', '/queues/lp3')).status, 204);
    const answers = await Promise.all(polls);
    for (const { answer, ms } of answers) {
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(answer.json, { messages: [] });
      // Well before the 20 s wait, with room for a loaded machine.
      assert.ok(ms < 10_000, `a poll on the deleted queue waited ${ms} ms`);
    }
  });

  it('afterwards the broker is alive and earlier messages are intact', assertIntact);
});

// ---------------------------------------------------------------------------
// Storage: the broker is SIGKILLed, its segments are damaged, and it is
// started again; the tests read its log for what it says it dropped.

async function storedIds(server: ServeProcess, queue: string): Promise<string[]> {
  const { status, json } = await server.request('GET', `/queues/${queue}/messages?limit=1000`);
  assert.equal(status, 200);
  return json.messages.map((m: { id: string }) => m.id);
}

describe('corrupted segments', () => {
  let base: ReturnType<typeof tempDir>;
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  const running: ServeProcess[] = [];
  const GROUPS = ['A', 'B', 'C'];
  const idsOf = (group: string, from = 0, to = 10) =>
    Array.from({ length: to - from }, (_, i) => `${group}${from + i}`);

  const segment = (data: string, id: number) =>
    join(data, 'log', `${String(id).padStart(20, '0')}.log`);

  /** A copy of the three-segment base folder to damage. */
  function copyOfBase(): string {
    const copy = tempDir('usher-damaged-');
    dirs.push(copy);
    cpSync(base.path, copy.path, { recursive: true });
    return copy.path;
  }

  async function serve(data: string): Promise<ServeProcess> {
    const server = new ServeProcess(data);
    running.push(server);
    await server.start();
    return server;
  }

  function flipByte(file: string, offset: number): void {
    const bytes = readFileSync(file);
    const at = offset < 0 ? bytes.length + offset : offset;
    bytes[at] ^= 0x10;
    writeFileSync(file, bytes);
  }

  // Three segments of ten confirmed messages each: every start writes a
  // new segment, and each group is published by its own process, then
  // SIGKILLed.
  before(async () => {
    base = tempDir('usher-segments-');
    for (const group of GROUPS) {
      const server = await serve(base.path);
      if (group === 'A') assert.equal((await server.request('PUT', '/queues/st', {})).status, 201);
      for (const id of idsOf(group)) {
        const answer = await server.request('POST', '/queues/st/messages', { id, body: `${id}-${'x'.repeat(100)}` });
        assert.equal(answer.status, 201);
      }
      await server.kill();
    }
    // Beside them, the crash mark the SIGKILLs left (crash-marks.ts).
    const segments = readdirSync(join(base.path, 'log')).filter((name) => name.endsWith('.log'));
    assert.deepEqual(segments.sort(), [1, 2, 3].map((id) => `${String(id).padStart(20, '0')}.log`));
  });

  after(async () => {
    for (const server of running) await server.kill();
    for (const d of dirs) d.remove();
    base?.remove();
  });

  let flipped: ServeProcess;

  it('after bytes flipped in a middle segment and in the last one\'s tail: serves, keeps the records before the damage, logs the drops', async () => {
    const data = copyOfBase();
    const middle = segment(data, 2);
    flipByte(middle, readFileSync(middle).indexOf('B5-') + 10);
    flipByte(segment(data, 3), -5);

    flipped = await serve(data);
    const ids = await storedIds(flipped, 'st');
    for (const id of [...idsOf('A'), ...idsOf('B', 0, 5), ...idsOf('C', 0, 9)]) {
      assert.ok(ids.includes(id), `${id} lost; have ${ids.join(',')}`);
    }
    assert.equal((await flipped.request('POST', '/queues/st/messages', { id: 'after', body: 'after' })).status, 201);
    // The last segment's tail is torn and cut; the middle one is corrupt,
    // skipped and left on disk: counted apart.
    const { store } = (await flipped.request('GET', '/healthz')).json;
    assert.equal(store.corruptTails, 1);
    assert.equal(store.corruptRegions, 1);

    for (const file of [middle, segment(data, 3)]) {
      const said = flipped.warnings().find((entry) => JSON.stringify(entry).includes(file));
      assert.ok(said, `nothing logged about ${file}:\n${flipped.stdout}`);
      assert.match(JSON.stringify(said), /dropp/i);
      assert.equal(typeof said.droppedBytes, 'number');
      assert.ok((said.droppedBytes as number) > 0);
    }
  });

  it('keeps the intact records after a damaged frame in an older segment', async () => {
    // B5's frame fails its checksum; B6..B9 are whole frames after it, in a
    // segment that was complete long before the crash.
    const ids = await storedIds(flipped, 'st');
    for (const id of idsOf('B', 6)) assert.ok(ids.includes(id), `${id} lost; have ${ids.join(',')}`);
  });

  it('refuses a segment header checksum mismatch, or a data dir that is a file, with one clear line', async () => {
    const data = copyOfBase();
    flipByte(segment(data, 2), 14);
    const server = new ServeProcess(data);
    running.push(server);
    assert.equal(await server.startOrExit(), false);
    assert.equal(server.exitCode, 1);
    const lines = server.stderr.trim().split('\n');
    assert.equal(lines.length, 1, server.stderr);
    assert.match(lines[0], /00000000000000000002\.log/);
    assert.match(lines[0], /checksum/);

    const file = join(copyOfBase(), 'plain-file');
    writeFileSync(file, 'not a folder');
    const onFile = new ServeProcess(file);
    running.push(onFile);
    assert.equal(await onFile.startOrExit(), false);
    assert.equal(onFile.stderr.trim().split('\n').length, 1, onFile.stderr);
    assert.match(onFile.stderr, /plain-file/);
  });

  it('survives a last segment cut at random points and garbage appended', async () => {
    const last = readFileSync(segment(base.path, 3));
    // Fixed "random" cut points: inside the header of a frame, inside a body.
    for (const cut of [Math.floor(last.length * 0.37), last.length - 77]) {
      const data = copyOfBase();
      writeFileSync(segment(data, 3), last.subarray(0, cut));
      const server = await serve(data);
      const ids = await storedIds(server, 'st');
      for (const id of [...idsOf('A'), ...idsOf('B')]) assert.ok(ids.includes(id), `cut ${cut}: ${id} lost`);
      assert.ok(ids.includes('C0'), `cut ${cut}: C0 lost`);
      assert.ok(server.warnings().some((entry) => JSON.stringify(entry).includes('00000000000000000003.log')));
      await server.kill();
    }

    const data = copyOfBase();
    writeFileSync(segment(data, 3), Buffer.concat([last, Buffer.from('garbage \x00\x01\xff garbage')]));
    const server = await serve(data);
    assert.deepEqual((await storedIds(server, 'st')).sort(), [...idsOf('A'), ...idsOf('B'), ...idsOf('C')].sort());
    await server.kill();
  });

  it('does not delete a middle segment whose header was zeroed', async () => {
    const data = copyOfBase();
    const middle = segment(data, 2);
    const bytes = readFileSync(middle);
    bytes.fill(0, 0, 24);
    writeFileSync(middle, bytes);

    const server = new ServeProcess(data);
    running.push(server);
    const started = await server.startOrExit();
    // Refusing to start is fine; deleting ten confirmed messages is not.
    assert.ok(existsSync(middle), 'the segment was deleted');
    if (started) {
      const ids = await storedIds(server, 'st');
      for (const id of idsOf('B')) assert.ok(ids.includes(id), `${id} lost`);
    } else {
      assert.match(server.stderr, /00000000000000000002\.log/);
    }
    await server.kill();
  });

  it('says in the log that a middle segment is missing', async () => {
    const data = copyOfBase();
    rmSync(segment(data, 2));
    const server = await serve(data);
    const ids = await storedIds(server, 'st');
    for (const id of [...idsOf('A'), ...idsOf('C')]) assert.ok(ids.includes(id), `${id} lost`);
    assert.ok(
      server.warnings().some((entry) => /00000000000000000002|segment 2\b/.test(JSON.stringify(entry))),
      `no warning names the missing segment:\n${server.stdout}`,
    );
    await server.kill();
  });
});
