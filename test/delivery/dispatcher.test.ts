// The retry dispatcher against real receivers on 127.0.0.1, with millisecond schedules.
import { createHmac } from 'node:crypto';

import { Webhook } from 'standardwebhooks';
import t, { type Test } from 'tap';

import { defaultCallbackCidrs } from '../../src/config.js';
import { createRetrySchedule } from '../../src/delivery/backoff.js';
import { CidrPolicy } from '../../src/delivery/cidr.js';
import { Dispatcher, type DispatcherOptions } from '../../src/delivery/dispatcher.js';
import { Outbox, type DeliveryRecord } from '../../src/delivery/outbox.js';
import { startReceiver } from '../helpers/receiver.js';
import { until } from '../helpers/poll.js';
import { loopbackPolicy, memoryLogger, openStore, testDelivery, testKind, testTargets, type TestTargetOptions } from './harness.js';

type Setup = Partial<Omit<DispatcherOptions, 'outbox' | 'log' | 'targets'>>;

function setup(t: Test, options: Setup = {}, target: TestTargetOptions = {}) {
  const db = openStore(t, t.testdir());
  const outbox = new Outbox(db);
  const { log, lines } = memoryLogger();
  const dead: DeliveryRecord[] = [];
  const gone: DeliveryRecord[] = [];
  const dispatcher = new Dispatcher({
    outbox,
    log,
    policy: loopbackPolicy,
    schedule: createRetrySchedule({ retryDelaysMs: [20, 20, 20] }),
    timeoutMs: 2000,
    targets: testTargets({ ...target, onDead: (d) => dead.push(d), onGone: (d) => gone.push(d) }),
    ...options,
  });
  t.teardown(() => dispatcher.stop(0));
  return { db, outbox, dispatcher, lines, dead, gone };
}

