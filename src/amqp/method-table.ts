// The methods Usher speaks, as data: ids, who may send each, whether
// content follows, and the argument list in wire order. methods.ts derives
// both the TypeScript types and the codec from this one table.
//
// Names are the spec's, camel-cased. Arguments whose name starts with '_'
// are reserved by 0-9-1 (ticket, capabilities, insist, known-hosts,
// out-of-band, channel-id, cluster-id): read and dropped on decode,
// written as 0, '' or false on encode. exchange.declare's auto-delete and
// internal are RabbitMQ's names for 0-9-1's reserved-2 and reserved-3.

import { CLASS, METHOD } from './constants.js';

export type ArgKind =
  | 'octet'
  | 'short'
  | 'long'
  | 'longlong'
  | 'shortstr'
  | 'longstr'
  | 'bit'
  | 'table';

/** Who sends a method: the client, the server, or either peer. */
export type Sender = 'client' | 'server' | 'both';

export interface MethodSpec {
  readonly classId: number;
  readonly methodId: number;
  readonly sender: Sender;
  /** A content header and body frames follow the method. */
  readonly content?: true;
  readonly args: readonly (readonly [string, ArgKind])[];
}

const { connection: C, channel: H, exchange: E, queue: Q } = METHOD;
const { basic: B, confirm: F, tx: T } = METHOD;

const closeArgs = [
  ['replyCode', 'short'],
  ['replyText', 'shortstr'],
  ['classId', 'short'],
  ['methodId', 'short'],
] as const;

const tuneArgs = [
  ['channelMax', 'short'],
  ['frameMax', 'long'],
  ['heartbeat', 'short'],
] as const;

const bindArgs = [
  ['_ticket', 'short'],
  ['destination', 'shortstr'],
  ['source', 'shortstr'],
  ['routingKey', 'shortstr'],
  ['noWait', 'bit'],
  ['arguments', 'table'],
] as const;

function m<const A extends readonly (readonly [string, ArgKind])[]>(
  classId: number,
  methodId: number,
  sender: Sender,
  args: A,
): { classId: number; methodId: number; sender: Sender; args: A } {
  return { classId, methodId, sender, args };
}

function withContent<const A extends readonly (readonly [string, ArgKind])[]>(
  classId: number,
  methodId: number,
  sender: Sender,
  args: A,
) {
  return { ...m(classId, methodId, sender, args), content: true as const };
}

const c = CLASS.connection;
const h = CLASS.channel;
const e = CLASS.exchange;
const q = CLASS.queue;
const b = CLASS.basic;

