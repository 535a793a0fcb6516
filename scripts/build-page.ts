// Builds the device's page (web/) into dist/page: esbuild bundles and minifies the
// TypeScript and the style sheet under hashed names, index.html is written to name them,
// and each file gets a gzip twin the server sends to browsers that accept it. Prints
// the sizes. Run by `npm run build:ts` after tsc has type-checked web/ (web/tsconfig.json).
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

import { build } from 'esbuild';

import { projectRoot } from '../src/paths.js';

const web = path.join(projectRoot, 'web');
const out = path.join(projectRoot, 'dist', 'page');
/** The budget for the whole page. */
const budgetBytes = 150 * 1024;

async function main(): Promise<void> {
  mkdirSync(out, { recursive: true });
  const result = await build({
    entryPoints: { app: path.join(web, 'src', 'main.ts'), style: path.join(web, 'src', 'app.css') },
    outdir: out,
    entryNames: 'assets/[name]-[hash]',
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => path.relative(out, path.resolve(projectRoot, file)).split(path.sep).join('/'));
  const script = outputs.find((f) => f.endsWith('.js'));
  const style = outputs.find((f) => f.endsWith('.css'));
  if (!script || !style) throw new Error(`esbuild wrote no script or style sheet: ${outputs.join(', ')}`);
  const html = readFileSync(path.join(web, 'index.html'), 'utf8').replace('%APP_JS%', `/${script}`).replace('%APP_CSS%', `/${style}`);
  writeFileSync(path.join(out, 'index.html'), html);

  let total = 0;
  let compressed = 0;
  const lines: string[] = [];
  for (const file of (readdirSync(out, { recursive: true }) as string[]).map((f) => f.split(path.sep).join('/')).sort()) {
    const full = path.join(out, file);
    if (!statSync(full).isFile() || file.endsWith('.gz')) continue;
    const body = readFileSync(full);
    const gzip = gzipSync(body, { level: 9 });
    writeFileSync(`${full}.gz`, gzip);
    total += body.length;
    compressed += gzip.length;
    lines.push(`  ${file.padEnd(34)} ${String(body.length).padStart(7)} B  (gzip ${gzip.length} B)`);
  }
  console.log(`page: ${path.relative(projectRoot, out)}\n${lines.join('\n')}\n  total ${total} B (gzip ${compressed} B), budget ${budgetBytes} B`);
  if (total > budgetBytes) throw new Error(`the page is ${total} bytes, over its budget of ${budgetBytes}`);
}

main().catch((err: Error) => {
  console.error(`build-page: ${err.message}`);
  process.exit(1);
});
