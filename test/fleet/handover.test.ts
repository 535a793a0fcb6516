// A device's backlog handed to the fleet's queue (JobService.handOver) on a real
// nats-server -js and a real LMDB environment: which waiting jobs go (batch uploads, oldest
// first) and which stay (a started job, one a client waits for), what is left of them here
// (nothing) and there (state, audio, one work message), the marks a crash leaves (a finished
// handover is not done twice, one cut short is done again), and a job the fleet refuses.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

import { jetstreamManager } from '@nats-io/jetstream';
import t, { type Test } from 'tap';

import { AzureTranscriptions } from '../../src/azure/transcription-service.js';
import { type BatchRecord, BatchStore } from '../../src/azure/transcriptions.js';
import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { FleetBroker } from '../../src/fleet/broker.js';
import { FleetJobs } from '../../src/fleet/fleet-jobs.js';
import { FleetQueue } from '../../src/fleet/queue.js';
import { DiskSpace } from '../../src/jobs/disk-space.js';
import type { Job } from '../../src/jobs/job.js';
import { JobService, type JobRequest } from '../../src/jobs/job-service.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { Spool } from '../../src/jobs/spool.js';
import { createLogger } from '../../src/log.js';
import { StateDatabase } from '../../src/store/database.js';
import { NatsServer } from '../helpers/nats-server.js';
import { until } from '../helpers/poll.js';

const log = createLogger({ level: 'error' });
const transcript = { text: 'hi', segments: [], language: 'en', durationMs: 1000, windows: 1, timings: {} as never };
const timings = { queueMs: 0, decodeMs: 1, transcribeMs: 1 };

const request: JobRequest = {
  contentType: 'audio/wav',
  format: parseAudioMediaType('audio/wav'),
  model: 'en-US_BroadbandModel',
  options: {},
  output: { timestamps: false, wordConfidence: false },
  resultsTtlMs: 60_000,
};

/** A device's jobs domain on its own LMDB and spool, joined to the fleet at `url`. */
async function device(t: Test, url: string) {
  const dir = t.testdir();
  const db = new StateDatabase(dir);
  db.open();
  t.teardown(() => db.close());
  const spool = new Spool(dir);
  spool.open();
  const store = new JobStore(db);
  let now = 1_000_000;
  let queued = 0;
  const service = new JobService({
    db,
    store,
    spool,
    disk: new DiskSpace(dir, 0),
    onNotified: () => {},
    onQueued: () => queued++,
    maxWaiting: 10,
    log,
    now: () => now++,
  });
  const broker = new FleetBroker({ settings: { url }, lanes: ['en'], name: 'a', log, retryMs: 200 });
  t.teardown(() => broker.stop());
  broker.start();
  await broker.whenConnected();
  const queue = new FleetQueue(broker);
  const fleet = new FleetJobs({ broker, queue, log, device: 'device-a' });
  const jsm = await jetstreamManager(broker.connected!.nc);
  const workMessages = async () => (await jsm.streams.info('EARSHOT_JOBS')).state.messages;
  /** A job accepted while the device was not in the fleet (the broker away): its audio in the spool. */
  const accept = (audio: string, extra: Partial<JobRequest> = {}) =>
    service.submit({ ...request, ...extra }, async (file) => {
      writeFileSync(file, audio);
      return { bytes: audio.length };
    });
  return { db, service, store, spool, fleet, queue, broker, workMessages, accept, queued: () => queued };
}

t.test('waiting batch uploads go to the fleet, oldest first, with their audio; a started job and one a client waits for stay', async (t) => {
  const server = await NatsServer.start(t);
  const a = await device(t, server.url);
  const first = await a.accept('first');
  const second = await a.accept('second');
  const third = await a.accept('third');
  const waitedFor = await a.accept('sync', { synchronous: true, interactive: true });
  const running = (await a.service.start(third))!;
  a.service.joinFleet(a.fleet);

  t.equal(await a.service.handOver(), 2);
  for (const job of [first, second]) {
    t.equal(a.store.get(job.id), undefined, 'not here any more');
    t.notOk(a.service.needsAudio(job.id), 'nor its audio');
    const there = await a.queue.get(job.id);
    t.match(there?.job, { id: job.id, status: 'waiting', attempts: 0 }, 'in the fleet, waiting');
    t.notOk(there?.job.handingOver, 'without the mark');
    t.ok(await a.queue.queued(job), 'its work message queued');
  }
  const pulled = await a.broker.connected!.audio.getBlob(`${first.id}.audio`);
  t.equal(Buffer.from(pulled!).toString(), 'first', 'its audio in the fleet');
  t.equal(await a.workMessages(), 2);
  // Oldest first: the stream's first message is the first job's.
  const jsm = await jetstreamManager(a.broker.connected!.nc);
  t.match(JSON.parse(new TextDecoder().decode((await jsm.streams.getMessage('EARSHOT_JOBS', { seq: 1 }))!.data)), { id: first.id });
  t.match(a.store.get(running.id), { status: 'processing' }, 'the started job runs here');
  t.match(a.store.get(waitedFor.id), { status: 'waiting' }, 'the one a client waits for stays');
  t.equal(readFileSync(a.spool.uploadPath(waitedFor.id), 'utf8'), 'sync');
  t.equal(await a.service.handOver(), 0, 'nothing more to hand over');
  t.equal(await a.workMessages(), 2);
});

