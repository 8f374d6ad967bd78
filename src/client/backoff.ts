// How the client honours the broker's overload signals (issue #6): a
// publish refused with 429 or 503 as QUEUE_FULL or OVERLOADED (nothing was
// stored) is sent again after the broker's Retry-After plus a random share
// of an exponential step, a bounded number of times. When the retries run
// out the caller gets MessagesShedError holding every message that was not
// accepted, so nothing is lost without the caller knowing.

import { UsherClientError } from './errors.js';
import type { OutgoingMessage } from './types.js';

export interface RetryPolicy {
  /** Retries after the first refusal; 0 turns retrying off (default 4). */
  retries: number;
  /** First exponential step (default 200 ms); doubles with each retry. */
  baseMs: number;
  /** Largest exponential step (default 10 s). */
  maxMs: number;
  /** Uniform in [0, 1), for jitter; injectable for tests. */
  random: () => number;
  /** Waits; injectable so tests need not sleep. */
  sleep: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY: RetryPolicy = {
  retries: 4,
  baseMs: 200,
  maxMs: 10_000,
  random: Math.random,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Refusals under load: the broker stored nothing, so sending again is safe. */
const SHED_CODES = new Set(['QUEUE_FULL', 'OVERLOADED']);

export function isShed(err: unknown): err is UsherClientError {
  return err instanceof UsherClientError && SHED_CODES.has(err.code);
}

/**
 * The broker kept refusing these messages under load (QUEUE_FULL or
 * OVERLOADED) through every retry; none of them was stored. `code`,
 * `status`, `level` and `reason` are the last refusal's.
 *
 * @example
 *   try {
 *     await usher.publish('recommendations', item, { priority: 1 });
 *   } catch (err) {
 *     if (err instanceof MessagesShedError) metrics.shed(err.messages.length);
 *     else throw err;
 *   }
 */
export class MessagesShedError extends UsherClientError {
  /** Every message not accepted, as the caller gave them. */
  readonly messages: readonly OutgoingMessage[];
  /** Times the publish was sent, the first included. */
  readonly attempts: number;

  constructor(last: UsherClientError, messages: readonly OutgoingMessage[], attempts: number) {
    super(
      last.code,
      last.status,
      `${messages.length} message(s) shed after ${attempts} attempt(s): ${last.message}`,
      {
        field: last.field,
        cause: last,
        retryAfterMs: last.retryAfterMs,
        level: last.level,
        reason: last.reason,
      },
    );
    this.name = 'MessagesShedError';
    this.messages = messages;
    this.attempts = attempts;
  }
}

/** Runs `send`, retrying shed refusals per `policy`. */
export async function withBackoff<T>(
  policy: RetryPolicy,
  messages: readonly OutgoingMessage[],
  send: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (!isShed(err)) throw err;
      if (attempt > policy.retries) throw new MessagesShedError(err, messages, attempt);
      await policy.sleep(retryDelay(policy, attempt, err.retryAfterMs));
    }
  }
}

/**
 * Never sooner than the broker's Retry-After; on top, a uniform share of
 * an exponential step ("full jitter"), so refused publishers do not all
 * come back in the same instant.
 */
export function retryDelay(
  policy: RetryPolicy,
  attempt: number,
  retryAfterMs: number | undefined,
): number {
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  return (retryAfterMs ?? 0) + Math.floor(policy.random() * step);
}
