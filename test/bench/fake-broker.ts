// A deliberately faulty broker for the bench's delivery check: an HTTP
// server with the few Usher routes the bench uses (queue create/delete,
// batch publish, receive, ack, nack) that confirms every publish but
// drops some messages and stores others twice, chosen by the stamp's seq
// so the test knows exactly which.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultyBroker {
  url: string;
  /** Seqs dropped and duplicated so far, per producer. */
  dropped: Set<string>;
  duplicated: Set<string>;
  close(): Promise<void>;
}

export interface Faults {
  drop(seq: number): boolean;
  duplicate(seq: number): boolean;
}

interface Stored {
  receipt: string;
  bodyBase64: string;
}

export async function startFaultyBroker(faults: Faults): Promise<FaultyBroker> {
  const queues = new Map<string, Stored[]>();
  const leased = new Map<string, Stored>();
  const dropped = new Set<string>();
  const duplicated = new Set<string>();
  let receipts = 0;

  const server: Server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      const answer = (status: number, body?: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body === undefined ? '' : JSON.stringify(body));
      };
      const match = /^\/queues\/([^/]+)(\/.*)?$/.exec(req.url ?? '');
      if (match === null) return answer(404, { error: { code: 'NOT_FOUND' } });
      const [, name, rest = ''] = match;
      const body = text === '' ? {} : JSON.parse(text);

      if (req.method === 'PUT' && rest === '') {
        if (!queues.has(name)) queues.set(name, []);
        return answer(201, { name });
      }
      if (req.method === 'DELETE' && rest === '') {
        queues.delete(name);
        return answer(204);
      }
      const queue = queues.get(name);
      if (queue === undefined) return answer(404, { error: { code: 'QUEUE_NOT_FOUND' } });

      if (rest === '/messages/batch') {
        for (const message of body.messages as { bodyBase64: string }[]) {
          const bytes = Buffer.from(message.bodyBase64, 'base64');
          const key = `${bytes.readUInt32BE(4)}:${bytes.readUInt32BE(8)}`;
          const seq = bytes.readUInt32BE(8);
          if (faults.drop(seq)) {
            dropped.add(key);
            continue;
          }
          queue.push({ receipt: `r${receipts++}`, bodyBase64: message.bodyBase64 });
          if (faults.duplicate(seq)) {
            duplicated.add(key);
            queue.push({ receipt: `r${receipts++}`, bodyBase64: message.bodyBase64 });
          }
        }
        return answer(201, { results: body.messages.map(() => ({ id: 'x', duplicate: false })) });
      }
      if (rest === '/receive') {
        const messages = queue.splice(0, body.max ?? 1);
        for (const m of messages) leased.set(m.receipt, m);
        // An empty answer waits a little, as a long poll would.
        const delay = messages.length === 0 ? 20 : 0;
        setTimeout(() => answer(200, { messages }), delay);
        return;
      }
      if (rest === '/ack') {
        for (const receipt of body.receipts as string[]) leased.delete(receipt);
        return answer(200, { acked: body.receipts.length });
      }
      if (rest === '/nack') {
        const message = leased.get(body.receipt);
        leased.delete(body.receipt);
        if (message !== undefined) queue.push({ ...message, receipt: `r${receipts++}` });
        return answer(200, { ok: true });
      }
      return answer(404, { error: { code: 'NOT_FOUND' } });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    dropped,
    duplicated,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
