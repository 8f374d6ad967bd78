// `usher serve` admission flags and config file, and `usher status`
// reporting the level, against a real server process.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { eventually, runUsher, startUsher, type UsherServer } from '../client/usher-process.js';
import { tempDir } from '../helpers.js';

let server: UsherServer;
const dir = tempDir('usher-config-');

before(async () => {
  // The file sets pressure; the flag sets critical; both must apply.
  const config = join(dir.path, 'usher.json');
  writeFileSync(config, JSON.stringify({ pressureBacklog: 3, memoryBudget: '64GiB' }));
  server = await startUsher(['--config', config, '--critical-backlog', '6']);
});

after(async () => {
  await server?.stop();
  dir.remove();
});

async function status(): Promise<{ status: string; admission: Record<string, unknown> }> {
  const result = await runUsher(['status', '--json'], { url: server.url });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

describe('usher status', () => {
  it('reports the admission level as the backlog crosses the thresholds', async () => {
    const first = await status();
    assert.equal(first.status, 'ok');
    assert.equal(first.admission.level, 'normal');
    assert.equal(first.admission.memoryBudgetBytes, 64 * 1024 ** 3);

    await runUsher(['queue', 'create', 'q'], { url: server.url });
    for (let i = 0; i < 6; i++) {
      const sent = await runUsher(['publish', 'q', `m${i}`, '--priority', '9'], { url: server.url });
      assert.equal(sent.code, 0, sent.stderr);
    }
    await eventually(async () => assert.equal((await status()).admission.level, 'critical'));

    const refused = await runUsher(['publish', 'q', 'low'], { url: server.url });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /OVERLOADED|critical/);

    const text = await runUsher(['status'], { url: server.url });
    assert.match(text.stdout, /level\s+critical/);
    // When the level last changed, as a date, not epoch ms.
    assert.match(text.stdout, /admission\.since\s+\d{4}-\d\d-\d\dT[\d:.]+Z/);
  });

  it('starts a scrub of the log with `usher scrub`', async () => {
    const result = await runUsher(['scrub'], { url: server.url });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^scrub started/);
    await eventually(async () => {
      const { store } = (await status()) as unknown as { store: Record<string, number> };
      assert.equal(store.scrubsCompleted, 1);
    });
    const text = await runUsher(['status'], { url: server.url });
    assert.match(text.stdout, /store\.corruptRegions\s+0/);
    assert.match(text.stdout, /store\.scrubsCompleted\s+1/);
  });

  it('refuses an unknown config setting with a clear error', async () => {
    const config = join(dir.path, 'bad.json');
    writeFileSync(config, JSON.stringify({ pressureBacklogs: 3 }));
    const result = await runUsher(['serve', '--config', config, '--port', '0', '--amqp-port', '-1']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /unknown setting "pressureBacklogs"/);
  });
});
