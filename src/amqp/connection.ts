// One AMQP 0-9-1 connection: the handshake, channel multiplexing,
// heartbeats and the close handshakes. This file reads frames, hands
// them on, opens and closes channels and runs the closes; the parts live
// beside it: connection-handshake.ts (up to open-ok), connection-output.ts
// (what it sends, and when it stops reading) and heartbeats.ts. What
// channels do with queues and messages is in channel.ts.
//
//   client                          Usher
//   AMQP 0 0 9 1          ->
//                         <-   connection.start (PLAIN, AMQPLAIN)
//   start-ok (user)       ->   (checked by src/auth, on the thread pool)
//                         <-   connection.tune
//   tune-ok, open         ->
//                         <-   open-ok
//   channel.open ...      ->   (channels 1..channel-max)

import type { Socket } from 'node:net';
import type { Logger } from 'pino';

import type { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/permissions.js';
import type { Broker } from '../broker/broker.js';
import { hasCapability, supportsBlocked } from './blocking.js';
import { AmqpChannel } from './channel.js';
import { ConnectionHandshake } from './connection-handshake.js';
import { ConnectionOutput } from './connection-output.js';
import { REPLY } from './constants.js';
import type { ContentHeader, PropertiesInput } from './content.js';
import type { DirectReplies } from './direct-reply.js';
import { AmqpError } from './errors.js';
import { AmqpFrameDecoder, type Inbound } from './frame-decoder.js';
import { Heartbeats } from './heartbeats.js';
import { type Method, type MethodName, methodInfo } from './methods.js';
import type { Topology } from './topology.js';

export interface ConnectionContext {
  broker: Broker;
  topology: Topology;
  logger: Logger;
  frameMax: number;
  channelMax: number;
  heartbeatSeconds: number;
  maxMessageBytes: number;
  authenticator: Authenticator;
  maxConsumersPerQueue: number;
  /**
   * Set when the listener refuses this connection (a limit): see onStartOk
   * in connection-handshake.ts.
   */
  refusal: string | null;
  /** Body bytes of publishes not handed to the broker yet, on every connection. */
  heldBodies: { bytes: number };
  /** What a connection, and all, may hold of them; default heldBodyLimits(). */
  heldBodyLimits: { connection: number; all: number };
  /** How long a channel may hold a delivery unacked (channel-deliveries.ts). */
  consumerTimeoutMs: number;
  /** Reply names of direct reply-to consumers, on every connection (direct-reply.ts). */
  directReplies: DirectReplies;
}

/** The class and method a close names when no method was at fault. */
const NO_METHOD = { classId: 0, methodId: 0 };
/** How long a client that sent connection.close has to hang up after close-ok. */
const CLOSE_OK_LINGER_MS = 5_000;
/**
 * Body bytes of publishes not handed to the broker yet, unfinished (a
 * body is held until its last frame) or held by a transaction until
 * tx.commit, that a connection, and all connections, may hold: at least 8,
 * and 64, of the largest message. A client that started a publish on each
 * of 150 channels and finished none took 2.5 GB, past --memory-budget, for
 * nothing a queue would count, and one holding 60 MiB in each of 30
 * transactions 2 GB (breaker sessions). Clients interleaving the frames of
 * several 16 MiB messages, or 40 connections each sending one, must pass.
 */
const HELD_PER_CONNECTION = 128 * 1024 * 1024;
const HELD_IN_ALL = 1024 * 1024 * 1024;

/** The bounds of held bodies for messages of up to `maxMessageBytes`. */
export function heldBodyLimits(maxMessageBytes: number): { connection: number; all: number } {
  return {
    connection: Math.max(HELD_PER_CONNECTION, 8 * maxMessageBytes),
    all: Math.max(HELD_IN_ALL, 64 * maxMessageBytes),
  };
}

export type Phase =
  | 'header'
  | 'start-ok'
  | 'authenticating'
  | 'tune-ok'
  | 'open'
  | 'open-done'
  | 'closing'
  | 'closed';

export class AmqpConnection {
  readonly id: string;
  readonly logger: Logger;
  frameMax = 0;
  /** Who logged in; set before any channel can open. */
  principal: Principal | null = null;

  private readonly decoder: AmqpFrameDecoder;
  private readonly channels = new Map<number, AmqpChannel>();
  /** Channels closed by us, waiting for the client's close-ok. */
  private readonly closingChannels = new Set<number>();
  /** Moved through the handshake by connection-handshake.ts, then here. */
  phase: Phase = 'header';
  /** What it sends, and when it stops reading (connection-output.ts). */
  private readonly output: ConnectionOutput;
  /** Settles once a closed connection's exclusive queues are gone. */
  cleanedUp: Promise<void> = Promise.resolve();
  /** Sent, and the peer's checked, once tune-ok set their interval. */
  private readonly heartbeats: Heartbeats;
  /** From the protocol header to open-ok (connection-handshake.ts). */
  private readonly handshake: ConnectionHandshake;
  private lastReceived = Date.now();
  /**
   * The client takes basic.cancel from the server (its capability
   * consumer_cancel_notify); RabbitMQ sends none to one that does not say so.
   */
  cancelNotify = false;
  /** The memory of the socket chunk being read, and bytes of it publishes keep. */
  private readingChunk: ArrayBufferLike | null = null;
  private keptOfChunk = 0;
  /** Body bytes this connection's channels hold for publishes (heldBodies). */
  private heldBodyBytes = 0;

  constructor(
    private readonly socket: Socket,
    readonly context: ConnectionContext,
  ) {
    this.id = `${socket.remoteAddress}:${socket.remotePort}`;
    this.logger = context.logger.child({ connection: this.id });
    this.decoder = new AmqpFrameDecoder({ maxBodySize: context.maxMessageBytes });
    this.output = new ConnectionOutput(this, socket, {
      forEachChannel: (visit) => this.forEachChannel(visit),
    });
    this.heartbeats = new Heartbeats(socket, this.logger, {
      lastReceived: () => this.lastReceived,
      pausedForDrain: () => this.output.isPausedForDrain(),
      write: (frame) => this.output.write(frame),
    });

    socket.setNoDelay(true);
    this.handshake = new ConnectionHandshake(this, socket, {
      decoder: this.decoder,
      heartbeats: this.heartbeats,
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.logger.debug({ err }, 'socket error'));
    socket.on('close', () => this.onClosed());
    socket.on('drain', () => this.output.onDrained());
  }

  get broker(): Broker {
    return this.context.broker;
  }

  /** Publishes on their way to disk: past a mark, reading stops. */
  publishesStarted(count: number): void {
    this.output.publishesStarted(count);
  }

  publishesSettled(count: number): void {
    this.output.publishesSettled(count);
  }

  /**
   * A channel holds `delta` more (or, negative, fewer) body bytes of
   * publishes not handed to the broker yet (HELD_PER_CONNECTION). Past the
   * limits the connection is closed (506): it cannot be paused instead, as
   * a client may be sending the frames of several publishes in turn, and
   * none would ever finish.
   */
  heldBodies(delta: number): void {
    this.heldBodyBytes += delta;
    const all = (this.context.heldBodies.bytes += delta);
    if (delta <= 0 || this.phase === 'closed' || this.phase === 'closing') return;

    const { connection: mine, all: everyone } = this.context.heldBodyLimits;
    if (this.heldBodyBytes > mine || all > everyone) {
      const [whose, limit] = this.heldBodyBytes > mine
        ? ['this connection holds', mine]
        : ['all connections hold', everyone];
      this.closeWith(new AmqpError(REPLY.RESOURCE_ERROR,
        `${whose} more than ${limit} bytes of message bodies not published yet ` +
        '(unfinished, queued behind a method, or in a transaction not committed)'), false);
    }
  }

  /** Whether a consumer may be handed more now. */
  roomForDeliveries(): boolean {
    return this.output.roomForDeliveries();
  }

  // --- reading --------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.lastReceived = Date.now();
    let frames: Inbound[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.logger.error({ err }, 'frame decoder failed');
      this.socket.destroy();
      return;
    }
    this.readingChunk = chunk.buffer;
    this.keptOfChunk = 0;
    // Indexed, as every loop a message passes: no iterator results.
    for (let i = 0; i < frames.length; i++) {
      if (this.phase === 'closed') break;
      this.onFrame(frames[i]);
    }
    // Publishes read from this chunk go to the broker together.
    if (this.phase !== 'closed') this.forEachChannel((channel) => channel.flushPublishes());
    this.readingChunk = null;
  }

  /** A publish keeps `body` (stored in some queue); counted if it views the chunk being read. */
  keepsBody(body: Buffer): void {
    if (body.buffer === this.readingChunk) this.keptOfChunk += body.length;
  }

  /**
   * Whether `body`, kept by a publish, should be copied rather than kept
   * as a view of the socket chunk being read: the chunk's publishes keep
   * less than half of it. Each body alone holds at most 4x its size
   * (pinsLittle), but a chunk of one kept 16 KiB body and 48 KiB of
   * unroutable or small copied ones held 64 KiB for 16 KiB counted in
   * queue byte limits and the hot-body budget (measured: 3.2x).
   */
  pinsMostlyUnkept(body: Buffer): boolean {
    return body.buffer === this.readingChunk && this.keptOfChunk * 2 < body.buffer.byteLength;
  }

  private onFrame(frame: Inbound): void {
    switch (frame.type) {
      case 'protocol-header':
        this.handshake.sendStart();
        return;
      case 'protocol-mismatch':
        this.socket.end(frame.reply);
        this.phase = 'closed';
        return;
      case 'heartbeat':
        return;
      case 'connection-error':
        this.closeWith(frame.error, frame.fatal);
        return;
      case 'channel-error':
        this.closeChannel(frame.channel, frame.error);
        return;
      case 'method':
        this.onMethod(frame.channel, frame.method);
        return;
      case 'header':
        this.channelFor(frame.channel)?.onHeader(frame.header as ContentHeader);
        return;
      case 'body':
        this.channelFor(frame.channel)?.onBody(frame.body, frame.last);
        return;
    }
  }

  private onMethod(channel: number, method: Method): void {
    try {
      if (channel === 0) this.onConnectionMethod(method);
      else if (method.name === 'channel.open') this.openChannel(channel);
      else if (method.name === 'channel.close-ok') this.closingChannels.delete(channel);
      else this.channelFor(channel, method.name)?.onMethod(method);
    } catch (err) {
      if (!(err instanceof AmqpError)) {
        this.logger.error({ err, method: method.name }, 'method failed');
        this.closeWith(new AmqpError(REPLY.INTERNAL_ERROR, 'internal error'), false);
      } else if (err.scope === 'channel' && channel !== 0) {
        this.closeChannel(channel, err);
      } else {
        this.closeWith(err, false);
      }
    }
  }

  private onConnectionMethod(method: Method): void {
    switch (method.name) {
      case 'connection.start-ok':
        this.handshake.blockable = supportsBlocked(method.clientProperties);
        this.cancelNotify = hasCapability(method.clientProperties, 'consumer_cancel_notify');
        return this.handshake.onStartOk(method.mechanism, method.response);
      case 'connection.tune-ok':
        return this.handshake.onTuneOk(method.channelMax, method.frameMax, method.heartbeat);
      case 'connection.open':
        return this.handshake.onOpen(method.virtualHost);
      case 'connection.close':
        // Its channels close first, as RabbitMQ closes them before
        // close-ok, each behind its methods still pending: publishes read
        // are the broker's, consumers stop, unacked messages go back and
        // reply names are forgotten. Left open until the client hung up,
        // with nothing written any more, a no-ack consumer's deliveries
        // went nowhere and were acked: every message published in that
        // window was lost (breaker). Nothing is delivered meanwhile
        // either (roomForDeliveries).
        this.output.sendDueConfirms();
        this.forEachChannel((channel) => channel.closeWithConnection());
        this.send(0, { name: 'connection.close-ok' });
        this.output.flush();
        this.phase = 'closed';
        this.heartbeats.stop();
        // The client hangs up once it has read close-ok, as with RabbitMQ,
        // which leaves the socket to it. Hanging up first, the client's
        // reader could meet the end of the stream before its own close was
        // done: amqp091-go reported a clean Close() as error 501 "EOF" to
        // NotifyClose on 210 of 300 connections (new user's run of its
        // integration suite). A client that never hangs up is cut off.
        setTimeout(() => this.socket.destroy(), CLOSE_OK_LINGER_MS).unref();
        return;
      case 'connection.close-ok':
        this.socket.end();
        this.phase = 'closed';
        return;
      default:
        throw new AmqpError(
          REPLY.COMMAND_INVALID,
          `${method.name} is not allowed on channel 0`,
        );
    }
  }

  // --- channels -------------------------------------------------------

  private openChannel(number: number): void {
    if (this.phase !== 'open-done') {
      throw new AmqpError(REPLY.COMMAND_INVALID, 'channel.open before connection.open');
    }
    if (number > this.context.channelMax) {
      throw new AmqpError(
        REPLY.NOT_ALLOWED,
        `channel ${number} is above channel_max ${this.context.channelMax}`,
      );
    }
    if (this.channels.has(number)) {
      throw new AmqpError(REPLY.CHANNEL_ERROR, `channel ${number} is already open`);
    }
    this.channels.set(number, new AmqpChannel(this, number));
    this.send(number, { name: 'channel.open-ok' });
  }

  /** `at`: the method that came for it, named in the close as RabbitMQ does. */
  private channelFor(number: number, at?: MethodName): AmqpChannel | undefined {
    const channel = this.channels.get(number);
    if (channel !== undefined) return channel;
    // Frames still in flight for a channel we closed are dropped.
    if (this.closingChannels.has(number)) return undefined;
    const { classId, methodId } = at === undefined ? NO_METHOD : methodInfo(at);
    this.closeWith(
      new AmqpError(REPLY.CHANNEL_ERROR, `channel ${number} is not open`, { classId, methodId }),
      false,
    );
    return undefined;
  }

  /** The client closed the channel (channel.close) and waits for close-ok. */
  channelClosedByClient(number: number): void {
    this.output.sendDueConfirms();
    this.channels.get(number)?.release();
    this.channels.delete(number);
    this.send(number, { name: 'channel.close-ok' });
  }

  /** Closes one channel with an error; the connection carries on. */
  closeChannel(number: number, error: AmqpError): void {
    const channel = this.channels.get(number);
    if (channel === undefined) return;
    // At info, as a connection's close is: an operator looking for why an
    // application's publishes stopped finds the 404 or 406 and its reason
    // here (RabbitMQ logs channel exceptions too); it was at debug, and a
    // new user found no line for any of them.
    this.logger.info(
      { channel: number, replyCode: error.replyCode, reason: error.message },
      'closing channel',
    );
    this.output.sendDueConfirms();
    channel.release();
    this.channels.delete(number);
    this.closingChannels.add(number);
    this.send(number, {
      name: 'channel.close',
      replyCode: error.replyCode,
      replyText: error.replyText,
      classId: error.classId,
      methodId: error.methodId,
    });
  }

  private forEachChannel(visit: (channel: AmqpChannel) => void): void {
    for (const channel of this.channels.values()) visit(channel);
  }

  // --- writing (connection-output.ts) ---------------------------------

  send(channel: number, method: Method): void {
    this.output.send(channel, method);
  }

  /** A message with its properties and body (deliver, get-ok, return). */
  sendContent(
    channel: number,
    method: Method,
    properties: PropertiesInput,
    body: Buffer,
  ): void {
    this.output.sendContent(channel, method, properties, body);
  }

  write(frame: Buffer): void {
    this.output.write(frame);
  }

  /** `channel` answered confirms: one ack for all of them goes out with the next write. */
  confirmsAnswered(channel: AmqpChannel): void {
    this.output.confirmsAnswered(channel);
  }

  // --- closing --------------------------------------------------------

  /** Closes the connection with an error, RabbitMQ style. */
  closeWith(error: AmqpError, fatal: boolean): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    this.logger.info(
      { replyCode: error.replyCode, reason: error.message },
      'closing connection',
    );
    this.output.sendDueConfirms();
    this.send(0, {
      name: 'connection.close',
      replyCode: error.replyCode,
      replyText: error.replyText,
      classId: error.classId,
      methodId: error.methodId,
    });
    this.output.flush();
    this.phase = 'closing';
    this.releaseChannels();
    // Wait briefly for close-ok, then hang up either way.
    const linger = fatal ? 0 : 1000;
    setTimeout(() => this.socket.destroy(), linger).unref();
  }

  /**
   * Server shutdown: tell the client, as RabbitMQ does (320). A client
   * still in its handshake has no use for a close and would never answer
   * it: each held the listener's close for the whole linger (1 s).
   */
  shutdown(): void {
    if (this.phase !== 'open-done') {
      this.socket.destroy();
      return;
    }
    this.closeWith(new AmqpError(REPLY.CONNECTION_FORCED, 'broker shutting down'), false);
  }

  private onClosed(): void {
    this.phase = 'closed';
    this.handshake.stop();
    this.heartbeats.stop();
    this.releaseChannels();
    // Exclusive queues go with their connection (RabbitMQ).
    this.cleanedUp = this.context.topology.deleteExclusiveOf(this, this.logger);
  }

  private releaseChannels(): void {
    for (const channel of this.channels.values()) channel.release();
    this.channels.clear();
  }
}
