// GET /events holds a socket per open dashboard: the broker caps how many
// and answers the one over the cap with a JSON error, not a hang.

import assert from 'node:assert/strict';
import { get, type ClientRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { MAX_EVENT_STREAMS } from '../../src/observe/routes.js';
import { startHttp, type Harness } from '../http/harness.js';

let h: Harness;
let base: string;

before(async () => {
  h = await startHttp();
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
});

after(() => h.close());

interface Opened {
  request: ClientRequest;
  response: IncomingMessage;
}

function openEvents(): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const request = get(`${base}/events`, (response) => resolve({ request, response }));
    request.once('error', reject);
  });
}

async function bodyOf(response: IncomingMessage): Promise<any> {
  let text = '';
  for await (const chunk of response) text += chunk;
  return JSON.parse(text);
}

describe('event streams', () => {
  it(`holds ${MAX_EVENT_STREAMS} at once, refuses the next with 503, and takes one again once one closes`, async () => {
    const open: Opened[] = [];
    try {
      for (let i = 0; i < MAX_EVENT_STREAMS; i++) {
        const stream = await openEvents();
        assert.equal(stream.response.statusCode, 200);
        open.push(stream);
      }

      const refused = await openEvents();
      assert.equal(refused.response.statusCode, 503);
      assert.equal((await bodyOf(refused.response)).error.code, 'TOO_MANY_EVENT_STREAMS');

      open.pop()!.request.destroy();
      const deadline = Date.now() + 5_000;
      let again = await openEvents();
      while (again.response.statusCode === 503 && Date.now() < deadline) {
        again.request.destroy();
        await new Promise((resolve) => setTimeout(resolve, 20));
        again = await openEvents();
      }
      assert.equal(again.response.statusCode, 200);
      open.push(again);
    } finally {
      for (const stream of open) stream.request.destroy();
    }
  });
});

describe('a reader that stops reading', () => {
  it('has its stream closed by the broker instead of buffered without end', async () => {
    const fast = await startHttp({ observe: { sampleIntervalMs: 5 } });
    try {
      // Many queues make each update large, so the buffers fill in moments.
      for (let i = 0; i < 300; i++) {
        await fast.app.inject({ method: 'PUT', url: `/queues/stalled-reader-${String(i).padStart(3, '0')}` });
      }
      await fast.app.listen({ host: '127.0.0.1', port: 0 });
      const port = (fast.app.server.address() as AddressInfo).port;
      const response = await new Promise<IncomingMessage>((resolve, reject) =>
        get(`http://127.0.0.1:${port}/events`, resolve).once('error', reject),
      );
      assert.equal(response.statusCode, 200);
      response.pause();

      // A paused socket sees no close; the reader wakes after a while and
      // finds its stream ended by the broker instead of live.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const closed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 20_000);
        response.socket.once('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
        response.on('error', () => undefined);
        response.resume();
      });
      assert.ok(closed, 'the broker kept buffering for a reader that read nothing for 2 s');
    } finally {
      await fast.close();
    }
  });
});
