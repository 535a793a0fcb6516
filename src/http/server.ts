import { STATUS_CODES } from 'node:http';

import type { HttpRequest as UwsRequest, HttpResponse as UwsResponse, us_listen_socket } from 'uWebSockets.js';

import { AppError, toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { RequestBody, type DiscardLimits } from './body.js';
import type { GroupApi } from './openapi.js';
import { loadUws, type Uws } from './uws.js';

/** What a route handler sees: a copy of the request, taken before uWS recycles it. */
export interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Lower-case header names. */
  headers: Readonly<Record<string, string>>;
  params: Readonly<Record<string, string>>;
  remoteAddress: string;
  /** The mount the request came in under (`/instances/abc`), or '' (see RouteGroup.mounts). */
  mount: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  body: RequestBody;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /**
   * A stream (server-sent events) is written piece by piece as it yields. Its first piece
   * is awaited before the status is sent: a failure until then is answered as any error;
   * a later one ends the response (the stream says why first, if it can). When the client
   * leaves, the stream is returned (ended) at its next piece.
   */
  body?: string | Buffer | AsyncIterable<string>;
}

/** A stream whose first piece was read (see Reply.body). */
interface PrefetchedStream extends AsyncIterable<string> {
  first: string;
  rest: AsyncIterator<string>;
}

const isStream = (body: Reply['body']): body is AsyncIterable<string> => typeof body === 'object' && body !== null && Symbol.asyncIterator in body;

export type Method = 'get' | 'post' | 'put' | 'patch' | 'del';

export interface Route {
  method: Method;
  /** uWS pattern: '/v1/recognitions/:id' */
  pattern: string;
  /** A short name for metrics ("ibm.recognitions.create"). */
  name: string;
  handler: (req: Request) => Promise<Reply> | Reply;
  /** false for health probes; everything else requires credentials when auth is on. */
  auth?: boolean;
  /** What it does, for the README's API tables (scripts/docs.ts); every route has one. */
  doc: string;
  /** The path as the README shows it, when the pattern would mislead (Azure's `{id}:action`). */
  shown?: string;
  /** The mount the README shows it under, when not its group's first (a route only one mount has). */
  shownUnder?: string;
}

/** The routes of one API dialect and how that dialect writes errors. */
export interface RouteGroup {
  /**
   * Requests under this prefix (after one of the mounts) that match no route get this
   * group's 404; of several groups that own a path, the one that owns the longest part of
   * it (its mount's part and its prefix).
   */
  prefix: string;
  /**
   * The path prefixes the routes answer under, as uWS patterns (default `['']`: as written).
   * IBM's `['', '/instances/:instance']` serves `/v1/models` as `/instances/{guid}/v1/models`
   * too; Azure's serve one set of routes under each API version's prefix. A mount's
   * parameters are not route parameters; `Request.mount` says which mount was used.
   */
  mounts?: readonly string[];
  /** What the mounts after the first are, for the README (which shows paths under the first). */
  mountsDoc?: string;
  /**
   * Paths are matched case-insensitively and a trailing slash is ignored (Azure's are).
   * uWS matches exactly; a request it found no route for is matched again this way.
   */
  lenient?: boolean;
  routes: Route[];
  /** The group's part of `/openapi.json`: schemas, error shape, one OperationDoc per route (src/http/openapi.ts). */
  api?: GroupApi;
  renderError(error: AppError, req: Request | undefined): Reply;
}

/**
 * A WebSocket endpoint (the page's live feed). Browsers send no custom headers on a
 * WebSocket, and cookies would let any site on the LAN's browsers open one: the key comes
 * as a subprotocol token (`key.<base64url of the key>`, beside `protocol`), and the
 * Origin must be the device itself, so no other origin can open it even without a key.
 */
export interface SocketRoute {
  pattern: string;
  name: string;
  /** The subprotocol the server agrees to (the client offers it with its key token). */
  protocol: string;
  /** A socket opened: `send` queues a text message (false once closed); returns what to do when it closes. */
  open(send: (message: string) => boolean): () => void;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  groups: RouteGroup[];
  sockets?: SocketRoute[];
  /** Throws ERR_UNAUTHORIZED (or another AppError) to refuse a request. */
  authenticate(req: Pick<Request, 'headers'>): void;
  log: Logger;
  metrics: Metrics;
}

