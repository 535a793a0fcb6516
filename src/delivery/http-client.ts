import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';

import { AppError, invalidArgument } from '../errors.js';
import type { CidrPolicy } from './cidr.js';

/** At most this much of a response body is read; the rest is discarded. */
export const maxResponseBodyBytes = 64 * 1024;

/** One outgoing request to a callback or webhook target. */
export interface SendRequestOptions {
  method: string;
  /** An http: or https: URL. */
  url: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** Covers DNS, connect, TLS, the response and reading its body. */
  timeoutMs: number;
  /** Where connections may go; checked on the resolved address, at connect time. */
  policy: CidrPolicy;
  /** Aborts the request; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** The target's answer, whatever its status (redirects are never followed). */
export interface SendResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as UTF-8, at most `maxResponseBodyBytes` of it. */
  body: string;
  /** Whether the body was longer than what was read. */
  truncated: boolean;
}

/** What the dispatcher calls to send; `sendRequest` unless a test substitutes it. */
export type SendFunction = (options: SendRequestOptions) => Promise<SendResponse>;

const allowListHint = 'the allow-list is the callbackCidrs setting (EARSHOT_CALLBACK_CIDRS)';

type Resolver = (
  hostname: string,
  options: { all: true; family?: number; hints?: number },
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/**
 * A `lookup` for net/http that resolves `hostname` and hands the socket only addresses the
 * policy allows. Checking here rather than before the request means the address that is
 * checked is the address that is connected to, so a name that resolves to a LAN address
 * when checked and to 127.0.0.1 a moment later (DNS rebinding) cannot get through.
 * Fails with ERR_TARGET_FORBIDDEN when no resolved address is allowed.
 */
export function guardedLookup(policy: CidrPolicy, port: number, resolve: Resolver = dnsLookup as unknown as Resolver): LookupFunction {
  return (hostname, options, callback) => {
    const cb = callback as (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
    const query: { all: true; family?: number; hints?: number } = { all: true };
    if (options.family) query.family = options.family === 'IPv6' ? 6 : options.family === 'IPv4' ? 4 : Number(options.family);
    if (options.hints) query.hints = options.hints;
    resolve(hostname, query, (err, addresses) => {
      if (err) return cb(err, '', 0);
      const allowed = addresses.filter((a) => policy.allows(a.address, port));
      if (allowed.length === 0) {
        const first = addresses[0];
        const why = first ? policy.explain(first.address, port).reason : 'it has no addresses';
        const shown = addresses.map((a) => a.address).join(', ');
        return cb(new AppError('ERR_TARGET_FORBIDDEN', `host ${hostname} resolves to ${shown || 'nothing'}: ${why}; ${allowListHint}`), '', 0);
      }
      if (options.all) cb(null, allowed);
      else cb(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

const connectErrors: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
  ETIMEDOUT: 'connection timed out',
};
const dnsErrors = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'ENODATA', 'EAI_NONAME']);

/** The port a connection to `url` goes to. */
export function targetPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/**
 * Refuses a URL whose host is an IP literal outside the allow-list: Node connects to IP
 * literals without calling `lookup`, so they are checked here. Returns the host, without
 * an IPv6 literal's brackets.
 */
export function checkIpLiteral(url: URL, policy: CidrPolicy): string {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host)) {
    const verdict = policy.explain(host, targetPort(url));
    if (!verdict.allowed) throw new AppError('ERR_TARGET_FORBIDDEN', `${displayUrl(url)} is not an allowed target: ${verdict.reason}; ${allowListHint}`);
  }
  return host;
}

/** A URL for messages: no credentials, no query (callback URLs often carry tokens there). */
export function displayUrl(url: string | URL): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return String(url);
  }
}

/**
 * What a failed connection or exchange was, in words: whether the name did not resolve,
 * and a short description that names the system's code (for other clients under the same
 * policy, such as the download of a job's audio).
 */
export function describeNetworkError(err: NodeJS.ErrnoException): { dns: boolean; what: string } {
  const code = err.code ?? '';
  if (dnsErrors.has(code)) return { dns: true, what: code };
  const what = connectErrors[code] ?? err.message;
  return { dns: false, what: `${what}${code && !what.includes(code) ? ` (${code})` : ''}` };
}

function classify(err: NodeJS.ErrnoException, url: URL): AppError {
  if (err instanceof AppError) return err;
  const shown = displayUrl(url);
  const { dns, what } = describeNetworkError(err);
  if (dns) {
    return new AppError('ERR_TARGET_DNS', `could not resolve host ${url.hostname} of ${shown} (${what}): check the URL and the device's DNS`, { cause: err });
  }
  return new AppError('ERR_TARGET_UNREACHABLE', `could not deliver to ${shown}: ${what}`, { cause: err });
}

