import { AppError } from '../errors.js';
import type { GroupApi } from '../http/openapi.js';
import { json, type Reply, type Request, type RouteGroup } from '../http/server.js';
import type { PageAsset } from './assets.js';

/**
 * Headers of every page reply: scripts, styles and connections from the device only, no
 * framing, no sniffing, no referrer (the key never travels in a URL, but job ids do).
 */
export const pageSecurityHeaders: Readonly<Record<string, string>> = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

function serve(asset: PageAsset, req: Request): Reply {
  const gzip = asset.gzip && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
  return {
    status: 200,
    headers: {
      ...pageSecurityHeaders,
      'Content-Type': asset.contentType,
      'Cache-Control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      Vary: 'Accept-Encoding',
      ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
    },
    body: gzip ? asset.gzip! : asset.body,
  };
}

const text = { type: 'string' };

/** The page's files in the OpenAPI document (the live feed is a WebSocket, outside OpenAPI). */
const pageApi: GroupApi = {
  tag: 'page',
  error: { name: 'PageError', schema: { type: 'object', properties: { code: text, message: text }, required: ['code', 'message'] } },
  operations: {
    page: { responses: { '200': { description: "the device's page", content: { 'text/html': text } } } },
    'page.assets': {
      responses: {
        '200': { description: 'a script or a style sheet', content: { 'text/javascript': text, 'text/css': text } },
      },
    },
  },
};

/**
 * The device's own page: static files that need no key (every API call the page makes
 * does). Its live feed is a WebSocket (page/live-feed.ts).
 */
export function pageRoutes(assets: ReadonlyMap<string, PageAsset>): RouteGroup {
  const find = (path: string): PageAsset => {
    const asset = assets.get(path);
    if (asset) return asset;
    if (path === '/') throw new AppError('ERR_NOT_READY', 'The page is not built: run npm run build:ts');
    throw new AppError('ERR_NOT_FOUND', `No such file: ${path}`);
  };
  return {
    prefix: '/assets',
    api: pageApi,
    renderError: (error) => json(error.status, { code: error.code, message: error.message }, pageSecurityHeaders),
    routes: [
      {
        method: 'get',
        pattern: '/',
        name: 'page',
        doc: "the device's page (no credentials; it asks for the key and sends it with each API call)",
        auth: false,
        handler: (req) => serve(find('/'), req),
      },
      {
        method: 'get',
        pattern: '/assets/:file',
        name: 'page.assets',
        doc: "the page's scripts and styles (hashed names, cached for good)",
        auth: false,
        handler: (req) => serve(find(`/assets/${req.params.file}`), req),
      },
    ],
  };
}
