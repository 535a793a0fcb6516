// Azure Speech web hooks end to end, against the real service and real receivers on
// loopback: registration with the challenge, the CRUD surface, deliveries of jobs from
// the IBM dialect checked with every signature scheme, links that lead somewhere, ping and
// test, a receiver that is down for a while, dead letters that leave a hook enabled, 410, SSRF.
import { createHmac } from 'node:crypto';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import t, { type Test } from 'tap';

import { startApp, waitForJob, type RunningApp } from '../helpers/app.js';
import { budget } from '../helpers/emulation.js';
import { l16 } from '../helpers/pcm.js';
import { until } from '../helpers/poll.js';
import { startReceiver, type Received } from '../helpers/receiver.js';

type Hit = Received;

/** A web hook receiver: Azure's challenge answered with the token, events as `answer` says (default 200). */
const hookReceiver = (t: Test, path = '/hook') => startReceiver(t, undefined, { path });

const eventOf = (hit: Hit) => hit.headers['x-microsoftspeechservices-event'];
const hmac256 = (secret: string, data: string) => createHmac('sha256', secret).update(data).digest('base64');

function client(app: RunningApp) {
  const headers = { 'Ocp-Apim-Subscription-Key': 'test-key-0123456789' };
  const call = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
    const res = await fetch(path.startsWith('http') ? path : `${app.base}${path}`, {
      method,
      headers: { ...headers, ...(body !== undefined ? { 'Content-Type': contentType } : {}) },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: text ? (JSON.parse(text) as any) : undefined };
  };
  return {
    call,
    createHook: (body: Record<string, unknown>) => call('POST', '/speechtotext/v3.1/webhooks', body),
    hookPath: (self: string) => new URL(self).pathname,
    /** The hook once its challenge has run (the 201 comes first, with status NotStarted). */
    settled: async (self: string) => {
      let hook: any;
      await until(
        async () => {
          hook = (await call('GET', new URL(self).pathname)).json;
          return hook.status !== 'NotStarted';
        },
        10_000,
        'the challenge',
      );
      return hook;
    },
    submit: async (query = 'timestamps=true') => {
      const res = await fetch(`${app.base}/v1/recognitions?${query}`, {
        method: 'POST',
        headers: { ...app.auth, 'Content-Type': 'audio/l16;rate=16000;endianness=little-endian' },
        body: l16(1),
      });
      if (res.status !== 201) throw new Error(`submit: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    },
  };
}

const allTranscriptionEvents = { transcriptionCreation: true, transcriptionProcessing: true, transcriptionCompletion: true, transcriptionDeletion: true };

t.test('create answers 201 NotStarted, the challenge follows; get, list paging, PATCH, delete; secrets never returned', async (t) => {
  const receiver = await hookReceiver(t);
  const moved = await hookReceiver(t, '/moved');
  const app = await startApp(t);
  const api = client(app);
  const secret = 'hook-secret-1';

  const created = await api.createHook({
    displayName: 'first',
    description: 'd',
    webUrl: receiver.url,
    events: { transcriptionCompletion: true },
    properties: { secret },
    customProperties: { k: 'v' },
  });
  t.equal(created.status, 201);
  const hook = created.json;
  t.equal(created.headers.get('location'), hook.self, 'Location is the new hook');
  t.match(hook.self, new RegExp(`^${app.base}/speechtotext/v3.1/webhooks/[0-9a-f-]{36}$`));
  t.same(hook.links, { ping: `${hook.self}:ping`, test: `${hook.self}:test` });
  t.match(hook, {
    webUrl: receiver.url,
    displayName: 'first',
    description: 'd',
    events: { transcriptionCompletion: true },
    status: 'NotStarted',
    customProperties: { k: 'v' },
    properties: { apiVersion: 'v3.1' },
  });
  t.match(hook.createdDateTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.notOk(created.text.includes(secret), 'the secret is not returned');

  const settled = await api.settled(hook.self);
  t.match(settled, { ...hook, status: 'Succeeded', lastActionDateTime: String });
  const [challenge] = receiver.challenges();
  t.equal(challenge!.method, 'POST');
  const token = challenge!.url.searchParams.get('validationToken')!;
  t.match(token, /^[0-9a-f]{32}$/);
  t.equal(eventOf(challenge!), 'Challenge');
  t.equal(challenge!.body, token, 'the token is also the body');
  t.equal(challenge!.headers['x-microsoftspeechservices-signature'], hmac256(secret, challenge!.body), 'signed over exactly the body');

  const got = await api.call('GET', api.hookPath(hook.self));
  t.equal(got.status, 200);
  t.same(got.json, settled);

  for (const name of ['second', 'third']) {
    const other = await api.createHook({ displayName: name, webUrl: receiver.url, events: { ping: true } });
    t.equal(other.status, 201);
    await api.settled(other.json.self);
  }
  const page1 = await api.call('GET', '/speechtotext/v3.1/webhooks?top=2');
  t.same(
    page1.json.values.map((h: any) => h.displayName),
    ['first', 'second'],
  );
  t.equal(page1.json['@nextLink'], `${app.base}/speechtotext/v3.1/webhooks?top=2&skip=2`);
  const page2 = await api.call('GET', page1.json['@nextLink']);
  t.same(
    page2.json.values.map((h: any) => h.displayName),
    ['third'],
  );
  t.notOk('@nextLink' in page2.json, 'no more pages');
  t.notOk(page1.text.includes(secret) || page2.text.includes(secret));
  t.match((await api.call('GET', '/speechtotext/v3.1/webhooks?skip=-1')).json, { code: 'InvalidRequest', innerError: { code: 'InvalidParameterValue' } });
  t.match((await api.call('GET', "/speechtotext/v3.1/webhooks?filter=displayName%20eq%20'x'")).json, { innerError: { code: 'UnsupportedFilter' } });

  const renamed = await api.call(
    'PATCH',
    api.hookPath(hook.self),
    { displayName: 'renamed', events: { transcriptionCreation: true } },
    'application/merge-patch+json',
  );
  t.equal(renamed.status, 200);
  t.match(renamed.json, { displayName: 'renamed', events: { transcriptionCreation: true, transcriptionCompletion: true }, status: 'Succeeded' });
  t.equal(receiver.challenges().length, 3, 'no new challenge for a rename');
  const move = await api.call('PATCH', api.hookPath(hook.self), { webUrl: moved.url });
  t.match(move.json, { webUrl: moved.url, status: 'NotStarted' });
  t.match(await api.settled(hook.self), { webUrl: moved.url, status: 'Succeeded' });
  t.equal(moved.challenges().length, 1, 'a new URL is challenged');
  t.equal(moved.challenges()[0]!.headers['x-microsoftspeechservices-signature'], hmac256(secret, moved.challenges()[0]!.body), 'with the kept secret');
  t.notOk(move.text.includes(secret));
  const wrongType = await api.call('PATCH', api.hookPath(hook.self), 'displayName=x', 'text/plain');
  t.equal(wrongType.status, 415);
  t.match(wrongType.json, { code: 'UnsupportedMediaType' });
  t.match((await api.call('PATCH', api.hookPath(hook.self), { events: { transcriptionCreation: false, transcriptionCompletion: false } })).json, {
    code: 'InvalidRequest',
    innerError: { code: 'InvalidWebHookEventKind' },
  });

  t.equal((await api.call('DELETE', api.hookPath(hook.self))).status, 204);
  const gone = await api.call('GET', api.hookPath(hook.self));
  t.equal(gone.status, 404);
  t.match(gone.json, { code: 'NotFound', message: /was not found/ });
  t.equal((await api.call('DELETE', api.hookPath(hook.self))).status, 404);

  const missingUrl = await api.createHook({ displayName: 'x', events: { ping: true } });
  t.equal(missingUrl.status, 400);
  t.match(missingUrl.json, { code: 'InvalidRequest', message: /webUrl/, innerError: { code: 'InvalidCallbackUri' } });
  t.match((await api.call('POST', '/speechtotext/v3.1/webhooks', '{nope')).json, { innerError: { code: 'InvalidRequestBodyFormat' } });
  const anonymous = await fetch(`${app.base}/speechtotext/v3.1/webhooks`);
  t.equal(anonymous.status, 401);
  t.match(await anonymous.json(), { code: 'Unauthorized' });
});

t.test('a failed challenge leaves the hook Failed with the reason; forbidden targets are refused', async (t) => {
  const receiver = await hookReceiver(t);
  const elsewhere = await hookReceiver(t, '/elsewhere');
  const app = await startApp(t);
  const api = client(app);

  receiver.challenge = () => ({ status: 200, body: 'not the token' });
  const wrong = await api.createHook({ displayName: 'w', webUrl: receiver.url, events: { transcriptionCompletion: true } });
  t.equal(wrong.status, 201, 'created, as Azure does, but not usable');
  t.match(wrong.json, { status: 'NotStarted' });
  t.match(await api.settled(wrong.json.self), {
    status: 'Failed',
    properties: {
      error: {
        code: 'InvalidCallbackUri',
        message: /^Challenge response payload doesn't match validation token. Expected: [0-9a-f]{32}, actual: a 13-byte body that differs$/,
      },
    },
  });
  const ping = await api.call('POST', `${api.hookPath(wrong.json.self)}:ping`);
  t.equal(ping.status, 400);
  t.match(ping.json, { code: 'InvalidRequest', innerError: { code: 'InvalidPrerequisite' }, message: /PATCH it to re-enable/ });

  receiver.challenge = () => ({ status: 302, headers: { Location: elsewhere.url } });
  const redirect = await api.createHook({ displayName: 'r', webUrl: receiver.url, events: { transcriptionCompletion: true } });
  t.match(await api.settled(redirect.json.self), {
    status: 'Failed',
    properties: { error: { message: /HTTP 302 \(a redirect\); redirects are not followed: register the final URL/ } },
  });
  t.equal(elsewhere.received.length, 0, 'the redirect was not followed');

  receiver.challenge = () => ({ status: 503 });
  const unavailable = await api.createHook({ displayName: 's', webUrl: receiver.url, events: { transcriptionCompletion: true } });
  t.match((await api.settled(unavailable.json.self)).properties.error, { message: /status code 503/ });

  const linkLocal = await api.createHook({ displayName: 'm', webUrl: 'http://169.254.169.254/latest/meta-data', events: { transcriptionCompletion: true } });
  t.equal(linkLocal.status, 400);
  t.match(linkLocal.json, {
    code: 'InvalidRequest',
    innerError: { code: 'InvalidCallbackUri' },
    message: /cannot be used: http:\/\/169\.254\.169\.254\/latest\/meta-data is not an allowed target: .*link-local/,
  });
  // The service itself (the hook would call its own API on every event), and credentials.
  const port = new URL(app.base).port;
  for (const [webUrl, message] of [
    [`http://127.0.0.1:${port}/speechtotext/v3.1/webhooks`, /cannot be used: .*127\.0\.0\.1:\d+ is this earshot service itself/],
    [`http://localhost:${port}/speechtotext/v3.1/transcriptions`, /cannot be used: .*is this earshot service itself/],
    [`http://key:secret@127.0.0.1:${receiver.port}/hook`, /must not contain credentials/],
  ] as const) {
    const refused = await api.createHook({ displayName: 'x', webUrl, events: { transcriptionCompletion: true } });
    t.equal(refused.status, 400, webUrl);
    t.match(refused.json, { code: 'InvalidRequest', innerError: { code: 'InvalidCallbackUri' }, message }, webUrl);
  }
  t.equal((await api.call('GET', '/speechtotext/v3.1/webhooks')).json.values.length, 3, 'refused hooks are not stored');
});

