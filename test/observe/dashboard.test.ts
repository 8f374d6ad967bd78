// The web dashboard in a real browser (Debian's chromium driven by
// playwright-core) against a real broker on a loopback port: charts draw
// from the live feed, dead letters are grouped by reason and source
// queue, a message can be peeked, and redrive moves one message, a whole
// group and a selection. Screenshots go to test-artifacts/dashboard/.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { chromium, type BrowserContext, type Page } from 'playwright-core';

import { call, startHttp, type Harness } from '../http/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = new URL('../../../test-artifacts/dashboard/', import.meta.url).pathname;
const skip = existsSync(CHROMIUM)
  ? false
  : `chromium is not installed at ${CHROMIUM} (Debian package "chromium")`;

let h: Harness;
let context: BrowserContext;
let page: Page;
let profile: string;
let base: string;
const pageErrors: string[] = [];

async function failSome(): Promise<void> {
  const { app } = h;
  await call(app, 'PUT', '/queues/orders', { deadLetter: 'dead', maxAttempts: 3 });
  await call(app, 'PUT', '/queues/payments', { deadLetter: 'dead' });
  await call(app, 'PUT', '/queues/retry');
  await call(app, 'POST', '/queues/orders/messages/batch', {
    messages: [
      ...['o1', 'o2', 'o3', 'o4', 'o5', 'o6'].map((id) => ({ id, body: `order ${id}` })),
      { id: 'o7', body: 'order o7', ttlMs: 1 },
    ],
  });
  await call(app, 'POST', '/queues/payments/messages', { id: 'p1', body: { amount: 5 } });
  await new Promise((resolve) => setTimeout(resolve, 5));

  const orders = await call(app, 'POST', '/queues/orders/receive', { max: 6 });
  const receipts = Object.fromEntries(
    orders.body.messages.map((m: { id: string; receipt: string }) => [m.id, m.receipt]),
  );
  await call(app, 'POST', '/queues/orders/ack', { receipts: [receipts.o1, receipts.o2] });
  for (const id of ['o3', 'o4', 'o5']) {
    await call(app, 'POST', '/queues/orders/nack', {
      receipt: receipts[id],
      requeue: false,
      reason: `card declined for ${id}`,
    });
  }
  const payment = await call(app, 'POST', '/queues/payments/receive', {});
  await call(app, 'POST', '/queues/payments/nack', {
    receipt: payment.body.messages[0].receipt,
    requeue: false,
  });
  h.broker.runDue();
}

const shot = (name: string) =>
  page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

