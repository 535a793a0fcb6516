// Shared by the delivery tests: deliveries of a test target kind and its adapters, a
// logger that keeps its lines, a temp-dir store. (Receivers: ../helpers/receiver.ts.)
//
// Run directly with argv "crash-child", this file is the crash child of restart.test.ts.
import { pathToFileURL } from 'node:url';

import { createRetrySchedule } from '../../src/delivery/backoff.js';
import { CidrPolicy } from '../../src/delivery/cidr.js';
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import { Outbox, type DeliveryRecord, type EnqueueInput } from '../../src/delivery/outbox.js';
import { TargetAdapters, type SendPlan } from '../../src/delivery/targets.js';
import { createLogger, type Logger } from '../../src/log.js';
import { StateDatabase } from '../../src/store/database.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Loopback is what the tests' receivers listen on; it is opened explicitly. */
export const loopbackPolicy = new CidrPolicy(['127.0.0.0/8']);

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
  const dispatcher = new Dispatcher({
    outbox,
    targets: testTargets(),
    policy: loopbackPolicy,
    log: createLogger({ level: 'warn' }),
    schedule: createRetrySchedule({ retryDelaysMs: [10] }),
  });
  dispatcher.start();
  setInterval(() => {}, 1000); // stay alive until killed
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === 'crash-child') {
  await crashChild(process.argv[3]!, process.argv[4]!);
}
