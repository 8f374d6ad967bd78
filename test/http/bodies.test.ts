// The body rules of docs/http-api.md, one function at a time.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  bodyFromWire,
  withBodyJson,
  findHeader,
  isJsonContentType,
} from '../../src/http/bodies.js';

/** The body fields of a message as the API shows them. */
function bodyToWire(body: Buffer, headers: Record<string, string>): unknown {
  return JSON.parse(withBodyJson({}, body, headers));
}

describe('bodyFromWire', () => {
  it('stores a string as UTF-8 and leaves headers alone', () => {
    const headers = { a: 'b' };
    const stored = bodyFromWire({ body: 'é✓', headers });

    assert.deepEqual([...stored.body], [0xc3, 0xa9, 0xe2, 0x9c, 0x93]);
    assert.equal(stored.headers, headers);
  });

  it('stores other JSON values as JSON text with a content-type', () => {
    const stored = bodyFromWire({ body: { a: [1, null] } });

    assert.equal(stored.body.toString(), '{"a":[1,null]}');
    assert.deepEqual(stored.headers, { 'content-type': 'application/json' });
  });

  it('keeps a content-type given in any case', () => {
    const stored = bodyFromWire({
      body: 1,
      headers: { 'CONTENT-TYPE': 'text/plain' },
    });

    assert.deepEqual(stored.headers, { 'CONTENT-TYPE': 'text/plain' });
  });

  it('decodes base64, padded or not', () => {
    const bytes = (bodyBase64: string) => [
      ...bodyFromWire({ bodyBase64 }).body,
    ];

    assert.deepEqual(bytes('AAH/'), [0, 1, 255]);
    assert.deepEqual(bytes('AAE='), [0, 1]);
    assert.deepEqual(bytes('AAE'), [0, 1]);
    assert.deepEqual(bytes(''), []);
  });

  it('refuses base64 that Buffer.from would quietly mangle', () => {
    for (const text of ['A', 'A===', 'AA=A', 'AA AA', '-_-_', 'AAAA=']) {
      assert.throws(
        () => bodyFromWire({ bodyBase64: text }, 'messages.2'),
        (err: Error & { field?: string }) =>
          err.field === 'messages.2.bodyBase64',
        text,
      );
    }
  });

  it('refuses neither and both, naming the place in the batch', () => {
    for (const input of [{}, { body: 1, bodyBase64: 'AA==' }]) {
      assert.throws(
        () => bodyFromWire(input, 'messages.0'),
        (err: Error & { code?: string; field?: string }) =>
          err.code === 'INVALID_ARGUMENT' && err.field === 'messages.0.body',
      );
    }
  });

  it('takes null as a body (JSON null), not as no body', () => {
    const stored = bodyFromWire({ body: null });

    assert.equal(stored.body.toString(), 'null');
  });
});

describe('withBodyJson', () => {
  const json = { 'content-type': 'application/json' };

  it('parses bytes labelled JSON', () => {
    assert.deepEqual(bodyToWire(Buffer.from('[1,{"a":2}]'), json), {
      body: [1, { a: 2 }],
    });
  });

  it('shows UTF-8 text as a string, labelled or not', () => {
    assert.deepEqual(bodyToWire(Buffer.from('{oops'), json), { body: '{oops' });
    assert.deepEqual(bodyToWire(Buffer.from('[1]'), {}), { body: '[1]' });
    assert.deepEqual(bodyToWire(Buffer.alloc(0), {}), { body: '' });
  });

  it('shows other bytes as base64, even when labelled JSON', () => {
    assert.deepEqual(bodyToWire(Buffer.from([0x22, 0xff, 0x22]), json), {
      bodyBase64: 'Iv8i',
    });
  });

  it('is the inverse of bodyFromWire for every kind of body', () => {
    const inputs = [
      { body: 'text' },
      { body: { nested: { list: [true, 1.5, 'x'] } } },
      { body: 0 },
      { bodyBase64: Buffer.from([0, 0xff, 0x10]).toString('base64') },
    ];
    for (const input of inputs) {
      const stored = bodyFromWire(input);
      assert.deepEqual(bodyToWire(stored.body, stored.headers ?? {}), input);
    }
  });
});

describe('headers', () => {
  it('recognises application/json with parameters and any case', () => {
    assert.equal(isJsonContentType('application/json'), true);
    assert.equal(isJsonContentType('Application/JSON; charset=utf-8'), true);
    assert.equal(isJsonContentType('application/jsonl'), false);
    assert.equal(isJsonContentType('text/json'), false);
    assert.equal(isJsonContentType(undefined), false);
  });

  it('finds a header whatever its case', () => {
    assert.equal(findHeader({ 'Content-Type': 'x' }, 'content-type'), 'x');
    assert.equal(findHeader({ other: 'y' }, 'content-type'), undefined);
    assert.equal(findHeader(undefined, 'content-type'), undefined);
  });
});
