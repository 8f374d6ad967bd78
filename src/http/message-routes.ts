// Routes that move messages: publish (one or a batch), receive with long
// polling, settle leases (ack, nack, extend), and peek without leasing.

import type { FastifyInstance, FastifyReply } from 'fastify';

import { maySee, type Principal } from '../auth/permissions.js';
import type {
  BrokerApi,
  PeekedMessage,
  PublishInput,
  ReceivedMessage,
} from '../broker/types.js';
import {
  AccessRefusedError,
  InvalidArgumentError,
  MessageTooLargeError,
  ReceiptNotFoundError,
} from '../errors.js';
import { bodyFromWire, withBodyJson } from './bodies.js';
import {
  documented,
  emptyBodyAsObject,
  integerQuery,
} from './route-schema.js';
import {
  AckRequest,
  Acked,
  DEFAULT_PEEK,
  ExtendRequest,
  Extended,
  ReleaseRequest,
  Released,
  NackRequest,
  Nacked,
  Peeked,
  PeekQuery,
  PublishBatch,
  PublishMessage,
  PublishResult,
  PublishResults,
  QueueParams,
  Received,
  ReceiveRequest,
} from './schemas.js';

const tags = ['messages'];

export function registerMessageRoutes(
  app: FastifyInstance,
  broker: BrokerApi,
  maxMessageBytes: number,
): void {
  const toInput = (message: PublishMessage, field: string, principal: Principal | null) =>
    toPublishInput(message, field, maxMessageBytes, principal);
  // The queue may be gone by now; then so are the leases.
  const releaseQuietly = (queue: string, receipts: string[]) => {
    try {
      broker.release(queue, receipts);
    } catch {
      // Nothing left to hand back.
    }
  };

  // Long polls in progress. Closing the server waits for every request in
  // flight, so each wait is cut short then and answers with no messages.
  const waits = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const wait of waits) wait.abort();
  });

  app.post<{ Params: QueueParams; Body: PublishMessage }>(
    '/queues/:name/messages',
    {
      schema: documented({
        operationId: 'publish',
        summary: 'Publish a message',
        description:
          'Give exactly one of "body" (any JSON value; a string is stored ' +
          'as its UTF-8 text) and "bodyBase64" (raw bytes).',
        tags,
        params: QueueParams,
        body: PublishMessage,
        response: { 201: PublishResult },
      }),
    },
    async (request, reply) => {
      const input = toInput(request.body, '', request.principal);
      const [result] = await broker.publish(request.params.name, [input]);
      return reply.code(201).send(result);
    },
  );

  app.post<{ Params: QueueParams; Body: PublishBatch }>(
    '/queues/:name/messages/batch',
    {
      schema: documented({
        operationId: 'publishBatch',
        summary: 'Publish up to 1000 messages at once, all or none',
        tags,
        params: QueueParams,
        body: PublishBatch,
        response: { 201: PublishResults },
      }),
    },
    async (request, reply) => {
      const inputs = request.body.messages.map((message, i) =>
        toInput(message, `messages.${i}`, request.principal),
      );
      const results = await broker.publish(request.params.name, inputs);
      return reply.code(201).send({ results });
    },
  );

  app.get<{ Params: QueueParams; Querystring: PeekQuery }>(
    '/queues/:name/messages',
    {
      schema: documented({
        operationId: 'peek',
        summary: 'List messages without leasing them',
        description: 'For inspecting a queue, above all a dead-letter queue: the waiting ' +
          'messages in the order a receive would deliver them, then those in flight.',
        tags,
        params: QueueParams,
        querystring: PeekQuery,
        response: { 200: Peeked },
      }),
      preValidation: integerQuery,
    },
    async (request, reply) => {
      // Ajv fills in the schema's defaults; TypeScript cannot know that.
      const { limit = DEFAULT_PEEK, offset = 0 } = request.query;
      const peeked = broker.peek(request.params.name, { limit, offset });
      return sendMessages(reply, peeked);
    },
  );

  app.post<{ Params: QueueParams; Body: ReceiveRequest }>(
    '/queues/:name/receive',
    {
      schema: documented({
        operationId: 'receive',
        summary: 'Lease up to "max" messages, waiting up to "waitMs"',
        description:
          'Answers as soon as one message is available, or with none ' +
          'when waitMs passes. A client that disconnects ends its wait.',
        tags,
        params: QueueParams,
        body: ReceiveRequest,
        response: { 200: Received },
      }),
      preValidation: emptyBodyAsObject,
    },
    async (request, reply) => {
      const { max = 1, waitMs = 0, visibilityTimeoutMs } = request.body;
      const wait = waitMs > 0 ? abortOnClose(reply) : undefined;
      if (wait !== undefined) waits.add(wait);

      try {
        const messages = await broker.receive(request.params.name, {
          max,
          waitMs,
          visibilityTimeoutMs,
          signal: wait?.signal,
        });
        // The client hung up while its messages were being leased: they
        // would sit unseen until their lease ran out, so hand them back.
        const receipts = messages.map((m) => m.receipt);
        if (wait?.signal.aborted && messages.length > 0) {
          releaseQuietly(request.params.name, receipts);
          return { messages: [] };
        }
        try {
          return sendMessages(reply, messages);
        } catch (err) {
          // Leases of an answer that never left would strand the messages.
          releaseQuietly(request.params.name, receipts);
          throw err;
        }
      } finally {
        if (wait !== undefined) waits.delete(wait);
      }
    },
  );

  app.post<{ Params: QueueParams; Body: AckRequest }>(
    '/queues/:name/ack',
    {
      schema: documented({
        operationId: 'ack',
        summary: 'Settle leases as done',
        description:
          'With "receipts", each result says whether that receipt was a ' +
          'current lease. A single "receipt" that is not is a 404.',
        tags,
        params: QueueParams,
        body: AckRequest,
        response: { 200: Acked },
      }),
    },
    async (request) => {
      const { receipt, receipts } = request.body;
      if ((receipt === undefined) === (receipts === undefined)) {
        throw new InvalidArgumentError(
          'receipt',
          'give exactly one of "receipt" and "receipts", got ' +
            (receipt === undefined ? 'neither' : 'both'),
        );
      }

      const results = await broker.ack(
        request.params.name,
        receipts ?? [receipt as string],
      );
      if (receipt !== undefined && !results[0]) {
        throw seenBy(request.principal, broker.notLeased(request.params.name, receipt));
      }
      return { acked: results.filter(Boolean).length, results };
    },
  );

  app.post<{ Params: QueueParams; Body: NackRequest }>(
    '/queues/:name/nack',
    {
      schema: documented({
        operationId: 'nack',
        summary: 'Give a message back: retry it or dead-letter it',
        description:
          'requeue (default true) retries after "delayMs" or the ' +
          "queue's backoff; requeue false dead-letters it now.",
        tags,
        params: QueueParams,
        body: NackRequest,
        response: { 200: Nacked },
      }),
    },
    async (request) => {
      const { receipt, ...options } = request.body;
      try {
        const result = await broker.nack(request.params.name, receipt, options);
        return { ok: true, ...result };
      } catch (err) {
        throw seenBy(request.principal, err);
      }
    },
  );

  app.post<{ Params: QueueParams; Body: ExtendRequest }>(
    '/queues/:name/extend',
    {
      schema: documented({
        operationId: 'extend',
        summary: 'Make a lease run out "timeoutMs" from now',
        tags,
        params: QueueParams,
        body: ExtendRequest,
        response: { 200: Extended },
      }),
    },
    async (request) => {
      const { receipt, timeoutMs } = request.body;
      try {
        const leaseDeadline = await broker.extend(request.params.name, receipt, timeoutMs);
        return { leaseDeadline };
      } catch (err) {
        throw seenBy(request.principal, err);
      }
    },
  );

  app.post<{ Params: QueueParams; Body: ReleaseRequest }>(
    '/queues/:name/release',
    {
      schema: documented({
        operationId: 'release',
        summary: 'Hand leases back unprocessed',
        description:
          'The messages are ready again at once and no attempt is ' +
          'counted: for messages a consumer received but chose not to ' +
          'start, such as the rest of a FIFO group after a failure.',
        tags,
        params: QueueParams,
        body: ReleaseRequest,
        response: { 200: Released },
      }),
    },
    async (request) => {
      const released = broker.release(request.params.name, request.body.receipts);
      return { released };
    },
  );
}

