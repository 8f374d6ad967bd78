// Every error Usher raises on purpose: one base class with a stable string
// `code`, one small subclass per condition. The HTTP layer maps `status`
// onto the response; `field` names the offending request field when there
// is one. test/errors.test.ts checks that every code is documented in
// docs/errors.md.

export class UsherError extends Error {
  readonly code: string;
  readonly status: number;
  readonly field: string | undefined;

  constructor(
    code: string,
    status: number,
    message: string,
    options: { field?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.field = options.field;
  }
}

export class InvalidArgumentError extends UsherError {
  constructor(field: string, message: string) {
    super('INVALID_ARGUMENT', 400, message, { field });
  }
}

export class QueueNotFoundError extends UsherError {
  constructor(queue: string, field = 'queue') {
    super('QUEUE_NOT_FOUND', 404, `queue "${queue}" does not exist`, {
      field,
    });
  }
}

export class QueueExistsError extends UsherError {
  constructor(queue: string, difference: string) {
    super(
      'QUEUE_EXISTS',
      409,
      `queue "${queue}" already exists with different settings (${difference})`,
      { field: 'queue' },
    );
  }
}

export class ReceiptNotFoundError extends UsherError {
  /**
   * `leasedBy`: the queue that does hold this lease, when the receipt was
   * sent to another queue's path.
   */
  constructor(readonly receipt: string, readonly queue: string, readonly leasedBy?: string) {
    super(
      'RECEIPT_NOT_FOUND',
      404,
      leasedBy === undefined
        ? `receipt "${receipt}" is not a current lease of queue "${queue}": ` +
            'it was settled, its lease expired, or it never existed'
        : `receipt "${receipt}" is a lease of queue "${leasedBy}", not of ` +
            `queue "${queue}": settle it through queue "${leasedBy}"`,
      { field: 'receipt' },
    );
  }
}

export class NotDeadLetterQueueError extends UsherError {
  /** `deadLetter`: the queue's own dead-letter queue, if it has one. */
  constructor(queue: string, deadLetter: string | null) {
    super(
      'NOT_DEAD_LETTER_QUEUE',
      409,
      `queue "${queue}" is not a dead-letter queue: no queue dead-letters ` +
        'into it, so its messages may be live work' +
        (deadLetter === null ? '' : `; its dead letters are in "${deadLetter}"`) +
        '. Send "anyQueue": true to move its messages anyway',
      { field: 'queue' },
    );
  }
}

export class MessageTooLargeError extends UsherError {
  /** `field` locates the body in a batch, e.g. `messages.3.body`. */
  constructor(size: number, limit: number, field = 'body') {
    super(
      'MESSAGE_TOO_LARGE',
      413,
      `message body of ${size} bytes exceeds the limit of ${limit} bytes`,
      { field },
    );
  }
}

export class StoreUnavailableError extends UsherError {
  constructor(message: string, cause?: unknown) {
    super('STORE_UNAVAILABLE', 503, message, { cause });
  }
}

export class DiskFullError extends UsherError {
  constructor(freeBytes: number, floorBytes: number) {
    super(
      'DISK_FULL',
      507,
      `free disk space (${freeBytes} bytes) is below the floor of ${floorBytes} ` +
        'bytes: publishes are refused until space is freed; acks, nacks ' +
        'and consumers keep working',
    );
  }
}

export class DataDirInUseError extends UsherError {
  constructor(dataDir: string, pid: number) {
    super(
      'DATA_DIR_IN_USE',
      409,
      `data directory "${dataDir}" is in use by another broker (PID ${pid}); ` +
        'stop it first or use another --data',
    );
  }
}

export class BrokerClosedError extends UsherError {
  constructor() {
    super('BROKER_CLOSED', 503, 'the broker is shutting down');
  }
}

// Refusals of the HTTP layer itself, before a request reaches the broker.

export class InvalidJsonError extends UsherError {
  constructor(detail: string) {
    super('INVALID_JSON', 400, `request body is not valid JSON: ${detail}`);
  }
}

export class InvalidUtf8Error extends UsherError {
  constructor() {
    super(
      'INVALID_UTF8',
      400,
      'request body is not valid UTF-8; send binary message bodies as ' +
        '"bodyBase64"',
    );
  }
}

export class PayloadTooLargeError extends UsherError {
  constructor(limit: number) {
    super(
      'PAYLOAD_TOO_LARGE',
      413,
      `request body exceeds the limit of ${limit} bytes`,
    );
  }
}

export class UnsupportedMediaTypeError extends UsherError {
  /** `contentType` is '' when the request named none. */
  constructor(contentType: string) {
    super(
      'UNSUPPORTED_MEDIA_TYPE',
      415,
      contentType === ''
        ? 'a request body needs content type application/json'
        : `content type "${contentType}" is not supported; ` +
            'send application/json',
    );
  }
}

export class BadRequestError extends UsherError {
  constructor(message: string) {
    super('BAD_REQUEST', 400, message);
  }
}

export class RouteNotFoundError extends UsherError {
  constructor(method: string, url: string) {
    super('NOT_FOUND', 404, `no route for ${method} ${url}`);
  }
}

export class InternalError extends UsherError {
  constructor(cause?: unknown) {
    super('INTERNAL', 500, 'internal error; the broker log has details', {
      cause,
    });
  }
}

export class RequestTimeoutError extends UsherError {
  constructor(timeoutMs: number) {
    super('REQUEST_TIMEOUT', 408, `the request was not received within ${timeoutMs} ms`);
  }
}

export class HeadersTooLargeError extends UsherError {
  constructor() {
    super('HEADERS_TOO_LARGE', 431, 'the request headers are too large');
  }
}

// Refusals under load (graceful degradation, issue #6): the publisher
// should back off and try again after `retryAfterSeconds`; the HTTP layer
// sends it as Retry-After and adds `level` and `reason` to the body.

export class LoadRefusalError extends UsherError {
  readonly retryAfterSeconds: number;
  /** Admission level when refused: normal, pressure or critical. */
  readonly level: string;
  /** Short machine-readable why, e.g. `max-length` or `memory`. */
  readonly reason: string;

