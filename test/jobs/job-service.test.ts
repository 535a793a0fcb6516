// The jobs domain on a real LMDB environment: state changes, their notifications in the
// same transaction, expiry.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import t, { type Test } from 'tap';

import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { AppError } from '../../src/errors.js';
import type { Job } from '../../src/jobs/job.js';
import { DiskSpace } from '../../src/jobs/disk-space.js';
import { JobService, type JobChange, type JobRequest, type SourcedJobRequest } from '../../src/jobs/job-service.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { Spool } from '../../src/jobs/spool.js';
import { createLogger } from '../../src/log.js';
import { StateDatabase } from '../../src/store/database.js';
import { inSlices } from '../../src/store/slices.js';
import { until } from '../helpers/poll.js';

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
  let queued = 0;
  const service = new JobService({
    db,
    store,
    spool,
    disk: new DiskSpace(dir, 0),
    notifiers: [{ notify: (job, change) => changes.push([job.id, change]) }],
    onNotified: () => {},
    onQueued: () => queued++,
    maxWaiting,
    log: createLogger({ level: 'error' }),
    now: () => now,
  });
  const create = () => service.submit(request, receiveAudio);
  return { db, store, spool, service, changes, create, tick: (ms: number) => (now += ms), queued: () => queued };
}

const request: JobRequest = {
  contentType: 'audio/wav',
  format: parseAudioMediaType('audio/wav'),
  model: 'en-US_BroadbandModel',
  options: {},
  output: { timestamps: false, wordConfidence: false },
  resultsTtlMs: 60_000,
};

/** What an upload route does: the body into the spool file. */
const receiveAudio = async (path: string) => {
  writeFileSync(path, 'audio');
  return { bytes: 5 };
};

const transcript = { text: 'hi', segments: [], language: 'en', durationMs: 1000, windows: 1, timings: {} as never };

t.test('the queue is FIFO and bounded; transitions are notified', async (t) => {
  const { service, store, spool, changes, create, tick } = setup(t, 2);
  const a = await create();
  t.match(a, { status: 'waiting', attempts: 0, audioBytes: 5, warnings: [] });
  t.ok(existsSync(spool.uploadPath(a.id)));
  tick(1);
  const b = await create();
  let received = false;
  await t.rejects(
    service.submit(request, async (path) => {
      received = true;
      return receiveAudio(path);
    }),
    { code: 'ERR_QUEUE_FULL' },
  );
  t.notOk(received, 'a full queue refuses before any audio is read');
  t.equal(store.nextWaiting()?.id, a.id);
  const started = (await service.start(store.nextWaiting()!))!;
  t.match(started, { status: 'processing', attempts: 1 });
  t.equal(store.nextWaiting()?.id, b.id);
  tick(1); // jobs created in the same millisecond have no order ("newest first" below)
  const c = await create();
  await service.complete(started, transcript, { queueMs: 0, decodeMs: 1, transcribeMs: 2 });
  t.same(changes, [
    [a.id, 'created'],
    [b.id, 'created'],
    [a.id, 'started'],
    [c.id, 'created'],
    [a.id, 'completed'],
  ]);
  t.same(
    service.newest(10).map((j: Job) => j.id),
    [c.id, b.id, a.id],
    'newest first',
  );
});

t.test('interactive jobs run before the batch jobs that wait, oldest first among them', async (t) => {
  const { service, store, tick } = setup(t, 10);
  const batch = await service.submit(request, receiveAudio);
  tick(1);
  const first = await service.submit({ ...request, interactive: true }, receiveAudio);
  tick(1);
  const second = await service.submit({ ...request, interactive: true }, receiveAudio);
  t.equal(store.nextWaiting()?.id, first.id, 'someone is waiting for it');
  (await service.start(first))!;
  t.equal(store.nextWaiting()?.id, second.id);
  await service.delete(second.id);
  t.equal(store.nextWaiting()?.id, batch.id, 'then the batch job, which lost its place to no one else');
  t.equal(store.waitingCount(), 1);
});

