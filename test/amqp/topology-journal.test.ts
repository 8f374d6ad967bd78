// exchanges.json and exchanges.journal (src/amqp/topology-journal.ts):
// a change is one record appended, not a rewrite of every binding; the
// state read back after a restart is the state kept, through compactions,
// a torn last write, damage inside the journal and a crash between a new
// snapshot and its journal.

import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { JOURNAL_FILE, SNAPSHOT_FILE, TopologyJournal } from '../../src/amqp/topology-journal.js';
import type { ExchangeTable } from '../../src/routing/exchanges.js';
import { silentLogger, tempDir } from '../helpers.js';
import { FakeQueues } from '../routing/helpers.js';

const queues = new FakeQueues('orders', 'audit', 'tmp.scratch');

let dir: ReturnType<typeof tempDir>;
beforeEach(() => { dir = tempDir('usher-topology-journal-'); });
afterEach(() => dir.remove());

async function openAt(compactFloorBytes?: number) {
  return TopologyJournal.open(dir.path, queues, silentLogger, { compactFloorBytes });
}

/**
 * Some of everything a journal records, cascades included, saving after
 * each change so a low compaction floor compacts along the way.
 */
async function shapeTopology(table: ExchangeTable, save: () => Promise<void>): Promise<void> {
  const steps: Array<() => unknown> = [
    () => table.declare({ name: 'logs', type: 'topic', durable: true }),
    () => table.declare({ name: 'fan', type: 'fanout', durable: true, autoDelete: true }),
    () => table.declare({ name: 'match', type: 'headers', durable: true }),
    () => table.declare({ name: 'scratch', type: 'direct', durable: false }),
    () => table.bind({ source: 'logs', destination: 'orders', destinationKind: 'queue', routingKey: '*.error' }),
    () => table.bind({ source: 'logs', destination: 'fan', destinationKind: 'exchange', routingKey: '#' }),
    () => table.bind({ source: 'fan', destination: 'audit', destinationKind: 'queue' }),
    () => table.bind({
      source: 'match', destination: 'audit', destinationKind: 'queue',
      arguments: { 'x-match': 'any', region: 'eu', size: 12n },
    }),
    () => table.bind({ source: 'scratch', destination: 'orders', destinationKind: 'queue', routingKey: 'k' }),
    () => table.bind({ source: 'logs', destination: 'tmp.scratch', destinationKind: 'queue', routingKey: 't' }),
  ];
  for (let i = 0; i < 50; i++) {
    steps.push(() => table.bind({
      source: 'logs', destination: 'orders', destinationKind: 'queue', routingKey: `key.${i}`,
    }));
  }
  for (let i = 0; i < 50; i += 2) {
    steps.push(() => table.unbind({
      source: 'logs', destination: 'orders', destinationKind: 'queue', routingKey: `key.${i}`,
    }));
  }
  // fan loses its last binding and goes (auto-delete), taking logs → fan.
  steps.push(() => table.queueDeleted('audit'));
  steps.push(() => table.declare({ name: 'late', type: 'direct', durable: true }));
  steps.push(() => table.bind({ source: 'late', destination: 'orders', destinationKind: 'queue' }));
  steps.push(() => table.delete('late'));
  for (const step of steps) {
    step();
    await save();
  }
}

