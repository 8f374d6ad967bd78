// `usher bench` against a real `usher serve` process: over HTTP, with the
// broker's CPU read from its /metrics; and `--calibrate`, whose file
// `usher plan` then takes.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { checkCalibration } from '../../src/plan/calibration.js';
import { USHER_BIN, startUsher, type UsherServer } from '../client/usher-process.js';
import { tempDir } from '../helpers.js';

function usher(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [USHER_BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('usher bench against usher serve', () => {
  let server: UsherServer;
  const dir = tempDir('usher-bench-real-');

  before(async () => {
    server = await startUsher();
  });

  after(async () => {
    await server.stop();
    dir.remove();
  });

  it('runs over HTTP with every message back once and the broker CPU beside ours', async () => {
    const run = await usher([
      '--url', server.url, 'bench', '--count', '600', '--producers', '2', '--consumers', '2',
      '--priority-mix', '0:2,9:1', '--nack-share', '0.05', '--json', '-', '--quiet',
    ]);
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.protocol, 'http');
    assert.equal(result.published, 600);
    assert.equal(result.consumed, 600);
    assert.equal(result.lost, 0);
    assert.equal(result.duplicated, 0);
    assert.ok(result.nacked > 0);
    assert.equal(
      result.reorderedByDesign,
      'expected: priorities jump the queue, nacked messages come back later',
    );
    assert.ok(result.cpu.brokerSeconds !== null, 'broker CPU from /metrics');
    for (const key of ['p50', 'p95', 'p99', 'max']) {
      assert.equal(typeof result.latencyMs[key], 'number');
    }
    assert.ok(result.publishRate > 0 && result.consumeRate > 0);
  });

  it('writes a calibration that usher plan takes', async () => {
    const file = join(dir.path, 'calibration.json');
    const run = await usher(['bench', '--calibrate', file, '--count', '500']);
    assert.equal(run.status, 0, run.stderr);
    const calibration = checkCalibration(JSON.parse(readFileSync(file, 'utf8')), file);
    // 500 messages of 128 B and of 4 KiB on disk: at least the bodies.
    assert.ok(calibration.diskBytesPerMessage.perByte > 0.9, JSON.stringify(calibration));
    assert.ok(calibration.fsyncsPerSecond > 0);
    // 500 messages are a few ticks of broker CPU: the figures are marked rough.
    assert.match(run.stderr, /warning: a phase used only \d+ CPU ticks .* for 500 messages/);
    assert.match(calibration.notes ?? '', /Rough: /);

    const plan = await usher([
      'plan', '--rate', '100', '--size', '1KiB', '--calibration', file, '--json',
    ]);
    assert.equal(plan.status, 0, plan.stderr);
    assert.ok(JSON.parse(plan.stdout).diskBytes > 100 * 3600 * 1024);
  });
});

describe('usher bench output paths', () => {
  const dir = tempDir('usher-bench-out-');
  after(() => dir.remove());

  it('refuses an unwritable --json, --report or --calibrate before running', async () => {
    const file = join(dir.path, 'a-file');
    writeFileSync(file, 'x');
    // Port 9 on loopback: nothing is contacted, the paths are checked first.
    const url = 'http://127.0.0.1:9';
    const cases: [string[], RegExp][] = [
      [['--json', join(file, 'out.json')], /^usher: --json .*out\.json: cannot create folder .*a-file: a file is in the way\n$/],
      [['--json', dir.path], /^usher: --json .*: is a folder, not a file\n$/],
      [['--report', file], /^usher: --report .*a-file: (cannot create folder .*a-file: a file is in the way|.*is not a folder)\n$/],
      [['--calibrate', join(file, 'c.json')], /^usher: --calibrate .*c\.json: cannot create folder/],
    ];
    for (const [flags, expected] of cases) {
      const run = await usher(['--url', url, 'bench', '--count', '10', '--quiet', ...flags]);
      assert.equal(run.status, 2, run.stderr);
      assert.match(run.stderr, expected);
    }
  });

  it('creates missing parent folders for --json as for --report', async () => {
    const { prepareOutputs } = await import('../../src/bench/outputs.js');
    const json = join(dir.path, 'deep', 'er', 'result.json');
    const report = join(dir.path, 'reports', 'one');
    await prepareOutputs({ json, report });
    assert.ok(statSync(join(dir.path, 'deep', 'er')).isDirectory());
    assert.ok(statSync(report).isDirectory());
  });
});
