// Azure batch transcription end to end, as clients of each API version write it: create
// (v3.x `POST /transcriptions`, dated `transcriptions:submit`) with content URLs that the
// device fetches from a real server on loopback, poll, files, result and report, PATCH,
// list, delete; path variants; content URLs that 404, redirect, point outside the
// allow-list or are too large; and the web hooks a batch fires.
import t, { type Test } from 'tap';

import { apiKey, startApp, type RunningApp } from '../helpers/app.js';
import { startContentHost } from '../helpers/content-host.js';
import { wav } from '../helpers/pcm.js';
import { until } from '../helpers/poll.js';
import { startReceiver } from '../helpers/receiver.js';

const key = { 'Ocp-Apim-Subscription-Key': apiKey };

/** A recorder or NAS on the LAN: serves recordings, a 404, a redirect and a file too large to take. */
async function contentServer(t: Test) {
  const files: Record<string, Buffer> = { '/one.wav': wav(1), '/two.wav': wav(2), '/big.wav': wav(6) };
  const host = await startContentHost(t, (req, res) => {
    if (req.url === '/moved.wav') return res.writeHead(302, { Location: '/one.wav' }).end();
    const body = files[req.url!];
    if (!body) return res.writeHead(404).end('not here');
    res.writeHead(200, { 'Content-Type': 'audio/wav', 'Content-Length': body.length }).end(body);
  });
  return { url: (path: string) => `${host.base}${path}`, ipv6: (path: string) => `http://[::1]:${host.port}${path}`, requests: host.requests };
}

function client(app: RunningApp) {
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(path.startsWith('http') ? path : `${app.base}${path}`, {
      method,
      headers: { ...key, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as any) : undefined };
  };
  /** Polls the transcription's `self` as a client does until it is done. */
  const settled = async (self: string) => {
    let entity: any;
    await until(
      async () => {
        entity = (await call('GET', self)).json;
        return entity.status === 'Succeeded' || entity.status === 'Failed';
      },
      60_000,
      'the transcription to finish',
    );
    return entity;
  };
  const files = async (entity: any) => (await call('GET', entity.links.files)).json.values as any[];
  /** A file's content, fetched without the key (the signed URL is the credential). */
  const content = async (file: any) => (await (await fetch(file.links.contentUrl)).json()) as any;
  return { call, settled, files, content };
}

const definition = (contentUrls: string[], extra: Record<string, unknown> = {}) => ({
  displayName: 'batch',
  locale: 'en-US',
  contentUrls,
  ...extra,
});

t.test('v3.1: create → poll → files → result and report; one job per content URL, a 404 fails its file only', async (t) => {
  const content = await contentServer(t);
  const app = await startApp(t);
  const api = client(app);

  const created = await api.call(
    'POST',
    '/speechtotext/v3.1/transcriptions',
    definition([content.url('/one.wav'), content.url('/missing.wav')], {
      description: 'two recordings',
      customProperties: { case: '42' },
      properties: { wordLevelTimestampsEnabled: true, displayFormWordLevelTimestampsEnabled: true, profanityFilterMode: 'None', timeToLive: 'PT12H' },
    }),
  );
  t.equal(created.status, 201, JSON.stringify(created.json));
  const self = created.json.self as string;
  t.equal(created.headers.get('location'), self);
  t.match(self, new RegExp(`^${app.base}/speechtotext/v3.1/transcriptions/[0-9a-f-]{36}$`));
  t.match(created.json, {
    displayName: 'batch',
    description: 'two recordings',
    customProperties: { case: '42' },
    locale: 'en-US',
    links: { files: `${self}/files` },
    properties: { wordLevelTimestampsEnabled: true, profanityFilterMode: 'None', timeToLive: 'PT12H', diarizationEnabled: false },
  });
  t.ok(['NotStarted', 'Running'].includes(created.json.status));

  const done = await api.settled(self);
  t.equal(done.status, 'Succeeded', 'one of two recordings succeeded');
  t.match(done.properties, { duration: 'PT1S' });
  t.notOk(done.properties.error, 'a partly failed batch succeeds; its report says what failed');
  t.same(
    content.requests.filter((r) => r !== '/missing.wav'),
    ['/one.wav'],
    'each content URL fetched once',
  );

  const files = await api.files(done);
  t.same(
    files.map((f) => [f.kind, f.name]),
    [
      ['Transcription', 'contenturl_0.json'],
      ['TranscriptionReport', 'report.json'],
    ],
  );
  const result = await api.content(files[0]);
  t.match(result, { source: content.url('/one.wav'), durationInTicks: 10_000_000, duration: 'PT1S', combinedRecognizedPhrases: [{ channel: 0 }] });
  t.notOk('durationMilliseconds' in result, "v3.1's result has no durationMilliseconds");
  for (const phrase of result.recognizedPhrases) {
    t.ok(Array.isArray(phrase.nBest[0].words) && Array.isArray(phrase.nBest[0].displayWords), 'words and displayWords as asked');
  }
  const report = await api.content(files[1]);
  t.match(report, {
    successfulTranscriptionsCount: 1,
    failedTranscriptionsCount: 1,
    details: [
      { source: content.url('/one.wav'), status: 'Succeeded' },
      { source: content.url('/missing.wav'), status: 'Failed', errorKind: 'InaccessibleCustomerStorage', errorMessage: /404/ },
    ],
  });

  // PATCH the names; the rest is read-only.
  const patched = await api.call('PATCH', self, { displayName: 'renamed', description: null, customProperties: { case: '43' } });
  t.equal(patched.status, 200);
  t.match(patched.json, { displayName: 'renamed', customProperties: { case: '43' } });
  t.notOk('description' in patched.json);

  // Delete: 204, gone, 204 again.
  t.equal((await api.call('DELETE', self)).status, 204);
  t.equal((await api.call('GET', self)).status, 404);
  t.equal((await api.call('DELETE', self)).status, 204, 'successfully deleted or did not exist');
  t.equal((await fetch(files[0].links.contentUrl)).status, 404, 'its files went with it');
});