export const METHOD_SPECS = {
  'connection.start': m(c, C.start, 'server', [
    ['versionMajor', 'octet'],
    ['versionMinor', 'octet'],
    ['serverProperties', 'table'],
    ['mechanisms', 'longstr'],
    ['locales', 'longstr'],
  ]),
  'connection.start-ok': m(c, C.startOk, 'client', [
    ['clientProperties', 'table'],
    ['mechanism', 'shortstr'],
    ['response', 'longstr'],
    ['locale', 'shortstr'],
  ]),
  'connection.secure': m(c, C.secure, 'server', [['challenge', 'longstr']]),
  'connection.secure-ok': m(c, C.secureOk, 'client', [['response', 'longstr']]),
  'connection.tune': m(c, C.tune, 'server', tuneArgs),
  'connection.tune-ok': m(c, C.tuneOk, 'client', tuneArgs),
  'connection.open': m(c, C.open, 'client', [
    ['virtualHost', 'shortstr'],
    ['_capabilities', 'shortstr'],
    ['_insist', 'bit'],
  ]),
  'connection.open-ok': m(c, C.openOk, 'server', [['_knownHosts', 'shortstr']]),
  'connection.close': m(c, C.close, 'both', closeArgs),
  'connection.close-ok': m(c, C.closeOk, 'both', []),
  'connection.blocked': m(c, C.blocked, 'server', [['reason', 'shortstr']]),
  'connection.unblocked': m(c, C.unblocked, 'server', []),

  'channel.open': m(h, H.open, 'client', [['_outOfBand', 'shortstr']]),
  'channel.open-ok': m(h, H.openOk, 'server', [['_channelId', 'longstr']]),
  'channel.flow': m(h, H.flow, 'both', [['active', 'bit']]),
  'channel.flow-ok': m(h, H.flowOk, 'both', [['active', 'bit']]),
  'channel.close': m(h, H.close, 'both', closeArgs),
  'channel.close-ok': m(h, H.closeOk, 'both', []),

  'exchange.declare': m(e, E.declare, 'client', [
    ['_ticket', 'short'],
    ['exchange', 'shortstr'],
    ['type', 'shortstr'],
    ['passive', 'bit'],
    ['durable', 'bit'],
    ['autoDelete', 'bit'],
    ['internal', 'bit'],
    ['noWait', 'bit'],
    ['arguments', 'table'],
  ]),
  'exchange.declare-ok': m(e, E.declareOk, 'server', []),
  'exchange.delete': m(e, E.delete, 'client', [
    ['_ticket', 'short'],
    ['exchange', 'shortstr'],
    ['ifUnused', 'bit'],
    ['noWait', 'bit'],
  ]),
  'exchange.delete-ok': m(e, E.deleteOk, 'server', []),
  'exchange.bind': m(e, E.bind, 'client', bindArgs),
  'exchange.bind-ok': m(e, E.bindOk, 'server', []),
  'exchange.unbind': m(e, E.unbind, 'client', bindArgs),
  'exchange.unbind-ok': m(e, E.unbindOk, 'server', []),

  'queue.declare': m(q, Q.declare, 'client', [
    ['_ticket', 'short'],
    ['queue', 'shortstr'],
    ['passive', 'bit'],
    ['durable', 'bit'],
    ['exclusive', 'bit'],
    ['autoDelete', 'bit'],
    ['noWait', 'bit'],
    ['arguments', 'table'],
  ]),
  'queue.declare-ok': m(q, Q.declareOk, 'server', [
    ['queue', 'shortstr'],
    ['messageCount', 'long'],
    ['consumerCount', 'long'],
  ]),
  'queue.bind': m(q, Q.bind, 'client', [
    ['_ticket', 'short'],
    ['queue', 'shortstr'],
    ['exchange', 'shortstr'],
    ['routingKey', 'shortstr'],
    ['noWait', 'bit'],
    ['arguments', 'table'],
  ]),
  'queue.bind-ok': m(q, Q.bindOk, 'server', []),
  'queue.unbind': m(q, Q.unbind, 'client', [
    ['_ticket', 'short'],
    ['queue', 'shortstr'],
    ['exchange', 'shortstr'],
    ['routingKey', 'shortstr'],
    ['arguments', 'table'],
  ]),
  'queue.unbind-ok': m(q, Q.unbindOk, 'server', []),
  'queue.purge': m(q, Q.purge, 'client', [
    ['_ticket', 'short'],
    ['queue', 'shortstr'],
    ['noWait', 'bit'],
  ]),
  'queue.purge-ok': m(q, Q.purgeOk, 'server', [['messageCount', 'long']]),
  'queue.delete': m(q, Q.delete, 'client', [
    ['_ticket', 'short'],
    ['queue', 'shortstr'],
    ['ifUnused', 'bit'],
    ['ifEmpty', 'bit'],
    ['noWait', 'bit'],
  ]),
  'queue.delete-ok': m(q, Q.deleteOk, 'server', [['messageCount', 'long']]),

  'basic.qos': m(b, B.qos, 'client', [
    ['prefetchSize', 'long'],
    ['prefetchCount', 'short'],
    ['global', 'bit'],
  ]),
  'basic.qos-ok': m(b, B.qosOk, 'server', []),
  'basic.consume': m(b, B.consume, 'client', [
    ['_ticket', 'short'],
    ['queue', 'shortstr'],
    ['consumerTag', 'shortstr'],
    ['noLocal', 'bit'],
    ['noAck', 'bit'],
    ['exclusive', 'bit'],
    ['noWait', 'bit'],
    ['arguments', 'table'],
  ]),
  'basic.consume-ok': m(b, B.consumeOk, 'server', [
    ['consumerTag', 'shortstr'],
  ]),
  // The server cancels too when consumer_cancel_notify is on.
  'basic.cancel': m(b, B.cancel, 'both', [
    ['consumerTag', 'shortstr'],
    ['noWait', 'bit'],
  ]),
  'basic.cancel-ok': m(b, B.cancelOk, 'both', [['consumerTag', 'shortstr']]),
  'basic.publish': withContent(b, B.publish, 'client', [
    ['_ticket', 'short'],
    ['exchange', 'shortstr'],
    ['routingKey', 'shortstr'],
    ['mandatory', 'bit'],
    ['immediate', 'bit'],
  ]),
  'basic.return': withContent(b, B.return, 'server', [
    ['replyCode', 'short'],
    ['replyText', 'shortstr'],
    ['exchange', 'shortstr'],
    ['routingKey', 'shortstr'],
  ]),
  'basic.deliver': withContent(b, B.deliver, 'server', [
    ['consumerTag', 'shortstr'],
    ['deliveryTag', 'longlong'],
    ['redelivered', 'bit'],
    ['exchange', 'shortstr'],
    ['routingKey', 'shortstr'],
  ]),
  'basic.get': m(b, B.get, 'client', [
    ['_ticket', 'short'],
    ['queue', 'shortstr'],
    ['noAck', 'bit'],
  ]),
  'basic.get-ok': withContent(b, B.getOk, 'server', [
    ['deliveryTag', 'longlong'],
    ['redelivered', 'bit'],
    ['exchange', 'shortstr'],
    ['routingKey', 'shortstr'],
    ['messageCount', 'long'],
  ]),
  'basic.get-empty': m(b, B.getEmpty, 'server', [['_clusterId', 'shortstr']]),
  // The server acks and nacks publishes in confirm mode.
  'basic.ack': m(b, B.ack, 'both', [
    ['deliveryTag', 'longlong'],
    ['multiple', 'bit'],
  ]),
  'basic.reject': m(b, B.reject, 'client', [
    ['deliveryTag', 'longlong'],
    ['requeue', 'bit'],
  ]),
  'basic.recover-async': m(b, B.recoverAsync, 'client', [['requeue', 'bit']]),
  'basic.recover': m(b, B.recover, 'client', [['requeue', 'bit']]),
  'basic.recover-ok': m(b, B.recoverOk, 'server', []),
  'basic.nack': m(b, B.nack, 'both', [
    ['deliveryTag', 'longlong'],
    ['multiple', 'bit'],
    ['requeue', 'bit'],
  ]),

  'confirm.select': m(CLASS.confirm, F.select, 'client', [['noWait', 'bit']]),
  'confirm.select-ok': m(CLASS.confirm, F.selectOk, 'server', []),

  'tx.select': m(CLASS.tx, T.select, 'client', []),
  'tx.select-ok': m(CLASS.tx, T.selectOk, 'server', []),
  'tx.commit': m(CLASS.tx, T.commit, 'client', []),
  'tx.commit-ok': m(CLASS.tx, T.commitOk, 'server', []),
  'tx.rollback': m(CLASS.tx, T.rollback, 'client', []),
  'tx.rollback-ok': m(CLASS.tx, T.rollbackOk, 'server', []),
} as const satisfies Record<string, MethodSpec>;
