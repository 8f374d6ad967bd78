// An AMQP listener over a broker in a temp folder, for tests that drive
// it with amqplib: connections that are all closed at the end and, for
// slow consumers, connections through a loopback relay whose broker side
// can stop reading, so the broker's socket fills as a stuck consumer's
// would.

import {
  connect as connectTcp, createServer, type AddressInfo, type Server, type Socket,
} from 'node:net';
import { after, before } from 'node:test';

import amqp, { type Channel, type ChannelModel } from 'amqplib';

import type { Broker, BrokerOptions } from '../../src/broker/broker.js';
import { type AmqpServerOptions, createAmqpServer } from '../../src/amqp/server.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';

export interface StallableConnection {
  connection: ChannelModel;
  /** Stops (true) or resumes (false) reading what the broker sends. */
  stall(on: boolean): void;
}

export interface AmqpFixture {
  broker: Broker;
  /** The listener's port, for a hand-driven client (raw-client.ts). */
  port: number;
  connect(): Promise<ChannelModel>;
  connectStallable(): Promise<StallableConnection>;
  close(): Promise<void>;
}

/** Listener options a test may set, beyond the broker and its folder. */
export type ListenerOptions = Partial<Omit<AmqpServerOptions, 'broker' | 'logger' | 'dataDir'>>;

export async function openAmqpFixture(
  dirPrefix: string,
  brokerOptions: Partial<BrokerOptions> = {},
  listenerOptions: ListenerOptions = {},
): Promise<AmqpFixture> {
  const dir = tempDir(dirPrefix);
  const broker = await openBroker(dir.path, brokerOptions);
  const server = await createAmqpServer({
    broker, logger: silentLogger, dataDir: dir.path, maxMessageBytes: 1024 * 1024,
    ...listenerOptions,
  });
  const { port: brokerPort } = await server.listen(0, '127.0.0.1');
  const opened: ChannelModel[] = [];
  const relays: Server[] = [];

  const connectTo = async (port: number) => {
    const connection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
    connection.on('error', () => {});
    opened.push(connection);
    return connection;
  };

  const connectStallable = async (): Promise<StallableConnection> => {
    let upstream: Socket | null = null;
    const relay = createServer((client) => {
      const toBroker = connectTcp(brokerPort, '127.0.0.1');
      upstream = toBroker;
      client.pipe(toBroker);
      toBroker.pipe(client);
      client.on('error', () => toBroker.destroy());
      toBroker.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    relays.push(relay);
    const connection = await connectTo((relay.address() as AddressInfo).port);
    return {
      connection,
      stall: (on) => (on ? upstream?.pause() : upstream?.resume()),
    };
  };

  const close = async () => {
    for (const connection of opened) await connection.close().catch(() => {});
    for (const relay of relays) relay.close();
    await server.close();
    await broker.close();
    dir.remove();
  };

  return {
    broker, port: brokerPort, connect: () => connectTo(brokerPort), connectStallable, close,
  };
}

/**
 * A fixture opened before this file's tests and closed after them. Its
 * members reach the opened one, so they are used inside tests only.
 */
export function useAmqpFixture(
  dirPrefix: string,
  brokerOptions: Partial<BrokerOptions> = {},
  listenerOptions: ListenerOptions = {},
): AmqpFixture {
  let opened: AmqpFixture | undefined;
  const fixture = (): AmqpFixture => {
    if (opened === undefined) throw new Error('the AMQP fixture opens in before()');
    return opened;
  };
  before(async () => {
    opened = await openAmqpFixture(dirPrefix, brokerOptions, listenerOptions);
  });
  after(() => opened?.close());

  return {
    get broker() {
      return fixture().broker;
    },
    get port() {
      return fixture().port;
    },
    connect: () => fixture().connect(),
    connectStallable: () => fixture().connectStallable(),
    close: () => fixture().close(),
  };
}

/** The reply code of the channel error `attempt` causes, or 'ok'. */
export async function channelAnswer(
  connection: ChannelModel,
  attempt: (channel: Channel) => Promise<unknown>,
): Promise<number | 'ok'> {
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  try {
    await attempt(channel);
    await channel.close();
    return 'ok';
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}
