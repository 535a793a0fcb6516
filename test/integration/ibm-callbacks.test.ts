// IBM callbacks end to end: registration with the challenge, signed notifications of a
// job's events, delivered through the outbox to a real receiver on loopback.
import { createHmac } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import t from 'tap';

import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { Spool } from '../../src/jobs/spool.js';
import { StateDatabase } from '../../src/store/database.js';
import { startApp, waitForJob } from '../helpers/app.js';
import { jfkMp3 } from '../helpers/models.js';
import { until } from '../helpers/poll.js';
import { startReceiver, type Answer } from '../helpers/receiver.js';

const jfk = readFileSync(jfkMp3);
const hmac = (algorithm: string, secret: string, data: string) => createHmac(algorithm, secret).update(data).digest('base64');

t.test('register_callback: challenge with signature, 201 then 200 already created, persisted', async (t) => {
  const receiver = await startReceiver(t, undefined, { path: '/callback' });
  const { base, auth } = await startApp(t);
  const register = () =>
    fetch(`${base}/v1/register_callback?callback_url=${encodeURIComponent(receiver.url)}&user_secret=s3cret`, {
      method: 'POST',
      headers: auth,
    });
  const first = await register();
  t.equal(first.status, 201);
  t.same(await first.json(), { status: 'created', url: receiver.url });
  t.equal(receiver.received.length, 1, 'one challenge GET');
  const challenge = receiver.received[0]!;
  t.equal(challenge.method, 'GET');
  t.equal(challenge.headers.accept, 'text/plain');
  const challengeString = challenge.url.searchParams.get('challenge_string')!;
  t.match(challengeString, /^[A-Za-z0-9]{32}$/, 'alphanumeric, as IBM documents');
  t.equal(challenge.headers['x-callback-signature'], hmac('sha1', 's3cret', challengeString), 'HMAC-SHA1 of the challenge');

  const second = await register();
  t.equal(second.status, 200);
  t.same(await second.json(), { status: 'already created', url: receiver.url });
  t.equal(receiver.received.length, 1, 'no second challenge');

  const un = await fetch(`${base}/v1/unregister_callback?callback_url=${encodeURIComponent(receiver.url)}`, { method: 'POST', headers: auth });
  t.equal(un.status, 200);
  const again = await fetch(`${base}/v1/unregister_callback?callback_url=${encodeURIComponent(receiver.url)}`, { method: 'POST', headers: auth });
  t.equal(again.status, 404);
});

t.test('register_callback refuses receivers that fail the challenge, with the reason', async (t) => {
  const receiver = await startReceiver(t, undefined, { path: '/callback' });
  const { base, auth } = await startApp(t);
  const register = (url: string) => fetch(`${base}/v1/register_callback?callback_url=${encodeURIComponent(url)}`, { method: 'POST', headers: auth });
  const cases: Array<[string, Answer, RegExp]> = [
    ['status', { status: 406 }, /responded with status code 406/],
    ['body', { status: 200, body: 'nope' }, /did not contain the challenge string/],
    ['timeout', 'hang', /did not respond within 5 seconds/],
  ];
  for (const [name, answer, message] of cases) {
    receiver.challenge = () => answer;
    const res = await register(`${receiver.url}/${name}`);
    t.equal(res.status, 400, name);
    t.match(await res.json(), { code: 400, code_description: 'Bad Request', error: message }, name);
  }
  const forbidden = await register('http://169.254.169.254/latest');
  t.equal(forbidden.status, 400);
  t.match(await forbidden.json(), { error: /link-local|not in the allowed/ });
  const notUrl = await register('ftp://example/x');
  t.equal(notUrl.status, 400);
  const missing = await fetch(`${base}/v1/register_callback`, { method: 'POST', headers: auth });
  t.equal(missing.status, 400);
});