t.test('web hooks are capped (EARSHOT_MAX_HOOKS), also under concurrent creation; a deleted one makes room', async (t) => {
  const receiver = await hookReceiver(t);
  const app = await startApp(t, { EARSHOT_MAX_HOOKS: '3' });
  const api = client(app);
  const create = () => api.createHook({ displayName: 'h', webUrl: receiver.url, events: { transcriptionCompletion: true } });
  const answers = await Promise.all([create(), create(), create(), create(), create()]);
  t.same(answers.map((a) => a.status).sort(), [201, 201, 201, 400, 400]);
  t.match(answers.find((a) => a.status === 400)!.json, {
    code: 'InvalidRequest',
    innerError: { code: 'InvalidPrerequisite' },
    message: /^3 web hooks exist, the most this service keeps \(EARSHOT_MAX_HOOKS\); delete one first$/,
  });
  const v21 = await api.call('POST', '/api/speechtotext/v2.1/transcriptions/hooks', {
    configuration: { url: receiver.url },
    events: ['TranscriptionCompletion'],
  });
  t.equal(v21.status, 400, 'v2.1 hooks count in the same list');
  const listed = (await api.call('GET', '/speechtotext/v3.1/webhooks')).json.values;
  t.equal(listed.length, 3);
  t.equal((await api.call('DELETE', api.hookPath(listed[0].self))).status, 204);
  t.equal((await create()).status, 201);
});

