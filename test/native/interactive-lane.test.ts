// The interactive lane: a second whisper state next to a running batch transcription,
// which pauses (not aborts) meanwhile and ends as if it had run alone.
import { readFileSync } from 'node:fs';
import t from 'tap';

import { loadAddon, type NativeModel } from '../../src/engine/native.js';
import { testModelPath } from '../helpers/models.js';
import { testSignal } from '../helpers/pcm.js';

const addon = loadAddon();
const fast = { threads: 2, temperatureIncrement: 0, language: 'en' };
const batchAudio = testSignal(90);
const commandAudio = testSignal(3);

/** Resident set size in bytes, from /proc (the kernel's own count, unlike a heap figure). */
function rssBytes(): number {
  const pages = Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]);
  return pages * 4096;
}

/** CPU time of the process (all threads), ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Resolves once the batch transcription reported progress (whisper is inside its window). */
function started(model: NativeModel, audio: Float32Array) {
  let reached: () => void = () => {};
  const running = new Promise<void>((resolve) => (reached = resolve));
  const task = model.transcribe(audio, fast, () => reached());
  return { task, running };
}

t.test('an interactive transcription runs while a batch one pauses; both as if alone', async (t) => {
  const model = new addon.Model();
  await model.load(testModelPath());
  t.teardown(() => model.free());

  let at = performance.now();
  const batchAlone = await model.transcribe(batchAudio, fast).promise;
  const batchAloneMs = performance.now() - at;
  at = performance.now();
  const commandAlone = await model.transcribe(commandAudio, fast).promise;
  const commandAloneMs = performance.now() - at;

  const rssBefore = rssBytes();
  const first = await model.transcribe(commandAudio, { ...fast, interactive: true }).promise;
  const rssAfter = rssBytes();
  t.same(first.segments, commandAlone.segments, 'the second state transcribes as the first does');
  t.equal(first.timings.totalMs > 0, true);
  at = performance.now();
  let cpu = cpuMs();
  await model.transcribe(commandAudio, { ...fast, interactive: true }).promise;
  const interactiveIdleMs = performance.now() - at;
  const interactiveIdleCpuMs = cpuMs() - cpu;

  const batch = started(model, batchAudio);
  await batch.running;
  await t.rejects(model.transcribe(commandAudio, fast).promise, { code: 'ERR_MODEL_BUSY' }, 'one batch transcription at a time');
  at = performance.now();
  cpu = cpuMs();
  const command = model.transcribe(commandAudio, { ...fast, interactive: true });
  await t.rejects(model.transcribe(commandAudio, { ...fast, interactive: true }).promise, { code: 'ERR_MODEL_BUSY' }, 'one interactive at a time');
  t.throws(() => model.free(), { code: 'ERR_MODEL_BUSY' });
  const commandResult = await command.promise;
  const interactiveBusyMs = performance.now() - at;
  // What the process spent beyond the interactive run itself: the paused batch worker's share.
  const pausedOverheadCpuMs = cpuMs() - cpu - interactiveIdleCpuMs;
  const batchResult = await batch.task.promise;

  t.same(commandResult.segments, commandAlone.segments, 'the command transcript is unchanged');
  t.same(batchResult.segments, batchAlone.segments, 'the batch transcript is identical to an uninterrupted run');
  t.equal(batchResult.language, batchAlone.language);
  // Figures, not assertions: the CPU is shared with other work (the integration test checks the latency).
  t.comment(
    JSON.stringify({
      batchAloneMs: Math.round(batchAloneMs),
      commandAloneBatchLaneMs: Math.round(commandAloneMs),
      interactiveIdleMs: Math.round(interactiveIdleMs),
      interactiveBusyMs: Math.round(interactiveBusyMs),
      ratio: Number((interactiveBusyMs / interactiveIdleMs).toFixed(2)),
      interactiveIdleCpuMs: Math.round(interactiveIdleCpuMs),
      pausedOverheadCpuMs: Math.round(pausedOverheadCpuMs),
      secondStateRssMiB: Number(((rssAfter - rssBefore) / 2 ** 20).toFixed(1)),
    }),
  );
});

t.test('an abort reaches a paused batch transcription', async (t) => {
  const model = new addon.Model();
  await model.load(testModelPath());
  t.teardown(() => model.free());
  const batch = started(model, batchAudio);
  await batch.running;
  const command = model.transcribe(testSignal(20), { ...fast, interactive: true });
  // Give the batch worker time to reach its next callback and pause.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const at = performance.now();
  batch.task.abort();
  await t.rejects(batch.task.promise, { code: 'ERR_ABORTED' });
  t.ok(performance.now() - at < 1000, 'the paused worker woke at once');
  await command.promise;
  // Both lanes are free again, and free() releases the second state with the context.
  await model.transcribe(commandAudio, { ...fast, interactive: true }).promise;
  await model.transcribe(commandAudio, fast).promise;
});