t.test('a job with a callback: started + completed_with_results, signed, with user_token', async (t) => {
  const receiver = await startReceiver(t, undefined, { path: '/callback' });
  const { base, auth } = await startApp(t);
  await fetch(`${base}/v1/register_callback?callback_url=${encodeURIComponent(receiver.url)}&user_secret=k3y`, { method: 'POST', headers: auth });

  const unregistered = await fetch(`${base}/v1/recognitions?callback_url=${encodeURIComponent(`${receiver.url}/other`)}`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/mp3' },
    body: jfk,
  });
  t.equal(unregistered.status, 400);
  t.match(await unregistered.json(), { error: /is not registered/ });

  const events = 'recognitions.started,recognitions.completed_with_results';
  const res = await fetch(`${base}/v1/recognitions?callback_url=${encodeURIComponent(receiver.url)}&events=${events}&user_token=job-7&timestamps=true`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/mp3' },
    body: jfk,
  });
  t.equal(res.status, 201);
  const { id } = (await res.json()) as { id: string };
  const posts = await receiver.posts(2);
  const bodies = posts.map((p) => JSON.parse(p.body) as Record<string, unknown>);
  t.match(bodies[0], { id, event: 'recognitions.started', user_token: 'job-7' });
  t.match(bodies[1], { id, event: 'recognitions.completed_with_results', user_token: 'job-7' });
  t.match((bodies[1]!.results as any[])[0], { result_index: 0, results: Array });
  for (const p of posts) {
    t.equal(p.headers['content-type'], 'application/json');
    t.equal(p.headers['x-callback-signature'], hmac('sha1', 'k3y', p.body), 'X-Callback-Signature over the exact body');
    t.ok(p.headers['webhook-id'], 'a stable delivery id');
  }
  t.not(posts[0]!.headers['webhook-id'], posts[1]!.headers['webhook-id']);

  const list = (await (await fetch(`${base}/v1/recognitions`, { headers: auth })).json()) as { recognitions: any[] };
  t.match(list.recognitions[0], { id, user_token: 'job-7' });
});

t.test('events: IBM rules (errors, defaults, warnings without a callback)', async (t) => {
  const { base, auth } = await startApp(t);
  const post = (query: string) => fetch(`${base}/v1/recognitions?${query}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'audio/mp3' }, body: jfk });
  const both = await post('callback_url=http://127.0.0.1:9/x&events=recognitions.completed,recognitions.completed_with_results');
  t.equal(both.status, 400);
  t.match(await both.json(), { error: /incompatible/ });
  const unknown = await post('callback_url=http://127.0.0.1:9/x&events=recognitions.done');
  t.equal(unknown.status, 400);
  t.match(await unknown.json(), { error: /Invalid event 'recognitions.done'/ });
  const warned = await post('user_token=abc&events=recognitions.started&bogus=1');
  t.equal(warned.status, 201);
  t.match(await warned.json(), {
    warnings: [
      'Unknown arguments: bogus.',
      "unexpected query parameter 'events', query parameter 'callback_url' was not specified",
      "unexpected query parameter 'user_token', query parameter 'callback_url' was not specified",
    ],
  });
});

t.test('EARSHOT_IBM_SIGNATURE=sha256 signs challenges and notifications with HMAC-SHA256', async (t) => {
  const receiver = await startReceiver(t, undefined, { path: '/callback' });
  const { base, auth } = await startApp(t, { EARSHOT_IBM_SIGNATURE: 'sha256' });
  const reg = await fetch(`${base}/v1/register_callback?callback_url=${encodeURIComponent(receiver.url)}&user_secret=k`, { method: 'POST', headers: auth });
  t.equal(reg.status, 201);
  const challenge = receiver.received[0]!;
  t.equal(challenge.headers['x-callback-signature'], hmac('sha256', 'k', challenge.url.searchParams.get('challenge_string')!));
  await fetch(`${base}/v1/recognitions?callback_url=${encodeURIComponent(receiver.url)}&events=recognitions.completed`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/mp3' },
    body: jfk,
  });
  const [post] = await receiver.posts(1);
  t.equal(post!.headers['x-callback-signature'], hmac('sha256', 'k', post!.body));
});

t.test('odd spellings of a callback URL are one normalized registration; credentials and fragments are refused', async (t) => {
  const receiver = await startReceiver(t, undefined, { path: '/callback' });
  const { base, auth } = await startApp(t);
  const hostPort = new URL(receiver.url).host;
  const register = async (url: string) => {
    const res = await fetch(`${base}/v1/register_callback?callback_url=${encodeURIComponent(url)}`, { method: 'POST', headers: auth });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  t.same(await register(` ${receiver.url}`), { status: 201, json: { status: 'created', url: receiver.url } }, 'a leading space');
  for (const odd of [`http:${hostPort}/callback`, `http:\\\\${hostPort}\\callback`, `HTTP://${hostPort}/callback`]) {
    t.same(await register(odd), { status: 200, json: { status: 'already created', url: receiver.url } }, odd);
  }
  t.equal(receiver.challenges().length, 1, 'one challenge for them all');
  for (const [bad, reason] of [
    [`http://user:pw@${hostPort}/callback`, /must not contain credentials/],
    [`${receiver.url}#frag`, /must not contain a fragment/],
    [`ftp://${hostPort}/callback`, /must be an http or https URL/],
    ['callback', /is not a valid absolute URL/],
  ] as const) {
    const res = await register(bad);
    t.equal(res.status, 400, bad);
    t.match(res.json, { code: 400, error: reason }, bad);
  }

  // A job naming the URL in another spelling: its callbacks go to the registered URL.
  const res = await fetch(`${base}/v1/recognitions?callback_url=${encodeURIComponent(`http:${hostPort}/callback`)}&events=recognitions.completed`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/mp3' },
    body: jfk,
  });
  t.equal(res.status, 201);
  const [post] = await receiver.posts(1);
  t.match(JSON.parse(post!.body), { id: ((await res.json()) as { id: string }).id, event: 'recognitions.completed' });
  t.equal(post!.path, '/callback');
  const unregistered = await fetch(`${base}/v1/unregister_callback?callback_url=${encodeURIComponent(` HTTP:${hostPort}/callback`)}`, {
    method: 'POST',
    headers: auth,
  });
  t.equal(unregistered.status, 200, 'unregistered in another spelling too');
});