t.test('SSRF: names resolving to forbidden addresses and literal IPs are refused with the reason', async (t) => {
  const receiver = await hookReceiver(t);
  const app = await startApp(t, { EARSHOT_CALLBACK_CIDRS: '10.0.0.0/8' });
  const api = client(app);
  const viaName = await api.createHook({ displayName: 'n', webUrl: `http://localhost:${receiver.port}/hook`, events: { transcriptionCompletion: true } });
  t.equal(viaName.status, 400);
  t.match(viaName.json, {
    code: 'InvalidRequest',
    innerError: { code: 'InvalidCallbackUri' },
    message: /host localhost resolves to .*(127\.0\.0\.1|::1).*loopback.*EARSHOT_CALLBACK_CIDRS/,
  });
  const literal = await api.createHook({ displayName: 'l', webUrl: receiver.url, events: { transcriptionCompletion: true } });
  t.equal(literal.status, 400);
  t.match(literal.json.message, /http:\/\/127\.0\.0\.1:\d+\/hook is not an allowed target: .*loopback/);
  const v21 = await api.call('POST', '/api/speechtotext/v2.1/transcriptions/hooks', {
    name: 'v',
    configuration: { url: `http://localhost:${receiver.port}/x` },
    events: ['TranscriptionCompletion'],
  });
  t.equal(v21.status, 400);
  t.match(v21.json, { innerError: { code: 'InvalidCallbackUri' }, message: /resolves to/ });
  t.equal(receiver.received.length, 0, 'nothing was sent');
});

