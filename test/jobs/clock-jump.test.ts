// Results TTLs and the queue when the wall clock steps (a Pi has no real-time clock):
// the service clock and the real store, with both clocks faked.
import { writeFileSync } from 'node:fs';

import t, { type Test } from 'tap';

import { ServiceClock } from '../../src/clock.js';
import { Outbox } from '../../src/delivery/outbox.js';
import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { DiskSpace } from '../../src/jobs/disk-space.js';
import { JobService, type JobRequest } from '../../src/jobs/job-service.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { Spool } from '../../src/jobs/spool.js';
import { memoryLogger, openStore } from '../delivery/harness.js';
import { fakeTime, fiveYears, hour } from '../helpers/fake-time.js';

async function setup(t: Test, start = Date.UTC(2033, 0, 1)) {
  const dir = t.testdir();
  const db = openStore(t, dir);
  const spool = new Spool(dir);
  spool.open();
  const store = new JobStore(db);
  const outbox = new Outbox(db);
  const time = fakeTime(start);
  const { log } = memoryLogger();
  const clock = new ServiceClock({
    wall: time.wall,
    monotonic: time.monotonic,
    synchronized: () => false,
    log,
    rebase: (deltaMs, switchOver) =>
      db.durably(() => {
        store.shiftTimes(deltaMs);
        outbox.shiftTimes(deltaMs);
        switchOver();
      }),
  });
  await clock.start(store.newestCreated(), 3_600_000);
  t.teardown(() => clock.stop());
  const service = new JobService({
    db,
    store,
    spool,
    disk: new DiskSpace(dir, 0),
    onNotified: () => {},
    onQueued: () => {},
    maxWaiting: 10,
    log,
    now: clock.now,
  });
  const submit = () =>
    service.submit(request, async (path) => {
      writeFileSync(path, 'audio');
      return { bytes: 5 };
    });
  /** A job completed now with a results TTL of one hour. */
  const completed = async () => {
    const job = (await service.start(await submit()))!;
    return service.complete(job, transcript, { queueMs: 0, decodeMs: 0, transcribeMs: 0 });
  };
  return { time, clock, store, service, submit, completed };
}

const request: JobRequest = {
  contentType: 'audio/wav',
  format: parseAudioMediaType('audio/wav'),
  model: 'en-US_BroadbandModel',
  options: {},
  output: { timestamps: false, wordConfidence: false },
  resultsTtlMs: hour,
};
const transcript = { text: 'hi', segments: [], language: 'en', durationMs: 1000, windows: 1, timings: {} as never };

for (const [direction, step] of [
  ['forward', fiveYears],
  ['back', -fiveYears],
] as const) {
  t.test(`a results TTL of 1 h and a step ${direction} by 5 years: the job expires 1 h after it finished, not at once and not in years`, async (t) => {
    const { time, clock, store, service, completed } = await setup(t);
    const job = await completed();
    time.advance(10 * 60_000);
    time.step(step);
    t.equal(await service.sweep(), 0, 'before the clock noticed: nothing expires');
    t.equal(await clock.check(), step, 'the step is noticed and the store rebased');
    t.equal(await service.sweep(), 0, 'after: nothing expires either');
    t.equal(store.get(job.id)?.expiresAt, job.expiresAt! + step, 'the expiry moved with the clock');
    t.equal(store.get(job.id)?.created, job.created + step);
    time.advance(49 * 60_000);
    t.equal(await service.sweep(), 0, '59 minutes after it finished: still there');
    time.advance(60_000);
    t.equal(await service.sweep(), 1, 'an hour after it finished: expired');
    t.equal(store.get(job.id), undefined);
  });
}

t.test('the wall clock set back to 1970 while running: not believed; the job expires on time', async (t) => {
  const { time, clock, store, service, completed } = await setup(t);
  const job = await completed();
  time.setWall(0);
  t.equal(await clock.check(), 0);
  time.advance(59 * 60_000);
  t.equal(await service.sweep(), 0);
  time.advance(60_000);
  t.equal(await service.sweep(), 1);
  t.equal(store.get(job.id), undefined);
});

t.test('the queue stays first in, first out, and the listing newest first, across a step back', async (t) => {
  const { time, clock, store, submit } = await setup(t);
  const first = await submit();
  time.advance(1000);
  time.step(-hour);
  await clock.check();
  const second = await submit();
  t.equal(store.nextWaiting()?.id, first.id, 'the older job runs first');
  t.same(
    store.newest(2).map((j) => j.id),
    [second.id, first.id],
  );
});

t.test('a job running across a rebase keeps its moved creation time', async (t) => {
  const { time, clock, store, service, submit } = await setup(t);
  const running = (await service.start(await submit()))!;
  time.step(fiveYears);
  await clock.check();
  const done = await service.complete(running, transcript, { queueMs: 0, decodeMs: 0, transcribeMs: 0 });
  t.equal(store.get(done.id)?.created, running.created + fiveYears, 'the stored creation time, not the copy held while running');
  t.equal(store.newest(1)[0]?.id, done.id);
});
