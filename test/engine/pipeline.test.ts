// The whole audio path of a job: an upload decoded out of process, then transcribed by the
// real addon, from a spool file or (as the service does) from a pipe the decoder writes
// while the engine reads it window by window.
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';

import { type DecoderSandbox, decodeAudio, IN_MEMORY_MAX_SAMPLES, streamDecodedAudio, transcribeDecoded } from '../../src/engine/audio-decoder.js';
import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { WhisperEngine } from '../../src/engine/whisper-engine.js';
import { createLogger } from '../../src/log.js';
import { testDecoderSandbox } from '../helpers/audio-fixtures.js';
import { jfkMp3, testModelPath } from '../helpers/models.js';
import { wav } from '../helpers/pcm.js';

t.test('real speech (jfk.mp3) goes through the decoder and the engine', async (t) => {
  const dir = t.testdir();
  const spool = path.join(dir, 'jfk.f32');
  const decoded = await decodeAudio({
    inputPath: jfkMp3,
    outputPath: spool,
    format: parseAudioMediaType('audio/mpeg'),
    limits: { maxSeconds: 60 },
    sandbox: testDecoderSandbox,
  });
  t.match(decoded, { container: 'mp3', samples: 176000, durationMs: 11000 });

  const engine = new WhisperEngine({ modelPath: testModelPath(), threads: 2, nice: 10, flashAttn: true, windowSeconds: 300 }, createLogger({ level: 'warn' }));
  await engine.load();
  t.teardown(() => engine.close());
  const transcript = await engine.transcribe({ path: spool }, { words: true, temperatureIncrement: 0 });
  t.equal(transcript.durationMs, 11000);
  t.ok(transcript.segments.length > 0, 'random weights still produce segments');
  t.ok(transcript.segments.every((s) => s.end <= 11000));
  t.ok(transcript.timings.encodeMs > 0);
});

// ---- streamed from the decoder: no decoded audio on disk --------------------------------

const openFds = (): number => readdirSync('/proc/self/fd').length;

t.test('streamed from the decoder, a transcript is the one from the spool file, window by window with carry', async (t) => {
  const dir = t.testdir();
  const engine = new WhisperEngine({ modelPath: testModelPath(), threads: 2, nice: 10, flashAttn: true, windowSeconds: 30 }, createLogger({ level: 'warn' }));
  await engine.load();
  t.teardown(() => engine.close());
  const options = { words: true, temperatureIncrement: 0 };
  const fdsBefore = openFds();
  for (const [name, input, contentType] of [
    ['jfk.mp3', jfkMp3, 'audio/mpeg'],
    ['70 s WAV in three windows', path.join(dir, 'long.wav'), 'audio/wav'],
  ] as const) {
    if (input.endsWith('long.wav')) writeFileSync(input, wav(70));
    const format = parseAudioMediaType(contentType);
    const spool = path.join(dir, `${name}.f32`);
    const filed = await decodeAudio({ inputPath: input, outputPath: spool, format, limits: { maxSeconds: 600 }, sandbox: testDecoderSandbox });
    const fromFile = await engine.transcribe({ path: spool }, options);

    const progress: number[] = [];
    const checked = await decodeAudio({
      inputPath: input,
      format,
      limits: { maxSeconds: 600 },
      sandbox: testDecoderSandbox,
      onProgress: (n) => progress.push(n),
      progressIntervalMs: 1,
    });
    t.equal(checked.outputPath, undefined, `${name}: counted, nothing written`);
    t.equal(checked.samples, filed.samples, `${name}: the count is the file's length`);
    const seen: number[] = [];
    const fromStream = await streamDecodedAudio(
      { inputPath: input, format, samples: checked.samples, limits: { maxSeconds: 600 }, sandbox: testDecoderSandbox },
      (audio, signal) => engine.transcribe(audio, options, { signal, onProgress: (p) => seen.push(p.percent) }),
    );
    t.same(fromStream.segments, fromFile.segments, `${name}: the same segments`);
    t.equal(fromStream.windows, fromFile.windows, `${name}: the same windows`);
    t.equal(fromStream.durationMs, fromFile.durationMs);
    t.equal(seen.at(-1), 100, `${name}: progress to the end`);
  }
  t.equal(openFds(), fdsBefore, 'no descriptor left open');
});

