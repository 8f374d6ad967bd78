// Every command group of the `usher` CLI, in the order `usher --help`
// lists them. A new group (demo, bench, ...) is one module exporting a
// CommandGroup, added to this list.

import { benchCommands } from '../bench/command.js';
import { demoCommands } from '../demo/command.js';
import { planCommands } from '../plan/command.js';
import { consumeCommands } from './consume.js';
import type { CommandGroup } from './context.js';
import { dlqCommands } from './dlq.js';
import { publishCommands } from './publish.js';
import { queueCommands } from './queue.js';
import { serveCommands } from './serve.js';
import { statusCommands } from './status.js';
import { userCommands } from './users.js';

export const COMMAND_GROUPS: readonly CommandGroup[] = [
  serveCommands,
  statusCommands,
  queueCommands,
  publishCommands,
  consumeCommands,
  dlqCommands,
  userCommands,
  demoCommands,
  benchCommands,
  planCommands,
];
