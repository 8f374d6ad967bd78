// The demo's own terminal output, the one demo module that writes to the
// process's streams: a status line while it runs (redrawn in place on a
// TTY, one plain line a second otherwise), notes, and the final report as
// text or JSON.

import { table } from '../cli/output.js';
import type { Progress, TicketingReport } from './ticketing/run.js';
import { SERVICE_NAMES } from './ticketing/setup.js';

export interface ProgressDisplay {
  intervalMs: number;
  show(progress: Progress): void;
  note(text: string): void;
  /** Leaves the status line, if any, so that what follows starts clean. */
  finish(): void;
}

/** Status on `stream` (stderr by default, keeping stdout for the report). */
export function progressDisplay(
  stream: NodeJS.WriteStream = process.stderr,
): ProgressDisplay {
  if (!stream.isTTY) {
    return {
      intervalMs: 1_000,
      show: (progress) => void stream.write(`${progressLine(progress)}\n`),
      note: (text) => void stream.write(`${text}\n`),
      finish: () => {},
    };
  }

  // Two lines, so that a crash's "(down)" fits in 80 columns: redrawn in
  // place by erasing the second line, moving up and erasing the first.
  let drawn = false;
  const clear = () => {
    if (drawn) stream.write('\r\x1b[2K\x1b[1A\r\x1b[2K');
    drawn = false;
  };
  return {
    intervalMs: 200,
    show(progress) {
      clear();
      const width = Math.max(20, (stream.columns || 80) - 1);
      const [first, second] = progressLines(progress);
      stream.write(`${first.slice(0, width)}\n${second.slice(0, width)}`);
      drawn = true;
    },
    note(text) {
      clear();
      stream.write(`${text}\n`);
    },
    finish() {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  };
}

/** e.g. `4.2s  published 6000/6000  payment 2000  email 812 (down) ...` */
export function progressLine(p: Progress): string {
  return progressLines(p).join('  ');
}

/** The run as a whole, then the services. */
function progressLines(p: Progress): [string, string] {
  const services = SERVICE_NAMES.map((name) => {
    const down = p.down.includes(name) ? ' (down)' : '';
    return `${name} ${p.processed[name]}${down}`;
  });
  const run = [
    `${(p.elapsedMs / 1000).toFixed(1)}s`,
    `published ${p.published}/${p.toPublish}`,
    `retries ${p.retries}`,
    `dlq ${p.deadLettered}`,
  ];
  return [run.join('  '), services.join('  ')];
}

export function printReport(report: TicketingReport, json: boolean): void {
  const text = json
    ? JSON.stringify(report, null, 2)
    : reportLines(report).join('\n');
  process.stdout.write(`${text}\n`);
}

const HEADER = [
  'service', 'published', 'processed', 'retried', 'failed', 'dead', 'lost', 'dup',
];

export function reportLines(report: TicketingReport): string[] {
  const { services, timings, totals } = report;
  const rows = SERVICE_NAMES.map((name) => {
    const s = services[name];
    return [
      name,
      s.published,
      s.processed,
      s.retried,
      s.transientFailures,
      s.deadLettered,
      s.lost,
      s.duplicates,
    ].map(String);
  });
  const lines = [
    `ticketing demo: ${report.buyers} buyers against ${report.url}` +
      (report.messagingUrl === report.url ? '' : `, messages over ${report.messagingUrl}`),
    `queues: ${report.queueNames}`,
    '',
    ...table(HEADER, rows),
    '',
    'malformed purchases, dead-lettered by every service:',
    ...report.malformed.map(({ ticketId, defect }) => `  ${ticketId}  ${defect}`),
  ];

  for (const name of SERVICE_NAMES) {
    const s = services[name];
    if (s.crashes === 0) continue;
    // Over HTTP the leases run out, those of messages fetched but not yet
    // handled too; over AMQP the closed connection hands them back at once.
    const back = s.leasesExpired > 0
      ? `${s.leasesExpired} lease(s) it held (fetched ones not yet handled too) ran out unacked`
      : 'its connection closed and the broker took back what it held';
    lines.push(
      `${name} crashed ${s.crashes}x with ${s.inHandAtCrash} message(s) in hand: ${back}, ` +
        'and the broker redelivered those messages',
    );
  }

  lines.push(
    `published ${totals.published} messages in ${seconds(timings.publishMs)} ` +
      `(${timings.publishPerSecond}/s); all settled after ` +
      `${seconds(timings.totalMs)} (${timings.processPerSecond}/s)`,
    `duplicates delivered: ${totals.duplicates} (at-least-once delivery; ` +
      'services must be idempotent)',
    '',
  );
  if (report.ok) {
    lines.push(
      `PASS: lost 0; dead letters are exactly the ${report.malformed.length} ` +
        'malformed purchases',
    );
  } else {
    lines.push('FAIL:', ...report.problems.map((p) => `  ${p}`));
  }
  return lines;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

