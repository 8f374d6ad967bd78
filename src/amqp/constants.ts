// Numbers fixed by AMQP 0-9-1 as RabbitMQ speaks it: frame types, class
// and method ids, reply codes, and the capabilities Usher advertises.
// Sources: the 0-9-1 specification (amqp0-9-1.xml) and RabbitMQ's
// extensions (exchange.bind, basic.nack, confirm, connection.blocked).

/** What a client sends first: "AMQP", 0, 0, 9, 1. */
export const PROTOCOL_HEADER: Buffer = Buffer.from([
  0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1,
]);

/**
 * The 0-9 header, "AMQP", 1, 1, 0, 9. RabbitMQ serves it as 0-9-1, the
 * two being wire-compatible for everything Usher implements.
 */
export const PROTOCOL_HEADER_0_9: Buffer = Buffer.from([
  0x41, 0x4d, 0x51, 0x50, 1, 1, 0, 9,
]);

export const FRAME_METHOD = 1;
export const FRAME_HEADER = 2;
export const FRAME_BODY = 3;
export const FRAME_HEARTBEAT = 8;
export const FRAME_END = 0xce;

/** type u8, channel u16, size u32. */
export const FRAME_HEADER_SIZE = 7;
/** Header plus the frame-end octet: what frame-max counts beyond payload. */
export const FRAME_OVERHEAD = 8;
/** Every peer must accept frames this large, before and after tune. */
export const FRAME_MIN_SIZE = 4096;
/** frame-max is a u32 on the wire. */
export const FRAME_MAX_LIMIT = 0xffff_ffff;

export const CLASS = {
  connection: 10,
  channel: 20,
  exchange: 40,
  queue: 50,
  basic: 60,
  confirm: 85,
  tx: 90,
} as const;

/** Method ids within their class. */
export const METHOD = {
  connection: {
    start: 10, startOk: 11, secure: 20, secureOk: 21, tune: 30,
    tuneOk: 31, open: 40, openOk: 41, close: 50, closeOk: 51,
    blocked: 60, unblocked: 61,
  },
  channel: {
    open: 10, openOk: 11, flow: 20, flowOk: 21, close: 40, closeOk: 41,
  },
  exchange: {
    declare: 10, declareOk: 11, delete: 20, deleteOk: 21, bind: 30,
    bindOk: 31, unbind: 40, unbindOk: 51,
  },
  queue: {
    declare: 10, declareOk: 11, bind: 20, bindOk: 21, purge: 30,
    purgeOk: 31, delete: 40, deleteOk: 41, unbind: 50, unbindOk: 51,
  },
  basic: {
    qos: 10, qosOk: 11, consume: 20, consumeOk: 21, cancel: 30,
    cancelOk: 31, publish: 40, return: 50, deliver: 60, get: 70,
    getOk: 71, getEmpty: 72, ack: 80, reject: 90, recoverAsync: 100,
    recover: 110, recoverOk: 111, nack: 120,
  },
  confirm: { select: 10, selectOk: 11 },
  tx: {
    select: 10, selectOk: 11, commit: 20, commitOk: 21, rollback: 30,
    rollbackOk: 31,
  },
} as const;

/**
 * Reply codes of connection.close and channel.close. The spec calls
 * 3xx/4xx "soft" (the channel closes) and 5xx plus 320 and 402 "hard"
 * (the connection closes); REPLY_SCOPE says which.
 */
export const REPLY = {
  SUCCESS: 200,
  CONTENT_TOO_LARGE: 311,
  NO_ROUTE: 312,
  NO_CONSUMERS: 313,
  CONNECTION_FORCED: 320,
  INVALID_PATH: 402,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  FRAME_ERROR: 501,
  SYNTAX_ERROR: 502,
  COMMAND_INVALID: 503,
  CHANNEL_ERROR: 504,
  UNEXPECTED_FRAME: 505,
  RESOURCE_ERROR: 506,
  NOT_ALLOWED: 530,
  NOT_IMPLEMENTED: 540,
  INTERNAL_ERROR: 541,
} as const;

export type ReplyName = keyof typeof REPLY;
export type ReplyCode = (typeof REPLY)[ReplyName];

/** 404 -> 'NOT_FOUND'; RabbitMQ starts reply-text with this name. */
export const REPLY_NAMES: ReadonlyMap<number, ReplyName> = new Map(
  Object.entries(REPLY).map(([name, code]) => [code, name as ReplyName]),
);

const CHANNEL_SCOPED: ReadonlySet<number> = new Set([
  REPLY.CONTENT_TOO_LARGE,
  REPLY.NO_ROUTE,
  REPLY.NO_CONSUMERS,
  REPLY.ACCESS_REFUSED,
  REPLY.NOT_FOUND,
  REPLY.RESOURCE_LOCKED,
  REPLY.PRECONDITION_FAILED,
]);

/** Whether a reply code closes only the channel or the connection. */
export function replyScope(code: number): 'channel' | 'connection' {
  return CHANNEL_SCOPED.has(code) ? 'channel' : 'connection';
}

/**
 * The `capabilities` table of connection.start's server-properties.
 * Clients switch features on from it (amqplib, the Java and .NET clients
 * read publisher_confirms, consumer_cancel_notify, ...). Field-table form
 * is built by field-table.ts; the values are all booleans.
 */
export const SERVER_CAPABILITIES: Readonly<Record<string, boolean>> = {
  publisher_confirms: true,
  exchange_exchange_bindings: true,
  'basic.nack': true,
  consumer_cancel_notify: true,
  'connection.blocked': true,
  authentication_failure_close: true,
  per_consumer_qos: true,
  consumer_priorities: true,
  direct_reply_to: true,
};

/** Longest --amqp-consumer-timeout: under a day, the longest lease (channel-deliveries.ts). */
export const MAX_CONSUMER_TIMEOUT_MS = 23 * 60 * 60 * 1000;
