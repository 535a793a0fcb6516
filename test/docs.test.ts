// The README's tables of routes, settings and error codes are generated from the code
// (scripts/docs.ts): a route, setting or code added without its documentation, or a
// README edited by hand, fails here.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { regenerate, routesTable } from '../scripts/docs.js';
import { projectRoot } from '../src/paths.js';

t.test('the README matches what the code says (npm run docs rewrites it)', async (t) => {
  const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  t.equal(regenerate(readme), readme);
});

t.test('every route is documented', async (t) => {
  const undocumented = routesTable()
    .split('\n')
    .filter((line) => /^\| [A-Z]+ \| .* \|\s*\|$/.test(line));
  t.same(undocumented, []);
});