/** How long a connection to a target stays open unused (less when its Keep-Alive header says so). */
export const idleConnectionMs = 4000;

/**
 * Connections kept between requests under one policy, per protocol: a burst of deliveries
 * to a receiver reuses them instead of a handshake (and on https a TLS setup) each. Every
 * connection is still made through guardedLookup, and a kept one only serves requests under
 * the policy that admitted it: it goes to an address that policy allows.
 */
const agents = new WeakMap<CidrPolicy, { 'http:': http.Agent; 'https:': https.Agent }>();

function agentFor(policy: CidrPolicy, protocol: 'http:' | 'https:'): http.Agent {
  let pair = agents.get(policy);
  if (!pair) {
    // lifo: a burst reuses the connections used last, the rest time out.
    const options = { keepAlive: true, timeout: idleConnectionMs, scheduling: 'lifo' as const };
    pair = { 'http:': new http.Agent(options), 'https:': new https.Agent(options) };
    agents.set(policy, pair);
  }
  return pair[protocol];
}

/**
 * Sends one HTTP request to a callback or webhook target under the address policy. Never
 * follows redirects (a 3xx is an answer like any other), reads at most 64 KiB of the body,
 * and gives up after `timeoutMs` in all. Connections are kept for the next request to the
 * same host (`idleConnectionMs`); a kept one the receiver closed meanwhile is replaced by
 * a new connection for the same request, once.
 *
 * @throws AppError ERR_INVALID_ARGUMENT (not an http(s) URL), ERR_TARGET_FORBIDDEN (the
 *   address is outside the policy), ERR_TARGET_DNS, ERR_TARGET_UNREACHABLE (connection or
 *   TLS failure, or the connection closed before the response was complete),
 *   ERR_TARGET_TIMEOUT; the signal's reason when aborted.
 */
export function sendRequest(options: SendRequestOptions): Promise<SendResponse> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    return Promise.reject(invalidArgument('callback URL', 'an absolute http: or https: URL', options.url));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(invalidArgument('callback URL', 'an http: or https: URL', options.url));
  }
  if (url.username || url.password) {
    // A key in the userinfo would let a target URL speak for its owner (earshot's own API,
    // a router's admin page); receivers authenticate deliveries by their signatures.
    return Promise.reject(invalidArgument('callback URL', 'a URL without credentials (user:password@)', displayUrl(url)));
  }
  let host: string;
  try {
    host = checkIpLiteral(url, options.policy);
  } catch (err) {
    return Promise.reject(err);
  }
  if (options.signal?.aborted) return Promise.reject(options.signal.reason);

  return new Promise<SendResponse>((resolve, reject) => {
    let settled = false;
    let req: http.ClientRequest;
    const finish = (err: unknown, response?: SendResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else {
        resolve(response!);
      }
    };

    const body = options.body === undefined ? undefined : typeof options.body === 'string' ? Buffer.from(options.body, 'utf8') : options.body;
    const headers: Record<string, string> = { ...options.headers };
    if (body) headers['Content-Length'] = String(body.byteLength);
    const protocol = url.protocol as 'http:' | 'https:';
    const send = (fresh: boolean) => {
      req = (protocol === 'https:' ? https.request : http.request)({
        protocol,
        hostname: host,
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method: options.method,
        headers,
        lookup: guardedLookup(options.policy, targetPort(url)),
        agent: fresh ? false : agentFor(options.policy, protocol),
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        // A kept connection the receiver closed while it was idle (the race every
        // keep-alive client has): nothing of this request was answered, so it goes again
        // on a new connection. Receivers tell a repeated delivery by its id anyway.
        if (req.reusedSocket && !fresh && !settled && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return send(true);
        finish(classify(err, url));
      });
      req.on('response', onResponse);
      req.end(body);
    };

    const timer = setTimeout(() => {
      finish(new AppError('ERR_TARGET_TIMEOUT', `${displayUrl(url)} did not answer within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    const onAbort = () => finish(options.signal!.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let length = 0;
      let truncated = false;
      const done = () => finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), truncated });
      res.on('data', (chunk: Buffer) => {
        if (truncated) return;
        const room = maxResponseBodyBytes - length;
        if (chunk.length > room) {
          chunks.push(chunk.subarray(0, room));
          length = maxResponseBodyBytes;
          truncated = true;
          done();
          res.destroy();
          return;
        }
        chunks.push(chunk);
        length += chunk.length;
      });
      res.on('end', done);
      res.on('error', (err) => finish(classify(err, url)));
      res.on('close', () => {
        if (!res.complete) {
          finish(new AppError('ERR_TARGET_UNREACHABLE', `${displayUrl(url)} closed the connection before the response was complete`));
        }
      });
    };
    send(false);
  });
}
