// The planner's arithmetic on known inputs, worked by hand, and the
// `usher plan` command's JSON and explanation.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { type Calibration, checkCalibration, loadCalibration } from '../../src/plan/calibration.js';
import { explain } from '../../src/plan/command.js';
import { type PlanInput, plan } from '../../src/plan/plan.js';
import { USHER_BIN } from '../client/usher-process.js';
import { tempDir } from '../helpers.js';

const calibration: Calibration = {
  version: 1,
  measuredAt: '2026-01-01T00:00:00.000Z',
  machine: { cpus: 2, model: 'test', node: 'v20' },
  publishCpuUs: { base: 40, perByte: 0.01 },
  consumeCpuUs: 20,
  diskBytesPerMessage: { base: 100, perByte: 1 },
  memoryBytesPerMessage: { base: 200, perByte: 0 },
  idleRssBytes: 100_000_000,
  fsyncsPerSecond: 500,
};

const input: PlanInput = {
  rate: 1000,
  peakRate: 10_000,
  peakDurationMs: 60_000,
  sizeBytes: 1000,
  retentionMs: 3_600_000,
  consumers: null,
  consumerTimeMs: 10,
  replicas: 1,
  headroom: 0.5,
  lagTargetMs: 1000,
};

describe('plan', () => {
  it('sizes consumers, disk, memory and cores from the calibration', () => {
    const p = plan(input, calibration);
    // 10000/s / 100/s per consumer / 0.5 utilisation
    assert.equal(p.consumersNeeded, 200);
    // lag under 1 s: capacity >= 10000 x 60 / (60 + 0.99) = 9837.7/s -> 99
    assert.equal(p.consumersForLag, 99);
    assert.equal(p.lagAtPeakEndMs, 10);
    // enough consumers: no backlog at peak
    assert.equal(p.peakBacklog, 0);
    assert.equal(p.drainSeconds, 0);
    // 1000/s x 3600 s waiting
    assert.equal(p.waitingMessages, 3_600_000);
    // 3.6M x (100 + 1000) B / 0.5
    assert.equal(p.diskBytes, 7_920_000_000);
    // In memory: max(the queue's min(4096, 16 MiB / 1000 B), the budget
    // 64 MiB / (512 + 1000) B) = 44384 messages; the other 3555616 on
    // disk at 80 B. (100 MB + 44384 x 200 B + 3555616 x 80 B) / 0.5
    assert.equal(p.memoryBytes, 786_652_160);
    assert.ok(p.steps.some((s) => s.what === 'waiting messages with their bodies in memory' &&
      s.value === 44_384));
    // 10000/s x (40 + 10 + 20) us / 1e6 / 0.5
    assert.equal(p.cores, 1.4);
    assert.equal(p.messagesPerFsync, 20);
    assert.ok(p.steps.some((s) => s.what === 'disk' && s.formula.includes('3600000 x 1100 B')));
  });

  it('computes the backlog a short-handed spike leaves and its drain time', () => {
    const p = plan({ ...input, consumers: 50, replicas: 3 }, calibration);
    // capacity 50 x 100/s = 5000/s; (10000 - 5000) x 60 s
    assert.equal(p.peakBacklog, 300_000);
    // 300000 / (5000 - 1000)
    assert.equal(p.drainSeconds, 75);
    // 300000 / 5000/s = 60 s behind, plus the last one's 10 ms
    assert.equal(p.lagAtPeakEndMs, 60_010);
    // the backlog is below the retention's 3.6M: waiting stays 3.6M
    assert.equal(p.waitingMessages, 3_600_000);
    // three copies on disk
    assert.equal(p.diskBytes, 3 * 7_920_000_000);
    // followers pay a publish each: 10000 x (50 + 20 + 2 x 50) / 1e6 / 0.5
    assert.equal(p.cores, 3.4);
  });

  it('plans more consumers for a tight lag target, none for an unreachable one', () => {
    // no headroom: 100 carry the peak; lag 100 ms over a 60 s peak needs
    // 10000 x 60 / 60.09 = 9985.0/s -> 100 consumers as well
    const tight = plan({ ...input, headroom: 0, lagTargetMs: 110 }, calibration);
    assert.equal(tight.consumersForLag, 100);
    // a 1 s peak, target 510 ms: 10000 x 1 / 1.5 = 6666.7/s -> 67, fewer than 100
    const short = plan({ ...input, headroom: 0, peakDurationMs: 1000, lagTargetMs: 510 }, calibration);
    assert.equal(short.consumersForLag, 67);
    assert.equal(short.consumersNeeded, 100);
    const unreachable = plan({ ...input, lagTargetMs: 9 }, calibration);
    assert.equal(unreachable.consumersForLag, Infinity);
    assert.equal(unreachable.consumersNeeded, 200);
    assert.match(unreachable.steps[0].formula, /lag target must be at least one service time/);
    // A target of exactly one service time is met by carrying the peak.
    const equal = plan({ ...input, headroom: 0, lagTargetMs: 10 }, calibration);
    assert.equal(equal.consumersForLag, 100);
  });

  it('flags given consumers that miss the lag target, and tiny core counts', () => {
    const short = plan({ ...input, consumers: 50 }, calibration);
    const lines = explain(short, { cpus: 2, model: 'x' });
    assert.match(lines[3], /not enough consumers: 200 needed, 50 given/);
    const enough = explain(plan({ ...input, consumers: 300 }, calibration), { cpus: 2, model: 'x' });
    assert.doesNotMatch(enough[3], /not enough/);
    const idle = explain(plan({ ...input, rate: 1, peakRate: 1 }, calibration), { cpus: 2, model: 'x' });
    assert.match(idle[2], /^broker cores\s+<0\.01$/);
  });

  it('says replicas above 1 size a replicated deployment Usher does not have yet', () => {
    const one = explain(plan(input, calibration), { cpus: 2, model: 'x' });
    const three = explain(plan({ ...input, replicas: 3 }, calibration), { cpus: 2, model: 'x' });

    assert.match(one[0], /^disk\s/);
    assert.equal(three[0],
      'replicas         3, planned only: Usher 0.1 runs on one machine and keeps one copy; ' +
        'disk and cores add up all 3 brokers, memory is per broker');
    assert.match(three[1], /^disk\s/);

    const json = spawnSync(process.execPath,
      [USHER_BIN, 'plan', '--rate', '10', '--size', '1', '--replicas', '3', '--json'],
      { encoding: 'utf8' });
    assert.equal(json.status, 0, json.stderr);
    assert.match(JSON.parse(json.stdout).replication, /^3, planned only: /);
    const help = spawnSync(process.execPath, [USHER_BIN, 'plan', '--help'], { encoding: 'utf8' });
    assert.match(help.stdout.replace(/\s+/g, ' '),
      /--replicas <n> brokers holding a copy of each message, for a replicated deployment Usher plans but does not have yet/);
  });

  it('refuses --size 0 and warns above the broker default max message size', () => {
    const zero = spawnSync(process.execPath, [USHER_BIN, 'plan', '--rate', '1', '--size', '0'], {
      encoding: 'utf8',
    });
    assert.equal(zero.status, 2);
    assert.match(zero.stderr, /--size must be at least 1 byte/);
    const big = spawnSync(process.execPath, [USHER_BIN, 'plan', '--rate', '1', '--size', '32MiB'], {
      encoding: 'utf8',
    });
    assert.equal(big.status, 0, big.stderr);
    assert.match(big.stderr, /warning: --size 32MiB is above the broker's default largest message/);
  });

  it('says never when consumers cannot outrun the average rate', () => {
    const p = plan({ ...input, consumers: 10, retentionMs: 0 }, calibration);
    // capacity 1000/s = average: the backlog of (10000 - 1000) x 60 s stays
    assert.equal(p.peakBacklog, 540_000);
    assert.equal(p.drainSeconds, Infinity);
    assert.equal(p.waitingMessages, 540_000);
  });
});

describe('calibration files', () => {
  it('ships a default that passes its own checks', () => {
    const c = loadCalibration();
    assert.equal(c.version, 1);
    assert.ok(c.fsyncsPerSecond > 0);
  });

  it('names what is missing', () => {
    assert.throws(
      () => checkCalibration({ version: 1, consumeCpuUs: 1 }, 'x.json'),
      /calibration x.json is missing or has bad: publishCpuUs/,
    );
  });
});

describe('usher plan', () => {
  it('prints JSON with the figures and explains the arithmetic in text', () => {
    const dir = tempDir('usher-plan-');
    try {
      const file = join(dir.path, 'cal.json');
      writeFileSync(file, JSON.stringify(calibration));
      const args = [
        USHER_BIN,
        'plan',
        '--rate',
        '1000',
        '--peak-rate',
        '10000',
        '--peak-duration',
        '1m',
        '--size',
        '1000',
        '--retention',
        '1h',
        '--consumer-time',
        '10ms',
        '--headroom',
        '0.5',
        '--calibration',
        file,
      ];
      const json = spawnSync(process.execPath, [...args, '--json'], { encoding: 'utf8' });
      assert.equal(json.status, 0, json.stderr);
      const p = JSON.parse(json.stdout);
      assert.equal(p.diskBytes, 7_920_000_000);
      assert.equal(p.memoryBytes, 786_652_160);
      assert.equal(p.cores, 1.4);
      assert.equal(p.consumersNeeded, 200);

      const text = spawnSync(process.execPath, args, { encoding: 'utf8' });
      assert.equal(text.status, 0, text.stderr);
      assert.match(text.stdout, /consumers\/queue\s+200/);
      assert.match(text.stdout, /broker CPU cores: peak 10000\/s x \(publish 50 us/);

      const bad = spawnSync(
        process.execPath,
        [
          USHER_BIN,
          'plan',
          '--rate',
          '10',
          '--size',
          '1',
          '--calibration',
          join(dir.path, 'none.json'),
        ],
        { encoding: 'utf8' },
      );
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /cannot read calibration/);
    } finally {
      dir.remove();
    }
  });
});

describe('plan --help', () => {
  it('shows duration defaults as durations', () => {
    const help = spawnSync(process.execPath, [USHER_BIN, 'plan', '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /--peak-duration <dur>\s+how long the peak lasts \(default: 10m\)/);
    assert.match(help.stdout, /\(default: 1h\)/);
    assert.match(help.stdout, /\(default: 10ms\)/);
    assert.doesNotMatch(help.stdout, /default: 3600000/);
  });
});
