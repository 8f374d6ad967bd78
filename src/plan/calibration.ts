// The per-message costs `usher plan` multiplies: measured by `usher bench
// --calibrate` on the target machine, or the default file measured on a
// 2-core machine (examples/calibration-2core.json). Costs that grow with
// the body are a line: base + perByte * bytes, fitted from two sizes.

import { readFileSync } from 'node:fs';

export interface Line {
  base: number;
  perByte: number;
}

export interface Calibration {
  version: 1;
  measuredAt: string;
  machine: { cpus: number; model: string; node: string };
  /** Broker CPU µs per publish (confirmed, on disk). */
  publishCpuUs: Line;
  /** Broker CPU µs per delivery and ack. */
  consumeCpuUs: number;
  /** Log bytes per waiting message. */
  diskBytesPerMessage: Line;
  /** Broker memory per waiting message. */
  memoryBytesPerMessage: Line;
  /** The broker's resident memory with nothing queued. */
  idleRssBytes: number;
  /** fdatasync calls per second one file on the data disk takes. */
  fsyncsPerSecond: number;
  notes?: string;
}

export class CalibrationError extends Error {
  override name = 'CalibrationError';
}

export const DEFAULT_CALIBRATION_URL = new URL(
  '../../../examples/calibration-2core.json',
  import.meta.url,
);

export function at(line: Line, bytes: number): number {
  return line.base + line.perByte * bytes;
}

export function loadCalibration(path: string | URL = DEFAULT_CALIBRATION_URL): Calibration {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CalibrationError(
      `cannot read calibration ${String(path)}: ${(err as Error).message}`,
    );
  }
  return checkCalibration(data, String(path));
}

export function checkCalibration(data: unknown, where: string): Calibration {
  const c = data as Calibration;
  const isNumber = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  const isLine = (v: unknown) =>
    typeof v === 'object' &&
    v !== null &&
    isNumber((v as Line).base) &&
    typeof (v as Line).perByte === 'number';
  const problems: string[] = [];
  if (c?.version !== 1) problems.push('version must be 1');
  if (!isLine(c?.publishCpuUs)) problems.push('publishCpuUs {base, perByte}');
  if (!isNumber(c?.consumeCpuUs)) problems.push('consumeCpuUs');
  if (!isLine(c?.diskBytesPerMessage)) problems.push('diskBytesPerMessage {base, perByte}');
  if (!isLine(c?.memoryBytesPerMessage)) problems.push('memoryBytesPerMessage {base, perByte}');
  if (!isNumber(c?.idleRssBytes)) problems.push('idleRssBytes');
  if (!isNumber(c?.fsyncsPerSecond) || c.fsyncsPerSecond === 0)
    problems.push('fsyncsPerSecond > 0');
  if (problems.length > 0) {
    throw new CalibrationError(
      `calibration ${where} is missing or has bad: ${problems.join(', ')}`,
    );
  }
  return c;
}
