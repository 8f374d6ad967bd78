// The one place where a failed request becomes an answer. Every refusal
// leaves as `{"error": {"code", "message", "field"}}` (docs/errors.md):
// UsherError keeps its own code and status, fastify's refusals (schema
// validation, body limit, content type) are translated to ours, and
// anything else is a 500 INTERNAL, logged with its stack, never a crash.

import type {
  FastifyError,
  FastifyReply,
  FastifyRequest,
  FastifySchemaValidationError,
} from 'fastify';

import {
  BadRequestError,
  InternalError,
  InvalidArgumentError,
  LoadRefusalError,
  PayloadTooLargeError,
  RouteNotFoundError,
  UnsupportedMediaTypeError,
  UsherError,
} from '../errors.js';

export interface ErrorAnswer {
  error: { code: string; message: string; field?: string; level?: string; reason?: string };
}

/** Builds fastify's error handler; `bodyLimit` is quoted in 413 answers. */
export function makeErrorHandler(bodyLimit: number) {
  return function handleError(
    err: FastifyError,
    request: FastifyRequest,
    reply: FastifyReply,
  ): FastifyReply {
    const usherError = toUsherError(err, request, bodyLimit);

    // A 500 is a bug and gets the stack. Other 5xx (store trouble, a
    // shutdown) are conditions the broker logs where they arise; 4xx are
    // the client's and routine. So is a 503 OVERLOADED: shedding at
    // critical refuses hundreds of publishes a second, the level change is
    // logged once (broker.ts), and a line per refusal was a synchronous
    // write to stdout each, paid while the broker is busiest.
    if (usherError.status === 500) {
      request.log.error({ err }, 'request failed');
    } else if (usherError.status > 500 && !(usherError instanceof LoadRefusalError)) {
      request.log.warn({ code: usherError.code }, 'request not served');
    } else {
      request.log.debug(
        { code: usherError.code, field: usherError.field },
        'request refused',
      );
    }

    if (usherError instanceof LoadRefusalError) {
      reply.header('retry-after', String(usherError.retryAfterSeconds));
    }
    return reply.code(usherError.status).send(toAnswer(usherError));
  };
}

/** Fastify's not-found handler: every unknown route is a coded 404. */
export function handleNotFound(
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const err = new RouteNotFoundError(request.method, request.url);
  return reply.code(err.status).send(toAnswer(err));
}

export function toAnswer(err: UsherError): ErrorAnswer {
  const error: ErrorAnswer['error'] = { code: err.code, message: err.message };
  if (err.field !== undefined && err.field !== '') error.field = err.field;
  // A refusal under load says how loaded and why, so a producer can tell
  // a full queue from a broker shedding work (docs/errors.md).
  if (err instanceof LoadRefusalError) {
    error.level = err.level;
    error.reason = err.reason;
  }
  return { error };
}

function toUsherError(
  err: FastifyError,
  request: FastifyRequest,
  bodyLimit: number,
): UsherError {
  if (err instanceof UsherError) return err;

  if (err.validation !== undefined) {
    return fromValidation(err.validation, err.validationContext);
  }

  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError(bodyLimit);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError(
        request.headers['content-type'] ?? '',
      );
  }

  // Fastify's other refusals of malformed HTTP (a bad URL, a body shorter
  // than its Content-Length, a connection dropped mid-body) carry a 4xx.
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) return new BadRequestError(err.message);

  return new InternalError(err);
}

// Ajv reports where the problem is as a JSON pointer (`/messages/3/priority`)
// and, for missing or unknown properties, the name in `params`. Clients get
// a dotted path (`messages.3.priority`) and a sentence that quotes the
// value: schemas run with ajv's `verbose` so `data` holds it. Only the first
// problem is reported; ajv stops there (allErrors is off, to bound work).

type ValidationIssue = FastifySchemaValidationError & {
  data?: unknown;
  /** The schema of the place at fault (ajv's `verbose`). */
  parentSchema?: { examples?: unknown[]; required?: string[] };
};

function fromValidation(
  issues: ValidationIssue[],
  context: string | undefined,
): UsherError {
  const issue = pickIssue(issues);
  const path = issue.instancePath.split('/').slice(1).map(unescapePointer);
  const params = issue.params as Record<string, unknown>;

  // A refused password is not echoed into terminals and CI logs.
  const last = path.at(-1) ?? '';
  const got = SECRET_FIELDS.test(last) ? '' : `, got ${describeValue(issue.data)}`;

  let problem: string;
  switch (issue.keyword) {
    case 'required':
      path.push(String(params.missingProperty));
      problem = 'is required';
      break;
    case 'additionalProperties':
      path.push(String(params.additionalProperty));
      problem = 'is not a known field';
      break;
    case 'anyOf':
      problem = `${describeAlternatives(issues, issue.instancePath)}${got}`;
      break;
    case 'type':
      problem = params.type === 'object'
        ? `must be a JSON object${objectShape(issue.parentSchema)}${got}`
        : `${describeIssue(issue)}${got}`;
      break;
    default:
      problem = `${describeIssue(issue)}${got}`;
  }

  const field = path.join('.');
  const subject = field === '' ? `request ${context ?? 'body'}` : field;
  return new InvalidArgumentError(field, `${subject} ${problem}`);
}

/**
 * What the object that belongs here looks like, for a client that sent
 * something else (a bare string as a message): the schema's example, or
 * else its required fields.
 */
function objectShape(schema: ValidationIssue['parentSchema']): string {
  const example = schema?.examples?.[0];
  if (example !== undefined) return ` such as ${JSON.stringify(example)}`;
  const required = schema?.required ?? [];
  return required.length > 0 ? ` with ${listed(required)}` : '';
}

// With anyOf (nullable fields) ajv lists each branch's failure before the
// anyOf failure itself; the summary names the branches instead.
function pickIssue(issues: ValidationIssue[]): ValidationIssue {
  const anyOf = issues.find((issue) => issue.keyword === 'anyOf');
  return anyOf ?? issues[0];
}

function describeAlternatives(issues: ValidationIssue[], at: string): string {
  const branches = issues
    .filter((issue) => issue.instancePath === at && issue.keyword !== 'anyOf');
  if (branches.length === 0) return 'must be valid';
  // A choice of fixed values ({ const } branches): name them, not "must be
  // equal to constant" once a branch.
  if (branches.every((issue) => issue.keyword === 'const')) {
    return `must be one of ${listed(branches.map((issue) => issue.params.allowedValue))}`;
  }
  return branches.map(describeIssue).join(' or ');
}

// Ajv's sentence, with the allowed values where it leaves them out.
function describeIssue(issue: ValidationIssue): string {
  const params = issue.params as { allowedValue?: unknown; allowedValues?: unknown[] };
  if (issue.keyword === 'const') return `must be ${JSON.stringify(params.allowedValue)}`;
  if (issue.keyword === 'enum' && params.allowedValues !== undefined) {
    return `must be one of ${listed(params.allowedValues)}`;
  }
  return issue.message ?? 'is invalid';
}

const listed = (values: unknown[]) => values.map((value) => JSON.stringify(value)).join(', ');

const SECRET_FIELDS = /password|secret|token/i;

function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    return value.length <= 40
      ? JSON.stringify(value)
      : `${JSON.stringify(value.slice(0, 40))}... (${value.length} chars)`;
  }
  if (Array.isArray(value)) return `an array of ${value.length} items`;
  if (value !== null && typeof value === 'object') return 'an object';
  return String(value);
}

function unescapePointer(segment: string): string {
  return segment.replaceAll('~1', '/').replaceAll('~0', '~');
}
