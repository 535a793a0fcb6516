// Deliveries once per event across a fleet, on a real nats-server -js, with the real addon,
// real LMDB outboxes and dispatchers, and a real receiver on loopback: each state change a
// device writes becomes one event (stable id <job>:<change>:<attempt>), turned into signed
// deliveries on one device whichever pulls it; a redelivered event adds nothing; an event
// a dead device never published is published by the next handler under the same id; IBM
// callback registrations and Azure web hooks are fleet-wide (challenged once).
import path from 'node:path';
import { statSync } from 'node:fs';

import { jetstreamManager } from '@nats-io/jetstream';
import t, { type Test } from 'tap';

import { ContentUrls } from '../../src/azure/files.js';
import { AzureNotifier, fleetDeliveryId, webhookTarget } from '../../src/azure/notifier.js';
import { azureSignature } from '../../src/azure/signature.js';
import { BatchStore } from '../../src/azure/transcriptions.js';
import { parseCreateV31 } from '../../src/azure/webhook-input.js';
import { WebhookRegistry } from '../../src/azure/webhooks.js';
import { createRetrySchedule } from '../../src/delivery/backoff.js';
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import { sendRequest } from '../../src/delivery/http-client.js';
import { Outbox } from '../../src/delivery/outbox.js';
import { TargetAdapters } from '../../src/delivery/targets.js';
import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { WhisperEngine } from '../../src/engine/whisper-engine.js';
import { FleetBroker } from '../../src/fleet/broker.js';
import { changeOf, eventId, FleetEvents, fleetEvent, parseEventId } from '../../src/fleet/events.js';
import { FleetHooks } from '../../src/fleet/hooks.js';
import { FleetQueue } from '../../src/fleet/queue.js';
import { fleetTranscribe } from '../../src/fleet/transcribe.js';
import { FleetWorker } from '../../src/fleet/worker.js';
import { CallbackRegistry, callbackTarget, IbmNotifier } from '../../src/ibm/callbacks.js';
import { ibmSignature } from '../../src/ibm/signature.js';
import type { Job } from '../../src/jobs/job.js';
import { createLogger } from '../../src/log.js';
import { StateDatabase } from '../../src/store/database.js';
import { testDecoderSandbox } from '../helpers/audio-fixtures.js';
import { jfkMp3, testModelPath } from '../helpers/models.js';
import { NatsServer } from '../helpers/nats-server.js';
import { until } from '../helpers/poll.js';
import { type Receiver, startReceiver } from '../helpers/receiver.js';
import { loopbackPolicy } from '../delivery/harness.js';

const log = createLogger({ level: (process.env.FLEET_LOG as 'debug') ?? 'error' });
const ackWaitMs = 1500;
const secret = 'fleet-secret';

t.test('event ids: <job>:<change>:<attempt>, the same for whoever reports the change', async (t) => {
  const id = '00000000-0000-4000-8000-0000000000e1';
  t.equal(eventId(id, 'completed', 2), `${id}:completed:2`);
  t.same(parseEventId(`${id}:started:1`), { job: id, change: 'started', attempt: 1 });
  t.equal(parseEventId(`${id}:finished:1`), undefined, 'an unknown change');
  t.equal(parseEventId(`${id}:started:01`), undefined, 'one spelling per attempt');
  t.equal(parseEventId(`${id}:started`), undefined);
  t.equal(changeOf({ status: 'waiting' }), undefined, 'waiting is no event');
  t.equal(changeOf({ status: 'processing' }), 'started');
  t.equal(changeOf({ status: 'completed' }), 'completed');
  t.equal(changeOf({ status: 'failed' }), 'failed');
  const job = jfkJob(id);
  // The device that wrote the change and the one that found it unreported name it alike.
  t.equal(
    fleetEvent({ ...job, status: 'completed', attempts: 2 }, 'completed').id,
    fleetEvent({ ...job, status: 'completed', attempts: 2, updated: 1 }, 'completed').id,
  );
  t.not(fleetEvent({ ...job, attempts: 1 }, 'started').id, fleetEvent({ ...job, attempts: 2 }, 'started').id, 'each attempt starts anew');
  // An outbox id (webhook-id): letters, digits, "-", "_" and ":"; with the hook's id (Azure) within 128.
  t.match(fleetDeliveryId(eventId(id, 'completed', 10), id), /^[A-Za-z0-9_:-]{1,128}$/);
});