describe('topology journal', () => {
  it('reads back the same durable state, before and after compactions', async () => {
    for (const floor of [undefined, 512]) {
      dir.remove();
      dir = tempDir('usher-topology-journal-');
      const { table, journal } = await openAt(floor);
      await shapeTopology(table, () => journal.sync());
      const kept = JSON.stringify(table);
      if (floor !== undefined) {
        const { generation } = JSON.parse(readFileSync(join(dir.path, SNAPSHOT_FILE), 'utf8'));
        assert.ok(generation >= 2, `generation ${generation}`);
      }
      await journal.close();

      const again = await openAt(floor);
      assert.equal(JSON.stringify(again.table), kept, `floor ${floor}`);
      assert.equal(again.table.get('fan'), undefined);
      assert.deepEqual([...again.table.route('logs', 'key.1')], ['orders']);
      assert.deepEqual([...again.table.route('logs', 'key.2')], []);
      await again.journal.close();
    }
  });

  it('appends a bind instead of rewriting exchanges.json', async () => {
    const { table, journal } = await openAt();
    table.declare({ name: 'logs', type: 'topic', durable: true });
    await journal.sync();
    const journalBefore = statSync(join(dir.path, JOURNAL_FILE)).size;
    writeFileSync(join(dir.path, SNAPSHOT_FILE), 'not written by a bind');

    for (let i = 0; i < 200; i++) {
      table.bind({ source: 'logs', destination: 'orders', destinationKind: 'queue', routingKey: `k.${i}` });
      await journal.sync();
    }
    const grown = statSync(join(dir.path, JOURNAL_FILE)).size - journalBefore;
    assert.equal(readFileSync(join(dir.path, SNAPSHOT_FILE), 'utf8'), 'not written by a bind');
    // One record of about 150 bytes a bind, whatever is bound already.
    assert.ok(grown > 200 * 100 && grown < 200 * 300, `journal grew ${grown} bytes`);
    await journal.close();
  });

  it('compacts into exchanges.json once the journal outgrows it', async () => {
    const { table, journal } = await openAt(4096);
    table.declare({ name: 'logs', type: 'topic', durable: true });
    for (let i = 0; i < 300; i++) {
      table.bind({ source: 'logs', destination: 'orders', destinationKind: 'queue', routingKey: `k.${i}` });
      await journal.sync();
    }
    const snapshot = JSON.parse(readFileSync(join(dir.path, SNAPSHOT_FILE), 'utf8'));
    assert.ok(snapshot.generation >= 1, `generation ${snapshot.generation}`);
    const journalSize = statSync(join(dir.path, JOURNAL_FILE)).size;
    assert.ok(journalSize <= Math.max(4096, readFileSync(join(dir.path, SNAPSHOT_FILE)).length) + 400);
    await journal.close();

    const again = await openAt(4096);
    assert.equal(again.table.bindings().length, 300);
    await again.journal.close();
  });

  it('drops a last record cut short and keeps appending after it', async () => {
    const { table, journal } = await openAt();
    table.declare({ name: 'logs', type: 'topic', durable: true });
    table.bind({ source: 'logs', destination: 'orders', destinationKind: 'queue', routingKey: 'a' });
    await journal.sync();
    await journal.close();
    // The crash came in the middle of the next record.
    appendFileSync(join(dir.path, JOURNAL_FILE), Buffer.from([0, 0, 0, 90, 1, 2, 3, 4, 123, 34]));

    const second = await openAt();
    assert.equal(second.table.bindings().length, 1);
    second.table.bind({ source: 'logs', destination: 'orders', destinationKind: 'queue', routingKey: 'b' });
    await second.journal.sync();
    await second.journal.close();

    const third = await openAt();
    assert.deepEqual(third.table.bindings().map((b) => b.routingKey).sort(), ['a', 'b']);
    assert.deepEqual(readdirSync(dir.path).filter((f) => f.includes('unreadable')), []);
    await third.journal.close();
  });

  it('sets aside a journal damaged inside, keeping the records before the damage', async () => {
    const { table, journal } = await openAt();
    table.declare({ name: 'logs', type: 'topic', durable: true });
    for (const key of ['a', 'b', 'c']) {
      table.bind({ source: 'logs', destination: 'orders', destinationKind: 'queue', routingKey: key });
      await journal.sync();
    }
    await journal.close();
    const path = join(dir.path, JOURNAL_FILE);
    const bytes = readFileSync(path);
    // The routing key of the second binding ('b') becomes 'x': its CRC fails.
    const at = bytes.indexOf('"routingKey":"b"') + '"routingKey":"'.length;
    bytes[at] = 'x'.charCodeAt(0);
    writeFileSync(path, bytes);

    const again = await openAt();
    assert.deepEqual(again.table.bindings().map((b) => b.routingKey), ['a']);
    const aside = readdirSync(dir.path).filter((f) => f.startsWith(`${JOURNAL_FILE}.unreadable-`));
    assert.equal(aside.length, 1);
    assert.deepEqual(readFileSync(join(dir.path, aside[0])), bytes);
    await again.journal.close();

    // What was kept was written as a snapshot at once: a second restart
    // does not depend on the file set aside.
    const third = await openAt();
    assert.deepEqual(third.table.bindings().map((b) => b.routingKey), ['a']);
    await third.journal.close();
  });

  it('ignores a journal older than the snapshot (crash between the two files)', async () => {
    const { table, journal } = await openAt();
    table.declare({ name: 'logs', type: 'topic', durable: true });
    table.bind({ source: 'logs', destination: 'orders', destinationKind: 'queue', routingKey: 'a' });
    await journal.sync();
    await journal.close();
    const oldJournal = readFileSync(join(dir.path, JOURNAL_FILE));

    // Compact (tiny floor), then put the old journal back, as if the
    // crash came after the snapshot's rename and before the journal's.
    const compacting = await openAt(1);
    compacting.table.bind({ source: 'logs', destination: 'orders', destinationKind: 'queue', routingKey: 'b' });
    await compacting.journal.sync();
    await compacting.journal.close();
    assert.equal(JSON.parse(readFileSync(join(dir.path, SNAPSHOT_FILE), 'utf8')).generation, 1);
    writeFileSync(join(dir.path, JOURNAL_FILE), oldJournal);

    const again = await openAt();
    assert.deepEqual(again.table.bindings().map((b) => b.routingKey).sort(), ['a', 'b']);
    again.table.bind({ source: 'logs', destination: 'orders', destinationKind: 'queue', routingKey: 'c' });
    await again.journal.sync();
    await again.journal.close();
    const third = await openAt();
    assert.deepEqual(third.table.bindings().map((b) => b.routingKey).sort(), ['a', 'b', 'c']);
    await third.journal.close();
  });

  it('sets the journal aside with an unreadable snapshot', async () => {
    const { table, journal } = await openAt();
    table.declare({ name: 'logs', type: 'topic', durable: true });
    await journal.sync();
    await journal.close();
    writeFileSync(join(dir.path, SNAPSHOT_FILE), '{"version":1,');

    const again = await openAt();
    assert.equal(again.table.get('logs'), undefined);
    const files = readdirSync(dir.path);
    assert.equal(files.filter((f) => f.startsWith(`${SNAPSHOT_FILE}.unreadable-`)).length, 1, files.join());
    assert.equal(files.filter((f) => f.startsWith(`${JOURNAL_FILE}.unreadable-`)).length, 1, files.join());
    await again.journal.close();
  });
});
