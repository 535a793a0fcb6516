// The native addon itself, through its raw binding: real whisper.cpp on generated models.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';

import type { Progress } from '../../src/engine/engine.js';
import { loadAddon } from '../../src/engine/native.js';
import { parseGgml } from '../helpers/ggml-file.js';
import { generatedModel, testModelPath } from '../helpers/models.js';
import { testSignal, writePcm } from '../helpers/pcm.js';

const addon = loadAddon();
const threads = 2;
// Random weights make whisper fall back to higher temperatures on every window; tests
// that are not about decoding settings turn the fallback off to stay fast.
const fast = { threads, temperatureIncrement: 0 };

t.test('exposes version, system info and languages', async (t) => {
  t.equal(addon.version(), '1.9.1');
  t.match(addon.systemInfo(), /CPU :/);
  const languages = addon.languages();
  t.equal(languages[0], 'en');
  t.ok(languages.includes('de') && languages.length > 90);
});

t.test('loads a model, transcribes PCM with timings, refuses a second load, frees', async (t) => {
  const model = new addon.Model();
  t.equal(model.loaded, false);
  t.equal(model.info, null);
  const info = await model.load(testModelPath(), { flashAttn: true });
  t.match(info, { multilingual: false, weightType: 'q5_0', vocab: 51864, flashAttn: true, audioLayers: 1 });
  t.ok(info.loadMs > 0);
  t.equal(model.loaded, true);
  await t.rejects(model.load(testModelPath()), { code: 'ERR_MODEL_BUSY' });

  const result = await model.transcribe(testSignal(5), { ...fast, language: 'en', words: true }).promise;
  t.equal(result.durationMs, 5000);
  t.equal(result.language, 'en');
  t.equal(result.windows, 1);
  t.ok(result.timings.encodeMs > 0 && result.timings.melMs > 0 && result.timings.totalMs > 0, 'timings reported');
  t.ok(result.timings.encodeRuns >= 1);
  for (const s of result.segments) {
    t.ok(s.start >= 0 && s.end <= 5000 && s.start <= s.end, `segment ${s.start}..${s.end} inside the audio`);
    for (const token of s.tokens) t.ok(token.p >= 0 && token.p <= 1 && token.id < 50256);
    for (const w of s.words) t.ok(w.confidence >= 0 && w.confidence <= 1 && w.start <= w.end);
  }
  model.free();
  t.equal(model.loaded, false);
  await t.rejects(model.transcribe(testSignal(1), fast).promise, { code: 'ERR_MODEL_FREED' });
});

t.test('one transcription at a time per model', async (t) => {
  const model = new addon.Model();
  await model.load(testModelPath());
  const first = model.transcribe(testSignal(10), fast);
  await t.rejects(model.transcribe(testSignal(1), fast).promise, { code: 'ERR_MODEL_BUSY' });
  t.throws(() => model.free(), { code: 'ERR_MODEL_BUSY' });
  await first.promise;
  model.free();
});

t.test('reports progress before every 30 s chunk, in fractions of a percent, ending at 100', async (t) => {
  const model = new addon.Model();
  await model.load(testModelPath());
  const seen: Progress[] = [];
  const result = await model.transcribe(testSignal(70), { ...fast, windowSeconds: 30 }, (p) => seen.push(p)).promise;
  // whisper asks before each chunk it encodes and once more when a window is done; one
  // more report closes the audio. Not only when a whole percent is passed: a percent of a
  // 4 h file is 144 s of audio, minutes of work on a Pi.
  t.equal(seen.length, result.timings.encodeRuns + result.windows + 1, `${seen.length} reports`);
  for (let i = 1; i < seen.length; i++) {
    t.ok(seen[i]!.percent >= seen[i - 1]!.percent && seen[i]!.processedMs >= seen[i - 1]!.processedMs, 'never going back');
  }
  t.ok(
    seen.some((p) => !Number.isInteger(p.percent)),
    'fractions of a percent',
  );
  t.ok(seen.every((p) => p.percent >= 0 && p.percent <= 100 && Math.abs(p.percent - p.processedMs / 700) < 0.01));
  t.same(seen.at(-1), { percent: 100, processedMs: 70000 });
  model.free();
});

t.test('abort stops a running transcription and leaves the model usable', async (t) => {
  const model = new addon.Model();
  await model.load(testModelPath());
  let task: ReturnType<typeof model.transcribe> | undefined;
  const started = Date.now();
  task = model.transcribe(testSignal(600), { ...fast, windowSeconds: 60 }, () => task?.abort());
  await t.rejects(task.promise, { code: 'ERR_ABORTED' });
  t.ok(Date.now() - started < 60_000, 'aborted long before 10 minutes of audio were done');
  const after = await model.transcribe(testSignal(2), fast).promise;
  t.equal(after.durationMs, 2000, 'the model still works after an abort');
  model.free();
});

t.test('reads a spool file in windows, with timestamps offset per window', async (t) => {
  const dir = t.testdir();
  const file = path.join(dir, 'audio.f32');
  writePcm(file, testSignal(95));
  const model = new addon.Model();
  await model.load(testModelPath());
  const result = await model.transcribe({ path: file }, { ...fast, windowSeconds: 30 }).promise;
  t.equal(result.durationMs, 95000);
  t.ok(result.windows >= 4, `${result.windows} windows of at most 30 s`);
  let previousStart = -1;
  for (const s of result.segments) {
    t.ok(s.start >= previousStart, 'segments in time order');
    t.ok(s.end <= 95000, 'inside the audio');
    previousStart = s.start;
  }
  const part = await model.transcribe({ path: file, offset: 16000 * 90, length: 16000 * 3 }, fast).promise;
  t.equal(part.durationMs, 3000, 'offset and length select a window of the file');
  const empty = model.transcribe({ path: file, offset: 16000 * 200 }, fast).promise;
  await t.rejects(empty, { code: 'ERR_AUDIO_EMPTY' });
  await t.rejects(model.transcribe({ path: path.join(dir, 'missing.f32') }, fast).promise, {
    code: 'ERR_AUDIO_CORRUPT',
  });
  model.free();
});

