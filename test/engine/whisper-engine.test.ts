import t from 'tap';

import { AppError } from '../../src/errors.js';
import type { Segment } from '../../src/engine/engine.js';
import { WhisperEngine, type WhisperEngineConfig } from '../../src/engine/whisper-engine.js';
import { createLogger } from '../../src/log.js';
import { testModelPath } from '../helpers/models.js';
import { testSignal } from '../helpers/pcm.js';
import { markersOnly, scriptedModel, speechAndMarkers } from '../helpers/scripted-models.js';

const lines: string[] = [];
const log = createLogger({ level: 'debug', journal: true, write: (line) => lines.push(line) }).child('engine');

function engine(overrides: Partial<WhisperEngineConfig> = {}): WhisperEngine {
  return new WhisperEngine({ modelPath: testModelPath(), threads: 2, nice: 10, flashAttn: true, windowSeconds: 300, ...overrides }, log);
}

t.test('loads once, logs, transcribes and closes', async (t) => {
  const e = engine();
  t.equal(e.ready, false);
  const info = await e.load();
  t.equal(e.ready, true);
  t.match(info, { multilingual: false, weightType: 'q5_0' });
  t.ok(lines.some((l) => l.startsWith('<6>engine: model loaded') && l.includes('weights=q5_0')));
  t.ok(
    lines.some((l) => l.startsWith('<7>whisper: whisper_init_from_file_with_params_no_state')),
    'whisper lines at debug',
  );

  const progress: number[] = [];
  const transcript = await e.transcribe(testSignal(8), { words: true, temperatureIncrement: 0 }, { onProgress: (p) => progress.push(p.percent) });
  t.equal(transcript.durationMs, 8000);
  t.equal(transcript.language, 'en');
  t.equal(
    transcript.text,
    transcript.segments
      .map((s) => s.text)
      .filter(Boolean)
      .join(' '),
  );
  for (const s of transcript.segments) {
    t.ok(s.confidence >= 0 && s.confidence <= 1, 'segment confidence is a probability');
    t.equal(s.text, s.text.trim());
  }
  t.ok(progress.length > 0);
  e.close();
  t.equal(e.ready, false);
  await t.rejects(e.transcribe(testSignal(1), {}), { code: 'ERR_MODEL_FREED' });
});

t.test('validates options with one clear message each', async (t) => {
  const e = engine();
  await e.load();
  t.teardown(() => e.close());
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ threads: 0 }, /Expected an integer between 1 and 64 for threads but received 0 of type number/],
    [{ threads: 2.5 }, /for threads/],
    [{ beamSize: 'five' }, /Expected an integer between 1 and 16 for beamSize but received "five" of type string/],
    [{ temperature: 3 }, /for temperature/],
    [{ strategy: 'sampling' }, /Expected "greedy" or "beam" for strategy/],
    [{ language: 'xx' }, /for language but received "xx"/],
    [{ language: 'de' }, /English-only; it cannot transcribe language "de"/],
    [{ translate: true }, /cannot translate/],
    [{ words: 'yes' }, /Expected a boolean for words/],
    [{ vad: true }, /no VAD model is installed/],
    [{ windowSeconds: 10 }, /between 30 and 3600 for windowSeconds/],
    [{ initialPrompt: 7 }, /Expected a string for initialPrompt/],
  ];
  for (const [options, message] of bad) {
    await t.rejects(e.transcribe(testSignal(1), options), { code: 'ERR_INVALID_ARGUMENT', message }, JSON.stringify(options));
  }
  const valid = e.validate({ language: 'auto', strategy: 'beam', beamSize: 3, words: true });
  t.match(valid, { language: 'auto', strategy: 'beam', beamSize: 3, threads: 2, nice: 10, windowSeconds: 300 });
});

t.test('an AbortSignal aborts the transcription with ERR_ABORTED, keeping the caller stack', async (t) => {
  const e = engine();
  await e.load();
  t.teardown(() => e.close());
  const controller = new AbortController();
  const pending = e.transcribe(
    testSignal(600),
    { windowSeconds: 60 },
    {
      signal: controller.signal,
      onProgress: () => controller.abort(),
    },
  );
  const err = await pending.catch((x: unknown) => x);
  t.ok(err instanceof AppError);
  t.equal((err as AppError).code, 'ERR_ABORTED');
  t.match((err as AppError).stack, /whisper-engine\.test\.[jt]s/, 'stack points at the caller');
  await t.rejects(e.transcribe(testSignal(1), {}, { signal: AbortSignal.abort() }), { code: 'ERR_ABORTED' });
  const after = await e.transcribe(testSignal(1), {});
  t.equal(after.durationMs, 1000);
});

t.test('a missing model fails load with ERR_MODEL_NOT_FOUND', async (t) => {
  const e = engine({ modelPath: '/nonexistent/ggml-x.bin' });
  await t.rejects(e.load(), { code: 'ERR_MODEL_NOT_FOUND' });
  t.equal(e.ready, false);
});

t.test('onSegment: each segment as the transcript has it, non-speech markers removed, all before it resolves', async (t) => {
  for (const [name, script, texts] of [
    ['speech and markers', speechAndMarkers, ['Hello world']],
    ['markers only', markersOnly, []],
  ] as const) {
    const e = engine({ modelPath: await scriptedModel(t, script) });
    await e.load();
    const streamed: Segment[] = [];
    let resolved = false;
    const transcript = await e.transcribe(
      testSignal(3),
      { temperatureIncrement: 0, words: true },
      {
        onSegment: (segment) => {
          t.notOk(resolved, 'before the transcript');
          streamed.push(segment);
        },
      },
    );
    resolved = true;
    t.same(streamed, transcript.segments, `${name}: the transcript's segments`);
    t.same(
      streamed.map((s) => s.text),
      texts,
      name,
    );
    e.close();
  }
});
