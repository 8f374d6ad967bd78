// Long polling: a receive that waits answers as soon as a message lands,
// answers empty when waitMs passes, and stops waiting (leasing nothing)
// when its client goes away.

import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { call, errorsLogged, startHttp, type Harness } from './harness.js';

let h: Harness;

beforeEach(async () => {
  h = await startHttp();
  await call(h.app, 'PUT', '/queues/q');
});

afterEach(async () => {
  await h.close();
});

describe('POST /queues/{name}/receive with waitMs', () => {
  it('answers with a message published during the wait', async () => {
    const started = Date.now();
    const waiting = call(h.app, 'POST', '/queues/q/receive', {
      waitMs: 10_000,
    });
    await sleep(50);
    await call(h.app, 'POST', '/queues/q/messages', { body: 'late' });

    const answer = await waiting;
    const elapsed = Date.now() - started;

    assert.equal(answer.status, 200);
    assert.equal(answer.body.messages.length, 1);
    assert.equal(answer.body.messages[0].body, 'late');
    assert.ok(elapsed >= 50, `answered after ${elapsed} ms`);
    assert.ok(elapsed < 5_000, `answered after ${elapsed} ms`);
  });

  it('answers empty once waitMs has passed', async () => {
    const started = Date.now();
    const answer = await call(h.app, 'POST', '/queues/q/receive', {
      waitMs: 200,
    });
    const elapsed = Date.now() - started;

    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { messages: [] });
    assert.ok(elapsed >= 190, `answered after ${elapsed} ms`);
    assert.ok(elapsed < 2_000, `answered after ${elapsed} ms`);
  });

  it('stops waiting when the client disconnects', async () => {
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = h.app.server.address() as AddressInfo;

    // A client that asks for a long wait and hangs up after 100 ms.
    const client = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/queues/q/receive',
      headers: { 'content-type': 'application/json' },
    });
    const hungUp = new Promise<string>((resolve) => {
      client.on('error', (err: NodeJS.ErrnoException) =>
        resolve(err.code ?? err.message),
      );
      client.on('response', () => resolve('answered'));
    });
    client.end(JSON.stringify({ waitMs: 15_000 }));
    await sleep(100);
    client.destroy();
    assert.notEqual(await hungUp, 'answered');
    await sleep(50);

    // Had the wait gone on, this message would be leased to nobody.
    await call(h.app, 'POST', '/queues/q/messages', { body: 'kept' });
    const stats = (await call(h.app, 'GET', '/queues/q')).body.stats;
    const next = await call(h.app, 'POST', '/queues/q/receive', {});

    assert.equal(stats.ready, 1);
    assert.equal(stats.inFlight, 0);
    assert.equal(stats.delivered, 0);
    assert.equal(next.body.messages[0].body, 'kept');
    assert.deepEqual(errorsLogged(h.logs), []);
  });

  it('answers empty when the server closes, not holding it up', async () => {
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = h.app.server.address() as AddressInfo;

    const answer = new Promise<{ status: number; text: string }>(
      (resolve, reject) => {
        const client = request({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/queues/q/receive',
          headers: { 'content-type': 'application/json' },
        });
        client.on('error', reject);
        client.on('response', async (res) => {
          let text = '';
          for await (const chunk of res) text += chunk;
          resolve({ status: res.statusCode ?? 0, text });
        });
        client.end(JSON.stringify({ waitMs: 15_000 }));
      },
    );
    await sleep(100);

    const started = Date.now();
    await h.app.close();
    const { status, text } = await answer;
    const elapsed = Date.now() - started;

    assert.equal(status, 200);
    assert.deepEqual(JSON.parse(text), { messages: [] });
    assert.ok(elapsed < 5_000, `close took ${elapsed} ms`);
  });
});
