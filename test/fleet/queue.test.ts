// The fleet's queue on a real nats-server -js (Debian's, on a loopback port, its store in
// a temporary directory): provisioning, the link state, a job stored before submit
// resolves and pulled by another device, redelivery after the ack wait unless
// in-progress acks keep the job, compare-and-set job states, a broker restart.
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { jetstreamManager } from '@nats-io/jetstream';
import t, { type Test } from 'tap';

import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { FleetBroker } from '../../src/fleet/broker.js';
import { FleetJobs } from '../../src/fleet/fleet-jobs.js';
import { FleetQueue, jobLane, modelLanes } from '../../src/fleet/queue.js';
import type { Job } from '../../src/jobs/job.js';
import type { StoredTranscript } from '../../src/jobs/job-store.js';
import { createLogger } from '../../src/log.js';
import { freePort, NatsServer } from '../helpers/nats-server.js';
import { until } from '../helpers/poll.js';

const log = createLogger({ level: 'error' });
const ackWaitMs = 1500;

function device(t: Test, url: string, name: string, lanes = ['en']): { broker: FleetBroker; queue: FleetQueue } {
  const broker = new FleetBroker({ settings: { url }, lanes, name, log, retryMs: 200, layout: { ackWaitMs } });
  t.teardown(() => broker.stop());
  broker.start();
  return { broker, queue: new FleetQueue(broker) };
}

function waitingJob(id: string, language?: string): Job {
  const now = Date.now();
  return {
    id,
    created: now,
    updated: now,
    status: 'waiting',
    contentType: 'audio/wav',
    format: parseAudioMediaType('audio/wav'),
    audioBytes: 4,
    model: 'en-US_BroadbandModel',
    options: language ? { language } : {},
    output: { timestamps: false, wordConfidence: false },
    resultsTtlMs: 60_000,
    attempts: 0,
    warnings: [],
  };
}

t.test('lanes: English jobs go to the en lane, others to multi; an English-only model serves en only', async (t) => {
  t.equal(jobLane(waitingJob('a')), 'en');
  t.equal(jobLane(waitingJob('a', 'en')), 'en');
  t.equal(jobLane(waitingJob('a', 'de')), 'multi');
  t.equal(jobLane(waitingJob('a', 'auto')), 'multi');
  t.same(modelLanes({ multilingual: false }), ['en']);
  t.same(modelLanes({ multilingual: true }), ['en', 'multi']);
});

t.test('an unreachable broker is a state: the device connects once it is there, and provisions the stream and buckets', async (t) => {
  const port = await freePort();
  const { broker } = device(t, `nats://127.0.0.1:${port}`, 'a');
  await until(() => broker.state === 'unreachable', 5000, 'unreachable');
  t.equal(broker.connected, undefined);
  const server = await NatsServer.start(t);
  t.not(server.port, port, 'a server on another port changes nothing');
  await server.stop();
  // Now one on the device's port.
  await NatsServer.start(t, port);
  await broker.whenConnected();
  t.equal(broker.state, 'connected');
  const jsm = await jetstreamManager(broker.connected!.nc);
  const stream = await jsm.streams.info('EARSHOT_JOBS');
  t.equal(stream.config.retention, 'workqueue');
  t.equal(stream.config.discard, 'new', 'a full queue refuses new jobs, never drops waiting ones');
  const consumer = await jsm.consumers.info('EARSHOT_JOBS', 'workers-en');
  t.equal(consumer.config.ack_policy, 'explicit');
  t.equal(consumer.config.max_deliver, 10);
  t.equal(consumer.config.ack_wait, ackWaitMs * 1e6);
  const names = (await jsm.streams.names().next()).sort();
  t.same(names, ['EARSHOT_JOBS', 'KV_earshot-jobs', 'OBJ_earshot-audio']);
});

t.test('stop() ends the link whenever it comes: while connecting, while provisioning, once connected', async (t) => {
  const server = await NatsServer.start(t);
  // From 0 to 60 ms after start(): connect takes a few ms here, provisioning (stream,
  // consumer, two buckets) tens; a stop() while provisioning once waited forever.
  for (const delayMs of [0, 1, 2, 4, 6, 8, 10, 13, 16, 20, 25, 30, 40, 50, 60]) {
    const broker = new FleetBroker({ settings: { url: server.url }, lanes: ['en'], name: `s${delayMs}`, log, retryMs: 200, layout: { ackWaitMs } });
    broker.start();
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    const stopped = await Promise.race([broker.stop().then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 5000))]);
    t.ok(stopped, `stopped ${delayMs} ms after start (${broker.state})`);
  }
});

