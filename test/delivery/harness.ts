// Shared by the delivery tests: a real HTTP receiver on 127.0.0.1 (port 0) that records
// what it gets, a logger that keeps its lines, and a temp-dir store.
//
// Run directly, this file is either the crash child of restart.test.ts (argv "crash-child")
// or, as `tap dist/test/delivery/` runs every file of the directory, a test of the
// receiver itself.
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

import { createRetrySchedule } from '../../src/delivery/backoff.js';
import { CidrPolicy } from '../../src/delivery/cidr.js';
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import { Outbox, type DeliveryRecord, type EnqueueInput } from '../../src/delivery/outbox.js';
import { TargetAdapters, type SendPlan } from '../../src/delivery/targets.js';
import { createLogger, type Logger } from '../../src/log.js';
import { StateDatabase } from '../../src/store/database.js';

export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** What the receiver answers (after `delayMs`); 'hang' never answers. */
export type Reply = { status: number; headers?: Record<string, string>; body?: string; delayMs?: number } | 'hang';

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** Resolves once `n` requests have arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Loopback is what the tests' receivers listen on; it is opened explicitly. */
export const loopbackPolicy = new CidrPolicy(['127.0.0.0/8']);

export async function startReceiver(t: Teardown, reply: (req: Received, index: number) => Reply = () => ({ status: 200 })): Promise<Receiver> {
  const received: Received[] = [];
  const waiters: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry: Received = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      received.push(entry);
      const answer = reply(entry, received.length - 1);
      for (const wake of waiters.splice(0)) wake();
      if (answer === 'hang') return;
      setTimeout(() => {
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body ?? '');
      }, answer.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t.teardown(close);
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    close,
    waitFor(n, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`expected ${n} requests, got ${received.length}`)), timeoutMs);
        const check = () => {
          if (received.length >= n) {
            clearTimeout(timer);
            resolve(received.slice(0, n));
          } else {
            waiters.push(check);
          }
        };
        check();
      });
    },
  };
}

/** A logger that keeps its lines, for asserting on what was logged. */
export function memoryLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger({ level: 'debug', journal: false, write: (line) => lines.push(line) }), lines };
}

/** An opened store in `dir`, closed at teardown. */
export function openStore(t: Teardown, dir: string): StateDatabase {
  const db = new StateDatabase(dir);
  db.open();
  t.teardown(() => db.close());
  return db;
}

/** The target kind of the delivery tests: a callback URL (the key) that always resolves to itself. */
export const testKind = 'test-callback';

/** A minimal callback delivery to `url`, shaped like an IBM callback. */
export function testDelivery(url: string, jobId = 'job-1', event = 'recognitions.completed'): EnqueueInput {
  return {
    orderKey: `${url} ${jobId}`,
    target: { kind: testKind, key: url, url },
    event,
    body: JSON.stringify({ id: jobId, event, user_token: '' }),
  };
}

export interface TestTargetOptions {
  /** Signs webhook-signature. */
  secret?: string;
  /** A dialect's own headers over the body. */
  sign?: (body: string) => Record<string, string>;
  /** Refuses a delivery with this reason. */
  refuse?: (delivery: DeliveryRecord) => string | undefined;
  onDead?: (delivery: DeliveryRecord) => void;
  onGone?: (delivery: DeliveryRecord) => void;
}

/** The adapters of the delivery tests: `testKind`, sent to the URL in its key. */
export function testTargets(o: TestTargetOptions = {}): TargetAdapters {
  const targets = new TargetAdapters();
  targets.add({
    kind: testKind,
    resolve(delivery): SendPlan | string {
      const why = o.refuse?.(delivery);
      if (why) return why;
      return { url: delivery.target.key, ...(o.sign ? { headers: o.sign(delivery.body) } : {}), secret: o.secret };
    },
    ...(o.onDead ? { onDead: o.onDead } : {}),
    ...(o.onGone ? { onGone: o.onGone } : {}),
  });
  return targets;
}

/** Resolves when `predicate` holds, polling every 5 ms; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * The crash child: enqueue one delivery durably, print its id, start a dispatcher and
 * keep going until the parent kills it (SIGKILL, mid-request).
 */
async function crashChild(stateDir: string, url: string): Promise<void> {
  const db = new StateDatabase(stateDir);
  db.open();
  const outbox = new Outbox(db);
  const record = await outbox.enqueueDurably(testDelivery(url, 'crash-job'));
  process.stdout.write(`${record.id}\n`);
  const dispatcher = new Dispatcher({ outbox, targets: testTargets(), policy: loopbackPolicy, log: createLogger({ level: 'warn' }), schedule: createRetrySchedule({ retryDelaysMs: [10] }) });
  dispatcher.start();
  setInterval(() => {}, 1000); // stay alive until killed
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === 'crash-child') {
    await crashChild(process.argv[3]!, process.argv[4]!);
  } else {
    const { default: t } = await import('tap');
    t.test('the receiver records each request and answers as told', async (t) => {
      const receiver = await startReceiver(t, (_req, i) => (i === 0 ? { status: 500, body: 'no' } : { status: 204 }));
      const first = await fetch(`${receiver.url}?a=1`, { method: 'POST', body: 'hello', headers: { 'X-Test': 'yes' } });
      t.equal(first.status, 500);
      t.equal(await first.text(), 'no');
      t.equal((await fetch(receiver.url, { method: 'PUT', body: '' })).status, 204);
      const [a, b] = await receiver.waitFor(2);
      t.match(a, { method: 'POST', path: '/hook?a=1', body: 'hello', headers: { 'x-test': 'yes' } });
      t.match(b, { method: 'PUT', path: '/hook' });
      await t.rejects(receiver.waitFor(3, 50), /expected 3 requests, got 2/);
    });
  }
}
