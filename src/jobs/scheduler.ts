import { rm } from 'node:fs/promises';

import type { DecodedAudio } from '../engine/audio-decoder.js';
import type { Engine, EngineAudio } from '../engine/engine.js';
import { toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Job } from './job.js';
import type { FetchedAudio, JobService } from './job-service.js';
import type { JobStore } from './job-store.js';
import type { DiskSpace } from './disk-space.js';
import type { EngineTurn } from './engine-turn.js';
import type { Spool } from './spool.js';

/**
 * Decodes a job's upload to check it (the out-of-process decoder: every audio error, and
 * the exact length), calling `onProgress` with the samples decoded so far while it works.
 * Nothing is written: the decoded audio is counted and dropped, or, when short, kept in
 * memory (`pcm`) for the stream step.
 */
export type DecodeStep = (job: Job, uploadPath: string, signal: AbortSignal, onProgress: (samples: number) => void) => Promise<DecodedAudio>;

/**
 * Decodes a checked upload again into a stream that `consume` (the engine) reads window by
 * window, so that no decoded audio is ever on the card (docs/pcm-streaming.md), or hands
 * `consume` the samples the decode step kept (short audio: no second decoder); resolves
 * to what `consume` resolved to. `consume` must use the signal it is given: it fires when
 * the decoder fails, or `signal` does.
 */
export type StreamStep = <T>(
  job: Job,
  uploadPath: string,
  decoded: DecodedAudio,
  signal: AbortSignal,
  consume: (audio: EngineAudio, signal: AbortSignal) => Promise<T>,
) => Promise<T>;

/**
 * Downloads the audio of a job that has a `source` into `path` (a new file, fsynced; none
 * left behind on failure), calling `onProgress` as bytes arrive; resolves to its size and
 * format. Fails with an ERR_CONTENT_* code when the source is the problem.
 */
export type FetchStep = (job: Job, path: string, signal: AbortSignal, onProgress: (bytes: number) => void) => Promise<FetchedAudio>;

export interface SchedulerOptions {
  service: JobService;
  store: JobStore;
  spool: Spool;
  engine: Engine;
  decode: DecodeStep;
  stream: StreamStep;
  /** For jobs whose audio comes from a URL (`Job.source`). */
  fetch: FetchStep;
  log: Logger;
  /** Processing starts per job before a crash-looping job is failed (3: back to waiting at most twice). */
  maxAttempts?: number;
  /** Free space: no job starts below its floor, and no job fails for lack of space. */
  disk: DiskSpace;
  /** How often free space is checked again while paused (5 s). */
  spacePollMs?: number;
  /** Shared with a fleet worker: the main lane runs a batch job only in its turn. */
  turn?: EngineTurn;
}

interface RunningJob {
  job: Job;
  controller: AbortController;
  /** When the download last received bytes, the decoder last wrote audio or whisper last finished a chunk (performance.now()). */
  lastProgressAt: number;
  /** The longest time so far between two signs of progress. */
  longestStallMs: number;
}

/** Where a job runs: the main lane takes any job; the overtaking lane only interactive jobs, while the main lane runs a batch job. */
interface Lane {
  current: RunningJob | null;
}

/** The running job made progress: the stall clock starts again. */
function progressed(current: RunningJob, now = performance.now()): void {
  current.longestStallMs = Math.max(current.longestStallMs, now - current.lastProgressAt);
  current.lastProgressAt = now;
}

/**
 * Runs waiting jobs one at a time, interactive ones first, then oldest first: fetch (jobs
 * with a source URL), decode, transcribe, complete or fail. While a batch job runs, an
 * interactive job does not wait for it: it runs alongside on the engine's interactive lane
 * (the batch transcription pauses meanwhile and loses nothing), one interactive job at a time.
 * The queue is the LMDB index of waiting jobs, so it survives restarts; jobs found
 * `processing` at start were interrupted and go back to waiting, up to a limit.
 */
