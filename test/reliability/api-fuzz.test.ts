// API fuzzing: fast-check draws requests for every route of every dialect (the route list
// comes from the dialects themselves, as the README's tables do, so a new route is fuzzed
// without touching this file), writes them byte for byte on raw sockets to one real service,
// and checks what comes back:
//   - no 5xx but 503/507, and those with Retry-After;
//   - every 4xx/5xx in the error shape of the dialect that owns the path;
//   - JSON where the service says JSON;
//   - an answer to every well-formed request (malformed HTTP may be dropped by uWS's parser);
//   - after each batch, /healthz still answers.
// Queries are drawn three ways: ones the routes take, ones built from the parameters the
// service's own /openapi.json documents for the route (their enums, defaults and types,
// and near misses), and arbitrary ones.
// Seeded: EARSHOT_FUZZ_SEED replays a run, EARSHOT_FUZZ_REQUESTS sets its size.
import { gzipSync } from 'node:zlib';

import fc from 'fast-check';
import t from 'tap';

import { type ListedRoutes, listedRoutes } from '../../scripts/docs.js';
import type { Route } from '../../src/http/server.js';
import { webHookEventKeys } from '../../src/azure/webhook-input.js';
import { ibmEvents } from '../../src/ibm/callbacks.js';
import { apiKey, startApp, waitForJob } from '../helpers/app.js';
import { wav } from '../helpers/pcm.js';
import { startReceiver } from '../helpers/receiver.js';
import { type RawOutcome, rawRequest } from './raw-http.js';
import { fuzzCount, fuzzSeed, report } from './seed.js';

const batchSize = 100;
const requests = fuzzCount('EARSHOT_FUZZ_REQUESTS', 10_000);
const seed = fuzzSeed(t, 'api fuzz');

// ---- what the service says about itself --------------------------------------------------

const sections: ListedRoutes[] = listedRoutes();
const routes = sections.flatMap(({ name, groups }) =>
  groups.flatMap((group) => group.routes.map((route) => ({ dialect: name, mounts: group.mounts ?? [''], route }))),
);

/**
 * The dialect whose error shape a path gets, as the server picks: of the groups owning it
 * (a lenient group in any case), the one owning the longest part of it (mount's part and
 * prefix), the first of equals.
 */
function dialectOf(path: string): string {
  let owner = { name: 'ops', length: -1 };
  for (const { name, groups } of sections) {
    for (const g of groups) {
      const candidate = g.lenient ? path.toLowerCase() : path;
      const prefix = g.lenient ? g.prefix.toLowerCase() : g.prefix;
      for (const mount of g.mounts ?? ['']) {
        const part = candidate.split('/').slice(0, mount.split('/').length).join('/');
        const mounted = mount === '' || new RegExp(`^${mount.toLowerCase().replace(/:[^/]+/g, '[^/]+')}$`).test(part);
        const length = (mount === '' ? 0 : part.length) + prefix.length;
        if (mounted && candidate.slice(mount === '' ? 0 : part.length).startsWith(prefix) && length > owner.length) owner = { name, length };
      }
    }
  }
  return owner.name;
}

type Body = Record<string, unknown>;
const isString = (v: unknown) => typeof v === 'string';
const onlyKeys = (b: Body, keys: string[]) => Object.keys(b).every((k) => keys.includes(k));
/** Each dialect's error body (README: "Errors: ..."). */
const errorShapes: Record<string, (status: number, b: Body) => boolean> = {
  ibm: (status, b) => b.code === status && isString(b.code_description) && isString(b.error) && onlyKeys(b, ['code', 'code_description', 'error']),
  azure: (_, b) => {
    const inner = b.innerError as Body | undefined;
    return (
      isString(b.code) &&
      isString(b.message) &&
      onlyKeys(b, ['code', 'message', 'innerError']) &&
      (inner === undefined || (typeof inner === 'object' && inner !== null && isString(inner.code) && isString(inner.message)))
    );
  },
  ops: (_, b) => isString(b.code) && isString(b.message) && onlyKeys(b, ['code', 'message']),
  // The device's page answers its errors the way the service's own endpoints do.
  page: (_, b) => isString(b.code) && isString(b.message) && onlyKeys(b, ['code', 'message']),
  openai: (_, b) => {
    const error = b.error as Body | undefined;
    return (
      onlyKeys(b, ['error']) &&
      typeof error === 'object' &&
      error !== null &&
      isString(error.message) &&
      isString(error.type) &&
      (error.param === null || isString(error.param)) &&
      (error.code === null || isString(error.code)) &&
      onlyKeys(error, ['message', 'type', 'param', 'code'])
    );
  },
};

// ---- requests ----------------------------------------------------------------------------

/** How the body is framed; all but the first three are lies or errors at the HTTP level. */
const framings = ['exact', 'chunked', 'none', 'cl-smaller', 'cl-larger', 'cl-garbage', 'cl-duplicate', 'chunked-broken', 'cl-and-te'] as const;
type Framing = (typeof framings)[number];

interface FuzzRequest {
  method: string;
  /** Path and query, as bytes (latin1). */
  target: string;
  headers: Array<[string, string]>;
  body: Buffer;
  framing: Framing;
  /** Whether HTTP requires an answer (well-formed); uWS may drop malformed requests unanswered. */
  wellFormed: boolean;
  /** The route it was drawn for (or "random path"). */
  aim: string;
}

const standardMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'];
/** Methods uWS does not parse: it closes the connection without an answer. */
const oddMethods = ['PROPFIND', 'get', 'Post', 'FOO', 'M-SEARCH', 'PURGE', 'QUERY', 'X'.repeat(40)];