describe('dashboard in chromium', { skip }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    h = await startHttp({ observe: { sampleIntervalMs: 200 } });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    profile = mkdtempSync(join(tmpdir(), 'usher-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--headless',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    page.setDefaultTimeout(10_000);
    await failSome();
  });

  after(async () => {
    await context?.close();
    await h?.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
  });

  it('shows health, connections and charts fed live', async () => {
    await page.goto(`${base}/dashboard/`);
    await page.locator('header .live').waitFor();
    // A few samples arrive at 200 ms each while messages keep flowing.
    for (let i = 0; i < 5; i++) {
      await call(h.app, 'POST', '/queues/retry/messages', { body: `tick ${i}` });
      await new Promise((resolve) => setTimeout(resolve, 150));
    }

    await page.locator('[data-health="ok"]').waitFor();
    const charts = page.locator('figure[data-chart] canvas');
    await charts.first().waitFor();
    const drawn = await page.evaluate(() =>
      [...document.querySelectorAll('figure[data-chart] canvas')].map((canvas) => {
        const c = canvas as HTMLCanvasElement;
        return c.width > 0 && c.height > 0;
      }),
    );
    const legend = await page
      .locator('figure[data-chart="Messages per second"] .u-legend')
      .innerText();
    await shot('overview');

    assert.deepEqual(drawn, [true, true]);
    assert.match(legend, /published/);
    assert.match(legend, /acked/);
    assert.deepEqual(pageErrors, []);
  });

  it('lists queues with their figures and creates one', async () => {
    await page.click('a[href="#queues"]');
    const orders = page.locator('tr[data-queue="orders"]');
    await orders.waitFor();
    await page.fill('form.create input[name="name"]', 'from-browser');
    await page.click('form.create button[type="submit"]');
    await page.locator('tr[data-queue="from-browser"]').waitFor();
    // Empty, and ready messages nobody takes: the status column says so.
    await page.locator('tr[data-queue="from-browser"] td[data-status]:text-is("idle")').waitFor();
    await page.locator('tr[data-queue="retry"] td[data-status]:text-is("stalled")').waitFor();
    await shot('queues');

    assert.match(await page.locator('tr[data-queue="dead"]').innerText(), /DLQ/);
    assert.equal(h.broker.hasQueue('from-browser'), true);
  });

  it('groups dead letters by reason and source queue and peeks one', async () => {
    await page.click('a[href="#dead-letters"]');
    const group = (key: string) => page.locator(`tr[data-group="${key}"] [data-count]`);
    await group('rejected/orders').waitFor();

    const counts = {
      rejectedOrders: await group('rejected/orders').innerText(),
      expiredOrders: await group('expired/orders').innerText(),
      rejectedPayments: await group('rejected/payments').innerText(),
    };
    await page.click('tr[data-group="rejected/orders"] button:text("show")');
    await page.click('tr[data-message="o4"] a');
    const peek = await page.locator('[data-peek="o4"]').innerText();
    await shot('dead-letters');

    assert.deepEqual(counts, { rejectedOrders: '3', expiredOrders: '1', rejectedPayments: '1' });
    assert.match(peek, /order o4/);
    assert.match(peek, /card declined for o4/);
    assert.match(peek, /x-usher-death-reason/);
  });

  it('redrives one message, a selection and a group', async () => {
    await page.click('[data-peek] button.close');
    await page.click('tr[data-message="o3"] button:text("redrive")');
    await page.locator('[data-notice]:text("1 of o3 moved")').waitFor();
    // The group stays open after a redrive.
    // Both boxes in one task, before the page renders again: each check
    // must count, not only the last (it did on a loaded machine).
    await page.evaluate(() => {
      for (const id of ['o4', 'o5']) {
        document.querySelector<HTMLInputElement>(`tr[data-message="${id}"] input[type="checkbox"]`)
          ?.click();
      }
    });
    await page.fill('input[name="target"]', 'retry');
    await page.click('button:text("redrive selected (2)")');
    await page.locator('[data-notice]:text("2 of 2 selected moved to retry")').waitFor();
    await page.fill('input[name="target"]', '');
    await page.click('tr[data-group="rejected/payments"] button:text("redrive group")');
    await page.locator('[data-notice]:text("1 of rejected from payments moved")').waitFor();
    await shot('redriven');

    const ids = (queue: string) => h.broker.peek(queue, { limit: 100, offset: 0 }).map((m) => m.id);
    assert.deepEqual(ids('dead'), ['o7']);
    assert.deepEqual(ids('orders').sort(), ['o3', 'o6']);
    assert.deepEqual(ids('payments'), ['p1']);
    assert.ok(ids('retry').includes('o4') && ids('retry').includes('o5'));
    assert.deepEqual(pageErrors, []);
  });

  it('purges and deletes queues once confirmed', async () => {
    page.on('dialog', (dialog) => void dialog.accept());
    await page.click('button:text("purge")');
    await page.locator('tr[data-group]').first().waitFor({ state: 'detached' });
    await page.click('a[href="#queues"]');
    await page.click('tr[data-queue="retry"] button:text("purge")');
    await page.click('tr[data-queue="from-browser"] button:text("delete")');
    await page.locator('tr[data-queue="from-browser"]').waitFor({ state: 'detached' });
    await page.locator('tr[data-queue="retry"] td[data-ready]:text-is("0")').waitFor();

    assert.equal(h.broker.getQueue('dead').stats.total, 0);
    assert.equal(h.broker.getQueue('retry').stats.total, 0);
    assert.equal(h.broker.hasQueue('from-browser'), false);
    assert.deepEqual(pageErrors, []);
  });
});