t.test('every version: its create, its links, its field names; locales per version', async (t) => {
  const content = await contentServer(t);
  const app = await startApp(t);
  const api = client(app);

  for (const [version, create] of [
    ['v3.0', '/speechtotext/v3.0/transcriptions'],
    ['v3.2', '/speechtotext/v3.2/transcriptions'],
    ['2024-11-15', '/speechtotext/transcriptions:submit?api-version=2024-11-15'],
    ['2025-10-15', '/speechtotext/transcriptions:submit?api-version=2025-10-15'],
  ] as const) {
    const dated = !version.startsWith('v');
    const properties = dated ? { timeToLiveHours: 6, wordLevelTimestampsEnabled: true } : { timeToLive: 'P1D', wordLevelTimestampsEnabled: true };
    const created = await api.call('POST', create, definition([content.url('/two.wav')], { properties }));
    t.equal(created.status, 201, `${version}: ${JSON.stringify(created.json)}`);
    const self = created.json.self as string;
    const id = /transcriptions\/([0-9a-f-]{36})/.exec(self)![1];
    if (dated) {
      t.equal(self, `${app.base}/speechtotext/transcriptions/${id}?api-version=${version}`);
      t.equal(created.json.links.files, `${app.base}/speechtotext/transcriptions/${id}/files?api-version=${version}`);
    } else {
      t.equal(self, `${app.base}/speechtotext/${version}/transcriptions/${id}`);
    }
    const done = await api.settled(self);
    t.equal(done.status, 'Succeeded', version);
    if (dated) {
      t.match(done.properties, { timeToLiveHours: 6, durationMilliseconds: 2000 });
      t.notOk('timeToLive' in done.properties || 'duration' in done.properties || 'diarizationEnabled' in done.properties, `${version}: no v3 names`);
    } else {
      t.match(done.properties, { timeToLive: 'P1D', duration: 'PT2S' });
      t.equal('displayFormWordLevelTimestampsEnabled' in done.properties, version !== 'v3.0', 'v3.0 has no display-form words');
    }
    const files = await api.files(done);
    t.equal(files.length, 2);
    if (dated) t.match(files[0].self, new RegExp(`\\?api-version=${version}$`));
    const result = await api.content(files[0]);
    t.equal(result.durationMilliseconds, dated ? 2000 : undefined, `${version}: durationMilliseconds in the result`);
    t.ok(result.recognizedPhrases.every((p: any) => p.offsetInTicks >= 0 && Array.isArray(p.nBest[0].words)));
  }

  const v3 = await api.call('GET', '/speechtotext/v3.1/transcriptions/locales');
  t.ok(Array.isArray(v3.json) && v3.json.includes('en-US') && v3.json.includes('en-GB'), 'v3.x: a list');
  t.notOk(v3.json.includes('de-DE'), 'an English-only model serves English locales only');
  const dated = await api.call('GET', '/speechtotext/transcriptions/locales?api-version=2025-10-15');
  t.same(Object.keys(dated.json).sort(), ['Submit', 'Transcribe']);

  // Listing: every version sees the same transcriptions, links in its own form.
  const list = await api.call('GET', '/speechtotext/transcriptions?api-version=2024-11-15&top=3');
  t.equal(list.json.values.length, 3);
  t.match(list.json['@nextLink'], /api-version=2024-11-15/);
  t.match(list.json['@nextLink'], /skip=3/);
  const rest = await api.call('GET', list.json['@nextLink']);
  t.equal(rest.json.values.length, 1);
  t.notOk(rest.json['@nextLink']);
});

