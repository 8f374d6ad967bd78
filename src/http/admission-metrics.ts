// Metrics of admission control (issue #6): the level, why, and every
// publish it refused, by level and priority. Read at scrape time from the
// controller's own counters, like the rest of GET /metrics. Listed in
// docs/metrics.md, "Admission control".

import { Counter, Gauge, type Registry } from 'prom-client';

import type { AdmissionStats } from '../broker/admission.js';

const LEVEL_VALUE = { normal: 0, pressure: 1, critical: 2 } as const;

export function registerAdmissionMetrics(
  registry: Registry,
  stats: () => AdmissionStats | null,
): void {
  new Gauge({
    name: 'usher_admission_level',
    help: 'Admission level: 0 normal, 1 pressure, 2 critical (absent when off)',
    registers: [registry],
    collect() {
      this.reset();
      const current = stats();
      if (current !== null) this.set(LEVEL_VALUE[current.level]);
    },
  });
  new Gauge({
    name: 'usher_admission_reason',
    help: '1 for the signal that set the current level',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      const current = stats();
      if (current !== null) this.set({ reason: current.reason }, 1);
    },
  });
  new Counter({
    name: 'usher_admission_refused_total',
    help: 'Publishes refused by admission control, by level and priority',
    labelNames: ['level', 'priority'],
    registers: [registry],
    collect() {
      this.reset();
      const current = stats();
      if (current === null) return;
      for (const level of ['pressure', 'critical'] as const) {
        current.refusedByLevel[level].forEach((count, priority) => {
          if (count > 0) this.inc({ level, priority: String(priority) }, count);
        });
      }
    },
  });
  new Counter({
    name: 'usher_admission_transitions_total',
    help: 'Times the admission level changed, by the level entered',
    labelNames: ['level'],
    registers: [registry],
    collect() {
      this.reset();
      const current = stats();
      if (current === null) return;
      for (const [level, count] of Object.entries(current.transitions)) {
        if (count > 0) this.inc({ level }, count);
      }
    },
  });
  new Gauge({
    name: 'usher_event_loop_delay_seconds',
    help: 'Event-loop delay (p99) of the last admission sample',
    registers: [registry],
    collect() {
      this.reset();
      const current = stats();
      if (current !== null) this.set(current.signals.eventLoopDelayMs / 1000);
    },
  });
}