  constructor(
    code: string,
    status: number,
    message: string,
    details: { retryAfterSeconds: number; level: string; reason: string; field?: string },
  ) {
    super(code, status, message, { field: details.field });
    this.retryAfterSeconds = details.retryAfterSeconds;
    this.level = details.level;
    this.reason = details.reason;
  }
}

export class QueueFullError extends LoadRefusalError {
  constructor(queue: string, limit: 'max-length' | 'max-bytes', value: number, field = 'queue') {
    super(
      'QUEUE_FULL',
      429,
      `queue "${queue}" is full: its ${limit === 'max-length' ? 'maxLength' : 'maxBytes'} ` +
        `of ${value} is reached and its overflow policy refuses new messages`,
      { retryAfterSeconds: 1, level: 'normal', reason: limit, field },
    );
  }
}

export class OverloadedError extends LoadRefusalError {
  /** The refused message's priority. */
  readonly priority: number;

  constructor(level: 'pressure' | 'critical', reason: string, priority: number, detail: string) {
    super(
      'OVERLOADED',
      level === 'critical' ? 503 : 429,
      `the broker is at ${level} (${reason}) and refuses this message (priority ` +
        `${priority}): ${detail}`,
      { retryAfterSeconds: level === 'critical' ? 5 : 1, level, reason },
    );
    this.priority = priority;
  }
}

// Authentication and authorization (src/auth).

export class UnauthenticatedError extends UsherError {
  constructor(message: string) {
    super('UNAUTHENTICATED', 401, message);
  }
}

export class AccessRefusedError extends UsherError {
  constructor(message: string, field?: string) {
    super('ACCESS_REFUSED', 403, message, { field });
  }
}

export class LoginLockedError extends UsherError {
  readonly retryAfterSeconds: number;

  constructor(retryAfterSeconds: number) {
    super(
      'LOGIN_LOCKED',
      429,
      `too many failed logins from this address; try again in ${retryAfterSeconds} s`,
    );
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class UserExistsError extends UsherError {
  constructor(name: string) {
    super('USER_EXISTS', 409, `user "${name}" already exists`, { field: 'name' });
  }
}

export class UserNotFoundError extends UsherError {
  constructor(name: string) {
    super('USER_NOT_FOUND', 404, `user "${name}" does not exist`, { field: 'name' });
  }
}

export class LastAdminError extends UsherError {
  constructor(name: string) {
    super(
      'LAST_ADMIN',
      409,
      `user "${name}" is the last administrator; make another one first`,
      { field: 'name' },
    );
  }
}

export class TokenExistsError extends UsherError {
  constructor(name: string) {
    super('TOKEN_EXISTS', 409, `token "${name}" already exists`, { field: 'name' });
  }
}

export class TokenNotFoundError extends UsherError {
  constructor(name: string) {
    super('TOKEN_NOT_FOUND', 404, `token "${name}" does not exist`, { field: 'name' });
  }
}

export class TooManyEventStreamsError extends UsherError {
  constructor(limit: number) {
    super(
      'TOO_MANY_EVENT_STREAMS',
      503,
      `${limit} event streams are open already; close a dashboard tab, or use /metrics`,
    );
  }
}

export class TooManyConnectionsError extends UsherError {
  constructor(address: string, limit: number) {
    super(
      'TOO_MANY_CONNECTIONS',
      429,
      `too many open connections from ${address} (limit ${limit}); close some or reuse them`,
    );
  }
}