t.test('a job submitted through IBM fires Creation, Processing, Completion, signed three ways; links lead somewhere', async (t) => {
  const receiver = await hookReceiver(t);
  const v21Receiver = await hookReceiver(t, '/v21');
  const app = await startApp(t);
  const api = client(app);
  const secret = 'azure-hook-secret';
  const hook = (await api.createHook({ displayName: 'all', webUrl: receiver.url, events: allTranscriptionEvents, properties: { secret } })).json;
  await api.settled(hook.self);
  const v21 = await api.call('POST', '/api/speechtotext/v2.1/transcriptions/hooks', {
    configuration: { url: v21Receiver.url, secret: 'v2-secret' },
    events: ['TranscriptionCompletion'],
    active: true,
    name: 'TranscriptionCompletionWebHook',
    properties: { Active: 'True' },
  });
  t.equal(v21.status, 201);
  t.match(v21.json, {
    configuration: { url: v21Receiver.url },
    events: ['TranscriptionCompletion'],
    active: true,
    name: 'TranscriptionCompletionWebHook',
    status: 'Succeeded',
  });
  t.equal(v21.headers.get('location'), `${app.base}/api/speechtotext/v2.1/transcriptions/hooks/${v21.json.id}`);
  t.notOk(v21.text.includes('v2-secret'));
  t.equal(v21Receiver.challenges().length, 0, 'v2.1 hooks have no challenge');

  const id = await api.submit();
  const events = await receiver.until((e) => e.length >= 3, 'three events');
  t.same(events.map(eventOf), ['TranscriptionCreation', 'TranscriptionProcessing', 'TranscriptionCompletion']);
  const standard = new StandardWebhook(`whsec_${Buffer.from(secret).toString('base64')}`);
  const bodies = events.map((e) => JSON.parse(e.body) as any);
  events.forEach((e, i) => {
    t.equal(e.method, 'POST');
    t.equal(e.url.pathname, '/hook');
    t.equal(e.headers['content-type'], 'application/json');
    t.equal(
      e.headers['x-microsoftspeechservices-signature'],
      hmac256(secret, e.body),
      'X-MicrosoftSpeechServices-Signature = base64(HMAC-SHA256(secret, body))',
    );
    t.same(standard.verify(e.body, e.headers as Record<string, string>), bodies[i], 'Standard Webhooks signature verifies');
    t.equal(bodies[i].invocationId, e.headers['webhook-id'], 'invocationId is the stable delivery id');
    t.equal(bodies[i].id, id);
    t.equal(bodies[i].self, `${app.base}/speechtotext/v3.1/transcriptions/${id}`);
  });
  t.same(
    bodies.map((b) => b.status),
    ['NotStarted', 'Running', 'Succeeded'],
  );
  t.equal(new Set(bodies.map((b) => b.invocationId)).size, 3);
  const done = bodies[2];
  t.match(done, { locale: 'en-US', properties: { duration: 'PT1S', wordLevelTimestampsEnabled: true }, links: { files: `${done.self}/files` } });

  // The links lead somewhere real.
  const entity = await api.call('GET', done.self);
  t.equal(entity.status, 200);
  t.match(entity.json, { id, self: done.self, status: 'Succeeded', properties: { duration: 'PT1S' } });
  const files = await api.call('GET', done.links.files);
  t.same(
    files.json.values.map((f: any) => [f.kind, f.name]),
    [
      ['Transcription', 'contenturl_0.json'],
      ['TranscriptionReport', 'report.json'],
    ],
  );
  const resultFile = files.json.values[0];
  t.match((await api.call('GET', resultFile.self)).json, { self: resultFile.self, kind: 'Transcription' });
  const content = await fetch(resultFile.links.contentUrl);
  t.equal(content.status, 200, 'the content URL works without the key, like a SAS URL');
  const text = await content.text();
  t.equal(Buffer.byteLength(text), resultFile.properties.size);
  const result = JSON.parse(text);
  t.match(result, { durationInTicks: 10_000_000, duration: 'PT1S', combinedRecognizedPhrases: [{ channel: 0 }], recognizedPhrases: Array });
  const tampered = new URL(resultFile.links.contentUrl);
  const sig = tampered.searchParams.get('sig')!;
  tampered.searchParams.set('sig', (sig[0] === 'x' ? 'y' : 'x') + sig.slice(1));
  t.equal((await fetch(tampered)).status, 401);
  const longest = await api.call('GET', `/speechtotext/v3.1/transcriptions/${id}/files?sasValidityInSeconds=999999999`);
  const se = Number(new URL(longest.json.values[0].links.contentUrl).searchParams.get('se'));
  t.ok(se <= Date.now() / 1000 + 7 * 24 * 3600 + 1 && se > Date.now() / 1000 + 7 * 24 * 3600 - 60, 'a content URL lives a week at most');
  t.match((await api.call('GET', '/speechtotext/v3.1/transcriptions')).json.values[0], { id, status: 'Succeeded' });

  // v2.1: only the subscribed event, the v2.1 shape, signed with its own secret.
  const [v21Event, ...more] = await v21Receiver.until((e) => e.length >= 1, 'the v2.1 completion');
  t.same(more, []);
  t.equal(eventOf(v21Event!), 'TranscriptionCompletion');
  t.equal(v21Event!.headers['x-microsoftspeechservices-signature'], hmac256('v2-secret', v21Event!.body));
  const v21Body = JSON.parse(v21Event!.body);
  t.match(v21Body, { id, status: 'Succeeded', statusMessage: 'None.', properties: { Duration: '00:00:01' }, invocationId: v21Event!.headers['webhook-id'] });
  t.same(JSON.parse(await (await fetch(v21Body.results[0].resultUrls[0].resultUrl)).text()), result, 'the v2.1 resultUrl serves the same result');
  const v2 = (await (await fetch(v21Body.resultsUrls.channel_0)).json()) as any;
  t.match(
    v2,
    { AudioFileResults: [{ AudioFileName: 'Channel.0.wav', AudioLengthInSeconds: 1, CombinedResults: [{ ChannelNumber: '0' }], SegmentResults: Array }] },
    "resultsUrls.channel_0: v2's format",
  );
  for (const segment of v2.AudioFileResults[0].SegmentResults) {
    t.match(segment, {
      RecognitionStatus: 'Success',
      Offset: Number,
      Duration: Number,
      OffsetInSeconds: Number,
      NBest: [{ Lexical: String, Display: String, Words: Array }],
    });
  }

  // Deleting fires TranscriptionDeletion; deleting again is still 204 (Azure: "or did not exist").
  t.equal((await api.call('DELETE', new URL(done.self).pathname)).status, 204);
  const deletion = (await receiver.until((e) => e.length >= 4, 'the deletion'))[3]!;
  t.equal(eventOf(deletion), 'TranscriptionDeletion');
  t.equal(JSON.parse(deletion.body).id, id);
  t.equal((await api.call('DELETE', new URL(done.self).pathname)).status, 204);
  t.match((await api.call('GET', done.self)).json, { code: 'NotFound' });
  t.equal(v21Receiver.events().length, 1, 'v2.1 hook did not subscribe to deletions');
  t.notOk(hook.properties.secret);
});

