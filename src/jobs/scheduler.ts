import type { DecodedAudio } from '../engine/audio-decoder.js';
import type { Engine } from '../engine/engine.js';
import { toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Job } from './job.js';
import type { JobService } from './job-service.js';
import type { JobStore } from './job-store.js';
import type { Spool } from './spool.js';

/** Decodes a job's upload into the spool's PCM file (the out-of-process decoder). */
export type DecodeStep = (job: Job, uploadPath: string, pcmPath: string, signal: AbortSignal) => Promise<DecodedAudio>;

export interface SchedulerOptions {
  service: JobService;
  store: JobStore;
  spool: Spool;
  engine: Engine;
  decode: DecodeStep;
  log: Logger;
  /** Processing starts per job before a crash-looping job is failed (3: back to waiting at most twice). */
  maxAttempts?: number;
}

/**
 * Runs waiting jobs one at a time, oldest first: decode, transcribe, complete or fail.
 * The queue is the LMDB index of waiting jobs, so it survives restarts; jobs found
 * `processing` at start were interrupted and go back to waiting, up to a limit.
 */
export class Scheduler {
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private current: { job: Job; controller: AbortController; lastProgressAt: number } | null = null;
  private readonly maxAttempts: number;

  constructor(private readonly o: SchedulerOptions) {
    this.maxAttempts = o.maxAttempts ?? 3;
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
    this.wakeUp?.();
  }

  get running(): Job | undefined {
    return this.current?.job;
  }

  /** How long the running job has gone without progress (0 when idle). */
  stalledMs(now = performance.now()): number {
    return this.current ? now - this.current.lastProgressAt : 0;
  }

  /** Stops taking jobs; the running one is aborted and goes back to waiting. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.current?.controller.abort();
    this.wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const job = this.o.store.nextWaiting();
      if (!job) {
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        this.wakeUp = null;
        continue;
      }
      try {
        await this.process(job);
      } catch (err) {
        // Only the store can fail here (every job failure is recorded on the job); wait
        // a little instead of spinning on a broken disk.
        this.o.log.error('scheduler could not record a job state', { job: job.id, error: err as Error });
        await new Promise((resolve) => setTimeout(resolve, 5000));
      }
    }
  }

  private async process(waiting: Job): Promise<void> {
    const job = await this.o.service.start(waiting);
    const controller = new AbortController();
    const started = performance.now();
    const current = { job, controller, lastProgressAt: started };
    this.current = current;
    try {
      const decoded = await this.o.decode(job, this.o.spool.uploadPath(job.id), this.o.spool.pcmPath(job.id), controller.signal);
      const decodeMs = performance.now() - started;
      const transcript = await this.o.engine.transcribe({ path: decoded.outputPath }, job.options, {
        signal: controller.signal,
        onProgress: (p) => {
          current.lastProgressAt = performance.now();
          this.o.service.setProgress(job.id, p.percent);
        },
      });
      const timings = {
        queueMs: Math.max(0, job.updated - job.created),
        decodeMs: Math.round(decodeMs),
        transcribeMs: Math.round(transcript.timings.totalMs),
      };
      await this.o.service.complete(job, transcript, timings);
      this.o.log.debug('job completed', { job: job.id, audioMs: transcript.durationMs, ...timings });
    } catch (err) {
      const error = toAppError(err);
      if (this.stopping && error.code === 'ERR_ABORTED') {
        await this.o.service.requeue(job, { countAttempt: false });
        return;
      }
      this.o.log.info('job failed', { job: job.id, code: error.code, message: error.message });
      await this.o.service.fail(job, { code: error.code, message: error.message });
    } finally {
      this.current = null;
    }
  }
}
