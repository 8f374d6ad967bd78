// A hand-driven AMQP 0-9-1 client for tests: sends exactly the frames it
// is given (made with Usher's own encoder, which has no table size limit
// as amqplib has), and keeps every frame the server answers with.

import assert from 'node:assert/strict';
import { connect as tcpConnect, type Socket } from 'node:net';

import { PROTOCOL_HEADER } from '../../src/amqp/constants.js';
import type { BasicProperties } from '../../src/amqp/content.js';
import type { FieldTable } from '../../src/amqp/field-table.js';
import { AmqpFrameDecoder, type Inbound } from '../../src/amqp/frame-decoder.js';
import { encodeContent, encodeMethodFrame } from '../../src/amqp/frame-encoder.js';
import type { Method } from '../../src/amqp/methods.js';

export const FRAME_MAX = 131_072;

/** A hand-driven AMQP client: sends what it is given, keeps what comes. */
export class Raw {
  readonly socket: Socket;
  private readonly decoder = new AmqpFrameDecoder({ from: 'server', frameMax: FRAME_MAX });
  private readonly frames: Inbound[] = [];
  /** The name of every method the server sent, in the order it came. */
  readonly methodsSeen: string[] = [];
  private wake: () => void = () => {};

  constructor(port: number) {
    this.socket = tcpConnect(port, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) {
        this.frames.push(frame);
        if (frame.type === 'method') this.methodsSeen.push(frame.method.name);
      }
      this.wake();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => this.wake());
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  method(channel: number, method: Method): void {
    this.send(encodeMethodFrame(channel, method));
  }

  /** The next method named one of `names`, or null when the socket closes. */
  async expect(...names: string[]): Promise<Method | null> {
    for (;;) {
      const at = this.frames.findIndex((f) => f.type === 'method' && names.includes(f.method.name));
      if (at >= 0) {
        const [found] = this.frames.splice(at, 1);
        return found.type === 'method' ? found.method : null;
      }
      if (this.socket.destroyed) return null;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 200).unref();
      });
    }
  }

  /** basic.consume on channel 1, answered: consume-ok is awaited. */
  async consume(queue: string, consumerTag: string, noAck: boolean): Promise<void> {
    this.method(1, {
      name: 'basic.consume', queue, consumerTag, noLocal: false,
      noAck, exclusive: false, noWait: false, arguments: new Map(),
    });
    assert.ok(await this.expect('basic.consume-ok'), `no consume-ok for ${queue}`);
  }

  /** The basic.ack frames the broker sends until one covers `tag`. */
  async acksUpTo(tag: number): Promise<Array<{ deliveryTag: number; multiple: boolean }>> {
    const acks: Array<{ deliveryTag: number; multiple: boolean }> = [];
    for (;;) {
      const ack = await this.expect('basic.ack');
      assert.ok(ack !== null && ack.name === 'basic.ack', 'the socket closed before the ack');
      acks.push({ deliveryTag: ack.deliveryTag, multiple: ack.multiple });
      if (ack.deliveryTag >= tag) return acks;
    }
  }

  /** What `write` sends goes out in one TCP write, for the broker to read at once. */
  cork(write: () => void): void {
    this.socket.cork();
    write();
    this.socket.uncork();
  }

  /** Opens the connection and channel 1, in confirm mode, a transaction, or neither. */
  async open(
    mode: 'confirm' | 'tx' | 'none' = 'confirm',
    clientProperties: FieldTable = new Map(),
    heartbeat = 0,
  ): Promise<void> {
    this.send(PROTOCOL_HEADER);
    await this.expect('connection.start');
    this.method(0, {
      name: 'connection.start-ok',
      clientProperties,
      mechanism: 'PLAIN',
      response: Buffer.from('\u0000guest\u0000guest'),
      locale: 'en_US',
    });
    await this.expect('connection.tune');
    this.method(0, { name: 'connection.tune-ok', channelMax: 0, frameMax: FRAME_MAX, heartbeat });
    this.method(0, { name: 'connection.open', virtualHost: '/' });
    assert.ok(await this.expect('connection.open-ok'));
    this.method(1, { name: 'channel.open' });
    assert.ok(await this.expect('channel.open-ok'));
    if (mode === 'confirm') {
      this.method(1, { name: 'confirm.select', noWait: false });
      assert.ok(await this.expect('confirm.select-ok'));
    } else if (mode === 'tx') {
      this.method(1, { name: 'tx.select' });
      assert.ok(await this.expect('tx.select-ok'));
    }
  }

  /** Publishes to the default exchange; headers given as bytes or a table. */
  publish(
    queue: string,
    headers: FieldTable | Buffer,
    body = 'odd',
    properties: BasicProperties = {},
  ): void {
    const method: Method = {
      name: 'basic.publish',
      exchange: '',
      routingKey: queue,
      mandatory: false,
      immediate: false,
    };
    if (Buffer.isBuffer(headers)) {
      this.send(Buffer.concat([publishFrame(queue), headers, bodyFrame(body)]));
    } else {
      const all = { deliveryMode: 2, ...properties, headers };
      this.send(encodeContent(1, method, all, Buffer.from(body), FRAME_MAX));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The basic.publish method frame alone, without its content. */
export function publishFrame(queue: string): Buffer {
  const method: Method = { name: 'basic.publish', exchange: '', routingKey: queue, mandatory: false, immediate: false };
  const both = encodeContent(1, method, {}, Buffer.alloc(0), FRAME_MAX);
  return both.subarray(0, both.readUInt32BE(3) + 8);
}

export function bodyFrame(body: string): Buffer {
  const payload = Buffer.from(body);
  const out = Buffer.alloc(payload.length + 8);
  out[0] = 3;
  out.writeUInt16BE(1, 1);
  out.writeUInt32BE(payload.length, 3);
  payload.copy(out, 7);
  out[out.length - 1] = 0xce;
  return out;
}
