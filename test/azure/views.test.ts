// Azure entities as clients see them: formats, web hooks (no secrets), transcriptions of
// either dialect, files and the result file made from a stored transcript.
import t from 'tap';

import { azureErrorBody, AzureError } from '../../src/azure/errors.js';
import {
  ContentUrls,
  fileId,
  fileView,
  lexical,
  transcriptionFiles,
  transcriptionReport,
  transcriptionResult,
  v2TranscriptionResult,
} from '../../src/azure/files.js';
import { batchStatus, jobEntity } from '../../src/azure/transcriptions.js';
import type { ApiForm } from '../../src/azure/versions.js';
import { azureDateTime, isoDuration, jobLocale, transcriptionView, v21HookView, v21TranscriptionView, v2Duration, webHookView } from '../../src/azure/views.js';
import type { Webhook } from '../../src/azure/webhooks.js';
import { AppError } from '../../src/errors.js';
import { job, t0, transcript } from '../helpers/azure-fixtures.js';

const base = 'http://pi.local:8080';
const v31: ApiForm = { origin: base, version: 'v3.1' };
const dated: ApiForm = { origin: base, version: '2024-11-15' };
const view = (j: ReturnType<typeof job>, form = v31) => transcriptionView(jobEntity(j), form);
const asked = {
  wordLevelTimestampsEnabled: true,
  displayFormWordLevelTimestampsEnabled: false,
  punctuationMode: 'Automatic',
  profanityFilterMode: 'None',
  timeToLiveMs: 0,
};

const hook: Webhook = {
  id: '2e856efe-ef53-465a-a632-6a084c1d349d',
  apiVersion: 'v3.1',
  webUrl: 'http://10.0.0.5/cb',
  displayName: 'TranscriptionCompletionWebHook',
  description: 'desc',
  events: ['transcriptionCompletion'],
  secret: 'super-secret-value',
  active: true,
  status: 'Succeeded',
  createdAt: t0,
  lastActionAt: t0 + 1500,
  baseUrl: base,
};

t.test('formats: Azure date-times to the second, ISO 8601 durations, v2 hh:mm:ss', async (t) => {
  t.equal(azureDateTime(t0), '2024-05-01T12:00:00Z');
  t.equal(isoDuration(11040), 'PT11.04S');
  t.equal(isoDuration(0), 'PT0S');
  t.equal(isoDuration(62500), 'PT1M2.5S');
  t.equal(isoDuration(7_200_000), 'PT2H');
  t.equal(isoDuration(7 * 86_400_000), 'P7D');
  t.equal(isoDuration(86_400_000 + 3_661_001), 'P1DT1H1M1.001S');
  t.equal(v2Duration(2400), '00:00:02');
  t.equal(v2Duration(3_723_999), '01:02:03');
});

t.test('v3.1 WebHook: links the right way round, apiVersion, error, no secret', async (t) => {
  const hookView = webHookView({ ...hook, status: 'Failed', error: { code: 'InvalidCallbackUri', message: 'nope' } }, v31);
  const self = `${base}/speechtotext/v3.1/webhooks/${hook.id}`;
  t.same(hookView, {
    self,
    links: { ping: `${self}:ping`, test: `${self}:test` },
    properties: { apiVersion: 'v3.1', error: { code: 'InvalidCallbackUri', message: 'nope' } },
    webUrl: hook.webUrl,
    displayName: hook.displayName,
    description: 'desc',
    events: { transcriptionCompletion: true },
    createdDateTime: '2024-05-01T12:00:00Z',
    lastActionDateTime: '2024-05-01T12:00:01Z',
    status: 'Failed',
  });
  t.notMatch(JSON.stringify(hookView), /super-secret-value/);
  t.match(webHookView(hook, { origin: base, version: 'v3.0' }).links, { ping: `${base}/speechtotext/v3.0/webhooks/${hook.id}/ping` }, "v3.0's actions");
  t.match(webHookView(hook, dated), {
    self: `${base}/speechtotext/webhooks/${hook.id}?api-version=2024-11-15`,
    links: { ping: `${base}/speechtotext/webhooks/${hook.id}:ping?api-version=2024-11-15` },
  });
  t.notMatch(JSON.stringify(v21HookView(hook)), /super-secret-value/);
});