t.test('state of an earlier release with an odd callback URL: the job runs and notifies, the queue goes on', async (t) => {
  const receiver = await startReceiver(t, undefined, { path: '/legacy' });
  const stateDir = t.testdir();
  // What an earlier release stored: the registration and the job under the URL as given.
  const odd = `http:${new URL(receiver.url).host}/legacy`;
  const db = new StateDatabase(stateDir);
  db.open();
  const spool = new Spool(stateDir);
  spool.open();
  const id = 'legacy-job-1';
  copyFileSync(jfkMp3, spool.uploadPath(id));
  await db.durably(() => {
    db.db('ibm-callbacks').putSync(odd, { url: odd, created: Date.now() });
    new JobStore(db).put({
      id,
      created: Date.now(),
      updated: Date.now(),
      status: 'waiting',
      contentType: 'audio/mp3',
      format: parseAudioMediaType('audio/mp3'),
      audioBytes: jfk.length,
      model: 'en-US_BroadbandModel',
      options: {},
      output: { timestamps: false, wordConfidence: false },
      callback: { url: odd, events: ['recognitions.started', 'recognitions.completed'] },
      resultsTtlMs: 60_000,
      attempts: 0,
      warnings: [],
    });
  });
  await db.close();

  const { base, auth } = await startApp(t, {}, stateDir);
  t.match(await waitForJob(base, auth, id), { status: 'completed' });
  const posts = await receiver.posts(2);
  t.same(posts.map((p) => JSON.parse(p.body).event).sort(), ['recognitions.completed', 'recognitions.started']);
  t.same((await (await fetch(`${base}/v1/callback_deliveries?state=dead`, { headers: auth })).json()) as unknown, { deliveries: [] });
  const plain = await fetch(`${base}/v1/recognitions`, { method: 'POST', headers: { ...auth, 'Content-Type': 'audio/mp3' }, body: jfk });
  t.match(await waitForJob(base, auth, ((await plain.json()) as { id: string }).id), { status: 'completed' }, 'a plain job after it');
});

