// /openapi.json against the real service: a valid OpenAPI 3.1 document (checked by a
// maintained parser), every route of the route table in it, and every operation in it
// answered by the route it names (never by the router's catch-all 404).
import { validate } from '@readme/openapi-parser';
import t from 'tap';

import { startApp } from '../helpers/app.js';

interface Operation {
  summary: string;
  operationId: string;
  parameters?: Array<{ name: string; in: string; required?: boolean; schema: { enum?: string[] } }>;
  security?: unknown[];
  responses: Record<string, unknown>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>>; security?: unknown[] };

/** Requests answered per route so far, from the service's own metrics. */
async function answeredBy(base: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const [, route, n] of text.matchAll(/^earshot_http_requests_total\{route="([^"]+)"[^}]*\} (\d+)$/gm)) {
    counts.set(route!, (counts.get(route!) ?? 0) + Number(n));
  }
  return counts;
}

t.test('GET /openapi.json: served without a key, a valid OpenAPI 3.1 document of every route', async (t) => {
  const { app, base } = await startApp(t);
  const res = await fetch(`${base}/openapi.json`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^application\/json/);
  const doc = (await res.json()) as Document;
  t.equal(doc.openapi, '3.1.0');
  const result = await validate(structuredClone(doc) as never);
  t.same(result, { valid: true, warnings: [], specification: 'OpenAPI' }, 'valid per @readme/openapi-parser');

  // Every route the server serves is documented (under at least one mount).
  const documented = new Set(Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.summary)));
  const served = app.http.groups.flatMap((g) => g.routes.map((r) => r.name));
  t.ok(served.length > 40, `${served.length} routes`);
  for (const name of served) t.ok(documented.has(name), `route ${name} is documented`);
  t.same(
    [...documented].filter((name) => !served.includes(name)),
    [],
    'nothing documented that no route serves',
  );

  // Auth as it works: a key on everything but the probes, metrics and this document.
  t.same(doc.security, [{ bearer: [] }, { basic: [] }, { subscriptionKey: [] }]);
  const open = Object.values(doc.paths)
    .flatMap((ops) => Object.values(ops))
    .filter((op) => op.security?.length === 0)
    .map((op) => op.summary);
  t.same([...new Set(open)].sort(), ['azure.transcriptions.files.content', 'healthz', 'metrics', 'openapi', 'page', 'page.assets', 'readyz']);
  for (const op of Object.values(doc.paths).flatMap((ops) => Object.values(ops))) {
    t.ok(op.responses['4XX'] && op.responses['5XX'], `${op.operationId} documents its error shape`);
  }
});

t.test("every documented operation is answered by the route it names, not the router's 404", async (t) => {
  const { base, auth } = await startApp(t);
  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as Document;
  let before = await answeredBy(base);
  let count = 0;
  for (const [template, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const path = template.replace(/\{[^}]+\}/g, 'x0');
      const query = new URLSearchParams();
      for (const p of op.parameters ?? []) {
        if (p.in === 'query' && p.required) query.set(p.name, p.schema.enum?.[0] ?? 'http://127.0.0.1:9/x');
      }
      const url = `${base}${path}${query.size ? `?${query}` : ''}`;
      const res = await fetch(url, { method: method.toUpperCase(), headers: auth });
      await res.arrayBuffer();
      const after = await answeredBy(base);
      const grew = (after.get(op.summary) ?? 0) - (before.get(op.summary) ?? 0);
      // A scrape is counted after it rendered: the previous one shows up in the next.
      t.equal(grew, op.summary === 'metrics' ? 2 : 1, `${method.toUpperCase()} ${template} → ${res.status}, answered by ${op.summary}`);
      before = after;
      count++;
    }
  }
  t.ok(count > 100, `${count} operations driven`);
  t.notOk(before.get('unmatched'), 'none reached the catch-all');
});

t.test('EARSHOT_AUTH=none: the document asks for no credentials', async (t) => {
  const { base } = await startApp(t, { EARSHOT_AUTH: 'none' });
  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as Document;
  t.equal(doc.security, undefined);
});
