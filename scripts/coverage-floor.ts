// After `npm test`: the line coverage of src/ from tap's coverage summary, against a
// floor. Below it, exit 1 (CI fails); the figure is the README's.
//
//   node dist/scripts/coverage-floor.js [--summary .tap/report/coverage-summary.json]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { projectRoot } from '../src/paths.js';

/** Percent of src/'s lines the product tests must run. Raise it as tests grow; never lower it to pass. */
export const coverageFloor = 95;

interface Counts {
  total: number;
  covered: number;
}

const { values } = parseArgs({ options: { summary: { type: 'string', default: path.join(projectRoot, '.tap/report/coverage-summary.json') } } });
const summary = JSON.parse(readFileSync(values.summary!, 'utf8')) as Record<string, { lines: Counts }>;
const src = path.join(projectRoot, 'src') + path.sep;
const lines = Object.entries(summary)
  .filter(([file]) => file.startsWith(src))
  .reduce((sum, [, s]) => ({ total: sum.total + s.lines.total, covered: sum.covered + s.lines.covered }), { total: 0, covered: 0 });
const percent = lines.total ? (100 * lines.covered) / lines.total : 0;
process.stdout.write(`coverage of src/: ${percent.toFixed(1)}% of ${lines.total} lines (floor ${coverageFloor}%)\n`);
if (percent < coverageFloor) {
  process.stderr.write(`coverage-floor: src/ line coverage ${percent.toFixed(1)}% is below the floor of ${coverageFloor}%\n`);
  process.exit(1);
}