t.test('ping and test: 202 with Retry-After, 204 when there is nothing; v2.1 200/204 and its update', async (t) => {
  const receiver = await hookReceiver(t);
  const app = await startApp(t);
  const api = client(app);
  const hook = (await api.createHook({ displayName: 'p', webUrl: receiver.url, events: { transcriptionCompletion: true }, properties: { secret: 'ps' } })).json;
  await api.settled(hook.self);
  const path = api.hookPath(hook.self);
  const v21 = (
    await api.call('POST', '/api/speechtotext/v2.1/transcriptions/hooks', {
      name: 'v',
      configuration: { url: `${receiver.url}/v21` },
      events: ['TranscriptionCompletion'],
    })
  ).json;
  const v21Path = `/api/speechtotext/v2.1/transcriptions/hooks/${v21.id}`;

  const ping = await api.call('POST', `${path}:ping`);
  t.equal(ping.status, 202);
  t.equal(ping.headers.get('retry-after'), '1');
  const [pinged] = await receiver.until((e) => e.length >= 1, 'the ping');
  t.equal(eventOf(pinged!), 'Ping', 'spelled as Azure spells its event types');
  t.equal(pinged!.headers['x-microsoftspeechservices-signature'], hmac256('ps', pinged!.body));
  const pingBody = JSON.parse(pinged!.body);
  t.match(pingBody, { self: hook.self, links: hook.links, webUrl: receiver.url, status: 'Succeeded', invocationId: pinged!.headers['webhook-id'] });
  t.notOk(pinged!.body.includes('"ps"'), 'the ping body has no secret');

  t.equal((await api.call('POST', `${path}:test`)).status, 204, 'no transcription yet');
  t.equal((await api.call('POST', `${v21Path}/test`)).status, 204);
  t.equal((await api.call('POST', `${path}:nonsense`)).status, 404);

  const first = await api.submit();
  const second = await api.submit();
  await waitForJob(app.base, app.auth, second);
  const on = (e: Hit[], p: string) => e.filter((h) => h.url.pathname === p).length;
  await receiver.until((e) => on(e, '/hook') >= 3 && on(e, '/hook/v21') >= 2, 'both completions on both hooks');
  const test = await api.call('POST', `${path}:test`);
  t.equal(test.status, 202);
  t.equal(test.headers.get('retry-after'), '1');
  const tested = (await receiver.until((e) => e.filter((h) => h.url.pathname === '/hook').length >= 4, 'the test event')).filter(
    (h) => h.url.pathname === '/hook',
  )[3]!;
  t.equal(eventOf(tested), 'TranscriptionCompletion');
  t.match(JSON.parse(tested.body), { id: second, status: 'Succeeded' }, 'the newest matching transcription');
  t.not(first, second);

  const v21Test = await api.call('POST', `${v21Path}/test`);
  t.equal(v21Test.status, 200);
  const v21Events = await receiver.until((e) => e.filter((h) => h.url.pathname === '/hook/v21').length >= 3, 'the v2.1 test');
  t.match(JSON.parse(v21Events.filter((h) => h.url.pathname === '/hook/v21')[2]!.body), { id: second, statusMessage: 'None.' });
  t.equal((await api.call('POST', `${v21Path}/ping`)).status, 202);
  t.equal((await api.call('GET', v21Path)).json.id, v21.id);
  // v2.1 update: switched off with `active`, then on again.
  const off = await api.call('PATCH', v21Path, { active: false, name: 'paused' });
  t.equal(off.status, 200);
  t.match(off.json, { id: v21.id, active: false, name: 'paused', status: 'Succeeded' });
  t.match((await api.call('POST', `${v21Path}/test`)).json, { innerError: { code: 'InvalidPrerequisite' }, message: /inactive/ });
  t.match((await api.call('PATCH', v21Path, { active: true, events: ['TranscriptionCompletion', 'TranscriptionCreation'] })).json, {
    active: true,
    events: ['TranscriptionCompletion', 'TranscriptionCreation'],
  });
  t.match((await api.call('GET', v21Path)).json, { name: 'paused', active: true });
  t.match((await api.call('PATCH', v21Path, { active: 1 })).json, { innerError: { code: 'InvalidPayload' } });
  t.equal((await api.call('GET', '/api/speechtotext/v2.1/transcriptions/hooks')).json.length, 2);
  t.equal((await api.call('DELETE', v21Path)).status, 204);
  t.equal((await api.call('GET', v21Path)).status, 404);
});