t.test('v2.1 hook: configuration.url, events as given or derived, active, name', async (t) => {
  t.match(v21HookView(hook), {
    id: hook.id,
    configuration: { url: hook.webUrl },
    events: ['TranscriptionCompletion'],
    active: true,
    name: hook.displayName,
    properties: {},
    status: 'Succeeded',
  });
  const v21: Webhook = {
    ...hook,
    apiVersion: 'v2.1',
    v21Events: ['TranscriptionCompletion', 'EndpointDataCollectionCompletion'],
    active: false,
    properties: { Active: 'False' },
  };
  t.match(v21HookView(v21), { events: ['TranscriptionCompletion', 'EndpointDataCollectionCompletion'], active: false, properties: { Active: 'False' } });
  t.same(Object.keys(v21HookView(v21).configuration), ['url']);
});

t.test('transcription entity for each job status', async (t) => {
  const self = `${base}/speechtotext/v3.1/transcriptions/job-1`;
  t.same(view(job()), {
    id: 'job-1',
    self,
    links: { files: `${self}/files` },
    properties: {
      diarizationEnabled: false,
      wordLevelTimestampsEnabled: true,
      displayFormWordLevelTimestampsEnabled: false,
      channels: [0],
      punctuationMode: 'Automatic',
      profanityFilterMode: 'None',
      timeToLive: 'P7D',
    },
    lastActionDateTime: '2024-05-01T12:00:05Z',
    status: 'NotStarted',
    createdDateTime: '2024-05-01T12:00:00Z',
    locale: 'en-US',
    displayName: 'job-1',
  });
  t.equal(view(job({ status: 'processing' })).status, 'Running');
  const done = view(job({ status: 'completed', audioDurationMs: 11040, userToken: 'my job' }));
  t.match(done, { status: 'Succeeded', properties: { duration: 'PT11.04S' }, displayName: 'my job' });
  t.notOk('error' in done.properties);
  const failed = view(job({ status: 'failed', error: { code: 'ERR_AUDIO_CORRUPT', message: 'audio is corrupt' } }));
  t.match(failed, { status: 'Failed', properties: { error: { code: 'InvalidData', message: 'audio is corrupt' } } });
  t.match(view(job({ status: 'failed', error: { code: 'ERR_INTERRUPTED', message: 'x' } })).properties, {
    error: { code: 'InternalError' },
  });
  const masked = job({ output: { timestamps: false, wordConfidence: false, profanity: 'masked' } });
  t.equal(view(masked).properties.profanityFilterMode, 'Masked', "an IBM job's profanity_filter=true");
  t.equal(v21TranscriptionView(jobEntity(masked), []).properties.ProfanityFilterMode, 'Masked');
  t.equal(jobLocale(job({ model: 'de-DE_Multimedia', options: { language: 'de' } })), 'de-DE');
  t.equal(jobLocale(job({ model: 'en-US_BroadbandModel', options: { language: 'auto' } })), 'en-US');
  t.equal(jobLocale(job({ model: 'en-US_BroadbandModel', options: { language: 'fr' } })), 'fr');
});

t.test('v2.1 transcription entity: the seed payload shape', async (t) => {
  const v = v21TranscriptionView(jobEntity(job({ status: 'completed', audioDurationMs: 2400 })), ['http://x/content']);
  t.match(v, {
    results: [{ resultUrls: [{ fileName: 'transcription_0', resultUrl: 'http://x/content' }] }],
    statusMessage: 'None.',
    id: 'job-1',
    status: 'Succeeded',
    locale: 'en-US',
    name: 'job-1',
    properties: { AddWordLevelTimestamps: 'True', Duration: '00:00:02' },
  });
  t.match(v21TranscriptionView(jobEntity(job({ status: 'failed', error: { code: 'E', message: 'broken' } })), []), {
    results: [],
    statusMessage: 'broken',
    status: 'Failed',
  });
});

