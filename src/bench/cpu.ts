// CPU time of the generator (this process) and of the broker (a PID on
// this machine, read from /proc, or Usher's own /metrics figure), so a
// result can say which side was the bottleneck. Without either the
// broker's figure is absent.

import { readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc times are in 1/100 s on every common build. */
const TICKS_PER_SECOND = 100;

export interface CpuFigures {
  generatorSeconds: number;
  generatorCores: number;
  brokerSeconds: number | null;
  brokerCores: number | null;
  /** The generator used more CPU than the broker: the figure measures the client. */
  clientBound: boolean | null;
}

/** CPU seconds (user + system) a process has used, or null. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces: fields count from after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** Resident memory of a process in bytes, or null. */
export function processRssBytes(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /VmRSS:\s+(\d+) kB/.exec(status);
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/**
 * The --broker-pid to read, or undefined with a warning when no such
 * process is readable here (a typo, or a broker in another PID
 * namespace); the run then falls back to the broker's own figure.
 */
export function usableBrokerPid(
  pid: number | undefined,
  warn: (message: string) => void,
): number | undefined {
  if (pid === undefined || processCpuSeconds(pid) !== null) return pid;
  warn(
    `usher bench: warning: no process ${pid} (--broker-pid); ` +
      "the broker's CPU comes from Usher's /metrics over HTTP, or is not measured",
  );
  return undefined;
}

/** Reads the broker's CPU seconds: from /proc by PID, or the broker's own figure. */
export type BrokerCpuSource = () => Promise<number | null>;

export function brokerCpuSource(
  pid: number | undefined,
  fallback?: BrokerCpuSource,
): BrokerCpuSource {
  if (pid !== undefined) return async () => processCpuSeconds(pid);
  return fallback ?? (async () => null);
}

export class CpuMeter {
  readonly #startedAt = performance.now();
  readonly #own = process.cpuUsage();

  private constructor(
    private readonly broker: BrokerCpuSource,
    private readonly brokerStart: number | null,
  ) {}

  static async start(broker: BrokerCpuSource): Promise<CpuMeter> {
    return new CpuMeter(broker, await broker());
  }

  async read(): Promise<CpuFigures> {
    const wallSeconds = Math.max(1e-3, (performance.now() - this.#startedAt) / 1000);
    const used = process.cpuUsage(this.#own);
    const generatorSeconds = (used.user + used.system) / 1e6;
    const brokerNow = await this.broker();
    const brokerSeconds =
      brokerNow === null || this.brokerStart === null ? null : brokerNow - this.brokerStart;
    return {
      generatorSeconds: round(generatorSeconds),
      generatorCores: round(generatorSeconds / wallSeconds),
      brokerSeconds: brokerSeconds === null ? null : round(brokerSeconds),
      brokerCores: brokerSeconds === null ? null : round(brokerSeconds / wallSeconds),
      clientBound: brokerSeconds === null ? null : generatorSeconds > brokerSeconds,
    };
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