t.test('a receiver down for a while: every delivery arrives once, with stable ids', async (t) => {
  const receiver = await hookReceiver(t);
  const app = await startApp(t, { EARSHOT_RETRY_SCHEDULE: Array(30).fill('25ms').join(',') });
  const api = client(app);
  await api.settled(
    (await api.createHook({ displayName: 'flaky', webUrl: receiver.url, events: allTranscriptionEvents, properties: { secret: 'f' } })).json.self,
  );
  // Down: connections reset, then 503s, then up.
  receiver.answer = (_hit, i) => (i < 5 ? 'reset' : i < 10 ? { status: 503 } : { status: 200 });
  const jobs = [await api.submit(), await api.submit()];
  for (const id of jobs) await waitForJob(app.base, app.auth, id);
  const ok = (e: Hit[]) => e.filter((_, i) => i >= 10);
  await receiver.until((e) => ok(e).length >= 6, 'six successful deliveries');
  // Nothing pending any more: nothing else can arrive.
  const hookPath = api.hookPath((await api.call('GET', '/speechtotext/v3.1/webhooks')).json.values[0].self);
  await until(async () => (await api.call('GET', `${hookPath}/deliveries?state=pending`)).json.values.length === 0, 10_000, 'no pending deliveries');
  const all = receiver.events();
  const delivered = ok(all);
  t.equal(delivered.length, 6, 'nothing delivered twice');
  const listed = (await api.call('GET', `${hookPath}/deliveries?state=delivered`)).json.values as Array<{ id: string; state: string }>;
  t.same(listed.map((d) => d.id).sort(), delivered.map((e) => e.headers['webhook-id']).sort(), 'listed as delivered: the ids the receiver saw');
  t.ok(listed.every((d) => d.state === 'delivered'));
  for (const id of jobs) {
    const mine = delivered.filter((e) => JSON.parse(e.body).id === id);
    // Each event goes out on its own schedule: receivers order them by event and timestamp.
    t.same(mine.map(eventOf).sort(), ['TranscriptionCompletion', 'TranscriptionCreation', 'TranscriptionProcessing'], `every event for ${id}`);
  }
  const ids = delivered.map((e) => e.headers['webhook-id']);
  t.equal(new Set(ids).size, 6, 'one id per delivery');
  for (const failed of all.slice(0, 10)) {
    t.ok(ids.includes(failed.headers['webhook-id']), 'a failed attempt is retried under the same id');
    const retried = delivered.find((e) => e.headers['webhook-id'] === failed.headers['webhook-id'])!;
    t.equal(retried.body, failed.body, 'with the same body');
  }
  t.ok(
    delivered.some((e) => Number(e.headers['x-earshot-delivery-attempt']) > 1),
    'some arrived on a retry',
  );
});