t.test('pads audio shorter than whisper accepts instead of returning nothing silently', async (t) => {
  const model = new addon.Model();
  await model.load(testModelPath());
  const result = await model.transcribe(testSignal(0.05), fast).promise;
  t.equal(result.durationMs, 50);
  t.equal(result.windows, 1);
  for (const s of result.segments) t.ok(s.end <= 50, 'timestamps clipped to the real audio');
  await t.rejects(model.transcribe(new Float32Array(0), fast).promise, { code: 'ERR_AUDIO_EMPTY' });
  model.free();
});

t.test('wrong argument types throw TypeErrors instead of crashing', async (t) => {
  const model = new addon.Model() as unknown as Record<string, (...args: unknown[]) => unknown>;
  t.throws(() => model.load!(42), TypeError);
  t.throws(() => model.load!('x', { flashAttn: 'yes' }), TypeError);
  t.throws(() => model.transcribe!('not audio', {}), TypeError);
  t.throws(() => model.transcribe!(new Float32Array(10), { threads: 'two' }), TypeError);
  t.throws(() => model.transcribe!(new Float32Array(10), { threads: 0 }), RangeError);
  t.throws(() => addon.checkModel(undefined as unknown as string), TypeError);
});

t.test('bridges whisper.cpp log lines to a JavaScript logger', async (t) => {
  const lines: string[] = [];
  addon.setLogger((level, message) => lines.push(`${level} ${message}`), 'debug');
  const model = new addon.Model();
  await model.load(testModelPath());
  model.free();
  await new Promise((resolve) => setImmediate(resolve));
  addon.setLogger(null);
  t.ok(
    lines.some((l) => /^info whisper_model_load: n_vocab\s+= 51864/.test(l)),
    'whisper_model_load lines arrive line by line with their level',
  );
});

t.test('refuses damaged model files with a reason, and the process survives', async (t) => {
  const dir = t.testdir();
  const good = generatedModel('test.en');
  const bytes = readFileSync(good);
  const layout = parseGgml(bytes);
  const variant = (name: string, mutate: (b: Buffer) => Buffer): string => {
    const file = path.join(dir, name);
    writeFileSync(file, mutate(Buffer.from(bytes)));
    return file;
  };
  const firstMatrix = layout.tensors.find((x) => x.dims.length === 2 && x.type === 1)!;
  const cases: Array<[string, string, RegExp]> = [
    [variant('empty.bin', () => Buffer.alloc(0)), 'ERR_MODEL_INVALID', /truncated/],
    [
      variant('magic.bin', (b) => {
        b.writeUInt32LE(0x12345678, 0);
        return b;
      }),
      'ERR_MODEL_INVALID',
      /magic/,
    ],
    [variant('hparams.bin', (b) => b.subarray(0, 30)), 'ERR_MODEL_INVALID', /truncated.*hyper-parameters/],
    [variant('vocab.bin', (b) => b.subarray(0, layout.vocabOffset + 5000)), 'ERR_MODEL_INVALID', /truncated.*vocabulary/],
    [variant('mid-tensor.bin', (b) => b.subarray(0, b.length - 1000)), 'ERR_MODEL_INVALID', /truncated.*data of tensor/],
    [variant('missing-tensors.bin', (b) => b.subarray(0, layout.tensors.at(-1)!.headerOffset)), 'ERR_MODEL_INVALID', /is missing/],
    [
      variant('shape.bin', (b) => {
        b.writeInt32LE(firstMatrix.dims[0]! * 2, firstMatrix.dimsOffset);
        return b;
      }),
      'ERR_MODEL_INVALID',
      /has shape/,
    ],
    [
      variant('type.bin', (b) => {
        b.writeInt32LE(0, firstMatrix.headerOffset + 8);
        return b;
      }),
      'ERR_MODEL_INVALID',
      /has type/,
    ],
    [
      variant('dims.bin', (b) => {
        b.writeInt32LE(7, firstMatrix.headerOffset);
        return b;
      }),
      'ERR_MODEL_INVALID',
      /7 dimensions/,
    ],
    [
      variant('vocab-size.bin', (b) => {
        b.writeInt32LE(0x7fffffff, 4);
        return b;
      }),
      'ERR_MODEL_INVALID',
      /n_vocab/,
    ],
    [
      variant('token-count.bin', (b) => {
        b.writeInt32LE(0x7fffffff, layout.vocabOffset);
        return b;
      }),
      'ERR_MODEL_INVALID',
      /tokens/,
    ],
    [variant('trailing.bin', (b) => Buffer.concat([b, Buffer.from('garbage at the end')])), 'ERR_MODEL_INVALID', /./],
    [dir, 'ERR_MODEL_INVALID', /not a regular file/],
    [path.join(dir, 'nope.bin'), 'ERR_MODEL_NOT_FOUND', /not found/],
  ];
  for (const [file, code, message] of cases) {
    const model = new addon.Model();
    await t.rejects(model.load(file), { code, message }, path.basename(file));
    t.equal(model.loaded, false);
    t.throws(() => addon.checkModel(file), { code });
  }
  const copy = path.join(dir, 'good.bin');
  copyFileSync(good, copy);
  const model = new addon.Model();
  await model.load(copy);
  t.equal(model.loaded, true, 'a good model still loads after all that');
  model.free();
});
