// Where a payment's time goes in the on-sale demo, from timestamps taken
// along its way, all on this machine's clock (the broker runs here too):
//
//   sentAt       the publisher's tick that sent the message, or the first
//                tick that held it back for want of room in its window
//   publishedAt  the broker took the publish (ReceivedMessage.publishedAt)
//   confirmedAt  the publish answer reached the demo (stored durably)
//   askedAt      the pool sent the receive that got the message
//   fetchedAt    that receive answered: the message is leased to the pool
//   takenAt      a worker starts on it
//
// and split into five segments that add up to the whole latency:
//
//   toBroker   sentAt -> publishedAt: any wait for room in the window,
//              the request, parsing, the broker's event loop
//   durable    publishedAt -> confirmedAt: log write, fsync, the answer
//   waiting    confirmedAt -> askedAt: stored, but the pool did not ask
//   delivery   -> fetchedAt: the receive request and its answer
//   buffered   fetchedAt -> takenAt: held by the pool until a worker is free
//
// The pool's long poll is usually asking before the publisher has read its
// answer (both run in this process); then `waiting` is 0 and `delivery`
// starts at the confirmation.

export type Segment = 'toBroker' | 'durable' | 'waiting' | 'delivery' | 'buffered';
export const SEGMENTS: readonly Segment[] = [
  'toBroker',
  'durable',
  'waiting',
  'delivery',
  'buffered',
];

export interface TakenPayment {
  id: string;
  sentAt: number;
  publishedAt: number;
  askedAt: number;
  fetchedAt: number;
  takenAt: number;
}

export interface PhaseLatency {
  /** Payments counted: the percentiles below come from this many. */
  samples: number;
  p50: number;
  p99: number;
  /** Per segment: p50 and p99 over all samples, and the mean over the
   * slowest 1% (the payments at or above the p99), which is what the p99
   * is made of. */
  segments: Record<Segment, { p50: number; p99: number; slowestMean: number }>;
  /** p99 of the first and of the second half of the samples by send
   * time: how far the p99 moves with no change of load at all, the noise
   * floor of a ratio between two phases (large on a shared machine). */
  halvesP99: [number, number];
}

export class PaymentTimings {
  private readonly confirmedAt = new Map<string, number>();
  private readonly taken = new Map<string, TakenPayment[]>();

  confirmed(id: string, at: number): void {
    this.confirmedAt.set(id, at);
  }

  /** Records one payment a worker took, under the phase it was sent in. */
  took(phase: string, payment: TakenPayment): void {
    const list = this.taken.get(phase) ?? [];
    list.push(payment);
    this.taken.set(phase, list);
  }

  summary(phase: string): PhaseLatency {
    const samples = (this.taken.get(phase) ?? []).map((p) => this.split(p));
    const totals = samples.map((s) => s.total);
    const p99 = quantile(totals, 0.99);
    const slowest = samples.filter((s) => s.total >= p99);
    const segments = {} as PhaseLatency['segments'];
    for (const segment of SEGMENTS) {
      const values = samples.map((s) => s[segment]);
      segments[segment] = {
        p50: quantile(values, 0.5),
        p99: quantile(values, 0.99),
        slowestMean: mean(slowest.map((s) => s[segment])),
      };
    }
    const bySendTime = (this.taken.get(phase) ?? [])
      .map((p) => ({ sentAt: p.sentAt, total: p.takenAt - p.sentAt }))
      .sort((a, b) => a.sentAt - b.sentAt)
      .map((p) => p.total);
    const half = Math.floor(bySendTime.length / 2);
    const halvesP99: [number, number] = [
      quantile(bySendTime.slice(0, half), 0.99),
      quantile(bySendTime.slice(half), 0.99),
    ];
    return { samples: samples.length, p50: quantile(totals, 0.5), p99, segments, halvesP99 };
  }

  private split(p: TakenPayment): Record<Segment | 'total', number> {
    // A payment fetched before its answer was read counts as confirmed then.
    const confirmedAt = Math.min(this.confirmedAt.get(p.id) ?? p.fetchedAt, p.fetchedAt);
    const toBroker = Math.max(0, p.publishedAt - p.sentAt);
    const durable = Math.max(0, confirmedAt - p.sentAt - toBroker);
    const waiting = Math.max(0, p.askedAt - confirmedAt);
    const delivery = Math.max(0, p.fetchedAt - Math.max(p.askedAt, confirmedAt));
    const total = p.takenAt - p.sentAt;
    return {
      toBroker,
      durable,
      waiting,
      delivery,
      buffered: Math.max(0, total - toBroker - durable - waiting - delivery),
      total,
    };
  }
}

export function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
}

function mean(values: number[]): number {
  if (values.length === 0) return 0;
  return Math.round((values.reduce((sum, v) => sum + v, 0) / values.length) * 10) / 10;
}
