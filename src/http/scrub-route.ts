// POST /admin/scrub (`usher scrub`): starts a check of every sealed log
// segment in the background (storage/scrub.ts) and answers at once. A
// scrub runs by itself after each start from a checkpoint; this is for an
// operator who wants the log checked now, after a disk reported errors,
// or on a schedule of their own (cron, as ZFS and Ceph scrubs are run):
// the broker keeps no timer for it, since a whole-log read is a choice of
// when to spend disk bandwidth that the operator knows better. What it
// finds shows in /healthz (store.corruptRegions, scrubDamagedMessages)
// and the metrics, and in the log.

import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';

import type { BrokerApi } from '../broker/types.js';
import { documented } from './route-schema.js';

const ScrubAnswer = Type.Object({
  started: Type.Boolean({ description: 'false: a scrub already runs (it goes on), or none can' }),
});

export function registerScrubRoute(app: FastifyInstance, broker: BrokerApi): void {
  app.post(
    '/admin/scrub',
    {
      schema: documented({
        operationId: 'scrub',
        summary: 'Check every sealed log segment for damage, in the background',
        tags: ['admin'],
        response: { 202: ScrubAnswer },
      }),
    },
    async (_request, reply) => {
      reply.code(202);
      return { started: broker.scrub?.() ?? false };
    },
  );
}
