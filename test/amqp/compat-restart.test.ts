// What AMQP queue state survives a broker restart, checked on Usher and
// on a real RabbitMQ (restarted through bench/rabbitmq.sh over the same
// state folder), with amqplib. Apart from test/amqp/compat.test.ts
// because a restart would cut every other case's connections.
//
// - x-expires: RabbitMQ starts the clock again when the queue recovers,
//   so a queue survives a restart that comes just before it would have
//   expired, and expires x-expires after the restart if nobody uses it.
// - exclusive queues belong to their connection, which a restart ends:
//   they are gone afterwards, durable or not.
// - x-single-active-consumer: which consumer was active is not kept;
//   after a restart the first to subscribe is active, gets the messages
//   the old active one left unacked (redelivered), and the others wait.
// - storage hints (x-queue-mode, x-queue-leader-locator and the like):
//   a redeclare after a restart is compared with the declare before it.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import amqp, { type ChannelModel, type ConsumeMessage } from 'amqplib';

import { type RunningTarget, startRabbit, startUsher } from './compat/targets.js';

const EXPIRES_MS = 8_000;

const TARGETS = [
  { name: 'Usher', start: startUsher },
  { name: 'RabbitMQ', start: startRabbit },
];

async function connect(url: string): Promise<ChannelModel> {
  const connection = await amqp.connect(url);
  // A restart closes it (320); that is expected here.
  connection.on('error', () => {});
  return connection;
}

/**
 * Whether `queue` exists, asked without using it: a passive declare or a
 * basic.get would start its x-expires clock again, a publish does not.
 * A mandatory publish to the default exchange comes back when it does not.
 */
async function exists(url: string, queue: string): Promise<boolean> {
  const connection = await connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    let returned = false;
    channel.on('return', () => { returned = true; });
    channel.publish('', queue, Buffer.from('probe'), { mandatory: true });
    // Usher nacks a probe routed to the queue as it expires: it is gone.
    const confirmed = await channel.waitForConfirms().then(() => true, () => false);
    return confirmed && !returned;
  } finally {
    await connection.close();
  }
}

/** Messages a consumer got, and a way to wait for more. */
function collect(): { got: ConsumeMessage[]; onMessage(m: ConsumeMessage | null): void } {
  const got: ConsumeMessage[] = [];
  return { got, onMessage: (m) => { if (m !== null) got.push(m); } };
}

/**
 * Restarts `target` and waits until it has recovered its queues:
 * RabbitMQ answers before it has, and a queue not yet recovered looks
 * deleted. A plain durable queue showing up marks the point.
 */
async function restart(target: RunningTarget): Promise<number> {
  const sentinel = 'restart.sentinel';
  const connection = await connect(target.url);
  await (await connection.createChannel()).assertQueue(sentinel, { durable: true });
  await connection.close();
  const began = Date.now();
  await target.restart();
  await waitForAsync('the queues to be recovered', () => exists(target.url, sentinel).catch(() => false), 60_000);
  return began;
}

async function waitForAsync(what: string, ok: () => Promise<boolean>, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** What a redeclare of `queue` with `args` gets: 'ok', or the refusal's text. */
async function redeclare(
  url: string,
  queue: string,
  args: Record<string, unknown>,
): Promise<string> {
  const connection = await connect(url);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    await channel.assertQueue(queue, { durable: true, arguments: args });
    return 'ok';
  } catch (err) {
    return (err as Error).message;
  } finally {
    await connection.close().catch(() => {});
  }
}

