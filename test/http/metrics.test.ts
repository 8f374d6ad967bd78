// GET /metrics: Prometheus text whose per-queue figures follow what the
// broker did, read at scrape time.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterEach, describe, it } from 'node:test';

import { call, metricSample as sample, startHttp, type Harness } from './harness.js';

let h: Harness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});


async function scrape(harness: Harness): Promise<string> {
  const answer = await call(harness.app, 'GET', '/metrics');
  assert.equal(answer.status, 200);
  assert.match(
    String(answer.headers['content-type']),
    /^text\/plain; version=0\.0\.4/,
  );
  return answer.body as string;
}

describe('GET /metrics', () => {
  it('shows per-queue figures after publish, receive and ack', async () => {
    h = await startHttp();
    const { app } = h;
    await call(app, 'PUT', '/queues/orders', { deadLetter: 'orders.dlq' });
    await call(app, 'POST', '/queues/orders/messages/batch', {
      messages: ['aaaa', 'bb', 'c', 'd'].map((body) => ({ body })),
    });
    await call(app, 'POST', '/queues/orders/messages', {
      body: 'later',
      delayMs: 60_000,
    });
    const received = await call(app, 'POST', '/queues/orders/receive', {
      max: 3,
    });
    const [first, second, third] = received.body.messages;
    await call(app, 'POST', '/queues/orders/ack', { receipt: first.receipt });
    await call(app, 'POST', '/queues/orders/nack', {
      receipt: second.receipt,
      requeue: false,
    });

    const text = await scrape(h);
    const q = (name: string, queue = 'orders') =>
      sample(text, `${name}{queue="${queue}"}`);

    assert.ok(third.receipt);
    assert.equal(q('usher_queue_ready_messages'), 1);
    assert.equal(q('usher_queue_in_flight_messages'), 1);
    assert.equal(q('usher_queue_delayed_messages'), 1);
    assert.equal(q('usher_queue_messages'), 3);
    assert.equal(q('usher_queue_bytes'), 1 + 1 + 5);
    assert.ok((q('usher_queue_oldest_ready_age_seconds') ?? -1) >= 0);
    assert.equal(q('usher_messages_published_total'), 5);
    assert.equal(q('usher_messages_delivered_total'), 3);
    assert.equal(q('usher_messages_acked_total'), 1);
    assert.equal(q('usher_messages_nacked_total'), 1);
    assert.equal(q('usher_messages_dead_lettered_total'), 1);
    assert.equal(q('usher_messages_expired_total'), 0);
    assert.equal(q('usher_messages_dropped_total'), 0);
    assert.equal(q('usher_messages_duplicate_total'), 0);
    assert.equal(q('usher_lease_expired_total'), 0);
    assert.equal(q('usher_queue_ready_messages', 'orders.dlq'), 1);
    assert.equal(sample(text, 'usher_up'), 1);
    assert.equal(sample(text, 'usher_queues'), 2);
    assert.equal(sample(text, 'usher_store_segments'), 1);
    assert.ok((sample(text, 'usher_store_written_bytes_total') ?? 0) > 0);
    const batches = sample(text, 'usher_store_batches_total') ?? 0;
    assert.ok(batches > 0);
    assert.ok((sample(text, 'usher_store_syncs_overlapped_total') ?? -1) >= 0);
    assert.equal(sample(text, 'usher_store_batch_seconds_count'), batches);
    assert.equal(sample(text, 'usher_store_batch_seconds_bucket{le="+Inf"}'), batches);
    assert.match(text, /# TYPE usher_store_batch_seconds histogram/);
    assert.match(text, /# TYPE usher_messages_acked_total counter/);
    assert.match(text, /# TYPE usher_queue_ready_messages gauge/);
  });

  it('drops the series of a deleted queue', async () => {
    h = await startHttp();
    await call(h.app, 'PUT', '/queues/gone');
    const before = await scrape(h);
    await call(h.app, 'DELETE', '/queues/gone');
    const after = await scrape(h);

    assert.equal(sample(before, 'usher_queue_ready_messages{queue="gone"}'), 0);
    assert.doesNotMatch(after, /queue="gone"/);
    assert.equal(sample(after, 'usher_queues'), 0);
  });

  it('adds process metrics under the usher_ prefix', async () => {
    h = await startHttp({ processMetrics: true });

    const text = await scrape(h);

    assert.ok((sample(text, 'usher_process_cpu_user_seconds_total') ?? 0) > 0);
    assert.match(text, /^usher_nodejs_heap_size_used_bytes \d+/m);
    // The loop's busy time grows with work done, and never past the
    // time it has run.
    const busy = sample(text, 'usher_event_loop_busy_seconds_total') ?? 0;
    assert.ok(busy > 0);
    assert.ok(busy <= performance.now() / 1000);
    const until = performance.now() + 30;
    while (performance.now() < until) {
      // The loop kept busy on purpose.
    }
    const later = sample(await scrape(h), 'usher_event_loop_busy_seconds_total') ?? 0;
    assert.ok(later - busy >= 0.025, `busy ${busy} then ${later}`);
  });

  it('exports only metrics that docs/metrics.md lists', async () => {
    h = await startHttp({ processMetrics: true });
    const docs = readFileSync(
      new URL('../../../docs/metrics.md', import.meta.url),
      'utf8',
    );

    const text = await scrape(h);
    const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
    const missing = names.filter((name) => !docs.includes(`| \`${name}\` |`));

    assert.ok(names.length > 40, `only ${names.length} metrics`);
    assert.deepEqual(missing, []);
  });
});
