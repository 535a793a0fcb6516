// The scheduler's rules with a fake engine and decoder on a real LMDB store: one job at a
// time, oldest first; failures recorded on the job; a stop requeues the running job
// without counting it; jobs found processing at start are requeued up to twice, then
// failed. Milliseconds, no model.
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';

import t, { type Test } from 'tap';

import type { DecodedAudio } from '../../src/engine/audio-decoder.js';
import type { Engine, EngineAudio, Transcript, TranscribeControl } from '../../src/engine/engine.js';
import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { AppError } from '../../src/errors.js';
import type { Job } from '../../src/jobs/job.js';
import { DiskSpace } from '../../src/jobs/disk-space.js';
import { JobService, type JobRequest, type SourcedJobRequest } from '../../src/jobs/job-service.js';
import { fetchJobAudio } from '../../src/jobs/content-fetch.js';
import { CidrPolicy } from '../../src/delivery/cidr.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { EngineTurn } from '../../src/jobs/engine-turn.js';
import { type FetchStep, Scheduler, type StreamStep } from '../../src/jobs/scheduler.js';
import { Spool } from '../../src/jobs/spool.js';
import { createLogger } from '../../src/log.js';
import { StateDatabase } from '../../src/store/database.js';
import { startContentHost } from '../helpers/content-host.js';
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
  /** Transcriptions under way, per lane: the real engine refuses a second on either. */
  readonly running = { batch: 0, interactive: 0 };
  async load(): Promise<never> {
    throw new Error('not used');
  }
  transcribe(audio: EngineAudio, _options: object, control: TranscribeControl = {}): Promise<Transcript> {
    const lane = control.interactive ? 'interactive' : 'batch';
    if (this.running[lane] > 0) return Promise.reject(new AppError('ERR_MODEL_BUSY', `busy: ${lane}`));
    this.running[lane]++;
    return new Promise<Transcript>((resolve, reject) => {
      const finish = (r: Transcript | Error) => (r instanceof Error ? reject(r) : resolve(r));
      control.signal?.addEventListener('abort', () => reject(new AppError('ERR_ABORTED', 'aborted')));
      this.calls.push({ path: 'path' in audio ? audio.path : '', control, finish });
    }).finally(() => this.running[lane]--);
  }
  close(): void {}
}

