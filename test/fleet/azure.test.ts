// Azure batch transcriptions fleet-wide (docs/fleet.md, "Azure batch transcriptions"),
// against a real nats-server -js and two real services: a batch created on A with content
// URLs on a loopback content host runs through the fleet's queue (the device that takes a
// job downloads its URL), and GET, list, files and their content work on B; its web hook
// events arrive once each; DELETE on B removes it everywhere.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import t, { type Test } from 'tap';

import { apiKey, type RunningApp, startApp } from '../helpers/app.js';
import { repeatFile } from '../helpers/audio-fixtures.js';
import { startContentHost } from '../helpers/content-host.js';
import { jfkMp3 } from '../helpers/models.js';
import { NatsServer } from '../helpers/nats-server.js';
import { wav } from '../helpers/pcm.js';
import { until } from '../helpers/poll.js';
import { startReceiver } from '../helpers/receiver.js';

const key = { 'Ocp-Apim-Subscription-Key': apiKey };

function client(app: RunningApp) {
  return async (method: string, url: string, body?: unknown) => {
    const res = await fetch(url.startsWith('http') ? url : `${app.base}${url}`, {
      method,
      headers: { ...key, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as any) : undefined };
  };
}

/** A loopback content host serving /one.wav (1 s) and /two.wav (2 s); anything else is a 404. */
function wavHost(t: Test) {
  const files: Record<string, Buffer> = { '/one.wav': wav(1), '/two.wav': wav(2) };
  return startContentHost(t, (req, res) => {
    const body = files[req.url!];
    if (!body) return res.writeHead(404).end('not here');
    res.writeHead(200, { 'Content-Type': 'audio/wav', 'Content-Length': body.length }).end(body);
  });
}

const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);

t.test('a batch created on A runs through the fleet; B reads it, its files and results, and deletes it everywhere', async (t) => {
  const host = await wavHost(t);
  const server = await NatsServer.start(t);
  const dir = t.testdir();
  const a = await startApp(t, { EARSHOT_FLEET_URL: server.url }, path.join(dir, 'a'));
  const b = await startApp(t, { EARSHOT_FLEET_URL: server.url }, path.join(dir, 'b'));
  const onA = client(a);
  const onB = client(b);
  for (const app of [a, b]) {
    await until(async () => ((await (await fetch(`${app.base}/readyz`)).json()) as { fleet?: string }).fleet === 'connected', 10_000, 'connected');
  }

  // A web hook created on A (fleet-wide, as registrations are), for every event.
  const receiver = await startReceiver(t, () => ({ status: 200 }), { path: '/hook' });
  const hook = await onA('POST', '/speechtotext/v3.1/webhooks', {
    displayName: 'fleet',
    webUrl: receiver.url,
    events: { transcriptionCreation: true, transcriptionProcessing: true, transcriptionCompletion: true, transcriptionDeletion: true },
  });
  t.equal(hook.status, 201);
  await until(async () => (await onB('GET', hook.json.self.replace(a.base, b.base))).json?.status === 'Succeeded', 15_000, 'the hook on b');

  const asked = performance.now();
  const created = await onA('POST', '/speechtotext/v3.1/transcriptions', {
    displayName: 'fleet batch',
    locale: 'en-US',
    contentUrls: [`${host.base}/one.wav`, `${host.base}/two.wav`, `${host.base}/missing.wav`],
    properties: { wordLevelTimestampsEnabled: true },
  });
  t.equal(created.status, 201, JSON.stringify(created.json));
  t.comment(`create of a 3-URL batch through the fleet: ${Math.round(performance.now() - asked)} ms to its 201`);
  const id = created.json.self.split('/').pop() as string;
  t.same(a.app.jobs.newest(10), [], 'no job of it on A: its jobs are in the fleet');

  // B answers for it at once (its record and jobs are fleet-wide), and follows it to the end.
  const first = await onB('GET', `/speechtotext/v3.1/transcriptions/${id}`);
  t.equal(first.status, 200, JSON.stringify(first.json));
  t.match(first.json, { self: `${b.base}/speechtotext/v3.1/transcriptions/${id}`, displayName: 'fleet batch', locale: 'en-US' });
  let entity = first.json;
  await until(
    async () => {
      entity = (await onB('GET', `/speechtotext/v3.1/transcriptions/${id}`)).json;
      return entity.status === 'Succeeded' || entity.status === 'Failed';
    },
    60_000,
    'the batch to finish',
  );
  t.equal(entity.status, 'Succeeded', 'two of three recordings transcribed');
  t.comment(`created on A to Succeeded on B: ${Math.round(performance.now() - asked)} ms`);
  t.same(a.app.jobs.newest(10), [], 'still none on A');
  t.same(b.app.jobs.newest(10), [], 'nor on B');
  const started = [a, b].map(async (app) => gauge(await (await fetch(`${app.base}/metrics`)).text(), 'earshot_fleet_jobs_started_total'));
  t.equal(
    (await Promise.all(started)).reduce((x, y) => x + y, 0),
    2,
    'the two recordings downloaded were transcribed from the fleet queue (the 404 failed at its download)',
  );
  t.same(host.requests.sort(), ['/missing.wav', '/one.wav', '/two.wav'], 'each URL downloaded once, by the device that ran it');

  // Files and their content on B: results from the fleet's bucket.
  const list = await onB('GET', `/speechtotext/v3.1/transcriptions/${id}/files`);
  t.equal(list.status, 200);
  const kinds = list.json.values.map((f: { kind: string }) => f.kind).sort();
  t.same(kinds, ['Transcription', 'Transcription', 'TranscriptionReport']);
  const results = list.json.values.filter((f: { kind: string }) => f.kind === 'Transcription');
  for (const file of results) {
    t.ok(file.links.contentUrl.startsWith(b.base), "B's own content URL");
    const content = (await (await fetch(file.links.contentUrl)).json()) as { source: string; duration?: string; durationInTicks?: number };
    t.ok([`${host.base}/one.wav`, `${host.base}/two.wav`].includes(content.source), `the result of ${content.source}`);
  }
  const report = list.json.values.find((f: { kind: string }) => f.kind === 'TranscriptionReport');
  const reportContent = (await (await fetch(report.links.contentUrl)).json()) as { successfulTranscriptionsCount: number; failedTranscriptionsCount: number };
  t.match(reportContent, { successfulTranscriptionsCount: 2, failedTranscriptionsCount: 1 }, 'the 404 failed its file only');

  // Listed on both devices.
  for (const call of [onA, onB]) {
    const values = (await call('GET', '/speechtotext/v3.1/transcriptions')).json.values as Array<{ self: string }>;
    t.ok(
      values.some((v) => v.self.endsWith(`/transcriptions/${id}`)),
      'listed',
    );
  }

  // Events once each, whichever device handled which job's events.
  const eventsOf = (kind: string) => receiver.events().filter((h) => h.headers['x-microsoftspeechservices-event'] === kind);
  await receiver.until((hits) => hits.some((h) => h.headers['x-microsoftspeechservices-event'] === 'TranscriptionCompletion'), 'the completion', 20_000);
  const ids = (kind: string) => new Set(eventsOf(kind).map((h) => JSON.parse(h.body).invocationId));
  for (const kind of ['TranscriptionCreation', 'TranscriptionProcessing', 'TranscriptionCompletion']) t.equal(ids(kind).size, 1, `one ${kind}`);
  const completion = JSON.parse(eventsOf('TranscriptionCompletion')[0]!.body);
  t.match(completion, { status: 'Succeeded', displayName: 'fleet batch' });
  t.ok(completion.self.endsWith(`/transcriptions/${id}`), 'about the batch, not one of its jobs');

  // DELETE on B: gone everywhere.
  t.equal((await onB('DELETE', `/speechtotext/v3.1/transcriptions/${id}`)).status, 204);
  t.equal((await onA('GET', `/speechtotext/v3.1/transcriptions/${id}`)).status, 404, 'gone on A');
  t.equal((await onB('GET', `/speechtotext/v3.1/transcriptions/${id}`)).status, 404, 'gone on B');
  for (const call of [onA, onB]) {
    const values = (await call('GET', '/speechtotext/v3.1/transcriptions')).json.values as Array<{ self: string }>;
    t.notOk(
      values.some((v) => v.self.endsWith(`/transcriptions/${id}`)),
      'not listed',
    );
  }
  await receiver.until((hits) => hits.some((h) => h.headers['x-microsoftspeechservices-event'] === 'TranscriptionDeletion'), 'the deletion', 20_000);
  t.equal(ids('TranscriptionDeletion').size, 1, 'one Deletion');
  t.ok(JSON.parse(eventsOf('TranscriptionDeletion')[0]!.body).self.endsWith(`/transcriptions/${id}`), 'of the batch');
});