export class Scheduler {
  private stopping = false;
  /** Who sleeps (idle, or waiting for space) until a job arrives or stop(). */
  private readonly sleepers = new Set<() => void>();
  private loop: Promise<void> | null = null;
  private readonly main: Lane = { current: null };
  /** The interactive jobs running alongside a batch job, one after another; null when none. */
  private overtaking: (Lane & { done: Promise<void> }) | null = null;
  /**
   * Jobs a lane picked and has not finished: reading the queue and committing `start` are
   * not one step, so without this both lanes could pick the same job.
   */
  private readonly claimed = new Set<string>();
  private readonly maxAttempts: number;
  private readonly spacePollMs: number;
  private paused: string | undefined;

  constructor(private readonly o: SchedulerOptions) {
    this.maxAttempts = o.maxAttempts ?? 3;
    this.spacePollMs = o.spacePollMs ?? 5000;
  }

  /** Why no job runs although jobs wait (the disk is full), for /readyz and /metrics. */
  get pausedReason(): string | undefined {
    return this.paused;
  }

  /**
   * Waits while less than the floor is free (a job started now could not store its
   * result). Resolves at once when there is room, or when stopping.
   */
  private async waitForSpace(): Promise<void> {
    for (;;) {
      const shortage = this.o.disk.shortage();
      if (!shortage || this.stopping) break;
      if (this.paused !== shortage) this.o.log.warn('jobs paused until space is freed', { reason: shortage });
      this.paused = shortage;
      await this.sleep(this.spacePollMs);
    }
    if (this.paused) this.o.log.info('space freed: jobs resume');
    this.paused = undefined;
  }