/**
 * `err` as `principal` may see it: a receipt sent to another queue's path
 * names the queue that holds its lease (ReceiptNotFoundError) only to a
 * caller who may see that queue. Receipts start with a seq and a counter
 * and can be guessed; the name of a queue kept from a user must not come
 * back to one who tries.
 */
function seenBy(principal: Principal | null, err: unknown): unknown {
  if (!(err instanceof ReceiptNotFoundError) || err.leasedBy === undefined) return err;
  if (principal !== null && maySee(principal, err.leasedBy)) return err;
  return new ReceiptNotFoundError(err.receipt, err.queue);
}

function toPublishInput(
  message: PublishMessage,
  field: string,
  maxMessageBytes: number,
  principal: Principal | null,
): PublishInput {
  const { body, headers, ownHeaders } = bodyFromWire(message, field);
  checkUserIdHeader(headers, field, principal);

  // The broker checks the size too, but only here is the message's place
  // in a batch known, to name it in the error.
  if (body.length > maxMessageBytes) {
    const at = field === '' ? 'body' : `${field}.body`;
    throw new MessageTooLargeError(body.length, maxMessageBytes, at);
  }

  const input: PublishInput = { body };
  if (headers !== undefined) input.headers = headers;
  if (ownHeaders !== undefined) input.ownHeaders = ownHeaders;
  if (message.id !== undefined) input.id = message.id;
  if (message.priority !== undefined) input.priority = message.priority;
  if (message.group !== undefined) input.group = message.group;
  if (message.delayMs !== undefined) input.delayMs = message.delayMs;
  if (message.ttlMs !== undefined) input.ttlMs = message.ttlMs;
  return input;
}

