// The AMQP compatibility suite (issue #4): one set of cases, run with
// amqplib and with @cloudamqp/amqp-client, against Usher and against a
// real RabbitMQ (Debian rabbitmq-server, started here through
// bench/rabbitmq.sh on loopback), so the cases are themselves checked
// against the reference broker.
//
// Where Usher differs on purpose a case runs on one target only and
// says why (shown as the skip reason). Where Usher differs and should
// not, the case is marked `usherTodo`: it still runs on Usher, and its
// failure there is reported as TODO with the reason. Once Usher passes
// it, the case fails until the mark is removed, so the marks stay a true
// list of differences.
//
// Cases live in test/amqp/compat/cases-*.ts; clients.ts adapts the two
// libraries, targets.ts starts the brokers, harness.ts has the helpers.

import { after, before, describe, it } from 'node:test';

import { CLIENTS, type Client } from './compat/clients.js';
import { consumerPriorityCases } from './compat/cases-consumer-priority.js';
import { directReplyCases } from './compat/cases-direct-reply.js';
import { featureCases } from './compat/cases-features.js';
import { lifecycleCases } from './compat/cases-lifecycle.js';
import { overflowCases } from './compat/cases-overflow.js';
import { senderSelectedCases } from './compat/cases-sender-selected.js';
import { txCases } from './compat/cases-tx.js';
import { consumeCases, publishCases } from './compat/cases-messages.js';
import { connectionCases, exchangeCases, queueCases } from './compat/cases-topology.js';
import { CASE_TIMEOUT_MS, type Case, Ctx } from './compat/harness.js';
import {
  type RunningTarget,
  type TargetName,
  startRabbit,
  startUsher,
} from './compat/targets.js';

const CASES: readonly Case[] = [
  ...connectionCases,
  ...queueCases,
  ...exchangeCases,
  ...publishCases,
  ...consumeCases,
  ...lifecycleCases,
  ...overflowCases,
  ...featureCases,
  ...senderSelectedCases,
  ...txCases,
  ...directReplyCases,
  ...consumerPriorityCases,
];

const TARGETS: ReadonlyArray<{ name: TargetName; start(): Promise<RunningTarget> }> = [
  { name: 'usher', start: startUsher },
  { name: 'rabbitmq', start: startRabbit },
];

/** Cases of one client on one target that run at once. */
const CASE_CONCURRENCY = 8;

const TARGET_LABEL: Record<TargetName, string> = { usher: 'Usher', rabbitmq: 'RabbitMQ' };

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n').find((line) => line.trim() !== '')?.trim() ?? '';
}

/** Why `c` does not run for this target and client, if it does not. */
function skipReason(c: Case, target: TargetName, client: Client['name']): string | undefined {
  if (c.onlyTarget !== undefined && c.onlyTarget.target !== target) {
    return `${TARGET_LABEL[c.onlyTarget.target]}-only: ${c.onlyTarget.reason}`;
  }
  if (c.onlyClient !== undefined && c.onlyClient.client !== client) {
    return `${c.onlyClient.client}-only: ${c.onlyClient.reason}`;
  }
  return undefined;
}

// Targets run side by side, and so do the two clients on each, and up
// to CASE_CONCURRENCY cases of each: every case has its own connections
// and names, so only the amq.* built-ins are shared.
describe('AMQP compatibility', { concurrency: true }, () => {
  for (const { name: targetName, start } of TARGETS) {
    describe(TARGET_LABEL[targetName], { concurrency: true }, () => {
      let target: RunningTarget | undefined;

      before(async () => {
        target = await start();
      }, { timeout: 150_000 });

      after(async () => {
        await target?.stop();
      }, { timeout: 90_000 });

      for (const client of CLIENTS) {
        describe(client.name, { concurrency: CASE_CONCURRENCY }, () => {
          CASES.forEach((c, index) => {
            const skip = skipReason(c, targetName, client.name);
            it(c.name, { skip, timeout: CASE_TIMEOUT_MS }, async (t) => {
              const ctx = new Ctx(targetName, client, target!.url, `compat-${client.name}.c${index}`);
              const knownDifference = targetName === 'usher' ? c.usherTodo : undefined;
              try {
                await c.run(ctx);
              } catch (err) {
                if (knownDifference === undefined) throw err;
                t.todo(`Usher differs from RabbitMQ: ${knownDifference}; ${firstLine(err)}`);
                return;
              } finally {
                await ctx.cleanup();
              }
              if (knownDifference !== undefined) {
                throw new Error('Usher now behaves as RabbitMQ here: remove this case\'s ' +
                  `usherTodo ("${knownDifference}")`);
              }
            });
          });
        });
      }
    });
  }
});