export const json = (status: number, value: unknown, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { 'Content-Type': 'application/json', ...headers },
  body: JSON.stringify(value),
});

/** A query parameter that must be present and non-empty. */
export function requiredParam(req: Request, name: string): string {
  const value = req.query.get(name);
  if (!value) throw new AppError('ERR_INVALID_ARGUMENT', `Missing required query parameter '${name}'`);
  return value;
}

/** The service's origin as the client reached it (`http://pi.local:8080`). */
export function originUrl(req: Request): string {
  const proto = req.headers['x-forwarded-proto'] === 'https' ? 'https' : 'http';
  return `${proto}://${req.headers.host ?? 'localhost'}`;
}

/** The service's own base URL as the client reached it, with its mount (for `self`, `url` and links). */
export function baseUrl(req: Request): string {
  return `${originUrl(req)}${req.mount}`;
}

/** The leading segments of `path` that a mount pattern stands for ('/instances/abc' of '/instances/abc/v1/x'). */
function leadingPart(path: string, mount: string): string {
  return path.split('/').slice(0, mount.split('/').length).join('/');
}

/** `leadingPart` when it matches the mount pattern (for paths no route matched), else undefined. */
function mountedPart(path: string, mount: string): string | undefined {
  const part = leadingPart(path, mount);
  return new RegExp(`^${mount.replace(/:[^/]+/g, '[^/]+')}$`).test(part) ? part : undefined;
}

const mountsOf = (group: RouteGroup): readonly string[] => group.mounts ?? [''];

/** A route of a lenient group as a case-insensitive regular expression over mount + pattern. */
interface LenientRoute {
  route: Route;
  mount: string;
  regex: RegExp;
  /** Literal segments: the more, the more specific (uWS prefers literals to parameters too). */
  literals: number;
}

function lenientRoutes(group: RouteGroup): LenientRoute[] {
  const compiled = mountsOf(group).flatMap((mount) =>
    group.routes.map((route) => {
      const parts = `${mount}${route.pattern}`.split('/');
      const source = parts.map((p) => (p.startsWith(':') ? '([^/]+)' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
      return { route, mount, regex: new RegExp(`^${source}$`, 'i'), literals: parts.filter((p) => p && !p.startsWith(':')).length };
    }),
  );
  return compiled.sort((a, b) => b.literals - a.literals);
}

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

const methodsWithBody = new Set(['post', 'put', 'patch']);

/**
 * What is read and dropped of a body answered before it arrived: a few seconds of upload on
 * a LAN (a refused 20 MB upload takes ~0.1 s on loopback). Past that the connection closes,
 * and a client that is still sending may see a reset.
 */
const discardLimits: DiscardLimits = { maxBytes: 64 * 1024 * 1024, maxMs: 5000 };

/** Methods that change nothing: allowed from any origin (without CORS headers the page cannot read the answer). */
const safeMethods = new Set(['get', 'head', 'options']);

/** Whether `origin` (a browser's Origin header) is the origin the request was sent to (its Host). */
export function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (!origin || !host) return false;
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host === new URL(`${url.protocol}//${host}`).host;
  } catch {
    return false;
  }
}

/** A malformed %-escape in a path must not throw inside uWS's callback (it would end the process). */
function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * The one HTTP front end: uWebSockets.js, every request through the same wrapper
 * (copy the request, register onAborted first, authenticate, run the handler, write the
 * reply corked), errors rendered by the dialect that owns the path.
 */
export class HttpServer {
  private uws: Uws | null = null;
  /** The uWebSockets.js package and version that loaded (see loadUws), once listening. */
  uwsBuild = '';
  private listenSocket: us_listen_socket | null = null;
  private readonly requests;
  private readonly latency;
  private draining = false;
  /** Open WebSockets, closed with the server (an open one would keep the process alive). */
  private readonly sockets = new Map<object, { ws: { end(code?: number, message?: string): void }; closed: () => void }>();
  port = 0;

