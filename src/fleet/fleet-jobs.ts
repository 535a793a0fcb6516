import { AppError } from '../errors.js';
import { isFinished, type Job } from '../jobs/job.js';
import type { StoredTranscript } from '../jobs/job-store.js';
import type { JobChange } from '../jobs/job-service.js';
import type { Logger } from '../log.js';
import type { FleetBroker } from './broker.js';
import type { FleetQueue } from './queue.js';

export interface FleetJobsOptions {
  broker: FleetBroker;
  queue: FleetQueue;
  /** The fleet's events (FleetEvents): a submit and a delete are reported there, as the worker reports its changes. */
  events?: { publish(job: Job, change: JobChange): Promise<unknown> };
  log: Logger;
  /** This device's id in the fleet, kept across restarts: the owner of its held copies (`hold`). */
  device: string;
  now?: () => number;
}

/**
 * The service's side of a fleet (docs/fleet.md, "In the service"): which jobs go to the
 * fleet's queue, and the fleet-wide reads and deletes behind a job's GET, list and DELETE
 * for the jobs that are not this device's own. Every method is safe to call while the
 * broker cannot be reached: a submit then says no (the device keeps the job), a read
 * says ERR_FLEET_UNAVAILABLE.
 */
export class FleetJobs {
  private readonly now: () => number;
  /** Each job's last copy to the fleet not yet done (`inTurn`). */
  private readonly copies = new Map<string, Promise<boolean>>();

  constructor(private readonly o: FleetJobsOptions) {
    this.now = o.now ?? Date.now;
  }

  get connected(): boolean {
    return this.o.broker.connected !== undefined;
  }

  /**
   * Whether a job may run on another device: a batch job (nobody waits on this device for
   * it: not interactive, not streamed), with its audio uploaded (not fetched from a URL
   * by the device that took it). Its callbacks go out from whichever device pulls its
   * events (registrations are fleet-wide).
   */
  static eligible(job: Job): boolean {
    return !job.interactive && !job.streamed && !job.source;
  }

  /**
   * Whether a job whose audio is to be downloaded from its `source` URL may run on another
   * device (Azure's batch transcriptions): a batch job; the device that takes it downloads
   * the audio (under its own callback allow-list), so no audio crosses the broker.
   */
  static eligibleSourced(job: Job): boolean {
    return !job.interactive && !job.streamed && job.source !== undefined;
  }

  /**
   * Hands new waiting jobs with a `source` URL to the fleet, in order: each resolved once the
   * broker acknowledged its state and work message (then reported `created`). Resolves to
   * those it could not hand over (the broker away, or refusing one: that one and those
   * after it), which the device keeps.
   */
  async submitSourced(jobs: Job[]): Promise<Job[]> {
    for (const [i, job] of jobs.entries()) {
      if (!this.connected) return jobs.slice(i);
      try {
        await this.o.queue.submit(job);
      } catch (err) {
        this.o.log.warn('could not hand a job to the fleet: it runs here', { job: job.id, error: err as Error });
        return jobs.slice(i);
      }
      await this.report(job, 'created');
    }
    return [];
  }

  /**
   * Hands a new waiting job (its audio fsynced at `audioPath`) to the fleet: resolves true
   * once the broker acknowledged its audio, state and work message; false when the broker
   * cannot be reached or refuses any of it (nothing of it is left there: the device keeps
   * the job, the client's 201 is the same).
   */
  async submit(job: Job, audioPath: string): Promise<boolean> {
    if (!this.connected) return false;
    try {
      await this.o.queue.submit(job, audioPath);
    } catch (err) {
      this.o.log.warn('could not hand a job to the fleet: it runs here', { job: job.id, error: err as Error });
      return false;
    }
    await this.report(job, 'created');
    return true;
  }

  /**
   * Hands a waiting job this device accepted (its audio at `audioPath`; none for a job
   * whose audio the device that runs it downloads, `Job.source`) to the fleet's queue
   * (JobService.handOver), without a `created` event (this device reported it when it
   * accepted the job). `handed`: the fleet has it — stored now, or found stored by an
   * earlier handover that a crash cut short before this device removed its copy.
   * `refused`: nothing of it is in the fleet (the broker could not be read, or refused its
   * audio). `doubtful`: its state or work message may be stored (a lost acknowledgement):
   * the next round finds out.
   */
  async handOver(job: Job, audioPath: string | undefined): Promise<'handed' | 'refused' | 'doubtful'> {
    if (!this.connected) return 'refused';
    let enqueuing = false;
    try {
      const there = await this.o.queue.get(job.id);
      if (there) {
        if (!there.job.heldBy && (there.job.status !== 'waiting' || (await this.o.queue.queued(there.job)))) return 'handed';
        // Cut short between its state and its work message, or this device's copy of it
        // from when it ran here (stopped mid-job since): stored again from the start.
        await this.o.queue.purge(job.id);
      }
      if (audioPath !== undefined) await this.o.queue.putAudio(job.id, audioPath);
      enqueuing = true;
      // Its state is new to the fleet: `updated` now, or another device's sweep would take
      // a job accepted long ago, not yet queued, for a leftover.
      await this.o.queue.enqueue({ ...job, updated: this.now() });
      return 'handed';
    } catch (err) {
      this.o.log.warn('could not hand a waiting job to the fleet', { job: job.id, enqueuing, error: err as Error });
      return enqueuing ? 'doubtful' : 'refused';
    }
  }

