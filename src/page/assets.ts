import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { projectRoot } from '../paths.js';

/** One file of the built page, held in memory (the whole page is a few tens of KB). */
export interface PageAsset {
  body: Buffer;
  /** The gzip file the build wrote beside it, when it did. */
  gzip?: Buffer;
  contentType: string;
  /** Hashed names never change; index.html is asked for again each time. */
  immutable: boolean;
}

/** Where `npm run build:ts` (scripts/build-page.ts) writes the page. */
export const pageDir = path.join(projectRoot, 'dist', 'page');

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

/**
 * The built page by URL path (`/` is index.html), read once at start; an empty map when
 * the page was not built (the routes then say how to build it).
 */
export function loadPageAssets(dir = pageDir): Map<string, PageAsset> {
  const assets = new Map<string, PageAsset>();
  let files: string[];
  try {
    files = (readdirSync(dir, { recursive: true }) as string[]).map((f) => f.split(path.sep).join('/'));
  } catch {
    return assets;
  }
  for (const file of files) {
    const full = path.join(dir, file);
    const type = types[path.extname(file)];
    if (!type || !statSync(full).isFile()) continue;
    let gzip: Buffer | undefined;
    try {
      gzip = readFileSync(`${full}.gz`);
    } catch {
      gzip = undefined;
    }
    const asset: PageAsset = { body: readFileSync(full), contentType: type, immutable: file.startsWith('assets/'), ...(gzip ? { gzip } : {}) };
    assets.set(file === 'index.html' ? '/' : `/${file}`, asset);
  }
  return assets;
}
