// What an AMQP connection (connection.ts) sends, and when it stops
// reading its socket: while the peer does not take what we send, and
// while more publishes wait for the disk than PUBLISH_HIGH_WATER.
// Consumers are handed nothing more while the socket's buffer is full.
//
// Outgoing frames are gathered until the task that wrote them (a socket
// read, a batch landing on disk) and its promise callbacks are done, then
// written at once: a burst of deliveries or confirms costs one write, not
// one per frame, and waits for nothing else the event loop has to do.

import type { Socket } from 'node:net';

import type { AmqpChannel } from './channel.js';
import type { AmqpConnection } from './connection.js';
import type { PropertiesInput } from './content.js';
import { writeContent, writeMethodTo } from './frame-encoder.js';
import type { Method } from './methods.js';
import { OutboundBytes } from './outbound.js';

const PUBLISH_HIGH_WATER = 20_000;
const PUBLISH_LOW_WATER = 5_000;
/** Bytes queued for the socket past which consumers get no more. */
const OUTBOUND_LIMIT = 4 * 1024 * 1024;

/** What the output needs of its connection beyond its public face. */
export interface ConnectionOutputDeps {
  /** Visits the open channels: those refused deliveries wait for room. */
  forEachChannel(visit: (channel: AmqpChannel) => void): void;
}

export class ConnectionOutput {
  /** Frames not yet handed to the socket. */
  private readonly outbound = new OutboundBytes();
  /** Channels with confirms answered, to ack before the next write. */
  private readonly confirmsDue = new Set<AmqpChannel>();
  /**
   * The two reasons reading stops, kept apart: it resumes once neither
   * holds (readAgainIfFree). One flag stood for both: a drain that came
   * while publishes held reading left it paused once they settled, with
   * no event to come (no confirms, heartbeats off) that would resume it;
   * and publishes settling resumed a peer that had stopped reading
   * meanwhile (breaker).
   */
  private pausedForDrain = false;
  private pausedForPublishes = false;
  /** A consumer was refused deliveries for want of room (roomForDeliveries). */
  private deliveriesWaitForRoom = false;
  private flushScheduled = false;
  /** Publishes handed to the broker and not yet settled. */
  private unsettledPublishes = 0;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly socket: Socket,
    private readonly deps: ConnectionOutputDeps,
  ) {}

  // --- reading paused -------------------------------------------------

  /**
   * Publishes on their way to disk. Past a high-water mark the socket stops
   * being read, so a publisher faster than the disk (without confirms to
   * pace it) waits in TCP instead of in the broker's memory.
   */
  publishesStarted(count: number): void {
    this.unsettledPublishes += count;
    if (this.unsettledPublishes >= PUBLISH_HIGH_WATER && !this.pausedForPublishes) {
      this.pausedForPublishes = true;
      this.socket.pause();
    }
  }

  publishesSettled(count: number): void {
    this.unsettledPublishes -= count;
    if (this.pausedForPublishes && this.unsettledPublishes <= PUBLISH_LOW_WATER) {
      this.pausedForPublishes = false;
      this.readAgainIfFree();
    }
  }

  /** Resumes reading once nothing holds it. */
  private readAgainIfFree(): void {
    if (!this.pausedForDrain && !this.pausedForPublishes) this.socket.resume();
  }

  /** Reading stopped because the peer does not take what we send. */
  isPausedForDrain(): boolean {
    return this.pausedForDrain;
  }

  /** False while the socket's buffer is full: consumers wait for drain. */
  get writable(): boolean {
    return this.socket.writableLength + this.outbound.length < OUTBOUND_LIMIT;
  }

  /**
   * Whether a consumer may be handed more now: false while the socket's
   * buffer is full, and then its channels are woken once it drains.
   */
  roomForDeliveries(): boolean {
    // Once close-ok or the close is sent, nothing more is written: a
    // delivery or a reply would go nowhere.
    if (this.connection.phase === 'closed' || this.connection.phase === 'closing') return false;
    if (this.writable) return true;
    this.deliveriesWaitForRoom = true;
    return false;
  }

  // --- writing --------------------------------------------------------

  send(channel: number, method: Method): void {
    if (this.connection.phase === 'closed') return;
    writeMethodTo(this.outbound, channel, method);
    this.written();
  }

  /** A message with its properties and body (deliver, get-ok, return). */
  sendContent(
    channel: number,
    method: Method,
    properties: PropertiesInput,
    body: Buffer,
  ): void {
    if (this.connection.phase === 'closed') return;
    writeContent(this.outbound, channel, method, properties, body, this.connection.frameMax);
    this.written();
  }

  write(frame: Buffer): void {
    if (this.connection.phase === 'closed') return;
    this.outbound.add(frame);
    this.written();
  }

  /** `channel` answered confirms: one ack for all of them goes out with the next write. */
  confirmsAnswered(channel: AmqpChannel): void {
    if (this.connection.phase === 'closed') return;
    this.confirmsDue.add(channel);
    this.scheduleFlush();
  }

  /** Acks for the confirms answered since the last write, before any frame after them. */
  sendDueConfirms(): void {
    if (this.confirmsDue.size === 0) return;
    for (const channel of this.confirmsDue) channel.sendAnsweredConfirms();
    this.confirmsDue.clear();
  }

  /** After bytes went into `outbound`: pause a peer that does not read, flush soon. */
  private written(): void {
    // A peer that does not read what we send (returns, confirms) is not
    // read from either until its socket drains: nothing grows unbounded.
    if (!this.writable && !this.pausedForDrain) {
      this.pausedForDrain = true;
      this.socket.pause();
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A microtask, not setImmediate: deliveries written as a batch lands
    // used to wait for the rest of the poll phase (other sockets' reads,
    // other batches' appends and their thread-pool wakeups) before going
    // out: p99 1 ms, p99.9 4-5 ms at load 7 in bench:amqp --only latency.
    queueMicrotask(this.flushNow);
  }

  private readonly flushNow = () => this.flush();

  /** One write per task: the arena's slices and attached bodies in one writev. */
  flush(): void {
    // While still scheduled, so that the acks written here schedule nothing.
    this.sendDueConfirms();
    this.flushScheduled = false;
    if (this.outbound.length === 0 || this.socket.destroyed) return;
    const pieces = this.outbound.take();
    let accepted = true;
    if (pieces.length === 1) accepted = this.socket.write(pieces[0]);
    else {
      this.socket.cork();
      for (const piece of pieces) accepted = this.socket.write(piece);
      this.socket.uncork();
    }
    // When the socket took it all there is no 'drain' to come: resume and
    // wake here, or a reader paused (or consumers starved) by the bytes
    // that were pending would wait forever.
    if (accepted) this.onDrained();
  }

  onDrained(): void {
    if (this.pausedForDrain) {
      this.pausedForDrain = false;
      this.readAgainIfFree();
    }
    // Only consumers refused for want of room wait for this. Waking every
    // channel after every write cost a timer, a Map and a pass over the
    // queue's subscribers per write, several times a millisecond at 5,000
    // deliveries a second.
    if (!this.deliveriesWaitForRoom || !this.writable) return;
    this.deliveriesWaitForRoom = false;
    this.deps.forEachChannel((channel) => channel.wake());
  }
}
