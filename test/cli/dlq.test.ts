// `usher dlq list|redrive` against a real `usher serve`: a message nacked
// without requeue lands in the dead-letter queue, is listed without a
// lease, and is moved back.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import amqp from 'amqplib';

import { runUsher, useUsherServer } from '../client/usher-process.js';

const cli = useUsherServer();
const usher = (...args: string[]) => cli.run(args);

async function stats(queue: string): Promise<Record<string, number>> {
  return JSON.parse((await usher('queue', 'stats', queue, '--json')).stdout).stats;
}

describe('usher dlq', () => {
  it('lists a rejected message and redrives it to its queue', async () => {
    await usher('queue', 'create', 'payments', '--dead-letter', 'payments.dlq');
    const id = (await usher('publish', 'payments', '{"amount":12}')).stdout.trim();

    const nacked = await usher(
      'consume', 'payments', '--nack', '--no-requeue',
      '--reason', 'card declined', '--json',
    );
    assert.equal(nacked.stderr, 'nacked 1: 1 dead-lettered (rejected)\n');
    assert.equal((await stats('payments')).total, 0);
    assert.equal((await stats('payments.dlq')).ready, 1);

    const listed = await usher('dlq', 'list', 'payments.dlq', '--json');
    const [dead] = listed.stdout.trimEnd().split('\n').map((line) => JSON.parse(line));
    assert.equal(dead.id, id);
    assert.deepEqual(dead.body, { amount: 12 });
    assert.equal(dead.state, 'ready');
    assert.equal(dead.headers['x-usher-death-reason'], 'rejected');
    assert.equal(dead.headers['x-usher-death-queue'], 'payments');
    // Listing takes no lease.
    assert.equal((await stats('payments.dlq')).inFlight, 0);

    const human = await usher('dlq', 'list', 'payments.dlq');
    assert.match(human.stdout, new RegExp(`^id\\s+${id}$`, 'm'));
    assert.match(
      human.stdout,
      /^died\s+rejected in "payments" after 1 attempt at \S+: card declined$/m,
    );
    assert.match(human.stdout, /^body\s+\{"amount":12\}$/m);

    const redriven = await usher('dlq', 'redrive', 'payments.dlq');
    assert.equal(
      redriven.stdout,
      'moved 1 message from "payments.dlq" to their source queues\n',
    );
    assert.equal((await stats('payments.dlq')).total, 0);
    assert.equal((await stats('payments')).ready, 1);
  });

  it('accepts the source queue in place of its dead-letter queue', async () => {
    await usher('queue', 'create', 'mail', '--dead-letter', 'mail.dlq');
    await usher('publish', 'mail', 'bounce');
    await usher('consume', 'mail', '--nack', '--no-requeue');

    const listed = await usher('dlq', 'list', 'mail', '--json');
    assert.equal(JSON.parse(listed.stdout).body, 'bounce');
    assert.equal(listed.stderr, 'using "mail.dlq", the dead-letter queue of "mail"\n');

    await usher('queue', 'create', 'mail.archive');
    const moved = await usher(
      'dlq', 'redrive', 'mail', '--to', 'mail.archive', '--max', '5',
    );
    assert.equal(moved.stdout, 'moved 1 message from "mail.dlq" to "mail.archive"\n');
    assert.equal((await stats('mail.archive')).ready, 1);
  });

  it('refuses to redrive a queue that is no dead-letter queue, unless --any-queue', async () => {
    await usher('queue', 'create', 'live.work');
    await usher('queue', 'create', 'live.other');
    await usher('publish', 'live.work', 'not dead');

    const refused = await runUsher(['dlq', 'redrive', 'live.work', '--to', 'live.other'],
      { url: cli.server().url });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /"live\.work" is not a dead-letter queue.*--any-queue/);
    assert.equal((await stats('live.work')).ready, 1, 'nothing moved');

    await usher('dlq', 'redrive', 'live.work', '--to', 'live.other', '--any-queue');
    assert.equal((await stats('live.other')).ready, 1);
  });

  it('narrows a redrive by --reason, --source and --id', async () => {
    await usher('queue', 'create', 'g.a', '--dead-letter', 'g.dlq');
    await usher('queue', 'create', 'g.b', '--dead-letter', 'g.dlq', '--max-attempts', '1');
    await usher('publish', 'g.a', 'a1');
    const a2 = (await usher('publish', 'g.a', 'a2')).stdout.trim();
    await usher('publish', 'g.b', 'b1');
    await usher('consume', 'g.a', '--max', '2', '--nack', '--no-requeue');
    await usher('consume', 'g.b', '--nack');
    assert.equal((await stats('g.dlq')).ready, 3);

    const byReason = await usher('dlq', 'redrive', 'g.dlq', '--reason', 'max-attempts');
    assert.equal(byReason.stdout, 'moved 1 message from "g.dlq" to their source queues\n');
    assert.equal((await stats('g.b')).ready, 1);

    const byId = await usher(
      'dlq', 'redrive', 'g.dlq', '--source', 'g.a', '--id', a2, '--id', 'no-such-id',
    );
    assert.equal(byId.stdout, 'moved 1 message from "g.dlq" to their source queues\n');
    assert.equal((await stats('g.a')).ready, 1);
    assert.equal((await stats('g.dlq')).ready, 1, 'a1 stays');

    const misspelt = await runUsher(['dlq', 'redrive', 'g.dlq', '--reason', 'rejectd'],
      { url: cli.server().url });
    assert.equal(misspelt.code, 2);
    assert.match(misspelt.stderr, /Allowed choices are rejected, max-attempts, expired, overflow/);
  });

  it('counts a queue fed by an AMQP dead-letter exchange as a dead-letter queue', async () => {
    const connection = await amqp.connect(cli.server().amqpUrl);
    const channel = await connection.createConfirmChannel();
    await channel.assertExchange('tickets.dlx', 'direct');
    await channel.assertQueue('sms.dlq');
    // No x-dead-letter-routing-key: the message's own key, sms.work, routes it.
    await channel.bindQueue('sms.dlq', 'tickets.dlx', 'sms.work');
    await channel.assertQueue('sms.work', { arguments: { 'x-dead-letter-exchange': 'tickets.dlx' } });
    channel.sendToQueue('sms.work', Buffer.from('undeliverable'));
    await channel.waitForConfirms();
    const message = await channel.get('sms.work');
    assert.ok(message !== false);
    channel.reject(message, false);
    // Its channel's close follows the reject; amqplib may send the
    // connection's close ahead of both.
    await channel.close();
    await connection.close();

    const info = JSON.parse((await usher('queue', 'stats', 'sms.dlq', '--json')).stdout);
    assert.deepEqual(info.deadLetterSources, ['sms.work']);
    const metrics = await (await fetch(`${cli.server().url}/metrics`)).text();
    assert.match(metrics, /^usher_dead_letter_queue_messages\{queue="sms\.dlq"\} 1$/m);

    const named = await usher('dlq', 'list', 'sms.work', '--json');
    assert.equal(named.stderr, 'using "sms.dlq", the dead-letter queue of "sms.work"\n');

    const moved = await usher('dlq', 'redrive', 'sms.dlq');
    assert.equal(moved.stdout, 'moved 1 message from "sms.dlq" to their source queues\n');
    assert.equal((await stats('sms.work')).ready, 1);

    // Usher's own deadLetter setting would never be used on it: refused.
    const refused = await runUsher(['queue', 'create', 'sms.work', '--dead-letter', 'sms.parking'],
      { url: cli.server().url });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /already exists .*deadLetter: its AMQP x-dead-letter-exchange decides/);
    const queues = JSON.parse((await usher('queue', 'list', '--json')).stdout) as
      Array<{ name: string }>;
    assert.ok(!queues.some((queue) => queue.name === 'sms.parking'), 'no parking queue made');
  });

  it('honours --limit and says when nothing is there', async () => {
    await usher('queue', 'create', 'many', '--dead-letter', 'many.dlq');
    for (let i = 0; i < 3; i++) await usher('publish', 'many', `m${i}`);
    await usher('consume', 'many', '--max', '3', '--nack', '--no-requeue');

    const limited = await usher('dlq', 'list', 'many.dlq', '--limit', '2', '--json');
    assert.equal(limited.stdout.trimEnd().split('\n').length, 2);

    await usher('dlq', 'redrive', 'many.dlq', '--max', '3');
    const empty = await usher('dlq', 'list', 'many.dlq');
    assert.equal(empty.stdout, '');
    assert.equal(empty.stderr, 'no messages in "many.dlq"\n');
  });
});
