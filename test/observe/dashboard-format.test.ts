// The dashboard's wording helpers (dashboard/lib.js), loaded as the
// browser loads them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

const libUrl = new URL('../../../dashboard/lib.js', import.meta.url);

describe('dashboard wording', () => {
  it('says 1 attempt, 2 attempts', async () => {
    const { plural } = await import(libUrl.href);
    assert.equal(plural('1', 'attempt'), '1 attempt');
    assert.equal(plural(2, 'attempt'), '2 attempts');
    assert.equal(plural(undefined, 'attempt'), '? attempts');
  });

  it('shows uptime in days, hours, minutes, seconds', async () => {
    const { humanDuration } = await import(libUrl.href);
    assert.equal(humanDuration(0), '0s');
    assert.equal(humanDuration(42_000), '42s');
    assert.equal(humanDuration(303_000), '5m 3s');
    assert.equal(humanDuration(3_600_000), '1h 0m');
    assert.equal(humanDuration(3 * 86_400_000 + 4 * 3_600_000 + 5000), '3d 4h');
  });
});
