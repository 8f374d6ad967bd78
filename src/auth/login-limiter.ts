// Brute-force protection. Failed logins are counted per source address and
// per (address, user). Past a few failures each further attempt of that
// pair is slowed down, doubling up to a cap; past more, the pair is refused
// outright for a while, correct password or not, and so is an address that
// fails across many user names (password spraying). A pair that logs in
// clears its own count; an address's count only decays with time.
//
// Memory is bounded: at most MAX_ENTRIES are kept, the oldest dropped
// first, so a flood of addresses cannot grow the table.

export interface LimiterPolicy {
  /** Failures of one (address, user) before attempts are slowed. */
  slowAfter: number;
  /** Delay of the first slowed attempt; doubles with each failure. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Failures of one (address, user) before it is refused for a while. */
  lockAfter: number;
  /** Failures from one address, any users, before it is refused. */
  lockAddressAfter: number;
  lockMs: number;
  /** Failures older than this with none since are forgotten. */
  forgetAfterMs: number;
}

export const DEFAULT_LIMITER_POLICY: LimiterPolicy = {
  slowAfter: 5,
  baseDelayMs: 250,
  maxDelayMs: 4000,
  lockAfter: 10,
  lockAddressAfter: 100,
  lockMs: 5 * 60_000,
  forgetAfterMs: 15 * 60_000,
};

const MAX_ENTRIES = 50_000;

interface Entry {
  failures: number;
  lastFailureAt: number;
  lockedUntil: number;
}

/** What to do with an attempt before checking its credentials. */
export type Verdict =
  | { kind: 'go'; delayMs: number }
  | { kind: 'locked'; retryAfterMs: number };

export class LoginLimiter {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly policy: LimiterPolicy = DEFAULT_LIMITER_POLICY,
    private readonly now: () => number = Date.now,
  ) {}

  /** Asked before each attempt. */
  check(address: string, user: string): Verdict {
    const now = this.now();
    const pair = this.current(pairKey(address, user), now);
    const whole = this.current(addressKey(address), now);
    const lockedUntil = Math.max(pair?.lockedUntil ?? 0, whole?.lockedUntil ?? 0);
    if (lockedUntil > now) return { kind: 'locked', retryAfterMs: lockedUntil - now };

    const failures = pair?.failures ?? 0;
    if (failures < this.policy.slowAfter) return { kind: 'go', delayMs: 0 };
    const doublings = Math.min(failures - this.policy.slowAfter, 20);
    const delayMs = Math.min(this.policy.baseDelayMs * 2 ** doublings, this.policy.maxDelayMs);
    return { kind: 'go', delayMs };
  }

  failed(address: string, user: string): void {
    const now = this.now();
    this.bump(pairKey(address, user), now, this.policy.lockAfter);
    this.bump(addressKey(address), now, this.policy.lockAddressAfter);
  }

  succeeded(address: string, user: string): void {
    this.entries.delete(pairKey(address, user));
  }

  /** Entries held now; for tests of the bound. */
  get size(): number {
    return this.entries.size;
  }

  private bump(key: string, now: number, lockAfter: number): void {
    const entry = this.current(key, now) ?? { failures: 0, lastFailureAt: now, lockedUntil: 0 };
    entry.failures += 1;
    entry.lastFailureAt = now;
    if (entry.failures >= lockAfter) entry.lockedUntil = now + this.policy.lockMs;
    // Re-inserted so the Map's order stays oldest-first.
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  /** The entry unless it has been quiet long enough to forget. */
  private current(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const quiet = now - entry.lastFailureAt > this.policy.forgetAfterMs;
    if (quiet && entry.lockedUntil <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }
}

function pairKey(address: string, user: string): string {
  return `u\u0000${address}\u0000${user}`;
}

function addressKey(address: string): string {
  return `a\u0000${address}`;
}
