// The workloads of bench/amqp-compare.ts, the same amqplib code for every
// broker. Each runs on connections it is given, measures one phase with
// its clock and CPU meters, and ends when done, stalled or out of time.

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Channel, ChannelModel, ConfirmChannel, Options } from 'amqplib';

import { cpuSeconds, fromRoot, machineCpuSeconds } from './brokers.js';

export const CONFIRM_WINDOW = 256;
export const PREFETCH = 500;
export const LATENCY_RATE = 5_000;
/** A phase in which no message moved for this long has stalled. */
const STALL_MS = 10_000;
/** No phase of a run goes on past this, moving or not. */
const PHASE_LIMIT_MS = 120_000;
/** A call that should answer at once: a broker that takes longer is stuck. */
export const ANSWER_LIMIT_MS = 10_000;

export interface Target {
  column: string;
  url: string;
  /** The broker's process, for its CPU. */
  pid: number;
  /** queue.declare options for a durable or transient run. */
  queue: Options.AssertQueue;
  depth(queue: string): Promise<string>;
  log(text: string): void;
}

export interface Figure {
  messages: number;
  wanted: number;
  seconds: number;
  brokerCpu: number;
  clientCpu: number;
  /** CPU the machine spent on anything but the broker and this client. */
  otherCpu: number;
  /** Set when the phase ended before every message had moved. */
  ended?: 'stalled' | 'out of time';
  /** Latency runs: every sample, for pooling over rounds (latency-rounds.ts). */
  samples?: LatencySamples;
}

/**
 * A latency run's samples in ms, one a message. `total` from a message's
 * due time to its delivery here (every delivered message); its parts,
 * over the messages both delivered and confirmed: `lag` from the due
 * time to the publish (this client's timer and loop, the same code for
 * every broker), `deliver` from the publish to its delivery here and
 * `confirm` from the publish to its confirm here. The broker's share is
 * mostly `deliver`.
 */
export interface LatencySamples {
  total: Float64Array;
  lag: Float64Array;
  deliver: Float64Array;
  confirm: Float64Array;
}

// --- bodies --------------------------------------------------------------

// The ticket event as compact JSON with a fixed-width due time (µs on
// this process's clock, filled in by the latency run), padded with
// spaces to 464 bytes, the size the HTTP benchmark uses too.
const EVENT_BYTES = 464;
const STAMP_DIGITS = 16;
const ticketText = JSON.stringify({
  ...JSON.parse(readFileSync(fromRoot('examples/ticket-purchased.json'), 'utf8')),
  sent_us: '0'.repeat(STAMP_DIGITS),
});
const STAMP_AT = ticketText.indexOf('"sent_us":"') + '"sent_us":"'.length;

export const BODIES = {
  tiny: Buffer.from('{"n":0}'.padEnd(16, ' ')),
  ticket: Buffer.from(ticketText.padEnd(EVENT_BYTES, ' ')),
  large: Buffer.from(ticketText.padEnd(16_384, ' ')),
};

function stamped(dueMs: number): Buffer {
  const body = Buffer.from(BODIES.ticket);
  const micros = String(Math.round(dueMs * 1000)).padStart(STAMP_DIGITS, '0');
  body.write(micros, STAMP_AT, 'latin1');
  return body;
}

function stampOf(body: Buffer): number {
  return Number(body.toString('latin1', STAMP_AT, STAMP_AT + STAMP_DIGITS)) / 1000;
}

// --- a phase -------------------------------------------------------------

/**
 * One measured phase: its clock and CPU meters, its channels' errors, and
 * its end. Every wait in the phase ends at the first of its own event, a
 * channel error (thrown), a stall or the time limit.
 */
class Phase {
  private readonly began = performance.now();
  private readonly cpu = { broker: 0, machine: 0, client: process.cpuUsage() };
  private readonly failed: Promise<never>;
  private readonly over: Promise<void>;
  private readonly ticker: NodeJS.Timeout;
  private end = () => {};
  private ended: Figure['ended'];
  private lastMoved = -1;
  private lastMovedAt = performance.now();

  /** `moved` counts what has happened so far: sent, confirmed, received. */
  constructor(private readonly t: Target, private readonly queue: string,
    channels: Channel[], private readonly moved: () => number,
    limitMs = PHASE_LIMIT_MS) {
    this.cpu.broker = cpuSeconds(t.pid);
    this.cpu.machine = machineCpuSeconds();
    this.failed = new Promise<never>((_, reject) => {
      for (const channel of channels) channel.once('error', reject);
    });
    this.failed.catch(() => {}); // seen by wait(); later ones are moot
    this.over = new Promise((resolve) => { this.end = resolve; });
    this.ticker = setInterval(() => this.check(limitMs), 250);
  }

  get open(): boolean {
    return this.ended === undefined;
  }

  async wait(event: Promise<unknown>): Promise<void> {
    await Promise.race([event, this.failed, this.over]);
  }

