// Shared by the routing tests: a queue registry to stand in for the
// broker's, and an assertion on RoutingErrors.

import assert from 'node:assert/strict';

import { RoutingError } from '../../src/routing/errors.js';
import { ExchangeTable } from '../../src/routing/exchanges.js';

/** Queues that exist; those named `tmp.*` are transient. */
export class FakeQueues {
  readonly names: Set<string>;

  constructor(...names: string[]) {
    this.names = new Set(names);
  }

  hasQueue(name: string): boolean {
    return this.names.has(name);
  }

  isDurable(name: string): boolean {
    return !name.startsWith('tmp.');
  }
}

export function tableWith(...queues: string[]): {
  table: ExchangeTable;
  queues: FakeQueues;
} {
  const registry = new FakeQueues(...queues);
  return { table: new ExchangeTable(registry), queues: registry };
}

/** Asserts `fn` throws a RoutingError with this code and reply text. */
export function assertRefused(
  fn: () => unknown,
  replyCode: number,
  replyText: string,
): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof RoutingError, `not a RoutingError: ${err}`);
    assert.equal(err.replyCode, replyCode);
    assert.equal(err.replyText, replyText);
    return true;
  });
}

/** Sorted contents of a route() result, for deepEqual. */
export function sorted(queues: Iterable<string>): string[] {
  return [...queues].sort();
}
