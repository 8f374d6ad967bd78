// Heartbeats of an AMQP connection (connection.ts): one sent every half
// interval, and a peer that stays silent for two checks in a row let go.
// While we do not read the peer, it counts as heard as long as it takes
// what we send (SEND_STALL_MS).

import type { Socket } from 'node:net';
import type { Logger } from 'pino';

import { heartbeatFrame } from './frame-encoder.js';

/**
 * How long a peer we stopped reading (its socket full) may take nothing
 * of what we send before its unread heartbeats stop counting: RabbitMQ's
 * `send_timeout` (15 s). The kernel's buffers between us hold seconds of
 * a slow link's traffic: with 32 MiB receive buffers, 4 MiB took 6-7 s
 * to go through a 640 KiB/s link, and a check every interval dropped
 * that consumer although it was reading and beating.
 */
const SEND_STALL_MS = 15_000;

/** What heartbeats need of their connection. */
export interface HeartbeatsDeps {
  /** When the peer last sent anything (Date.now()), kept as it is read. */
  lastReceived(): number;
  /** The socket is paused because the peer does not read what we send. */
  pausedForDrain(): boolean;
  /** Queues a frame behind what the connection is sending. */
  write(frame: Buffer): void;
}

export class Heartbeats {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly logger: Logger,
    private readonly deps: HeartbeatsDeps,
  ) {}

  /** Starts at the interval tune-ok settled on; none when it is 0. */
  start(seconds: number): void {
    if (seconds === 0) return;
    // Sent every half interval. What the peer sent is checked once an
    // interval, and two checks in a row that find nothing close the
    // connection: RabbitMQ's rule, 2 to 3 intervals of silence (0-9-1,
    // 4.2.7, asks for two). Closing after 2 to 2.5 dropped Celery
    // workers that RabbitMQ keeps: a worker is silent while a task runs
    // on its solo pool, and while it collects mingle's replies (new user,
    // heartbeat 2 s).
    let ticks = 0;
    let silentChecks = 0;
    let checkedAt = Date.now();
    let sentAtCheck = this.bytesSent();
    let lastSentAt = checkedAt;
    this.timer = setInterval(() => {
      if (++ticks % 2 === 0) {
        // While we are not reading, the peer's heartbeats wait unread in
        // TCP: that is not silence when the disk is behind, nor when the
        // peer is slow to read what we send, as long as it has taken some
        // within SEND_STALL_MS. A peer that reads nothing either (hung,
        // stopped) is silent: it had kept its connection and deliveries
        // for good (breaker).
        const now = Date.now();
        const sent = this.bytesSent();
        if (sent > sentAtCheck) lastSentAt = now;
        const paused = this.socket.isPaused();
        const heard = this.deps.lastReceived() >= checkedAt ||
          (paused && (!this.deps.pausedForDrain() || now - lastSentAt < SEND_STALL_MS));
        silentChecks = heard ? 0 : silentChecks + 1;
        checkedAt = now;
        sentAtCheck = sent;
        if (silentChecks >= 2) {
          this.logger.info({}, 'missed heartbeats; closing');
          this.socket.destroy();
          return;
        }
      }
      this.deps.write(heartbeatFrame());
    }, (seconds * 1000) / 2);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  /** Bytes the kernel took from us so far: more only as the peer reads. */
  private bytesSent(): number {
    return this.socket.bytesWritten - this.socket.writableLength;
  }
}
