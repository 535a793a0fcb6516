// Retries and dead letters when the wall clock steps (a Pi has no real-time clock): the
// dispatcher on the service clock, with both clocks and the dispatcher's timer faked.
import t, { type Test } from 'tap';

import { ServiceClock } from '../../src/clock.js';
import { createRetrySchedule } from '../../src/delivery/backoff.js';
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import type { SendFunction } from '../../src/delivery/http-client.js';
import { Outbox } from '../../src/delivery/outbox.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { until } from '../helpers/poll.js';
import { fakeTime, fiveYears, hour } from '../helpers/fake-time.js';
import { loopbackPolicy, memoryLogger, openStore, testDelivery, testTargets } from './harness.js';

const minute = 60_000;
const day = 24 * hour;

async function setup(t: Test) {
  const db = openStore(t, t.testdir());
  const store = new JobStore(db);
  const time = fakeTime(Date.UTC(2033, 0, 1));
  const { log } = memoryLogger();
  let dispatcher: Dispatcher | undefined;
  const clock = new ServiceClock({
    wall: time.wall,
    monotonic: time.monotonic,
    synchronized: () => false,
    log,
    rebase: async (deltaMs, switchOver) => {
      await db.durably(() => {
        store.shiftTimes(deltaMs);
        outbox.shiftTimes(deltaMs);
        switchOver();
      });
      dispatcher?.notify();
    },
  });
  const outbox = new Outbox(db, { now: clock.now });
  await clock.start(0, hour);
  t.teardown(() => clock.stop());
  const attempts: number[] = [];
  const send: SendFunction = async () => {
    attempts.push(clock.now());
    return { status: 500, headers: {}, body: '', truncated: false };
  };
  // The dispatcher's one timer, fired by the test once enough monotonic time passed.
  let timer: { fn: () => void; at: number } | undefined;
  dispatcher = new Dispatcher({
    outbox,
    log,
    send,
    policy: loopbackPolicy,
    targets: testTargets(),
    now: clock.now,
    schedule: createRetrySchedule({ retryDelaysMs: [5 * minute, 5 * minute], jitter: 0 }),
    timers: {
      set: (fn, ms) => (timer = { fn, at: time.monotonic() + ms }),
      clear: () => (timer = undefined),
    },
  });
  t.teardown(() => dispatcher.stop(0));
  /** Real time passes: the dispatcher's timer fires whenever it is due. */
  const pass = async (ms: number) => {
    const end = time.monotonic() + ms;
    while (timer && timer.at <= end) {
      time.advance(timer.at - time.monotonic());
      const { fn } = timer;
      timer = undefined;
      fn();
      await new Promise((r) => setImmediate(r));
      await until(() => dispatcher.stats().inFlight === 0, 2000, 'attempts to finish');
    }
    time.advance(end - time.monotonic());
  };
  return { time, clock, outbox, dispatcher, attempts, pass };
}

for (const [direction, step] of [
  ['forward', fiveYears],
  ['back', -fiveYears],
] as const) {
  t.test(`a retry due in 5 minutes and a step ${direction} by 5 years: sent 5 minutes after the failure, not at once and not in years`, async (t) => {
    const { time, clock, outbox, dispatcher, attempts, pass } = await setup(t);
    const record = await outbox.enqueueDurably(testDelivery('http://127.0.0.1:9/hook'));
    dispatcher.start();
    await until(() => attempts.length === 1 && outbox.get(record.id)?.attempts === 1, 2000, 'the first attempt');
    time.advance(minute);
    time.step(step);
    t.equal(await clock.check(), step);
    await new Promise((r) => setImmediate(r));
    await pass(3 * minute);
    t.equal(attempts.length, 1, '4 minutes after the failure: no retry yet');
    t.equal(outbox.get(record.id)?.nextAttemptAt, attempts[0]! + 5 * minute + step, 'the due time moved with the clock');
    await pass(minute);
    t.equal(attempts.length, 2, '5 minutes after the failure: the retry');
    t.equal(attempts[1]! - attempts[0]!, 5 * minute + step, 'as the wall clock shows it');
  });
}

t.test('dead letters and delivered records keep their age across a step forward: pruned after 30 and 7 days, not at once', async (t) => {
  const { time, clock, outbox } = await setup(t);
  const dead = await outbox.enqueueDurably(testDelivery('http://127.0.0.1:9/dead'));
  await outbox.recordAttempt(dead.id, { result: 'dead', at: clock.now(), status: 500 });
  const delivered = await outbox.enqueueDurably(testDelivery('http://127.0.0.1:9/ok'));
  await outbox.recordAttempt(delivered.id, { result: 'delivered', at: clock.now(), status: 200 });
  const pending = await outbox.enqueueDurably(testDelivery('http://127.0.0.1:9/later'));
  t.equal(outbox.newestRecorded(), clock.now(), 'the newest time recorded: a floor for the next start');
  time.advance(day);
  time.step(fiveYears);
  await clock.check();
  t.equal(await outbox.prune(), 0, 'a day old, as before the step: nothing pruned');
  t.equal(outbox.get(dead.id)?.deadAt, dead.createdAt + fiveYears);
  t.match(outbox.get(pending.id), { state: 'pending', createdAt: pending.createdAt + fiveYears, nextAttemptAt: pending.nextAttemptAt + fiveYears });
  t.same(
    [...outbox.due()].map((d) => d.id),
    [pending.id],
    'the due index moved too',
  );
  time.advance(6 * day + minute);
  t.equal(await outbox.prune(), 1, 'delivered: pruned after 7 days');
  t.equal(outbox.get(delivered.id), undefined);
  time.advance(23 * day);
  t.equal(await outbox.prune(), 1, 'dead: pruned after 30 days');
  t.equal(outbox.listDead().length, 0);
  t.ok((await outbox.redeliver(pending.id)) === undefined, 'pending is not dead');
});

t.test('a dead letter redelivered after a rebase is found under its moved time', async (t) => {
  const { time, clock, outbox } = await setup(t);
  const dead = await outbox.enqueueDurably(testDelivery('http://127.0.0.1:9/dead'));
  await outbox.recordAttempt(dead.id, { result: 'dead', at: clock.now(), status: 500 });
  time.step(-hour);
  await clock.check();
  const revived = await outbox.redeliver(dead.id);
  t.match(revived, { state: 'pending', attempts: 0 });
  t.equal(outbox.counts().dead, 0, 'its old index entry is gone');
});
