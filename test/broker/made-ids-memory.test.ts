// An id the broker made is a slice of a string that spells several ids
// (util/random-id.ts), and a slice keeps that whole string alive. A
// message that waits in memory must not keep the ids of other publishes
// alive with it: a queue whose publishes come between those of busier
// queues (one in 64 here) would otherwise hold ~2.3 KB of text for each
// 36-char id, six times what such a message held before. Nor must a
// dead letter keep the ids of the others published with it.

import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, before, it } from 'node:test';

import type { Broker } from '../../src/broker/broker.js';
import { openBroker, tempDir } from '../helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let dir: ReturnType<typeof tempDir>;
let broker: Broker;

before(async () => {
  dir = tempDir();
  broker = await openBroker(dir.path);
});

after(async () => {
  await broker.close();
  dir.remove();
});

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

it('a waiting message holds little more than its own id, whatever came around it', async () => {
  await broker.createQueue('backlog', { durability: 'memory' });
  await broker.createQueue('busy', { durability: 'memory' });
  const body = Buffer.alloc(16, 1);
  const others = Array.from({ length: 63 }, () => ({ body }));
  const waiting = 5_000;

  const before = heapUsed();
  for (let i = 0; i < waiting; i++) {
    await broker.publish('backlog', [{ body }]);
    await broker.publish('busy', others);
    if (i % 100 === 99) await broker.purgeQueue('busy');
  }
  await broker.purgeQueue('busy');
  const perMessage = (heapUsed() - before) / waiting;

  assert.equal(broker.getQueue('backlog').stats.ready, waiting);
  // ~450 bytes a message when each id is a string of its own, ~2,700
  // when each keeps its draw of 64.
  assert.ok(perMessage < 1_200, `${Math.round(perMessage)} bytes a waiting message`);
});

it('a dead letter holds little more than its own id, whatever was published with it', async () => {
  await broker.createQueue('dead', { durability: 'memory' });
  await broker.createQueue('work', { durability: 'memory', deadLetter: 'dead' });
  const body = Buffer.alloc(16, 1);
  const publish = Array.from({ length: 64 }, () => ({ body }));
  const dead = 2_000;

  const before = heapUsed();
  for (let i = 0; i < dead; i++) {
    await broker.publish('work', publish);
    const [dies, ...done] = await broker.receive('work', { max: 64, waitMs: 0 });
    await broker.ack('work', done.map((message) => message.receipt));
    await broker.nack('work', dies.receipt, { requeue: false });
  }
  const perMessage = (heapUsed() - before) / dead;

  assert.equal(broker.getQueue('dead').stats.ready, dead);
  // ~1,050 bytes a dead letter with an id of its own, ~3,300 with its
  // publish's text of 64.
  assert.ok(perMessage < 1_800, `${Math.round(perMessage)} bytes a dead letter`);
});
