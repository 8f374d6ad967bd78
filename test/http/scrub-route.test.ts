// POST /admin/scrub: starts a scrub of the log's sealed segments and
// answers before it ends; its figures show in /healthz and /metrics.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { type Harness, call, startHttp } from './harness.js';

let harness: Harness;

before(async () => {
  harness = await startHttp();
});

after(async () => {
  await harness.close();
});

describe('POST /admin/scrub', () => {
  it('starts a scrub in the background whose figures health and metrics show', async () => {
    const answer = await call(harness.app, 'POST', '/admin/scrub');
    assert.equal(answer.status, 202);
    assert.deepEqual(answer.body, { started: true });

    let health = await call(harness.app, 'GET', '/healthz');
    for (let i = 0; i < 200 && health.body.store.scrubsCompleted === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      health = await call(harness.app, 'GET', '/healthz');
    }
    assert.equal(health.body.store.scrubsCompleted, 1);
    assert.equal(health.body.store.scrubCorruptRegions, 0);
    assert.equal(health.body.store.scrubRunning, 0);

    const metrics = await call(harness.app, 'GET', '/metrics');
    assert.match(metrics.body, /^usher_store_scrubs_completed_total 1$/m);
    assert.match(metrics.body, /^usher_store_scrub_damaged_messages 0$/m);
  });
});
