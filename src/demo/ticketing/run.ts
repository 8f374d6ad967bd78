// `usher demo ticketing`: a ticket sale spike through Usher. The ticketing
// service publishes one TICKET_PURCHASED event per buyer to the payment,
// e-mail and SMS queues; the three services consume at their own pace while
// the e-mail service crashes and comes back, the SMS provider fails a share
// of sends, and a few malformed purchases are dead-lettered. The run ends
// with an audit by ticket id: nothing may be lost.
//
//              publishBatch             consume
//   ticketing ─────────────> .payment ─────────> payment ─┐ nack, no requeue
//             ─────────────> .email   ─────────> e-mail  ─┼──────────────────>
//             ─────────────> .sms     ─────────> SMS     ─┘  <queue>.dlq
//   (queues are tickets.<run>.<service>)

import { connect } from '../../client/index.js';
import { TicketingService, type PublishSettings } from './publisher.js';
import { generatePurchases, type Defect } from './purchases.js';
import {
  DEFAULT_PACE,
  Service,
  type ServicePace,
} from './services.js';
import {
  SERVICE_NAMES,
  createQueues,
  deleteQueues,
  newRunId,
  plannedQueues,
  type QueueTimings,
  type ServiceName,
} from './setup.js';
import { auditService, problemsOf, type ServiceReport } from './verify.js';

export interface TicketingOptions {
  /** The broker, e.g. http://127.0.0.1:8080. */
  url: string;
  /**
   * Its AMQP listener, e.g. amqp://guest:guest@127.0.0.1:5672: the
   * ticketing service publishes and the services consume over AMQP, the
   * faster path; queues are made and audited over HTTP (url).
   */
  amqpUrl?: string;
  buyers: number;
  /** Fixes names, prices, pace and provider failures; default 1. */
  seed?: number;
  /** Part of every queue name; a fresh one by default. */
  runId?: string;
  /** The whole run must end within this; default timeoutFor(buyers). */
  timeoutMs?: number;
  publish?: Partial<PublishSettings>;
  timings?: Partial<QueueTimings>;
  /** When the e-mail service crashes and for how long; null: it does not. */
  emailCrash?: { afterFraction: number; downMs: number } | null;
  /** Share of SMS sends the provider fails; default 0.15. */
  smsFailureRate?: number;
  pace?: Partial<Record<ServiceName, ServicePace>>;
  /** Delete the run's queues at the end; default false (left to inspect). */
  deleteQueues?: boolean;
  /** How often onProgress is called; default 1000 ms. */
  progressIntervalMs?: number;
  onProgress?: (progress: Progress) => void;
  /** One-line news: queues made, a crash, a restart. */
  onNote?: (text: string) => void;
}

export interface Progress {
  elapsedMs: number;
  /** Messages confirmed, all queues together, and how many there will be. */
  published: number;
  toPublish: number;
  processed: Record<ServiceName, number>;
  /** Services with no running process. */
  down: ServiceName[];
  retries: number;
  deadLettered: number;
}

export interface TicketingReport {
  /** True when nothing was lost and exactly the malformed were dead-lettered. */
  ok: boolean;
  problems: string[];
  runId: string;
  url: string;
  /** Where messages went: the HTTP url, or the AMQP listener. */
  messagingUrl: string;
  /** How reruns stay clean: queue names carry the run id. */
  queueNames: string;
  buyers: number;
  seed: number;
  malformed: Array<{ ticketId: string; defect: Defect }>;
  services: Record<ServiceName, ServiceReport>;
  totals: {
    published: number;
    processed: number;
    retried: number;
    deadLettered: number;
    lost: number;
    duplicates: number;
  };
  publisher: { batchRetries: number; duplicates: number };
  timings: {
    publishMs: number;
    totalMs: number;
    /** Messages confirmed per second while publishing. */
    publishPerSecond: number;
    /** Messages settled (processed or dead-lettered) per second, whole run. */
    processPerSecond: number;
  };
}

/** The run did not finish in time; the message says how far it got. */
export class DemoTimeoutError extends Error {
  readonly code = 'DEMO_TIMEOUT';

  constructor(message: string) {
    super(message);
    this.name = 'DemoTimeoutError';
  }
}