t.test('result file: Azure transcription JSON with ticks, nBest and words', async (t) => {
  const done = job({ status: 'completed', audioDurationMs: 11040 });
  const result = transcriptionResult(done, transcript, 'src', v31, asked);
  t.match(result, {
    source: 'src',
    timestamp: '2024-05-01T12:00:05Z',
    durationInTicks: 110_400_000,
    duration: 'PT11.04S',
    combinedRecognizedPhrases: [{ channel: 0, lexical: 'hello world and so on', itn: 'hello world and so on', display: 'Hello, world. And so on.' }],
  });
  t.equal(result.recognizedPhrases.length, 2, 'empty segments are left out');
  t.same(result.recognizedPhrases[0], {
    recognitionStatus: 'Success',
    channel: 0,
    offset: 'PT0.76S',
    duration: 'PT1.32S',
    offsetInTicks: 7_600_000,
    durationInTicks: 13_200_000,
    nBest: [
      {
        confidence: 0.5643338,
        lexical: 'hello world',
        itn: 'hello world',
        maskedITN: 'hello world',
        display: 'Hello, world.',
        words: [
          { word: 'hello', offset: 'PT0.76S', duration: 'PT0.76S', offsetInTicks: 7_600_000, durationInTicks: 7_600_000, confidence: 0.9 },
          { word: 'world', offset: 'PT1.52S', duration: 'PT0.56S', offsetInTicks: 15_200_000, durationInTicks: 5_600_000, confidence: 0.8 },
        ],
      },
    ],
  });
  const noWords = transcriptionResult(job({ status: 'completed' }), transcript, 'src', v31, { ...asked, wordLevelTimestampsEnabled: false });
  t.notOk('words' in noWords.recognizedPhrases[0]!.nBest[0]!, 'words only with word-level timestamps');
  t.equal(lexical("It's a well-known -- test, isn't it?"), "it's a well-known test isn't it");
});

t.test('files: result and report once finished, stable ids, signed content URLs', async (t) => {
  const files_ = (j: ReturnType<typeof job>) => transcriptionFiles(jobEntity(j), asked, () => transcript, v31);
  t.same(files_(job()), [], 'nothing before the job finished');
  const done = job({ status: 'completed', audioDurationMs: 11040 });
  const files = files_(done);
  t.same(
    files.map((f) => f.kind),
    ['Transcription', 'TranscriptionReport'],
  );
  t.match(files[1]!.content, { successfulTranscriptionsCount: 1, failedTranscriptionsCount: 0, details: [{ status: 'Succeeded' }] });
  const failed = job({ status: 'failed', error: { code: 'ERR_AUDIO_CORRUPT', message: 'bad' } });
  t.same(
    files_(failed).map((f) => f.kind),
    ['TranscriptionReport'],
  );
  t.match(transcriptionReport(jobEntity(failed), v31), {
    failedTranscriptionsCount: 1,
    details: [{ source: `${base}/speechtotext/v3.1/transcriptions/job-1`, status: 'Failed', errorKind: 'InvalidData', errorMessage: 'bad' }],
  });
  t.equal(view(failed).properties.error?.code, 'InvalidData', 'the same code in properties.error and the report');

  const id = fileId('job-1', 'Transcription');
  t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
  t.equal(fileId('job-1', 'Transcription'), id, 'stable');
  t.not(fileId('job-1', 'TranscriptionReport'), id);

  let now = t0;
  const urls = new ContentUrls(() => now);
  urls.setKey(Buffer.from('k'));
  const url = new URL(urls.url(v31, 'job-1', id, t0 + 60_000));
  t.equal(url.pathname, `/speechtotext/v3.1/transcriptions/job-1/files/${id}/content`);
  t.doesNotThrow(() => urls.verify('job-1', id, url.searchParams));
  t.throws(() => urls.verify('job-2', id, url.searchParams), { code: 'ERR_UNAUTHORIZED', message: /not valid/ });
  t.throws(() => urls.verify('job-1', id, new URLSearchParams()), { code: 'ERR_UNAUTHORIZED', message: /not signed/ });
  const tampered = new URLSearchParams(url.searchParams);
  tampered.set('se', String(Number(tampered.get('se')) + 1000));
  t.throws(() => urls.verify('job-1', id, tampered), { code: 'ERR_UNAUTHORIZED' });
  now = t0 + 120_000;
  t.throws(() => urls.verify('job-1', id, url.searchParams), { code: 'ERR_UNAUTHORIZED', message: /expired/ });

  t.same(fileView('job-1', files[0]!, v31, 'http://c'), {
    self: `${base}/speechtotext/v3.1/transcriptions/job-1/files/${id}`,
    name: 'contenturl_0.json',
    kind: 'Transcription',
    properties: { size: Buffer.byteLength(JSON.stringify(files[0]!.content)) },
    createdDateTime: '2024-05-01T12:00:05Z',
    links: { contentUrl: 'http://c' },
  });
});

