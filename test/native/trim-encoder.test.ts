// Encoder trimming (EARSHOT_TRIM_ENCODER): audio shorter than 30 s runs whisper's encoder
// over the clip plus a margin instead of a padded 30 s. The addon reports the context it
// used (`audioCtx`); timestamps must stay inside the clip on both lanes, and with VAD
// (whose loudness-gate test model makes what counts as speech known).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

import { makeVadTestModel } from '../../scripts/make-test-model.js';
import { loadAddon } from '../../src/engine/native.js';
import { WhisperEngine } from '../../src/engine/whisper-engine.js';
import { createLogger } from '../../src/log.js';
import { testModelPath } from '../helpers/models.js';
import { sampleRate, testSignal, writePcm } from '../helpers/pcm.js';

const addon = loadAddon();
const fast = { threads: 2, temperatureIncrement: 0 };
const fullCtx = 1500;

const model = new addon.Model();
await model.load(testModelPath());
t.teardown(() => model.free());

t.test('a 3 s clip: the context covers 3 s plus the 2 s margin, timestamps stay inside the clip', async (t) => {
  const full = await model.transcribe(testSignal(3), fast).promise;
  t.equal(full.audioCtx, fullCtx, 'untrimmed: 30 s');
  const trimmed = await model.transcribe(testSignal(3), { ...fast, trimEncoder: true }).promise;
  t.equal(trimmed.audioCtx, 250, '(3 s + 2 s) x 50 positions per second');
  t.equal(trimmed.durationMs, 3000);
  t.ok(trimmed.segments.length > 0, `${trimmed.segments.length} segments`);
  for (const s of trimmed.segments) t.ok(s.start >= 0 && s.start <= s.end && s.end <= 3000, `segment ${s.start}..${s.end} ms inside the clip`);
  t.comment(`encoder ${full.timings.encodeMs.toFixed(1)} ms untrimmed, ${trimmed.timings.encodeMs.toFixed(1)} ms trimmed`);
});

t.test('the margin is an option, rounded up to whole positions, never beyond the model', async (t) => {
  const tight = await model.transcribe(testSignal(2.01), { ...fast, trimEncoder: true, trimMarginMs: 1000 }).promise;
  t.equal(tight.audioCtx, 151, '3.01 s is 150.5 positions: rounded up');
  const long = await model.transcribe(testSignal(29), { ...fast, trimEncoder: true }).promise;
  t.equal(long.audioCtx, fullCtx, '29 s + 2 s: capped at 30 s');
  const over = await model.transcribe(testSignal(35), { ...fast, trimEncoder: true }).promise;
  t.equal(over.audioCtx, fullCtx, 'a window of 30 s or more is not trimmed');
  const explicit = await model.transcribe(testSignal(3), { ...fast, trimEncoder: true, audioCtx: 768 }).promise;
  t.equal(explicit.audioCtx, 768, 'an explicit audioCtx wins');
  const padded = await model.transcribe(testSignal(0.2), { ...fast, trimEncoder: true }).promise;
  t.equal(padded.audioCtx, 150, 'audio padded to 1 s: 1 s + 2 s');
  t.throws(() => model.transcribe(testSignal(1), { ...fast, trimMarginMs: -1 }), RangeError);
});

t.test('only the short last window of a spool file is trimmed', async (t) => {
  const file = path.join(t.testdir(), 'audio.f32');
  writePcm(file, testSignal(40));
  const result = await model.transcribe({ path: file }, { ...fast, trimEncoder: true, windowSeconds: 30 }).promise;
  t.ok(result.windows >= 2, `${result.windows} windows`);
  t.ok(result.audioCtx < fullCtx, `the last window (under 30 s) ran with ${result.audioCtx} positions`);
  for (const s of result.segments) t.ok(s.end <= 40000, 'inside the audio');
});

t.test('the interactive lane trims too', async (t) => {
  const result = await model.transcribe(testSignal(5), { ...fast, trimEncoder: true, interactive: true }).promise;
  t.equal(result.audioCtx, 350);
  for (const s of result.segments) t.ok(s.end <= 5000, `segment ${s.start}..${s.end} ms inside the clip`);
});

t.test('with VAD, the segments stay inside the speech', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'earshot-trim-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const vadModel = (await makeVadTestModel({ outDir: dir })).path;
  // 6 s of digital silence with a tone (speech to the test VAD) from 2 to 4 s.
  const clip = new Float32Array(6 * sampleRate);
  clip.set(testSignal(2), 2 * sampleRate);
  const result = await model.transcribe(clip, { ...fast, trimEncoder: true, vadModel }).promise;
  t.equal(result.audioCtx, 400, 'sized to the clip (VAD only shortens what the encoder sees)');
  t.ok(result.segments.length > 0);
  for (const s of result.segments) t.ok(s.start >= 1900 && s.end <= 4100, `segment ${s.start}..${s.end} ms inside the tone`);
});

t.test('the engine: EARSHOT_TRIM_ENCODER becomes every transcription default, a request may turn it off', async (t) => {
  const engine = new WhisperEngine(
    { modelPath: testModelPath(), threads: 2, nice: 0, flashAttn: true, windowSeconds: 300, defaults: { trimEncoder: true } },
    createLogger({ level: 'error' }),
  );
  await engine.load();
  t.teardown(() => engine.close());
  t.equal(engine.validate({}).trimEncoder, true);
  t.equal(engine.validate({ trimEncoder: false }).trimEncoder, false);
  t.throws(() => engine.validate({ trimEncoder: 'yes' as never }), { code: 'ERR_INVALID_ARGUMENT', message: /trimEncoder/ });
  const transcript = await engine.transcribe(testSignal(3), { temperatureIncrement: 0 });
  t.equal(transcript.durationMs, 3000);
  for (const s of transcript.segments) t.ok(s.end <= 3000, `segment ${s.start}..${s.end} ms inside the clip`);
});
