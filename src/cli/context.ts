// What every command module gets: the client for the global --url, output
// streams, and parsers that turn flag text into values or usage errors.

import {
  InvalidArgumentError as FlagError,
  type Command,
} from 'commander';

import { MAX_DURATION_MS, MAX_TTL_MS } from '../broker/settings.js';
import {
  connect,
  connectAdmin,
  type ClientOptions,
  type UsherAdmin,
  type UsherClient,
} from '../client/index.js';
import { formatDuration, parseDuration, parseSize } from '../util/duration.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** A mistake in how usher was called; exits with status 2. */
export class UsageError extends Error {
  readonly code = 'USAGE';

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure to report as one line, e.g. a port in use; exits with 1. */
export class CliError extends Error {
  readonly code = 'FAILED';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** Handed to each command group when it registers its commands. */
export interface Cli {
  /** The client for --url (or USHER_URL); made on first use. */
  client(): UsherClient;
  /** Users and tokens of the broker at --url, with the same credentials. */
  admin(): UsherAdmin;
  /** Writes one line of results to stdout. */
  out(line: string): void;
  /** Writes one line of notes (progress, summaries) to stderr. */
  note(line: string): void;
}

/** A group of related commands: serve, queue, publish, ... */
export interface CommandGroup {
  register(program: Command, cli: Cli): void;
}

export function createCli(program: Command): Cli {
  let client: UsherClient | undefined;
  return {
    client() {
      if (client) return client;
      const url = String(program.opts().url ?? DEFAULT_URL);
      try {
        // A refusal under load is shown at once: a person at a prompt
        // decides whether to try again, rather than wait out retries.
        client = connect(url, { ...credentialsOf(program), retry: { retries: 0 } });
      } catch (err) {
        throw new UsageError(
          `invalid --url "${url}": expected e.g. ${DEFAULT_URL}`,
        );
      }
      return client;
    },
    admin() {
      const url = String(program.opts().url ?? DEFAULT_URL);
      try {
        return connectAdmin(url, credentialsOf(program));
      } catch {
        throw new UsageError(`invalid --url "${url}": expected e.g. ${DEFAULT_URL}`);
      }
    },
    out: (line) => void process.stdout.write(`${line}\n`),
    note: (line) => void process.stderr.write(`${line}\n`),
  };
}

/**
 * --user/--password (USHER_USER, USHER_PASSWORD) or USHER_TOKEN; none at
 * all means the guest, which the broker accepts from its own machine.
 */
function credentialsOf(program: Command): ClientOptions {
  const opts = program.opts() as { user?: string; password?: string; token?: string };
  if (opts.user !== undefined) {
    if (opts.password === undefined) {
      throw new UsageError('--user needs --password (or USHER_PASSWORD)');
    }
    return { user: opts.user, password: opts.password };
  }
  if (opts.token !== undefined && opts.token !== '') return { token: opts.token };
  return {};
}

// --- flag parsers -------------------------------------------------------
// Commander calls these with the flag's text; a FlagError becomes
// `option '--delay <duration>' argument '5x' is invalid. <message>`.

/** `250ms`, `5s`, `1m`, `1h30m` or bare milliseconds. */
export function durationFlag(text: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw new FlagError(
      'expected a duration like 250ms, 5s, 1m or milliseconds',
    );
  }
}

/**
 * durationFlag for a message's or queue's time, which the broker takes up
 * to `maxMs`: refused here in the flag's own words ("at most 1d"), not by
 * the broker in its field's ("visibilityTimeoutMs must be <= 86400000").
 */
export function durationUpTo(maxMs: number): (text: string) => number {
  return (text) => {
    const ms = durationFlag(text);
    if (ms > maxMs) throw new FlagError(`at most ${formatDuration(maxMs)}`);
    return ms;
  };
}

/** A delay, lease or backoff: up to a day, as the broker takes them. */
export const dayFlag = durationUpTo(MAX_DURATION_MS);

/** A time to live: up to 14 days. */
export const ttlFlag = durationUpTo(MAX_TTL_MS);

/** `512KiB`, `16MiB` or bare bytes. */
export function sizeFlag(text: string): number {
  try {
    return parseSize(text);
  } catch {
    throw new FlagError('expected a size like 512KiB, 16MiB or bytes');
  }
}

/** A parser for whole numbers from `min` to `max`. */
export function intFlag(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (text: string): number => {
    const value = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      const range =
        max === Number.MAX_SAFE_INTEGER
          ? `at least ${min}`
          : `${min} to ${max}`;
      throw new FlagError(`expected a whole number, ${range}`);
    }
    return value;
  };
}

/** A parser for decimal numbers from `min` to `max`. */
export function numberFlag(min: number, max: number) {
  return (text: string): number => {
    const value = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : NaN;
    if (!Number.isFinite(value) || value < min || value > max) {
      throw new FlagError(`expected a number from ${min} to ${max}`);
    }
    return value;
  };
}

/** Collects repeated `--header key=value` flags into one record. */
export function headerFlag(
  text: string,
  previous: Record<string, string> = {},
): Record<string, string> {
  const at = text.indexOf('=');
  if (at <= 0) throw new FlagError('expected key=value');
  return { ...previous, [text.slice(0, at)]: text.slice(at + 1) };
}