let engine: WhisperEngine | undefined;
const theEngine = async () => {
  if (!engine) {
    engine = new WhisperEngine(
      { modelPath: testModelPath(), threads: 2, nice: 10, flashAttn: true, windowSeconds: 300, defaults: { temperatureIncrement: 0 } },
      createLogger({ level: 'warn' }),
    );
    await engine.load();
  }
  return engine;
};
t.teardown(() => engine?.close());

function jfkJob(id: string, callback?: Job['callback']): Job {
  const now = Date.now();
  return {
    id,
    created: now,
    updated: now,
    status: 'waiting',
    contentType: 'audio/mpeg',
    format: parseAudioMediaType('audio/mpeg'),
    audioBytes: statSync(jfkMp3).size,
    model: 'en-US_BroadbandModel',
    options: {},
    output: { timestamps: false, wordConfidence: false },
    resultsTtlMs: 60_000,
    attempts: 0,
    warnings: [],
    ...(callback ? { callback, userToken: 'tok' } : {}),
  };
}

/** One device of the fleet: its broker link and queue, its own LMDB with outbox, dispatcher, registries and notifiers, events and hooks. */
async function device(t: Test, url: string, name: string) {
  const broker = new FleetBroker({ settings: { url }, lanes: ['en'], name, log, retryMs: 200, layout: { ackWaitMs } });
  broker.start();
  const queue = new FleetQueue(broker);
  const db = new StateDatabase(path.join(t.testdir(), name));
  db.open();
  const outbox = new Outbox(db);
  const targets = new TargetAdapters();
  const dispatcher = new Dispatcher({ outbox, targets, policy: loopbackPolicy, log, schedule: createRetrySchedule({ retryDelaysMs: [200, 500] }) });
  const request = (method: string, url: string, headers: Record<string, string>, timeoutMs: number, body?: string) =>
    sendRequest({ method, url, headers, timeoutMs, policy: loopbackPolicy, ...(body !== undefined ? { body } : {}) });
  const callbacks = new CallbackRegistry(db, (url, headers, timeoutMs) => request('GET', url, headers, timeoutMs), 'sha1');
  const webhooks = new WebhookRegistry({
    db,
    outbox,
    log,
    challenge: (url, headers, body, timeoutMs) => request('POST', url, headers, timeoutMs, body),
    checkTarget: async () => {},
  });
  targets.add(callbackTarget(callbacks, 'sha1'));
  targets.add(webhookTarget(webhooks));
  const contentUrls = new ContentUrls();
  contentUrls.setKey(Buffer.from('key'));
  const notifiers = [
    new IbmNotifier(callbacks, outbox),
    new AzureNotifier({ registry: webhooks, outbox, contentUrls, batches: new BatchStore(db), findJob: () => undefined, result: () => undefined }),
  ];
  const events = new FleetEvents({
    broker,
    db,
    notifiers: () => notifiers,
    result: (id) => queue.result(id),
    onNotified: () => dispatcher.notify(),
    log,
    layout: { ackWaitMs },
    pullMs: 1000,
  });
  const hooks = new FleetHooks({ broker, db, log });
  callbacks.onChange = (key) => hooks.changed('ibm-callbacks', key);
  webhooks.onChange = (id) => hooks.changed('azure-webhooks', id);
  let worker: FleetWorker | undefined;
  t.teardown(async () => {
    await worker?.stop();
    await events.stop();
    await hooks.stop();
    await webhooks.challenged();
    await dispatcher.stop(100);
    await broker.stop();
    await db.close();
  });
  dispatcher.start();
  hooks.start();
  await broker.whenConnected();
  return {
    broker,
    queue,
    db,
    outbox,
    callbacks,
    webhooks,
    events,
    hooks,
    /** Runs a FleetWorker here, reporting its changes to `events`. */
    async work() {
      worker = new FleetWorker({
        broker,
        queue,
        lanes: ['en'],
        transcribe: fleetTranscribe({ engine: await theEngine(), maxAudioSeconds: 3600, sandbox: testDecoderSandbox }),
        workDir: path.join(t.testdir(), `${name}-work`),
        log,
        pullMs: 1000,
        events,
      });
      worker.start();
      return worker;
    },
  };
}

