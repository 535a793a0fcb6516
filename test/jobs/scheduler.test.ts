// The scheduler's rules with a fake engine and decoder on a real LMDB store: one job at a
// time, oldest first; failures recorded on the job; a stop requeues the running job
// without counting it; jobs found processing at start are requeued up to twice, then
// failed. Milliseconds, no model.
import { existsSync, writeFileSync } from 'node:fs';

import t, { type Test } from 'tap';

import type { DecodedAudio } from '../../src/engine/audio-decoder.js';
import type { Engine, EngineAudio, Transcript, TranscribeControl } from '../../src/engine/engine.js';
import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { AppError } from '../../src/errors.js';
import type { Job } from '../../src/jobs/job.js';
import { DiskSpace } from '../../src/jobs/disk-space.js';
import { JobService, type JobRequest } from '../../src/jobs/job-service.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { type FetchStep, Scheduler } from '../../src/jobs/scheduler.js';
import { Spool } from '../../src/jobs/spool.js';
import { createLogger } from '../../src/log.js';
import { StateDatabase } from '../../src/store/database.js';
import { until } from '../helpers/poll.js';

const request: JobRequest = {
  contentType: 'audio/wav',
  format: parseAudioMediaType('audio/wav'),
  model: 'm',
  options: {},
  output: { timestamps: false, wordConfidence: false },
  resultsTtlMs: 60_000,
};

const transcript = (text: string): Transcript => ({
  text,
  segments: [],
  language: 'en',
  durationMs: 1000,
  windows: 1,
  timings: { melMs: 0, sampleMs: 0, encodeMs: 0, decodeMs: 0, batchdMs: 0, promptMs: 0, totalMs: 7, encodeRuns: 1, decodeRuns: 1, fallbacks: 0 },
});

/** An engine whose transcriptions the test finishes by hand (or that fail when told). */
class FakeEngine implements Engine {
  ready = true;
  model = null;
  readonly calls: Array<{ path: string; control: TranscribeControl; finish: (r: Transcript | Error) => void }> = [];
  async load(): Promise<never> {
    throw new Error('not used');
  }
  transcribe(audio: EngineAudio, _options: object, control: TranscribeControl = {}): Promise<Transcript> {
    return new Promise((resolve, reject) => {
      const finish = (r: Transcript | Error) => (r instanceof Error ? reject(r) : resolve(r));
      control.signal?.addEventListener('abort', () => reject(new AppError('ERR_ABORTED', 'aborted')));
      this.calls.push({ path: 'path' in audio ? audio.path : '', control, finish });
    });
  }
  close(): void {}
}

function setup(t: Test, dir = t.testdir()) {
  const db = new StateDatabase(dir);
  db.open();
  const spool = new Spool(dir);
  spool.open();
  const store = new JobStore(db);
  const log = createLogger({ level: 'error' });
  let scheduler: Scheduler;
  // Free space as the test says (plenty unless it says otherwise), with a floor of 1 MB.
  const space = { free: 1e12 };
  const disk = new DiskSpace(dir, 1e6, () => space.free);
  const service = new JobService({ db, store, spool, disk, onNotified: () => {}, onQueued: () => scheduler.wake(), maxWaiting: 10, log });
  const engine = new FakeEngine();
  let failDecode: AppError | undefined;
  const hooks: { beforeDecode?: () => void; decoding?: (onProgress: (samples: number) => void) => Promise<void>; fetching?: FetchStep } = {};
  const decode = async (_job: Job, _input: string, output: string, _signal: AbortSignal, onProgress: (samples: number) => void): Promise<DecodedAudio> => {
    hooks.beforeDecode?.();
    await hooks.decoding?.(onProgress);
    if (failDecode) throw failDecode;
    writeFileSync(output, '');
    return {
      outputPath: output,
      sampleRate: 16000,
      samples: 16000,
      durationMs: 1000,
      inputRate: 16000,
      inputChannels: 1,
      inputFrames: 16000,
      container: 'wav',
      codec: 'pcm_s16',
      sandboxed: true,
    };
  };
  // Downloads as the test says; by default a complete WAV "download" at once.
  const fetches: string[] = [];
  const fetch: FetchStep = async (job, path, signal, onProgress) => {
    fetches.push(job.id);
    if (hooks.fetching) return hooks.fetching(job, path, signal, onProgress);
    writeFileSync(path, 'fetched');
    onProgress(7);
    return { bytes: 7, contentType: 'audio/wav', format: parseAudioMediaType('audio/wav') };
  };
  scheduler = new Scheduler({ service, store, spool, engine, decode, fetch, log, disk, spacePollMs: 20 });
  const submit = () =>
    service.submit(request, async (path) => {
      writeFileSync(path, 'audio');
      return { bytes: 5 };
    });
  const close = async () => {
    await scheduler.stop();
    await db.close();
  };
  return { db, store, spool, service, engine, scheduler, submit, close, space, hooks, fetches, failDecodeWith: (e: AppError | undefined) => (failDecode = e) };
}