  /**
   * Reports a change on the events stream. A lost report costs that event's deliveries,
   * not the job (it is stored): logged, not thrown. (The worker's own reports of a job's
   * end are retried through its work message: FleetWorker; a leftover has none left.)
   */
  private async report(job: Job, change: JobChange): Promise<void> {
    try {
      await this.o.events?.publish(job, change);
    } catch (err) {
      this.o.log.warn('could not report a fleet job change', { job: job.id, change, error: err as Error });
    }
  }

  private check(): void {
    if (!this.connected)
      throw new AppError('ERR_FLEET_UNAVAILABLE', `The fleet's broker cannot be reached (${this.o.broker.state}); jobs of other devices cannot be read`);
  }

  /** A fleet job's state, or undefined. */
  async get(id: string): Promise<Job | undefined> {
    this.check();
    return (await this.o.queue.get(id))?.job;
  }

  async result(id: string): Promise<StoredTranscript | undefined> {
    this.check();
    return this.o.queue.result(id);
  }

  async newest(limit: number): Promise<Job[]> {
    this.check();
    return this.o.queue.newest(limit);
  }

  /** @throws AppError ERR_JOB_NOT_FOUND, ERR_JOB_BUSY, ERR_FLEET_UNAVAILABLE */
  async delete(id: string): Promise<Job> {
    this.check();
    const deleted = await this.o.queue.delete(id);
    await this.report(deleted, 'deleted');
    return deleted;
  }

  /**
   * Removes the fleet's copy of a device's own job (deleted or expired here), held or
   * finished, if there is one: after any copy of it under way. (While the broker is away,
   * the next (re)join removes a held copy left so: `releaseHolds`.)
   */
  async forget(id: string): Promise<void> {
    if (!this.connected) return;
    await this.inTurn(id, 'remove', () => this.o.queue.forget(id).then(() => true));
  }

  /**
   * Removes this device's held copies of jobs that no longer run here (finished, deleted,
   * expired or back to waiting while the broker was away), after it (re)joined. How many.
   */
  async releaseHolds(runsHere: (id: string) => boolean): Promise<number> {
    if (!this.connected) return 0;
    let released = 0;
    for (const id of await this.o.queue.heldBy(this.o.device)) {
      if (runsHere(id)) continue;
      // Only while it is still the held copy: a finished state may have replaced it meanwhile.
      await this.inTurn(id, 'release', () => this.o.queue.forget(id, this.o.device).then(() => true));
      released++;
    }
    return released;
  }

  /**
   * Copies a device's own finished job (its state and result) to the fleet, so that GET on
   * any device finds it: a create (or the replacement of its held copy), refused when the
   * fleet has it already (never twice). Whether it was copied.
   */
  share(job: Job, result: StoredTranscript | undefined): Promise<boolean> {
    if (!this.connected || !isFinished(job)) return Promise.resolve(false);
    return this.inTurn(job.id, 'copy', () => this.o.queue.copy(job, result));
  }

  /**
   * Copies a device's own running job to the fleet (held: in no queue of the fleet's), so
   * that GET on any device finds it while it runs. Whether it was copied.
   */
  hold(job: Job): Promise<boolean> {
    if (!this.connected || job.status !== 'processing') return Promise.resolve(false);
    return this.inTurn(job.id, 'hold', () => this.o.queue.hold(job, this.o.device));
  }

  /**
   * Runs one job's copies one after another, in the order asked: a job that finishes at
   * once after it started must not have its held copy land after its finished one. A
   * failure is logged (the copy is made again on the next (re)join), never thrown.
   */
  private inTurn(id: string, what: string, copy: () => Promise<boolean>): Promise<boolean> {
    const previous = this.copies.get(id) ?? Promise.resolve(false);
    const next = previous.then(copy).catch((err: unknown) => {
      this.o.log.debug(`could not ${what} a job in the fleet`, { job: id, error: err as Error });
      return false;
    });
    this.copies.set(id, next);
    void next.then(() => {
      if (this.copies.get(id) === next) this.copies.delete(id);
    });
    return next;
  }

  /** The fleet-wide sweep (expired jobs, leftovers, orphaned objects); counts. */
  async sweep(): Promise<{ expired: number; leftovers: number; orphans: number }> {
    if (!this.connected) return { expired: 0, leftovers: 0, orphans: 0 };
    const now = this.now();
    const expired = await this.o.queue.sweep(now);
    // A failed leftover is reported like any job's end: its callbacks and web hooks hear of it.
    const failed = await this.o.queue.failLeftovers(now);
    for (const job of failed) await this.report(job, 'failed');
    const leftovers = failed.length;
    const orphans = await this.o.queue.removeOrphans(now);
    return { expired, leftovers, orphans };
  }
}
