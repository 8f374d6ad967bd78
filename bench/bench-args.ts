// Command-line flags for the benchmarks: node's parseArgs, with --help
// listing each flag and its default, and a wrong flag answered with one
// line that names it and the usage, not a stack trace.

import { type ParseArgsConfig, parseArgs } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The flags of `process.argv`; `command` is how the bench is run. */
export function benchArgs<T extends Options>(
  command: string,
  options: T,
): ReturnType<typeof parseArgs<{ options: T }>>['values'] {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage(command, options));
    process.exit(0);
  }
  try {
    return parseArgs({ args: argv, options }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage(command, options)}`);
    process.exit(2);
  }
}

function usage(command: string, options: Options): string {
  const lines = Object.entries(options).map(([name, option]) => {
    const value = option.type === 'string' ? ' <value>' : '';
    const told = option.default !== undefined && option.default !== false && option.default !== '';
    const fallback = told ? `  (default ${String(option.default)})` : '';
    return `  --${name}${value}${fallback}`;
  });
  return `usage: ${command} [flags]\n${lines.join('\n')}\n`;
}