t.test('one job at a time, oldest first; results and failures are recorded on the job', async (t) => {
  const s = setup(t);
  t.teardown(s.close);
  await s.scheduler.start();
  const a = await s.submit();
  const b = await s.submit();
  await until(() => s.engine.calls.length === 1, 2000, 'the first transcription');
  t.equal(s.scheduler.running?.id, a.id, 'the oldest runs first');
  t.equal(s.store.get(b.id)!.status, 'waiting', 'the second waits');
  s.engine.calls[0]!.control.onProgress?.({ percent: 40 } as never);
  t.equal(s.service.progressOf(a.id), 40);
  s.engine.calls[0]!.finish(transcript('a'));
  await until(() => s.engine.calls.length === 2, 2000, 'the second transcription');
  t.match(s.store.get(a.id), { status: 'completed', attempts: 1, timings: { transcribeMs: 7 } });
  t.equal(s.service.result(a.id)!.text, 'a');
  s.engine.calls[1]!.finish(new AppError('ERR_INFERENCE', 'whisper failed'));
  await until(() => s.store.get(b.id)!.status === 'failed', 2000, 'the failure');
  t.match(s.store.get(b.id), { status: 'failed', error: { code: 'ERR_INFERENCE', message: 'whisper failed' } });

  s.failDecodeWith(new AppError('ERR_AUDIO_CORRUPT', 'truncated'));
  const c = await s.submit();
  await until(() => s.store.get(c.id)!.status === 'failed', 2000, 'the decoder failure');
  t.match(s.store.get(c.id), { error: { code: 'ERR_AUDIO_CORRUPT' } });
  t.equal(s.engine.calls.length, 2, 'a job whose audio cannot be decoded never reaches the engine');
  await until(() => s.scheduler.running === undefined, 2000, 'idle');
  t.pass('idle once the queue is empty');
});

t.test('stopping requeues the running job without counting the attempt', async (t) => {
  const s = setup(t);
  await s.scheduler.start();
  const job = await s.submit();
  await until(() => s.engine.calls.length === 1, 2000, 'the transcription');
  t.equal(s.store.get(job.id)!.attempts, 1);
  await s.scheduler.stop();
  t.match(s.store.get(job.id), { status: 'waiting', attempts: 0 });
  t.equal(s.service.progressOf(job.id), undefined);
  await s.close();
});

t.test('stalledMs: the time since the decoder last wrote or whisper last finished a chunk', async (t) => {
  const s = setup(t);
  t.teardown(s.close);
  t.equal(s.scheduler.stalledMs(), 0, 'idle is not stalled');
  let decoderWrote: ((samples: number) => void) | undefined;
  let decoded!: () => void;
  s.hooks.decoding = (onProgress) => {
    decoderWrote = onProgress;
    return new Promise((resolve) => (decoded = resolve));
  };
  await s.scheduler.start();
  const job = await s.submit();
  await until(() => decoderWrote !== undefined, 2000, 'the decoder');
  t.ok(s.scheduler.stalledMs(performance.now() + 60_000) >= 60_000, 'a decoder that writes nothing stalls');
  decoderWrote!(16000);
  t.ok(s.scheduler.stalledMs() < 1000, "the decoder's output is progress");
  decoded();

  await until(() => s.engine.calls.length === 1, 2000, 'the transcription');
  t.ok(s.scheduler.stalledMs(performance.now() + 60_000) >= 60_000, 'a transcription without progress stalls');
  s.engine.calls[0]!.control.onProgress?.({ percent: 0.25, processedMs: 36_000 });
  t.ok(s.scheduler.stalledMs() < 1000, 'a chunk is progress');
  t.equal(s.service.progressOf(job.id), 0.25, 'kept in fractions of a percent');
});