const settle = (ms = ackWaitMs * 2) => new Promise((resolve) => setTimeout(resolve, ms));

/** The receiver's IBM callbacks (POSTs to /ibm) and Azure deliveries (POSTs to /azure), challenges left out. */
const ibmCallbacks = (r: Receiver) => r.events().filter((e) => e.url.pathname.endsWith('/ibm'));
const azureDeliveries = (r: Receiver) => r.events().filter((e) => e.url.pathname.endsWith('/azure'));

t.test('registrations are fleet-wide: a callback registered on A is seen on B; a web hook created on A is challenged once and seen on B', async (t) => {
  const server = await NatsServer.start(t);
  const receiver = await startReceiver(t);
  const a = await device(t, server.url, 'a');
  const b = await device(t, server.url, 'b');
  await until(() => a.hooks.synced && b.hooks.synced, 5000, 'both copied the bucket');

  const { url } = await a.callbacks.register(`${receiver.url}/ibm`, secret);
  await until(() => b.callbacks.get(url) !== undefined, 5000, 'the registration on b');
  t.equal(b.callbacks.get(url)?.secret, secret, 'with its secret');
  t.equal((await b.callbacks.register(url, secret)).created, false, 'b knows it: no second registration');
  t.equal(receiver.challenges().length, 1, 'one challenge, by a');

  const hook = await a.webhooks.create(
    parseCreateV31({ displayName: 'fleet', webUrl: `${receiver.url}/azure`, events: { transcriptionCompletion: true }, properties: { secret } }),
    'http://a.local',
  );
  await until(() => b.webhooks.get(hook.id)?.status === 'Succeeded', 10_000, 'the challenged hook on b');
  t.equal(receiver.challenges().length, 2, 'the hook challenged once, by a, not by b');
  await b.webhooks.update(hook.id, { displayName: 'renamed' }, 'http://b.local');
  await until(() => a.webhooks.get(hook.id)?.displayName === 'renamed', 5000, 'the PATCH on b seen on a');
  t.equal(receiver.challenges().length, 2, 'a PATCH of a Succeeded hook that keeps its URL: no challenge');

  t.ok(await b.callbacks.unregister(url));
  await until(() => a.callbacks.get(url) === undefined, 5000, 'unregistered on a too');
  t.ok(await a.webhooks.delete(hook.id));
  await until(() => b.webhooks.get(hook.id) === undefined, 5000, 'deleted on b too');

  // A device that joins later copies the whole bucket.
  const own = await startReceiver(t);
  await a.callbacks.register(`${own.url}/ibm`, undefined);
  const c = await device(t, server.url, 'c');
  await until(() => c.callbacks.get(`${own.url}/ibm`) !== undefined, 5000, 'a joining device copies the bucket');
});

t.test('a registration made while the broker is away reaches the other devices once it is back; one removed elsewhere meanwhile goes', async (t) => {
  const server = await NatsServer.start(t);
  const receiver = await startReceiver(t);
  const a = await device(t, server.url, 'a');
  const b = await device(t, server.url, 'b');
  await until(() => a.hooks.synced && b.hooks.synced, 5000, 'both copied the bucket');
  const { url: kept } = await b.callbacks.register(`${receiver.url}/ibm?kept`, undefined);
  await until(() => a.callbacks.get(kept) !== undefined, 5000, 'replicated to a');

  await server.stop();
  await until(() => a.broker.state === 'unreachable' && b.broker.state === 'unreachable', 10_000, 'both alone');
  const { url } = await a.callbacks.register(`${receiver.url}/ibm?offline`, secret);
  t.equal(b.callbacks.get(url), undefined, 'not on b while the broker is away');
  t.ok(await b.callbacks.unregister(kept), 'unregistered on b meanwhile');
  await server.start();
  await until(() => b.callbacks.get(url)?.secret === secret, 15_000, 'the registration on b once the broker is back');
  await until(() => a.callbacks.get(kept) === undefined, 15_000, "b's unregistration on a");
});

