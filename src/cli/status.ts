// `usher status`: the broker's health, including its admission level
// (normal, pressure, critical) and why, and damage found in its log, from
// GET /healthz.

import type { Command } from 'commander';

import type { Cli, CommandGroup } from './context.js';
import { keyValues } from './output.js';

export const statusCommands: CommandGroup = {
  register(program: Command, cli: Cli): void {
    program
      .command('status')
      .description("show the broker's health and admission level")
      .option('--json', 'print the health as JSON')
      .action(async (flags: { json?: boolean }) => {
        const health = await cli.client().health();
        if (flags.json) return cli.out(JSON.stringify(health));

        const admission = health.admission as Record<string, unknown> | undefined;
        const pairs: Array<[string, unknown]> = [
          ['status', health.status],
          ['uptimeMs', health.uptimeMs],
          ['queues', health.queues],
        ];
        if (admission !== undefined) {
          for (const [key, value] of Object.entries(admission)) {
            // Times as the broker sends them are epoch ms; shown as dates.
            const shown = key === 'since' && typeof value === 'number'
              ? new Date(value).toISOString()
              : value;
            pairs.push([key === 'level' || key === 'reason' ? key : `admission.${key}`, shown]);
          }
        }
        // Damage in the log is what an operator must not miss (docs/storage.md).
        const store = health.store as Record<string, unknown> | undefined;
        for (const key of ['corruptRegions', 'scrubDamagedMessages', 'scrubsCompleted']) {
          if (store?.[key] !== undefined) pairs.push([`store.${key}`, store[key]]);
        }
        for (const line of keyValues(pairs)) cli.out(line);
      });

    program
      .command('scrub')
      .description("check the broker's log segments for damage, in the background")
      .action(async () => {
        const started = await cli.admin().scrub();
        cli.out(started
          ? 'scrub started; `usher status` shows store.corruptRegions when it ends'
          : 'a scrub is already running');
      });
  },
};