  constructor(private readonly options: HttpServerOptions) {
    this.requests = options.metrics.counter('earshot_http_requests_total', 'HTTP requests by route and status');
    this.latency = options.metrics.histogram(
      'earshot_http_request_duration_seconds',
      'HTTP request latency by route',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    );
  }

  /** The route groups it serves, in order (the OpenAPI document's tests walk them). */
  get groups(): readonly RouteGroup[] {
    return this.options.groups;
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  async listen(): Promise<number> {
    const loaded = loadUws();
    this.uws = loaded.uws;
    this.uwsBuild = `${loaded.build.packageName}@${loaded.build.version}`;
    const app = this.uws.App();
    for (const group of this.options.groups) {
      for (const route of group.routes) {
        for (const mount of mountsOf(group)) {
          app[route.method](`${mount}${route.pattern}`, (res, req) => this.handle(res, req, route, group, mount));
        }
      }
    }
    for (const socket of this.options.sockets ?? []) this.socket(app, socket);
    const lenient = new Map(this.options.groups.filter((g) => g.lenient).map((g) => [g, lenientRoutes(g)]));
    app.any('/*', (res, req) => {
      const path = req.getUrl();
      const lower = path.toLowerCase();
      /** How much of the path the group owns (its mount's part and its prefix), or -1. */
      const owned = (g: RouteGroup): number => {
        // A lenient group owns its prefix in any case.
        const candidate = g.lenient ? lower : path;
        const prefix = g.lenient ? g.prefix.toLowerCase() : g.prefix;
        return Math.max(
          -1,
          ...mountsOf(g).map((m) => {
            const part = m ? mountedPart(candidate, m.toLowerCase()) : '';
            return part !== undefined && candidate.slice(part.length).startsWith(prefix) ? part.length + prefix.length : -1;
          }),
        );
      };
      // The most specific owner (OpenAI's `/v1/audio` inside IBM's `/v1`, Azure's versions
      // inside the service's `/`); the first of equals.
      let group = this.options.groups.at(-1)!;
      let longest = -1;
      for (const g of this.options.groups) {
        const length = owned(g);
        if (length > longest) [group, longest] = [g, length];
      }
      const method = req.getMethod();
      const second = lenient.get(group) && this.lenientMatch(lenient.get(group)!, method, path);
      if (second) return this.handle(res, req, second.route, group, second.mount, second.params);
      this.handle(
        res,
        req,
        {
          method: 'get',
          pattern: '/*',
          name: 'unmatched',
          auth: false,
          doc: 'any path no route matches: 404 (405 for a known path) in the dialect of its prefix',
          handler: () => {
            throw new AppError('ERR_NOT_FOUND', `No such resource: ${method.toUpperCase()} ${path}`);
          },
        },
        group,
      );
    });
    const { host, port } = this.options;
    await new Promise<void>((resolve, reject) => {
      app.listen(host, port, (socket) => {
        if (!socket) return reject(new AppError('ERR_CONFIG', `Cannot listen on ${host}:${port} (in use, or not an address of this machine)`));
        this.listenSocket = socket;
        this.port = this.uws!.us_socket_local_port(socket);
        resolve();
      });
    });
    return this.port;
  }

  /** Registers a WebSocket route: Origin and key checked at the upgrade, before any socket exists. */
  private socket(app: ReturnType<Uws['App']>, route: SocketRoute): void {
    const closers = this.sockets;
    app.ws<{ name: string }>(route.pattern, {
      maxPayloadLength: 4096,
      idleTimeout: 60,
      sendPingsAutomatically: true,
      upgrade: (res, raw, context) => {
        const headers: Record<string, string> = {};
        raw.forEach((key, value) => {
          headers[key] = value;
        });
        const refuse = (status: number, message: string) => {
          this.options.log.debug('websocket refused', { route: route.name, status, message });
          res.cork(() => {
            res.writeStatus(statusLine(status));
            res.writeHeader('Content-Type', 'application/json');
            res.end(JSON.stringify({ code: status, message }));
          });
          this.requests.inc({ route: route.name, status: String(status) });
        };
        if (this.draining) return refuse(503, 'The service is shutting down');
        if (!sameOrigin(headers.origin, headers.host)) return refuse(403, "WebSocket connections are accepted from the device's own page only (Origin)");
        const offered = (headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
        if (!offered.includes(route.protocol)) return refuse(400, `Offer the subprotocol ${route.protocol}`);
        const token = offered.find((p) => p.startsWith('key.'));
        const key = token ? Buffer.from(token.slice(4), 'base64url').toString('utf8') : undefined;
        try {
          // Only the key and the Host header: the same checks as any request's.
          this.options.authenticate({ headers: { ...(headers.host ? { host: headers.host } : {}), ...(key ? { authorization: `Bearer ${key}` } : {}) } });
        } catch (err) {
          const error = toAppError(err);
          return refuse(error.status, error.message);
        }
        this.requests.inc({ route: route.name, status: '101' });
        res.upgrade({ name: route.name }, headers['sec-websocket-key'] ?? '', route.protocol, headers['sec-websocket-extensions'] ?? '', context);
      },
      open: (ws) => {
        let open = true;
        const close = route.open((message) => open && ws.send(message, false) !== 2);
        closers.set(ws, {
          ws,
          closed: () => {
            open = false;
            close();
          },
        });
      },
      close: (ws) => {
        closers.get(ws)?.closed();
        closers.delete(ws);
      },
    });
  }

  /** The route a lenient group has for `path` spelt in another case or with a trailing slash. */
  private lenientMatch(routes: LenientRoute[], method: string, path: string) {
    const trimmed = path.length > 1 ? path.replace(/\/+$/, '') : path;
    for (const { route, mount, regex } of routes) {
      if (route.method !== (method === 'delete' ? 'del' : method)) continue;
      const m = regex.exec(trimmed);
      if (!m) continue;
      // The mount's parameters come first, as in uWS's numbering.
      const skipped = mount.split('/').filter((p) => p.startsWith(':')).length;
      const names = route.pattern.split('/').filter((p) => p.startsWith(':'));
      const params = Object.fromEntries(names.map((name, i) => [name.slice(1), safeDecode(m[skipped + i + 1]!)]));
      return { route, mount, params };
    }
    return undefined;
  }

  /** Stops accepting connections; requests in progress finish. */
  close(): void {
    this.draining = true;
    if (this.listenSocket && this.uws) this.uws.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    // 1001: going away.
    for (const { ws } of [...this.sockets.values()]) ws.end(1001, 'The service is shutting down');
  }

  /** `params`: when the route was matched here rather than by uWS (a lenient group's second match). */
  private handle(res: UwsResponse, raw: UwsRequest, route: Route, group: RouteGroup, mount = '', matched?: Record<string, string>): void {
    const started = performance.now();
    const controller = new AbortController();
    let finished = false;
    let aborted = false;
    // Must be registered before anything asynchronous: writing to an aborted response crashes.
    res.onAborted(() => {
      finished = true;
      aborted = true;
      controller.abort();
    });

    const headers: Record<string, string> = {};
    raw.forEach((key, value) => {
      headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
    });
    const method = raw.getMethod();
    const declared = headers['content-length'] !== undefined ? Number(headers['content-length']) : undefined;
    const params: Record<string, string> = { ...matched };
    if (!matched) {
      // uWS numbers the parameters of the whole pattern; the mount's come first.
      const skipped = mount.split('/').filter((p) => p.startsWith(':')).length;
      const names = route.pattern.split('/').filter((p) => p.startsWith(':'));
      names.forEach((name, i) => {
        params[name.slice(1)] = safeDecode(raw.getParameter(skipped + i) ?? '');
      });
    }
    const path = raw.getUrl();
    let remoteAddress = '';
    try {
      remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    } catch {
      // not available on every socket type
    }
    const req: Request = {
      method,
      path,
      // uWS matched the route under this mount: its leading segments are the mount.
      mount: mount ? leadingPart(path, mount) : '',
      query: new URLSearchParams(raw.getQuery() ?? ''),
      headers,
      params,
      remoteAddress,
      signal: controller.signal,
      body: new RequestBody(
        res,
        Number.isFinite(declared) ? declared : undefined,
        controller.signal,
        methodsWithBody.has(method) && ((declared ?? 0) > 0 || headers['transfer-encoding'] !== undefined),
        headers['content-encoding'],
      ),
    };

    /** Writes a stream's pieces after the status (`first` already read), then ends the response. */
    const writeStream = async (first: string, rest: AsyncIterator<string>, close: boolean) => {
      let piece: string | undefined = first;
      try {
        while (piece !== undefined && !aborted) {
          const chunk = piece;
          res.cork(() => res.write(chunk));
          const next = await rest.next();
          piece = next.done ? undefined : next.value;
        }
      } catch (err) {
        this.options.log.error('response stream failed', { route: route.name, error: err as Error });
      }
      if (aborted) {
        await rest.return?.();
        return;
      }
      res.cork(() => res.end(undefined, close));
    };

    const respond = async (reply: Reply) => {
      if (finished) {
        if (isStream(reply.body)) await reply.body[Symbol.asyncIterator]().return?.();
        return;
      }
      // Answered before its body arrived (a refusal): closing the socket with unread bytes in
      // it makes the kernel send a reset, which reaches a client still sending instead of the
      // answer. uWS forbids touching a response once it ended, so the rest is read first.
      if (req.body.unfinished) await req.body.discard(discardLimits);
      if (finished) return;
      finished = true;
      // Past the discard limits: unread bytes would be parsed as the next request, so close.
      const close = req.body.unfinished;
      const body = reply.body;
      res.cork(() => {
        res.writeStatus(statusLine(reply.status));
        for (const [k, v] of Object.entries(reply.headers ?? {})) res.writeHeader(k, v);
        if (!isStream(body)) res.end(body ?? '', close);
      });
      if (isStream(body)) {
        const { first, rest } = body as PrefetchedStream;
        await writeStream(first, rest, close);
      }
      this.requests.inc({ route: route.name, status: String(reply.status) });
      this.latency.observe((performance.now() - started) / 1000, { route: route.name });
    };

    const run = async (): Promise<Reply> => {
      if (this.draining) throw new AppError('ERR_SHUTTING_DOWN', 'The service is shutting down');
      // A page of another site can make a browser send a form's POST (it cannot read the
      // answer): with EARSHOT_AUTH=none, or a browser that holds Basic credentials, that
      // would change things. Browsers send Origin with such requests; API clients send none.
      if (!safeMethods.has(method) && headers.origin !== undefined && !sameOrigin(headers.origin, headers.host)) {
        throw new AppError('ERR_CROSS_ORIGIN', `A page of another site (Origin ${headers.origin}) may not change anything on this device`);
      }
      if (route.auth !== false) this.options.authenticate(req);
      const reply = await route.handler(req);
      if (!isStream(reply.body)) return reply;
      // The first piece before the status: until then, a failure is an error answer.
      const rest = reply.body[Symbol.asyncIterator]();
      const first = await rest.next();
      if (first.done) return { ...reply, body: '' };
      const prefetched: PrefetchedStream = { first: first.value, rest, [Symbol.asyncIterator]: () => rest };
      return { ...reply, body: prefetched };
    };
    run().then(respond, async (err: unknown) => {
      const error = toAppError(err);
      if (error.status >= 500 && error.code !== 'ERR_SHUTTING_DOWN' && error.code !== 'ERR_QUEUE_FULL' && error.code !== 'ERR_INSUFFICIENT_STORAGE') {
        this.options.log.error('request failed', { route: route.name, code: error.code, error: error.cause ?? error });
      } else {
        this.options.log.debug('request refused', { route: route.name, status: error.status, code: error.code });
      }
      const reply = group.renderError(error, req);
      // Every 503 and 507 says when to come back: a full queue or disk drains slower than a restart ends.
      if (reply.status === 503 || reply.status === 507) {
        reply.headers = { 'Retry-After': error.code === 'ERR_QUEUE_FULL' || reply.status === 507 ? '30' : '5', ...reply.headers };
      }
      await respond(reply);
    });
  }
}