t.test("v2.0/v2.1 as Microsoft's v2 batch sample writes it: 202 with Location, poll, resultsUrls.channel_0 in v2's format", async (t) => {
  const content = await contentServer(t);
  const app = await startApp(t);
  const api = client(app);
  const created = await api.call('POST', '/api/speechtotext/v2.0/Transcriptions/', {
    recordingsUrl: content.url('/two.wav'),
    models: [],
    locale: 'en-US',
    name: 'v2 sample',
    description: 'from the sample',
    properties: { PunctuationMode: 'DictatedAndAutomatic', ProfanityFilterMode: 'Masked', AddWordLevelTimestamps: 'True' },
  });
  t.equal(created.status, 202);
  const location = created.headers.get('location')!;
  t.match(location, new RegExp(`^${app.base}/api/speechtotext/v2\\.0/transcriptions/[0-9a-f-]{36}$`));
  let entity: any;
  await until(
    async () => {
      entity = (await api.call('GET', location)).json;
      return entity.status === 'Succeeded' || entity.status === 'Failed';
    },
    60_000,
    'the v2 transcription',
  );
  t.match(entity, {
    name: 'v2 sample',
    description: 'from the sample',
    locale: 'en-US',
    status: 'Succeeded',
    statusMessage: 'None.',
    recordingsUrl: content.url('/two.wav'),
    properties: { AddWordLevelTimestamps: 'True', ProfanityFilterMode: 'Masked', Duration: '00:00:02' },
  });
  const v2 = (await (await fetch(entity.resultsUrls.channel_0)).json()) as any;
  t.match(v2.AudioFileResults[0], { AudioLengthInSeconds: 2, SegmentResults: Array });
  t.ok(
    v2.AudioFileResults[0].SegmentResults.every((s: any) => Array.isArray(s.NBest[0].Words)),
    'Words as asked',
  );
  const list = await api.call('GET', '/api/speechtotext/v2.1/transcriptions');
  t.ok(Array.isArray(list.json) && list.json.some((e: any) => e.id === entity.id), "v2's list is an array");
  t.equal((await api.call('DELETE', location)).status, 204);
  t.equal((await api.call('GET', location)).status, 404);
  const diarized = await api.call('POST', '/api/speechtotext/v2.1/transcriptions', {
    recordingsUrl: content.url('/one.wav'),
    locale: 'en-US',
    name: 'x',
    properties: { AddDiarization: 'True' },
  });
  t.match(diarized, { status: 400, json: { message: /Diarization/ } });
});