t.test('a mark left by a crash: a finished handover is not done twice, one cut short is done again', async (t) => {
  const server = await NatsServer.start(t);
  const a = await device(t, server.url);
  const stored = await a.accept('stored');
  const halfway = await a.accept('halfway');
  a.service.joinFleet(a.fleet);
  // The crash came after the broker acknowledged everything of `stored`, and after only
  // the state of `halfway` was stored (no audio, no work message).
  await a.queue.submit(stored, a.spool.uploadPath(stored.id));
  await a.broker.connected!.jobs.create(halfway.id, JSON.stringify(halfway));
  await a.db.durably(() => {
    for (const job of [stored, halfway]) a.store.put({ ...a.store.get(job.id)!, handingOver: true });
  });
  t.equal(await a.workMessages(), 1);

  t.equal(await a.service.handOver(), 2);
  t.equal(await a.workMessages(), 2, "one work message each: stored's not published again");
  for (const job of [stored, halfway]) {
    t.equal(a.store.get(job.id), undefined);
    t.ok(await a.queue.queued(job));
  }
  const audio = await a.broker.connected!.audio.getBlob(`${halfway.id}.audio`);
  t.equal(Buffer.from(audio!).toString(), 'halfway', "the cut-short job's audio stored this time");
});

t.test('a job the fleet cannot take stays here, unmarked, and the scheduler is woken for it', async (t) => {
  const server = await NatsServer.start(t);
  const a = await device(t, server.url);
  const broken = await a.accept('lost');
  const next = await a.accept('next');
  a.service.joinFleet(a.fleet);
  // Its audio cannot be read (the upload to the broker fails).
  rmSync(a.spool.uploadPath(broken.id));
  const woken = a.queued();
  t.equal(await a.service.handOver(), 0);
  t.match(a.store.get(broken.id), { status: 'waiting' });
  t.notOk(a.store.get(broken.id)?.handingOver, 'unmarked');
  t.equal(a.queued(), woken + 1);
  t.equal(await a.queue.get(broken.id), undefined, 'nothing of it left in the fleet');
  t.match(a.store.get(next.id), { status: 'waiting' }, 'the round ended there: the next one waits for the next round');
  t.equal(await a.workMessages(), 0);

  // The same, for a mark a crash left: the fleet may have it (unknown here), so it stays
  // marked, not run here, until a round finds out.
  await a.db.durably(() => a.store.put({ ...a.store.get(broken.id)!, handingOver: true }));
  t.equal(await a.service.handOver(), 0);
  t.ok(a.store.get(broken.id)?.handingOver, 'a crash-left mark stays');

  await server.stop();
  await until(() => a.broker.state === 'unreachable', 10_000, 'the broker gone');
  t.equal(await a.service.handOver(), 0, 'the broker away: nothing tried');
  t.notOk(a.store.get(next.id)?.handingOver);
});

t.test("on (re)join, this device's held copies of jobs that no longer run here go; another device's stay", async (t) => {
  const server = await NatsServer.start(t);
  const a = await device(t, server.url);
  a.service.joinFleet(a.fleet);
  const job = await a.accept('audio');
  const started = (await a.service.start(job))!;
  await until(async () => (await a.queue.get(job.id))?.job.heldBy === 'device-a', 5000, 'held');
  // Ended here while the broker was away (its copy was not replaced): as if deleted since.
  const gone = { ...started, id: '00000000-0000-4000-8000-00000000c0de' };
  t.ok(await a.queue.hold(gone, 'device-a'));
  const others = { ...started, id: '00000000-0000-4000-8000-00000000beef' };
  t.ok(await a.queue.hold(others, 'device-b'));
  t.equal(await a.service.shareOwn(), 1, 'the running job held again');
  t.equal(await a.queue.get(gone.id), undefined, 'the copy of a job gone from here is removed');
  t.match((await a.queue.get(job.id))?.job, { heldBy: 'device-a', status: 'processing' }, 'the running one kept');
  t.match((await a.queue.get(others.id))?.job, { heldBy: 'device-b' }, "another device's kept");
  await a.service.complete(started, transcript, timings);
  await a.service.delete(job.id);
  await until(async () => (await a.queue.get(job.id)) === undefined, 5000, 'deleted here: its copy goes too');
});

