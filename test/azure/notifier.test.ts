// Job state changes as Azure web hook deliveries in the outbox (events, who gets them,
// bodies per API version, invocationId), ping and :test, and the target adapter that
// makes deliveries follow their hook.
import t from 'tap';

import { ContentUrls, fileId } from '../../src/azure/files.js';
import { AzureNotifier, webhookTarget } from '../../src/azure/notifier.js';
import { BatchStore, jobEntity } from '../../src/azure/transcriptions.js';
import { azureSignature } from '../../src/azure/signature.js';
import { parseCreateV21, parseCreateV31 } from '../../src/azure/webhook-input.js';
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import type { SendRequestOptions } from '../../src/delivery/http-client.js';
import { standardWebhookSignature } from '../../src/delivery/signing.js';
import { TargetAdapters } from '../../src/delivery/targets.js';
import { until } from '../helpers/poll.js';
import { createRetrySchedule } from '../../src/delivery/backoff.js';
import { loopbackPolicy, memoryLogger } from '../delivery/harness.js';
import { startReceiver } from '../helpers/receiver.js';
import { job, registrySetup, transcript } from '../helpers/azure-fixtures.js';

const base = 'http://pi.local:8080';

async function setup(t: Parameters<typeof registrySetup>[0]) {
  const s = registrySetup(t);
  const contentUrls = new ContentUrls();
  contentUrls.setKey(Buffer.from('key'));
  const batches = new BatchStore(s.db);
  const notifier = new AzureNotifier({ registry: s.registry, outbox: s.outbox, contentUrls, batches, findJob: () => undefined, result: () => transcript });
  /** A v3.1 hook, once its challenge passed. */
  const v31 = async (events: Record<string, boolean>, secret?: string) => {
    const hook = await s.registry.create(
      parseCreateV31({ displayName: 'h', webUrl: 'http://10.0.0.5/v31', events, ...(secret ? { properties: { secret } } : {}) }),
      base,
    );
    await s.registry.challenged();
    return s.registry.require(hook.id);
  };
  const v21 = (events: string[], active = true) =>
    s.registry.create(parseCreateV21({ name: 'v2', configuration: { url: 'http://10.0.0.5/v21', secret: 'v2s' }, events, active }), base);
  /** Runs notify like the job service: inside a transaction. */
  const notify = (...args: Parameters<AzureNotifier['notify']>) => s.db.durably(() => notifier.notify(...args));
  return Object.assign(s, { notifier, v31, v21, notify, contentUrls });
}

t.test('state changes become the subscribed events, for enabled hooks only', async (t) => {
  const s = await setup(t);
  const all = await s.v31({ transcriptionCreation: true, transcriptionProcessing: true, transcriptionCompletion: true, transcriptionDeletion: true }, 'sec');
  const completion = await s.v31({ transcriptionCompletion: true });
  s.answer = () => ({ status: 500, body: '' });
  const failed = await s.v31({ transcriptionCompletion: true });
  t.equal(failed.status, 'Failed');
  const inactive = await s.v21(['TranscriptionCompletion'], false);

  await s.notify(job(), 'created', undefined);
  await s.notify(job({ status: 'processing' }), 'started', undefined);
  await s.notify(job({ status: 'completed', audioDurationMs: 2000 }), 'completed', undefined);
  await s.notify(job({ id: 'job-2', status: 'failed', error: { code: 'ERR_AUDIO_CORRUPT', message: 'bad' } }), 'failed', undefined);
  await s.notify(job({ status: 'completed' }), 'deleted', undefined);

  const pending = [...s.outbox.pending()].sort((a, b) => a.seq - b.seq);
  const by = (id: string) => pending.filter((r) => r.target.key === id).map((r) => r.event);
  t.same(by(all.id), ['TranscriptionCreation', 'TranscriptionProcessing', 'TranscriptionCompletion', 'TranscriptionCompletion', 'TranscriptionDeletion']);
  t.same(by(completion.id), ['TranscriptionCompletion', 'TranscriptionCompletion']);
  t.same(by(failed.id), [], 'a Failed hook gets nothing');
  t.same(by(inactive.id), [], 'an inactive hook gets nothing');

  for (const r of pending) {
    const body = JSON.parse(r.body) as Record<string, unknown>;
    t.equal(body.invocationId, r.id, 'invocationId is the delivery id');
    t.equal(r.headers['X-MicrosoftSpeechServices-Event'], r.event);
    t.equal(r.target.url, 'http://10.0.0.5/v31');
    t.equal(r.target.kind, 'azure-webhook');
    t.notMatch(JSON.stringify(r), /"sec"/, 'no secret in the outbox');
  }
  const first = pending[0]!;
  t.match(JSON.parse(first.body), {
    id: 'job-1',
    self: `${base}/speechtotext/v3.1/transcriptions/job-1`,
    status: 'NotStarted',
    links: { files: `${base}/speechtotext/v3.1/transcriptions/job-1/files` },
  });
  const failedBody = JSON.parse(pending.find((r) => r.body.includes('job-2'))!.body);
  t.match(failedBody, { status: 'Failed', properties: { error: { code: 'InvalidData', message: 'bad' } } });
});

