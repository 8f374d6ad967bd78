// `usher publish`, `consume`, `ack` and `nack` against a real `usher serve`.

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { runUsher, useUsherServer } from '../client/usher-process.js';

const cli = useUsherServer();
const usher = cli.run;

/** `consume --json` output, one object per line. */
function parseLines(stdout: string): Array<Record<string, any>> {
  return stdout.trimEnd().split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

async function stats(queue: string): Promise<Record<string, number>> {
  return JSON.parse((await usher(['queue', 'stats', queue, '--json'])).stdout).stats;
}

describe('usher publish and consume', () => {
  it('publishes with every option and consumes the fields back', async () => {
    await usher(['queue', 'create', 'fields']);
    const published = await usher([
      'publish', 'fields', '{"order":7,"items":["a"]}',
      '--priority', '7', '--group', 'customer-1', '--id', 'order-7',
      '--ttl', '1h', '--header', 'tenant=acme', '--header', 'trace=a=b',
    ]);
    assert.equal(published.stdout, 'order-7\n');

    const { stdout } = await usher(['consume', 'fields', '--json']);
    const [message] = parseLines(stdout);
    assert.equal(message.id, 'order-7');
    assert.deepEqual(message.body, { order: 7, items: ['a'] });
    assert.equal(message.priority, 7);
    assert.equal(message.group, 'customer-1');
    assert.equal(message.attempt, 1);
    assert.equal(message.headers.tenant, 'acme');
    assert.equal(message.headers.trace, 'a=b');
    assert.equal(message.headers['content-type'], 'application/json');
    assert.equal(typeof message.receipt, 'string');

    // Without --ack the lease stays; `usher ack` settles it.
    assert.equal((await stats('fields')).inFlight, 1);
    const acked = await usher(['ack', 'fields', message.receipt]);
    assert.equal(acked.stdout, 'acked 1 of 1\n');
    assert.equal((await stats('fields')).total, 0);
  });

  it('shows the broker\'s whole reason for each receipt it could not ack', async () => {
    await usher(['queue', 'create', 'notify']);
    await usher(['queue', 'create', 'other']);
    await usher(['publish', 'other', 'job']);
    const [leased] = parseLines((await usher(['consume', 'other', '--json'])).stdout);

    const result = await runUsher(['ack', 'notify', 'bogus', leased.receipt],
      { url: cli.server().url });

    assert.equal(result.code, 1);
    assert.equal(result.stdout, 'acked 0 of 2\n');
    assert.equal(result.stderr,
      'usher: receipt "bogus" is not a current lease of queue "notify": it was ' +
        'settled, its lease expired, or it never existed\n' +
      `usher: receipt "${leased.receipt}" is a lease of queue "other", not of ` +
        'queue "notify": settle it through queue "other"\n');
    assert.equal((await stats('other')).inFlight, 1);
  });

  it('sends a BODY that is not a JSON object or array as text', async () => {
    await usher(['queue', 'create', 'texts']);
    for (const body of ['hello world', '42', '"quoted"', '{broken']) {
      await usher(['publish', 'texts', body]);
    }
    const { stdout } = await usher(
      ['consume', 'texts', '--max', '10', '--json', '--ack'],
    );
    assert.deepEqual(
      parseLines(stdout).map((m) => m.body),
      ['hello world', '42', '"quoted"', '{broken'],
    );
  });

  it('publishes files: JSON parsed, other bytes as they are', async () => {
    await usher(['queue', 'create', 'files']);
    const json = join(cli.server().dataDir, 'order.json');
    const binary = join(cli.server().dataDir, 'blob.bin');
    await writeFile(json, '{\n  "order": 8\n}\n');
    await writeFile(binary, Buffer.from([0xde, 0xad, 0xbe, 0xef]));

    await usher(['publish', 'files', '--file', json]);
    await usher(['publish', 'files', '--file', binary]);
    await usher(['publish', 'files', '--file', '-'], 'from stdin');

    const messages = parseLines(
      (await usher(['consume', 'files', '--max', '3', '--json', '--ack'])).stdout,
    );
    assert.deepEqual(messages[0].body, { order: 8 });
    assert.equal(messages[1].bodyBase64, '3q2+7w==');
    assert.equal(messages[1].body, undefined);
    assert.equal(messages[2].body, 'from stdin');
  });

  it('publishes 20,000 lines of stdin in batches', async () => {
    await usher(['queue', 'create', 'bulk']);
    const lines = Array.from({ length: 20_000 }, (_, i) =>
      i % 2 === 0 ? `line ${i}` : JSON.stringify({ n: i }),
    );

    const began = Date.now();
    const { stdout } = await usher(
      ['publish', 'bulk', '--lines', '--priority', '3'],
      `${lines.join('\n')}\n`,
    );
    const took = Date.now() - began;
    assert.match(stdout, /^published 20000 messages to "bulk" in 40 requests/);
    assert.ok(took < 30_000, `took ${took}ms`);

    const counts = await stats('bulk');
    assert.equal(counts.ready, 20_000);
    assert.equal(counts.published, 20_000);

    const sample = parseLines(
      (await usher(['consume', 'bulk', '--max', '2', '--json'])).stdout,
    );
    assert.equal(sample.length, 2);
    assert.ok(sample.every((m) => m.priority === 3));
    const bodies = sample.map((m) => m.body);
    for (const body of bodies) {
      if (typeof body === 'string') assert.match(body, /^line \d+$/);
      else assert.equal(typeof body.n, 'number');
    }
  });

  it('keeps line order on a FIFO queue and skips blank lines', async () => {
    await usher(['queue', 'create', 'ordered', '--fifo']);
    const lines = Array.from({ length: 1_200 }, (_, i) => `m${i}`);
    const crlf = lines.slice(0, 600).join('\r\n');
    const input = `${crlf}\n\n${lines.slice(600).join('\n')}`;
    await usher(['publish', 'ordered', '--lines'], input);

    const consume = ['consume', 'ordered', '--max', '1000', '--json', '--ack'];
    const first = parseLines((await usher(consume)).stdout);
    const rest = parseLines((await usher(consume)).stdout);
    const bodies = [...first, ...rest].map((m) => m.body);
    assert.deepEqual(bodies, lines);
  });

  it('prints messages for people without --json', async () => {
    await usher(['queue', 'create', 'human']);
    await usher(['publish', 'human', '{"a":1}', '--group', 'g']);
    const { stdout, stderr } = await usher(['consume', 'human', '--ack']);

    const lines = stdout.trimEnd().split('\n');
    assert.deepEqual(lines.map((line) => line.split(/\s+/)[0]), [
      'id', 'attempt', 'priority', 'group', 'headers', 'receipt', 'body',
    ]);
    assert.match(stdout, /^attempt\s+1$/m);
    assert.match(stdout, /^group\s+g$/m);
    assert.match(stdout, /^body\s+\{"a":1\}$/m);
    assert.equal(stderr, 'acked 1 of 1\n');

    const empty = await usher(['consume', 'human']);
    assert.equal(empty.stdout, '');
    assert.equal(empty.stderr, 'no messages ready in "human"\n');
  });

  it('waits for a message with --wait', async () => {
    await usher(['queue', 'create', 'later']);
    await usher(['publish', 'later', 'soon', '--delay', '300ms']);
    const { stdout } = await usher(
      ['consume', 'later', '--wait', '5s', '--json', '--ack'],
    );
    assert.equal(parseLines(stdout)[0].body, 'soon');
  });

  it('nacks with a delay, then counts the redelivery as attempt 2', async () => {
    await usher(['queue', 'create', 'retried']);
    await usher(['publish', 'retried', 'job']);

    // Long enough for the stats command to find it still delayed: one
    // `usher` run took over 2 s on a loaded machine, and a 2 s delay
    // had run out by then.
    const first = await usher([
      'consume', 'retried', '--json', '--nack', '--delay', '8s', '--reason', 'later',
    ]);
    assert.equal(parseLines(first.stdout)[0].attempt, 1);
    assert.equal(first.stderr, 'nacked 1: 1 retried\n');
    assert.equal((await stats('retried')).delayed, 1);

    const second = await usher(
      ['consume', 'retried', '--wait', '15s', '--json', '--ack'],
    );
    const [message] = parseLines(second.stdout);
    assert.equal(message.attempt, 2);
    assert.equal(message.redelivered, true);
  });

  it('nacks a receipt with `usher nack`', async () => {
    await usher(['queue', 'create', 'by-receipt']);
    await usher(['publish', 'by-receipt', 'x']);
    const consumed = await usher(['consume', 'by-receipt', '--json']);
    const [message] = parseLines(consumed.stdout);

    const { stdout } = await usher(
      ['nack', 'by-receipt', message.receipt, '--delay', '0'],
    );
    assert.equal(stdout, 'nacked: 1 retried\n');
    assert.equal((await stats('by-receipt')).inFlight, 0);
  });

  it('says when a nack on the last attempt dead-letters the message, or drops it', async () => {
    await usher(['queue', 'create', 'last-try', '--max-attempts', '1', '--dead-letter', 'last-try.dlq']);
    await usher(['queue', 'create', 'no-dlq', '--max-attempts', '1']);
    for (const queue of ['last-try', 'no-dlq']) {
      await usher(['publish', queue, 'x']);
      const [message] = parseLines((await usher(['consume', queue, '--json'])).stdout);
      const { stdout } = await usher(['nack', queue, message.receipt]);
      assert.equal(
        stdout,
        queue === 'last-try'
          ? 'nacked: 1 dead-lettered (max-attempts)\n'
          : 'nacked: 1 dropped (max-attempts; no dead-letter queue)\n',
      );
    }
    assert.equal((await stats('last-try.dlq')).ready, 1);
  });
});