/** A string as raw bytes of a request target: unsafe ASCII %-escaped, the rest as UTF-8 bytes. */
function rawText(s: string, keepSlash = false): string {
  let out = '';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (code <= 0x20 || code === 0x7f || ch === '?' || ch === '#' || (!keepSlash && ch === '/')) out += encodeURIComponent(ch);
    else out += Buffer.from(ch, 'utf8').toString('latin1');
  }
  return out;
}

const encodeText = (s: string, mode: 'uri' | 'raw') => (mode === 'uri' ? encodeURIComponent(s) : rawText(s));

const oddSegments = [
  '',
  '.',
  '..',
  '%',
  '%zz',
  '%e9',
  '%c3%a9',
  '%00',
  '%2F',
  '%2e%2e',
  '%25',
  'null',
  '0',
  '-1',
  '9'.repeat(30),
  ':ping',
  ':test',
  ':redeliver',
  'deliveries:redeliver',
  ':',
  '*',
  '\u00e9\u00ff',
  '"\'<>',
  'a;b=c',
  '{id}',
];

function serialize(r: FuzzRequest, pool: Pool): Buffer {
  const head = [`${r.method} ${resolveRefs(r.target, pool)} HTTP/1.1`];
  for (const [name, value] of r.headers) head.push(`${name}: ${value.replace('{port}', String(pool.port))}`);
  let body = r.body;
  switch (r.framing) {
    case 'exact':
      if (body.length > 0 || r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH') head.push(`Content-Length: ${body.length}`);
      break;
    case 'none':
      break;
    case 'chunked':
    case 'chunked-broken': {
      head.push('Transfer-Encoding: chunked');
      const third = Math.ceil(body.length / 3);
      const parts = body.length ? [body.subarray(0, third), body.subarray(third, 2 * third), body.subarray(2 * third)].filter((p) => p.length) : [];
      const size = (n: number) => (r.framing === 'chunked' ? n.toString(16) : `${(n + 7).toString(16)}zz`);
      body = Buffer.concat([...parts.flatMap((p) => [Buffer.from(`${size(p.length)}\r\n`), p, Buffer.from('\r\n')]), Buffer.from('0\r\n\r\n')]);
      break;
    }
    case 'cl-smaller':
      head.push(`Content-Length: ${Math.floor(body.length / 2)}`);
      break;
    case 'cl-larger':
      head.push(`Content-Length: ${body.length + 1 + (body.length % 977)}`);
      break;
    case 'cl-garbage':
      head.push(`Content-Length: ${['abc', '-1', '1e3', '+5', '0x10', '99999999999999999999', '', '5, 6'][body.length % 8]}`);
      break;
    case 'cl-duplicate':
      head.push(`Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`);
      break;
    case 'cl-and-te':
      head.push(`Content-Length: ${body.length}`, 'Transfer-Encoding: chunked');
      break;
  }
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

/**
 * What exists in the service, for requests to find: jobs and hooks (kept up to date as the
 * fuzzer creates and deletes them), result files, deliveries, model names.
 */
interface Pool {
  port: number;
  job: string[];
  hook: string[];
  file: string[];
  delivery: string[];
  model: string[];
  /** The query of a valid content URL. */
  contentQuery: string;
  receiverUrl: string;
  /** The query parameters /openapi.json documents per route name, for queries drawn from it. */
  documented: Map<string, QueryParameter[]>;
}

/** A query parameter as the service's OpenAPI document describes it. */
interface QueryParameter {
  name: string;
  schema?: { type?: string; enum?: unknown[]; default?: unknown };
}

/** /openapi.json's query parameters per route name (an operation's summary), every mount's together. */
function documentedQueries(document: { paths: Record<string, Record<string, { summary: string; parameters?: Array<QueryParameter & { in: string }> }>> }) {
  const byRoute = new Map<string, QueryParameter[]>();
  for (const operations of Object.values(document.paths)) {
    for (const op of Object.values(operations)) {
      const known = byRoute.get(op.summary) ?? [];
      for (const p of op.parameters ?? []) if (p.in === 'query' && !known.some((k) => k.name === p.name)) known.push(p);
      byRoute.set(op.summary, known);
    }
  }
  return byRoute;
}
const poolKinds = ['job', 'hook', 'file', 'delivery', 'model'] as const;
type PoolKind = (typeof poolKinds)[number];

/** Requests name things of the pool by kind and number; they are looked up when sent, in the pool as it is then. */
const poolRef = (kind: PoolKind, n: number) => `{{${kind}:${n}}}`;
const resolveRefs = (text: string, pool: Pool) =>
  text.replace(/\{\{(\w+):(\d+)\}\}/g, (_, kind: string, n: string) => {
    const list = pool[kind.toLowerCase() as PoolKind];
    const value = list.length ? list[Number(n) % list.length]! : 'gone';
    // An upper-cased path (a tweak) names its ids upper-cased too.
    return kind === kind.toUpperCase() ? value.toUpperCase() : value;
  });

/** Which kind of thing a route parameter names (any, for routes this does not know). */
function poolKindOf(pattern: string, param: string): PoolKind | undefined {
  if (param === 'fileId') return 'file';
  if (param === 'model') return 'model';
  if (param === 'deliveryId' || /callback_deliveries\/:id/.test(pattern)) return 'delivery';
  if (/(recognitions|transcriptions)\/:id/.test(pattern)) return 'job';
  if (/hooks\/:id/.test(pattern)) return 'hook';
  return undefined;
}

/** What goes in a parameter's segment: a thing of the pool and what follows it, or a literal. */
interface SegmentShape {
  kind: PoolKind | undefined;
  suffixes: string[];
  literal?: string;
}

/**
 * The shapes of a route's parameters, from the path the README shows where the pattern
 * would mislead: `{id}:ping, :test` is a hook id and an action, `deliveries:redeliver` a
 * literal, `{deliveryId}:redeliver` a delivery id and an action.
 */
function segmentShapes(route: Route): SegmentShape[] {
  const parts = route.pattern.split('/');
  const shown = route.shown?.split('/');
  return parts.flatMap((part, i) => {
    if (!part.startsWith(':')) return [];
    const name = part.slice(1);
    const said = shown?.[i];
    const m = said === undefined ? undefined : /^\{(\w+)\}(.*)$/.exec(said);
    if (said !== undefined && !m) return [{ kind: undefined, suffixes: [''], literal: said }];
    const suffixes = m?.[2] ? m[2].split(/,\s*/) : [''];
    return [{ kind: poolKindOf(route.pattern, m?.[1] ?? name), suffixes }];
  });
}

function requestArbitrary(pool: Pool): fc.Arbitrary<FuzzRequest> {
  const text = fc.string({ unit: 'grapheme', maxLength: 24 });
  const known = (kind: PoolKind | undefined, suffixes: string[]) =>
    fc
      .tuple(kind ? fc.constant(kind) : fc.constantFrom(...poolKinds), fc.nat(1000), fc.constantFrom(...suffixes))
      .map(([k, n, suffix]) => poolRef(k, n) + suffix);
  /** A parameter's segment: mostly what the route's shown path says goes there, else anything. */
  const segmentFor = (shape: SegmentShape = { kind: undefined, suffixes: [''] }) =>
    fc.oneof(
      { weight: 10, arbitrary: shape.literal !== undefined ? fc.constant(shape.literal) : known(shape.kind, shape.suffixes) },
      { weight: 2, arbitrary: known(undefined, ['', ':ping', ':test', ':redeliver', ':x']) },
      { weight: 2, arbitrary: fc.constantFrom(...oddSegments) },
      { weight: 2, arbitrary: fc.tuple(text, fc.constantFrom<'uri' | 'raw'>('uri', 'raw')).map(([s, mode]) => encodeText(s, mode)) },
      { weight: 1, arbitrary: fc.uuid() },
      { weight: 1, arbitrary: fc.integer({ min: 256, max: 16_384 }).map((n) => 'x'.repeat(n)) },
    );
  const segment = segmentFor(undefined);
  const urls = [
    pool.receiverUrl,
    `${pool.receiverUrl}/other`,
    `http://127.0.0.1:${pool.port}/v1/recognitions`,
    'http://127.0.0.1:9/closed',
    'http://apikey:secret@127.0.0.1/x',
    'http://127.0.0.1/x#fragment',
    'https://8.8.8.8/outside',
    'ftp://127.0.0.1/x',
    'javascript:alert(1)',
    ' http:127.0.0.1\\x',
    'http://[::1]:9/x',
    'http://%zz/',
    `http://127.0.0.1/${'y'.repeat(3000)}`,
  ];
  const values = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        '',
        'true',
        'false',
        '0',
        '1',
        '-1',
        '2',
        '1e309',
        '99999999999',
        'NaN',
        'auto',
        'en',
        'xx',
        'dead',
        'pending',
        ...ibmEvents,
        ibmEvents.join(','),
        'recognitions.started,bogus',
        ...pool.model,
      ),
    },
    { weight: 3, arbitrary: fc.constantFrom(...urls) },
    { weight: 2, arbitrary: text },
    { weight: 1, arbitrary: fc.integer({ min: 1000, max: 20_000 }).map((n) => 'v'.repeat(n)) },
  );
  const names = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.constantFrom(
        'callback_url',
        'user_secret',
        'events',
        'user_token',
        'results_ttl',
        'model',
        'language',
        'timestamps',
        'word_confidence',
        'max_alternatives',
        'speaker_labels',
        'state',
        'skip',
        'top',
        'filter',
        'sasValidityInSeconds',
        'se',
        'sig',
        'api-version',
      ),
    },
    { weight: 1, arbitrary: text },
  );
  const callback = `callback_url=${encodeURIComponent(pool.receiverUrl)}`;
  /** A query that the route takes (when it needs one), so that requests get past the checks. */
  const goodQuery = (aim: string): string[] => {
    if (/register_callback|callback_deliveries(\/redeliver)?$/.test(aim)) return [`?${callback}`, `?${callback}&user_secret=s3cret`];
    if (/POST \/v1\/recognitions$/.test(aim))
      return [`?${callback}`, `?${callback}&events=recognitions.completed_with_results&user_token=t`, '?timestamps=true'];
    if (aim.endsWith('/content')) return [`?${pool.contentQuery}`];
    if (aim.includes('deliveries')) return ['?state=pending', '?state=dead&top=1'];
    return [''];
  };
  /** A value of the documented type: one of its enum, its default or a near miss, else any value. */
  const documentedValue = ({ schema = {} }: QueryParameter): fc.Arbitrary<string> => {
    const listed = [...(schema.enum ?? []), ...(schema.default !== undefined ? [schema.default] : [])].map(String);
    const typed =
      schema.type === 'integer' || schema.type === 'number'
        ? fc.oneof(fc.integer({ min: -2, max: 5000 }).map(String), fc.constantFrom('1.5', '1e3', '0x10', ''))
        : schema.type === 'boolean'
          ? fc.constantFrom('true', 'false', 'TRUE', '1', 'yes')
          : values;
    const nearMiss = listed.length ? fc.constantFrom(...listed).map((v) => v.toUpperCase() + (v.length % 2 ? ' ' : '')) : typed;
    return listed.length ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...listed) }, nearMiss, typed) : typed;
  };
  /** A query drawn from what /openapi.json documents for the route: some of its parameters, typed values. */
  const documentedQuery = (name: string | undefined) => {
    const parameters = (name && pool.documented.get(name)) || [];
    if (!parameters.length) return fc.constant('');
    return fc
      .tuple(
        ...parameters.map((p) =>
          fc.option(
            documentedValue(p).map((v) => `${encodeURIComponent(p.name)}=${encodeURIComponent(v)}`),
            { freq: 2 },
          ),
        ),
      )
      .map((pairs) => {
        const given = pairs.filter((pair): pair is string => pair !== null);
        return given.length ? `?${given.join('&')}` : '';
      });
  };
  const queryFor = (aim: string, name: string | undefined) =>
    fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...goodQuery(aim)) }, { weight: 2, arbitrary: documentedQuery(name) }, query);
  const query = fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    { weight: 1, arbitrary: fc.constant('?') },
    {
      weight: 6,
      arbitrary: fc
        .array(fc.tuple(names, values, fc.constantFrom<'uri' | 'raw'>('uri', 'uri', 'raw')), { minLength: 1, maxLength: 6 })
        .map((pairs) => `?${pairs.map(([k, v, mode]) => `${encodeText(k, mode)}=${encodeText(v, mode)}`).join('&')}`),
    },
    { weight: 1, arbitrary: fc.constant(`?${pool.contentQuery.replace(/sig=./, 'sig=A')}`) },
    { weight: 1, arbitrary: text.map((s) => `?${rawText(s, true)}`) },
  );

  const tweak = fc.oneof(
    { weight: 6, arbitrary: fc.constant('none' as const) },
    { weight: 1, arbitrary: fc.constantFrom('trailing-slash', 'double-slash', 'upper', 'extra', 'truncate', 'dot') },
  );
  const routePath = fc
    .constantFrom(...routes)
    .chain((r) => {
      const names = r.route.pattern.split('/').filter((part) => part.startsWith(':'));
      return fc.record({
        r: fc.constant(r),
        params: fc.tuple(...names.map((_, i) => segmentFor(segmentShapes(r.route)[i]))),
        mount: fc.nat(),
        mountParameter: segment,
        tweak,
        extra: segment,
      });
    })
    .map(({ r, params, mount, mountParameter, tweak, extra }) => {
      let i = 0;
      let path = r.route.pattern
        .split('/')
        .map((part) => (part.startsWith(':') ? params[i++]! : part))
        .join('/');
      path = r.mounts[mount % r.mounts.length]!.replace(/:[^/]+/, mountParameter) + path;
      switch (tweak) {
        case 'trailing-slash':
          path += '/';
          break;
        case 'double-slash':
          path = path.replace('/', '//');
          break;
        case 'upper':
          path = path.toUpperCase();
          break;
        case 'extra':
          path += `/${extra}`;
          break;
        case 'truncate':
          path = path.slice(0, Math.max(1, path.length - 1 - (extra.length % path.length)));
          break;
        case 'dot':
          path = path.replace(/\/([^/]+)$/, '/./$1');
          break;
      }
      const method = r.route.method === 'del' ? 'DELETE' : r.route.method.toUpperCase();
      return { path, method, aim: `${r.dialect} ${method} ${r.route.pattern}`, name: r.route.name };
    });
  const randomPath = fc
    .array(segment, { minLength: 0, maxLength: 6 })
    .map((parts) => ({ path: `/${parts.join('/')}`, method: 'GET', aim: 'random path', name: undefined }));
  const where = fc.oneof({ weight: 12, arbitrary: routePath }, { weight: 1, arbitrary: randomPath });

  const validAuth = fc.constantFrom<Array<[string, string]>>(
    [['Authorization', `Bearer ${apiKey}`]],
    [['Authorization', `Basic ${Buffer.from(`apikey:${apiKey}`).toString('base64')}`]],
    [['Ocp-Apim-Subscription-Key', apiKey]],
    [['Authorization', `bearer    ${apiKey}`]],
  );
  const otherAuth = fc.constantFrom<Array<[string, string]>>(
    [],
    [['Authorization', 'Bearer wrong-key']],
    [['Authorization', 'Bearer']],
    [['Authorization', 'Basic !!!not-base64']],
    [['Authorization', `Basic ${Buffer.from(`apikey${apiKey}`).toString('base64')}`]],
    [['Authorization', `Basic ${Buffer.from(`user:${apiKey}`).toString('base64')}`]],
    [['Authorization', `Digest ${apiKey}`]],
    [['Authorization', `Bearer ${apiKey}x`]],
    [['Authorization', `Bearer ${'k'.repeat(5000)}`]],
    [['Ocp-Apim-Subscription-Key', '']],
    [
      ['Authorization', 'Bearer wrong'],
      ['Authorization', `Bearer ${apiKey}`],
    ],
    [
      ['Ocp-Apim-Subscription-Key', 'wrong'],
      ['Authorization', `Bearer ${apiKey}`],
    ],
  );
  const auth = fc.oneof({ weight: 3, arbitrary: validAuth }, { weight: 1, arbitrary: otherAuth });
  const audioType = fc.constantFrom('audio/wav', 'audio/x-wav', 'audio/l16;rate=16000', 'application/octet-stream', 'application/json', 'audio/basic');
  const contentType = fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    {
      weight: 6,
      arbitrary: fc.constantFrom(
        'audio/wav',
        'audio/x-wav',
        'audio/flac',
        'audio/ogg',
        'audio/ogg;codecs=opus',
        'audio/mp3',
        'audio/mpeg',
        'audio/basic',
        'audio/l16;rate=16000',
        'audio/l16;rate=16000;channels=2;endianness=big-endian',
        'audio/l16;rate=0',
        'audio/l16;rate=abc;channels=-1',
        'audio/l16',
        'audio/mulaw;rate=8000',
        'audio/alaw;rate=99999999999',
        'audio/webm',
        'application/octet-stream',
        'application/json',
        'application/json; charset=utf-8',
        'application/merge-patch+json',
        'multipart/form-data; boundary=x',
        'text/plain',
        '',
        ';;;',
        'audio/',
        `audio/wav;${'p=v;'.repeat(500)}`,
      ),
    },
    { weight: 1, arbitrary: text.map((s) => rawText(s, true)) },
  );
  const contentEncoding = fc.oneof(
    { weight: 8, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.constant('gzip') },
    { weight: 1, arbitrary: fc.constantFrom('deflate', 'br', 'identity', 'GZIP', 'gzip, gzip', 'x-gzip', 'compress', '') },
  );
  const accept = fc.oneof(
    { weight: 6, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.constantFrom('application/json', 'text/plain', '*/*', 'application/*;q=0.1', 'text/html, application/xml', '', 'garbage;;') },
  );
  const extras = fc.array(
    fc.oneof(
      fc.constantFrom<[string, string]>(
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-Proto', 'gopher'],
        ['Expect', '100-continue'],
        ['Connection', 'close'],
        ['Connection', 'keep-alive, Upgrade'],
        ['Upgrade', 'websocket'],
        ['Range', 'bytes=0-10'],
        ['If-None-Match', '*'],
        ['Origin', 'http://evil.example'],
        ['Cookie', 'a=b'],
        ['Content-Language', 'de'],
      ),
      fc.tuple(
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/),
        text.map((s) => rawText(s, true)),
      ),
    ),
    { maxLength: 3 },
  );
  const host = fc.oneof(
    { weight: 10, arbitrary: fc.constant<string | undefined>('127.0.0.1:{port}') },
    { weight: 2, arbitrary: fc.constantFrom<string | undefined>('', 'evil.example', 'x'.repeat(3000), '[::1]', 'a b', 'localhost:99999') },
    { weight: 1, arbitrary: fc.constant<string | undefined>(undefined) },
  );

  const webUrl = fc.oneof({ weight: 2, arbitrary: fc.constantFrom(pool.receiverUrl, `${pool.receiverUrl}/hook`) }, fc.constantFrom(...urls), text);
  const display = fc.oneof({ weight: 3, arbitrary: fc.constant('fuzz') }, text);
  const eventsObject = fc.dictionary(fc.oneof(fc.constantFrom(...webHookEventKeys), text), fc.oneof(fc.boolean(), fc.constant(null), fc.integer()), {
    maxKeys: 5,
  });
  const webhookV31 = fc.record(
    {
      webUrl,
      displayName: display,
      description: fc.oneof(text, fc.constant(null)),
      events: fc.oneof(eventsObject, fc.constant({ transcriptionCompletion: true })),
      properties: fc.record({ secret: fc.oneof(text, fc.integer()) }, { requiredKeys: [] }),
      customProperties: fc.dictionary(text, fc.oneof(text, fc.integer()), { maxKeys: 3 }),
    },
    { requiredKeys: [] },
  );
  // Most of what a hook needs, so that creating and changing hooks gets past the checks.
  const nearlyValidV31 = fc.record(
    { webUrl, displayName: display, events: fc.oneof({ weight: 3, arbitrary: fc.constant({ transcriptionCompletion: true }) }, eventsObject) },
    { requiredKeys: ['webUrl', 'displayName', 'events'] },
  );
  const nearlyValidV21 = fc.record({
    configuration: fc.record({ url: webUrl, secret: fc.oneof(fc.constant('s3cret'), text) }, { requiredKeys: ['url'] }),
    events: fc.constantFrom(['TranscriptionCompletion'], ['TranscriptionCreation', 'TranscriptionDeletion'], ['Bogus']),
    name: display,
  });
  const webhookV21 = fc.record(
    {
      configuration: fc.record({ url: webUrl, secret: text }, { requiredKeys: [] }),
      events: fc.array(fc.oneof(fc.constantFrom('TranscriptionCompletion', 'TranscriptionCreation', 'DataImportCompletion'), text), { maxLength: 4 }),
      active: fc.oneof(fc.boolean(), text),
      name: text,
    },
    { requiredKeys: [] },
  );
  const audio = wav(1);
  const jsonBody = fc.oneof(
    { weight: 3, arbitrary: fc.oneof(webhookV31, webhookV21, fc.jsonValue()).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
    { weight: 3, arbitrary: fc.oneof(nearlyValidV31, nearlyValidV21).map((v) => Buffer.from(JSON.stringify(v))) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => Buffer.from(`{"webUrl":${s}`)) },
  );
  const audioBody = fc.oneof(
    { weight: 3, arbitrary: fc.constant(audio) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.nat(audio.length), fc.nat(255)).map(([cut, byte]) => {
        const b = Buffer.from(audio.subarray(0, Math.max(cut, 1)));
        b[Math.floor(cut / 2)] = byte;
        return b;
      }),
    },
  );
  const anyBody = fc.oneof(
    { weight: 5, arbitrary: fc.constant(Buffer.alloc(0)) },
    { weight: 3, arbitrary: jsonBody },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 4096 }).map((a) => Buffer.from(a)) },
    { weight: 2, arbitrary: audioBody },
    { weight: 1, arbitrary: fc.integer({ min: 65_536, max: 2_000_000 }).map((n) => Buffer.alloc(n, 'RIFF')) },
  );
  /** Bodies and types that a route takes, most of the time, so that requests get past the checks. */
  const fitting = (aim: string) => {
    if (/POST \/v1\/recognitions$/.test(aim))
      return { body: fc.oneof({ weight: 3, arbitrary: audioBody }, anyBody), type: fc.oneof({ weight: 3, arbitrary: audioType }, contentType) };
    if (/(POST|PATCH) .*(webhooks|hooks)$|PATCH .*webhooks\/:id$/.test(aim)) {
      return {
        body: fc.oneof({ weight: 3, arbitrary: jsonBody }, anyBody),
        type: fc.oneof({ weight: 3, arbitrary: fc.constant('application/json') }, contentType),
      };
    }
    return { body: anyBody, type: contentType };
  };

  return where
    .chain((where) => {
      const { body, type } = fitting(where.aim);
      return fc.record({
        where: fc.constant(where),
        method: fc.oneof(
          { weight: 10, arbitrary: fc.constant(undefined) },
          { weight: 3, arbitrary: fc.constantFrom(...standardMethods) },
          { weight: 1, arbitrary: fc.constant('HEAD') },
          { weight: 1, arbitrary: fc.constantFrom(...oddMethods) },
        ),
        query: queryFor(where.aim, where.name),
        host,
        auth,
        contentType: type,
        contentEncoding,
        gzipBody: fc.boolean(),
        accept,
        extras,
        brokenHeader: fc.oneof({ weight: 40, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
        body,
        framing: fc.oneof(
          { weight: 14, arbitrary: fc.constant<Framing>('exact') },
          { weight: 2, arbitrary: fc.constant<Framing>('chunked') },
          { weight: 1, arbitrary: fc.constantFrom(...framings) },
        ),
      });
    })
    .map((d) => {
      const method = d.method ?? d.where.method;
      const headers: Array<[string, string]> = [];
      if (d.host !== undefined) headers.push(['Host', d.host]);
      headers.push(...d.auth);
      if (d.contentType !== undefined) headers.push(['Content-Type', d.contentType]);
      if (d.contentEncoding !== undefined) headers.push(['Content-Encoding', d.contentEncoding]);
      if (d.accept !== undefined) headers.push(['Accept', d.accept]);
      headers.push(...d.extras);
      if (d.brokenHeader) headers.push(['Broken Header', 'x']);
      const bodyBytes = d.contentEncoding === 'gzip' && d.gzipBody ? gzipSync(d.body) : d.body;
      // What HTTP requires an answer to; the rest uWS may drop (it does: no Host, odd methods,
      // bad header names, framing errors, unread bytes parsed as a next request).
      const framingOk = d.framing === 'exact' || d.framing === 'chunked' || (d.framing === 'none' && bodyBytes.length === 0);
      const wellFormed =
        !oddMethods.includes(method) && d.host !== undefined && !d.brokenHeader && framingOk && !d.extras.some(([name]) => name.toLowerCase() === 'upgrade');
      return { method, target: d.where.path + d.query, headers, body: bodyBytes, framing: d.framing, wellFormed, aim: d.where.aim };
    });
}

// ---- checking answers --------------------------------------------------------------------

interface Tally {
  sent: number;
  outcomes: Record<string, number>;
  statuses: Record<string, number>;
  byDialect: Record<string, number>;
  uploadsAccepted: number;
  slowestMs: number;
  /** Statuses per route drawn for (printed with EARSHOT_FUZZ_VERBOSE=1). */
  byAim: Record<string, Record<string, number>>;
  /** Routes (by what they were drawn for) that answered 2xx at least once. */
  succeeded: Set<string>;
}

/** A request as it went out, long runs of one character shortened. */
function describe(r: FuzzRequest, bytes: Buffer): string {
  const text = bytes.toString('latin1').replace(/(.)\1{39,}/gs, (run, ch: string) => `${ch.repeat(8)}…(${run.length}×)`);
  const shown = text.length > 2000 ? `${text.slice(0, 2000)}… (${bytes.length} bytes)` : text;
  return `${r.aim}, framing ${r.framing}, ${r.wellFormed ? 'well-formed' : 'malformed'}:\n${JSON.stringify(shown)}`;
}

/** Why an outcome breaks a property, or undefined. */
function violation(r: FuzzRequest, path: string, outcome: RawOutcome): string | undefined {
  if (outcome.kind !== 'response') return r.wellFormed ? `no answer to a well-formed request (${outcome.kind})` : undefined;
  const { status, headers, body } = outcome.response;
  const text = body.toString('utf8');
  if (status >= 500) {
    if (status !== 503 && status !== 507) return `status ${status}: ${text.slice(0, 500)}`;
    if (!/^\d+$/.test(headers['retry-after'] ?? '')) return `status ${status} without Retry-After`;
  }
  const json = /^application\/json/i.test(headers['content-type'] ?? '');
  let parsed: unknown;
  if (json && body.length) {
    try {
      parsed = JSON.parse(text);
    } catch {
      return `Content-Type application/json but the body is not JSON: ${text.slice(0, 200)}`;
    }
  }
  if (status >= 400 && r.method !== 'HEAD') {
    const dialect = dialectOf(path);
    if (!json || typeof parsed !== 'object' || parsed === null || !errorShapes[dialect]!(status, parsed as Body)) {
      return `status ${status} not in the ${dialect} error shape: ${headers['content-type']} ${text.slice(0, 300)}`;
    }
  }
  return undefined;
}

/** Sends one request; resolves with why it broke a property, if it did. Keeps the pool up to date. */
async function send(r: FuzzRequest, pool: Pool, tally: Tally): Promise<string | undefined> {
  const bytes = serialize(r, pool);
  const path = resolveRefs(r.target, pool).split('?')[0]!;
  const started = performance.now();
  // A malformed request may legitimately get no answer: do not wait long for one.
  const outcome = await rawRequest({ port: pool.port, bytes, timeoutMs: r.wellFormed ? 15_000 : 600, head: r.method === 'HEAD' });
  if (r.wellFormed) tally.slowestMs = Math.max(tally.slowestMs, performance.now() - started);
  tally.sent++;
  tally.outcomes[outcome.kind] = (tally.outcomes[outcome.kind] ?? 0) + 1;
  const aim = tally.byAim[`${r.method} ${r.aim}`] ?? {};
  tally.byAim[`${r.method} ${r.aim}`] = aim;
  const key = outcome.kind === 'response' ? String(outcome.response.status) : outcome.kind;
  aim[key] = (aim[key] ?? 0) + 1;
  if (outcome.kind === 'response') {
    const { status, body } = outcome.response;
    tally.statuses[status] = (tally.statuses[status] ?? 0) + 1;
    const dialect = dialectOf(path);
    tally.byDialect[dialect] = (tally.byDialect[dialect] ?? 0) + 1;
    if (status >= 200 && status < 300 && r.aim.split(' ')[1] === r.method) tally.succeeded.add(r.aim);
    if (status === 201) learn(pool, r.aim, body);
    if (status === 204 && r.method === 'DELETE') forget(pool, path);
    if (status === 201 && /POST \/v1\/recognitions$/.test(r.aim)) tally.uploadsAccepted++;
  }
  const why = violation(r, path, outcome);
  return why && `${why}\nrequest: ${describe(r, bytes)}`;
}

/** Drops what a DELETE removed from the pool (the last segment of its path). */
function forget(pool: Pool, path: string): void {
  const last = path.split('/').pop() ?? '';
  let id = last;
  try {
    id = decodeURIComponent(last);
  } catch {
    // not an id of ours then
  }
  id = id.toLowerCase();
  for (const kind of ['job', 'hook'] as const) pool[kind] = pool[kind].filter((x) => x.toLowerCase() !== id);
}

/** Adds what a 201 created (a job, a hook) to the pool; the oldest go when it is full. */
function learn(pool: Pool, aim: string, body: Buffer): void {
  let created: { id?: unknown; self?: unknown };
  try {
    created = JSON.parse(body.toString('utf8')) as typeof created;
  } catch {
    return;
  }
  const id = typeof created.self === 'string' ? created.self.split('/').pop() : typeof created.id === 'string' ? created.id : undefined;
  if (!id) return;
  const list = /recognitions/.test(aim) ? pool.job : /hooks/.test(aim) ? pool.hook : undefined;
  list?.push(id);
  if (list && list.length > 20) list.shift();
}

// ---- the run -------------------------------------------------------------------------------

t.test(`${requests} fuzzed requests over every route of every dialect`, async (t) => {
  // Callbacks to …/gone are answered 410: dead letters, for the redelivery routes to find.
  const receiver = await startReceiver(t, (req) => ({ status: req.url.pathname.endsWith('/gone') ? 410 : 200 }));
  // A short queue, so that the fuzzer meets the full queue (503 with Retry-After) too.
  const service = await startApp(t, { EARSHOT_MAX_QUEUED: '20', EARSHOT_LOG_LEVEL: 'error' });
  const port = service.app.http.port;
  const auth = { Authorization: `Bearer ${apiKey}` };
  const call = async (method: string, path: string, body?: string | Buffer, type = 'application/json') => {
    const res = await fetch(`${service.base}${path}`, { method, headers: { ...auth, 'Content-Type': type }, ...(body ? { body } : {}) });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`set-up ${method} ${path}: ${res.status} ${text}`);
    return text ? (JSON.parse(text) as Record<string, any>) : {};
  };

  // Things for the requests to find: jobs (one with callbacks), hooks of both versions, files, deliveries.
  await call('POST', `/v1/register_callback?callback_url=${encodeURIComponent(receiver.url)}`);
  await call('POST', `/v1/register_callback?callback_url=${encodeURIComponent(`${receiver.url}/gone`)}`);
  const newHook = async (n: number) => {
    const created =
      n % 2 === 0
        ? await call(
            'POST',
            '/speechtotext/v3.1/webhooks',
            JSON.stringify({ webUrl: `${receiver.url}/azure${n % 4 === 2 ? '/gone' : ''}`, displayName: 'fuzz', events: { transcriptionCompletion: true } }),
          )
        : await call(
            'POST',
            '/api/speechtotext/v2.1/transcriptions/hooks',
            JSON.stringify({ configuration: { url: `${receiver.url}/v21` }, events: ['TranscriptionCompletion'], name: 'fuzz' }),
          );
    return typeof created.self === 'string' ? created.self.split('/').pop()! : String(created.id);
  };
  const callbacks = ['', `?callback_url=${encodeURIComponent(receiver.url)}`, `?callback_url=${encodeURIComponent(`${receiver.url}/gone`)}`];
  const newJob = async (n: number) => (await call('POST', `/v1/recognitions${callbacks[n % 3]}`, wav(1), 'audio/wav')).id as string;
  const jobs = [await newJob(0), await newJob(1), await newJob(2)];
  for (const id of jobs) await waitForJob(service.base, auth, id);
  const files = (await call('GET', `/speechtotext/v3.1/transcriptions/${jobs[0]}/files`)).values as Array<{ self: string; links: { contentUrl: string } }>;
  await receiver.until((events) => events.some((e) => e.headers['webhook-id']), 'a delivery');
  const deliveries = () => [...new Set(receiver.events().map((e) => String(e.headers['webhook-id'])))].slice(-20);
  const pool: Pool = {
    port,
    job: jobs,
    hook: [await newHook(0), await newHook(1)],
    file: files.map((f) => f.self.split('/').pop()!),
    delivery: deliveries(),
    model: ((await call('GET', '/v1/models')).models as Array<{ name: string }>).map((m) => m.name).slice(0, 3),
    contentQuery: new URL(files[0]!.links.contentUrl).search.slice(1),
    receiverUrl: receiver.url,
    documented: documentedQueries((await call('GET', '/openapi.json')) as Parameters<typeof documentedQueries>[0]),
  };
  // The fuzzer deletes what it finds: between batches, the pool gets new things (when the
  // queue and the hook limit allow; they may be full, which is the fuzzer's doing too).
  const topUp = async () => {
    pool.delivery = deliveries();
    for (let n = 0; pool.job.length < 6 && n < 6; n++) pool.job.push(await newJob(n).catch(() => 'gone'));
    for (let n = 0; pool.hook.length < 4 && n < 4; n++) pool.hook.push(await newHook(n).catch(() => 'gone'));
    pool.job = pool.job.filter((id) => id !== 'gone');
    pool.hook = pool.hook.filter((id) => id !== 'gone');
    // Result files (and a signed URL) of a job that is still there.
    for (const id of pool.job) {
      const res = await fetch(`${service.base}/speechtotext/v3.1/transcriptions/${id}/files`, { headers: auth });
      const listed = res.ok ? ((await res.json()) as { values: Array<{ self: string; links: { contentUrl: string } }> }).values : [];
      if (!listed.length) continue;
      pool.file = listed.map((f) => f.self.split('/').pop()!);
      pool.contentQuery = new URL(listed[0]!.links.contentUrl).search.slice(1);
      break;
    }
  };

  const tally: Tally = { sent: 0, outcomes: {}, statuses: {}, byDialect: {}, uploadsAccepted: 0, slowestMs: 0, byAim: {}, succeeded: new Set() };
  const started = Date.now();
  let batches = 0;
  const health = async () => {
    const outcome = await rawRequest({ port, bytes: Buffer.from(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`), timeoutMs: 10_000 });
    if (outcome.kind !== 'response' || outcome.response.status !== 200)
      throw new Error(`/healthz did not answer 200 after a batch: ${JSON.stringify(outcome)}`);
  };
  const result = await fc.check(
    fc.asyncProperty(fc.array(requestArbitrary(pool), { minLength: batchSize, maxLength: batchSize }), async (batch) => {
      batches++;
      const problems = (await Promise.all(batch.map((r) => send(r, pool, tally)))).filter((p) => p !== undefined);
      await health();
      await topUp();
      if (problems.length) throw new Error(`${problems.length} of ${batch.length} requests broke a property; the first:\n${problems[0]}`);
    }),
    { seed, numRuns: Math.ceil(requests / batchSize), endOnFailure: true, interruptAfterTimeLimit: 8 * 60_000, markInterruptAsFailure: true },
  );
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  report(
    t,
    `api fuzz: ${tally.sent} requests in ${batches} batches, ${seconds} s; outcomes ${JSON.stringify(tally.outcomes)}; ` +
      `statuses ${JSON.stringify(tally.statuses)}; by dialect ${JSON.stringify(tally.byDialect)}; uploads accepted ${tally.uploadsAccepted}; ` +
      `slowest well-formed answer ${tally.slowestMs.toFixed(0)} ms; ` +
      `queries drawn from /openapi.json's parameters of ${[...pool.documented.values()].filter((p) => p.length).length} routes; routes answering 2xx ${tally.succeeded.size} of ${routes.length} ` +
      `(never: ${
        routes
          .map((r) => `${r.dialect} ${r.route.method === 'del' ? 'DELETE' : r.route.method.toUpperCase()} ${r.route.pattern}`)
          .filter((a) => !tally.succeeded.has(a))
          .join(', ') || 'none'
      })`,
  );
  if (process.env.EARSHOT_FUZZ_VERBOSE) report(t, JSON.stringify(tally.byAim, null, 1));
  if (result.failed) {
    const error = result.errorInstance instanceof Error ? (result.errorInstance.stack ?? result.errorInstance.message) : String(result.errorInstance);
    t.fail(`batch ${result.numRuns} of seed ${seed} (fast-check path ${result.counterexamplePath}): ${error}`);
  } else t.pass(`${tally.sent} requests: every property held (seed ${seed})`);
  t.ok(tally.sent >= requests, `at least ${requests} requests were sent`);
  await health();
  t.pass('the service still answers /healthz');
});
