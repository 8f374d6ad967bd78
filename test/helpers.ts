// Shared test fixtures: temp data folders, a silent logger, a manual clock.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
