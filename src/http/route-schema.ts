// What every route declares besides its handler: request and answer
// schemas plus the words /openapi.json shows, and two small request fixes
// that run before validation.

import type { FastifyRequest, FastifySchema } from 'fastify';
import type { TSchema } from 'typebox';

import { ErrorBody } from './schemas.js';

export interface DocumentedSchema extends FastifySchema {
  /** Stable name of the operation for generated clients. */
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  /** Content type of a 200 answer that is not JSON (it has no schema). */
  produces?: string;
  params?: TSchema;
  querystring?: TSchema;
  body?: TSchema;
  response?: Record<string, TSchema>;
}

/** A route schema whose 4xx and 5xx answers are the error envelope. */
export function documented(schema: DocumentedSchema): DocumentedSchema {
  if (schema.produces !== undefined) return schema;
  return {
    ...schema,
    response: { '4xx': ErrorBody, '5xx': ErrorBody, ...schema.response },
  };
}

/**
 * For routes whose body fields are all optional: no body at all (or an
 * empty one) counts as `{}`, so `PUT /queues/orders` needs nothing more.
 */
export async function emptyBodyAsObject(request: FastifyRequest) {
  if (request.body === undefined) request.body = {};
}

const DIGITS = /^\d{1,15}$/;

/**
 * Query strings carry text; turns digit strings into numbers so the
 * querystring schema checks them as integers. Only the query is coerced:
 * request bodies are JSON and must send numbers as numbers.
 */
export async function integerQuery(request: FastifyRequest) {
  const query = request.query as Record<string, unknown>;
  for (const key of Object.keys(query)) {
    const value = query[key];
    if (typeof value === 'string' && DIGITS.test(value)) {
      query[key] = Number(value);
    }
  }
}
