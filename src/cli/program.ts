// Builds the `usher` program from the command registry and runs it,
// turning every failure into one `usher: <message>` line on stderr and an
// exit status: 2 for a usage mistake, 1 for a broker or network failure.

import { readFileSync } from 'node:fs';

import { Command, CommanderError, Option } from 'commander';

import { UsherClientError } from '../client/index.js';
import { UsherError } from '../errors.js';
import {
  CliError,
  DEFAULT_URL,
  UsageError,
  createCli,
} from './context.js';
import { COMMAND_GROUPS } from './registry.js';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function buildProgram(): Command {
  const program = new Command('usher')
    .description('Usher, a durable message broker')
    .version(packageVersion())
    .addOption(
      new Option('--url <url>', 'broker URL')
        .env('USHER_URL')
        .default(DEFAULT_URL),
    )
    .addOption(new Option('--user <name>', 'user to log in as').env('USHER_USER'))
    .addOption(
      new Option('--password <password>', "the user's password").env('USHER_PASSWORD'),
    )
    .addOption(
      new Option('--token <token>', 'API token instead of a user')
        .env('USHER_TOKEN')
        .hideHelp(),
    )
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      // Commander's own errors read `error: unknown option '--x'`.
      outputError: (text, write) =>
        write(`usher: ${text.replace(/^error: /, '')}`),
    });

  // Set before adding commands: subcommands copy these settings.
  const cli = createCli(program);
  for (const group of COMMAND_GROUPS) group.register(program, cli);
  return program;
}

/** Runs the CLI; answers the exit status. */
export async function run(argv: string[]): Promise<number> {
  ignoreClosedStdout();
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return report(err);
  }
}

function report(err: unknown): number {
  // Commander has already printed its message (help, usage mistakes).
  if (err instanceof CommanderError) {
    return err.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`usher: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (
    err instanceof UsherClientError ||
    err instanceof UsherError ||
    err instanceof CliError
  ) {
    process.stderr.write(`usher: ${err.message}\n`);
    return EXIT_FAILURE;
  }
  // Anything else is a bug in usher: keep the stack for the report.
  const detail = err instanceof Error ? err.stack : String(err);
  process.stderr.write(`usher: unexpected error: ${detail}\n`);
  return EXIT_FAILURE;
}

/** `usher ... | head` closes stdout early; that is not an error. */
function ignoreClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

function packageVersion(): string {
  // dist/src/cli/program.js -> package.json at the checkout's root.
  const url = new URL('../../../package.json', import.meta.url);
  try {
    const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}
