// Admission control on injected signals and a manual clock: each signal
// raises the level at once, levels fall only past the hysteresis (of the
// signals that crossed a threshold) and the hold time, and who is refused
// at each level.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  AdmissionController,
  DEFAULT_ADMISSION,
  type AdmissionSettings,
  type Level,
} from '../../src/broker/admission.js';
import { ManualClock } from '../helpers.js';

interface Fake {
  rss: number;
  free: number;
  waiting: number;
  published: number;
  acked: number;
  delay: number;
}

function controller(settings: Partial<AdmissionSettings> = {}) {
  const fake: Fake = { rss: 0, free: 1e12, waiting: 0, published: 0, acked: 0, delay: 0 };
  const clock = new ManualClock();
  const admission = new AdmissionController(
    { ...DEFAULT_ADMISSION, holdMs: 1000, ...settings },
    {
      rssBytes: () => fake.rss,
      freeDiskBytes: () => fake.free,
      backlog: () => ({ waiting: fake.waiting, published: fake.published, acked: fake.acked }),
      eventLoopDelayMs: () => fake.delay,
    },
    clock.read,
  );
  return { fake, clock, admission };
}

describe('levels from signals', () => {
  it('rises at once on memory and falls only below the recover share, after the hold', () => {
    const { fake, clock, admission } = controller({ memoryBudgetBytes: 1000 });
    const seen: Level[] = [];
    admission.onChange((level) => seen.push(level));

    fake.rss = 700;
    assert.equal(admission.sample(), 'pressure');
    assert.equal(admission.current.reason, 'memory');
    fake.rss = 850;
    assert.equal(admission.sample(), 'critical');

    // Below 85% but not below 0.8 x 85%: stays (hysteresis).
    fake.rss = 800;
    clock.advance(5000);
    assert.equal(admission.sample(), 'critical');
    // Clear of the lowered threshold, but the hold is not over yet.
    fake.rss = 600;
    assert.equal(admission.sample(), 'pressure', 'below 0.8 x critical, above 0.8 x pressure');
    fake.rss = 100;
    clock.advance(999);
    assert.equal(admission.sample(), 'pressure', 'hold not over');
    clock.advance(1);
    assert.equal(admission.sample(), 'normal');
    assert.deepEqual(seen, ['pressure', 'critical', 'pressure', 'normal']);
  });

  it('comes down when the backlog clears, though RSS stays just under its own threshold', () => {
    // After an on-sale spike, RSS stays where the spike left it: above
    // 0.8 x its pressure threshold, but it never crossed that threshold.
    const { fake, clock, admission } = controller({
      memoryBudgetBytes: 1000,
      pressureBacklog: 100,
      criticalBacklog: 200,
    });
    fake.rss = 600;
    fake.waiting = 250;
    assert.equal(admission.sample(), 'critical');
    assert.equal(admission.current.reason, 'backlog');

    fake.waiting = 0;
    clock.advance(1000);
    assert.equal(admission.sample(), 'normal', 'RSS at 600 of a 700 threshold holds no level');
    assert.equal(admission.current.reason, 'none');

    // A signal that did cross its threshold still holds with hysteresis.
    fake.rss = 700;
    assert.equal(admission.sample(), 'pressure');
    fake.rss = 600;
    clock.advance(5000);
    assert.equal(admission.sample(), 'pressure', 'memory reached pressure: 600 >= 0.8 x 700');
    fake.rss = 500;
    assert.equal(admission.sample(), 'normal');
  });

  it('does not flap at a threshold', () => {
    const { fake, clock, admission } = controller({ pressureBacklog: 100 });
    let changes = 0;
    admission.onChange(() => changes++);
    for (let i = 0; i < 50; i++) {
      fake.waiting = i % 2 === 0 ? 101 : 95;
      clock.advance(100);
      admission.sample();
    }
    assert.equal(changes, 1);
    assert.equal(admission.current.level, 'pressure');
  });

  it('reads backlog, growth, disk and event-loop delay', () => {
    const backlog = controller({ pressureBacklog: 100, criticalBacklog: 200 });
    backlog.fake.waiting = 200;
    assert.equal(backlog.admission.sample(), 'critical');
    assert.equal(backlog.admission.current.reason, 'backlog');

    const growth = controller({ pressureBacklog: 100 });
    growth.fake.waiting = 60;
    growth.fake.published = 500;
    growth.fake.acked = 100;
    assert.equal(growth.admission.sample(), 'pressure');
    assert.equal(growth.admission.current.reason, 'backlog-growth');

    const disk = controller({ diskFloorBytes: 1000 });
    disk.fake.free = 1500;
    assert.equal(disk.admission.sample(), 'pressure');
    disk.fake.free = 900;
    assert.equal(disk.admission.sample(), 'critical');
    assert.equal(disk.admission.current.reason, 'disk');

    const loop = controller({ eventLoopPressureMs: 100, eventLoopCriticalMs: 400 });
    loop.fake.delay = 150;
    assert.equal(loop.admission.sample(), 'pressure');
    assert.equal(loop.admission.current.reason, 'event-loop');
  });

  it('stays normal with no thresholds set and a healthy process', () => {
    const { fake, admission } = controller();
    fake.rss = 1e12;
    fake.waiting = 1e9;
    fake.delay = 60_000;
    assert.equal(admission.sample(), 'normal', 'event-loop delay is no signal by default');
  });
});