t.test(
  'short audio: the check pass keeps its samples and the engine transcribes them, the same transcript as streamed, without a second decoder',
  async (t) => {
    const dir = t.testdir();
    const engine = new WhisperEngine({ modelPath: testModelPath(), threads: 2, nice: 10, flashAttn: true, windowSeconds: 30 }, createLogger({ level: 'warn' }));
    await engine.load();
    t.teardown(() => engine.close());
    const options = { words: true, temperatureIncrement: 0 };
    // A decoder that must not run: the kept samples are all the engine needs.
    const noDecoder = path.join(dir, 'must-not-run.sh');
    writeFileSync(noDecoder, `#!/bin/sh\necho '{"ok":false,"code":"ERR_DECODER","message":"a second decoder ran"}'\nexit 1\n`);
    chmodSync(noDecoder, 0o755);
    for (const [name, input, contentType] of [
      ['jfk.mp3', jfkMp3, 'audio/mpeg'],
      ['40 s WAV in two windows', path.join(dir, 'forty.wav'), 'audio/wav'],
    ] as const) {
      if (input.endsWith('forty.wav')) writeFileSync(input, wav(40));
      const format = parseAudioMediaType(contentType);
      const base = { inputPath: input, format, limits: { maxSeconds: 600 }, sandbox: testDecoderSandbox as DecoderSandbox };
      const checked = await decodeAudio({ ...base, keepSamples: IN_MEMORY_MAX_SAMPLES });
      t.equal(checked.pcm?.length, checked.samples, `${name}: kept`);
      const streamed = await streamDecodedAudio({ ...base, samples: checked.samples }, (audio, signal) => engine.transcribe(audio, options, { signal }));
      const seen: number[] = [];
      const fromMemory = await transcribeDecoded({ ...base, decoderPath: noDecoder }, checked, (audio, signal) => {
        t.ok(audio instanceof Float32Array, `${name}: the engine gets the kept samples`);
        return engine.transcribe(audio, options, { signal, onProgress: (p) => seen.push(p.percent) });
      });
      t.same(fromMemory.segments, streamed.segments, `${name}: the same segments`);
      t.equal(fromMemory.text, streamed.text, `${name}: the same text`);
      t.equal(fromMemory.windows, streamed.windows, `${name}: the same windows`);
      t.equal(fromMemory.durationMs, streamed.durationMs);
      t.equal(seen.at(-1), 100, `${name}: progress to the end`);
    }
    // Longer than the bound: nothing kept, and transcribeDecoded streams a second decode.
    const long = path.join(dir, 'seventy.wav');
    writeFileSync(long, wav(70));
    const base = { inputPath: long, format: parseAudioMediaType('audio/wav'), limits: { maxSeconds: 600 }, sandbox: testDecoderSandbox as DecoderSandbox };
    const checked = await decodeAudio({ ...base, keepSamples: IN_MEMORY_MAX_SAMPLES });
    t.equal(checked.pcm, undefined, '70 s: not kept');
    const streamed = await transcribeDecoded(base, checked, (audio, signal) => {
      t.notOk(audio instanceof Float32Array, '70 s: streamed');
      return engine.transcribe(audio, { temperatureIncrement: 0 }, { signal });
    });
    t.equal(streamed.durationMs, 70000);
    // Aborted: before the engine starts, or while it works on the kept samples.
    const short = await decodeAudio({
      inputPath: jfkMp3,
      format: parseAudioMediaType('audio/mpeg'),
      limits: { maxSeconds: 60 },
      sandbox: testDecoderSandbox,
      keepSamples: IN_MEMORY_MAX_SAMPLES,
    });
    const jfkBase = { inputPath: jfkMp3, format: parseAudioMediaType('audio/mpeg'), limits: { maxSeconds: 60 }, sandbox: testDecoderSandbox as DecoderSandbox };
    await t.rejects(
      transcribeDecoded({ ...jfkBase, signal: AbortSignal.abort() }, short, (audio, signal) => engine.transcribe(audio, {}, { signal })),
      { code: 'ERR_ABORTED' },
    );
    const controller = new AbortController();
    await t.rejects(
      transcribeDecoded({ ...jfkBase, signal: controller.signal }, short, (audio, signal) =>
        engine.transcribe(audio, { temperatureIncrement: 0 }, { signal, onProgress: () => controller.abort() }),
      ),
      { code: 'ERR_ABORTED' },
    );
  },
);

