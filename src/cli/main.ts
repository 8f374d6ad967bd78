// The `usher` command's entry: bin/usher imports this module, which runs
// the CLI on the process's arguments. Import program.ts to build the
// program without running it.

import { run } from './program.js';

process.exitCode = await run(process.argv);
