// What the fuzzers aim at, each as a function that takes one input and
// throws only when it finds a bug:
//
//   amqp  the AMQP frame decoder (src/amqp/frame-decoder.ts), fed the input
//         after a protocol header, cut into random chunks: it must answer
//         frames or coded errors, never throw, never buffer more than a frame
//   log   the log-record decoder (src/storage/codec.ts): never throws;
//         whatever it accepts re-encodes to the same record, and fits
//   http  the HTTP API in process (fastify inject over a real broker): the
//         input picks a route and is its body; the answer is never a 500,
//         and every refusal is the JSON error envelope
//
// The corpus of seeds is test/fuzz/corpus/<target>/; inputs that found a
// bug are added there so they are replayed on every run.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { FastifyInstance } from 'fastify';

import { PROTOCOL_HEADER } from '../../src/amqp/constants.js';
import { AmqpError } from '../../src/amqp/errors.js';
import { AmqpFrameDecoder } from '../../src/amqp/frame-decoder.js';
import type { Broker } from '../../src/broker/broker.js';
import { createHttpServer } from '../../src/http/server.js';
import { FRAME_HEADER_BYTES, encodeRecord } from '../../src/storage/codec.js';
import { decodePayload, payloadFits } from '../../src/storage/codec-decode.js';
import { openBroker, silentLogger, tempDir } from '../helpers.js';
import type { Rng } from './mutate.js';

export class Finding extends Error {}

export interface Target {
  name: 'amqp' | 'log' | 'http';
  /** Largest input tried. */
  maxLength: number;
  run(input: Buffer, rng: Rng): void | Promise<void>;
  close?(): Promise<void>;
}

// Compiled to dist/test/fuzz/: the corpus stays in the source tree.
const CORPUS = fileURLToPath(new URL('../../../test/fuzz/corpus/', import.meta.url));

export function corpusDir(target: string): string {
  return join(CORPUS, target);
}

export function readCorpus(target: string): Buffer[] {
  return readdirSync(corpusDir(target))
    .sort()
    .map((file) => readFileSync(join(corpusDir(target), file)));
}

// --- amqp -----------------------------------------------------------------

const FRAME_MAX = 131_072;

export const amqpTarget: Target = {
  name: 'amqp',
  maxLength: 256 * 1024,
  run(input, rng) {
    const decoder = new AmqpFrameDecoder({ maxBodySize: 1 << 20 });
    decoder.push(PROTOCOL_HEADER);
    decoder.frameMax = FRAME_MAX;
    let at = 0;
    while (at < input.length) {
      const size = 1 + rng.int(rng.int(4) === 0 ? 8 : 4096);
      const events = decoder.push(input.subarray(at, at + size));
      at += size;
      for (const event of events) {
        if (event.type === 'connection-error' || event.type === 'channel-error') {
          if (!(event.error instanceof AmqpError)) throw new Finding('an error that is not an AmqpError');
        }
      }
      // Nothing larger than one frame (plus its header and end) is held.
      if (decoder.buffered > FRAME_MAX + 8 + 4096) {
        throw new Finding(`decoder buffers ${decoder.buffered} bytes`);
      }
    }
  },
};

// --- log ------------------------------------------------------------------

export const logTarget: Target = {
  name: 'log',
  maxLength: 64 * 1024,
  run(input) {
    const work = { steps: 0 };
    const fits = payloadFits(input, work);
    const decoded = decodePayload(input, true);
    if (!decoded.ok) {
      if (typeof decoded.reason !== 'string' || decoded.reason === '') {
        throw new Finding('a refusal without a reason');
      }
      return;
    }
    if (!fits) throw new Finding('decodePayload accepts what payloadFits refuses');
    const again = decodePayload(encodeRecord(decoded.record).subarray(FRAME_HEADER_BYTES), true);
    if (!again.ok) throw new Finding(`re-encoded record does not decode: ${again.reason}`);
    if (!sameRecord(again.record, decoded.record)) {
      throw new Finding('re-encoded record decodes differently');
    }
  },
};

function sameRecord(a: unknown, b: unknown): boolean {
  return JSON.stringify(a, replacer) === JSON.stringify(b, replacer);
}

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (Object.is(value, -0)) return '-0';
  return value;
}

// --- http -----------------------------------------------------------------

/** Routes the HTTP fuzzer picks from; the input's first byte chooses. */
const HTTP_ROUTES: ReadonlyArray<[string, string]> = [
  ['POST', '/queues/fuzz/messages'],
  ['POST', '/queues/fuzz/messages/batch'],
  ['PUT', '/queues/fuzz-declared'],
  ['POST', '/queues/fuzz/receive'],
  ['POST', '/queues/fuzz/ack'],
  ['POST', '/queues/fuzz/nack'],
  ['POST', '/queues/fuzz/extend'],
  ['POST', '/queues/fuzz/release'],
  ['POST', '/queues/fuzz.dlq/redrive'],
  ['GET', '/queues/fuzz/messages?limit=5'],
  ['PUT', '/admin/tokens/fuzz'],
];

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', ''];

export async function httpTarget(): Promise<Target> {
  const dir = tempDir('usher-fuzz-http-');
  const broker: Broker = await openBroker(dir.path);
  await broker.createQueue('fuzz.dlq', {});
  await broker.createQueue('fuzz', { deadLetter: 'fuzz.dlq', maxAttempts: 2 });
  const app: FastifyInstance = createHttpServer(broker, {
    logger: silentLogger,
    processMetrics: false,
    maxMessageBytes: 64 * 1024,
  });
  await app.ready();

  return {
    name: 'http',
    maxLength: 96 * 1024,
    async run(input) {
      if (input.length === 0) return;
      const [method, url] = HTTP_ROUTES[input[0] % HTTP_ROUTES.length];
      const contentType = CONTENT_TYPES[(input[1] ?? 0) % CONTENT_TYPES.length];
      const headers: Record<string, string> = {};
      if (contentType !== '') headers['content-type'] = contentType;
      const response = await app.inject({
        method: method as 'POST',
        url,
        headers,
        payload: method === 'GET' ? undefined : input.subarray(2),
      });
      if (response.statusCode >= 500) {
        throw new Finding(`${method} ${url} answered ${response.statusCode}: ${response.body.slice(0, 200)}`);
      }
      if (response.statusCode >= 400) {
        const body = JSON.parse(response.body) as { error?: { code?: unknown } };
        if (typeof body.error?.code !== 'string') {
          throw new Finding(`${method} ${url} refused without a code: ${response.body.slice(0, 200)}`);
        }
      }
      // Keep the queue small, so the run's memory stays flat.
      if (broker.getQueue('fuzz').stats.total > 1000) await broker.purgeQueue('fuzz');
    },
    async close() {
      await app.close();
      await broker.close();
      dir.remove();
    },
  };
}