  /** After a write that said the channel is full: waits for its drain. */
  async written(ok: boolean, channel: Channel): Promise<void> {
    if (!ok) await this.wait(new Promise((resolve) => channel.once('drain', resolve)));
  }

  /** Stops the clock: the figure for `messages` of `wanted`. */
  async finish(messages: number, wanted: number): Promise<Figure> {
    clearInterval(this.ticker);
    this.end();
    const used = process.cpuUsage(this.cpu.client);
    const brokerCpu = cpuSeconds(this.t.pid) - this.cpu.broker;
    const clientCpu = (used.user + used.system) / 1e6;
    const machineCpu = machineCpuSeconds() - this.cpu.machine;
    const seconds = (performance.now() - this.began) / 1000;
    const ended = messages < wanted ? this.ended ?? 'out of time' : undefined;
    if (ended !== undefined) {
      const depth = await quick(this.t.depth(this.queue)).catch((err: Error) => err.message);
      this.t.log(`${this.queue}: ${ended} at ${messages} of ${wanted} after ` +
        `${seconds.toFixed(1)} s; the broker holds ${depth}`);
    }
    const otherCpu = machineCpu - brokerCpu - clientCpu;
    return { messages, wanted, seconds, brokerCpu, clientCpu, otherCpu, ended };
  }

  private check(limitMs: number): void {
    const now = performance.now();
    const moved = this.moved();
    if (moved !== this.lastMoved) {
      this.lastMoved = moved;
      this.lastMovedAt = now;
    } else if (now - this.lastMovedAt > STALL_MS) {
      this.ended = 'stalled';
    }
    if (now - this.began > limitMs) this.ended ??= 'out of time';
    if (this.ended !== undefined) {
      clearInterval(this.ticker);
      this.end();
    }
  }
}

/** A promise and the function that settles it, for counters to call. */
function signal(): { done: Promise<void>; fire: () => void } {
  let fire = () => {};
  const done = new Promise<void>((resolve) => { fire = resolve; });
  return { done, fire };
}

