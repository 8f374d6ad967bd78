// A real `usher serve` process for fault tests: started over a given data
// folder, spoken to over HTTP, killed by its PID.
//
// It listens on port 0 and the test learns the port from the log line
// Usher writes once every listener is up. Picking a free port first and
// passing it in left a window in which another socket on this busy
// machine could take it, and the broker then exited on EADDRINUSE.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import amqp, { type ChannelModel } from 'amqplib';

const USHER = fileURLToPath(new URL('../../../bin/usher', import.meta.url));

interface LogLine {
  level?: number;
  url?: string;
  amqpUrl?: string;
  [key: string]: unknown;
}

export class ServeProcess {
  private child: ChildProcess | null = null;
  url = '';
  port = 0;
  amqpPort = 0;
  /** Everything the process wrote, across restarts. */
  stdout = '';
  stderr = '';
  exitCode: number | null = null;

  constructor(
    readonly dataDir: string,
    /** More `usher serve` flags, such as `--segment-size 32KiB`. */
    readonly flags: readonly string[] = [],
  ) {}

  /** The AMQP URL of the running broker, as the built-in guest. */
  get amqpUrl(): string {
    return `amqp://guest:guest@127.0.0.1:${this.amqpPort}`;
  }

  /**
   * An amqplib connection to the running broker. Its `error` events are
   * ignored: these tests kill the broker under it on purpose.
   */
  async amqpConnection(): Promise<ChannelModel> {
    const connection = await amqp.connect(this.amqpUrl);
    connection.on('error', () => {});
    return connection;
  }

  /** Resolves once every listener is up; throws if the process exits first. */
  async start(): Promise<void> {
    if (!(await this.startOrExit())) {
      throw new Error(`usher serve exited with ${this.exitCode}: ${this.stderr}`);
    }
  }

  /**
   * Resolves true once every listener is up, false if the process exited
   * first (for tests of starts that must fail).
   */
  startOrExit(): Promise<boolean> {
    const args = [USHER, 'serve', '--data', this.dataDir, '--port', '0'];
    if (!this.flags.includes('--amqp-port')) args.push('--amqp-port', '0');
    const child = spawn(process.execPath, [...args, ...this.flags], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exitCode = null;
    child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));

    // Replaying a soak's backlog of millions takes minutes; a start that
    // fails ends the wait at once through the exit handler.
    return new Promise((resolve, reject) => {
      let pending = '';
      const timer = setTimeout(() => {
        void this.kill();
        reject(new Error(`usher serve did not start within 300 s: ${this.stderr}`));
      }, 300_000);

      child.stdout?.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        this.stdout += text;
        pending += text;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          const entry = parseLogLine(line);
          if (entry?.amqpUrl !== undefined) this.amqpPort = Number(new URL(entry.amqpUrl).port);
          if (entry?.url === undefined) continue;
          this.url = entry.url;
          this.port = Number(new URL(entry.url).port);
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once('exit', (code) => {
        this.exitCode = code;
        clearTimeout(timer);
        resolve(false);
      });
    });
  }

  /** SIGKILL: no shutdown code runs, as in a crash or power cut of the process. */
  kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Sends `signal` to the process, as an operator would. */
  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  /** Log lines at warn level or above. */
  warnings(): LogLine[] {
    return this.stdout
      .split('\n')
      .map(parseLogLine)
      .filter((entry): entry is LogLine => typeof entry?.level === 'number' && entry.level >= 40);
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

function parseLogLine(line: string): LogLine | null {
  if (!line.startsWith('{')) return null;
  try {
    return JSON.parse(line) as LogLine;
  } catch {
    return null;
  }
}