t.test('v2.1 hooks get the v2.1 entity and only their events', async (t) => {
  const s = await setup(t);
  const hook = await s.v21(['TranscriptionCompletion']);
  await s.notify(job(), 'created', undefined);
  await s.notify(job({ status: 'completed', audioDurationMs: 2000, expiresAt: Date.now() + 60_000 }), 'completed', undefined);
  const [only, ...rest] = [...s.outbox.pending()];
  t.same(rest, []);
  t.equal(only!.event, 'TranscriptionCompletion');
  const body = JSON.parse(only!.body);
  t.match(body, { id: 'job-1', status: 'Succeeded', statusMessage: 'None.', properties: { Duration: '00:00:02' }, invocationId: only!.id });
  const url = new URL(body.results[0].resultUrls[0].resultUrl);
  t.equal(url.pathname, `/speechtotext/v3.1/transcriptions/job-1/files/${fileId('job-1', 'Transcription')}/content`);
  t.doesNotThrow(() => s.contentUrls.verify('job-1', fileId('job-1', 'Transcription'), url.searchParams), 'a working signed link');
  const v2 = new URL(body.resultsUrls.channel_0);
  t.doesNotThrow(() => s.contentUrls.verify('job-1', v2.pathname.split('/')[6]!, v2.searchParams), "resultsUrls.channel_0: v2's result, signed too");
  t.not(v2.pathname, url.pathname);
  t.notMatch(JSON.stringify(only), /v2s/, 'no secret in the outbox');
  t.equal(hook.apiVersion, 'v2.1');
});