t.test('dead letters leave the hook enabled and are redelivered; 410 disables it, then it receives nothing until a PATCH', async (t) => {
  const receiver = await hookReceiver(t);
  const app = await startApp(t, { EARSHOT_RETRY_SCHEDULE: '10ms,10ms' });
  const api = client(app);
  const secret = 'dead-letter-secret';
  const hook = (
    await api.createHook({
      displayName: 'dl',
      webUrl: receiver.url,
      events: { transcriptionCreation: true, transcriptionCompletion: true },
      properties: { secret },
    })
  ).json;
  const path = api.hookPath(hook.self);
  t.match(await api.settled(hook.self), { status: 'Succeeded' });
  // Every attempt fails: each event runs its own schedule to its own dead letter.
  receiver.answer = () => ({ status: 500 });

  const first = await api.submit();
  await waitForJob(app.base, app.auth, first);
  let dead: any;
  await until(
    async () => {
      dead = await api.call('GET', `${path}/deliveries?state=dead`);
      return dead.json.values.length === 2;
    },
    10_000,
    'two dead letters',
  );
  t.same(dead.json.values.map((d: any) => d.event).sort(), ['TranscriptionCompletion', 'TranscriptionCreation']);
  for (const d of dead.json.values) t.match(d, { state: 'dead', attempts: 3, lastStatusCode: 500, lastError: 'HTTP 500' });
  t.equal(receiver.events().length, 6, 'three attempts of each event');
  t.notOk(dead.text.includes(secret), 'no secrets in the dead letters');
  t.match((await api.call('GET', path)).json, { status: 'Succeeded' }, 'dead letters do not disable the hook');
  t.notOk('error' in (await api.call('GET', path)).json.properties);
  t.match((await api.call('GET', `${path}/deliveries?state=bogus`)).json, { innerError: { code: 'InvalidParameterValue' } });

  // The receiver is back: the dead letters go out again, same ids, signed.
  receiver.answer = () => ({ status: 200 });
  const attemptsSoFar = receiver.events().length;
  const [creation, completion] = dead.json.values;
  const one = await api.call('POST', `${path}/deliveries/${creation.id}:redeliver`);
  t.equal(one.status, 202);
  t.match(one.json, { id: creation.id, state: 'pending', attempts: 0 });
  const redelivered = await receiver.until((e) => e.some((h) => h.headers['webhook-id'] === creation.id && e.indexOf(h) >= attemptsSoFar), 'the redelivery');
  t.equal(redelivered.at(-1)!.headers['x-microsoftspeechservices-signature'], hmac256(secret, redelivered.at(-1)!.body));
  t.equal((await api.call('POST', `${path}/deliveries/${creation.id}:redeliver`)).status, 400, 'only dead letters can be redelivered');
  t.equal((await api.call('POST', `${path}/deliveries/nope:redeliver`)).status, 404);
  const all = await api.call('POST', `${path}/deliveries:redeliver`);
  t.equal(all.status, 202);
  t.same(all.json, { redelivered: 1 });
  await receiver.until((e) => e.some((h) => h.headers['webhook-id'] === completion.id && e.indexOf(h) >= attemptsSoFar), 'the second redelivery');
  const pendingOrDead = async () =>
    (await api.call('GET', `${path}/deliveries?state=pending`)).json.values.length +
    (await api.call('GET', `${path}/deliveries?state=dead`)).json.values.length;
  await until(async () => (await pendingOrDead()) === 0, 10_000, 'every redelivery recorded');
  t.same((await api.call('GET', `${path}/deliveries?state=dead`)).json.values, [], 'no dead letters left');

  // 410 Gone disables at once.
  const goneReceiver = await hookReceiver(t, '/gone');
  goneReceiver.answer = () => ({ status: 410 });
  const goneHook = (await api.createHook({ displayName: 'gone', webUrl: goneReceiver.url, events: { transcriptionCompletion: true } })).json;
  const gonePath = api.hookPath(goneHook.self);
  t.match(await api.settled(goneHook.self), { status: 'Succeeded' });
  t.equal((await api.call('POST', `${gonePath}:ping`)).status, 202);
  await goneReceiver.until((e) => e.length >= 1, 'the ping');
  let gone: any;
  await until(
    async () => {
      gone = (await api.call('GET', gonePath)).json;
      return gone.status === 'Failed';
    },
    10_000,
    'the hook to fail',
  );
  t.match(gone, { status: 'Failed', properties: { error: { code: 'DeliveryFailed', message: /410 Gone/ } } });
  t.equal(goneReceiver.events().length, 1, 'one attempt only');

  // While Failed: nothing new is queued or sent, ping and redelivery are refused.
  const second = await api.submit();
  await waitForJob(app.base, app.auth, second);
  t.same((await api.call('GET', `${gonePath}/deliveries?state=pending`)).json.values, []);
  t.equal(goneReceiver.events().length, 1, 'a Failed hook receives nothing');
  t.match((await api.call('POST', `${gonePath}:ping`)).json, { innerError: { code: 'InvalidPrerequisite' } });
  t.match((await api.call('POST', `${gonePath}/deliveries:redeliver`)).json, { innerError: { code: 'InvalidPrerequisite' } });

  // PATCH re-enables (after the challenge).
  goneReceiver.answer = () => ({ status: 200 });
  t.equal((await api.call('PATCH', gonePath, {}, 'application/merge-patch+json')).status, 200);
  t.match(await api.settled(goneHook.self), { status: 'Succeeded' }, 'the hook re-enabled');
  t.notOk('error' in (await api.call('GET', gonePath)).json.properties);
  t.equal(goneReceiver.challenges().length, 2, 'the PATCH ran the challenge again');
});

