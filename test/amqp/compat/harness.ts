// What a compatibility case is and what it gets to work with. A case is
// written once and runs for every target and client; where a target or a
// client cannot run it, it says so (`onlyTarget`, `onlyClient`), and
// where Usher is known to differ from RabbitMQ it is marked `usherTodo`.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  replyCodeOf, type Chan, type Client, type Closed, type Conn, type ConsumeOptions, type Msg,
} from './clients.js';
import type { TargetName } from './targets.js';

export interface Case {
  name: string;
  /** Runs on this target only; the reason is the skip message elsewhere. */
  onlyTarget?: { target: TargetName; reason: string };
  /** Runs with this client only, when the other lacks the API. */
  onlyClient?: { client: Client['name']; reason: string };
  /**
   * A known Usher bug, file and function named: the case still runs on
   * Usher, where failing is reported as TODO and passing is an error.
   */
  usherTodo?: string;
  run(ctx: Ctx): Promise<void>;
}

/** Every case has at most this long, waits included. */
export const CASE_TIMEOUT_MS = 10_000;

export class Ctx {
  private readonly opened: Conn[] = [];
  private used = 0;

  constructor(
    readonly target: TargetName,
    readonly client: Client,
    readonly url: string,
    private readonly prefix: string,
  ) {}

  get usher(): boolean {
    return this.target === 'usher';
  }

  /** A queue or exchange name of this case's own. */
  name(tag: string): string {
    return `${this.prefix}.${tag}.${++this.used}`;
  }

  async connect(): Promise<Conn> {
    const conn = await this.client.connect(this.url);
    this.opened.push(conn);
    return conn;
  }

  /** A new connection and one channel on it. */
  async open(options: { confirm?: boolean } = {}): Promise<{ conn: Conn; ch: Chan }> {
    const conn = await this.connect();
    return { conn, ch: await conn.channel(options) };
  }

  async cleanup(): Promise<void> {
    for (const conn of this.opened) {
      await Promise.race([conn.close().catch(() => {}), sleep(2000)]);
    }
  }
}

// --- waiting ----------------------------------------------------------------

/** Resolves with `promise`, or fails naming `what` after `ms`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every 10 ms until it holds, for at most `ms`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 3000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Messages a consumer got, in order, and a way to wait for more. */
export class Inbox {
  readonly messages: Msg[] = [];
  cancelled = false;
  tag = '';

  readonly onMessage = (message: Msg) => {
    this.messages.push(message);
  };

  readonly onCancel = () => {
    this.cancelled = true;
  };

  /** Waits until at least `count` have come; returns the first `count`. */
  async take(count: number, ms = 3000): Promise<Msg[]> {
    await until(`${count} deliveries (have ${this.messages.length})`,
      () => this.messages.length >= count, ms);
    return this.messages.slice(0, count);
  }

  bodies(): string[] {
    return this.messages.map((m) => m.body);
  }
}

/** Starts a consumer that fills an Inbox. */
export async function consumeInto(
  ch: Chan,
  queue: string,
  options: ConsumeOptions = {},
): Promise<Inbox> {
  const inbox = new Inbox();
  inbox.tag = await ch.consume(queue, options, inbox.onMessage, inbox.onCancel);
  return inbox;
}

/** Short settling pause before asserting that nothing (more) arrived. */
export const quiet = () => sleep(150);

// --- errors -----------------------------------------------------------------

/**
 * Runs `operation`, which the server must refuse by closing the channel
 * with `code`; then checks the connection still works.
 */
export async function expectChannelError(
  conn: Conn,
  ch: Chan,
  code: number,
  operation: () => Promise<unknown>,
): Promise<Closed> {
  const outcome = await within(3000, `a ${code} refusal`, operation().then(
    () => 'succeeded' as const,
    (err: unknown) => err,
  ));
  assert.notEqual(outcome, 'succeeded', `expected ${code}, but the operation succeeded`);
  const closed = await within(3000, 'the channel to close', ch.closed);
  assert.equal(replyCodeOf(outcome) ?? closed.code, code, `reply: ${closed.text}`);
  assert.equal(closed.code, code, closed.text);
  assert.equal(closed.scope, 'channel', `expected a channel error, got ${closed.text}`);
  // A channel error leaves the connection open.
  const other = await conn.channel();
  await other.close();
  return closed;
}

/** For refusals that come later (publish, ack): waits for the close. */
export async function expectAsyncChannelClose(ch: Chan, code: number): Promise<Closed> {
  const closed = await within(3000, `the channel to close with ${code}`, ch.closed);
  assert.equal(closed.code, code, closed.text);
  assert.equal(closed.scope, 'channel', closed.text);
  return closed;
}

/** `operation` (or what follows) must close the connection with `code`. */
export async function expectConnectionError(
  conn: Conn,
  code: number,
  operation: () => Promise<unknown>,
): Promise<Closed> {
  void operation().catch(() => {});
  const closed = await within(3000, `the connection to close with ${code}`, conn.closed);
  assert.equal(closed.code, code, closed.text);
  assert.equal(closed.scope, 'connection', closed.text);
  return closed;
}
