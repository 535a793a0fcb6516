// whisper.cpp's Silero VAD through the addon and the engine, on a VAD model generated here
// (scripts/lib/vad-writer.ts). That model is a loudness gate with Silero's architecture:
// digital silence is never speech, a 0.3 tone always is, so what VAD keeps is known.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';

import { makeVadTestModel, VAD_MODEL_FILE } from '../../scripts/make-test-model.js';
import { WhisperEngine } from '../../src/engine/whisper-engine.js';
import { loadAddon, type NativeLogLevel, type NativeSegment } from '../../src/engine/native.js';
import { createLogger } from '../../src/log.js';
import { testModelPath } from '../helpers/models.js';
import { sampleRate, testSignal, writePcm } from '../helpers/pcm.js';

const addon = loadAddon();
const fast = { threads: 2, temperatureIncrement: 0 };

const dir = await mkdtemp(path.join(tmpdir(), 'earshot-vad-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const made = await makeVadTestModel({ outDir: dir });
const vadModel = made.path;

/** Digital silence with tone bursts (the test signal: a 0.3 sine plus a little noise) at [start, end) seconds. */
function silenceWithBursts(seconds: number, bursts: Array<[number, number]>): Float32Array {
  const out = new Float32Array(seconds * sampleRate);
  for (const [start, end] of bursts) out.set(testSignal(end - start), start * sampleRate);
  return out;
}

// VAD pads speech by 30 ms and decides per 32 ms window.
const slackMs = 100;

function assertInside(t: Test, segments: Array<Pick<NativeSegment, 'start' | 'end'>>, [from, to]: [number, number]): void {
  for (const s of segments) {
    t.ok(
      s.start >= from * 1000 - slackMs && s.end <= to * 1000 + slackMs && s.start <= s.end,
      `segment ${s.start}..${s.end} ms inside the burst ${from}..${to} s`,
    );
  }
}

t.test('the generated VAD model is written once and kept while up to date', async (t) => {
  t.equal(path.basename(vadModel), VAD_MODEL_FILE);
  t.equal(made.skipped, false);
  const again = await makeVadTestModel({ outDir: dir });
  t.match(again, { skipped: true, sha256: made.sha256, bytes: made.bytes });
});

t.test('addon: VAD keeps the burst and maps segment times back to the original audio', async (t) => {
  const model = new addon.Model();
  await model.load(testModelPath());
  t.teardown(() => model.free());
  const logged: string[] = [];
  addon.setLogger((_level: NativeLogLevel, message: string) => logged.push(message), 'info');
  t.teardown(() => addon.setLogger(null));

  const result = await model.transcribe(silenceWithBursts(13, [[5, 8]]), { ...fast, vadModel }).promise;
  t.equal(result.durationMs, 13000, 'the duration is the original one');
  t.ok(result.segments.length > 0, `${result.segments.length} segments`);
  assertInside(t, result.segments, [5, 8]);
  t.ok(
    logged.some((l) => l.includes('model type: silero-16k')),
    'whisper.cpp loaded the VAD model',
  );
  t.ok(
    logged.some((l) => /VAD segment 0: start = 4\.9\d, end = 8\.0\d/.test(l)),
    'whisper.cpp found one speech segment around the burst',
  );
});

t.test('addon, interactive lane: VAD trims the silence before and after the speech (whisper_full_with_state has no VAD)', async (t) => {
  const model = new addon.Model();
  await model.load(testModelPath());
  t.teardown(() => model.free());
  const clip = silenceWithBursts(13, [[5, 8]]);
  const batch = await model.transcribe(clip, { ...fast, vadModel, words: true }).promise;
  const result = await model.transcribe(clip, { ...fast, vadModel, interactive: true, words: true }).promise;
  t.equal(result.durationMs, 13000);
  t.ok(result.segments.length > 0, `${result.segments.length} segments`);
  assertInside(t, result.segments, [5, 8]);
  for (const s of result.segments) for (const w of s.words ?? []) t.ok(w.start >= s.start && w.end <= s.end, 'word times inside their segment');
  // The same text as the batch lane, where whisper_full runs VAD; times may differ by
  // whisper's interpolation between its shortened timeline and the original one.
  t.same(
    result.segments.map((s) => s.text),
    batch.segments.map((s) => s.text),
    'the same segments as the batch lane',
  );
  for (const [i, s] of result.segments.entries()) {
    t.ok(Math.abs(s.start - batch.segments[i]!.start) <= slackMs, `segment ${i} starts where the batch lane's does`);
  }
  const silent = await model.transcribe(new Float32Array(10 * sampleRate), { ...fast, vadModel, interactive: true, language: 'auto' }).promise;
  t.same(silent.segments, [], 'silence only: no segments');
  t.equal(silent.language, 'en');
});

t.test('addon: silence only gives no segments at all', async (t) => {
  const model = new addon.Model();
  await model.load(testModelPath());
  t.teardown(() => model.free());
  const result = await model.transcribe(new Float32Array(10 * sampleRate), { ...fast, vadModel }).promise;
  t.equal(result.durationMs, 10000);
  t.same(result.segments, []);
});

t.test('addon: VAD runs per window of a spool file, with times in the whole file', async (t) => {
  const model = new addon.Model();
  await model.load(testModelPath());
  t.teardown(() => model.free());
  const file = path.join(dir, 'bursts.f32');
  writePcm(
    file,
    silenceWithBursts(40, [
      [5, 8],
      [33, 36],
    ]),
  );
  const result = await model.transcribe({ path: file }, { ...fast, vadModel, windowSeconds: 30 }).promise;
  t.equal(result.windows, 2);
  t.equal(result.durationMs, 40000);
  const first = result.segments.filter((s) => s.start < 30000);
  const second = result.segments.filter((s) => s.start >= 30000);
  t.ok(first.length > 0 && second.length > 0, `${first.length} + ${second.length} segments`);
  assertInside(t, first, [5, 8]);
  assertInside(t, second, [33, 36]);
});

t.test('addon: streamed segments under VAD, either lane, are the result (times mapped back, words shifted)', async (t) => {
  const model = new addon.Model();
  await model.load(testModelPath());
  t.teardown(() => model.free());
  const clip = silenceWithBursts(70, [
    [5, 8],
    [33, 36],
    [62, 66],
  ]);
  for (const interactive of [false, true]) {
    const streamed: NativeSegment[] = [];
    const result = await model.transcribe(clip, { ...fast, vadModel, windowSeconds: 30, words: true, interactive }, undefined, (s) => streamed.push(s)).promise;
    t.ok(result.windows >= 3, `${interactive ? 'interactive' : 'batch'}: ${result.windows} windows`);
    t.ok(
      streamed.some((s) => s.start >= 60000),
      'segments of the last window, on the whole timeline',
    );
    t.same(streamed, result.segments, interactive ? 'interactive lane' : 'batch lane');
  }
});

t.test('addon: a missing VAD model rejects with a code and leaves the model usable', async (t) => {
  // whisper.cpp keeps the first VAD model it loads for the life of the context, so this
  // needs a model that has not loaded one yet.
  const model = new addon.Model();
  await model.load(testModelPath());
  t.teardown(() => model.free());
  const logged: string[] = [];
  addon.setLogger((level: NativeLogLevel, message: string) => logged.push(`${level} ${message}`), 'warn');
  t.teardown(() => addon.setLogger(null));
  const missing = path.join(dir, 'no-such-vad.bin');
  await t.rejects(model.transcribe(silenceWithBursts(3, [[1, 2]]), { ...fast, vadModel: missing }).promise, {
    code: 'ERR_INFERENCE',
    message: /whisper_full failed/,
  });
  t.ok(
    logged.some((l) => l.startsWith('error ') && l.includes(`failed to open VAD model '${missing}'`)),
    'whisper.cpp says why',
  );
  t.equal(model.loaded, true);
  const result = await model.transcribe(silenceWithBursts(3, [[1, 2]]), { ...fast, vadModel }).promise;
  assertInside(t, result.segments, [1, 2]);
});

t.test('engine: vad: true uses the configured VAD model', async (t) => {
  const log = createLogger({ level: 'warn', write: () => undefined }).child('engine');
  const engine = new WhisperEngine({ modelPath: testModelPath(), threads: 2, nice: 0, flashAttn: true, windowSeconds: 300, vadModelPath: vadModel }, log);
  await engine.load();
  t.teardown(() => engine.close());
  t.equal(engine.validate({ vad: true }).vadModel, vadModel);
  t.equal(engine.validate({ vad: false }).vadModel, undefined);
  t.equal(engine.validate({}).vadModel, undefined);

  const transcript = await engine.transcribe(silenceWithBursts(13, [[5, 8]]), { vad: true, temperatureIncrement: 0 });
  t.equal(transcript.durationMs, 13000);
  t.ok(transcript.segments.length > 0);
  assertInside(t, transcript.segments, [5, 8]);

  const silent = await engine.transcribe(new Float32Array(10 * sampleRate), { vad: true, temperatureIncrement: 0 });
  t.same(silent.segments, []);
  t.equal(silent.text, '');
});

t.test('addon: with VAD, token and word times are on the original timeline, inside their segment', async (t) => {
  const model = new addon.Model();
  await model.load(testModelPath());
  t.teardown(() => model.free());
  const result = await model.transcribe(silenceWithBursts(13, [[5, 8]]), { ...fast, vadModel, words: true }).promise;
  t.ok(result.segments.length > 0);
  for (const s of result.segments) {
    for (const token of s.tokens) t.ok(token.start >= s.start && token.end <= s.end, `token ${token.start}..${token.end} in ${s.start}..${s.end}`);
    for (const w of s.words) t.ok(w.start >= s.start && w.end <= s.end, `word ${w.start}..${w.end} in ${s.start}..${s.end}`);
  }
});

t.test('engine: a VAD model path that is missing or not a Silero model fails load with a code', async (t) => {
  const log = createLogger({ level: 'error' });
  const config = { modelPath: testModelPath(), threads: 2, nice: 0, flashAttn: true, windowSeconds: 300 };
  await t.rejects(new WhisperEngine({ ...config, vadModelPath: path.join(dir, 'nope.bin') }, log).load(), {
    code: 'ERR_MODEL_NOT_FOUND',
  });
  await t.rejects(new WhisperEngine({ ...config, vadModelPath: testModelPath() }, log).load(), {
    code: 'ERR_MODEL_INVALID',
    message: /not a ggml Silero VAD model/,
  });
});