export const DEFAULT_BUYERS = 10_000;
export const DEFAULT_TIMINGS: QueueTimings = {
  emailVisibilityTimeoutMs: 2_000,
  retryInitialMs: 100,
  retryMaxMs: 1_000,
};
const DEFAULT_PUBLISH: PublishSettings = { batchSize: 500, concurrency: 4 };
const DEFAULT_CRASH = { afterFraction: 0.3, downMs: 1_500 };
const POLL_MS = 100;
/** Graceful consumer stops, and then the audit, get this long each. */
const WIND_DOWN_MS = 10_000;

/** A URL fit for a report: its password, if any, hidden. */
function withoutPassword(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** The default bound on a run: 30 s plus 5 ms per buyer. */
export function timeoutFor(buyers: number): number {
  return 30_000 + buyers * 5;
}

export async function runTicketingDemo(
  options: TicketingOptions,
): Promise<TicketingReport> {
  const started = Date.now();
  const seed = options.seed ?? 1;
  const runId = options.runId ?? newRunId();
  const deadline = started + (options.timeoutMs ?? timeoutFor(options.buyers));
  const note = options.onNote ?? (() => {});
  const timings = { ...DEFAULT_TIMINGS, ...options.timings };
  const queues = plannedQueues(runId, timings);
  const purchases = generatePurchases(options.buyers, seed);
  const malformed = purchases.filter((p) => p.defect !== null);
  const client = connect(options.url);
  const messaging = options.amqpUrl === undefined ? client : connect(options.amqpUrl);

  await createQueues(client, queues);
  note(
    `run ${runId}: fresh queues tickets.${runId}.{payment,email,sms}, ` +
      'each with a .dlq',
  );

  const crash =
    options.emailCrash === undefined ? DEFAULT_CRASH : options.emailCrash;
  const services = queues.map(
    ({ service, queue }) =>
      new Service({
        name: service,
        url: messaging.url,
        queue,
        seed,
        pace: options.pace?.[service] ?? DEFAULT_PACE[service],
        note,
        failureRate: service === 'sms' ? (options.smsFailureRate ?? 0.15) : 0,
        crash:
          service === 'email' && crash
            ? {
                afterProcessed: Math.ceil(crash.afterFraction * options.buyers),
                downMs: crash.downMs,
              }
            : undefined,
      }),
  );
  const ticketing = new TicketingService(messaging, queues, {
    ...DEFAULT_PUBLISH,
    ...options.publish,
  });

  const progress = (): Progress => ({
    elapsedMs: Date.now() - started,
    published: ticketing.confirmed,
    toPublish: purchases.length * queues.length,
    processed: byService(services, (s) => s.processed.size),
    down: services.filter((s) => s.down).map((s) => s.name),
    retries: services.reduce((sum, s) => sum + s.stats.retried, 0),
    deadLettered: services.reduce((sum, s) => sum + s.stats.rejected, 0),
  });
  const onProgress = options.onProgress;
  const every = options.progressIntervalMs ?? 1_000;
  const ticker = onProgress
    ? setInterval(() => onProgress(progress()), every)
    : undefined;

  let publishMs: number;
  let settledAt: number;
  let finished = false;
  try {
    for (const service of services) service.start();
    const publishStart = Date.now();
    await beforeDeadline(ticketing.publishAll(purchases), deadline, () =>
      stalled(progress()),
    );
    publishMs = Date.now() - publishStart;

    await untilSettled(client, queues.map((q) => q.queue), deadline, progress);
    settledAt = Date.now();
    finished = true;
  } finally {
    clearInterval(ticker);
    ticketing.stop();
    // A stop that hangs (a broker gone quiet) must not hide why we are
    // here, nor keep the run going past its bound.
    await beforeDeadline(
      Promise.all(services.map((s) => s.stop())),
      Date.now() + WIND_DOWN_MS,
      () => `the services did not stop within ${WIND_DOWN_MS} ms`,
    ).catch((err: Error) => note(err.message));
    if (messaging !== client) await messaging.close().catch(() => {});
    // A run that failed (an AMQP URL nobody answers) leaves no queues
    // behind either.
    if (!finished && options.deleteQueues) await deleteQueues(client, queues).catch(() => {});
  }
  options.onProgress?.(progress());

  const malformedIds = new Set(malformed.map((p) => p.ticketId));
  const audit = async () => {
    const reports = {} as Record<ServiceName, ServiceReport>;
    for (const [i, q] of queues.entries()) {
      const published = ticketing.published.get(q.service) ?? new Set();
      reports[q.service] = await auditService(
        client,
        q,
        services[i],
        published,
        malformedIds,
      );
    }
    if (options.deleteQueues) await deleteQueues(client, queues);
    return reports;
  };
  const reports = await beforeDeadline(
    audit(),
    Date.now() + WIND_DOWN_MS,
    () => `the audit did not finish within ${WIND_DOWN_MS} ms`,
  );

  const problems = SERVICE_NAMES.flatMap((name) =>
    problemsOf(name, reports[name]),
  );
  const totals = {
    published: sum(reports, (r) => r.published),
    processed: sum(reports, (r) => r.processed),
    retried: sum(reports, (r) => r.retried),
    deadLettered: sum(reports, (r) => r.deadLettered),
    lost: sum(reports, (r) => r.lost),
    duplicates: sum(reports, (r) => r.duplicates),
  };
  const totalMs = settledAt - started;
  return {
    ok: problems.length === 0,
    problems,
    runId,
    url: client.url,
    messagingUrl: withoutPassword(messaging.url),
    queueNames: `tickets.${runId}.<service>, fresh for this run`,
    buyers: options.buyers,
    seed,
    malformed: malformed.map((p) => ({
      ticketId: p.ticketId,
      defect: p.defect as Defect,
    })),
    services: reports,
    totals,
    publisher: {
      batchRetries: ticketing.retries,
      duplicates: ticketing.duplicates,
    },
    timings: {
      publishMs,
      totalMs,
      publishPerSecond: perSecond(totals.published, publishMs),
      processPerSecond: perSecond(
        totals.processed + totals.deadLettered,
        totalMs,
      ),
    },
  };
}

/**
 * Waits until every service queue is empty: each message acked or
 * dead-lettered, none leased (a crashed holder's leases must run out and
 * be redelivered first) or waiting for a retry.
 */
async function untilSettled(
  client: ReturnType<typeof connect>,
  queues: readonly string[],
  deadline: number,
  progress: () => Progress,
): Promise<void> {
  const polls = Math.ceil((deadline - Date.now()) / POLL_MS) + 1;
  for (let i = 0; i < polls; i++) {
    const infos = await beforeDeadline(
      Promise.all(queues.map((q) => client.getQueue(q))),
      deadline,
      () => stalled(progress()),
    );
    if (infos.every((info) => info.stats.total === 0)) return;
    if (Date.now() + POLL_MS > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new DemoTimeoutError(stalled(progress()));
}

/** Rejects with DemoTimeoutError(why()) if `work` is not done by `deadline`. */
async function beforeDeadline<T>(
  work: Promise<T>,
  deadline: number,
  why: () => string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DemoTimeoutError(why())),
      Math.max(0, deadline - Date.now()),
    );
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function stalled(p: Progress): string {
  const processed = SERVICE_NAMES.map(
    (name) => `${name} ${p.processed[name]}`,
  ).join(', ');
  const down = p.down.length > 0 ? `; down: ${p.down.join(', ')}` : '';
  const elapsed = (p.elapsedMs / 1000).toFixed(1);
  return (
    `ticketing demo did not finish within ${elapsed} s: ` +
    `published ${p.published}/${p.toPublish}, processed ${processed}, ` +
    `retries ${p.retries}, dead-lettered ${p.deadLettered}${down}`
  );
}

function byService<T>(services: readonly Service[], value: (s: Service) => T) {
  const result = {} as Record<ServiceName, T>;
  for (const service of services) result[service.name] = value(service);
  return result;
}

function sum(
  reports: Record<ServiceName, ServiceReport>,
  value: (r: ServiceReport) => number,
): number {
  return SERVICE_NAMES.reduce((total, name) => total + value(reports[name]), 0);
}

function perSecond(count: number, ms: number): number {
  return ms > 0 ? Math.round((count * 1000) / ms) : 0;
}
