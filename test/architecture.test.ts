// The shape docs/design.md promises, checked on the source: delivery knows no dialect,
// route files do not import each other, and nothing below the dialects imports one.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { projectRoot } from '../src/paths.js';

const src = path.join(projectRoot, 'src');
const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => f.split(path.sep).join('/'));
const read = (file: string) => readFileSync(path.join(src, file), 'utf8');
const imports = (file: string) =>
  [...read(file).matchAll(/^import .* from '(\.[^']+)';$/gm)].map((m) =>
    path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!)).replace(/\.js$/, '.ts'),
  );
const dialects = ['ibm', 'azure', 'openai', 'wyoming'];

t.test('delivery/ names no dialect', async (t) => {
  for (const file of files.filter((f) => f.startsWith('delivery/'))) {
    t.notMatch(read(file), /ibm|azure/i, file);
  }
});

t.test('route files import no other route file', async (t) => {
  const routeFiles = files.filter((f) => /(^|\/)([a-z-]*-)?routes\.ts$/.test(f));
  t.ok(routeFiles.length >= 4, `found ${routeFiles.join(', ')}`);
  for (const file of routeFiles)
    t.same(
      imports(file).filter((i) => routeFiles.includes(i)),
      [],
      file,
    );
});

t.test('only the composition root and the dialects themselves import a dialect', async (t) => {
  for (const file of files) {
    const own = file.split('/')[0];
    const foreign = imports(file).filter((i) => dialects.includes(i.split('/')[0]!) && i.split('/')[0] !== own);
    t.same(foreign, file === 'app.ts' ? foreign.filter((i) => i.endsWith('/dialect.ts')) : [], file);
  }
});