t.test('a streamed transcription fails with the error of whichever side failed first, and leaves nothing open', async (t) => {
  const dir = t.testdir();
  const engine = new WhisperEngine({ modelPath: testModelPath(), threads: 2, nice: 10, flashAttn: true, windowSeconds: 30 }, createLogger({ level: 'warn' }));
  await engine.load();
  t.teardown(() => engine.close());
  const input = path.join(dir, 'a.wav');
  writeFileSync(input, wav(70));
  const format = parseAudioMediaType('audio/wav');
  const base = { inputPath: input, format, limits: { maxSeconds: 600 }, sandbox: testDecoderSandbox as DecoderSandbox };
  const { samples } = await decodeAudio(base);
  const fdsBefore = openFds();
  const transcribe = (options: object, onProgress?: () => void) => (audio: { fd: number; length: number }, signal: AbortSignal) =>
    engine.transcribe(audio, { temperatureIncrement: 0, ...options }, { signal, ...(onProgress ? { onProgress } : {}) });

  // The engine refuses before reading: its error, and the decoder waiting on the pipe is stopped.
  await t.rejects(streamDecodedAudio({ ...base, samples }, transcribe({ beamSize: 99 })), { code: 'ERR_INVALID_ARGUMENT' }, 'the engine first');
  // The decoder's second result differs from its check (here: the check is said to have found more).
  await t.rejects(
    streamDecodedAudio({ ...base, samples: samples + 16000 }, transcribe({})),
    { code: 'ERR_DECODER', message: /wrote 1120000 samples this time, 1136000/ },
    'a shorter stream',
  );
  await t.rejects(streamDecodedAudio({ ...base, samples: samples - 16000 }, transcribe({})), { code: 'ERR_DECODER' }, 'a longer stream');
  // A decoder that fails mid-stream: its error, not the engine's "stream ended early".
  const failing = path.join(dir, 'fails-midway.sh');
  writeFileSync(failing, `#!/bin/sh\nhead -c 1280000 /dev/zero >&3\necho '{"ok":false,"code":"ERR_AUDIO_CORRUPT","message":"bad frame at 20 s"}'\nexit 11\n`);
  chmodSync(failing, 0o755);
  await t.rejects(
    streamDecodedAudio({ ...base, samples, decoderPath: failing }, transcribe({})),
    { code: 'ERR_AUDIO_CORRUPT', message: 'bad frame at 20 s' },
    'the decoder first',
  );
  // Aborted while the engine reads: ERR_ABORTED, the decoder killed.
  const controller = new AbortController();
  await t.rejects(
    streamDecodedAudio(
      { ...base, samples, signal: controller.signal },
      transcribe({}, () => controller.abort()),
    ),
    { code: 'ERR_ABORTED' },
    'aborted',
  );
  t.equal(openFds(), fdsBefore, 'no descriptor left open');
  const after = await streamDecodedAudio({ ...base, samples }, transcribe({}));
  t.equal(after.durationMs, 70000, 'the engine is free again');
});
