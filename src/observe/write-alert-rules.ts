// Writes deploy/prometheus/usher-alerts.yml from alert-rules.ts:
//   npm run build && node dist/src/observe/write-alert-rules.js
// test/observe/alert-rules.test.ts fails while the file is out of date.

import { writeFileSync } from 'node:fs';

import { renderAlertRulesYaml } from './alert-rules.js';

const target = new URL('../../../deploy/prometheus/usher-alerts.yml', import.meta.url);
writeFileSync(target, renderAlertRulesYaml());
