import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';

import type { Transcript } from '../engine/engine.js';
import { AppError, toAppError } from '../errors.js';
import { isFinished, type Job, type JobError, type JobTimings } from '../jobs/job.js';
import { completion, type FetchedAudio, type JobChange, withFetchedAudio } from '../jobs/job-service.js';
import type { Logger } from '../log.js';
import type { FleetBroker } from './broker.js';
import { changeOf } from './events.js';
import type { FleetDelivery, FleetJob, FleetQueue, Lane } from './queue.js';

/**
 * Transcribes the audio file at `audioPath` for `job` (decode to check it, then stream it
 * into the engine: the scheduler's steps), calling `onProgress` at every sign of progress.
 */
export type FleetTranscribe = (
  job: Job,
  audioPath: string,
  signal: AbortSignal,
  onProgress: (percent?: number) => void,
) => Promise<{ transcript: Transcript; decodeMs: number }>;

export interface FleetWorkerOptions {
  broker: FleetBroker;
  queue: FleetQueue;
  /** The lanes this device's model serves (modelLanes). */
  lanes: Lane[];
  transcribe: FleetTranscribe;
  /** Where a pulled job's audio is written while it runs (one file at a time). */
  workDir: string;
  log: Logger;
  /** Processing starts per job before an interrupted job is failed (3, as on a single device). */
  maxAttempts?: number;
  /** How long one pull waits for work. */
  pullMs?: number;
  /**
   * Resolves when this device may run a job, with a function that gives the turn back, or
   * with undefined once `signal` is aborted (the worker stops); by default, always at once.
   */
  turn?: (signal: AbortSignal) => Promise<(() => void) | undefined>;
  now?: () => number;
  /**
   * Downloads the audio of a job that has a `source` URL (Azure's batch transcriptions) to
   * `path` (a new file): the local scheduler's fetch step, under this device's allow-list.
   */
  fetchSource?: (job: Job, path: string, signal: AbortSignal) => Promise<FetchedAudio>;
  /** Reports each state change this device writes (FleetEvents: deliveries once per event). */
  events?: { publish(job: Job, change: JobChange): Promise<unknown> };
}

/**
 * Takes jobs from the fleet's work queue one at a time and runs them here: the same
 * states and rules as the local scheduler (waiting → processing → completed/failed,
 * attempts counted at each start, an interrupted job failed after the third), with the
 * state in the fleet's bucket and every write a compare-and-set on the revision this
 * device last wrote, so a device that lost its job to another (the ack wait lapsed)
 * records nothing. Idle while the broker cannot be reached.
 */
export class FleetWorker {
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly controller = new AbortController();
  /** Resolves when stop() is called: cuts short a wait for the broker. */
  private readonly stopped = new Promise<void>((resolve) => this.controller.signal.addEventListener('abort', () => resolve(), { once: true }));
  private readonly maxAttempts: number;
  private readonly now: () => number;
  /** The job this device is running, if any. */
  running: string | undefined;
  /** A finished job whose result waits for the broker to be reachable again. */
  holding: string | undefined;

  constructor(private readonly o: FleetWorkerOptions) {
    this.maxAttempts = o.maxAttempts ?? 3;
    this.now = o.now ?? Date.now;
  }

  start(): void {
    mkdirSync(this.o.workDir, { recursive: true, mode: 0o700 });
    this.loop ??= this.run();
  }

