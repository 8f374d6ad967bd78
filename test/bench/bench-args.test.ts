// The benchmarks' flags: --help lists them, a wrong one is refused in one
// line that names it (it was node's stack trace), before any work starts.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const BENCH = fileURLToPath(new URL('../../bench/topology-binds.js', import.meta.url));

function run(...flags: string[]) {
  return spawnSync(process.execPath, [BENCH, ...flags], { encoding: 'utf8', timeout: 20_000 });
}

test('--help lists every flag with its default and exits 0', () => {
  const result = run('--help');
  assert.equal(result.status, 0);
  assert.match(result.stdout, /^usage: node dist\/bench\/topology-binds\.js \[flags\]/);
  assert.match(result.stdout, /--binds <value>  \(default 10000\)/);
  assert.match(result.stdout, /--rabbitmq\n/);
});

test('an unknown flag is refused by name, with the usage, exit 2', () => {
  const result = run('--bindz', '5');
  assert.equal(result.status, 2);
  assert.match(result.stderr, /^Unknown option '--bindz'/);
  assert.match(result.stderr, /usage: node dist\/bench\/topology-binds\.js/);
  assert.doesNotMatch(result.stderr, /at parseArgs|node:internal/);
});
