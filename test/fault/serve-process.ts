// A real `usher serve` process for fault tests: started on a free loopback
// port over a given data folder, spoken to over HTTP, killed by its PID.

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const USHER = fileURLToPath(new URL('../../../bin/usher', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export class ServeProcess {
  private child: ChildProcess | null = null;
  readonly url: string;
  stderr = '';

  constructor(
    readonly dataDir: string,
    readonly port: number,
    /** More `usher serve` flags, such as `--segment-size 32KiB`. */
    readonly flags: readonly string[] = [],
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      process.execPath,
      [USHER, 'serve', '--data', this.dataDir, '--port', String(this.port), '--amqp-port', '0', ...this.flags],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.child = child;

    // Replaying a soak's backlog of millions takes minutes; a start that
    // fails ends the wait at once through the exit check below.
    const deadline = Date.now() + 300_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        throw new Error(`usher serve exited with ${child.exitCode}: ${this.stderr}`);
      }
      try {
        const response = await fetch(`${this.url}/healthz`);
        if (response.ok) return;
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    this.kill();
    throw new Error(`usher serve did not become healthy: ${this.stderr}`);
  }

  /** SIGKILL: no shutdown code runs, as in a crash or power cut of the process. */
  kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  async request(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : null };
  }
}
