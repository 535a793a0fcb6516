// At-least-once across restarts: what is in the outbox is sent by the next process.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { createRetrySchedule } from '../../src/delivery/backoff.js';
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import { Outbox } from '../../src/delivery/outbox.js';
import { StateDatabase } from '../../src/store/database.js';
import { startReceiver } from '../helpers/receiver.js';
import { until } from '../helpers/poll.js';
import { testDelivery, testTargets, loopbackPolicy, memoryLogger, openStore } from './harness.js';

const harness = fileURLToPath(new URL('./harness.js', import.meta.url));

function dispatcherFor(outbox: Outbox) {
  return new Dispatcher({
    outbox,
    targets: testTargets(),
    policy: loopbackPolicy,
    log: memoryLogger().log,
    schedule: createRetrySchedule({ retryDelaysMs: [10] }),
  });
}

t.test('enqueued, closed before delivery, reopened: delivered by the new process', async (t) => {
  const receiver = await startReceiver(t);
  const dir = t.testdir();
  const first = new StateDatabase(dir);
  first.open();
  const record = await new Outbox(first).enqueueDurably(testDelivery(receiver.url));
  await first.close();
  t.equal(receiver.received.length, 0);

  const outbox = new Outbox(openStore(t, dir));
  const dispatcher = dispatcherFor(outbox);
  t.teardown(() => dispatcher.stop(0));
  dispatcher.start();
  const [got] = await receiver.waitFor(1);
  t.equal(got!.headers['webhook-id'], record.id);
  await until(() => outbox.get(record.id)?.state === 'delivered', 2000, 'delivered');
});

t.test('a process killed mid-request: the next one sends the same delivery again', async (t) => {
  let first = true;
  const receiver = await startReceiver(t, () => {
    if (!first) return { status: 200 };
    first = false;
    return 'hang';
  });
  const dir = t.testdir();
  const child = spawn(process.execPath, [harness, 'crash-child', dir, receiver.url], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  t.teardown(() => child.kill('SIGKILL'));

  const [inFlight] = await receiver.waitFor(1, 10_000);
  child.kill('SIGKILL');
  t.equal(await exited, 'SIGKILL');
  const id = stdout.trim();
  t.equal(inFlight!.headers['webhook-id'], id, 'the child was sending our delivery when it died');

  const outbox = new Outbox(openStore(t, dir));
  t.match(outbox.get(id), { state: 'pending', attempts: 0 }, 'the crash left it pending');
  const dispatcher = dispatcherFor(outbox);
  t.teardown(() => dispatcher.stop(0));
  dispatcher.start();
  const [, again] = await receiver.waitFor(2);
  t.equal(again!.headers['webhook-id'], id, 'same id: the receiver can de-duplicate');
  t.equal(again!.body, inFlight!.body);
  await until(() => outbox.get(id)?.state === 'delivered', 2000, 'delivered');
  t.match(outbox.get(id), { attempts: 1, lastStatus: 200 });
});

t.test('an attempt aborted by stop() is sent again after the restart', async (t) => {
  let hang = true;
  const receiver = await startReceiver(t, () => (hang ? 'hang' : { status: 200 }));
  const dir = t.testdir();
  const db = new StateDatabase(dir);
  db.open();
  const outbox = new Outbox(db);
  const record = await outbox.enqueueDurably(testDelivery(receiver.url));
  const dispatcher = dispatcherFor(outbox);
  dispatcher.start();
  await receiver.waitFor(1);
  await dispatcher.stop(20);
  await db.close();

  hang = false;
  const reopened = new Outbox(openStore(t, dir));
  const next = dispatcherFor(reopened);
  t.teardown(() => next.stop(0));
  next.start();
  await receiver.waitFor(2);
  t.equal(receiver.received[1]!.headers['webhook-id'], record.id);
  await until(() => reopened.get(record.id)?.state === 'delivered', 2000, 'delivered');
});