  /** A pause that stop() (or a new job) cuts short. */
  private sleep(ms: number): Promise<void> {
    let done = () => {};
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), ms);
      done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.sleepers.add(done);
    }).finally(() => {
      this.sleepers.delete(done);
    });
  }

  /** Until wake() or stop(); no timer, so an idle scheduler keeps nothing alive. */
  private idle(): Promise<void> {
    let done = () => {};
    return new Promise<void>((resolve) => {
      done = resolve;
      this.sleepers.add(done);
    }).finally(() => {
      this.sleepers.delete(done);
    });
  }

  /**
   * Stores a state change, on a full disk again and again until it is stored (a finished
   * transcription is not thrown away for lack of space): rejects only for other failures,
   * or when stopping.
   */
  private async storeDespiteFullDisk<T>(store: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await store();
      } catch (err) {
        if (this.stopping || !this.o.disk.explains(err)) throw err;
        this.paused = this.o.disk.shortage() ?? `disk full: ${(err as Error).message}`;
        this.o.log.warn('could not store a job state for lack of space; trying again', { error: err as Error });
        await this.sleep(this.spacePollMs);
        // Waiting for the disk is not a hung job: the watchdog must not restart the service.
        for (const lane of [this.main, this.overtaking]) if (lane?.current) lane.current.lastProgressAt = performance.now();
      }
    }
  }

  async start(): Promise<void> {
    for (const job of this.o.store.withStatus('processing')) {
      if (job.attempts >= this.maxAttempts) {
        this.o.log.warn('giving up on a job interrupted too often', { job: job.id, attempts: job.attempts });
        await this.o.service.fail(job, {
          code: 'ERR_INTERRUPTED',
          message: `Processing was interrupted ${job.attempts} times (the service stopped or crashed during it); giving up on this job`,
        });
      } else {
        this.o.log.info('requeueing a job interrupted by a restart', { job: job.id, attempts: job.attempts });
        await this.o.service.requeue(job, { countAttempt: true });
      }
    }
    // Uploads may already be arriving (HTTP listens before the model is loaded): their
    // files are spared, and finished jobs' leftovers go now rather than at their expiry.
    const orphans = await this.o.spool.removeOrphans((id) => this.o.service.needsAudio(id));
    if (orphans) this.o.log.info('removed orphaned spool files', { count: orphans });
    this.loop = this.run();
  }

  /** A job became waiting. */
  wake(): void {
    for (const wakeUp of [...this.sleepers]) wakeUp();
    this.overtake();
  }

  /** The job of the main lane (an interactive job running alongside is not it). */
  get running(): Job | undefined {
    return this.main.current?.job;
  }

  /**
   * How long the running job has gone without progress (0 when idle): without output from
   * the decoder (looked at every second) or a chunk of whisper's (30 s of audio). The
   * watchdog's limit (EARSHOT_STALL_SECONDS) is compared with this, so it bounds the time
   * between two steps of a job, whatever the length of its audio.
   */
  stalledMs(now = performance.now()): number {
    // While an interactive job runs alongside, the batch job is paused: the interactive
    // job is the one that must make progress.
    const clock = this.overtaking?.current ?? this.main.current;
    return clock ? now - clock.lastProgressAt : 0;
  }

  /** Stops taking jobs; the running ones are aborted and go back to waiting. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.main.current?.controller.abort();
    this.overtaking?.current?.controller.abort();
    this.wake();
    await this.loop;
    await this.overtaking?.done;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const job = this.o.store.nextWaiting(this.claimed);
      if (!job) {
        await this.idle();
        continue;
      }
      if (job.interactive && this.overtaking) {
        // Interactive jobs run one at a time (the engine has one interactive lane): this
        // one follows the one running alongside the batch job that just ended.
        await this.overtaking.done;
        continue;
      }
      // A batch job waits while the fleet worker runs one (an interactive job arriving meanwhile is picked first).
      const release = job.interactive || !this.o.turn ? () => {} : this.o.turn.tryAcquire();
      if (!release) {
        await this.idleUntil(this.o.turn!.whenFree());
        continue;
      }
      this.claimed.add(job.id);
      try {
        await this.waitForSpace();
        if (this.stopping) break;
        await this.process(job, this.main);
      } catch (err) {
        // Only the store can fail here (every job failure is recorded on the job); wait
        // a little instead of spinning on a broken disk.
        this.o.log.error('scheduler could not record a job state', { job: job.id, error: err as Error });
        await this.sleep(this.spacePollMs);
      } finally {
        this.claimed.delete(job.id);
        release();
      }
    }
  }

  /** Until wake(), stop() or `event`. */
  private async idleUntil(event: Promise<void>): Promise<void> {
    let done = () => {};
    const woken = new Promise<void>((resolve) => {
      done = resolve;
      this.sleepers.add(done);
    });
    try {
      await Promise.race([woken, event]);
    } finally {
      this.sleepers.delete(done);
    }
  }

  /**
   * Starts running waiting interactive jobs alongside the main lane's batch job, unless
   * that is already under way, the main lane runs no batch job, or the disk is short (the
   * main lane then waits for space, and they run after).
   */
  private overtake(): void {
    if (this.overtaking || !this.canOvertake() || !this.o.store.nextInteractive(this.claimed)) return;
    const lane: Lane & { done: Promise<void> } = { current: null, done: Promise.resolve() };
    this.overtaking = lane;
    lane.done = this.runInteractive(lane).finally(() => {
      this.overtaking = null;
    });
  }

  private canOvertake(): boolean {
    const batch = this.main.current;
    return !this.stopping && batch !== null && !batch.job.interactive && !this.o.disk.shortage();
  }

  private async runInteractive(lane: Lane): Promise<void> {
    for (;;) {
      if (!this.canOvertake()) return;
      const job = this.o.store.nextInteractive(this.claimed);
      if (!job) return;
      this.claimed.add(job.id);
      try {
        await this.process(job, lane);
      } catch (err) {
        this.o.log.error('scheduler could not record a job state', { job: job.id, error: err as Error });
        return;
      } finally {
        this.claimed.delete(job.id);
        // The batch job was paused, not stalled: its stall clock starts again now.
        if (this.main.current) this.main.current.lastProgressAt = performance.now();
      }
    }
  }

  private async process(waiting: Job, lane: Lane): Promise<void> {
    const started = await this.storeDespiteFullDisk(() => this.o.service.start(waiting));
    if (!started) return; // deleted since it was picked
    let job = started;
    const controller = new AbortController();
    const current: RunningJob = { job, controller, lastProgressAt: performance.now(), longestStallMs: 0 };
    lane.current = current;
    // An interactive job may have arrived while this one was being picked.
    if (lane === this.main) this.overtake();
    try {
      let fetchMs: number | undefined;
      // A job with a source has its audio once a download completed (an earlier attempt's
      // counts: the upload file exists only whole).
      if (job.source && !(await this.o.spool.hasUpload(job.id))) {
        const fetchStarted = performance.now();
        job = await this.fetchAudio(current);
        fetchMs = Math.round(performance.now() - fetchStarted);
      }
      // The upload stays the one copy of the audio: decoded once to check it (decode_ms),
      // then, unless the check kept it (short audio), again into the engine as it reads
      // (after a crash, all of it happens again).
      const uploadPath = this.o.spool.uploadPath(job.id);
      const decodeStarted = performance.now();
      const decoded = await this.o.decode(job, uploadPath, controller.signal, () => progressed(current));
      progressed(current);
      const decodeMs = performance.now() - decodeStarted;
      const transcript = await this.o.stream(job, uploadPath, decoded, controller.signal, (audio, signal) =>
        this.o.engine.transcribe(audio, job.options, {
          signal,
          ...(job.interactive ? { interactive: true } : {}),
          onProgress: (p) => {
            progressed(current);
            this.o.service.setProgress(job.id, p.percent);
          },
          ...(job.streamed ? { onSegment: (segment) => this.o.service.publishSegment(job, segment) } : {}),
        }),
      );
      progressed(current);
      const timings = {
        queueMs: Math.max(0, started.updated - started.created),
        ...(fetchMs !== undefined ? { fetchMs } : {}),
        decodeMs: Math.round(decodeMs),
        transcribeMs: Math.round(transcript.timings.totalMs),
      };
      await this.storeDespiteFullDisk(() => this.o.service.complete(job, transcript, timings));
      progressed(current);
      this.o.log.debug('job completed', {
        job: job.id,
        audioMs: transcript.durationMs,
        ...timings,
        longestStallMs: Math.round(current.longestStallMs),
      });
    } catch (err) {
      const error = toAppError(err);
      // The job as last stored (a download records the audio's size and format on it).
      job = current.job;
      if (this.stopping && error.code === 'ERR_ABORTED') {
        await this.o.service.requeue(job, { countAttempt: false });
        return;
      }
      // Fetching, decoding or transcribing ran out of space: the job waits again with its
      // audio (a download starts again), and the loop waits for space before it starts anything.
      if (this.o.disk.explains(err)) {
        this.o.log.warn('job back to waiting: the disk is full', { job: job.id, code: error.code, message: error.message });
        await this.storeDespiteFullDisk(() => this.o.service.requeue(job, { countAttempt: false }));
        this.paused = this.o.disk.shortage() ?? `disk full: ${error.message}`;
        await this.sleep(this.spacePollMs);
        return;
      }
      this.o.log.info('job failed', { job: job.id, code: error.code, message: error.message });
      await this.o.service.fail(job, { code: error.code, message: error.message });
    } finally {
      lane.current = null;
    }
  }

  /**
   * Downloads the running job's audio into the spool's partial file, records its size and
   * format on the job, then makes it the job's upload. Every byte received is progress.
   * Fails as the fetch step does; nothing partial is left behind.
   */
  private async fetchAudio(current: RunningJob): Promise<Job> {
    const { id } = current.job;
    const partial = this.o.spool.fetchPath(id);
    const audio = await this.o.fetch(current.job, partial, current.controller.signal, () => progressed(current));
    progressed(current);
    try {
      // Recorded before the file becomes the upload: after a crash in between, the upload
      // is missing and the job downloads again, so an upload always has its format recorded.
      current.job = await this.storeDespiteFullDisk(() => this.o.service.recordAudio(current.job, audio));
      await this.o.spool.keepFetched(id);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
    return current.job;
  }
}
