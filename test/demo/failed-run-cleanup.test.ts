// `usher demo ticketing --delete-queues` leaves no queues behind when the
// run fails: with an --amqp URL nobody answers it used to exit 1 and leave
// its six queues (new-user session).

import assert from 'node:assert/strict';
import { it } from 'node:test';

import { closedPort, runUsher, useUsherServer } from '../client/usher-process.js';

const cli = useUsherServer();

it('deletes its queues when the run fails', { timeout: 60_000 }, async () => {
  const amqp = `amqp://guest:guest@127.0.0.1:${await closedPort()}`;
  const result = await runUsher(
    ['demo', 'ticketing', '--amqp', amqp, '--buyers', '10', '--delete-queues'],
    { url: cli.server().url },
  );
  assert.equal(result.code, 1, result.stderr);

  const queues = JSON.parse((await cli.run(['queue', 'list', '--json'])).stdout) as
    Array<{ name: string }>;
  assert.deepEqual(queues.filter((queue) => queue.name.startsWith('tickets.')), []);
});