describe('who is refused', () => {
  it('sheds low priorities and sheddable queues at pressure, all but the top at critical', () => {
    const { fake, admission } = controller({
      pressureBacklog: 10,
      criticalBacklog: 20,
      pressureMinPriority: 4,
      criticalMinPriority: 7,
    });
    assert.equal(admission.refusal(0, true), null, 'normal accepts everything');

    fake.waiting = 10;
    admission.sample();
    const low = admission.refusal(3, false);
    assert.equal(low?.code, 'OVERLOADED');
    assert.equal(low?.status, 429);
    assert.equal(low?.level, 'pressure');
    assert.equal(low?.reason, 'backlog');
    assert.equal(low?.retryAfterSeconds, 1);
    assert.equal(admission.refusal(4, false), null);
    assert.equal(admission.refusal(9, true)?.level, 'pressure', 'a sheddable queue is refused');

    fake.waiting = 20;
    admission.sample();
    const mid = admission.refusal(6, false);
    assert.equal(mid?.status, 503);
    assert.equal(mid?.retryAfterSeconds, 5);
    assert.equal(admission.refusal(7, false), null);

    const stats = admission.stats();
    assert.deepEqual(stats.refused, { pressure: 2, critical: 1 });
    assert.equal(stats.refusedByPriority[3], 1);
    assert.equal(stats.refusedByPriority[6], 1);
    assert.equal(stats.refusedByPriority[9], 1);
  });

  it('hands back the earlier refusal of the same priority, counting each message', () => {
    const { fake, admission } = controller({ pressureBacklog: 10, criticalBacklog: 20 });
    fake.waiting = 10;
    admission.sample();

    const first = admission.refusal(1, false);
    assert.ok(first !== null);
    assert.equal(admission.refusal(1, false, 0, first), first, 'one error for one priority');
    const other = admission.refusal(2, false, 0, first);
    assert.ok(other !== null && other !== first, 'another priority gets its own');
    assert.match(other.message, /priority 2/);
    assert.equal(admission.refusal(5, false, 0, other), null, 'an accepted one stays accepted');

    // The level moved: an error that names the old one is not reused.
    fake.waiting = 20;
    admission.sample();
    const critical = admission.refusal(2, false, 0, other);
    assert.equal(critical?.level, 'critical');
    assert.notEqual(critical, other);

    const stats = admission.stats();
    assert.deepEqual(stats.refused, { pressure: 3, critical: 1 });
    assert.equal(stats.refusedByPriority[1], 2);
    assert.equal(stats.refusedByPriority[2], 2);
  });
});