t.test(
  "a running job of this device is held in the fleet (any device's GET finds it) until its finished state replaces the copy; the sweep leaves it alone",
  async (t) => {
    const server = await NatsServer.start(t);
    const a = await device(t, server.url);
    const job = await a.accept('audio');
    const early = await a.accept('early');
    // Started before the device joined (the broker away), the other while in the fleet.
    const running = (await a.service.start(early))!;
    a.service.joinFleet(a.fleet);
    t.equal(await a.service.shareOwn(), 1, 'the running job copied on (re)join');
    t.match((await a.queue.get(running.id))?.job, { status: 'processing', heldBy: 'device-a' });
    const started = (await a.service.start(job))!;
    await until(async () => (await a.queue.get(job.id))?.job.status === 'processing', 5000, 'held once started');
    t.equal(await a.workMessages(), 0, 'in no queue of the fleet');
    await t.rejects(a.queue.delete(job.id), { code: 'ERR_JOB_BUSY' }, 'another device cannot delete it while it runs');
    t.same(await a.queue.failLeftovers(Date.now() + 3_600_000), [], 'not a leftover, however old');

    await a.service.complete(started, transcript, timings);
    await until(async () => (await a.queue.get(job.id))?.job.status === 'completed', 5000, 'the finished state replaces the copy');
    t.notOk((await a.queue.get(job.id))?.job.heldBy);
    t.match(await a.queue.result(job.id), { text: 'hi' });
    t.equal(await a.service.shareOwn(), 1, 'the other one still held; the finished one not copied twice');

    // Stopped mid-job: back to waiting here, the copy still says processing; the next round hands it over.
    await a.service.requeue(running, { countAttempt: false });
    t.equal(await a.service.handOver(), 1);
    t.match((await a.queue.get(running.id))?.job, { status: 'waiting' });
    t.notOk((await a.queue.get(running.id))?.job.heldBy, 'a fleet job now');
    t.ok(await a.queue.queued(running));
  },
);

t.test(
  'an Azure batch record none of whose jobs is anywhere goes once stale and seen so for 10 minutes (its jobs may be on their way from a device that took it alone)',
  async (t) => {
    const server = await NatsServer.start(t);
    const a = await device(t, server.url);
    a.service.joinFleet(a.fleet);
    let now = 10_000_000;
    const batches = new BatchStore(a.db, () => now);
    const replicated: string[] = [];
    const fleet = { changed: (id: string) => replicated.push(id), replicated: async () => {} };
    const transcriptions = new AzureTranscriptions(
      a.service,
      batches,
      () => ({}) as never,
      fleet,
      () => now,
    );
    const job = await a.accept('audio');
    const record = (id: string): BatchRecord => ({
      id,
      displayName: id,
      locale: 'en-US',
      contentUrls: ['http://127.0.0.1/x.wav'],
      jobIds: [job.id],
      properties: {} as never,
      apiVersion: 'v3.2',
      createdAt: now - 3_600_000,
      lastActionAt: now - 3_600_000,
    });
    await a.db.durably(() => batches.put(record('00000000-0000-4000-8000-00000000b001')));
    t.equal(await transcriptions.sweep(), 0, 'its job is here: kept');
    await a.service.delete(job.id);
    t.equal(await transcriptions.sweep(), 0, 'first seen without jobs: kept');
    now += 5 * 60_000;
    t.equal(await transcriptions.sweep(), 0, '5 minutes later: kept');
    now += 5 * 60_000 + 1;
    t.equal(await transcriptions.sweep(), 1, 'over 10 minutes without jobs: removed');
    t.same(batches.all(), []);
    t.same(replicated, ['00000000-0000-4000-8000-00000000b001'], 'the removal replicated');
  },
);

t.test("a job's held copy and its finished copy asked for together: written in that order, so it ends finished in the fleet", async (t) => {
  const server = await NatsServer.start(t);
  const a = await device(t, server.url);
  a.service.joinFleet(a.fleet);
  const jobs: Job[] = [];
  for (let i = 0; i < 8; i++) jobs.push(await a.accept(`audio ${i}`));
  // As when a job finishes at once after it started: both copies under way together.
  const copies = jobs.map((job) => {
    const running: Job = { ...job, status: 'processing', attempts: 1 };
    const finished: Job = { ...running, status: 'completed', expiresAt: Date.now() + 60_000 };
    return Promise.all([a.fleet.hold(running), a.fleet.share(finished, undefined)]);
  });
  t.same(
    await Promise.all(copies),
    jobs.map(() => [true, true]),
    'both written, each job',
  );
  for (const job of jobs) t.match((await a.queue.get(job.id))?.job, { status: 'completed', heldBy: undefined });
});
