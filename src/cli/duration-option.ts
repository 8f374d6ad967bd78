// A duration flag whose --help default reads `10s` or `1h`, not the
// milliseconds the command receives (commander prints the raw value).

import { Option } from 'commander';

import { formatDuration } from '../util/duration.js';
import { durationFlag } from './context.js';

export function durationOption(flags: string, description: string, defaultMs: number): Option {
  return new Option(flags, description)
    .argParser(durationFlag)
    .default(defaultMs, formatDuration(defaultMs));
}