t.test('a submission whose audio fails leaves nothing behind', async (t) => {
  const { service, store, spool, changes } = setup(t);
  let path = '';
  await t.rejects(
    service.submit(request, async (p) => {
      path = p;
      writeFileSync(p, 'half an upl');
      throw new AppError('ERR_ABORTED', 'the client closed the connection');
    }),
    { code: 'ERR_ABORTED' },
  );
  t.notOk(existsSync(path), 'the partial upload is removed');
  t.same(store.newest(10), []);
  t.same(changes, []);
  t.same(readdirSync(spool.dir), []);
});

t.test('what the upload showed (a detected format, warnings) goes into the job', async (t) => {
  const { service, store } = setup(t);
  const detected = parseAudioMediaType('application/octet-stream');
  const job = await service.submit({ ...request, warnings: ['from the query'] }, async (p) => {
    writeFileSync(p, 'RIFF');
    return { bytes: 4, format: { ...detected, mediaType: 'audio/wav' }, warnings: ['from the data'] };
  });
  t.match(job, { format: { kind: 'auto', mediaType: 'audio/wav' }, warnings: ['from the query', 'from the data'], audioBytes: 4 });
  t.same(store.get(job.id)?.warnings, job.warnings, 'stored as answered');
  const plain = await service.submit(request, receiveAudio);
  t.same(plain.format, request.format, 'without a detected format the request decides');
});

t.test('finished jobs expire after their TTL, with their files', async (t) => {
  const { service, store, spool, create, tick } = setup(t);
  const job = await create();
  const done = await service.fail((await service.start(job))!, { code: 'ERR_AUDIO_CORRUPT', message: 'bad' });
  t.equal(done.expiresAt, done.updated + 60_000);
  t.notOk(existsSync(spool.uploadPath(job.id)), 'audio removed once the job finished');
  tick(59_000);
  t.equal(await service.sweep(), 0, 'not yet');
  tick(2_000);
  t.equal(await service.sweep(), 1);
  t.equal(store.get(job.id), undefined);
  t.throws(() => service.get(job.id), { code: 'ERR_JOB_NOT_FOUND' });
});