/** A broker call that should answer at once, bounded. */
export async function quick<T>(call: Promise<T>, what = 'the broker'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ANSWER_LIMIT_MS} ms`)),
      ANSWER_LIMIT_MS);
  });
  try {
    return await Promise.race([call, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Clearing up after a run: each step bounded, failures said, none thrown. */
async function tidy(t: Target, ...steps: Array<() => Promise<unknown>>): Promise<void> {
  for (const step of steps) {
    await quick(step()).catch((err: Error) => t.log(`clearing up: ${err.message}`));
  }
}

// --- workloads -----------------------------------------------------------

/** Publishes without confirms while an auto-ack consumer takes them. */
export async function transient(t: Target, queue: string, body: Buffer, count: number,
  publisher: ChannelModel, consumer: ChannelModel): Promise<Figure> {
  const pub = await quick(publisher.createChannel());
  const sub = await quick(consumer.createChannel());
  await quick(pub.assertQueue(queue, t.queue));
  const all = signal();
  let sent = 0;
  let received = 0;
  await quick(sub.consume(queue, (message) => {
    if (message !== null && ++received === count) all.fire();
  }, { noAck: true }));

  const phase = new Phase(t, queue, [pub, sub], () => sent + received);
  for (; sent < count && phase.open; sent++) {
    await phase.written(pub.sendToQueue(queue, body, { persistent: false }), pub);
    // Let deliveries in now and then, as a real producer's loop would.
    if (sent % CONFIRM_WINDOW === 0) await new Promise(setImmediate);
  }
  await phase.wait(all.done);
  const figure = await phase.finish(received, count);

  await tidy(t, () => sub.close(), () => pub.deleteQueue(queue));
  return figure;
}

/**
 * Publishes persistent messages, at most CONFIRM_WINDOW unconfirmed on
 * each connection in `publishers`, which share `count` between them and
 * publish to the same queue at once.
 */
export async function durablePublish(t: Target, queue: string, body: Buffer,
  count: number, publishers: ChannelModel[]): Promise<Figure> {
  const channels = await Promise.all(
    publishers.map((publisher) => quick(publisher.createConfirmChannel())));
  await quick(channels[0].assertQueue(queue, t.queue));
  const all = signal();
  let confirmed = 0;
  let refused = 0;
  let sent = 0;

  const phase = new Phase(t, queue, channels, () => sent + confirmed + refused);
  const publishOn = async (pub: ConfirmChannel, share: number) => {
    let room = signal();
    let mine = 0;
    let answered = 0;
    // One callback for all of this channel's publishes: no closure per message.
    const onConfirm = (err: unknown) => {
      if (err) refused++;
      else confirmed++;
      answered++;
      if (confirmed + refused === count) all.fire();
      if (mine - answered === CONFIRM_WINDOW - 1) room.fire();
    };
    while (mine < share && phase.open) {
      if (mine - answered >= CONFIRM_WINDOW) {
        room = signal();
        await phase.wait(room.done);
        continue;
      }
      mine++;
      sent++;
      const ok = pub.sendToQueue(queue, body, { persistent: true }, onConfirm);
      await phase.written(ok, pub);
    }
  };
  const shares = channels.map((_, i) =>
    Math.floor(count / channels.length) + (i < count % channels.length ? 1 : 0));
  await Promise.all(channels.map((pub, i) => publishOn(pub, shares[i])));
  await phase.wait(all.done);
  const figure = await phase.finish(confirmed, count);

  if (refused > 0) t.log(`${queue}: ${refused} publishes nacked`);
  await tidy(t, ...channels.map((pub) => () => pub.close()));
  return figure;
}

/** Drains what durablePublish left: prefetch 500, one ack a message. */
export async function durableConsume(t: Target, queue: string, count: number,
  consumer: ChannelModel, publisher: ChannelModel): Promise<Figure> {
  const sub = await quick(consumer.createChannel());
  await quick(sub.prefetch(PREFETCH));
  const all = signal();
  let received = 0;

  const phase = new Phase(t, queue, [sub], () => received);
  await quick(sub.consume(queue, (message) => {
    if (message === null) return;
    sub.ack(message);
    if (++received === count) all.fire();
  }, { noAck: false }));
  await phase.wait(all.done);
  const figure = await phase.finish(received, count);

  await tidy(t, () => sub.close(), async () => {
    const admin = await publisher.createChannel();
    await admin.deleteQueue(queue);
  });
  return figure;
}

/**
 * LATENCY_RATE msg/s for `seconds`, durable with confirms (window
 * CONFIRM_WINDOW), a consumer acking as they come. Latency counts from
 * when a message was due, not when it went out, so a publisher held up
 * by a full window shows in the figures (no coordinated omission).
 */
export async function latency(t: Target, queue: string, seconds: number,
  publisher: ChannelModel, consumer: ChannelModel): Promise<Figure> {
  const pub = await quick(publisher.createConfirmChannel());
  const sub = await quick(consumer.createChannel());
  await quick(pub.assertQueue(queue, t.queue));
  await quick(sub.prefetch(PREFETCH));
  const total = Math.round(LATENCY_RATE * seconds);
  const latencies = new Float64Array(total);
  const all = signal();
  let received = 0;
  // Per message, by its place in the run: when it went out, was
  // delivered here and was confirmed here.
  const sentAt = new Float64Array(total);
  const deliveredAt = new Float64Array(total);
  const confirmedAt = new Float64Array(total);
  let began = 0;
  await quick(sub.consume(queue, (message) => {
    if (message === null) return;
    const now = performance.now();
    const due = stampOf(message.content);
    if (received < total) latencies[received] = now - due;
    const index = Math.round((due - began) * LATENCY_RATE / 1000);
    if (index >= 0 && index < total) deliveredAt[index] = now;
    sub.ack(message);
    if (++received === total) all.fire();
  }, { noAck: false }));

  let sent = 0;
  let confirmed = 0;
  // amqplib calls back in publish order, a `multiple` ack included.
  const onConfirm = () => {
    if (confirmed < total) confirmedAt[confirmed] = performance.now();
    confirmed++;
  };
  const limit = seconds * 1000 + PHASE_LIMIT_MS;
  const phase = new Phase(t, queue, [pub, sub], () => sent + received, limit);
  began = performance.now();
  while (sent < total && phase.open) {
    const elapsed = performance.now() - began;
    const due = Math.min(total, Math.floor(elapsed * LATENCY_RATE / 1000) + 1);
    while (sent < due && sent - confirmed < CONFIRM_WINDOW) {
      const body = stamped(began + sent * 1000 / LATENCY_RATE);
      pub.sendToQueue(queue, body, { persistent: true }, onConfirm);
      sentAt[sent] = performance.now();
      sent++;
    }
    await sleep(1);
  }
  await phase.wait(all.done);
  const figure = await phase.finish(received, total);
  figure.samples = {
    total: latencies.subarray(0, Math.min(received, total)),
    ...latencyParts(began, sentAt, deliveredAt, confirmedAt),
  };

  await tidy(t, () => sub.close(), () => pub.deleteQueue(queue));
  return figure;
}

/** Each part's samples, over the messages that were delivered and confirmed. */
function latencyParts(began: number, sentAt: Float64Array, deliveredAt: Float64Array,
  confirmedAt: Float64Array): Omit<LatencySamples, 'total'> {
  const lag: number[] = [];
  const deliver: number[] = [];
  const confirm: number[] = [];
  for (let i = 0; i < sentAt.length; i++) {
    if (sentAt[i] === 0 || deliveredAt[i] === 0 || confirmedAt[i] === 0) continue;
    lag.push(sentAt[i] - (began + i * 1000 / LATENCY_RATE));
    deliver.push(deliveredAt[i] - sentAt[i]);
    confirm.push(confirmedAt[i] - sentAt[i]);
  }
  return {
    lag: Float64Array.from(lag),
    deliver: Float64Array.from(deliver),
    confirm: Float64Array.from(confirm),
  };
}