t.test('jobs completed on device B: one signed IBM callback and one Azure web hook delivery per event, whichever device pulls the event', async (t) => {
  const server = await NatsServer.start(t);
  const receiver = await startReceiver(t);
  const a = await device(t, server.url, 'a');
  const b = await device(t, server.url, 'b');
  await until(() => a.hooks.synced && b.hooks.synced, 5000, 'both copied the bucket');
  // Registered on A; the jobs run on B only.
  const { url } = await a.callbacks.register(`${receiver.url}/ibm`, secret);
  const hook = await a.webhooks.create(
    parseCreateV31({
      displayName: 'fleet',
      webUrl: `${receiver.url}/azure`,
      events: { transcriptionProcessing: true, transcriptionCompletion: true },
      properties: { secret },
    }),
    'http://a.local',
  );
  await until(() => b.webhooks.get(hook.id)?.status === 'Succeeded' && b.callbacks.get(url) !== undefined, 10_000, 'the registrations on b');

  const ids = [1, 2, 3].map((n) => `00000000-0000-4000-8000-0000000000b${n}`);
  for (const id of ids) await a.queue.submit(jfkJob(id, { url, events: ['recognitions.started', 'recognitions.completed_with_results'] }), jfkMp3);
  a.events.start();
  b.events.start();
  await b.work();

  await receiver.until((e) => e.length >= 12, '12 deliveries (3 jobs × 2 events × 2 dialects)', 60_000);
  await settle();
  const ibm = ibmCallbacks(receiver);
  const azure = azureDeliveries(receiver);
  t.equal(ibm.length, 6, 'one IBM callback per event');
  t.equal(azure.length, 6, 'one Azure delivery per event');
  t.equal(a.events.handled + b.events.handled, 6, `six events turned into deliveries once (a ${a.events.handled}, b ${b.events.handled})`);
  t.equal(a.outbox.counts().delivered + b.outbox.counts().delivered, 12, 'twelve deliveries in the two outboxes');
  for (const id of ids) {
    const done = (await a.queue.get(id))!.job;
    t.equal(done.status, 'completed');
    for (const [change, ibmEvent, azureEvent] of [
      ['started', 'recognitions.started', 'TranscriptionProcessing'],
      ['completed', 'recognitions.completed_with_results', 'TranscriptionCompletion'],
    ] as const) {
      const stable = eventId(id, change, 1);
      const callbacks = ibm.filter((e) => e.headers['webhook-id'] === stable);
      t.equal(callbacks.length, 1, `one callback with webhook-id ${stable}`);
      const cb = callbacks[0]!;
      const body = JSON.parse(cb.body) as { id: string; event: string; results?: unknown[] };
      t.equal(body.id, id);
      t.equal(body.event, ibmEvent);
      t.equal(cb.headers['x-callback-signature'], ibmSignature(secret, cb.body, 'sha1'), 'signed with the secret registered on A');
      if (change === 'completed') {
        t.ok(body.results?.length, 'with the results from the fleet bucket');
        t.comment(`${id}: completed in the bucket to its callback at the receiver: ${cb.at - done.updated} ms`);
      }
      const invocation = fleetDeliveryId(stable, hook.id);
      const deliveries = azure.filter((e) => e.headers['webhook-id'] === invocation);
      t.equal(deliveries.length, 1, `one web hook delivery ${invocation}`);
      const d = deliveries[0]!;
      t.equal(d.headers['x-microsoftspeechservices-event'], azureEvent);
      t.equal((JSON.parse(d.body) as { invocationId: string }).invocationId, invocation);
      t.equal(d.headers['x-microsoftspeechservices-signature'], azureSignature(secret, d.body));
    }
  }
  const jsm = await jetstreamManager(a.broker.connected!.nc);
  await until(async () => (await jsm.streams.info('EARSHOT_EVENTS')).state.messages === 0, 5000, 'every event acknowledged');
});