async function waitFor(what: string, ok: () => boolean, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('AMQP state across a restart', { concurrency: true }, () => {
  for (const { name, start } of TARGETS) {
    // One at a time: each restarts the broker under the others' feet.
    describe(name, { concurrency: 1 }, () => {
      let target: RunningTarget | undefined;
      before(async () => { target = await start(); }, { timeout: 150_000 });
      after(async () => { await target?.stop(); }, { timeout: 90_000 });

      it('x-expires: the clock starts again at the restart', { timeout: 180_000 }, async () => {
        const url = target!.url;
        const queue = 'restart.expires';
        const setup = await connect(url);
        const channel = await setup.createChannel();
        await channel.assertQueue(queue, { durable: true, arguments: { 'x-expires': EXPIRES_MS } });
        const declared = Date.now();
        await setup.close();

        // Restart when most of the time is gone (RabbitMQ takes seconds).
        await sleep(EXPIRES_MS - 3_000);
        // The queue's new clock starts when it is recovered: after the
        // restart began, and before the broker answers again. On a busy
        // machine RabbitMQ may answer many seconds after recovering its
        // queues, so the bounds below count from when the restart began.
        const restartBegan = await restart(target!);

        // Past x-expires since the declare, well within it since the restart.
        await sleep(Math.max(0, declared + EXPIRES_MS + 1_000 - Date.now()));
        const elapsed = Date.now() - restartBegan;
        // Checked only while the new clock cannot have run out: with a
        // slow restart this run says nothing about survival.
        if (elapsed < EXPIRES_MS - 2_000) {
          // RabbitMQ recovers its queues one by one, this one maybe a
          // moment after the sentinel: allow it 3 s to show.
          await waitForAsync('the queue after the restart', () => exists(url, queue), 3_000)
            .catch(() => assert.fail(`gone ${Date.now() - declared} ms after the declare, ` +
              `${elapsed} ms after the restart began`));
        }

        // And it does expire, x-expires after the restart.
        const deadline = Date.now() + EXPIRES_MS + 15_000;
        while (await exists(url, queue)) {
          assert.ok(Date.now() < deadline, 'still there 15 s after it should have expired');
          await sleep(250);
        }
        const gone = Date.now() - restartBegan;
        assert.ok(gone >= EXPIRES_MS - 500, `expired ${gone} ms after the restart began`);
      });

      it('exclusive queues, durable ones too, are gone after a restart', { timeout: 180_000 }, async () => {
        const url = target!.url;
        const owner = await connect(url);
        const channel = await owner.createChannel();
        const named = await channel.assertQueue('restart.exclusive', { durable: true, exclusive: true });
        const generated = await channel.assertQueue('', { durable: true, exclusive: true });
        await restart(target!);
        await owner.close().catch(() => {});
        assert.equal(await exists(url, named.queue), false, 'the named exclusive queue is still there');
        assert.equal(await exists(url, generated.queue), false, 'the server-named one is still there');
      });

      it('storage hints: a redeclare after a restart is compared with the declare before it',
        { timeout: 180_000 }, async () => {
          const url = target!.url;
          const classic = { 'x-queue-mode': 'lazy', 'x-queue-version': 2 };
          const quorum = { 'x-queue-type': 'quorum', 'x-queue-leader-locator': 'random' };
          assert.equal(await redeclare(url, 'restart.hints.classic', classic), 'ok');
          assert.equal(await redeclare(url, 'restart.hints.quorum', quorum), 'ok');

          await restart(target!);

          assert.equal(await redeclare(url, 'restart.hints.classic', classic), 'ok');
          const lazyNoMore = { ...classic, 'x-queue-mode': 'default' };
          assert.match(await redeclare(url, 'restart.hints.classic', lazyNoMore),
            /406.*'x-queue-mode' .* received 'default' but current is 'lazy'/);
          assert.match(await redeclare(url, 'restart.hints.classic', { 'x-queue-mode': 'lazy' }),
            /406.*'x-queue-version' .* received none but current is the value '2'/);
          assert.equal(await redeclare(url, 'restart.hints.quorum', quorum), 'ok');
          assert.match(await redeclare(url, 'restart.hints.quorum', { 'x-queue-type': 'quorum' }),
            /406.*'x-queue-leader-locator' .* received none but current is the value 'random'/);
        });

      it('x-single-active-consumer: the first to subscribe after a restart is active', { timeout: 180_000 }, async () => {
        const url = target!.url;
        const queue = 'restart.sac';
        const first = await connect(url);
        const channel = await first.createChannel();
        await channel.assertQueue(queue, { durable: true, arguments: { 'x-single-active-consumer': true } });
        for (const body of ['a', 'b', 'c']) {
          channel.sendToQueue(queue, Buffer.from(body), { persistent: true });
        }
        await channel.prefetch(1);
        const earlier = collect();
        await channel.consume(queue, earlier.onMessage);
        await waitFor('a delivery before the restart', () => earlier.got.length === 1);
        // Left unacked: the restart gives it back.

        await restart(target!);

        const later = await connect(url);
        try {
          const laterChannel = await later.createChannel();
          // The same arguments are still equivalent after the restart.
          await laterChannel.assertQueue(queue, {
            durable: true, arguments: { 'x-single-active-consumer': true },
          });
          const waitingChannel = await later.createChannel();
          const active = collect();
          const waiting = collect();
          await laterChannel.consume(queue, active.onMessage, { noAck: true });
          await waitingChannel.consume(queue, waiting.onMessage, { noAck: true });
          await waitFor('three deliveries after the restart', () => active.got.length === 3);
          assert.deepEqual(active.got.map((m) => m.content.toString()).sort(), ['a', 'b', 'c']);
          const redelivered = active.got.filter((m) => m.fields.redelivered).map((m) => m.content.toString());
          assert.deepEqual(redelivered, [earlier.got[0].content.toString()]);

          laterChannel.sendToQueue(queue, Buffer.from('d'));
          await waitFor('the next delivery', () => active.got.length === 4);
          await sleep(300);
          assert.equal(waiting.got.length, 0, "the waiting consumer got a delivery");

          // The active one goes: the waiting one takes over.
          await laterChannel.close();
          waitingChannel.sendToQueue(queue, Buffer.from('e'));
          await waitFor('a delivery to the next in line', () => waiting.got.length === 1);
          assert.equal(waiting.got[0].content.toString(), 'e');
          await waitingChannel.deleteQueue(queue);
        } finally {
          await later.close();
          await first.close().catch(() => {});
        }
      });
    });
  }
});