t.test('a submitted job is in JetStream when submit resolves; another device pulls it; unacknowledged, it comes back after the ack wait', async (t) => {
  const server = await NatsServer.start(t);
  const a = device(t, server.url, 'a');
  const b = device(t, server.url, 'b');
  await Promise.all([a.broker.whenConnected(), b.broker.whenConnected()]);
  const audio = path.join(t.testdir(), 'in.wav');
  writeFileSync(audio, 'RIFF');
  const job = waitingJob('00000000-0000-4000-8000-000000000001');
  await a.queue.submit(job, audio);

  // Stored: the state, the audio, the work message.
  t.same((await b.queue.get(job.id))?.job, job);
  const copy = path.join(t.testdir(), 'copy');
  t.equal(await b.queue.fetchAudio(job.id, copy), 4);
  const jsm = await jetstreamManager(a.broker.connected!.nc);
  t.equal((await jsm.streams.info('EARSHOT_JOBS')).state.messages, 1);

  const first = await b.queue.pull(['en'], 2000);
  t.equal(first?.id, job.id);
  t.equal(first?.deliveryCount, 1);
  t.equal(await a.queue.pull(['en'], 500), undefined, 'held by b: nobody else gets it');
  // b "dies": no ack. After the ack wait, a gets it again.
  const again = await a.queue.pull(['en'], ackWaitMs * 3);
  t.equal(again?.id, job.id);
  t.equal(again?.deliveryCount, 2);
  await again!.done();
  t.equal((await jsm.streams.info('EARSHOT_JOBS')).state.messages, 0, 'acknowledged: off the work queue');
  t.equal(await b.queue.pull(['en'], ackWaitMs * 2), undefined, 'and never delivered again');
});

t.test('in-progress acknowledgements keep a long job on its device past the ack wait', async (t) => {
  const server = await NatsServer.start(t);
  const a = device(t, server.url, 'a');
  const b = device(t, server.url, 'b');
  await Promise.all([a.broker.whenConnected(), b.broker.whenConnected()]);
  const audio = path.join(t.testdir(), 'in.wav');
  writeFileSync(audio, 'RIFF');
  const job = waitingJob('00000000-0000-4000-8000-000000000002');
  await a.queue.submit(job, audio);
  const held = await a.queue.pull(['en'], 2000);
  held!.keepAlive();
  t.equal(await b.queue.pull(['en'], ackWaitMs * 3), undefined, 'three ack waits later, still held');
  await held!.done();
});

t.test('job states are compare-and-set: a stale revision writes nothing', async (t) => {
  const server = await NatsServer.start(t);
  const a = device(t, server.url, 'a');
  await a.broker.whenConnected();
  const audio = path.join(t.testdir(), 'in.wav');
  writeFileSync(audio, 'RIFF');
  const job = waitingJob('00000000-0000-4000-8000-000000000003');
  const created = await a.queue.submit(job, audio);
  const mine = await a.queue.update({ ...job, status: 'processing', attempts: 1 }, created);
  t.ok(mine);
  t.equal(await a.queue.update({ ...job, status: 'processing', attempts: 1 }, created), undefined, 'the same start from the old revision: refused');
  t.equal((await a.queue.get(job.id))?.job.attempts, 1);
  await t.rejects(a.queue.submit(job, audio), { code: 'ERR_FLEET_UNAVAILABLE' }, 'the same id twice: refused');
});

t.test('a broker restart: unreachable while it is down, connected after (its listeners told each time), with the queued job still there', async (t) => {
  const server = await NatsServer.start(t);
  const a = device(t, server.url, 'a');
  let connections = 0;
  a.broker.onConnected(() => connections++);
  await a.broker.whenConnected();
  t.equal(connections, 1, 'told of the connection');
  const audio = path.join(t.testdir(), 'in.wav');
  writeFileSync(audio, 'RIFF');
  const job = waitingJob('00000000-0000-4000-8000-000000000004');
  await a.queue.submit(job, audio);
  await server.stop();
  await until(() => a.broker.state === 'unreachable', 5000, 'unreachable');
  await t.rejects(a.queue.submit(waitingJob('00000000-0000-4000-8000-000000000005'), audio), { code: 'ERR_FLEET_UNAVAILABLE' });
  await server.start();
  await until(() => a.broker.state === 'connected', 10_000, 'connected again');
  t.equal(connections, 2, 'told of the reconnection');
  const pulled = await a.queue.pull(['en'], 3000);
  t.equal(pulled?.id, job.id, 'the job survived the restart');
  await pulled!.done();
});

