// Errors of the routing layer. Each carries the AMQP reply code the
// adapter answers with (channel.close) and a message worded the way
// RabbitMQ words it, so clients and their tests see familiar text:
//
//   replyText: PRECONDITION_FAILED - inequivalent arg 'type' for
//              exchange 'logs' in vhost '/': received 'fanout' but
//              current is 'direct'
//
// `code` is 'AMQP_' and the reply code's name, the same family as
// src/amqp/errors.ts. Like those, these codes are not in docs/errors.md
// yet (it lists HTTP codes); ROUTING_ERROR_CODES is the full set.

/** Reply codes the routing layer gives, by their AMQP 0-9-1 names. */
export const ROUTING_REPLY = {
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  PRECONDITION_FAILED: 406,
  COMMAND_INVALID: 503,
} as const;

export type RoutingReplyName = keyof typeof ROUTING_REPLY;
export type RoutingReplyCode = (typeof ROUTING_REPLY)[RoutingReplyName];

const NAMES = new Map(
  Object.entries(ROUTING_REPLY).map(([name, code]) => [code, name]),
) as ReadonlyMap<RoutingReplyCode, RoutingReplyName>;

/** Every `code` a RoutingError can carry, plus the snapshot's. */
export const ROUTING_ERROR_CODES: readonly string[] = [
  ...Object.keys(ROUTING_REPLY).map((name) => `AMQP_${name}`),
  'ROUTING_SNAPSHOT_INVALID',
];

/**
 * A refused exchange or binding operation. `message` is RabbitMQ's
 * explanation; `replyText` prefixes the reply code's name, as the
 * close method carries it (the adapter fits it into a shortstr).
 */
export class RoutingError extends Error {
  readonly code: string;
  readonly replyCode: number;
  readonly replyName: RoutingReplyName;

  constructor(replyCode: RoutingReplyCode, message: string) {
    super(message);
    const replyName = NAMES.get(replyCode);
    if (replyName === undefined) {
      throw new RangeError(`${replyCode} is not a routing reply code`);
    }
    this.name = new.target.name;
    this.replyName = replyName;
    this.replyCode = replyCode;
    this.code = `AMQP_${replyName}`;
  }

  get replyText(): string {
    return `${this.replyName} - ${this.message}`;
  }
}

/** 404: an exchange or queue named in the method does not exist. */
export class NotFoundError extends RoutingError {
  constructor(message: string) {
    super(ROUTING_REPLY.NOT_FOUND, message);
  }
}

/** 406: the request contradicts current state or is malformed. */
export class PreconditionFailedError extends RoutingError {
  constructor(message: string) {
    super(ROUTING_REPLY.PRECONDITION_FAILED, message);
  }
}

/** 403: the default exchange, an `amq.` name, an internal exchange. */
export class AccessRefusedError extends RoutingError {
  constructor(message: string) {
    super(ROUTING_REPLY.ACCESS_REFUSED, message);
  }
}

/** 503, a connection error in AMQP: an exchange type we do not have. */
export class CommandInvalidError extends RoutingError {
  constructor(message: string) {
    super(ROUTING_REPLY.COMMAND_INVALID, message);
  }
}

/**
 * A snapshot given to ExchangeTable.fromJSON is not one toJSON wrote.
 * `path` locates the bad part, e.g. `bindings.3.routingKey`.
 */
export class SnapshotError extends Error {
  readonly code: string;
  readonly path: string;

  constructor(path: string, message: string) {
    super(`exchange snapshot: ${path} ${message}`);
    this.name = new.target.name;
    this.code = 'ROUTING_SNAPSHOT_INVALID';
    this.path = path;
  }
}
