// src/util/duration.ts: the duration and size syntax of CLI flags.
// (Kept under test/cli/ with the CLI that uses it; it mirrors src/util/.)

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { InvalidArgumentError } from '../../src/errors.js';
import {
  formatDuration,
  formatSize,
  parseDuration,
  parseSize,
} from '../../src/util/duration.js';

describe('parseDuration', () => {
  const cases: Array<[string, number]> = [
    ['0', 0],
    ['1500', 1500],
    ['250ms', 250],
    ['5s', 5_000],
    ['1.5s', 1_500],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['1m30s', 90_000],
    ['1h0m5s', 3_605_000],
    ['  5s ', 5_000],
  ];
  for (const [text, ms] of cases) {
    it(`reads "${text}" as ${ms}ms`, () => {
      assert.equal(parseDuration(text), ms);
    });
  }

  for (const text of ['', 'abc', '5x', '5 s', '-5s', 's', '5s5', '1.5', '1e3', 'ms']) {
    it(`refuses "${text}", quoting it`, () => {
      assert.throws(
        () => parseDuration(text, '--delay'),
        (err: unknown) => {
          assert.ok(err instanceof InvalidArgumentError);
          assert.equal(err.code, 'INVALID_ARGUMENT');
          assert.equal(err.field, '--delay');
          assert.ok(err.message.includes(`"${text}"`), err.message);
          return true;
        },
      );
    });
  }

  it('refuses a duration past the safe integers', () => {
    assert.throws(() => parseDuration('99999999999999999999d'), /too large/);
  });
});

describe('parseSize', () => {
  const cases: Array<[string, number]> = [
    ['0', 0],
    ['1024', 1024],
    ['512B', 512],
    ['512KiB', 512 * 1024],
    ['16MiB', 16 * 1024 * 1024],
    ['16mib', 16 * 1024 * 1024],
    ['1GiB', 1024 ** 3],
    ['1.5KiB', 1536],
    ['2MB', 2_000_000],
    ['500 KB', 500_000],
  ];
  for (const [text, bytes] of cases) {
    it(`reads "${text}" as ${bytes} bytes`, () => {
      assert.equal(parseSize(text), bytes);
    });
  }

  for (const text of ['', 'MiB', '16XB', '-1', '16 MiB extra']) {
    it(`refuses "${text}", quoting it`, () => {
      assert.throws(() => parseSize(text), {
        code: 'INVALID_ARGUMENT',
        message: new RegExp(`invalid size "${text}"`),
      });
    });
  }
});

describe('formatDuration', () => {
  const cases: Array<[number, string]> = [
    [0, '0ms'],
    [250, '250ms'],
    [1_500, '1.5s'],
    [30_000, '30s'],
    [60_000, '1m'],
    [90_000, '1m30s'],
    [3_600_000, '1h'],
    [86_400_000 + 60_000, '1d1m'],
  ];
  for (const [ms, text] of cases) {
    it(`writes ${ms}ms as "${text}", which parses back`, () => {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration(text), ms);
    });
  }
});

describe('formatSize', () => {
  it('uses binary units', () => {
    assert.equal(formatSize(512), '512B');
    assert.equal(formatSize(1536), '1.5KiB');
    assert.equal(formatSize(16 * 1024 * 1024), '16MiB');
  });
});
