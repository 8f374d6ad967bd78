// `./bin/usher` is how the README starts the broker. Its shebang passes
// node the V8 flags the broker needs (why: bin/usher); this checks that
// the shebang still runs on this system and that the flags reach the
// server's process.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { tempDir } from '../helpers.js';

const USHER_BIN = fileURLToPath(new URL('../../../bin/usher', import.meta.url));

test('./bin/usher serve runs through its shebang with the V8 flags', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const server = spawn(USHER_BIN, ['serve', '--data', dir.path, '--port', '0',
    '--amqp-port', '-1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => server.kill('SIGKILL'));

  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening in 20 s:\n${output}`)), 20_000);
    const onData = (text: Buffer) => {
      output += text.toString();
      if (output.includes('usher listening')) {
        clearTimeout(timer);
        resolve();
      }
    };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.on('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)));
  });

  // /proc/PID/cmdline: the arguments, each ended by a NUL.
  const args = readFileSync(`/proc/${server.pid}/cmdline`, 'utf8').split('\0');
  assert.ok(args.includes('--initial-old-space-size=128'), `node ran as: ${args.join(' ')}`);
});
