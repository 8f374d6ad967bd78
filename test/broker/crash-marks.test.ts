// What a start learns of a crash, and keeps (src/broker/crash-marks.ts,
// data-lock.ts): a lock left behind marks every message of the crashed
// run redelivered; a start that fails keeps that knowledge for the next;
// a lock naming this very PID, not held, is one a crash left; an
// unreadable mark marks all; the mark goes with the log it counts in.
// Crashes are made by hand here: a lock file written as a dead broker
// leaves it (test/fault/crash-redelivered.test.ts kills a real one).

import assert from 'node:assert/strict';
import {
  appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';

import pino from 'pino';

import type { Broker } from '../../src/broker/broker.js';
import { MAYBE_DELIVERED_FILE } from '../../src/broker/crash-marks.js';
import { openBroker, tempDir, text } from '../helpers.js';

let dir: ReturnType<typeof tempDir>;
let broker: Broker | undefined;

beforeEach(() => {
  dir = tempDir('usher-crash-marks-');
});

afterEach(async () => {
  await broker?.close();
  broker = undefined;
  dir.remove();
});

const lockPath = () => join(dir.path, 'usher.lock');
const markPath = () => join(dir.path, 'log', MAYBE_DELIVERED_FILE);

/** A queue `q` holding `bodies`, its broker closed cleanly. */
async function queueHolding(bodies: string[]): Promise<void> {
  const first = await openBroker(dir.path);
  await first.createQueue('q', {});
  await first.publish('q', bodies.map((body) => ({ body: text(body) })));
  await first.close();
}

/** Each message of `q` now, by body: whether it comes redelivered. */
async function redeliveredByBody(): Promise<Record<string, boolean>> {
  const received = await broker!.receive('q', { max: 100, waitMs: 0 });
  return Object.fromEntries(received.map((m) => [m.body.toString(), m.redelivered]));
}

describe('crash marks', () => {
  it('take a lock naming this process, which it does not hold, for one a crash left', async () => {
    await queueHolding(['a', 'b']);
    // A broker that crashed as PID 1 of a container, started again as PID 1.
    writeFileSync(lockPath(), `${process.pid}\n`);
    broker = await openBroker(dir.path);
    assert.deepEqual(await redeliveredByBody(), { a: true, b: true });
  });

  it('take a lock whose PID another process has since been given for one a crash left', async () => {
    await queueHolding(['a']);
    // The parent runs, but not since the start time the lock records.
    writeFileSync(lockPath(), `${process.ppid} 1\n`);
    broker = await openBroker(dir.path);
    assert.deepEqual(await redeliveredByBody(), { a: true });
  });

  it('refuse a lock whose PID runs, with the start time recorded or none', async () => {
    const parentStart = readFileSync(`/proc/${process.ppid}/stat`, 'utf8')
      .split(') ')[1].split(' ')[19];
    for (const content of [`${process.ppid} ${parentStart}\n`, `${process.ppid}\n`]) {
      writeFileSync(lockPath(), content);
      await assert.rejects(openBroker(dir.path), { code: 'DATA_DIR_IN_USE' }, content);
    }
    rmSync(lockPath());
  });

  it('still refuse a second broker of this process on a folder it holds', async () => {
    broker = await openBroker(dir.path);
    await assert.rejects(openBroker(dir.path), { code: 'DATA_DIR_IN_USE' });
  });

  it('survive a start that fails after finding the crash', async () => {
    await queueHolding(['a', 'b']);
    writeFileSync(lockPath(), '999999999\n');
    // The mark cannot be saved where a folder stands: the start fails.
    mkdirSync(markPath());
    await assert.rejects(openBroker(dir.path));
    assert.ok(existsSync(lockPath()), 'the lock, the only sign of the crash, is gone');

    rmdirSync(markPath());
    broker = await openBroker(dir.path);
    await broker.publish('q', [{ body: text('after') }]);
    assert.deepEqual(await redeliveredByBody(), { a: true, b: true, after: false });
  });

  it('count an unreadable mark as every message, and say so', async () => {
    await queueHolding(['a']);
    writeFileSync(markPath(), 'not a number\n');
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    broker = await openBroker(dir.path, { logger });
    await broker.publish('q', [{ body: text('after') }]);
    assert.deepEqual(await redeliveredByBody(), { a: true, after: false });
    assert.ok(lines.some((line) => line.includes('crash mark is unreadable')), lines.join(''));
  });

  it('are announced at the start after a crash, with what recovery found', async () => {
    await queueHolding(['a', 'b']);
    // The crash tore the last write in half.
    const logDir = join(dir.path, 'log');
    const segments = readdirSync(logDir).filter((f) => f.endsWith('.log')).sort();
    appendFileSync(join(logDir, segments.at(-1)!), Buffer.alloc(20, 0xab));
    writeFileSync(lockPath(), '999999999\n');
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, {
      write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>),
    });
    broker = await openBroker(dir.path, { logger });

    const told = lines.filter((line) => /did not stop cleanly/.test(String(line.msg)));
    assert.equal(told.length, 1, JSON.stringify(lines));
    assert.equal(told[0].level, 40);
    assert.equal(told[0].restoredMessages, 2);
    assert.equal(told[0].maybeDelivered, 2);
    assert.equal(told[0].tornTailsCut, 1);
    assert.equal(told[0].corruptRegions, 0);
  });

  it('are not announced after a clean stop', async () => {
    await queueHolding(['a']);
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    broker = await openBroker(dir.path, { logger });
    assert.ok(lines.some((line) => line.includes('"recovered"')), lines.join(''));
    assert.ok(!lines.some((line) => line.includes('did not stop cleanly')), lines.join(''));
  });

  it('go with the log they count in', async () => {
    await queueHolding(['a', 'b', 'c']);
    writeFileSync(lockPath(), '999999999\n');
    broker = await openBroker(dir.path);
    await broker.close();
    broker = undefined;
    assert.ok(existsSync(markPath()));

    // The log removed: seqs count from 1 again, and nothing new is marked.
    rmSync(join(dir.path, 'log'), { recursive: true });
    broker = await openBroker(dir.path);
    await broker.createQueue('q', {});
    await broker.publish('q', [{ body: text('new') }]);
    assert.deepEqual(await redeliveredByBody(), { new: false });
  });
});
