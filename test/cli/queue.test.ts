// `usher queue ...` against a real `usher serve`.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { runUsher, useUsherServer } from '../client/usher-process.js';

const cli = useUsherServer();
const usher = (...args: string[]) => cli.run(args);

describe('usher queue', () => {
  it('creates a queue with every setting flag', async () => {
    const { stdout } = await usher(
      'queue', 'create', 'orders',
      '--fifo',
      '--max-attempts', '4',
      '--backoff', '250ms',
      '--backoff-max', '1m',
      '--backoff-multiplier', '3',
      '--backoff-jitter', '0.25',
      '--visibility-timeout', '45s',
      '--dead-letter', 'orders.dlq',
      '--ttl', '1h',
      '--dedup-window', '90s',
      '--dedup-max-ids', '5000',
      '--durability', 'os',
      '--max-length', '100',
      '--max-bytes', '1MiB',
      '--overflow', 'reject-lowest-priority',
      '--sheddable',
    );
    assert.equal(stdout, 'created queue "orders"\n');

    const again = await usher(
      'queue', 'create', 'orders', '--fifo', '--max-attempts', '4',
      '--backoff', '250', '--backoff-max', '60000',
      '--backoff-multiplier', '3', '--backoff-jitter', '0.25',
      '--visibility-timeout', '45000', '--dead-letter', 'orders.dlq',
      '--ttl', '3600000', '--dedup-window', '1m30s', '--dedup-max-ids', '5000',
      '--durability', 'os',
      '--max-length', '100', '--max-bytes', '1048576', '--overflow', 'reject-lowest-priority',
    );
    assert.equal(again.stdout, 'queue "orders" already exists with these settings\n');
    const updated = await usher('queue', 'create', 'orders', '--max-attempts', '6');
    assert.equal(updated.stdout, 'updated queue "orders"\n');
    await usher('queue', 'create', 'orders', '--max-attempts', '4');

    const { stdout: json } = await usher('queue', 'stats', 'orders', '--json');
    const info = JSON.parse(json);
    assert.equal(info.name, 'orders');
    assert.deepEqual(info.settings, {
      fifo: true,
      maxAttempts: 4,
      backoff: { initialMs: 250, multiplier: 3, maxMs: 60_000, jitter: 0.25 },
      visibilityTimeoutMs: 45_000,
      deadLetter: 'orders.dlq',
      messageTtlMs: 3_600_000,
      dedupWindowMs: 90_000,
      dedupMaxIds: 5000,
      durability: 'os',
      maxLength: 100,
      maxBytes: 1_048_576,
      overflow: 'reject-lowest-priority',
      sheddable: true,
    });
    assert.equal(info.stats.total, 0);
  });

  it('says an existing queue was left as it is when no settings are given', async () => {
    await usher('queue', 'create', 'payments', '--fifo', '--dead-letter', 'payments.dlq');

    const again = await usher('queue', 'create', 'payments');

    assert.equal(again.stdout,
      'queue "payments" already exists (fifo, max 10 attempts, dead-letter ' +
        '"payments.dlq"); no settings given, nothing changed\n');
  });

  it('takes --message-ttl, and --ttl as its older name', async () => {
    await usher('queue', 'create', 'sms', '--message-ttl', '1s');
    await usher('queue', 'create', 'sms.old', '--ttl', '2s');

    const ttlOf = async (queue: string) =>
      JSON.parse((await usher('queue', 'stats', queue, '--json')).stdout).settings.messageTtlMs;
    assert.equal(await ttlOf('sms'), 1000);
    assert.equal(await ttlOf('sms.old'), 2000);
    const both = await runUsher(['queue', 'create', 'sms', '--message-ttl', '1s', '--ttl', '2s'],
      { url: cli.server().url });
    assert.equal(both.code, 2);
    assert.match(both.stderr,
      /option '--ttl <duration>' cannot be used with option '--message-ttl <duration>'/);
    const help = await usher('queue', 'create', '--help');
    assert.match(help.stdout, /--message-ttl <duration>/);
  });

  it('says in its help what purge leaves', async () => {
    const { stdout } = await usher('queue', '--help');

    assert.match(stdout.replace(/\s+/g, ' '),
      /purge <name> remove the ready and delayed messages of a queue; leased ones stay leased/);
  });

  it('prints created queues as JSON with --json', async () => {
    const { stdout } = await usher('queue', 'create', 'plain', '--json');
    const info = JSON.parse(stdout);
    assert.equal(info.name, 'plain');
    assert.equal(info.settings.fifo, false);
  });

  it('lists queues as a table and as JSON', async () => {
    await usher('queue', 'create', 'listed');
    await usher('publish', 'listed', 'one');
    await usher('publish', 'listed', 'two');

    const { stdout } = await usher('queue', 'list');
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0], /^NAME\s+READY\s+IN-FLIGHT\s+DELAYED\s+TOTAL\s+DEAD-LETTER$/);
    const row = lines.find((line) => line.startsWith('listed '));
    assert.ok(row, stdout);
    assert.deepEqual(row.split(/\s+/), ['listed', '2', '0', '0', '2', '-']);

    const json = JSON.parse((await usher('queue', 'list', '--json')).stdout);
    assert.ok(Array.isArray(json));
    const listed = json.find((q: { name: string }) => q.name === 'listed');
    assert.equal(listed.stats.ready, 2);
    assert.equal(listed.stats.published, 2);
  });

  it('shows stats as aligned key/value lines', async () => {
    await usher('queue', 'create', 'counted');
    await usher('publish', 'counted', 'a');
    await usher('publish', 'counted', 'b', '--delay', '1h');
    await usher('publish', 'counted', 'c');
    await usher('consume', 'counted');

    const { stdout } = await usher('queue', 'stats', 'counted');
    const lines = stdout.trimEnd().split('\n');
    const values = new Map(lines.map((line) => {
      const [key, ...rest] = line.split(/\s+/);
      return [key, rest.join(' ')];
    }));
    assert.equal(values.get('queue'), 'counted');
    assert.equal(values.get('ready'), '1');
    assert.equal(values.get('inFlight'), '1');
    assert.equal(values.get('delayed'), '1');
    assert.equal(values.get('total'), '3');
    assert.equal(values.get('visibilityTimeout'), '30s');

    // Every value starts in the same column.
    const columns = new Set(lines.map((line) => line.search(/(?<=^\S+\s+)\S/)));
    assert.equal(columns.size, 1, stdout);
  });

  it('purges and deletes', async () => {
    await usher('queue', 'create', 'doomed');
    await usher('publish', 'doomed', 'x');
    await usher('publish', 'doomed', 'y');

    const purged = await usher('queue', 'purge', 'doomed');
    assert.equal(purged.stdout, 'purged 2 messages from "doomed"\n');
    const deleted = await usher('queue', 'delete', 'doomed');
    assert.equal(deleted.stdout, 'deleted queue "doomed"\n');

    const list = JSON.parse((await usher('queue', 'list', '--json')).stdout);
    assert.ok(!list.some((q: { name: string }) => q.name === 'doomed'));
  });
});
