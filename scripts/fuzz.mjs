#!/usr/bin/env node
// The long fuzz run (the CI run is test/fuzz/fuzz.test.ts, a few seconds).
//   npm run fuzz -- --minutes 10 [--target amqp|log|http] [--seed N]
//   npm run fuzz -- --write-corpus     rewrite test/fuzz/corpus/ from seeds.ts
// Splits the time evenly over the targets, prints one line of figures per
// target (inputs tried, crashes, hangs, slowest input, heap and RSS), saves
// every crashing or hanging input to test/fuzz/findings/, and exits 1 when
// there was any.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    target: { type: 'string', multiple: true },
    seed: { type: 'string' },
    'write-corpus': { type: 'boolean', default: false },
  },
});

const targets = await import('../dist/test/fuzz/targets.js');
const { fuzz } = await import('../dist/test/fuzz/engine.js');

if (values['write-corpus']) {
  const seeds = await import('../dist/test/fuzz/seeds.js');
  for (const [name, build] of [['amqp', seeds.amqpSeeds], ['log', seeds.logSeeds], ['http', seeds.httpSeeds]]) {
    const dir = targets.corpusDir(name);
    mkdirSync(dir, { recursive: true });
    for (const [file, bytes] of Object.entries(build())) writeFileSync(join(dir, file), bytes);
  }
  console.log('corpus written to test/fuzz/corpus/');
  process.exit(0);
}

const minutes = Number(values.minutes);
if (!(minutes > 0)) {
  console.error('usage: npm run fuzz -- --minutes N (N > 0)');
  process.exit(2);
}
const names = values.target ?? ['amqp', 'log', 'http'];
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
const sliceMs = (minutes * 60_000) / names.length;
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

let found = 0;
console.log(`fuzzing ${names.join(', ')} for ${minutes} min, seed ${seed}`);
for (const name of names) {
  const target =
    name === 'amqp' ? targets.amqpTarget : name === 'log' ? targets.logTarget : await targets.httpTarget();
  const report = await fuzz(target, {
    seed,
    corpus: targets.readCorpus(name),
    deadline: Date.now() + sliceMs,
  });
  await target.close?.();
  console.log(
    `${name}: ${report.tried} inputs, ${report.crashes.length} crashes, ${report.hangs.length} hangs ` +
      `(slowest ${report.slowestMs.toFixed(1)} ms), heap ${mib(report.heapStart)} -> max ${mib(report.heapMax)}, ` +
      `rss max ${mib(report.rssMax)}`,
  );
  const findings = [...report.crashes, ...report.hangs];
  if (findings.length > 0) {
    const dir = join('test', 'fuzz', 'findings', name);
    mkdirSync(dir, { recursive: true });
    findings.forEach((finding, i) => {
      writeFileSync(join(dir, `${seed}-${i}.bin`), finding.input);
      console.log(`  ${finding.error} (saved ${join(dir, `${seed}-${i}.bin`)})`);
    });
    found += findings.length;
  }
}
process.exit(found === 0 ? 0 : 1);
