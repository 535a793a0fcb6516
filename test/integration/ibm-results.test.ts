// Results as IBM returns them, through IBM's own SDK against the real service: speech only
// (no non-speech markers; silence is `results: []`), and warnings for the parameters earshot
// does not honour. The models are rigged to say what the test needs
// (test/helpers/scripted-models.ts).
import t from 'tap';

import { loadAddon, type NativeSegment, type NativeTranscribeOptions } from '../../src/engine/native.js';
import { startApp } from '../helpers/app.js';
import { ibmClient, waitForSdkJob } from '../helpers/ibm-sdk.js';
import { markersOnly, scriptedModel, speechAndMarkers } from '../helpers/scripted-models.js';

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

  const quiet = await stt.createJob({ audio: silence, contentType: l16, speakerLabels: false, smartFormatting: false });
  t.equal(quiet.status, 201);
  t.notOk(quiet.result.warnings, 'values that ask for nothing earshot does not do are not warned about');
  await waitForSdkJob(stt, quiet.result.id);
});