t.test(
  'delete, list and sweep work fleet-wide: one device deletes what another submitted; a running job cannot be deleted; expired jobs are swept once',
  async (t) => {
    const server = await NatsServer.start(t);
    const a = device(t, server.url, 'a');
    const b = device(t, server.url, 'b');
    await Promise.all([a.broker.whenConnected(), b.broker.whenConnected()]);
    const audio = path.join(t.testdir(), 'in.wav');
    writeFileSync(audio, 'RIFF');
    const ids = [6, 7, 8, 9].map((n) => `00000000-0000-4000-8000-00000000000${n}`);
    const jobs = ids.map((id, i) => ({ ...waitingJob(id), created: 1000 + i }));
    const revisions: number[] = [];
    for (const job of jobs) revisions.push(await a.queue.submit(job, audio));
    t.same(
      (await b.queue.newest(3)).map((j) => j.id),
      [ids[3], ids[2], ids[1]],
      'newest first, from any device',
    );

    // A waiting job deleted on b: its state and audio go; its work message, once delivered, finds nothing.
    t.same(await b.queue.delete(ids[0]!), jobs[0]);
    t.equal(await a.queue.get(ids[0]!), undefined);
    t.equal(await a.broker.connected!.audio.get(`${ids[0]}.audio`), null);
    const orphan = await a.queue.pull(['en'], 2000);
    t.equal(orphan?.id, ids[0]);
    t.equal(await orphan!.state(), undefined);
    await orphan!.done();
    await t.rejects(b.queue.delete(ids[0]!), { code: 'ERR_JOB_NOT_FOUND' });

    // Running: refused.
    await a.queue.update({ ...jobs[1]!, status: 'processing', attempts: 1 }, revisions[1]!);
    await t.rejects(b.queue.delete(ids[1]!), { code: 'ERR_JOB_BUSY' });

    // Finished: one expired, one not; two devices sweep at once, and it is removed once.
    const now = Date.now();
    const result: StoredTranscript = {
      text: 'x',
      segments: [],
      language: 'en',
      durationMs: 1,
      windows: 1,
      timings: { melMs: 0, sampleMs: 0, encodeMs: 0, decodeMs: 0, batchdMs: 0, promptMs: 0, totalMs: 1, encodeRuns: 1, decodeRuns: 1, fallbacks: 0 },
    };
    await a.queue.update({ ...jobs[2]!, status: 'completed', expiresAt: now - 1 }, revisions[2]!, result);
    await a.queue.update({ ...jobs[3]!, status: 'failed', expiresAt: now + 60_000, error: { code: 'E', message: 'm' } }, revisions[3]!);
    t.ok(await b.queue.result(ids[2]!));
    const swept = await Promise.all([a.queue.sweep(now), b.queue.sweep(now)]);
    t.equal(swept[0] + swept[1], 1, `swept once (${swept})`);
    t.equal(await a.queue.get(ids[2]!), undefined);
    t.equal(await a.queue.result(ids[2]!), undefined, 'its result too');
    t.equal((await a.queue.get(ids[3]!))?.job.status, 'failed', 'not yet expired: kept');
    t.equal((await a.queue.get(ids[1]!))?.job.status, 'processing', 'running: kept');
  },
);

t.test('list reads the bucket in one pass: an empty bucket, hundreds of jobs, a delete as the last change', async (t) => {
  const server = await NatsServer.start(t);
  const a = device(t, server.url, 'a');
  await a.broker.whenConnected();
  let started = performance.now();
  t.same(await a.queue.newest(10), [], 'an empty bucket: nothing, at once');
  t.ok(performance.now() - started < 2000, 'without waiting for a change');
  const audio = path.join(t.testdir(), 'in.wav');
  writeFileSync(audio, 'RIFF');
  const jobs = Array.from({ length: 300 }, (_, i) => ({ ...waitingJob(`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`), created: 1000 + i }));
  for (let i = 0; i < jobs.length; i += 50) await Promise.all(jobs.slice(i, i + 50).map((job) => a.queue.submit(job, audio)));
  await a.queue.update({ ...jobs[5]!, status: 'processing', attempts: 1 }, (await a.queue.get(jobs[5]!.id))!.revision);
  await a.queue.delete(jobs[299]!.id);
  started = performance.now();
  const listed = await a.queue.newest(1000);
  const ms = performance.now() - started;
  t.comment(`299 job states listed in ${ms.toFixed(0)} ms`);
  t.equal(listed.length, 299, 'every job but the deleted one');
  t.equal(listed[0]!.id, jobs[298]!.id, 'newest first');
  t.equal(listed.find((j) => j.id === jobs[5]!.id)?.status, 'processing', 'each at its last state');
  t.ok(ms < 4000, 'a delete as the last change ends the pass (no wait for the quiet timeout)');
});

