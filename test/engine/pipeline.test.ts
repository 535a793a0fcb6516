// The whole audio path of a job: an upload decoded out of process, then transcribed by the
// real addon, from a spool file or (as the service does) from a pipe the decoder writes
// while the engine reads it window by window.
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';

import { type DecoderSandbox, decodeAudio, streamDecodedAudio } from '../../src/engine/audio-decoder.js';
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
