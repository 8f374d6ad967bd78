// `usher bench` flags turned into a checked BenchOptions (without the
// driver): defaults, the open/closed-loop choice, the priority mix, the
// profile. Kept apart from the command so tests can call it directly.

import { readFileSync } from 'node:fs';

import { UsageError } from '../cli/context.js';
import {
  type Profile,
  ProfileError,
  parseProfile,
  spikeProfile,
  steadyProfile,
} from './profile.js';
import { bodyTemplate } from './stamp.js';

export interface BenchFlags {
  protocol?: string;
  producers: number;
  consumers: number;
  queues: number;
  size: number;
  body?: string;
  rate?: number;
  duration?: number;
  count?: number;
  confirmWindow: number;
  prefetch: number;
  ack: string;
  priorityMix?: string;
  nackShare: number;
  profile?: string;
  spikeFactor: number;
  transient?: boolean;
  drainTimeout: number;
  brokerPid?: number;
  keepQueues?: boolean;
  queuePrefix?: string;
}

export const DEFAULT_DURATION_MS = 10_000;
export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

export interface ResolvedFlags {
  protocol: 'http' | 'amqp';
  body: Buffer;
  profile: Profile | null;
  count: number | null;
  durationMs: number | null;
  priorities: number[];
  ackMode: 'manual' | 'none';
}

/** Picks the protocol: the flag, else the URL's scheme. */
export function protocolOf(flag: string | undefined, url: string): 'http' | 'amqp' {
  if (flag !== undefined) {
    if (flag !== 'http' && flag !== 'amqp') {
      throw new UsageError(`--protocol must be http or amqp, got "${flag}"`);
    }
    return flag;
  }
  return url.startsWith('amqp:') ? 'amqp' : 'http';
}

export function resolveFlags(flags: BenchFlags, url: string): ResolvedFlags {
  const protocol = protocolOf(flags.protocol, url);
  checkUrlScheme(protocol, url);
  if (flags.transient === true && protocol === 'http') {
    throw new UsageError(
      '--transient is AMQP only: over HTTP Usher keeps every message durable',
    );
  }
  const body =
    flags.body === undefined ? sizedBody(flags.size) : bodyTemplate(0, readBodyFile(flags.body));
  if (flags.ack !== 'manual' && flags.ack !== 'none') {
    throw new UsageError(`--ack must be manual or none, got "${flags.ack}"`);
  }
  if (flags.ack === 'none' && flags.nackShare > 0) {
    throw new UsageError('--nack-share needs --ack manual');
  }
  if (flags.ack === 'none' && protocol === 'http') {
    throw new UsageError('--ack none is AMQP only: HTTP receives always lease');
  }

  // Queue i gets producer i and consumer i (round robin): a queue with no
  // consumer would leave its messages behind and call them lost.
  if (flags.consumers > 0 && flags.consumers < flags.queues) {
    throw new UsageError(
      `--consumers ${flags.consumers} < --queues ${flags.queues}: every queue needs a consumer`,
    );
  }

  const count = flags.count ?? null;
  let durationMs = flags.duration ?? null;
  const profile = profileOf(flags, durationMs);
  if (profile === null && count === null && durationMs === null) durationMs = DEFAULT_DURATION_MS;
  return {
    protocol,
    body,
    profile,
    count,
    durationMs: profile === null ? durationMs : null,
    priorities: flags.priorityMix === undefined ? [0] : priorityCycle(flags.priorityMix),
    ackMode: flags.ack,
  };
}

/** A URL of the other protocol would fail later with a confusing error. */
function checkUrlScheme(protocol: 'http' | 'amqp', url: string): void {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (protocol === 'http' && scheme !== 'http' && scheme !== 'https') {
    throw new UsageError(
      `--url ${redactUrl(url)} is not an http(s):// URL ` +
        '(for AMQP, give amqp://... or --protocol amqp)',
    );
  }
  // amqps:// is not spoken: the bench's AMQP link is plain TCP.
  if (protocol === 'amqp' && scheme !== 'amqp') {
    throw new UsageError(`--url ${redactUrl(url)} is not an amqp:// URL (--protocol amqp)`);
  }
}

/** Hides a password in a URL shown in a message. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}

function sizedBody(size: number): Buffer {
  try {
    return bodyTemplate(size);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function readBodyFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read --body "${path}": ${(err as Error).message}`);
  }
}

/** --profile NAME|FILE, or a steady --rate; null for a closed loop. */
function profileOf(flags: BenchFlags, durationMs: number | null): Profile | null {
  const duration = durationMs ?? DEFAULT_DURATION_MS;
  if (flags.profile === undefined) {
    return flags.rate === undefined ? null : steadyProfile(flags.rate, duration);
  }
  if (flags.profile === 'spike' || flags.profile === 'steady') {
    if (flags.rate === undefined) {
      throw new UsageError(`--profile ${flags.profile} needs --rate (the steady rate)`);
    }
    return flags.profile === 'spike'
      ? spikeProfile(flags.rate, duration, flags.spikeFactor)
      : steadyProfile(flags.rate, duration);
  }
  let text: string;
  try {
    text = readFileSync(flags.profile, 'utf8');
  } catch (err) {
    throw new UsageError(
      `--profile "${flags.profile}" is neither spike, steady nor a readable file: ` +
        (err as Error).message,
    );
  }
  try {
    return parseProfile(text, flags.profile);
  } catch (err) {
    if (err instanceof ProfileError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * `0:90,9:10` (priority:weight) as a cycle of priorities in which each
 * appears in its share, spread out (smooth weighted round-robin).
 */
export function priorityCycle(mix: string): number[] {
  const entries = mix.split(',').map((part) => {
    const match = /^\s*(\d):(\d+)\s*$/.exec(part);
    if (match === null) {
      throw new UsageError(`--priority-mix: cannot read "${part}"; expected e.g. 0:90,9:10`);
    }
    return { priority: Number(match[1]), weight: Number(match[2]), current: 0 };
  });
  const total = entries.reduce((sum, e) => sum + e.weight, 0);
  if (total === 0 || total > 10_000) {
    throw new UsageError('--priority-mix: weights must add up to 1 to 10000');
  }
  const cycle: number[] = [];
  for (let i = 0; i < total; i++) {
    for (const e of entries) e.current += e.weight;
    const pick = entries.reduce((best, e) => (e.current > best.current ? e : best));
    pick.current -= total;
    cycle.push(pick.priority);
  }
  return cycle;
}
