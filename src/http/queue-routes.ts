// Routes that manage queues as a whole: declare, inspect, list, purge,
// delete, and redrive a dead-letter queue back to its sources.

import type { FastifyInstance } from 'fastify';

import { maySee } from '../auth/permissions.js';
import type { BrokerApi } from '../broker/types.js';
import { publishCheck } from './auth-hook.js';
import { documented, emptyBodyAsObject } from './route-schema.js';
import {
  Purged,
  QueueInfo,
  QueueList,
  QueueParams,
  QueueSettingsInput,
  RedriveRequest,
  Redriven,
} from './schemas.js';

const tags = ['queues'];

export function registerQueueRoutes(
  app: FastifyInstance,
  broker: BrokerApi,
): void {
  app.get(
    '/queues',
    {
      schema: documented({
        operationId: 'listQueues',
        summary: 'List every queue with its settings and stats',
        tags,
        response: { 200: QueueList },
      }),
    },
    // Only the queues the caller may do something with.
    async (request) => ({
      queues: broker
        .listQueues()
        .filter((queue) => request.principal !== null && maySee(request.principal, queue.name)),
    }),
  );

  app.put<{ Params: QueueParams; Body: QueueSettingsInput }>(
    '/queues/:name',
    {
      schema: documented({
        operationId: 'declareQueue',
        summary: 'Declare a queue',
        description:
          '201 when created; 200 when it exists, after changing the ' +
          'settings named (settings left out keep their current value, ' +
          'or take the defaults on a new queue); 409 QUEUE_EXISTS when ' +
          'asked to change fifo. No body at all is allowed.',
        tags,
        params: QueueParams,
        body: QueueSettingsInput,
        response: { 200: QueueInfo, 201: QueueInfo },
      }),
      preValidation: emptyBodyAsObject,
    },
    async (request, reply) => {
      const { created, queue } = await broker.createQueue(
        request.params.name,
        request.body,
      );
      return reply.code(created ? 201 : 200).send(queue);
    },
  );

  app.get<{ Params: QueueParams }>(
    '/queues/:name',
    {
      schema: documented({
        operationId: 'getQueue',
        summary: "A queue's settings and stats",
        tags,
        params: QueueParams,
        response: { 200: QueueInfo },
      }),
    },
    async (request) => broker.getQueue(request.params.name),
  );

  app.delete<{ Params: QueueParams }>(
    '/queues/:name',
    {
      schema: documented({
        operationId: 'deleteQueue',
        summary: 'Delete a queue and its messages',
        tags,
        params: QueueParams,
      }),
    },
    async (request, reply) => {
      await broker.deleteQueue(request.params.name);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: QueueParams }>(
    '/queues/:name/purge',
    {
      schema: documented({
        operationId: 'purgeQueue',
        summary: "Remove a queue's messages",
        tags,
        params: QueueParams,
        response: { 200: Purged },
      }),
    },
    async (request) => broker.purgeQueue(request.params.name),
  );

  app.post<{ Params: QueueParams; Body: RedriveRequest }>(
    '/queues/:name/redrive',
    {
      schema: documented({
        operationId: 'redrive',
        summary: 'Move dead-lettered messages back to be processed again',
        description:
          'Without "to", each message returns to the queue it died in. ' +
          'A queue that no queue dead-letters into is refused (409 ' +
          'NOT_DEAD_LETTER_QUEUE: its messages may be live work) unless ' +
          '"anyQueue" is true.',
        tags,
        params: QueueParams,
        body: RedriveRequest,
        response: { 200: Redriven },
      }),
      preValidation: emptyBodyAsObject,
    },
    async (request) => {
      const { anyQueue, ...options } = request.body;
      return broker.redrive(
        request.params.name,
        { ...options, deadLettersOnly: anyQueue !== true },
        // Without `to` the queues to publish to are known only message by message.
        publishCheck(request.principal, 'to'),
      );
    },
  );
}