/**
 * A `user-id` header is an AMQP consumer's user-id property, which says
 * who published the message: as over AMQP (amqp/user-id.ts, RabbitMQ's
 * rule), it must name the publisher's own login. Without logins (a broker
 * serving HTTP with no authenticator) nothing vouches for anyone, and it
 * is taken as it is.
 */
function checkUserIdHeader(
  headers: Record<string, string> | undefined,
  field: string,
  principal: Principal | null,
): void {
  const userId = headers?.['user-id'];
  if (userId === undefined || principal === null || userId === principal.name) return;
  const at = field === '' ? 'headers.user-id' : `${field}.headers.user-id`;
  throw new AccessRefusedError(
    `${at} is '${userId}' but the request is authenticated as '${principal.name}'; ` +
      'a message may name only its own publisher',
    at,
  );
}

// Node's `close` on the response fires when the answer has been written or
// when the connection went away first; only the second ends the wait.
function abortOnClose(reply: FastifyReply): AbortController {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller;
}

/**
 * Answers `{"messages": [...]}`, written here rather than by the route's
 * serializer so that each body goes out as stored (see withBodyJson).
 */
function sendMessages(
  reply: FastifyReply,
  messages: ReadonlyArray<ReceivedMessage | PeekedMessage>,
): FastifyReply {
  const parts = messages.map(({ body, ...fields }) =>
    withBodyJson(fields, body, fields.headers),
  );
  return reply
    .type('application/json; charset=utf-8')
    .send(`{"messages":[${parts.join(',')}]}`);
}
