// The whole audio path of a job: an upload decoded out of process to the spool, then
// transcribed from the spool file by the real addon.
import path from 'node:path';
import t from 'tap';

import { decodeAudio } from '../../src/engine/audio-decoder.js';
import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { WhisperEngine } from '../../src/engine/whisper-engine.js';
import { createLogger } from '../../src/log.js';
import { testDecoderSandbox } from '../helpers/audio-fixtures.js';
import { jfkMp3, testModelPath } from '../helpers/models.js';

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
