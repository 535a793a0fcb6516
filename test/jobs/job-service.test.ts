// The jobs domain on a real LMDB environment: state changes, their notifications in the
// same transaction, expiry.
import { existsSync, writeFileSync } from 'node:fs';
import t, { type Test } from 'tap';

import { parseAudioMediaType } from '../../src/engine/media-type.js';
import type { Job } from '../../src/jobs/job.js';
import { JobService, type JobChange } from '../../src/jobs/job-service.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { Spool } from '../../src/jobs/spool.js';
import { createLogger } from '../../src/log.js';
import { StateDatabase } from '../../src/store/database.js';

function setup(t: Test, maxWaiting = 10) {
  const dir = t.testdir();
  const db = new StateDatabase(dir);
  db.open();
  t.teardown(() => db.close());
  const spool = new Spool(dir);
  spool.open();
  const store = new JobStore(db);
  let now = 1_000_000;
  const changes: Array<[string, JobChange]> = [];
  const service = new JobService({
    db,
    store,
    spool,
    notifiers: [{ notify: (job, change) => changes.push([job.id, change]) }],
    onNotified: () => {},
    onQueued: () => {},
    maxWaiting,
    log: createLogger({ level: 'error' }),
    now: () => now,
  });
  const create = (id: string) => {
    writeFileSync(spool.uploadPath(id), 'audio');
    return service.create({
      id,
      dialect: 'ibm',
      contentType: 'audio/wav',
      format: parseAudioMediaType('audio/wav'),
      audioBytes: 5,
      model: 'en-US_BroadbandModel',
      options: {},
      output: { timestamps: false, wordConfidence: false },
      resultsTtlMs: 60_000,
    });
  };
  return { db, store, spool, service, changes, create, tick: (ms: number) => (now += ms) };
}

const transcript = { text: 'hi', segments: [], language: 'en', durationMs: 1000, windows: 1, timings: {} as never };

t.test('the queue is FIFO and bounded; transitions are notified', async (t) => {
  const { service, store, changes, create, tick } = setup(t, 2);
  await create('a');
  tick(1);
  await create('b');
  t.throws(() => service.checkCapacity(), { code: 'ERR_QUEUE_FULL' });
  t.equal(store.nextWaiting()?.id, 'a');
  const started = await service.start(store.nextWaiting()!);
  t.match(started, { status: 'processing', attempts: 1 });
  t.equal(store.nextWaiting()?.id, 'b');
  t.doesNotThrow(() => service.checkCapacity());
  await service.complete(started, transcript, { queueMs: 0, decodeMs: 1, transcribeMs: 2 });
  t.same(changes, [
    ['a', 'created'],
    ['b', 'created'],
    ['a', 'started'],
    ['a', 'completed'],
  ]);
  t.same(
    service.newest(10).map((j: Job) => j.id),
    ['b', 'a'],
    'newest first',
  );
});

t.test('finished jobs expire after their TTL, with their files', async (t) => {
  const { service, store, spool, create, tick } = setup(t);
  const job = await create('x');
  const done = await service.fail(await service.start(job), { code: 'ERR_AUDIO_CORRUPT', message: 'bad' });
  t.equal(done.expiresAt, done.updated + 60_000);
  t.notOk(existsSync(spool.uploadPath('x')), 'audio removed once the job finished');
  tick(59_000);
  t.equal(await service.sweep(), 0, 'not yet');
  tick(2_000);
  t.equal(await service.sweep(), 1);
  t.equal(store.get('x'), undefined);
  t.throws(() => service.get('x'), { code: 'ERR_JOB_NOT_FOUND' });
});

t.test('a notifier that throws rolls the state change back', async (t) => {
  const { db, store, spool } = setup(t);
  const service = new JobService({
    db,
    store,
    spool,
    notifiers: [
      {
        notify: () => {
          throw new Error('outbox full');
        },
      },
    ],
    onNotified: () => {},
    onQueued: () => {},
    maxWaiting: 10,
    log: createLogger({ level: 'error' }),
  });
  await t.rejects(
    service.create({
      id: 'y',
      dialect: 'ibm',
      contentType: 'audio/wav',
      format: parseAudioMediaType('audio/wav'),
      audioBytes: 5,
      model: 'm',
      options: {},
      output: { timestamps: false, wordConfidence: false },
      resultsTtlMs: 1,
    }),
    { code: 'ERR_STORE' },
  );
  t.equal(store.get('y'), undefined, 'no job without its notifications');
});
