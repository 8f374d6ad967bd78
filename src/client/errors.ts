// The one error the client throws. A refusal from the broker keeps the
// broker's status, code, field and message (docs/http-api.md, "Errors");
// trouble on the client side gets one of the codes below, with the
// underlying error kept as `cause`.

/** Codes the client itself assigns; the broker's own are in docs/errors.md. */
export const CLIENT_ERROR_CODES = {
  /** No answer: connection refused, reset, DNS failure, TLS, ... */
  CONNECTION_FAILED: 'CONNECTION_FAILED',
  /** The answer was not the JSON the API promises. */
  BAD_RESPONSE: 'BAD_RESPONSE',
  /** The caller's AbortSignal fired. */
  ABORTED: 'ABORTED',
  /** Refused before sending: a bad URL, a body that cannot be sent. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** AMQP: the connection ended before the broker confirmed a publish. */
  OUTCOME_UNKNOWN: 'OUTCOME_UNKNOWN',
  /** AMQP: the broker nacked a publish. */
  PUBLISH_REFUSED: 'PUBLISH_REFUSED',
  /** AMQP: the method (or an option of it) has no AMQP form; `field` names it. */
  UNSUPPORTED: 'UNSUPPORTED',
} as const;

/**
 * Thrown by every client call that fails.
 *
 * @example
 *   try {
 *     await usher.getQueue('orders');
 *   } catch (err) {
 *     if (err instanceof UsherClientError && err.code === 'QUEUE_NOT_FOUND') {
 *       await usher.createQueue('orders');
 *     } else throw err;
 *   }
 */
export class UsherClientError extends Error {
  /** The broker's stable code, e.g. `QUEUE_NOT_FOUND`, or a client one. */
  readonly code: string;
  /** HTTP status of the refusal; 0 when no answer came. */
  readonly status: number;
  /** The request field at fault, e.g. `messages.3.priority`. */
  readonly field: string | undefined;
  /** The broker's Retry-After on a refusal under load (429, 503), in ms. */
  readonly retryAfterMs: number | undefined;
  /** QUEUE_FULL, OVERLOADED: the broker's admission level when refused. */
  readonly level: string | undefined;
  /** QUEUE_FULL, OVERLOADED: why, e.g. `max-length` or `memory`. */
  readonly reason: string | undefined;

  constructor(
    code: string,
    status: number,
    message: string,
    options: {
      field?: string;
      cause?: unknown;
      retryAfterMs?: number;
      level?: string;
      reason?: string;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'UsherClientError';
    this.code = code;
    this.status = status;
    this.field = options.field;
    this.retryAfterMs = options.retryAfterMs;
    this.level = options.level;
    this.reason = options.reason;
  }
}

/** Words for the network errors people actually meet. */
const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
  UND_ERR_SOCKET: 'connection closed',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'answer stalled',
};

/**
 * Builds the CONNECTION_FAILED error for a fetch that got no answer, e.g.
 * `cannot reach Usher at http://127.0.0.1:8080: connection refused`.
 */
export function connectionError(
  baseUrl: string,
  err: unknown,
): UsherClientError {
  return new UsherClientError(
    CLIENT_ERROR_CODES.CONNECTION_FAILED,
    0,
    `cannot reach Usher at ${baseUrl}: ${networkReason(err)}`,
    { cause: err },
  );
}

/**
 * fetch rejects with a bare `TypeError: fetch failed`; the system error is
 * its cause, or the first of several when every address of a host failed.
 */
function networkReason(err: unknown): string {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_REASONS[code]) {
      return NETWORK_REASONS[code];
    }
    if (current instanceof AggregateError && current.errors.length > 0) {
      current = current.errors[0];
    } else if (current.cause !== undefined) {
      current = current.cause;
    } else {
      return current.message;
    }
  }
  return String(current);
}
