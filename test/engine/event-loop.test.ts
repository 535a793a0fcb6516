// Inference runs on its own threads at a lower priority: the event loop must keep
// serving timers (and so HTTP) while a transcription uses every core.
import os from 'node:os';
import t from 'tap';

import { WhisperEngine } from '../../src/engine/whisper-engine.js';
import { createLogger } from '../../src/log.js';
import { tinyModelPath } from '../helpers/models.js';
import { testSignal } from '../helpers/pcm.js';

t.test('a 5 ms timer keeps firing on time while tiny transcribes on all cores', async (t) => {
  const engine = new WhisperEngine(
    { modelPath: tinyModelPath(), threads: os.availableParallelism(), nice: 10, flashAttn: true, windowSeconds: 300 },
    createLogger({ level: 'warn' }),
  );
  await engine.load();
  t.teardown(() => engine.close());

  const lags: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(now - last - 5);
    last = now;
  }, 5);
  // No temperature fallback: random weights would make it decode for minutes.
  const transcript = await engine.transcribe(testSignal(30), { temperatureIncrement: 0 });
  clearInterval(timer);

  lags.sort((a, b) => a - b);
  const p50 = lags[Math.floor(lags.length * 0.5)]!;
  const p99 = lags[Math.floor(lags.length * 0.99)]!;
  const max = lags.at(-1)!;
  t.comment(
    `encode ${transcript.timings.encodeMs.toFixed(0)} ms, total ${transcript.timings.totalMs.toFixed(0)} ms; ` +
      `timer lag over ${lags.length} ticks: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${max.toFixed(2)} ms`,
  );
  // Generous bounds: a blocked loop would show lags of the whole encoder run (seconds).
  t.ok(lags.length > transcript.timings.totalMs / 20, 'the timer fired throughout');
  t.ok(p50 < 5, `p50 lag ${p50.toFixed(2)} ms < 5 ms`);
  t.ok(p99 < 50, `p99 lag ${p99.toFixed(2)} ms < 50 ms`);
});
