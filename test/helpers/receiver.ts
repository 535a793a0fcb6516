// The one receiver of the tests: an HTTP server on 127.0.0.1, as a LAN client would run
// one for callbacks or web hooks. It records every request, answers the registration
// challenges of both dialects by default, and every other request as the test says:
// a status (after a delay), a hang, or a reset connection.
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  url: URL;
  /** Path and query as sent. */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** How to answer: a status (with headers and body, after `delayMs`), never ('hang'), or a dropped connection ('reset'). */
export type Answer = { status: number; headers?: Record<string, string>; body?: string; delayMs?: number } | 'hang' | 'reset';

export interface Receiver {
  url: string;
  port: number;
  /** Every request, challenges included, in arrival order. */
  received: Received[];
  /** Answers IBM's challenge (GET ?challenge_string=) and Azure's (POST ?validationToken=); default: the string, 200. */
  challenge: (req: Received) => Answer;
  /** Answers every other request; `index` counts those only. Default 200. */
  answer: (req: Received, index: number) => Answer | Promise<Answer>;
  /** The requests that are not challenges. */
  events(): Received[];
  challenges(): Received[];
  /** How many connections were made to it (kept connections carry several requests). */
  connections(): number;
  /** Resolves with the first `n` requests once they arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  /** Resolves with the first `n` POSTs (challenges are GETs for IBM) once they arrived. */
  posts(n: number, timeoutMs?: number): Promise<Received[]>;
  /** Resolves with the events once `predicate(events)` holds. */
  until(predicate: (events: Received[]) => boolean, what: string, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

const challengeOf = (req: Received) =>
  req.method === 'GET' ? req.url.searchParams.get('challenge_string') : req.method === 'POST' ? req.url.searchParams.get('validationToken') : null;

function reply(res: ServerResponse, answer: Answer): void {
  if (answer === 'hang') return;
  if (answer === 'reset') {
    res.socket?.destroy();
    return;
  }
  setTimeout(() => res.writeHead(answer.status, answer.headers).end(answer.body ?? ''), answer.delayMs ?? 0);
}

/**
 * Starts a receiver at `http://127.0.0.1:<port><path>` (a free port unless given), closed
 * when the test ends.
 */
export async function startReceiver(
  t: { teardown(fn: () => unknown): void },
  answer: Receiver['answer'] = () => ({ status: 200 }),
  options: { path?: string; port?: number } = {},
): Promise<Receiver> {
  const received: Received[] = [];
  let waiters: Array<() => void> = [];
  const events = () => received.filter((r) => challengeOf(r) === null);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        method: req.method ?? '',
        url: new URL(req.url ?? '/', 'http://receiver'),
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      received.push(r);
      const answered = challengeOf(r) !== null ? receiver.challenge(r) : receiver.answer(r, events().length - 1);
      const wake = waiters;
      waiters = [];
      for (const w of wake) w();
      void Promise.resolve(answered).then((a) => reply(res, a));
    });
  });
  const wait = async <T>(ready: () => T | undefined, what: () => string, timeoutMs: number): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = ready();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  };
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }));
  t.teardown(close);
  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}${options.path ?? '/hook'}`,
    port,
    received,
    challenge: (req) => ({ status: 200, headers: { 'Content-Type': 'text/plain' }, body: challengeOf(req)! }),
    answer,
    events,
    challenges: () => received.filter((r) => challengeOf(r) !== null),
    connections: () => connections,
    waitFor: (n, timeoutMs = 5000) =>
      wait(
        () => (received.length >= n ? received.slice(0, n) : undefined),
        () => `${n} requests, got ${received.length}`,
        timeoutMs,
      ),
    posts: (n, timeoutMs = 30_000) => {
      const posts = () => received.filter((r) => r.method === 'POST' && challengeOf(r) === null);
      return wait(
        () => (posts().length >= n ? posts().slice(0, n) : undefined),
        () => `${n} POSTs, got ${posts().length}`,
        timeoutMs,
      );
    },
    until: (predicate, what, timeoutMs = 20_000) =>
      wait(
        () => (predicate(events()) ? events() : undefined),
        () => `${what}; got ${events().length} requests`,
        timeoutMs,
      ),
    close,
  };
  return receiver;
}