t.test('ping: the hook entity as event ping; test: the newest matching job, or nothing', async (t) => {
  const s = await setup(t);
  const hook = await s.v31({ transcriptionProcessing: true }, 'p');
  const ping = await s.notifier.ping(hook.id);
  t.equal(ping.event, 'Ping');
  t.equal(ping.headers['X-MicrosoftSpeechServices-Event'], 'Ping');
  t.match(JSON.parse(ping.body), { self: `${base}/speechtotext/v3.1/webhooks/${hook.id}`, properties: { apiVersion: 'v3.1' }, invocationId: ping.id });
  t.notMatch(ping.body, /"secret"/);

  t.same(await s.notifier.test(hook.id, []), []);
  t.same(await s.notifier.test(hook.id, [job({ id: 'new' })].map(jobEntity)), [], 'a waiting job never fired Processing');
  const [sent, ...more] = await s.notifier.test(
    hook.id,
    [job({ id: 'new' }), job({ id: 'done', status: 'completed' }), job({ id: 'old', status: 'completed' })].map(jobEntity),
  );
  t.same(more, []);
  t.equal(sent!.event, 'TranscriptionProcessing');
  t.match(JSON.parse(sent!.body), { id: 'done', status: 'Succeeded' });

  // One request per subscribed event, each with the newest job that fired it.
  const every = await s.v31({ transcriptionCreation: true, transcriptionProcessing: true, transcriptionCompletion: true, transcriptionDeletion: true });
  const jobs = [
    job({ id: 'waiting' }),
    job({ id: 'running', status: 'processing' }),
    job({ id: 'done', status: 'completed' }),
    job({ id: 'old', status: 'completed' }),
  ];
  const all = await s.notifier.test(every.id, jobs.map(jobEntity));
  t.same(
    all.map((d) => [d.event, JSON.parse(d.body).id, d.headers['X-MicrosoftSpeechServices-Event']]),
    [
      ['TranscriptionCreation', 'waiting', 'TranscriptionCreation'],
      ['TranscriptionProcessing', 'running', 'TranscriptionProcessing'],
      ['TranscriptionCompletion', 'done', 'TranscriptionCompletion'],
    ],
    'no Deletion: a deleted job is gone',
  );
  t.equal(new Set(all.map((d) => d.id)).size, 3, 'each its own delivery');

  const v21 = await s.v21(['TranscriptionCompletion']);
  const v21Ping = await s.notifier.ping(v21.id);
  t.match(JSON.parse(v21Ping.body), { id: v21.id, configuration: { url: 'http://10.0.0.5/v21' }, invocationId: v21Ping.id });

  await s.registry.disable(hook.id, { code: 'DeliveryFailed', message: 'x' });
  await t.rejects(s.notifier.ping(hook.id), { status: 400, innerCode: 'InvalidPrerequisite', message: /disabled/ });
  await t.rejects(s.notifier.test(hook.id, [jobEntity(job({ status: 'completed' }))]), { name: 'AppError', innerCode: 'InvalidPrerequisite' });
  await t.rejects(s.notifier.ping('missing'), { code: 'ERR_NOT_FOUND' });
});

t.test('webhookTarget: disabled hooks refused, current URL and secret used', async (t) => {
  const s = await setup(t);
  const hook = await s.v31({ transcriptionCreation: true }, 'old-secret');
  const sent: SendRequestOptions[] = [];
  const targets = new TargetAdapters();
  targets.add(webhookTarget(s.registry));
  /** One dispatcher run, as the service's: the adapter before a capturing send, until `done`. */
  const dispatch = async (done: () => boolean) => {
    const dispatcher = new Dispatcher({
      outbox: s.outbox,
      policy: undefined as never,
      log: memoryLogger().log,
      targets,
      send: async (o) => {
        sent.push(o);
        return { status: 200, headers: {}, body: '', truncated: false };
      },
    });
    dispatcher.start();
    await until(done);
    await dispatcher.stop(0);
  };
  const queued = async (id: string) => {
    await s.notify(job({ id }), 'created', undefined);
    return s.outbox.listPending().find((r) => r.body.includes(id))!;
  };

  const record = await queued('job-a');
  await s.registry.update(hook.id, { webUrl: 'http://10.0.0.9/moved', secret: 'new-secret' }, base);
  await s.registry.challenged();
  await dispatch(() => sent.length === 1);
  t.equal(sent[0]!.url, 'http://10.0.0.9/moved', "the hook's current URL");
  t.equal(sent[0]!.headers['X-MicrosoftSpeechServices-Signature'], azureSignature('new-secret', record.body));
  t.equal(sent[0]!.headers['webhook-signature'], standardWebhookSignature('new-secret', record.id, Number(sent[0]!.headers['webhook-timestamp']), record.body));

  await s.registry.update(hook.id, { secret: null }, base);
  await queued('job-b');
  await dispatch(() => sent.length === 2);
  t.notOk('X-MicrosoftSpeechServices-Signature' in sent[1]!.headers, 'secret removed: unsigned');
  t.notOk('webhook-signature' in sent[1]!.headers);

  const refused = await queued('job-c');
  await s.registry.disable(hook.id, { code: 'DeliveryFailed', message: 'receiver broken' });
  t.throws(() => targets.plan(refused), { code: 'ERR_TARGET_FORBIDDEN', message: /not sent: web hook .* is disabled \(status Failed: receiver broken\)/ });
  await dispatch(() => s.outbox.get(refused.id)?.state === 'dead');
  t.equal(sent.length, 2, 'no request for a disabled hook');
  t.match(s.outbox.get(refused.id), { state: 'dead', lastError: /not sent: web hook .* is disabled/ }, 'dead-lettered at once');
  t.equal(s.registry.get(hook.id)!.error!.message, 'receiver broken', 'a refused delivery does not change why the hook was disabled');
});