t.test('jobs found processing at start: requeued twice, failed with ERR_INTERRUPTED the third time', async (t) => {
  const dir = t.testdir();
  const crashAt = async (attempts: number) => {
    const s = setup(t, dir);
    await s.scheduler.start();
    const job = (await s.submit()) as Job;
    await until(() => s.engine.calls.length === 1, 2000, 'the transcription');
    // A crash: the job stays processing in the store, nothing else runs.
    await s.db.durably(() => s.store.put({ ...s.store.get(job.id)!, status: 'processing', attempts }));
    await s.db.close();
    return job.id;
  };
  const id = await crashAt(2);
  const again = setup(t, dir);
  await again.scheduler.start();
  await until(() => again.engine.calls.length === 1, 2000, 'the retry');
  t.match(again.store.get(id), { status: 'processing', attempts: 3 }, 'requeued and started once more');
  await again.db.durably(() => again.store.put({ ...again.store.get(id)!, status: 'processing', attempts: 3 }));
  // Stopping would requeue it; simulate the third crash by reopening without stopping.
  await again.db.close();
  const last = setup(t, dir);
  t.teardown(last.close);
  await last.scheduler.start();
  t.match(last.store.get(id), { status: 'failed', attempts: 3, error: { code: 'ERR_INTERRUPTED', message: /interrupted 3 times/ } });
  t.equal(last.engine.calls.length, 0, 'never run again');
});

t.test('a full disk: no job starts below the floor, and jobs wait instead of failing; all complete once space is back', async (t) => {
  const s = setup(t);
  t.teardown(s.close);
  const a = await s.submit();
  s.space.free = 5e5; // below the 1 MB floor
  await s.scheduler.start();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(s.engine.calls.length, 0, 'nothing starts');
  t.equal(s.store.get(a.id)!.status, 'waiting');
  t.match(s.scheduler.pausedReason, /^disk full: 1 MB free on the state directory, 1 MB are kept free$/);
  s.space.free = 1e12;
  await until(() => s.engine.calls.length === 1, 2000, 'the job to start once space is back');
  t.equal(s.scheduler.pausedReason, undefined);
  s.engine.calls[0]!.finish(transcript('a'));
  await until(() => s.store.get(a.id)!.status === 'completed', 2000, 'completion');

  // The decoder runs out of space writing its PCM: back to waiting with its audio, attempt not counted.
  s.failDecodeWith(new AppError('ERR_DECODER', 'cannot write the output: No space left on device'));
  s.hooks.beforeDecode = () => {
    s.space.free = 5e5;
  };
  const b = await s.submit();
  await until(() => s.store.get(b.id)!.status === 'waiting' && s.scheduler.pausedReason !== undefined, 2000, 'the pause');
  t.match(s.store.get(b.id), { status: 'waiting', attempts: 0 });
  t.ok(existsSync(s.spool.uploadPath(b.id)), 'its audio is kept');
  s.failDecodeWith(undefined);
  s.hooks.beforeDecode = undefined;
  s.space.free = 1e12;
  await until(() => s.engine.calls.length === 2, 2000, 'the job to run again');
  s.engine.calls[1]!.finish(transcript('b'));
  await until(() => s.store.get(b.id)!.status === 'completed', 2000, 'completion');
  t.equal(s.service.result(b.id)!.text, 'b');

  // The result cannot be stored (LMDB's page writes fail with EIO on a full disk): stored
  // once there is room, without transcribing again.
  const complete = s.service.complete.bind(s.service);
  let refusals = 2;
  s.service.complete = async (...args: Parameters<typeof complete>) => {
    if (refusals-- > 0) {
      s.space.free = 5e5;
      throw new AppError('ERR_STORE', 'Could not store the job: Input/output error');
    }
    return complete(...args);
  };
  const c = await s.submit();
  s.space.free = 1e12;
  await until(() => s.engine.calls.length === 3, 2000, 'the third transcription');
  s.engine.calls[2]!.finish(transcript('c'));
  await until(() => refusals === 1, 2000, 'the first refusal');
  s.space.free = 1e12;
  await until(() => s.store.get(c.id)!.status === 'completed', 2000, 'the result stored at last');
  t.equal(s.service.result(c.id)!.text, 'c');
  t.equal(s.engine.calls.length, 3, 'transcribed once');
  t.equal(refusals, -1);
});

t.test('a job whose audio is bad still fails when the disk has room', async (t) => {
  const s = setup(t);
  t.teardown(s.close);
  await s.scheduler.start();
  s.failDecodeWith(new AppError('ERR_AUDIO_CORRUPT', 'truncated'));
  const a = await s.submit();
  await until(() => s.store.get(a.id)!.status === 'failed', 2000, 'the failure');
  t.equal(s.scheduler.pausedReason, undefined);
});
