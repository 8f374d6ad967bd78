// Shared test fixtures: temp data folders, a silent logger, a manual clock,
// a seeded random generator.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'node:test';
import pino from 'pino';

import { Broker, type BrokerOptions } from '../src/broker/broker.js';

export const silentLogger = pino({ level: 'silent' });

export function tempDir(prefix = 'usher-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export class ManualClock {
  constructor(public now = 1_700_000_000_000) {}

  readonly read = () => this.now;

  advance(ms: number): void {
    this.now += ms;
  }
}

export function openBroker(
  dataDir: string,
  options: Partial<BrokerOptions> = {},
): Promise<Broker> {
  return Broker.open({ dataDir, logger: silentLogger, sync: false, ...options });
}

export const text = (value: string) => Buffer.from(value);

/**
 * A broker on a fresh data folder with a manual clock, opened before each
 * test of the file and closed (folder removed) after it. `reopen()` is a
 * restart over the same folder.
 */
export function brokerPerTest(options: Partial<BrokerOptions> = {}) {
  let dir: ReturnType<typeof tempDir>;
  const fixture = {
    broker: undefined as unknown as Broker,
    clock: new ManualClock(),
    async reopen(): Promise<void> {
      await fixture.broker.close();
      fixture.broker = await openBroker(dir.path, fixture.options());
    },
    options: (): Partial<BrokerOptions> => ({
      clock: fixture.clock.read,
      random: () => 0,
      ...options,
    }),
  };
  beforeEach(async () => {
    dir = tempDir();
    fixture.clock = new ManualClock();
    fixture.broker = await openBroker(dir.path, fixture.options());
  });
  afterEach(async () => {
    await fixture.broker.close();
    dir.remove();
  });
  return fixture;
}

/** A small seeded generator (mulberry32), so a failing run can be repeated. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