t.test('a real receiver that fails: dead letters leave the hook enabled, events stay independent, 72 h of failures disable it', async (t) => {
  const s = await setup(t);
  const hour = 3_600_000;
  const receiver = await startReceiver(t, (hit) => ({ status: hit.body.includes('"job-ok"') ? 200 : 500 }));
  const hook = await s.registry.create(
    parseCreateV31({ displayName: 'h', webUrl: receiver.url, events: { transcriptionCreation: true, transcriptionCompletion: true } }),
    base,
  );
  await s.registry.challenged();
  const targets = new TargetAdapters();
  targets.add(webhookTarget(s.registry));
  const dispatcher = new Dispatcher({
    outbox: s.outbox,
    policy: loopbackPolicy,
    log: memoryLogger().log,
    targets,
    // Retries well after the hook's outcome is recorded (fire and forget, one commit):
    // with 10 ms a loaded machine let the retry of job-bad-3 out before the disable landed.
    schedule: createRetrySchedule({ retryDelaysMs: [250, 250] }),
  });
  dispatcher.start();
  t.teardown(() => dispatcher.stop(0));
  const settled = (id: string) => until(() => ['dead', 'delivered'].includes(s.outbox.get(id)?.state ?? ''), 5000, `delivery ${id} settled`);
  const queue = async (jobId: string, change: 'created' | 'completed') => {
    await s.notify(job({ id: jobId, ...(change === 'completed' ? { status: 'completed' } : {}) }), change, undefined);
    dispatcher.notify();
    return s.outbox
      .listPending()
      .find((r) => r.body.includes(`"${jobId}"`) && r.event === (change === 'created' ? 'TranscriptionCreation' : 'TranscriptionCompletion'))!;
  };

  const failing = await queue('job-bad', 'created');
  await settled(failing.id);
  t.match(s.outbox.get(failing.id), { state: 'dead', attempts: 3, lastStatus: 500 });
  const firstFailure = s.clock;
  t.match(s.registry.get(hook.id), { status: 'Succeeded', failingSince: firstFailure }, 'a dead letter does not disable the hook');

  // Another event of the same hook has its own schedule: it goes through, and ends the run of failures.
  const ok = await queue('job-ok', 'completed');
  await settled(ok.id);
  t.match(s.outbox.get(ok.id), { state: 'delivered', attempts: 1 });
  await until(() => s.registry.get(hook.id)!.failingSince === undefined, 2000, 'the run of failures ended');

  s.clock += hour;
  const again = await queue('job-bad-2', 'created');
  await settled(again.id);
  t.match(s.registry.get(hook.id), { status: 'Succeeded', failingSince: s.clock });
  s.clock += 72 * hour;
  const later = await queue('job-bad-3', 'created');
  await settled(later.id);
  await until(() => s.registry.get(hook.id)!.status === 'Failed', 2000, 'the hook to fail');
  t.match(s.registry.get(hook.id)!.error, { code: 'DeliveryFailed', message: /^Every delivery to the web hook has failed since .*\(72 h or more/ });
  const requests = receiver.events().length;
  t.equal(requests, 3 + 1 + 3 + 1, 'the hook failed on the first attempt after 72 h of failures');
  t.match(s.outbox.get(later.id), { state: 'dead', lastError: /^not sent: web hook .* is disabled/ }, 'its retry was refused without a request');
  t.same(
    s.outbox.listPending().filter((r) => r.target.key === hook.id),
    [],
  );
});
