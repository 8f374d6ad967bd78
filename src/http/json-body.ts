// Request bodies: application/json only, read as raw bytes so that bytes
// that are not UTF-8 are refused (INVALID_UTF8) instead of being decoded
// into U+FFFD and stored as something the client never sent.

import { isUtf8 } from 'node:buffer';

import type { FastifyInstance, FastifyRequest } from 'fastify';

import { InvalidJsonError, InvalidUtf8Error } from '../errors.js';

/**
 * Makes application/json the only accepted request body type, limited to
 * `bodyLimit` bytes. Fastify enforces the limit while reading, from the
 * Content-Length or as chunks arrive, so an oversized body is refused
 * before it is buffered whole.
 */
export function registerJsonBody(app: FastifyInstance, bodyLimit: number) {
  // Fastify's own parser guards against __proto__ and constructor.prototype
  // keys; we only put the UTF-8 check and our error codes around it.
  const parseJson = app.getDefaultJsonParser('error', 'error');

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit },
    (request: FastifyRequest, raw: string | Buffer, done) => {
      const bytes = typeof raw === 'string' ? Buffer.from(raw) : raw;

      // An empty body means "no body"; routes whose fields are all
      // optional accept that, the others fail schema validation.
      if (bytes.length === 0) return done(null, undefined);

      if (!isUtf8(bytes)) return done(new InvalidUtf8Error(), undefined);

      const text = bytes.toString('utf8');
      parseJson(request, text, (err, value) => {
        if (err === null) return done(null, value);
        done(new InvalidJsonError(explainJsonError(text)), undefined);
      });
    },
  );
}

// Fastify's parser says only that the body is not JSON. Parsing again,
// on this failure path only, recovers the position; a body that parses
// this time was refused for a prototype-poisoning key.
function explainJsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  return 'it contains a forbidden "__proto__" or "constructor.prototype" key';
}