t.test('a notifier that throws rolls the state change back', async (t) => {
  const { db, store, spool } = setup(t);
  const service = new JobService({
    db,
    store,
    spool,
    disk: new DiskSpace(spool.dir, 0),
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
  await t.rejects(service.submit(request, receiveAudio), { code: 'ERR_STORE' });
  t.same(store.newest(10), [], 'no job without its notifications');
  t.same(readdirSync(spool.dir), [], 'and no audio without its job');
});

t.test('jobs are counted by status in the transactions that change them; an earlier release is counted once', async (t) => {
  const { db, store, service, create } = setup(t);
  t.equal(await store.upgrade(), true, 'a new store starts counting');
  const counts = () => store.countByStatus();
  const [a, b, c] = [await create(), await create(), await create()];
  t.same(counts(), { waiting: 3, processing: 0, completed: 0, failed: 0 });
  t.equal(store.waitingCount(), 3, 'the waiting, from the counters');
  const running = (await service.start(a))!;
  await service.complete(running, transcript, { queueMs: 0, decodeMs: 1, transcribeMs: 1 });
  await service.fail((await service.start(b))!, { code: 'ERR_AUDIO_CORRUPT', message: 'bad' });
  await service.delete(c.id);
  t.same(counts(), { waiting: 0, processing: 0, completed: 1, failed: 1 });
  // A transaction that throws takes its count changes with it.
  await t.rejects(
    db.durably(() => {
      store.remove(a.id);
      throw new Error('abort');
    }),
  );
  t.same(counts(), { waiting: 0, processing: 0, completed: 1, failed: 1 });

  // A store without counters (an earlier release): scanned until upgrade() counts it, once.
  await create();
  await db.durably(() => {
    for (const key of [...db.db<number, string>('jobs-counts').getKeys()]) db.db('jobs-counts').removeSync(key);
  });
  t.same(counts(), { waiting: 1, processing: 0, completed: 1, failed: 1 }, 'scanned');
  t.equal(store.waitingCount(), 1, 'the waiting, from the index');
  t.equal(await store.upgrade(), true);
  t.equal(await store.upgrade(), false);
  t.same(counts(), { waiting: 1, processing: 0, completed: 1, failed: 1 }, 'kept');
  t.equal(store.waitingCount(), 1, 'the waiting, from the counters again');
});

t.test('orphaned spool files: an upload in flight is spared, a finished job keeps nothing, unknown files go', async (t) => {
  const { store, spool, service, create } = setup(t);
  const waiting = await create();
  const finished = await service.complete((await service.start(await create()))!, transcript, { queueMs: 0, decodeMs: 1, transcribeMs: 1 });
  // A crash between the commit and the cleanup left the finished job's files (the PCM may be GBs).
  writeFileSync(spool.uploadPath(finished.id), 'audio');
  writeFileSync(spool.pcmPath(finished.id), 'pcm');
  writeFileSync(spool.uploadPath('not-a-job'), 'x');
  writeFileSync(`${spool.dir}/stray`, 'x');

  let arrived!: () => void;
  const arriving = new Promise<void>((resolve) => (arrived = resolve));
  let inFlight = '';
  const upload = service.submit(request, async (path) => {
    inFlight = path;
    writeFileSync(path, 'first bytes');
    await arriving;
    return receiveAudio(path);
  });
  await until(() => inFlight !== '', 2000, 'the upload to begin');

  t.equal(await spool.removeOrphans((id) => service.needsAudio(id)), 4);
  t.same(readdirSync(spool.dir).sort(), [`${waiting.id}.upload`, inFlight.split('/').pop()!].sort(), 'the waiting job and the upload in flight');
  arrived();
  const job = await upload;
  t.ok(existsSync(spool.uploadPath(job.id)), 'the upload became a job with its audio');
  t.equal(store.get(job.id)?.status, 'waiting');
});

t.test('admission: uploads in flight count against the queue and, by their declared size, against the free-space floor', async (t) => {
  const dir = t.testdir();
  const db = new StateDatabase(dir);
  db.open();
  t.teardown(() => db.close());
  const spool = new Spool(dir);
  spool.open();
  const space = { free: 10e6 };
  const disk = new DiskSpace(dir, 2e6, () => space.free);
  const serviceWith = (maxWaiting: number) =>
    new JobService({ db, store: new JobStore(db), spool, disk, onNotified: () => {}, onQueued: () => {}, maxWaiting, log: createLogger({ level: 'error' }) });
  const service = serviceWith(3);
  let arrived!: () => void;
  const arriving = new Promise<void>((resolve) => (arrived = resolve));
  const slow = (path: string) => arriving.then(() => receiveAudio(path));

  const first = service.submit(request, slow, 5e6);
  await t.rejects(service.submit(request, receiveAudio, 4e6), {
    code: 'ERR_INSUFFICIENT_STORAGE',
    message: /^Not enough free space on this device for 4 MB of audio \(10 MB free, 5 MB promised to uploads in progress, 2 MB kept free\)/,
  });
  const second = service.submit(request, slow, 2e6);
  const third = service.submit(request, slow);
  await t.rejects(service.submit(request, receiveAudio), { code: 'ERR_QUEUE_FULL', message: /3 jobs waiting or arriving/ }, 'arriving uploads count');
  arrived();
  await Promise.all([first, second, third]);
  t.equal(disk.admit(7e6).call(null), undefined, 'the promises are released once the uploads are in');

  // The disk fills while an upload arrives: 507, and nothing of it is left.
  const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  space.free = 1e9;
  const service2 = serviceWith(10);
  const before = readdirSync(spool.dir).length;
  await t.rejects(
    service2.submit(request, async (path) => {
      writeFileSync(path, 'partial');
      throw full;
    }),
    { code: 'ERR_INSUFFICIENT_STORAGE', message: /ran out of space while storing the audio/ },
  );
  t.equal(readdirSync(spool.dir).length, before, 'the partial file is gone');
  // A client's own mistake keeps its code even when the disk filled meanwhile.
  await t.rejects(
    service2.submit(request, async () => {
      space.free = 0;
      throw new AppError('ERR_PAYLOAD_TOO_LARGE', 'too big');
    }),
    { code: 'ERR_PAYLOAD_TOO_LARGE' },
  );
});

t.test('a backlog of expired jobs goes in one sweep, in slices of one short transaction each', async (t) => {
  const { service, store, create, tick } = setup(t, 1000);
  for (let i = 0; i < 120; i++) await service.complete((await service.start(await create()))!, transcript, { queueMs: 0, decodeMs: 1, transcribeMs: 1 });
  tick(60_001);
  const slices: number[] = [];
  const removed = await inSlices(async (limit) => {
    const n = await service.sweep(limit);
    slices.push(n);
    return n;
  }, 50);
  t.equal(removed, 120);
  t.same(slices, [50, 50, 20]);
  t.same(store.countByStatus(), { waiting: 0, processing: 0, completed: 0, failed: 0 });
});

/** What Azure's batch transcription asks for: a job per content URL, no audio. */
const sourced = (url: string): SourcedJobRequest => {
  const { contentType: _contentType, format: _format, ...rest } = request;
  return { ...rest, source: { url } };
};

t.test("accept: jobs with a source URL, committed with their notifications and the caller's records in one transaction", async (t) => {
  const { db, store, spool, service, changes, queued } = setup(t);
  const callerRecords = db.db<string[], string>('ibm-callbacks');
  let seen: string[] = [];
  const jobs = await service.accept([sourced('https://blob.example/a.wav?sig=1'), sourced('http://10.0.0.5/b.mp3')], (created) => {
    seen = created.map((j) => j.id);
    // Inside the transaction: the jobs are already written, as the caller's records may need.
    t.equal(store.get(created[0]!.id)?.status, 'waiting');
    callerRecords.putSync('batch-1', seen);
  });
  t.equal(jobs.length, 2);
  t.same(
    seen,
    jobs.map((j) => j.id),
    'the caller saw the jobs it gets back',
  );
  t.match(jobs[0], {
    status: 'waiting',
    audioBytes: 0,
    attempts: 0,
    source: { url: 'https://blob.example/a.wav?sig=1' },
    contentType: 'application/octet-stream',
    format: { kind: 'auto', mediaType: 'application/octet-stream' },
    model: 'en-US_BroadbandModel',
  });
  for (const job of jobs) t.same(store.get(job.id), job, 'stored');
  t.same(callerRecords.get('batch-1'), seen, "the caller's record committed with them");
  t.same(
    changes,
    jobs.map((j) => [j.id, 'created']),
    "each job's notification",
  );
  t.equal(queued(), 1, 'the scheduler is woken once');
  t.equal(store.nextWaiting()?.id, jobs[0]!.id, 'they run in the order of the list');
  t.equal(store.waitingCount(), 2);
  t.same(readdirSync(spool.dir), [], 'no audio yet');
  t.ok(service.needsAudio(jobs[0]!.id), 'a waiting job will need the audio it fetches');
  t.same(await service.accept([]), [], 'an empty list creates nothing');
});

t.test('accept: all or nothing against the queue, a refused URL and a failing caller', async (t) => {
  const { db, store, service, changes, create } = setup(t, 3);
  await create();
  let called = 0;
  await t.rejects(
    service.accept([sourced('http://10.0.0.5/a'), sourced('http://10.0.0.5/b'), sourced('http://10.0.0.5/c')], () => called++),
    { code: 'ERR_QUEUE_FULL', message: /The queue is full for 3 more jobs \(1 jobs waiting or arriving, 3 at most\)/ },
  );
  t.equal(called, 0);
  t.equal(store.waitingCount(), 1, 'none of them was created');
  for (const [url, message] of [
    ['http://user:key@10.0.0.5/a', /carries credentials/],
    ['file:///etc/passwd', /not an http: or https: URL/],
    ['blob.example/a.wav', /not an absolute http: or https: URL/],
  ] as const) {
    await t.rejects(service.accept([sourced('http://10.0.0.5/ok'), sourced(url)]), { code: 'ERR_CONTENT_REFUSED', message }, url);
  }
  await t.rejects(service.accept([{ ...sourced('x'), source: undefined as never }]), { code: 'ERR_CONTENT_REFUSED' }, 'no source at all');
  const before = changes.length;
  await t.rejects(
    service.accept([sourced('http://10.0.0.5/a')], () => {
      db.db<string, string>('ibm-callbacks').putSync('half', 'written');
      throw new AppError('ERR_INVALID_ARGUMENT', 'the caller changed its mind');
    }),
    { code: 'ERR_INVALID_ARGUMENT', message: 'the caller changed its mind' },
  );
  t.equal(store.waitingCount(), 1, "no job without the caller's records");
  t.equal(db.db<string, string>('ibm-callbacks').get('half'), undefined, 'and no record without its jobs');
  t.equal(changes.length - before, 0, "the caller's records come before the notifications, which may read them: none was attempted");
  t.equal((await service.accept([sourced('http://10.0.0.5/a'), sourced('http://10.0.0.5/b')])).length, 2, 'what fits is accepted');

  // Twenty at once come out of the queue in the order they were asked for.
  const big = setup(t, 20);
  const many = await big.service.accept(Array.from({ length: 20 }, (_, i) => sourced(`http://10.0.0.5/${i}`)));
  const order: string[] = [];
  for (let job = big.store.nextWaiting(); job; job = big.store.nextWaiting()) {
    order.push(job.source!.url);
    (await big.service.start(job))!;
  }
  t.same(
    order,
    many.map((j) => j.source!.url),
  );
});

t.test("recordAudio: the fetched audio's size, type, format and warnings; the job stays processing", async (t) => {
  const { service } = setup(t);
  const [job] = await service.accept([sourced('http://10.0.0.5/a')]);
  const running = (await service.start(job!))!;
  const audio = { bytes: 1234, contentType: 'text/plain', format: parseAudioMediaType('audio/wav'), warnings: ['detected as WAV'] };
  const recorded = await service.recordAudio(running, audio);
  t.match(recorded, { status: 'processing', audioBytes: 1234, contentType: 'text/plain', format: { container: 'wav' }, warnings: ['detected as WAV'] });
  t.same(service.get(job!.id), recorded);
  t.same((await service.recordAudio(recorded, audio)).warnings, ['detected as WAV'], 'a second download adds no duplicate warning');
});

t.test('segments of a streamed job: censored as the result, read from the first, ended with the job', async (t) => {
  const { service } = setup(t);
  const segment = (text: string, start: number) => ({
    start,
    end: start + 1000,
    text,
    confidence: 0.5,
    noSpeechProb: 0,
    speakerTurnNext: false,
    tokens: [{ id: 1, text, p: 0.5, plog: -0.7, start, end: start + 1000 }],
    words: text.split(' ').map((w, i) => ({ text: w, start: start + i, end: start + i + 1, confidence: 0.5 })),
  });
  const masked = await service.submit({ ...request, output: { ...request.output, profanity: 'removed' }, streamed: true, synchronous: true }, receiveAudio);
  const early = service.segments(masked.id);
  const running = (await service.start(masked))!;
  const segments = [segment('What the fuck is this?', 0), segment('Shit', 1000), segment('Shit happens.', 2000)];
  service.publishSegment(running, segments[0]!);
  const first = await early.next();
  t.equal(first.value?.text, 'What the is this?', 'profanity removed as the result will have it');
  t.notOk(first.value && 'tokens' in first.value, 'tokens are not kept, as in the stored result');
  service.publishSegment(running, segments[1]!);
  service.publishSegment(running, segments[2]!);
  const late = service.segments(masked.id);
  await service.complete(
    running,
    { text: '', segments, language: 'en', durationMs: 3000, windows: 1, timings: {} as never },
    { queueMs: 0, decodeMs: 0, transcribeMs: 0 },
  );
  const rest: string[] = [];
  for await (const s of early) rest.push(s.text);
  t.same(rest, ['happens.'], 'a segment left without text is dropped, as in the result');
  const all: string[] = [];
  for await (const s of late) all.push(s.text);
  t.same(all, ['What the is this?', 'happens.'], 'a later reader reads from the first');
  t.same(
    service.result(masked.id)!.segments.map((s) => s.text),
    all,
    'the same segments as the stored result',
  );
  t.equal(service.feedCount, 0, 'the feed is gone with the job');
  const after: unknown[] = [];
  for await (const s of service.segments(masked.id)) after.push(s);
  t.same(after, [], 'a finished job has no feed: its result has the segments');

  // Not streamed: nothing is kept; a deleted waiting job ends its readers.
  const plain = await service.submit(request, receiveAudio);
  t.same((await service.segments(plain.id).next()).done, true);
  const waiting = await service.submit({ ...request, streamed: true }, receiveAudio);
  const reader = service.segments(waiting.id).next();
  await service.delete(waiting.id);
  t.same(await reader, { value: undefined, done: true });
  t.equal(service.feedCount, 0);
});

t.test("an upload's directory fsync runs while its data is written; the job is committed after both", async (t) => {
  const { service, store, spool } = setup(t);
  const realSync = spool.syncDir.bind(spool);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let syncCalls = 0;
  spool.syncDir = () => {
    syncCalls++;
    return realSync().then(() => held);
  };
  let syncsWhileReceiving = -1;
  const submitted = service.submit(request, async (path, created) => {
    writeFileSync(path, 'audio');
    created();
    await new Promise((r) => setTimeout(r, 20)); // the data still being written and fsynced
    syncsWhileReceiving = syncCalls;
    return { bytes: 5 };
  });
  let settled = false;
  void submitted.then(() => (settled = true));
  await until(() => syncsWhileReceiving >= 0);
  t.equal(syncsWhileReceiving, 1, 'the directory fsync started once the file existed, before its data was done');
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(settled, 'no answer while the directory fsync has not ended');
  t.equal(store.waitingCount(), 0, 'and no job committed');
  release();
  const job = await submitted;
  t.equal(store.get(job.id)?.status, 'waiting');
  t.equal(syncCalls, 1, 'one directory fsync for the upload, not a second one after it');

  // A receiver that does not say when its file exists: the directory fsync follows it.
  syncCalls = 0;
  await service.submit(request, receiveAudio);
  t.equal(syncCalls, 1);
});

t.test('a job marked as on its way to the fleet (a crash left the mark): not picked, not started; a device off the fleet runs it', async (t) => {
  const { db, service, store, create, queued } = setup(t);
  const job = await create();
  await db.durably(() => store.put({ ...job, handingOver: true }));
  t.equal(store.nextWaiting(), undefined, 'not picked');
  t.equal(await service.start(job), undefined, 'not started');
  t.equal(store.waitingCount(), 1, 'still counted against the queue');
  await t.rejects(service.delete(job.id), { code: 'ERR_JOB_BUSY' }, 'a client cannot delete it: a moment later it is the fleet’s');
  const woken = queued();
  t.equal(await service.keepHandOvers(), 1);
  t.notOk(store.get(job.id)?.handingOver, 'unmarked');
  t.equal(store.nextWaiting()?.id, job.id, 'back in the queue');
  t.match(await service.start(job), { status: 'processing' }, 'and started here');
  t.equal(queued(), woken, 'called before the scheduler starts: nobody to wake');
  t.equal(await service.keepHandOvers(), 0);
});
