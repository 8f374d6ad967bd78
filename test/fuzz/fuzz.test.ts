// The short fuzz run for CI (a few seconds): every corpus seed and a fixed
// number of mutations of them, with fixed seeds so a failure replays, for
// the AMQP frame decoder, the log-record decoder and the HTTP API; plus
// property tests on arbitrary bytes. The long run is `npm run fuzz --
// --minutes N` (scripts/fuzz.mjs).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { PROTOCOL_HEADER } from '../../src/amqp/constants.js';
import { AmqpFrameDecoder } from '../../src/amqp/frame-decoder.js';
import { decodePayload, payloadFits } from '../../src/storage/codec-decode.js';
import { fuzz, type FuzzReport } from './engine.js';
import { amqpTarget, httpTarget, logTarget, readCorpus } from './targets.js';

function assertClean(report: FuzzReport, minimum: number): void {
  const first = report.crashes[0] ?? report.hangs[0];
  assert.equal(
    report.crashes.length + report.hangs.length,
    0,
    first && `${first.error}; input (base64): ${first.input.toString('base64').slice(0, 400)}`,
  );
  assert.ok(report.tried >= minimum, `only ${report.tried} inputs tried`);
  // Bounded memory: nothing an input leaves behind accumulates.
  assert.ok(report.heapMax - report.heapStart < 256 * 2 ** 20, `heap grew to ${report.heapMax}`);
}

describe('fuzzing (short CI run)', () => {
  it('the corpus is there for every target', () => {
    for (const target of ['amqp', 'log', 'http']) {
      assert.ok(readCorpus(target).length >= 4, `${target} corpus`);
    }
  });

  it('the engine reports what a target throws (it can find a bug)', async () => {
    const buggy = {
      name: 'log' as const,
      maxLength: 1024,
      run(input: Buffer) {
        // A planted bug: a length byte of 0xff is not handled.
        if (input.includes(0xff)) throw new Error('planted');
      },
    };
    const report = await fuzz(buggy, { seed: 4, corpus: readCorpus('log'), maxInputs: 3000 });
    assert.ok(report.crashes.length > 0);
    assert.equal(report.crashes[0].error, 'Error: planted');
  });

  it('AMQP frame decoder: 4000 mutated inputs, no crash, no hang', async () => {
    const report = await fuzz(amqpTarget, { seed: 1, corpus: readCorpus('amqp'), maxInputs: 4000 });
    assertClean(report, 4000);
  });

  it('log-record decoder: 8000 mutated inputs, no crash, no hang', async () => {
    const report = await fuzz(logTarget, { seed: 2, corpus: readCorpus('log'), maxInputs: 8000 });
    assertClean(report, 8000);
  });

  it('HTTP API: 600 mutated requests, never a 500, every refusal coded', async () => {
    const target = await httpTarget();
    try {
      const report = await fuzz(target, { seed: 3, corpus: readCorpus('http'), maxInputs: 600 });
      assertClean(report, 600);
    } finally {
      await target.close?.();
    }
  });

  it('AMQP frame decoder on arbitrary bytes in arbitrary chunks never throws', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), (chunks) => {
        const decoder = new AmqpFrameDecoder({ maxBodySize: 4096 });
        decoder.push(PROTOCOL_HEADER);
        for (const chunk of chunks) decoder.push(Buffer.from(chunk));
        return decoder.buffered <= 8192 + 8;
      }),
      { numRuns: 2000 },
    );
  });

  it('log-record decoder on arbitrary bytes never throws, and accepts only what fits', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const payload = Buffer.from(bytes);
        const decoded = decodePayload(payload, false);
        return !decoded.ok || payloadFits(payload, { steps: 0 });
      }),
      { numRuns: 5000 },
    );
  });
});