  /** Stops pulling; a running job is aborted and given back (its attempt not counted). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.controller.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      await Promise.race([this.o.broker.whenConnected(), this.stopped]);
      if (this.stopping) break;
      let release: (() => void) | undefined;
      try {
        release = this.o.turn ? await this.o.turn(this.controller.signal) : () => {};
      } catch (err) {
        this.o.log.warn('could not take a turn on the engine', { error: err as Error });
        await Promise.race([new Promise((resolve) => setTimeout(resolve, 1000)), this.stopped]);
        continue;
      }
      if (!release) break;
      try {
        await this.pullAndHandle();
      } finally {
        release();
      }
    }
  }

  private async pullAndHandle(): Promise<void> {
    let delivery: FleetDelivery | undefined;
    try {
      delivery = await this.o.queue.pull(this.o.lanes, this.o.pullMs ?? 5000);
    } catch (err) {
      this.o.log.warn('could not pull from the fleet queue', { error: err as Error });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return;
    }
    if (!delivery) return;
    try {
      await this.handle(delivery);
    } catch (err) {
      // The broker went away mid-job: the message is redelivered after the ack wait.
      this.o.log.warn('fleet job interrupted', { job: delivery.id, error: err as Error });
    }
  }

  private async handle(delivery: FleetDelivery): Promise<void> {
    const stored = await delivery.state();
    if (!stored || isFinished(stored.job)) {
      // Deleted meanwhile, or finished by a device whose acknowledgement was lost: that
      // device may have died before reporting the change, so it is reported (again) here,
      // under the same id (stored once by the broker).
      if (stored) await this.report(stored.job);
      await delivery.done();
      // Finished: its device may have died before removing the audio too.
      await this.o.queue.dropAudio(delivery.id);
      return;
    }
    if (stored.job.heldBy) {
      // A stale message (its publish was doubted and the job kept by the device that took
      // it): that device runs it and holds its state here.
      await delivery.done();
      return;
    }
    if (stored.job.status === 'processing' && stored.job.attempts >= this.maxAttempts) {
      this.o.log.warn('giving up on a fleet job interrupted too often', { job: stored.job.id, attempts: stored.job.attempts });
      await this.finish(delivery, stored, {
        code: 'ERR_INTERRUPTED',
        message: `Processing was interrupted ${stored.job.attempts} times (a device stopped or crashed during it); giving up on this job`,
      });
      return;
    }
    if (stored.job.status === 'processing')
      this.o.log.info('resuming a fleet job interrupted on another device', { job: stored.job.id, attempts: stored.job.attempts });
    await this.process(delivery, stored);
  }

  private async process(delivery: FleetDelivery, stored: FleetJob): Promise<void> {
    delivery.keepAlive();
    const startedAt = this.now();
    const started: Job = { ...stored.job, status: 'processing', attempts: stored.job.attempts + 1, updated: startedAt };
    const revision = await this.o.queue.update(started, stored.revision);
    if (revision === undefined) {
      // Changed since it was read (deleted, or another device took it): let it be delivered again.
      delivery.release();
      return;
    }
    let held: FleetJob = { job: started, revision };
    await this.report(started).catch((err: unknown) => this.o.log.warn('could not report a fleet job started', { job: started.id, error: err as Error }));
    this.running = started.id;
    const audioPath = path.join(this.o.workDir, `${started.id}.upload`);
    try {
      if (started.source) {
        // Its audio is downloaded by the device that runs it (no audio object in the fleet).
        if (!this.o.fetchSource) throw new AppError('ERR_CONTENT_REFUSED', 'This device cannot download audio from a URL');
        const audio = await this.o.fetchSource(started, audioPath, this.controller.signal);
        const fetched = withFetchedAudio(started, audio, this.now());
        const next = await this.o.queue.update(fetched, held.revision);
        if (next === undefined) {
          this.o.log.info('fleet job was deleted or taken over during its download', { job: started.id });
          await delivery.done();
          return;
        }
        held = { job: fetched, revision: next };
      } else {
        await this.o.queue.fetchAudio(started.id, audioPath);
      }
      const job = held.job;
      const { transcript, decodeMs } = await this.o.transcribe(job, audioPath, this.controller.signal, () => {});
      const timings: JobTimings = {
        queueMs: Math.max(0, startedAt - started.created),
        decodeMs: Math.round(decodeMs),
        transcribeMs: Math.round(transcript.timings.totalMs),
      };
      const { job: completed, result } = completion(job, transcript, timings, this.now());
      const at = held.revision;
      if ((await this.storeWhenConnected(started.id, () => this.o.queue.update(completed, at, result))) === undefined) {
        this.o.log.info('fleet job was taken over by another device; result dropped', { job: started.id });
      } else {
        this.o.log.debug('fleet job completed', { job: started.id, ...timings });
        // Unreported (the broker went away), the work message stays unacknowledged: whoever receives it next reports it.
        await this.report(completed);
      }
      await delivery.done();
      await this.o.queue.dropAudio(started.id);
    } catch (err) {
      const error = toAppError(err);
      if (this.stopping && error.code === 'ERR_ABORTED') {
        // Stopping: back to waiting, this attempt not counted, and given back at once.
        await this.o.queue.update({ ...held.job, status: 'waiting', attempts: stored.job.attempts, updated: this.now() }, held.revision).catch(() => undefined);
        delivery.release();
        return;
      }
      if (error.code === 'ERR_FLEET_UNAVAILABLE') throw error;
      this.o.log.info('fleet job failed', { job: started.id, code: error.code, message: error.message });
      await this.finish(delivery, held, { code: error.code, message: error.message });
    } finally {
      this.running = undefined;
      await rm(audioPath, { force: true });
    }
  }

  /**
   * Stores a finished job's result: while the broker cannot be reached, holds it and tries
   * again once it is back (a transcription is not thrown away for a broker restart). The
   * revision check still decides: if another device took the job over meanwhile, nothing
   * is written. Gives up when stopping, or after five failures while connected (the broker
   * refuses it: the job runs again elsewhere).
   */
  private async storeWhenConnected<T>(id: string, store: () => Promise<T>): Promise<T> {
    let refusals = 0;
    try {
      for (;;) {
        try {
          return await store();
        } catch (err) {
          if (this.stopping || toAppError(err).code !== 'ERR_FLEET_UNAVAILABLE') throw err;
          if (this.o.broker.state === 'connected' && ++refusals >= 5) throw err;
          if (this.holding !== id) this.o.log.warn('holding a finished job until the fleet broker is back', { job: id, error: err as Error });
          this.holding = id;
          await Promise.race([this.o.broker.whenConnected(), this.stopped]);
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }
    } finally {
      this.holding = undefined;
    }
  }

  /** Publishes the change a job state written to the bucket records (its event). */
  private async report(job: Job): Promise<void> {
    const change = changeOf(job);
    if (change && this.o.events) await this.o.events.publish(job, change);
  }

  /** Records the job failed (if nobody changed it meanwhile) and takes it off the queue. */
  private async finish(delivery: FleetDelivery, stored: FleetJob, error: JobError): Promise<void> {
    const now = this.now();
    const failed: Job = { ...stored.job, status: 'failed', updated: now, expiresAt: now + stored.job.resultsTtlMs, error };
    if ((await this.o.queue.update(failed, stored.revision)) !== undefined) await this.report(failed);
    await delivery.done();
    await this.o.queue.dropAudio(stored.job.id);
  }
}
