// GET /openapi.json: one operation per route the server has, in OpenAPI
// 3.0's own schema dialect, built from the schemas that validate requests.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { MAX_PRIORITY } from '../../src/engine/types.js';
import { call, startHttp, type Harness } from './harness.js';

let h: Harness;
// `any`: the document is walked generically, not through its types.
let doc: Record<string, any>;

before(async () => {
  h = await startHttp();
  const answer = await call(h.app, 'GET', '/openapi.json');
  assert.equal(answer.status, 200);
  doc = answer.body;
});

after(async () => {
  await h.close();
});

/** Every object inside `value`, depth first, with its JSON path. */
function* walk(value: unknown, path = '$'): Generator<[string, any]> {
  if (value === null || typeof value !== 'object') return;
  yield [path, value];
  for (const [key, child] of Object.entries(value)) {
    yield* walk(child, `${path}.${key}`);
  }
}

describe('GET /openapi.json', () => {
  it('describes every route the server serves, and only those', () => {
    const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item as object).map(
        (method) => `${method.toUpperCase()} ${path}`,
      ),
    );

    assert.equal(doc.openapi, '3.0.3');
    assert.deepEqual(operations.sort(), [
      'DELETE /admin/tokens/{token}',
      'DELETE /admin/users/{user}',
      'DELETE /queues/{name}',
      'GET /admin/tokens',
      'GET /admin/users',
      'GET /admin/whoami',
      'GET /alerts',
      'GET /dashboard',
      'GET /dashboard/',
      'GET /dashboard/vendor/{file}',
      'GET /dashboard/{file}',
      'GET /events',
      'GET /healthz',
      'GET /metrics',
      'GET /openapi.json',
      'GET /queues',
      'GET /queues/{name}',
      'GET /queues/{name}/messages',
      'POST /admin/scrub',
      'POST /queues/{name}/ack',
      'POST /queues/{name}/extend',
      'POST /queues/{name}/messages',
      'POST /queues/{name}/messages/batch',
      'POST /queues/{name}/nack',
      'POST /queues/{name}/purge',
      'POST /queues/{name}/receive',
      'POST /queues/{name}/redrive',
      'POST /queues/{name}/release',
      'PUT /admin/tokens/{token}',
      'PUT /admin/users/{user}',
      'PUT /admin/users/{user}/password',
      'PUT /admin/users/{user}/permissions',
      'PUT /queues/{name}',
    ]);
  });

  it('gives every operation a unique id and a summary', () => {
    const ids: string[] = [];
    for (const item of Object.values(doc.paths)) {
      for (const op of Object.values(item as Record<string, any>)) {
        ids.push(op.operationId);
        assert.equal(typeof op.summary, 'string');
      }
    }
    assert.equal(new Set(ids).size, ids.length);
  });

  it('uses the 3.0 dialect: no null type, const, patternProperties or examples', () => {
    for (const [path, node] of walk(doc)) {
      assert.notEqual(node.type, 'null', path);
      assert.equal('const' in node, false, path);
      assert.equal('patternProperties' in node, false, path);
      assert.equal('examples' in node, false, path);
    }
    assert.deepEqual(doc.components.schemas.PublishMessage.example, {
      body: { ticket: 'TCKT-1' },
    });
  });

  it('resolves every $ref to a component', () => {
    for (const [path, node] of walk(doc)) {
      if (typeof node.$ref !== 'string') continue;
      const name = node.$ref.replace('#/components/schemas/', '');
      assert.ok(doc.components.schemas[name], `${path} -> ${node.$ref}`);
    }
  });

  it('carries the validating schemas', () => {
    const publish = doc.paths['/queues/{name}/messages'].post;
    const message = doc.components.schemas.PublishMessage;
    const received = doc.components.schemas.ReceivedMessage;
    const peek = doc.paths['/queues/{name}/messages'].get;

    assert.deepEqual(publish.requestBody.content['application/json'].schema, {
      $ref: '#/components/schemas/PublishMessage',
    });
    assert.equal(message.properties.priority.maximum, MAX_PRIORITY);
    assert.equal(message.additionalProperties, false);
    assert.equal(received.properties.group.nullable, true);
    assert.deepEqual(received.properties.headers.additionalProperties, {
      type: 'string',
    });
    assert.deepEqual(
      peek.parameters.map(
        (p: { name: string; in: string }) => `${p.in}:${p.name}`,
      ),
      ['path:name', 'query:limit', 'query:offset'],
    );
    assert.deepEqual(
      doc.components.schemas.PeekedMessage.properties.state.enum,
      ['ready', 'delayed', 'in-flight'],
    );
    const refused = publish.responses['4XX'].content['application/json'];
    assert.deepEqual(refused.schema, { $ref: '#/components/schemas/Error' });
    assert.ok(doc.paths['/queues/{name}'].delete.responses['204']);
  });
});
