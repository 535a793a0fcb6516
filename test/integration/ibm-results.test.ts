// Results as IBM returns them, through IBM's own SDK against the real service: speech only
// (no non-speech markers; silence is `results: []`), profanity masked unless
// profanity_filter=false, and warnings for the parameters earshot does not honour. The
// models are rigged to say what the test needs (test/helpers/scripted-models.ts).
import t from 'tap';

import { loadAddon, type NativeSegment, type NativeTranscribeOptions } from '../../src/engine/native.js';
import { startApp } from '../helpers/app.js';
import { ibmClient, waitForSdkJob } from '../helpers/ibm-sdk.js';
import { startReceiver } from '../helpers/receiver.js';
import { markersOnly, profanity, scriptedModel, speechAndMarkers } from '../helpers/scripted-models.js';

const seconds = 3;
/** Silence as IBM's raw audio: 16-bit little-endian PCM at 16 kHz. */
const silence = Buffer.alloc(seconds * 16000 * 2);
const l16 = 'audio/l16;rate=16000';

/** What whisper.cpp itself writes for the silence with this model (the addon, no earshot filter). */
async function whisperSegments(model: string, options: NativeTranscribeOptions = {}): Promise<NativeSegment[]> {
  const m = new (loadAddon().Model)();
  await m.load(model);
  try {
    const pcm = new Float32Array(seconds * 16000);
    return (await m.transcribe(pcm, { threads: 2, temperatureIncrement: 0, words: true, ...options }).promise).segments;
  } finally {
    m.free();
  }
}

const texts = (segments: NativeSegment[]) => segments.map((s) => s.text.trim());

t.test('non-speech markers: whisper writes them for silence, the service completes with results: []', async (t) => {
  const model = await scriptedModel(t, markersOnly);
  // The control: without whisper.cpp's suppression, every marker of the script.
  t.same(texts(await whisperSegments(model, { suppressNonSpeech: false })), ['♫', '[BLANK_AUDIO]', '*laughs* (applause)', '[ Silence ] ♪', '(upbeat music)']);
  // With it (the addon's default), the markers that start with a suppressed token are gone,
  // but "♫" in bytes gets through, again in every stretch whisper decodes.
  const suppressed = texts(await whisperSegments(model));
  t.ok(suppressed.length >= 1 && suppressed.every((text) => text === '♫'), `only ♫ gets through whisper's suppression: ${suppressed}`);

  const { base } = await startApp(t, { EARSHOT_MODEL: model });
  const stt = ibmClient(base);
  const created = await stt.createJob({ audio: silence, contentType: l16, timestamps: true, wordConfidence: true });
  t.equal(created.status, 201);
  const job = await waitForSdkJob(stt, created.result.id);
  t.equal(job.status, 'completed');
  t.same(job.results, [{ result_index: 0, results: [] }], "IBM's answer to audio without speech");
});

t.test('non-speech markers among speech: gone from the transcript, the timestamps and the word confidences', async (t) => {
  const model = await scriptedModel(t, speechAndMarkers);
  t.same(texts(await whisperSegments(model)), ['Hello *laughs* world ♫', '(applause)'], 'markers that whisper.cpp cannot suppress');

  const { base } = await startApp(t, { EARSHOT_MODEL: model });
  const stt = ibmClient(base);
  const created = await stt.createJob({ audio: silence, contentType: l16, timestamps: true, wordConfidence: true });
  const job = await waitForSdkJob(stt, created.result.id);
  const results = job.results![0]!.results!;
  t.equal(results.length, 1, 'the segment of markers only is gone');
  const alternative = results[0]!.alternatives[0]!;
  t.equal(alternative.transcript, 'Hello world ');
  t.same(
    alternative.timestamps!.map((w) => w[0]),
    ['Hello', 'world'],
  );
  t.same(
    alternative.word_confidence!.map((w) => w[0]),
    ['Hello', 'world'],
  );
  for (const [, start, end] of alternative.timestamps! as Array<[string, number, number]>) t.ok(start <= end && end <= 1, 'timings of the words kept');
});

t.test('profanity_filter: masked by default, in GET and the completed_with_results callback alike; false keeps the words', async (t) => {
  const model = await scriptedModel(t, profanity);
  const receiver = await startReceiver(t, undefined, { path: '/callback' });
  const { base, auth } = await startApp(t, { EARSHOT_MODEL: model });
  const stt = ibmClient(base);
  await stt.registerCallback({ callbackUrl: receiver.url, userSecret: 's3cret' });

  const masked = await stt.createJob({
    audio: silence,
    contentType: l16,
    callbackUrl: receiver.url,
    events: 'recognitions.completed_with_results',
    timestamps: true,
    wordConfidence: true,
  });
  t.equal(masked.status, 201);
  t.notOk(masked.result.warnings, 'profanity_filter is honoured: no warning');
  const [callback] = await receiver.posts(1);
  const notified = JSON.parse(callback!.body) as { results: unknown };
  const job = await waitForSdkJob(stt, masked.result.id);
  t.same(job.results, notified.results, 'the callback and GET /v1/recognitions/{id} agree');
  const results = job.results![0]!.results!;
  t.same(
    results.map((r) => r.alternatives[0]!.transcript),
    ['What the **** is this? ', '**** happens. '],
  );
  t.same(
    results[0]!.alternatives[0]!.timestamps!.map((w) => w[0]),
    ['What', 'the', '****', 'is', 'this?'],
  );
  t.same(
    results[1]!.alternatives[0]!.word_confidence!.map((w) => w[0]),
    ['****', 'happens.'],
  );
  const entity = (await (await fetch(`${base}/speechtotext/v3.1/transcriptions/${masked.result.id}`, { headers: auth })).json()) as any;
  t.equal(entity.properties.profanityFilterMode, 'Masked', 'Azure sees the job as masked');

  const kept = await stt.createJob({ audio: silence, contentType: l16, profanityFilter: false, timestamps: true });
  const unmasked = await waitForSdkJob(stt, kept.result.id);
  t.same(
    unmasked.results![0]!.results!.map((r) => r.alternatives[0]!.transcript),
    ['What the fuck is this? ', 'Shit happens. '],
  );
  t.same(
    unmasked.results![0]!.results![0]!.alternatives[0]!.timestamps!.map((w) => w[0]),
    ['What', 'the', 'fuck', 'is', 'this?'],
  );
});

t.test('speaker_labels, keywords, smart_formatting: 201 with IBM-style warnings, in the results too (ibm-watson SDK)', async (t) => {
  const { base } = await startApp(t);
  const stt = ibmClient(base);
  const ignored = (name: string) => `The parameter ${name} is not supported by this service and was ignored.`;
  const created = await stt.createJob({
    audio: silence,
    contentType: l16,
    speakerLabels: true,
    keywords: ['colorado', 'tornado'],
    keywordsThreshold: 0.5,
    smartFormatting: true,
  });
  t.equal(created.status, 201);
  const warnings = [ignored('keywords'), ignored('keywords_threshold'), ignored('smart_formatting'), ignored('speaker_labels')];
  t.same([...created.result.warnings!].sort(), warnings);
  const job = await waitForSdkJob(stt, created.result.id);
  t.equal(job.status, 'completed');
  t.same([...job.results![0]!.warnings!].sort(), warnings, 'the results carry them, as IBM does');

  const quiet = await stt.createJob({ audio: silence, contentType: l16, speakerLabels: false, smartFormatting: false, profanityFilter: true });
  t.equal(quiet.status, 201);
  t.notOk(quiet.result.warnings, 'values that ask for nothing earshot does not do are not warned about');
  await waitForSdkJob(stt, quiet.result.id);
});