t.test('errors: Azure codes with innerError where a detailed code applies', async (t) => {
  t.same(azureErrorBody(new AzureError('ERR_INVALID_ARGUMENT', 'm', 'InvalidWebHookEventKind')), {
    status: 400,
    body: { code: 'InvalidRequest', message: 'm', innerError: { code: 'InvalidWebHookEventKind', message: 'm' } },
  });
  t.same(azureErrorBody(new AppError('ERR_NOT_FOUND', 'gone')), { status: 404, body: { code: 'NotFound', message: 'gone' } });
  t.same(azureErrorBody(new AppError('ERR_UNAUTHORIZED', 'who')).body, { code: 'Unauthorized', message: 'who' });
  t.match(azureErrorBody(new AppError('ERR_JOB_BUSY', 'busy')).body, { code: 'InvalidRequest', innerError: { code: 'DeleteNotAllowed' } });
  t.match(azureErrorBody(new AppError('ERR_UNSUPPORTED_MEDIA_TYPE', 'x')), {
    status: 415,
    body: { code: 'UnsupportedMediaType', innerError: { code: 'InvalidRequestBodyFormat' } },
  });
  t.match(azureErrorBody(new AppError('ERR_STORE', 'x')), { status: 500, body: { code: 'InternalServerError', innerError: { code: 'UnexpectedError' } } });
  t.same(azureErrorBody(new AppError('ERR_QUEUE_FULL', 'x')), { status: 503, body: { code: 'ServiceUnavailable', message: 'x' } });
  t.equal(azureErrorBody(new AppError('ERR_ABORTED', 'x')).status, 400);
});

t.test('the dated versions: timeToLiveHours and durationMilliseconds; no v3-only names', async (t) => {
  const done = view(job({ status: 'completed', audioDurationMs: 11040 }), dated);
  t.match(done.properties, { timeToLiveHours: 168, durationMilliseconds: 11040 });
  t.notOk('timeToLive' in done.properties || 'duration' in done.properties || 'diarizationEnabled' in done.properties);
  t.equal(done.self, `${base}/speechtotext/transcriptions/job-1?api-version=2024-11-15`);
  t.notOk('displayFormWordLevelTimestampsEnabled' in view(job(), { origin: base, version: 'v3.0' }).properties, 'added in v3.1');
  const result = transcriptionResult(job({ status: 'completed' }), transcript, 'src', dated, { ...asked, displayFormWordLevelTimestampsEnabled: true });
  t.equal(result.durationMilliseconds, 11040);
  t.same(result.recognizedPhrases[0]!.nBest[0]!.displayWords![0], {
    displayText: 'Hello,',
    offset: 'PT0.76S',
    duration: 'PT0.76S',
    offsetInTicks: 7_600_000,
    durationInTicks: 7_600_000,
  });
});

t.test("a batch's status comes from its jobs; v2's result format", async (t) => {
  const states = (...statuses: Array<'waiting' | 'processing' | 'completed' | 'failed'>) => batchStatus(statuses.map((status) => job({ status })));
  t.equal(states('waiting', 'waiting'), 'NotStarted');
  t.equal(states('waiting', 'completed'), 'Running', 'one done, one to go');
  t.equal(states('processing', 'waiting'), 'Running');
  t.equal(states('completed', 'failed'), 'Succeeded', 'partly failed: Succeeded, the report says what failed');
  t.equal(states('failed', 'failed'), 'Failed');

  const v2 = v2TranscriptionResult(transcript, asked);
  const [file] = v2.AudioFileResults;
  t.match(file, {
    AudioFileName: 'Channel.0.wav',
    AudioLengthInSeconds: 11.04,
    CombinedResults: [{ ChannelNumber: '0', Display: 'Hello, world. And so on.' }],
  });
  t.same(file!.SegmentResults[0]!.NBest[0]!.Words![0], {
    Word: 'hello',
    Offset: 7_600_000,
    Duration: 7_600_000,
    OffsetInSeconds: 0.76,
    DurationInSeconds: 0.76,
    Confidence: 0.9,
  });
  t.match(file!.SegmentResults[0], { RecognitionStatus: 'Success', Offset: 7_600_000, Duration: 13_200_000, OffsetInSeconds: 0.76, DurationInSeconds: 1.32 });
});