t.test('an event redelivered after its deliveries were committed (the ack never came) adds nothing', async (t) => {
  const server = await NatsServer.start(t);
  const receiver = await startReceiver(t);
  const a = await device(t, server.url, 'a');
  const { url } = await a.callbacks.register(`${receiver.url}/ibm`, secret);
  const id = '00000000-0000-4000-8000-0000000000c1';
  const job: Job = { ...jfkJob(id, { url, events: ['recognitions.completed'] }), status: 'completed', attempts: 1 };
  // Published twice (a retry after a lost broker acknowledgement): stored once.
  t.equal(await a.events.publish(job, 'completed'), eventId(id, 'completed', 1));
  await a.events.publish(job, 'completed');
  const jsm = await jetstreamManager(a.broker.connected!.nc);
  t.equal((await jsm.streams.info('EARSHOT_EVENTS')).state.messages, 1, 'one event in the stream');

  // The device pulls it and commits its deliveries, then "dies" before the ack.
  const pulled = await a.events.pull(2000);
  t.equal(pulled?.event.id, eventId(id, 'completed', 1));
  t.equal(await a.events.record(pulled!.event), true);
  t.equal(a.outbox.counts().pending + a.outbox.counts().delivered, 1);

  // Back: the event comes again after the ack wait, finds its id recorded, and is acknowledged.
  a.events.start();
  await until(async () => (await jsm.streams.info('EARSHOT_EVENTS')).state.messages === 0, 10_000, 'the redelivered event acknowledged');
  await receiver.until((e) => e.length >= 1, 'the callback');
  await settle(500);
  t.equal(ibmCallbacks(receiver).length, 1, 'one callback');
  t.equal(ibmCallbacks(receiver)[0]!.headers['webhook-id'], eventId(id, 'completed', 1));
  t.equal(a.events.handled, 1, 'the redelivery added nothing');
  const counts = a.outbox.counts();
  t.equal(counts.pending + counts.delivered + counts.dead, 1, 'one delivery in the outbox');
});

t.test('a device that died after writing a job completed but before publishing: the next handler publishes the event, same id', async (t) => {
  const server = await NatsServer.start(t);
  const receiver = await startReceiver(t);
  const a = await device(t, server.url, 'a');
  const dead = await device(t, server.url, 'dead');
  const { url } = await a.callbacks.register(`${receiver.url}/ibm`, secret);
  const id = '00000000-0000-4000-8000-0000000000d1';
  const job = jfkJob(id, { url, events: ['recognitions.started', 'recognitions.completed'] });
  const created = await a.queue.submit(job, jfkMp3);
  // What the dead device did: took the job, started and completed it in the bucket, published nothing, acked nothing.
  const delivery = await dead.queue.pull(['en'], 2000);
  t.equal(delivery?.id, id);
  const started = await dead.queue.update({ ...job, status: 'processing', attempts: 1 }, created);
  const completed: Job = { ...job, status: 'completed', attempts: 1, updated: Date.now(), expiresAt: Date.now() + 60_000 };
  t.ok(await dead.queue.update(completed, started!));

  a.events.start();
  await a.work();
  await receiver.until((e) => e.length >= 1, 'the completed callback', 20_000);
  await settle();
  const callbacks = ibmCallbacks(receiver);
  t.equal(callbacks.length, 1, 'the completion reported once (its start was never published: the dead device took it)');
  t.equal(callbacks[0]!.headers['webhook-id'], eventId(id, 'completed', 1), 'under the id the dead device would have used');
  t.equal((JSON.parse(callbacks[0]!.body) as { event: string }).event, 'recognitions.completed');
  t.equal((await a.queue.get(id))?.job.attempts, 1, 'not run again');
  await until(async () => (await a.broker.connected!.audio.info(`${id}.audio`))?.deleted ?? true, 5000, 'the audio the dead device left removed');
  // The dead device comes back and publishes after all: the broker stores it once, and a's record adds nothing.
  await dead.events.publish(completed, 'completed');
  await settle();
  t.equal(ibmCallbacks(receiver).length, 1, 'still one');
});
