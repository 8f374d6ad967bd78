// Which queues dead-letter into which through an AMQP dead-letter exchange,
// so that Usher's dead-letter tools count the targets as dead-letter queues.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { deadLetterRoutes } from '../../src/amqp/dead-letter-exchange.js';
import type { QueueFeatures } from '../../src/amqp/queue-features.js';
import type { Binding } from '../../src/routing/types.js';

const bind = (source: string, destination: string, destinationKind: 'queue' | 'exchange' = 'queue',
  routingKey = 'k'): Binding => ({ source, destination, destinationKind, routingKey, arguments: new Map() });

test('maps dead-letter queues to the queues that feed them', () => {
  const features: Array<[string, QueueFeatures]> = [
    // By its own keys: every queue some binding path from dlx reaches.
    ['work', { deadLetterExchange: 'dlx' }],
    // By a dead-letter routing key: where that key routes.
    ['mail', { deadLetterExchange: '', deadLetterRoutingKey: 'mail.dlq' }],
    // Into itself, and by its own key through the default exchange: neither counts.
    ['loop', { deadLetterExchange: '', deadLetterRoutingKey: 'loop' }],
    ['plain', { deadLetterExchange: '' }],
    ['none', {}],
    ['gone', { deadLetterExchange: 'missing', deadLetterRoutingKey: 'k' }],
    // A retry loop: the work queue dies into a delay queue, which expires
    // back into it. Both dead-letter on, so neither is a dead end.
    ['retry.work', { deadLetterExchange: '', deadLetterRoutingKey: 'retry.wait' }],
    ['retry.wait', { deadLetterExchange: '', deadLetterRoutingKey: 'retry.work' }],
  ];
  const bindings = [bind('dlx', 'dlq'), bind('dlx', 'more', 'exchange'), bind('more', 'archive')];
  const route = (exchange: string, key: string) => {
    if (exchange === '') return [key];
    throw new Error(`no exchange '${exchange}'`);
  };

  const into = deadLetterRoutes(features, bindings, route);
  assert.deepEqual(Object.fromEntries(into), {
    dlq: ['work'], archive: ['work'], 'mail.dlq': ['mail'],
  });
});
