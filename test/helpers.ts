// Shared test fixtures: temp data folders, a silent logger, a manual clock,
// a seeded random generator.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'node:test';
import pino from 'pino';

import { Broker, type BrokerOptions } from '../src/broker/broker.js';
import { nodeIo, type StoreIo } from '../src/storage/io.js';

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

/**
 * `io` whose next write or sync to finish, once `arm()` is called, fails
 * with EIO (its bytes written): over heldDisk(), the one held, failing as
 * it is let go.
 */
export function failNextToFinish(io: StoreIo): { io: StoreIo; arm(): void } {
  let armed = false;
  const failing = async <T>(done: Promise<T>): Promise<T> => {
    const value = await done;
    if (!armed) return value;
    armed = false;
    throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
  };
  return {
    io: {
      ...io,
      writev: (fd, buffers, position) => failing(io.writev(fd, buffers, position)),
      fdatasync: (fd) => failing(io.fdatasync(fd)),
    },
    arm: () => {
      armed = true;
    },
  };
}

/** nodeIo whose writes fail with EIO while `refusing` is set, counted. */
export function refusingDisk() {
  const disk = {
    refusing: false,
    refused: 0,
    io: {
      ...nodeIo,
      async writev(fd, buffers, position) {
        if (!disk.refusing) return nodeIo.writev(fd, buffers, position);
        disk.refused++;
        throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      },
    } satisfies StoreIo,
  };
  return disk;
}

/**
 * nodeIo counting writes, whose syncs wait while held: a disk slow to
 * sync. A sync is an fdatasync or a write through a data-sync descriptor
 * (which writes, then waits).
 */
export function heldDisk() {
  let held = false;
  let waiting: Array<() => void> = [];
  const dataSyncFds = new Set<number>();
  const sync = () => (held ? new Promise<void>((resolve) => waiting.push(resolve)) : undefined);
  const disk = {
    writes: 0,
    get syncsWaiting() {
      return waiting.length;
    },
    hold() {
      held = true;
    },
    release() {
      held = false;
      for (const wake of waiting.splice(0)) wake();
    },
    io: {
      ...nodeIo,
      async openDataSync(path) {
        const fd = await nodeIo.openDataSync!(path);
        dataSyncFds.add(fd);
        return fd;
      },
      async writev(fd, buffers, position) {
        disk.writes++;
        const written = await nodeIo.writev(fd, buffers, position);
        if (dataSyncFds.has(fd)) await sync();
        return written;
      },
      async fdatasync(fd) {
        await sync();
        return nodeIo.fdatasync(fd);
      },
      async close(fd) {
        dataSyncFds.delete(fd);
        return nodeIo.close(fd);
      },
    } satisfies StoreIo,
  };
  return disk;
}

/** Polls `check` every 10 ms until it holds; fails naming `what` after `limitMs`. */
export async function until(what: string, check: () => boolean, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