t.test('restart with deliveries pending: they arrive after it, same ids; hooks and content URLs survive', async (t) => {
  const receiver = await hookReceiver(t);
  const stateDir = t.testdir();
  // Twenty retries: the first delivery must still be pending when the service stops after
  // the job (under emulation the job and the stop take longer: the schedule is scaled).
  const env = {
    EARSHOT_RETRY_SCHEDULE: Array(20)
      .fill(`${budget(100)}ms`)
      .join(','),
  };
  const first = await startApp(t, env, stateDir);
  let api = client(first);
  const hook = (await api.createHook({ displayName: 'r', webUrl: receiver.url, events: allTranscriptionEvents, properties: { secret: 'rs' } })).json;
  await api.settled(hook.self);
  receiver.answer = () => ({ status: 503 });
  const id = await api.submit();
  await waitForJob(first.base, first.auth, id, budget(60_000));
  const contentUrl = new URL((await api.call('GET', `/speechtotext/v3.1/transcriptions/${id}/files`)).json.values[0].links.contentUrl);
  await receiver.until((e) => e.length >= 1, 'a failed attempt');
  await first.app.stop();
  const tried = new Set(receiver.events().map((e) => e.headers['webhook-id']));
  const before = receiver.events().length;

  receiver.answer = () => ({ status: 200 });
  const second = await startApp(t, env, stateDir);
  api = client(second);
  const after = (await receiver.until((e) => e.length >= before + 3, 'the three deliveries after the restart', budget(20_000))).slice(before);
  t.same(after.map(eventOf).sort(), ['TranscriptionCompletion', 'TranscriptionCreation', 'TranscriptionProcessing']);
  t.equal(new Set(after.map((e) => e.headers['webhook-id'])).size, 3);
  t.ok(
    after.some((e) => tried.has(e.headers['webhook-id'])),
    'deliveries tried before the restart keep their ids',
  );
  for (const e of after) t.equal(e.headers['x-microsoftspeechservices-signature'], hmac256('rs', e.body));
  t.match((await api.call('GET', api.hookPath(hook.self))).json, { displayName: 'r', status: 'Succeeded' });
  const again = await fetch(`${second.base}${contentUrl.pathname}${contentUrl.search}`);
  t.equal(again.status, 200, 'a content URL signed before the restart still works');
});