t.test('a batch created on A while the broker was away, A busy: once it is back, B reads the batch and runs its jobs', async (t) => {
  const host = await wavHost(t);
  const server = await NatsServer.start(t);
  await server.stop();
  const dir = t.testdir();
  // A's fleet tick is an hour: what it hands over, it hands over on connecting.
  const a = await startApp(t, { EARSHOT_FLEET_URL: server.url }, path.join(dir, 'a'), { fleetTickMs: 3_600_000 });
  const onA = client(a);
  // A long IBM job keeps A's engine busy (JFK 120 times over, ~25 s for the test model on an idle 2-core machine).
  const long = await fetch(`${a.base}/v1/recognitions`, {
    method: 'POST',
    headers: { ...a.auth, 'Content-Type': 'audio/mp3' },
    body: readFileSync(repeatFile(jfkMp3, path.join(dir, 'long.mp3'), 120)),
  });
  t.equal(long.status, 201);
  const longId = ((await long.json()) as { id: string }).id;
  await until(async () => a.app.jobs.find(longId)?.status === 'processing', 10_000, 'a runs the long job');
  const created = await onA('POST', '/speechtotext/v3.1/transcriptions', {
    displayName: 'taken alone',
    locale: 'en-US',
    contentUrls: [`${host.base}/one.wav`, `${host.base}/two.wav`],
  });
  t.equal(created.status, 201, JSON.stringify(created.json));
  const id = created.json.self.split('/').pop() as string;
  t.equal(a.app.jobs.newest(10, (job) => job.source !== undefined && job.status === 'waiting').length, 2, 'its jobs wait on A');

  await server.start();
  const b = await startApp(t, { EARSHOT_FLEET_URL: server.url }, path.join(dir, 'b'));
  const onB = client(b);
  let entity: { status?: string } = {};
  await until(
    async () => {
      entity = (await onB('GET', `/speechtotext/v3.1/transcriptions/${id}`)).json ?? {};
      return entity.status === 'Succeeded' || entity.status === 'Failed';
    },
    60_000,
    'the batch read on B to its end',
  );
  t.equal(entity.status, 'Succeeded');
  t.equal(a.app.jobs.find(longId)?.status, 'processing', 'A still runs its long job: B ran the batch');
  t.equal(gauge(await (await fetch(`${b.base}/metrics`)).text(), 'earshot_fleet_jobs_started_total'), 2);
  t.equal((await onA('GET', `/speechtotext/v3.1/transcriptions/${id}`)).json.status, 'Succeeded', 'A reads it from the fleet');
  t.same(host.requests.sort(), ['/one.wav', '/two.wav']);
});