t.test("a delivery is POSTed once, with its adapter's headers, a Standard Webhooks signature and a stable id", async (t) => {
  const receiver = await startReceiver(t);
  const secret = 'user secret ✓';
  const sign = (body: string) => ({ 'X-Callback-Signature': createHmac('sha1', Buffer.from(secret, 'utf8')).update(body).digest('base64') });
  const { outbox, dispatcher, lines } = setup(t, {}, { secret, sign });
  const record = await outbox.enqueueDurably({
    ...testDelivery(receiver.url),
    headers: { 'X-MicrosoftSpeechServices-Event': 'TranscriptionCompletion' },
  });
  dispatcher.start();
  const [got] = await receiver.waitFor(1);
  const h = got!.headers;
  t.equal(got!.method, 'POST');
  t.equal(got!.body, record.body, 'the exact stored body');
  t.equal(h['content-type'], 'application/json');
  t.match(h['user-agent'], /^earshot/);
  t.equal(h['x-earshot-delivery-id'], record.id);
  t.equal(h['x-earshot-delivery-attempt'], '1');
  t.equal(h['x-microsoftspeechservices-event'], 'TranscriptionCompletion');
  t.equal(h['x-callback-signature'], createHmac('sha1', Buffer.from(secret, 'utf8')).update(got!.body).digest('base64'));
  t.equal(h['webhook-id'], record.id);
  t.ok(Math.abs(Number(h['webhook-timestamp']) - Date.now() / 1000) < 5, 'timestamp is now, in seconds');
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${record.id}.${h['webhook-timestamp']}.${got!.body}`).digest('base64');
  t.equal(h['webhook-signature'], `v1,${expected}`);
  t.same(new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' }).verify(got!.body, h as Record<string, string>), JSON.parse(got!.body));

  // The counters move once the outcome is flushed, just after the record reads delivered.
  await until(() => dispatcher.stats().sent === 1, 2000, 'delivered');
  t.match(outbox.get(record.id), { state: 'delivered', attempts: 1, lastStatus: 200 });
  t.match(dispatcher.stats(), { sent: 1, failedAttempts: 0, deadLettered: 0, inFlight: 0, pending: 0, oldestPendingAgeMs: 0 });
  t.ok(dispatcher.stats().lastDeliveryLatencyMs! >= 0);
  t.notOk(
    lines.some((l) => / (info|warn) /.test(l)),
    'no info or warn line for a success',
  );
  t.ok(lines.some((l) => / debug .*delivered/.test(l)));
  t.same([...outbox.due()], [], 'nothing left to send');
  t.equal(receiver.received.length, 1, 'sent exactly once');
});

t.test('failing twice then succeeding: retries on schedule, same id, fresh timestamps and signatures', async (t) => {
  const receiver = await startReceiver(t, (_r, i) => (i < 2 ? { status: 500 } : { status: 204 }));
  const sign = (body: string) => ({ 'X-Callback-Signature': createHmac('sha256', 's').update(body).digest('base64') });
  const { outbox, dispatcher, lines } = setup(t, { schedule: createRetrySchedule({ retryDelaysMs: [50, 50, 50], jitter: 0 }) }, { sign });
  const record = await outbox.enqueueDurably(testDelivery(receiver.url));
  dispatcher.start();
  const got = await receiver.waitFor(3);
  t.same(new Set(got.map((g) => g.headers['webhook-id'])), new Set([record.id]));
  t.same(
    got.map((g) => g.headers['x-earshot-delivery-attempt']),
    ['1', '2', '3'],
  );
  for (const g of got) t.equal(g.headers['x-callback-signature'], createHmac('sha256', 's').update(g.body).digest('base64'));
  t.ok(got[1]!.at - got[0]!.at >= 45 && got[2]!.at - got[1]!.at >= 45, 'waited per the schedule');
  await until(() => dispatcher.stats().sent === 1, 2000, 'delivered');
  t.match(outbox.get(record.id), { state: 'delivered', attempts: 3, lastStatus: 204 });
  t.match(dispatcher.stats(), { sent: 1, failedAttempts: 2 });
  t.equal(lines.filter((l) => / info .*delivery attempt failed, will retry .*status=500/.test(l)).length, 2, 'one info line per failed attempt');
});

t.test('events are independent: a failing earlier event never holds back a later one', async (t) => {
  const receiver = await startReceiver(t, (r) => (JSON.parse(r.body).event === 'recognitions.started' ? { status: 500 } : { status: 200 }));
  const { db, outbox, dispatcher } = setup(t, { schedule: createRetrySchedule({ retryDelaysMs: [60_000], jitter: 0 }) });
  dispatcher.start();
  const [started, completed] = await db.durably(() => [
    outbox.enqueue(testDelivery(receiver.url, 'job-a', 'recognitions.started')),
    outbox.enqueue(testDelivery(receiver.url, 'job-a', 'recognitions.completed')),
  ]);
  dispatcher.notify();
  await until(() => outbox.get(completed!.id)?.state === 'delivered', 2000, 'the later event');
  t.match(outbox.get(completed!.id), { state: 'delivered', attempts: 1 }, 'delivered at once');
  t.match(outbox.get(started!.id), { state: 'pending', attempts: 1, lastStatus: 500 }, 'while the earlier one waits a minute for its retry');
});

t.test('dead letter after the last attempt, then listed and redelivered with the same id', async (t) => {
  let healthy = false;
  const receiver = await startReceiver(t, () => (healthy ? { status: 200 } : { status: 500, body: 'broken' }));
  const { outbox, dispatcher, dead, lines } = setup(t);
  const record = await outbox.enqueueDurably(testDelivery(receiver.url));
  dispatcher.start();
  await until(() => dead.length === 1, 3000, 'dead letter');
  t.equal(receiver.received.length, 4, 'first attempt + 3 retries');
  t.match(dead[0], { id: record.id, state: 'dead', attempts: 4, lastStatus: 500, lastError: 'HTTP 500' });
  t.same(
    outbox.listDead({ key: receiver.url }).map((r) => r.id),
    [record.id],
  );
  t.same(outbox.listDead({ key: 'http://10.0.0.1/other' }), []);
  t.match(dispatcher.stats(), { deadLettered: 1, failedAttempts: 4, dead: 1, pending: 0 });
  t.equal(lines.filter((l) => / warn .*delivery dead-lettered/.test(l)).length, 1);

  healthy = true;
  t.equal(await outbox.redeliverAll({ key: receiver.url }), 1);
  dispatcher.notify();
  await until(() => outbox.get(record.id)?.state === 'delivered', 2000, 'redelivered');
  t.equal(receiver.received[4]!.headers['webhook-id'], record.id);
  t.equal(receiver.received[4]!.headers['x-earshot-delivery-attempt'], '1', 'attempts were reset');
  t.same(outbox.listDead(), []);
});

t.test('410 Gone: dead at once, onGone and onDead', async (t) => {
  const receiver = await startReceiver(t, () => ({ status: 410 }));
  const { outbox, dispatcher, dead, gone } = setup(t);
  const record = await outbox.enqueueDurably(testDelivery(receiver.url));
  dispatcher.start();
  await until(() => gone.length === 1, 2000, 'onGone');
  t.match(gone[0], { id: record.id, state: 'dead', attempts: 1, lastStatus: 410, target: { kind: testKind, key: receiver.url } });
  t.equal(dead.length, 1);
  t.equal(receiver.received.length, 1);
});

t.test('429 and 503 honour Retry-After (seconds) over a shorter schedule', async (t) => {
  const receiver = await startReceiver(t, (_r, i) =>
    i === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : i === 1 ? { status: 503, headers: { 'Retry-After': '0' } } : { status: 200 },
  );
  const { outbox, dispatcher } = setup(t, { schedule: createRetrySchedule({ retryDelaysMs: [10, 10], jitter: 0 }) });
  const record = await outbox.enqueueDurably(testDelivery(receiver.url));
  dispatcher.start();
  const got = await receiver.waitFor(3, 5000);
  t.ok(got[1]!.at - got[0]!.at >= 950, `waited ${got[1]!.at - got[0]!.at} ms after Retry-After: 1`);
  t.ok(got[2]!.at - got[1]!.at < 900, 'Retry-After: 0 falls back to the schedule');
  await until(() => outbox.get(record.id)?.state === 'delivered', 2000, 'delivered');
});

t.test('SSRF: forbidden targets are dead letters without a request; a redirect is a failure', async (t) => {
  const receiver = await startReceiver(t);
  const redirector = await startReceiver(t, () => ({ status: 302, headers: { Location: receiver.url } }));
  const lan = new CidrPolicy(defaultCallbackCidrs);
  const { outbox, dispatcher, dead } = setup(t, { policy: lan, schedule: createRetrySchedule({ retryDelaysMs: [] }) });
  const literal = await outbox.enqueueDurably(testDelivery(receiver.url, 'literal'));
  const named = await outbox.enqueueDurably(testDelivery(`http://localhost:${receiver.port}/hook`, 'named'));
  const linkLocal = await outbox.enqueueDurably(testDelivery('http://169.254.169.254/latest/meta-data/', 'meta'));
  dispatcher.start();
  await until(() => dead.length === 3, 2000, 'three dead letters');
  t.match(outbox.get(literal.id), { state: 'dead', attempts: 1, lastError: /127\.0\.0\.1 is a loopback address/ });
  t.match(outbox.get(named.id), { state: 'dead', lastError: /host localhost resolves to .*loopback/ });
  t.match(outbox.get(linkLocal.id), { state: 'dead', lastError: /169\.254\.169\.254 is a link-local address/ });
  t.equal(receiver.received.length, 0, 'nothing reached the loopback receiver');
  await dispatcher.stop();

  // With loopback allowed, the redirect answer is a failed attempt and is not followed.
  const second = setup(t, { policy: loopbackPolicy, schedule: createRetrySchedule({ retryDelaysMs: [10], jitter: 0 }) });
  const redirected = await second.outbox.enqueueDurably(testDelivery(redirector.url));
  second.dispatcher.start();
  await until(() => second.dead.length === 1, 2000, 'redirect dead-lettered');
  t.match(second.outbox.get(redirected.id), {
    attempts: 2,
    lastStatus: 302,
    lastError: /HTTP 302 redirect to http:\/\/127\.0\.0\.1:\d+\/hook \(redirects are not followed/,
  });
  t.equal(redirector.received.length, 2);
  t.equal(receiver.received.length, 0, 'the redirect target was never called');
});

t.test('a receiver that does not answer times out, and the attempt is retried', async (t) => {
  const receiver = await startReceiver(t, (_r, i) => (i === 0 ? 'hang' : { status: 200 }));
  const { outbox, dispatcher, lines } = setup(t, { timeoutMs: 150, schedule: createRetrySchedule({ retryDelaysMs: [10], jitter: 0 }) });
  const record = await outbox.enqueueDurably(testDelivery(receiver.url));
  dispatcher.start();
  await until(() => outbox.get(record.id)?.state === 'delivered', 3000, 'delivered after a timeout');
  t.match(outbox.get(record.id), { attempts: 2, lastStatus: 200 });
  t.ok(lines.some((l) => /delivery attempt failed.*code=ERR_TARGET_TIMEOUT.*did not answer within 150 ms/.test(l)));
});

t.test('concurrency is bounded, and the timer wakes for deliveries due later without notify()', async (t) => {
  const receiver = await startReceiver(t, () => 'hang');
  const { outbox, dispatcher } = setup(t, { concurrency: 2, timeoutMs: 5000 });
  for (let i = 0; i < 5; i++) await outbox.enqueueDurably(testDelivery(receiver.url, `job-${i}`));
  dispatcher.start();
  await receiver.waitFor(2);
  // Attempts begin synchronously in one scan: two in flight now means no third was begun.
  t.equal(dispatcher.stats().inFlight, 2, 'only two at once');
  t.equal(receiver.received.length, 2);
  t.equal(dispatcher.stats().pending, 5);
  await dispatcher.stop(0);

  const ok = await startReceiver(t);
  const later = setup(t);
  const record = await later.outbox.enqueueDurably({ ...testDelivery(ok.url), notBefore: Date.now() + 150 });
  later.dispatcher.start();
  await ok.waitFor(1, 2000);
  t.ok(ok.received[0]!.at >= record.nextAttemptAt, 'not before its due time');
});

t.test('stop() waits for an attempt in flight and records it; past the grace period it aborts without recording', async (t) => {
  const slow = await startReceiver(t, () => 'hang');
  const { outbox, dispatcher } = setup(t);
  const record = await outbox.enqueueDurably(testDelivery(slow.url));
  dispatcher.start();
  await slow.waitFor(1);
  await dispatcher.stop(50);
  t.match(outbox.get(record.id), { state: 'pending', attempts: 0 }, 'aborted: still pending for the next start');
  t.equal(dispatcher.stats().inFlight, 0);

  const receiver = await startReceiver(t, () => ({ status: 200, delayMs: 300 }));
  const second = setup(t);
  const waited = await second.outbox.enqueueDurably(testDelivery(receiver.url));
  second.dispatcher.start();
  await receiver.waitFor(1);
  const started = Date.now();
  await second.dispatcher.stop(5000);
  t.ok(Date.now() - started >= 200, 'stop() waited for the answer');
  t.match(second.outbox.get(waited.id), { state: 'delivered', attempts: 1 }, 'and the outcome was recorded before it resolved');
});

t.test('an outcome that cannot be stored pauses the dispatcher instead of resending at once', async (t) => {
  const receiver = await startReceiver(t);
  // A timer that records what it is asked to sleep and never fires: the test is the clock.
  const sleeps: number[] = [];
  const { outbox, dispatcher, lines } = setup(t, { timers: { set: (_fn, ms) => sleeps.push(ms), clear: () => {} } });
  await outbox.enqueueDurably(testDelivery(receiver.url));
  outbox.recordAttempt = () => Promise.reject(new Error('MDB_MAP_FULL: Environment mapsize limit reached'));
  dispatcher.start();
  await receiver.waitFor(1);
  await until(() => lines.some((l) => /error .*could not be stored; pausing .*MDB_MAP_FULL/.test(l)), 2000, 'the error line');
  await until(() => sleeps.length > 0, 2000, 'the dispatcher going to sleep');
  t.ok(sleeps.at(-1)! > 29_000 && sleeps.at(-1)! <= 30_000, `sleeps ${sleeps.at(-1)} ms, the pause`);
  dispatcher.notify();
  await new Promise((r) => setImmediate(r));
  t.ok(sleeps.at(-1)! > 29_000, 'a wake-up during the pause sleeps again');
  t.equal(receiver.received.length, 1, 'not resent while paused');
  t.equal(dispatcher.stats().inFlight, 0);
});

t.test('a target its adapter refuses, or of a kind nobody registered, is a dead letter without a request', async (t) => {
  const receiver = await startReceiver(t);
  const { outbox, dispatcher, dead } = setup(t, {}, { refuse: (d) => (d.target.key.endsWith('/gone') ? 'callback URL unregistered' : undefined) });
  const refused = await outbox.enqueueDurably(testDelivery(`${receiver.url}/gone`, 'refused'));
  const unknown = await outbox.enqueueDurably({
    ...testDelivery(receiver.url, 'unknown'),
    target: { kind: 'from-a-newer-release', key: 'k', url: receiver.url },
  });
  const sent = await outbox.enqueueDurably(testDelivery(receiver.url, 'sent'));
  dispatcher.start();
  const states = () => [refused, unknown, sent].map((r) => outbox.get(r.id)?.state).join();
  // The adapter hears after the outcome's batch is flushed, a moment after it can be read.
  await until(() => states() === 'dead,dead,delivered' && dead.length > 0, 2000, 'two dead letters and one delivery, and the adapter told');
  t.same(
    dead.map((d) => d.id),
    [refused.id],
    'the adapter hears of its own dead letter',
  );
  t.match(outbox.get(refused.id), { state: 'dead', attempts: 1, lastError: 'not sent: callback URL unregistered' });
  t.match(outbox.get(unknown.id), { state: 'dead', attempts: 1, lastError: /^not sent: no target of kind "from-a-newer-release"/ });
  t.equal(receiver.received.length, 1, 'only the deliverable one was sent');
});