function setup(t: Test, dir = t.testdir(), turn?: EngineTurn) {
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
  const decode = async (_job: Job, _input: string, _signal: AbortSignal, onProgress: (samples: number) => void): Promise<DecodedAudio> => {
    hooks.beforeDecode?.();
    await hooks.decoding?.(onProgress);
    if (failDecode) throw failDecode;
    return {
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
  // The engine reads the upload's decoded stream; here, the upload itself names the job.
  const stream: StreamStep = (_job, input, _decoded, signal, consume) => consume({ path: input }, signal);
  scheduler = new Scheduler({ service, store, spool, engine, decode, stream, fetch, log, disk, spacePollMs: 20, ...(turn ? { turn } : {}) });
  const submit = (extra: Partial<JobRequest> = {}) =>
    service.submit({ ...request, ...extra }, async (path) => {
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

t.test('an interactive job overtakes a running batch job: runs alongside on the interactive lane, one at a time', async (t) => {
  const s = setup(t);
  t.teardown(s.close);
  await s.scheduler.start();
  const batch = await s.submit();
  await until(() => s.engine.calls.length === 1, 2000, 'the batch transcription');
  t.notOk(s.engine.calls[0]!.control.interactive, 'the batch job on the batch lane');
  const later = await s.submit();
  const first = await s.submit({ interactive: true });
  const second = await s.submit({ interactive: true });
  await until(() => s.engine.calls.length === 2, 2000, 'the interactive transcription');
  t.equal(s.engine.calls[1]!.path, s.spool.uploadPath(first.id), 'the oldest interactive job first');
  t.ok(s.engine.calls[1]!.control.interactive, 'on the interactive lane');
  t.equal(s.scheduler.running?.id, batch.id, 'the batch job still runs');

  // The batch job is paused meanwhile: its stall clock is the interactive job's.
  s.engine.calls[0]!.control.onProgress?.({ percent: 1, processedMs: 30_000 });
  s.engine.calls[1]!.control.onProgress?.({ percent: 1, processedMs: 0 });
  t.ok(s.scheduler.stalledMs() < 1000);
  t.ok(s.scheduler.stalledMs(performance.now() + 60_000) >= 60_000, 'a stuck interactive job stalls');

  s.engine.calls[1]!.finish(transcript('first'));
  await until(() => s.engine.calls.length === 3, 2000, 'the second interactive transcription');
  t.equal(s.engine.calls[2]!.path, s.spool.uploadPath(second.id), 'interactive jobs one after the other');
  t.equal(s.store.get(first.id)!.status, 'completed');
  t.equal(s.store.get(later.id)!.status, 'waiting', 'a batch job still waits for the batch lane');
  s.engine.calls[0]!.finish(transcript('batch'));
  await until(() => s.store.get(batch.id)!.status === 'completed', 2000, 'the batch job');
  // The next job of the main lane is not the interactive one still running alongside.
  await until(() => s.engine.calls.length === 4, 2000, 'the next batch job');
  t.equal(s.engine.calls[3]!.path, s.spool.uploadPath(later.id));
  s.engine.calls[2]!.finish(transcript('second'));
  s.engine.calls[3]!.finish(transcript('later'));
  await until(() => s.store.get(later.id)!.status === 'completed', 2000, 'all done');
  t.equal(s.store.get(second.id)!.status, 'completed');
  t.same(s.engine.running, { batch: 0, interactive: 0 });
  t.notOk(
    [batch, first, second, later].some((j) => s.store.get(j.id)!.status === 'failed'),
    'no job failed (no ERR_MODEL_BUSY)',
  );
});

t.test('the lanes never pick the same job; an interactive job waits for the one running alongside', async (t) => {
  const s = setup(t);
  t.teardown(s.close);
  await s.scheduler.start();
  const batch = await s.submit();
  await until(() => s.engine.calls.length === 1, 2000, 'the batch transcription');
  // Several interactive jobs at once, each waking the scheduler while the others are being picked.
  const interactive = await Promise.all([1, 2, 3, 4].map(() => s.submit({ interactive: true })));
  await until(() => s.engine.calls.length === 2, 2000, 'the first interactive transcription');
  // The batch job ends while an interactive one runs alongside: the main lane must not start another interactive job.
  s.engine.calls[0]!.finish(transcript('batch'));
  await until(() => s.store.get(batch.id)!.status === 'completed', 2000, 'the batch job');
  for (let i = 1; i <= interactive.length; i++) {
    await until(() => s.engine.calls.length === i + 1, 2000, `interactive transcription ${i}`);
    t.same(s.engine.running, { batch: 0, interactive: 1 }, 'one interactive transcription at a time');
    s.engine.calls[i]!.finish(transcript(`i${i}`));
  }
  for (const job of interactive) await until(() => s.store.get(job.id)!.status === 'completed', 2000, 'completed');
  const paths = s.engine.calls.map((c) => c.path);
  t.equal(new Set(paths).size, paths.length, 'each job transcribed once');
  t.equal(s.engine.calls.length, 5);
  t.same(
    interactive.map((j) => s.store.get(j.id)!.attempts),
    [1, 1, 1, 1],
    'each started once',
  );
});

t.test('stop during a batch job and an interactive one alongside: both back to waiting', async (t) => {
  const s = setup(t);
  await s.scheduler.start();
  const batch = await s.submit();
  await until(() => s.engine.calls.length === 1, 2000, 'the batch transcription');
  const command = await s.submit({ interactive: true });
  await until(() => s.engine.calls.length === 2, 2000, 'the interactive transcription');
  await s.scheduler.stop();
  t.match(s.store.get(batch.id), { status: 'waiting', attempts: 0 });
  t.match(s.store.get(command.id), { status: 'waiting', attempts: 0 });
  t.same(s.engine.running, { batch: 0, interactive: 0 });
  await s.close();
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

/** A job whose audio the scheduler fetches (Azure's contentUrls). */
const sourced = (url: string): SourcedJobRequest => {
  const { contentType: _contentType, format: _format, ...rest } = request;
  return { ...rest, source: { url } };
};
const spoolFiles = (s: ReturnType<typeof setup>, id: string) => readdirSync(s.spool.dir).filter((name) => name.startsWith(id));

t.test('a job with a source: fetched, its audio recorded, decoded as an upload; a content failure fails it and the queue goes on', async (t) => {
  const s = setup(t);
  t.teardown(s.close);
  await s.scheduler.start();
  const [a] = await s.service.accept([sourced('http://10.0.0.5/a.wav')]);
  await until(() => s.engine.calls.length === 1, 2000, 'the transcription');
  t.same(s.fetches, [a!.id]);
  t.match(s.store.get(a!.id), { status: 'processing', audioBytes: 7, contentType: 'audio/wav', format: { container: 'wav' } });
  t.same(spoolFiles(s, a!.id), [`${a!.id}.upload`], 'the download became the upload (decoded audio is never spooled)');
  s.engine.calls[0]!.finish(transcript('fetched'));
  await until(() => s.store.get(a!.id)!.status === 'completed', 2000, 'completion');
  t.match(s.store.get(a!.id)!.timings, { fetchMs: Number, decodeMs: Number, transcribeMs: 7 });
  t.equal(s.service.result(a!.id)!.text, 'fetched');

  s.hooks.fetching = async () => {
    throw new AppError('ERR_CONTENT_NOT_FOUND', 'The audio URL http://10.0.0.5/gone answered 404 Not Found');
  };
  const [gone] = await s.service.accept([sourced('http://10.0.0.5/gone')]);
  const next = await s.submit();
  await until(() => s.engine.calls.length === 2, 2000, 'the next job');
  t.match(s.store.get(gone!.id), { status: 'failed', attempts: 1, error: { code: 'ERR_CONTENT_NOT_FOUND', message: /404/ } });
  t.same(spoolFiles(s, gone!.id), [], 'nothing of it left');
  t.equal(s.engine.calls[1]!.path, s.spool.uploadPath(next.id), 'the queue went on');
  t.equal(s.scheduler.pausedReason, undefined);
});

t.test('bytes arriving are progress: the stall clock restarts with each', async (t) => {
  const s = setup(t);
  t.teardown(s.close);
  let received: ((bytes: number) => void) | undefined;
  let finished!: () => void;
  s.hooks.fetching = async (_job, path, _signal, onProgress) => {
    received = onProgress;
    await new Promise<void>((resolve) => (finished = resolve));
    writeFileSync(path, 'audio');
    return { bytes: 5, contentType: 'audio/wav', format: parseAudioMediaType('audio/wav') };
  };
  await s.scheduler.start();
  await s.service.accept([sourced('http://10.0.0.5/a.wav')]);
  await until(() => received !== undefined, 2000, 'the download');
  t.ok(s.scheduler.stalledMs(performance.now() + 60_000) >= 60_000, 'a download that receives nothing stalls');
  received!(65_536);
  t.ok(s.scheduler.stalledMs() < 1000, 'received bytes are progress');
  finished();
  await until(() => s.engine.calls.length === 1, 2000, 'the transcription');
});

t.test('the disk fills while fetching: back to waiting with nothing half-written, paused; fetched again once space is back', async (t) => {
  const s = setup(t);
  t.teardown(s.close);
  s.hooks.fetching = async (_job, path) => {
    // What fetchContent does on a failed write: the partial file goes, the error stays ENOSPC.
    writeFileSync(path, 'partial');
    rmSync(path);
    s.space.free = 5e5;
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  };
  await s.scheduler.start();
  const [job] = await s.service.accept([sourced('http://10.0.0.5/a.wav')]);
  await until(() => s.store.get(job!.id)!.status === 'waiting' && s.scheduler.pausedReason !== undefined, 2000, 'the pause');
  t.match(s.store.get(job!.id), { status: 'waiting', attempts: 0, audioBytes: 0 });
  t.same(spoolFiles(s, job!.id), [], 'nothing half-written');
  s.hooks.fetching = undefined;
  s.space.free = 1e12;
  await until(() => s.engine.calls.length === 1, 2000, 'the job to run again');
  t.same(s.fetches, [job!.id, job!.id], 'fetched again');
  t.match(s.store.get(job!.id), { status: 'processing', audioBytes: 7 });
});

t.test('stopping mid-download (the real fetch from a loopback host): back to waiting, the partial file removed; the next start fetches it again', async (t) => {
  const dir = t.testdir();
  let stall = true;
  const host = await startContentHost(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'audio/wav' });
    if (stall)
      res.write(Buffer.alloc(1000)); // and nothing more
    else res.end(Buffer.alloc(1000));
  });
  const realFetch = (s: ReturnType<typeof setup>) => {
    s.hooks.fetching = (job, path, signal, onProgress) =>
      fetchJobAudio({ url: job.source!.url, path, policy: new CidrPolicy(['127.0.0.0/8']), maxBytes: 1e6, signal, onProgress });
  };
  const first = setup(t, dir);
  realFetch(first);
  await first.scheduler.start();
  const [job] = await first.service.accept([sourced(`${host.base}/a.wav`)]);
  await until(() => existsSync(first.spool.fetchPath(job!.id)) && statSync(first.spool.fetchPath(job!.id)).size === 1000, 2000, 'the first bytes');
  await first.scheduler.stop();
  t.match(first.store.get(job!.id), { status: 'waiting', attempts: 0 });
  t.same(spoolFiles(first, job!.id), [], 'the partial file is removed');
  await first.db.close();

  stall = false;
  const second = setup(t, dir);
  t.teardown(second.close);
  realFetch(second);
  await second.scheduler.start();
  await until(() => second.engine.calls.length === 1, 2000, 'the transcription after the restart');
  t.match(second.store.get(job!.id), { status: 'processing', audioBytes: 1000, contentType: 'audio/wav' });
  t.equal(host.requests.length, 2, 'fetched again');
});

t.test('after a crash mid-download the partial file goes at start and the job is fetched again; a complete download is not', async (t) => {
  const dir = t.testdir();
  const before = setup(t, dir);
  const [partly, fully] = await before.service.accept([sourced('http://10.0.0.5/partly'), sourced('http://10.0.0.5/fully')]);
  // The crash: both were processing; one had half its audio, the other had all of it recorded.
  (await before.service.start(partly!))!;
  writeFileSync(before.spool.fetchPath(partly!.id), 'half');
  const recorded = await before.service.recordAudio((await before.service.start(fully!))!, {
    bytes: 5,
    contentType: 'audio/wav',
    format: parseAudioMediaType('audio/wav'),
  });
  writeFileSync(before.spool.uploadPath(fully!.id), 'audio');
  await before.db.close();

  const after = setup(t, dir);
  t.teardown(after.close);
  await after.scheduler.start();
  await until(() => after.engine.calls.length === 1, 2000, 'the first transcription');
  t.same(after.fetches, [partly!.id], 'only the partial download starts again');
  t.same(spoolFiles(after, partly!.id), [`${partly!.id}.upload`]);
  after.engine.calls[0]!.finish(transcript('a'));
  await until(() => after.engine.calls.length === 2, 2000, 'the second transcription');
  t.same(after.fetches, [partly!.id], 'the complete download is not fetched again');
  t.match(after.store.get(fully!.id), { status: 'processing', audioBytes: recorded.audioBytes, attempts: 2 });
});

t.test(
  'a shared engine turn (a fleet device): a batch job waits while the fleet worker holds it, an interactive job does not; the main lane holds it while it runs',
  async (t) => {
    const turn = new EngineTurn();
    const s = setup(t, t.testdir(), turn);
    t.teardown(s.close);
    const fleetJob = turn.tryAcquire()!;
    await s.scheduler.start();
    const batch = await s.submit();
    await new Promise((resolve) => setTimeout(resolve, 100));
    t.equal(s.engine.calls.length, 0, 'the batch job waits for the turn');
    t.equal(s.store.get(batch.id)!.status, 'waiting');
    const interactive = await s.submit({ interactive: true });
    await until(() => s.engine.calls.length === 1, 2000, 'the interactive job');
    t.equal(s.engine.calls[0]!.control.interactive, true, 'an interactive job takes no turn');
    s.engine.calls[0]!.finish(transcript('i'));
    await until(() => s.store.get(interactive.id)!.status === 'completed', 2000, 'the interactive job done');
    t.equal(s.store.get(batch.id)!.status, 'waiting', 'the batch job still waits');
    fleetJob();
    await until(() => s.engine.calls.length === 2, 2000, 'the batch job, once the turn is free');
    t.equal(turn.tryAcquire(), undefined, 'the main lane holds the turn while its batch job runs');
    s.engine.calls[1]!.finish(transcript('b'));
    await until(() => s.store.get(batch.id)!.status === 'completed', 2000, 'the batch job done');
    await until(() => !turn.busy, 2000, 'the turn given back');
    t.pass();
  },
);