t.test('events are independent: a receiver that fails recognitions.started gets recognitions.completed at once', async (t) => {
  const receiver = await startReceiver(t, (r) => (JSON.parse(r.body).event === 'recognitions.started' ? { status: 500 } : { status: 200 }), {
    path: '/callback',
  });
  // The default retry schedule: the started callback is retried in 5 s (then minutes, hours).
  const { base, auth } = await startApp(t);
  const q = encodeURIComponent(receiver.url);
  t.equal((await fetch(`${base}/v1/register_callback?callback_url=${q}`, { method: 'POST', headers: auth })).status, 201);
  const res = await fetch(`${base}/v1/recognitions?callback_url=${q}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'audio/mp3' }, body: jfk });
  const { id } = (await res.json()) as { id: string };
  const job = await waitForJob(base, auth, id);
  const posts = await receiver.until((e) => e.some((p) => JSON.parse(p.body).event === 'recognitions.completed'), 'recognitions.completed', 5000);
  const completed = posts.find((p) => JSON.parse(p.body).event === 'recognitions.completed')!;
  const lag = completed.at - Date.parse(job.updated as string);
  t.ok(lag < 1000, `recognitions.completed arrived ${lag} ms after the job completed, while recognitions.started waits for its retry`);
  t.match(
    ((await (await fetch(`${base}/v1/callback_deliveries?state=pending&callback_url=${q}`, { headers: auth })).json()) as { deliveries: unknown[] }).deliveries,
    [{ event: 'recognitions.started', attempts: 1, last_status_code: 500 }],
  );
});

t.test('a callback to the service itself is refused at registration, and when connecting should the service come to listen there', async (t) => {
  const receiver = await startReceiver(t, undefined, { path: '/callback' });
  const stateDir = t.testdir();
  const first = await startApp(t, {}, stateDir);
  const register = async (base: string, auth: Record<string, string>, url: string) => {
    const res = await fetch(`${base}/v1/register_callback?callback_url=${encodeURIComponent(url)}`, { method: 'POST', headers: auth });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const port = first.app.http.port;
  for (const own of [`http://127.0.0.1:${port}/v1/recognitions`, `http://localhost:${port}/v1/models`, `http://[::ffff:127.0.0.1]:${port}/x`]) {
    const res = await register(first.base, first.auth, own);
    t.equal(res.status, 400, own);
    t.match(res.json.error, /^unable to register callback url '.*', .*is this earshot service itself/, own);
  }
  t.equal((await register(first.base, first.auth, receiver.url)).status, 201);
  await first.app.stop();

  // The receiver's port becomes the service's: the registered URL now points at the service.
  await receiver.close();
  const moved = await startApp(t, { EARSHOT_PORT: String(receiver.port) }, stateDir);
  t.equal(moved.app.http.port, receiver.port);
  const res = await fetch(`${moved.base}/v1/recognitions?callback_url=${encodeURIComponent(receiver.url)}&events=recognitions.completed`, {
    method: 'POST',
    headers: { ...moved.auth, 'Content-Type': 'audio/mp3' },
    body: jfk,
  });
  t.equal(res.status, 201);
  const { id } = (await res.json()) as { id: string };
  t.match(await waitForJob(moved.base, moved.auth, id), { status: 'completed' }, 'the job is not held back');
  let dead: Record<string, unknown>[] = [];
  await until(
    async () => {
      const r = await fetch(`${moved.base}/v1/callback_deliveries?state=dead`, { headers: moved.auth });
      dead = ((await r.json()) as { deliveries: Record<string, unknown>[] }).deliveries;
      return dead.length > 0;
    },
    10_000,
    'the dead letter',
  );
  t.match(dead, [{ recognition_id: id, attempts: 1, last_error: /is this earshot service itself/ }]);
});

t.test('callback URLs are capped (EARSHOT_MAX_HOOKS), also under concurrent registration; unregistering makes room', async (t) => {
  const receiver = await startReceiver(t, undefined, { path: '/callback' });
  const { base, auth } = await startApp(t, { EARSHOT_MAX_HOOKS: '2' });
  const register = async (url: string) => {
    const res = await fetch(`${base}/v1/register_callback?callback_url=${encodeURIComponent(url)}`, { method: 'POST', headers: auth });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const answers = await Promise.all([1, 2, 3, 4].map((n) => register(`${receiver.url}?n=${n}`)));
  t.same(answers.map((a) => a.status).sort(), [201, 201, 400, 400]);
  t.match(answers.find((a) => a.status === 400)!.json, {
    code: 400,
    error: /^unable to register callback url '.*': 2 callback URLs are registered, the most this service keeps \(EARSHOT_MAX_HOOKS\); unregister one first$/,
  });
  const kept = answers.filter((a) => a.status === 201).map((a) => a.json.url as string);
  t.equal((await register(kept[0]!)).status, 200, 'one already registered is still answered');
  const unregistered = await fetch(`${base}/v1/unregister_callback?callback_url=${encodeURIComponent(kept[0]!)}`, { method: 'POST', headers: auth });
  t.equal(unregistered.status, 200);
  t.equal((await register(`${receiver.url}?n=5`)).status, 201);
});