t.test('credentials: a broker that wants a token is reached with EARSHOT_FLEET_TOKEN and unreachable without it', async (t) => {
  const server = await NatsServer.start(t, undefined, ['--auth', 'fleet-token-0123456789']);
  const withToken = new FleetBroker({ settings: { url: server.url, token: 'fleet-token-0123456789' }, lanes: ['en'], name: 'a', log, retryMs: 200 });
  const without = new FleetBroker({ settings: { url: server.url }, lanes: ['en'], name: 'b', log, retryMs: 200 });
  t.teardown(() => Promise.all([withToken.stop(), without.stop()]));
  withToken.start();
  without.start();
  await withToken.whenConnected();
  t.equal(withToken.state, 'connected');
  await until(() => without.state === 'unreachable', 5000, 'refused without the token');
  await new Promise((resolve) => setTimeout(resolve, 600));
  t.equal(without.state, 'unreachable', 'and stays so');
});

t.test('upkeep: a device’s own job copied once; leftovers no device will run are failed; objects of no job are removed', async (t) => {
  const server = await NatsServer.start(t);
  const a = device(t, server.url, 'a');
  await a.broker.whenConnected();
  const now = Date.now();
  const long = now - 10 * ackWaitMs;

  // A finished job a device ran alone: copied with its result, once.
  const own: Job = { ...waitingJob('00000000-0000-4000-8000-0000000000c1'), status: 'completed', expiresAt: now + 60_000 };
  const result: StoredTranscript = { text: 'hello', durationMs: 1000, segments: [] } as unknown as StoredTranscript;
  t.equal(await a.queue.copy(own, result), true);
  t.equal(await a.queue.copy({ ...own, updated: now + 1 }, result), false, 'never twice');
  t.same((await a.queue.get(own.id))?.job, own);
  t.same(await a.queue.result(own.id), result);

  // A waiting job whose work message is gone (MaxDeliver spent), and one still queued: only the first is failed.
  const audio = path.join(t.testdir(), 'in.wav');
  writeFileSync(audio, 'RIFF');
  const stranded = { ...waitingJob('00000000-0000-4000-8000-0000000000c2'), updated: long, created: long };
  await a.queue.copy(stranded, undefined);
  const queued = { ...waitingJob('00000000-0000-4000-8000-0000000000c3'), updated: long, created: long };
  await a.queue.submit(queued, audio);
  const recent = waitingJob('00000000-0000-4000-8000-0000000000c4');
  await a.queue.copy(recent, undefined);
  t.same(
    (await a.queue.failLeftovers(now)).map((j) => [j.id, j.status]),
    [[stranded.id, 'failed']],
    'the failed job, to be reported',
  );
  t.match((await a.queue.get(stranded.id))?.job, { status: 'failed', error: { code: 'ERR_INTERRUPTED' } });
  t.equal((await a.queue.get(queued.id))?.job.status, 'waiting', 'a queued job is left to the devices');
  t.equal((await a.queue.get(recent.id))?.job.status, 'waiting', 'a job changed lately is left alone');
  t.same(await a.queue.failLeftovers(now), [], 'once');

  // Objects: those of a job stay; those of no job go once they are two ack waits old.
  await a.broker.connected!.audio.putBlob({ name: 'gone.audio' }, new Uint8Array([1, 2, 3]));
  t.equal(await a.queue.removeOrphans(now), 0, 'too recent: maybe a submit under way');
  t.equal(await a.queue.removeOrphans(Date.now() + 3 * ackWaitMs), 1);
  const gone = await a.broker.connected!.audio.info('gone.audio');
  t.ok(gone === null || gone.deleted, 'removed');
  t.not(await a.broker.connected!.audio.info(`${queued.id}.audio`), null, "a job's audio stays");
  t.not(await a.broker.connected!.audio.info(`${own.id}.result`), null, "a job's result stays");
});

t.test("the service's sweep reports a failed leftover on the events stream (its callbacks hear of it)", async (t) => {
  const server = await NatsServer.start(t);
  const a = device(t, server.url, 'a');
  await a.broker.whenConnected();
  const long = Date.now() - 10 * ackWaitMs;
  const stranded = { ...waitingJob('00000000-0000-4000-8000-0000000000d1'), updated: long, created: long };
  await a.queue.copy(stranded, undefined);
  // What FleetEvents.publish is given (the stream itself: test/fleet/events.test.ts).
  const reported: string[] = [];
  const events = { publish: async (job: Job, change: string) => reported.push(`${job.id} ${job.status} ${change}`) };
  const fleetJobs = new FleetJobs({ broker: a.broker, queue: a.queue, events, log, device: 'a' });
  t.match(await fleetJobs.sweep(), { leftovers: 1 });
  t.same(reported, [`${stranded.id} failed failed`]);
  t.match(await fleetJobs.sweep(), { leftovers: 0 });
  t.equal(reported.length, 1, 'reported once');
});