t.test('paths as clients write them: case, trailing slash, v3.0 actions; versions that do not exist', async (t) => {
  const content = await contentServer(t);
  const receiver = await startReceiver(t, undefined, { path: '/hook' });
  const app = await startApp(t);
  const api = client(app);

  // Microsoft's own sample posts to `speechtotext/v3.0/webHooks/`.
  const hook = await api.call('POST', '/speechtotext/v3.0/webHooks/', {
    displayName: 'sample',
    webUrl: receiver.url,
    events: { transcriptionCompletion: true },
  });
  t.equal(hook.status, 201, JSON.stringify(hook.json));
  t.match(hook.json.links, { ping: /\/speechtotext\/v3\.0\/webhooks\/[0-9a-f-]+\/ping$/ });
  await until(async () => (await api.call('GET', hook.json.self)).json.status === 'Succeeded', 10_000, 'the challenge');
  t.equal((await api.call('POST', hook.json.links.ping)).status, 202, "v3.0's /ping");
  t.equal((await api.call('POST', `${hook.json.self.replace('/v3.0/', '/v3.1/')}:ping`)).status, 202, "v3.1's :ping of the same hook");
  t.equal((await api.call('GET', hook.json.self.replace('/webhooks/', '/WebHooks/'))).status, 200, 'segments in any case');
  t.equal((await api.call('GET', `${hook.json.self}/`)).status, 200, 'a trailing slash');

  const created = await api.call('POST', '/SpeechToText/V3.2/Transcriptions/', definition([content.url('/one.wav')]));
  t.equal(created.status, 201, 'create under an odd spelling');
  t.match(created.json.self, /\/speechtotext\/v3\.2\/transcriptions\//, 'links in the canonical spelling');

  for (const [path, status, inner] of [
    ['/speechtotext/transcriptions?api-version=2023-01-01', 400, 'UnsupportedApiVersion'],
    ['/speechtotext/transcriptions', 400, 'MissingApiVersion'],
    ['/speechtotext/v3.3/transcriptions', 404, undefined],
  ] as const) {
    const res = await api.call('GET', path);
    t.equal(res.status, status, path);
    t.match(res.json, { code: status === 400 ? 'InvalidRequest' : 'NotFound', message: String });
    if (inner) t.equal(res.json.innerError.code, inner, path);
  }
  t.equal((await api.call('POST', '/speechtotext/v3.1/transcriptions:submit', definition([content.url('/one.wav')]))).status, 404, 'no :submit in v3.1');
  t.equal(
    (await api.call('POST', '/speechtotext/transcriptions?api-version=2024-11-15', definition([content.url('/one.wav')]))).status,
    404,
    'no POST /transcriptions in 2024-11-15',
  );
});

t.test('content URLs the device will not or cannot fetch fail their file with Azure codes; bad definitions are 400s', async (t) => {
  const content = await contentServer(t);
  const app = await startApp(t, { EARSHOT_MAX_UPLOAD_BYTES: String(wav(3).length) });
  const api = client(app);

  const cases = [
    ['/missing.wav', 'InaccessibleCustomerStorage', /404/],
    ['/moved.wav', 'InaccessibleCustomerStorage', /redirect/i],
    ['/big.wav', 'InvalidPayload', /limit|large/i],
  ] as const;
  for (const [path, code, message] of cases) {
    const created = await api.call('POST', '/speechtotext/v3.1/transcriptions', definition([content.url(path)]));
    t.equal(created.status, 201);
    const done = await api.settled(created.json.self);
    t.match(done, { status: 'Failed', properties: { error: { code, message } } }, path);
    const [report] = await api.files(done);
    t.match(await api.content(report), { failedTranscriptionsCount: 1, details: [{ status: 'Failed', errorKind: code }] }, `${path}: one vocabulary`);
  }
  // ::1 is loopback, but not in the allow-list (127.0.0.0/8): refused when connecting.
  const outside = await api.call('POST', '/speechtotext/v3.1/transcriptions', definition([content.ipv6('/one.wav')]));
  t.match(await api.settled(outside.json.self), { status: 'Failed', properties: { error: { code: 'InvalidRecordingsUri' } } });
  t.ok(content.requests.includes('/moved.wav'), 'the redirect was asked for');
  t.notOk(content.requests.includes('/one.wav'), 'but not followed (and ::1 never reached)');

  const bad = async (body: unknown, inner: string, message: RegExp) => {
    const res = await api.call('POST', '/speechtotext/v3.1/transcriptions', body);
    t.equal(res.status, 400, JSON.stringify(body));
    t.match(res.json, { code: 'InvalidRequest', message, innerError: { code: inner } });
  };
  const container = 'https://x.blob.core.windows.net/c?sv=1';
  await bad({ displayName: 'c', locale: 'en-US', contentContainerUrl: container }, 'InvalidParameterValue', /not supported on the device/);
  await bad({ ...definition([content.url('/one.wav')]), contentContainerUrl: container }, 'OnlyOneOfUrlsOrContainerOrDataset', /not both/);
  await bad(definition([]), 'InvalidRecordingsUri', /contentUrls is required/);
  await bad(definition(['ftp://nas/a.wav']), 'InvalidRecordingsUri', /http or https/);
  await bad(definition(['http://user:pw@nas/a.wav']), 'InvalidRecordingsUri', /credentials/);
  await bad(definition([content.url('/one.wav')], { locale: 'de-DE' }), 'InvalidLocale', /de-DE/);
  await bad(definition([content.url('/one.wav')], { properties: { diarizationEnabled: true } }), 'InvalidParameterValue', /Diarization/);
  await bad(definition([content.url('/one.wav')], { properties: { timeToLive: 'P40D' } }), 'InvalidTimeToLive', /31 days/);
  await bad(definition([content.url('/one.wav')], { properties: { channels: [2] } }), 'InvalidChannels', /channels/);
  await bad(definition([content.url('/one.wav')], { properties: { profanityFilterMode: 'Loud' } }), 'InvalidParameterValue', /Masked/);
  await bad({ locale: 'en-US', contentUrls: [content.url('/one.wav')] }, 'InvalidPayload', /displayName/);
  const hours = await api.call(
    'POST',
    '/speechtotext/transcriptions:submit?api-version=2024-11-15',
    definition([content.url('/one.wav')], { properties: { timeToLiveHours: 2 } }),
  );
  t.match(hours.json, { innerError: { code: 'InvalidTimeToLive' } }, 'timeToLiveHours: 6 to 744');
});

t.test('a batch fires each web hook event once; a receiver that refuses TranscriptionCreation still gets the completion, its hook enabled', async (t) => {
  const content = await contentServer(t);
  const refusing = await startReceiver(t, (req) => ({ status: req.headers['x-microsoftspeechservices-event'] === 'TranscriptionCreation' ? 500 : 200 }), {
    path: '/hook',
  });
  const app = await startApp(t, { EARSHOT_RETRY_SCHEDULE: '50ms,50ms' });
  const api = client(app);
  const hook = await api.call('POST', '/speechtotext/webhooks?api-version=2025-10-15', {
    displayName: 'events',
    webUrl: refusing.url,
    events: { transcriptionCreation: true, transcriptionProcessing: true, transcriptionCompletion: true, transcriptionDeletion: true },
  });
  t.equal(hook.status, 201);
  await until(async () => (await api.call('GET', hook.json.self)).json.status === 'Succeeded', 10_000, 'the challenge');

  const created = await api.call(
    'POST',
    '/speechtotext/transcriptions:submit?api-version=2025-10-15',
    definition([content.url('/one.wav'), content.url('/two.wav')], { properties: { timeToLiveHours: 48 } }),
  );
  const self = created.json.self as string;
  await api.settled(self);
  const events = await refusing.until(
    (hits) => hits.some((h) => h.headers['x-microsoftspeechservices-event'] === 'TranscriptionCompletion'),
    'the completion',
    20_000,
  );
  const kinds = events.map((h) => h.headers['x-microsoftspeechservices-event']);
  t.equal(kinds.filter((k) => k === 'TranscriptionProcessing').length, 1, 'one Processing for two recordings');
  t.equal(kinds.filter((k) => k === 'TranscriptionCompletion').length, 1, 'one Completion for two recordings');
  const completion = JSON.parse(events.find((h) => h.headers['x-microsoftspeechservices-event'] === 'TranscriptionCompletion')!.body);
  t.match(completion, { self, status: 'Succeeded', properties: { durationMilliseconds: 3000, timeToLiveHours: 48 } }, "the hook's version's shape");

  t.equal((await api.call('DELETE', self)).status, 204);
  await refusing.until((hits) => hits.some((h) => h.headers['x-microsoftspeechservices-event'] === 'TranscriptionDeletion'), 'the deletion', 20_000);
  await until(
    async () => (await api.call('GET', `${hook.json.self.split('?')[0]}/deliveries?api-version=2025-10-15`)).json.values.length >= 1,
    20_000,
    'the dead letter',
  );
  const after = await api.call('GET', hook.json.self);
  t.equal(after.json.status, 'Succeeded', 'a dead letter never disables a hook');
  t.equal(refusing.events().filter((h) => h.headers['x-microsoftspeechservices-event'] === 'TranscriptionDeletion').length, 1, 'one Deletion');
});
