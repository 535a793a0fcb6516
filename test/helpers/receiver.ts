import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Decides the answer to each request; the default answers challenges and 200s POSTs. */
  respond: (req: Received, res: ServerResponse) => void;
  /** Resolves once `n` POSTs arrived (or rejects after `timeoutMs`). */
  posts(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/** A callback receiver on 127.0.0.1, as a LAN client would run one. */
export async function startReceiver(path = '/callback'): Promise<Receiver> {
  const received: Received[] = [];
  const waiters: Array<() => void> = [];
  const receiver: Receiver = {
    url: '',
    received,
    respond: (req, res) => {
      const challenge = req.url.searchParams.get('challenge_string');
      if (req.method === 'GET' && challenge) {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end(challenge);
        return;
      }
      res.writeHead(200).end();
    },
    posts: (n, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const posts = received.filter((r) => r.method === 'POST');
          if (posts.length >= n) {
            clearTimeout(timer);
            resolve(posts);
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => reject(new Error(`only ${received.filter((r) => r.method === 'POST').length} of ${n} POSTs arrived`)), timeoutMs);
        const wait = () => {
          if (!check()) waiters.push(wait);
        };
        wait();
      }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        method: req.method ?? '',
        url: new URL(req.url ?? '/', 'http://receiver'),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      received.push(r);
      receiver.respond(r, res);
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  return receiver;
}
