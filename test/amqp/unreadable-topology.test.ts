// An exchanges.json or amqp-queues.json that cannot be parsed (edited by
// hand, damaged) is set aside before the broker starts from the built-ins:
// the first declare used to rewrite the file and lose every exchange and
// binding the operator could still have restored.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';

import { Topology } from '../../src/amqp/topology.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

const dir = tempDir('usher-unreadable-topology-');
after(() => dir.remove());

it('keeps an unreadable exchanges.json and amqp-queues.json aside when the topology changes', async () => {
  const damaged = '{"version":1,"exchanges":[{"name":"orders","type":"topic"';
  writeFileSync(join(dir.path, 'exchanges.json'), damaged);
  writeFileSync(join(dir.path, 'amqp-queues.json'), 'null');
  const broker = await openBroker(dir.path);
  try {
    const topology = await Topology.open(dir.path, broker, silentLogger);
    await topology.declareExchange({
      name: 'fresh', type: 'fanout', passive: false, durable: true,
      autoDelete: false, internal: false, arguments: new Map(),
    });
    await topology.flush();
    topology.close();

    const files = readdirSync(dir.path);
    const exchangesAside = files.filter((name) => name.startsWith('exchanges.json.unreadable-'));
    const queuesAside = files.filter((name) => name.startsWith('amqp-queues.json.unreadable-'));
    assert.equal(exchangesAside.length, 1, files.join(', '));
    assert.equal(queuesAside.length, 1, files.join(', '));
    assert.equal(readFileSync(join(dir.path, exchangesAside[0]), 'utf8'), damaged);
    assert.match(readFileSync(join(dir.path, 'exchanges.json'), 'utf8'), /fresh/);
  } finally {
    await broker.close();
  }
});
