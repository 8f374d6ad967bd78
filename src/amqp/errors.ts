// Errors of the AMQP wire layer. An AmqpError is what the broker answers
// with connection.close or channel.close: it carries the reply code, the
// class and method at fault, and whether the channel or the whole
// connection goes. `code` is stable: 'AMQP_' and the reply code's name.
//
// These codes are not in docs/errors.md yet, which lists HTTP codes; see
// AMQP_ERROR_CODES for the full set.

import { REPLY, REPLY_NAMES, replyScope } from './constants.js';

/** Every `code` an error from src/amqp can carry. */
export const AMQP_ERROR_CODES: readonly string[] = [
  ...Object.keys(REPLY)
    .filter((name) => name !== 'SUCCESS')
    .map((name) => `AMQP_${name}`),
  'AMQP_UNENCODABLE',
];

export interface AmqpErrorOptions {
  /** Class and method being decoded or run when it failed; 0 if none. */
  classId?: number;
  methodId?: number;
  cause?: unknown;
}

/**
 * A protocol error to report to the peer. `message` is for people and
 * logs; `replyText` is the same, shaped for the close method.
 */
export class AmqpError extends Error {
  readonly code: string;
  readonly replyCode: number;
  readonly scope: 'connection' | 'channel';
  readonly classId: number;
  readonly methodId: number;

  constructor(
    replyCode: number,
    message: string,
    options: AmqpErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    const name = REPLY_NAMES.get(replyCode);
    if (name === undefined || replyCode === REPLY.SUCCESS) {
      throw new RangeError(`${replyCode} is not an AMQP error reply code`);
    }
    this.name = new.target.name;
    this.code = `AMQP_${name}`;
    this.replyCode = replyCode;
    this.scope = replyScope(replyCode);
    this.classId = options.classId ?? 0;
    this.methodId = options.methodId ?? 0;
  }

  /**
   * Text for the reply-text field, RabbitMQ style ("NOT_FOUND - no queue
   * 'q'"), cut to fit a shortstr (255 bytes) on a character boundary.
   */
  get replyText(): string {
    return fitShortstr(`${this.code.slice(5)} - ${this.message}`);
  }
}

/** 501: framing is broken, or a frame is larger than frame-max. */
export class FrameError extends AmqpError {
  constructor(message: string, options?: AmqpErrorOptions) {
    super(REPLY.FRAME_ERROR, message, options);
  }
}

/** 502: a method or content header whose fields do not decode. */
export class AmqpSyntaxError extends AmqpError {
  constructor(message: string, options?: AmqpErrorOptions) {
    super(REPLY.SYNTAX_ERROR, message, options);
  }
}

/** 503: a method the peer may not send, or not on this channel. */
export class CommandInvalidError extends AmqpError {
  constructor(message: string, options?: AmqpErrorOptions) {
    super(REPLY.COMMAND_INVALID, message, options);
  }
}

/** 504: a non-connection method on channel 0. */
export class ChannelError extends AmqpError {
  constructor(message: string, options?: AmqpErrorOptions) {
    super(REPLY.CHANNEL_ERROR, message, options);
  }
}

/** 505: a frame out of sequence, e.g. a body with no header before it. */
export class UnexpectedFrameError extends AmqpError {
  constructor(message: string, options?: AmqpErrorOptions) {
    super(REPLY.UNEXPECTED_FRAME, message, options);
  }
}

/** 540: a class or method id (or field type) Usher does not know. */
export class NotImplementedError extends AmqpError {
  constructor(message: string, options?: AmqpErrorOptions) {
    super(REPLY.NOT_IMPLEMENTED, message, options);
  }
}

/**
 * 406 on the channel: a content header announces a body over the
 * configured limit. RabbitMQ answers max_message_size the same way.
 */
export class BodyTooLargeError extends AmqpError {
  readonly bodySize: number;
  readonly limit: number;

  constructor(bodySize: number, limit: number, options?: AmqpErrorOptions) {
    super(
      REPLY.PRECONDITION_FAILED,
      `message size ${bodySize} is larger than configured max size ${limit}`,
      options,
    );
    this.bodySize = bodySize;
    this.limit = limit;
  }
}

/**
 * A value Usher was asked to send cannot be put on the wire: a shortstr
 * over 255 bytes, an integer out of its field's range, a table nested too
 * deep. A bug or unchecked input on our side, never the peer's fault.
 */
export class AmqpEncodeError extends Error {
  readonly code: string;
  /** Where the value sits, e.g. `basic.deliver.routingKey`. */
  readonly field: string;

  constructor(field: string, message: string) {
    super(`cannot encode ${field}: ${message}`);
    this.name = 'AmqpEncodeError';
    this.code = 'AMQP_UNENCODABLE';
    this.field = field;
  }
}

/** Cuts `text` to at most 255 UTF-8 bytes without splitting a character. */
export function fitShortstr(text: string): string {
  if (Buffer.byteLength(text) <= 255) return text;
  let out = '';
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char);
    if (bytes + size > 255) break;
    out += char;
    bytes += size;
  }
  return out;
}

/** 406 PRECONDITION_FAILED: the channel's most common refusal, closing it alone. */
export function preconditionFailed(message: string): AmqpError {
  return new AmqpError(REPLY.PRECONDITION_FAILED, message);
}
