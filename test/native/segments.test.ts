// The addon's segment callback: each segment as soon as whisper produced it and the window
// overlap cannot replace it, in order, equal to the result's segments, before the result.
import t from 'tap';

import type { DecoderScript } from '../../scripts/lib/scripted-decoder.js';
import type { Progress } from '../../src/engine/engine.js';
import { loadAddon, type NativeModel, type NativeResult, type NativeSegment, type NativeTranscribeOptions } from '../../src/engine/native.js';
import { testModelPath } from '../helpers/models.js';
import { testSignal } from '../helpers/pcm.js';
import { scriptedModel } from '../helpers/scripted-models.js';

const addon = loadAddon();
const fast = { threads: 2, temperatureIncrement: 0, language: 'en' };

/**
 * Per 30 s window: two segments in its first half and one that starts in its second half,
 * which the window loop drops from every window but the last (the next window starts
 * where it began). Each token once (a scripted model's rule).
 */
const script: DecoderScript = [
  { start: 0, end: 2, tokens: [' Alpha', ' bravo', '.'] },
  { start: 3, end: 5, tokens: [' Charlie', ' delta', '!'] },
  { start: 20, end: 22, tokens: [' Echo', ' foxtrot', '?'] },
];

type Logged = { kind: 'segment'; segment: NativeSegment } | { kind: 'progress'; progress: Progress } | { kind: 'result'; result: NativeResult };

/** Runs one transcription with both callbacks and logs everything that came, in order. */
async function transcribe(model: NativeModel, audio: Float32Array, options: NativeTranscribeOptions): Promise<Logged[]> {
  const log: Logged[] = [];
  const task = model.transcribe(
    audio,
    options,
    (progress) => log.push({ kind: 'progress', progress }),
    (segment) => log.push({ kind: 'segment', segment }),
  );
  log.push({ kind: 'result', result: await task.promise });
  return log;
}

const streamedSegments = (log: Logged[]) => log.flatMap((e) => (e.kind === 'segment' ? [e.segment] : []));
const resultOf = (log: Logged[]) => (log.at(-1) as Extract<Logged, { kind: 'result' }>).result;

t.test('scripted windows: the streamed segments are the final ones, absolute, none twice, before the result', async (t) => {
  const model = new addon.Model();
  t.teardown(() => model.free());
  await model.load(await scriptedModel(t, script));
  // 70 s in 30 s windows: [0, 30) drops "Echo" (20 s), [20, 50) drops it at 40 s, [40, 70) is the last.
  const log = await transcribe(model, testSignal(70), { ...fast, windowSeconds: 30, words: true });
  const result = resultOf(log);
  t.equal(result.windows, 3);
  const streamed = streamedSegments(log);
  t.same(streamed, result.segments, 'streamed segments are the result, in order, tokens and words included');
  t.same(
    streamed.map((s) => [s.start, s.text.trim()]),
    [
      [0, 'Alpha bravo.'],
      [3000, 'Charlie delta!'],
      [20000, 'Alpha bravo.'],
      [23000, 'Charlie delta!'],
      [40000, 'Alpha bravo.'],
      [43000, 'Charlie delta!'],
      [60000, 'Echo foxtrot?'],
    ],
    'times on the whole audio; a dropped segment never streamed',
  );
  t.ok(streamed[0]!.words.length > 0 && streamed[0]!.tokens.every((k) => k.start >= 0), 'words and token times');
  // By events: the first segment came before the last window's progress, every segment before the result.
  const firstSegment = log.findIndex((e) => e.kind === 'segment');
  const lastWindowStarted = log.findIndex((e) => e.kind === 'progress' && e.progress.processedMs > 40000);
  t.ok(firstSegment >= 0 && firstSegment < lastWindowStarted, 'the first segment before the last window ran');
  t.equal(
    log.findIndex((e) => e.kind === 'result'),
    log.length - 1,
    'the result after every segment',
  );
});

t.test('segments split by maxSegmentLength stream as the result has them', async (t) => {
  const model = new addon.Model();
  t.teardown(() => model.free());
  await model.load(await scriptedModel(t, script));
  const log = await transcribe(model, testSignal(70), { ...fast, windowSeconds: 30, maxSegmentLength: 8, splitOnWord: true, tokenTimestamps: true });
  const result = resultOf(log);
  t.ok(result.segments.length > 7, `${result.segments.length} segments after splitting`);
  t.same(streamedSegments(log), result.segments);
});

t.test('the interactive lane streams the same segments', async (t) => {
  const model = new addon.Model();
  t.teardown(() => model.free());
  await model.load(await scriptedModel(t, script));
  const batch = await transcribe(model, testSignal(70), { ...fast, windowSeconds: 30 });
  const interactive = await transcribe(model, testSignal(70), { ...fast, windowSeconds: 30, interactive: true });
  t.same(streamedSegments(interactive), resultOf(interactive).segments);
  t.same(streamedSegments(interactive), streamedSegments(batch), 'either lane');
});

t.test('random weights, several windows: streamed == final; without the callback the result is the same', async (t) => {
  const model = new addon.Model();
  t.teardown(() => model.free());
  await model.load(testModelPath());
  const audio = testSignal(95);
  const options = { ...fast, windowSeconds: 30, tokenTimestamps: true };
  const log = await transcribe(model, audio, options);
  const result = resultOf(log);
  t.ok(result.windows >= 3, `${result.windows} windows`);
  t.ok(result.segments.length > 0, `${result.segments.length} segments`);
  t.same(streamedSegments(log), result.segments);
  const plain = await model.transcribe(audio, options).promise;
  t.same(plain.segments, result.segments, 'the callback changes nothing');
});

t.test('aborted mid-stream: rejects, no more segments, the model works on', async (t) => {
  const model = new addon.Model();
  t.teardown(() => model.free());
  await model.load(await scriptedModel(t, script));
  const segments: NativeSegment[] = [];
  let settled = false;
  const task = model.transcribe(testSignal(120), { ...fast, windowSeconds: 30 }, undefined, (segment) => {
    t.notOk(settled, 'no segment after the promise settled');
    segments.push(segment);
    task.abort();
  });
  await t.rejects(task.promise, { code: 'ERR_ABORTED' });
  settled = true;
  t.ok(segments.length >= 1 && segments.length <= 2, `${segments.length} segment(s) of the first window`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const after = await model.transcribe(testSignal(5), fast).promise;
  t.ok(after.segments.length > 0, 'the next transcription runs');
});
