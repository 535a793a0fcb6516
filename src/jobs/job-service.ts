import { randomUUID } from 'node:crypto';

import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { StateDatabase } from '../store/database.js';
import { isFinished, type Job, type JobError, type JobTimings } from './job.js';
import { storedTranscript, type JobStore, type StoredTranscript } from './job-store.js';
import type { DiskSpace } from './disk-space.js';
import { censorSegment, censorTranscript } from './profanity.js';
import { SegmentFeed, type StoredSegment } from './segment-feed.js';
import type { Spool } from './spool.js';
import type { Segment, Transcript } from '../engine/engine.js';
import type { AudioFormat } from '../engine/media-type.js';
import { checkContentUrl } from './content-fetch.js';
import { FleetJobs } from '../fleet/fleet-jobs.js';

/** A state change that subscribers (IBM callbacks, Azure webhooks) may be told about. */
export type JobChange = 'created' | 'started' | 'completed' | 'failed' | 'deleted';

/**
 * Turns a job's state change into outbox deliveries. Called inside the transaction of
 * the change, so the deliveries commit with it or not at all. `eventId`, given for a
 * fleet event (src/fleet/events.ts), is the change's stable id: the deliveries' ids are
 * made from it, so the same event turned into deliveries again carries the same ids.
 */
export interface JobNotifier {
  notify(job: Job, change: JobChange, result: StoredTranscript | undefined, eventId?: string): void;
  /**
   * A fleet event is about to be turned into deliveries (`notify` with its `eventId`): reads
   * beforehand what the notifier needs from the fleet (an Azure batch's record and its other
   * jobs' states), since `notify` runs synchronously inside a transaction.
   */
  prepare?(job: Job, change: JobChange, result: StoredTranscript | undefined): Promise<void>;
}

/** What a client asks for when it submits audio: everything of a job but its audio and state. */
export type JobRequest = Omit<Job, 'id' | 'created' | 'updated' | 'status' | 'attempts' | 'warnings' | 'audioBytes'> & {
  warnings?: string[];
};

/**
 * What a client asks for when the device is to fetch the audio from a URL (`source`): a
 * JobRequest whose type and format are unknown until the download answers (both may be
 * left out; they are replaced by what the download finds).
 */
export type SourcedJobRequest = Omit<JobRequest, 'contentType' | 'format' | 'source'> &
  Partial<Pick<JobRequest, 'contentType' | 'format'>> & {
    source: { url: string };
  };

/** Audio downloaded from a job's source: its size, type and format (see `recordAudio`). */
export interface FetchedAudio {
  bytes: number;
  /** The download's Content-Type (application/octet-stream when it sent none). */
  contentType: string;
  format: AudioFormat;
  /** Added to the job's warnings (a Content-Type that was not audio, say). */
  warnings?: string[];
}

/**
 * Writes the submitted audio to `path` (a new file) and fsyncs it; resolves to its size.
 * Rejects when the audio is refused or the client goes away (and removes what it wrote).
 * Calls `created` (if it can) as soon as the file exists: the spool's directory fsync then
 * runs while the data is written and fsynced, instead of after.
 */
export type ReceiveAudio = (path: string, created: () => void) => Promise<ReceivedAudio>;

export interface ReceivedAudio {
  bytes: number;
  /** What the data showed the format to be, when the request could not say (replaces the request's). */
  format?: AudioFormat;
  /** Added to the request's warnings. */
  warnings?: string[];
}

interface FinishWaiter {
  resolve(job: Job): void;
  reject(err: Error): void;
}

export interface JobServiceOptions {
  db: StateDatabase;
  store: JobStore;
  spool: Spool;
  /** More can be added with `subscribe()` before the service is used. */
  notifiers?: JobNotifier[];
  /** Called after a commit that enqueued deliveries (wakes the dispatcher). */
  onNotified: () => void;
  /** Called after a job became waiting (wakes the scheduler). */
  onQueued: () => void;
  maxWaiting: number;
  /** The floor of free space uploads are admitted against. */
  disk: DiskSpace;
  log: Logger;
  now?: () => number;
}

/**
 * The jobs domain: every state change of a job goes through here, durably, with its
 * notifications in the same transaction. HTTP routes and the scheduler call it; it knows
 * nothing of either.
 */
export class JobService {
  private readonly now: () => number;
  /** Progress of the running job, kept in memory: writing it to flash would wear the SD card. */
  private readonly progress = new Map<string, number>();

  private readonly notifiers: JobNotifier[];
  /** Ids of uploads being received: their spool files exist before their jobs do. */
  private readonly receiving = new Set<string>();
  /** Who waits for each job to finish (`whenFinished`), settled by the commit that finishes or removes it. */
  private readonly finishWaiters = new Map<string, Set<FinishWaiter>>();
  /** The segments of running jobs that stream them (`Job.streamed`), in memory until the job ends. */
  private readonly feeds = new Map<string, SegmentFeed>();

  /** The fleet this device belongs to (EARSHOT_FLEET_URL), once it is set up. */
  private fleet: FleetJobs | undefined;

  constructor(private readonly o: JobServiceOptions) {
    this.now = o.now ?? Date.now;
    this.notifiers = [...(o.notifiers ?? [])];
  }

  /**
   * Joins the service to a fleet: batch uploads offered to it (`submit`'s `shareable`) go
   * to the fleet's queue while its broker is connected, and a job this device does not
   * have is looked up there (`lookup`, `fetchResult`, `newestEverywhere`, `delete`).
   */
  joinFleet(fleet: FleetJobs): void {
    this.fleet = fleet;
  }

  /** Adds a notifier: every later state change is reported to it in its transaction. */
  subscribe(notifier: JobNotifier): void {
    this.notifiers.push(notifier);
  }

  /**
   * Accepts a new job: refuses it while the queue is full, counting uploads in progress,
   * or while the upload (`declaredBytes`, from Content-Length) would leave less than the
   * floor free — both before any audio is read; lets `receive` stream the audio into the
   * spool, makes the file's directory entry durable, then commits the waiting job.
   * Resolves once the job and its audio survive a power cut; on any failure nothing of it
   * is left behind, and a disk that filled meanwhile is ERR_INSUFFICIENT_STORAGE. Every
   * entry point that takes audio (each dialect's upload) calls this. `request` may be a
   * function, called once the audio is received: for uploads whose parameters travel with
   * the audio (a multipart form may send them after it); what it throws refuses the upload.
   */
  async submit(
    request: JobRequest | (() => JobRequest),
    receive: ReceiveAudio,
    declaredBytes = 0,
    /** `shareable`: nobody waits on this device for the job (a batch upload): in a fleet, any device may run it. */
    options: { shareable?: boolean } = {},
  ): Promise<Job> {
    this.checkCapacity();
    const release = this.o.disk.admit(declaredBytes);
    const id = randomUUID();
    this.receiving.add(id);
    try {
      // The directory fsync that makes the file's entry durable: one that started after the
      // file was created (while its data is written), or, if `receive` did not say, one now.
      let dirSynced: Promise<void> | undefined;
      const received = await receive(this.o.spool.uploadPath(id), () => {
        dirSynced ??= this.o.spool.syncDir();
        dirSynced.catch(() => {}); // awaited below; not unhandled if `receive` fails first
      });
      const asked = typeof request === 'function' ? request() : request;
      await (dirSynced ?? this.o.spool.syncDir());
      const now = this.now();
      const job: Job = {
        ...asked,
        id,
        format: received.format ?? asked.format,
        audioBytes: received.bytes,
        warnings: [...(asked.warnings ?? []), ...(received.warnings ?? [])],
        created: now,
        updated: now,
        status: 'waiting',
        attempts: 0,
      };
      // In a fleet: durable once the broker acknowledged it; the spool copy goes. Otherwise (or on any failure) here.
      if (options.shareable && this.fleet && FleetJobs.eligible(job) && (await this.fleet.submit(job, this.o.spool.uploadPath(id)))) {
        await this.o.spool.removeFiles(id);
        return job;
      }
      await this.commit(job, 'created');
      this.o.onQueued();
      return job;
    } catch (err) {
      await this.o.spool.removeFiles(id);
      // The client's own mistakes keep their codes; anything else on a full disk is the disk.
      if (err instanceof AppError && err.status < 500) throw err;
      if (this.o.disk.explains(err)) {
        throw new AppError('ERR_INSUFFICIENT_STORAGE', `The device ran out of space while storing the audio; try again later (${(err as Error).message})`, {
          cause: err,
        });
      }
      throw err;
    } finally {
      this.receiving.delete(id);
      release();
    }
  }

  /**
   * Accepts jobs whose audio the scheduler downloads from their `source` URL (Azure's
   * `contentUrls`): refuses them all while they do not all fit in the queue, checks each
   * URL (http(s), no credentials: the address is checked when the download connects),
   * then commits the waiting jobs, without audio (audioBytes 0), and their 'created'
   * notifications in ONE transaction, together with whatever `inTransaction` writes (the
   * caller's own records of them): all of it survives a power cut, or none of it exists.
   * Wakes the scheduler, which runs them in the order of the list. An empty list creates nothing.
   *
   * @throws AppError ERR_QUEUE_FULL (nothing created), ERR_CONTENT_REFUSED (a URL that can
   *   never be fetched; nothing created), ERR_STORE; what `inTransaction` throws (an
   *   AppError as it is; nothing created)
   */
  async accept(
    requests: SourcedJobRequest[],
    inTransaction?: (jobs: Job[]) => void,
    /**
     * `shareable`: in a fleet whose broker is connected, the jobs go to the fleet's queue
     * (any device downloads and runs them): `inTransaction` then commits on its own first,
     * `shared` runs (the caller makes its records fleet-wide), then each job is stored in the
     * fleet; any the fleet refuses (and those after it) are committed here as without a fleet.
     */
    options: { shareable?: boolean; shared?: (jobs: Job[]) => Promise<void> } = {},
  ): Promise<Job[]> {
    for (const request of requests) checkContentUrl(request.source?.url);
    this.checkCapacity(requests.length);
    if (!requests.length) return [];
    const now = this.now();
    // The queue runs jobs of the same creation time in the order of their ids: sorted ids,
    // handed out in the order of the list, run the jobs in the order they were asked for.
    const ids = requests.map(() => randomUUID()).sort();
    const jobs = requests.map(
      (request, i): Job => ({
        contentType: 'application/octet-stream',
        format: { kind: 'auto', mediaType: 'application/octet-stream' },
        ...request,
        source: { url: request.source.url },
        id: ids[i]!,
        audioBytes: 0,
        warnings: [...(request.warnings ?? [])],
        created: now,
        updated: now,
        status: 'waiting',
        attempts: 0,
      }),
    );
    let local = jobs;
    let recorded = false;
    if (options.shareable && this.fleet?.connected && jobs.every(FleetJobs.eligibleSourced)) {
      // Counted as arriving until stored, so that uploads meanwhile see them in the queue.
      for (const job of jobs) this.receiving.add(job.id);
      try {
        if (inTransaction) await this.transaction(() => inTransaction(jobs));
        recorded = true;
        await options.shared?.(jobs);
        local = await this.fleet.submitSourced(jobs);
      } finally {
        for (const job of jobs) this.receiving.delete(job.id);
      }
      if (!local.length) return jobs;
    }
    // Counted as arriving until committed, so that uploads meanwhile see them in the queue.
    for (const job of local) this.receiving.add(job.id);
    try {
      await this.transaction(() => {
        for (const job of local) this.o.store.put(job);
        // Before the notifications: a notifier may describe the jobs by the caller's records.
        if (!recorded) inTransaction?.(jobs);
        for (const job of local) for (const n of this.notifiers) n.notify(job, 'created', undefined);
      });
    } finally {
      for (const job of local) this.receiving.delete(job.id);
    }
    this.o.onNotified();
    this.o.onQueued();
    return jobs;
  }

  /**
   * Records the audio the scheduler downloaded for a processing job (its size, type,
   * format and warnings); the job stays processing. A download repeated after a restart
   * replaces what the earlier one recorded.
   */
  async recordAudio(job: Job, audio: FetchedAudio): Promise<Job> {
    const next = withFetchedAudio(job, audio, this.now());
    await this.transaction(() => this.o.store.put(next));
    return next;
  }

  /**
   * Whether spool files named `id` are still needed: an upload being received, or a job
   * that has yet to be transcribed. Files of finished jobs (a crash between the commit
   * and the cleanup) and of unknown ids are not.
   */
  needsAudio(id: string): boolean {
    if (this.receiving.has(id)) return true;
    const status = this.o.store.get(id)?.status;
    return status === 'waiting' || status === 'processing';
  }

  /** Refuses `adding` more jobs when they would not all fit in the queue. */
  private checkCapacity(adding = 1): void {
    // Uploads still arriving count: each of them becomes a waiting job.
    const waiting = this.o.store.waitingCount() + this.receiving.size;
    if (waiting + adding > this.o.maxWaiting) {
      const asked = adding === 1 ? '' : ` for ${adding} more jobs`;
      throw new AppError('ERR_QUEUE_FULL', `The queue is full${asked} (${waiting} jobs waiting or arriving, ${this.o.maxWaiting} at most); try again later`);
    }
  }

  get(id: string): Job {
    const job = this.o.store.get(id);
    if (!job) throw new AppError('ERR_JOB_NOT_FOUND', `The job ID '${id}' was not found`);
    return job;
  }

  /** The job, or undefined (inside a transaction: as the transaction left it). */
  find(id: string): Job | undefined {
    return this.o.store.get(id);
  }

  result(id: string): StoredTranscript | undefined {
    return this.o.store.getResult(id);
  }

  /**
   * Copies this device's own jobs to the fleet after it (re)joined, so that GET on any
   * device finds them: the running ones as held copies, the finished ones (each once) with
   * their results. (Waiting ones are handed over: `handOver`.) How many were copied.
   */
  async shareOwn(): Promise<number> {
    const fleet = this.fleet;
    if (!fleet) return 0;
    // Copies it held of jobs that ended here while the broker was away go first.
    await fleet.releaseHolds((id) => this.o.store.get(id)?.status === 'processing');
    let copied = 0;
    for (const job of this.o.store.withStatus('processing')) {
      if (!fleet.connected) return copied;
      if (!job.synchronous && (await fleet.hold(job))) copied++;
    }
    for (const job of this.o.store.newest(Number.MAX_SAFE_INTEGER, (job) => isFinished(job) && !job.synchronous)) {
      if (!fleet.connected) return copied;
      if (await fleet.share(job, this.o.store.getResult(job.id))) copied++;
    }
    return copied;
  }

  /**
   * Hands this device's waiting batch transcriptions (IBM's uploads, Azure's content URLs:
   * accepted while the broker was away or refused them, or before the device joined) to
   * the fleet's queue, oldest first, after it (re)joined: idle devices take them, and GET
   * on any device finds them (docs/fleet.md, "A device's backlog"). Each is marked first,
   * durably, where a start would be written:
   * the scheduler neither picks nor starts a marked job, and a started job is not marked.
   * A client's DELETE meanwhile is ERR_JOB_BUSY (a moment later the job is the fleet's).
   * Removed here once the fleet has it; unmarked (this device runs it) when nothing of it
   * reached the fleet, which ends the round. A doubtful outcome (an acknowledgement lost),
   * and a mark a crash left, are resolved by a later round (FleetJobs.handOver finds what
   * the fleet has of it). How many were handed over.
   */
  async handOver(): Promise<number> {
    const fleet = this.fleet;
    if (!fleet) return 0;
    // Batch jobs: nobody waits on this device for them.
    const candidates = this.o.store.waitingJobs().filter((job) => job.handingOver || (!job.interactive && !job.streamed && !job.synchronous));
    let handed = 0;
    for (const { id, handingOver: resumed } of candidates) {
      if (!fleet.connected) break;
      const marked = await this.markHandingOver(id, true);
      if (!marked) continue; // started or deleted meanwhile
      const { handingOver: _, ...job } = marked;
      // A job with a source URL has no audio here: the device that runs it downloads it.
      const outcome = await fleet.handOver(job, job.source ? undefined : this.o.spool.uploadPath(id));
      if (outcome !== 'handed') {
        // Nothing of it in the fleet: it runs here. A mark a crash left, or a doubtful
        // outcome, stays for the next round to find out what the fleet has of it.
        if (outcome === 'refused' && !resumed) {
          await this.markHandingOver(id, false);
          this.o.onQueued();
        }
        break;
      }
      // A marked job is neither started nor deleted (`delete` refuses it): it is still here.
      await this.transaction(() => this.o.store.remove(id));
      await this.o.spool.removeFiles(id);
      handed++;
    }
    return handed;
  }

  /**
   * Returns jobs a crash left marked as being handed to the fleet to this device's queue:
   * at start on a device that is not (any more) in a fleet. How many.
   */
  async keepHandOvers(): Promise<number> {
    const marked = this.o.store.waitingJobs().filter((job) => job.handingOver);
    for (const { id } of marked) await this.markHandingOver(id, false);
    return marked.length;
  }

  /** Sets or clears a waiting job's `handingOver` mark; the job as written, undefined when it is not waiting. */
  private markHandingOver(id: string, on: boolean): Promise<Job | undefined> {
    return this.transaction(() => {
      const job = this.o.store.get(id);
      if (job?.status !== 'waiting') return undefined;
      const { handingOver: _, ...rest } = job;
      const next: Job = on ? { ...rest, handingOver: true } : rest;
      this.o.store.put(next);
      return next;
    });
  }

  /** Whether this device is in a fleet (EARSHOT_FLEET_URL), connected or not. */
  get inFleet(): boolean {
    return this.fleet !== undefined;
  }

  /**
   * The job, this device's own or (in a fleet) any device's; undefined when there is none.
   * @throws AppError ERR_FLEET_UNAVAILABLE (in a fleet whose broker is away, for a job not here)
   */
  async findAnywhere(id: string): Promise<Job | undefined> {
    return this.o.store.get(id) ?? (await this.fleet?.get(id));
  }

  /** The job, this device's own or (in a fleet) any device's. @throws AppError ERR_JOB_NOT_FOUND, ERR_FLEET_UNAVAILABLE */
  async lookup(id: string): Promise<Job> {
    const job = await this.findAnywhere(id);
    if (!job) throw new AppError('ERR_JOB_NOT_FOUND', `The job ID '${id}' was not found`);
    return job;
  }

  /** The result of a job this device has, or (in a fleet) of any device's. */
  async fetchResult(id: string): Promise<StoredTranscript | undefined> {
    if (this.o.store.get(id)) return this.o.store.getResult(id);
    return this.fleet?.result(id);
  }

  /** The newest jobs first, this device's and (in a fleet, while its broker is connected) every device's. */
  async newestEverywhere(limit: number, keep?: (job: Job) => boolean): Promise<Job[]> {
    const own = this.o.store.newest(limit, keep);
    if (!this.fleet?.connected) return own;
    const all = new Map(own.map((job) => [job.id, job]));
    const fleet = await this.fleet.newest(keep ? Number.MAX_SAFE_INTEGER : limit).catch(() => []);
    for (const job of fleet) if (!all.has(job.id) && (!keep || keep(job))) all.set(job.id, job);
    return [...all.values()].sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : -1)).slice(0, limit);
  }

  /** The newest jobs first, `limit` of those `keep` accepts (all by default). */
  newest(limit: number, keep?: (job: Job) => boolean): Job[] {
    return this.o.store.newest(limit, keep);
  }

  /**
   * Resolves with the job once it is completed or failed (at once if it already is), from
   * the commit of that state: no polling. Rejects with ERR_JOB_NOT_FOUND when there is no
   * such job or it is deleted first, and with ERR_ABORTED when `signal` aborts.
   */
  whenFinished(id: string, signal?: AbortSignal): Promise<Job> {
    const job = this.get(id);
    if (isFinished(job)) return Promise.resolve(job);
    if (signal?.aborted) return Promise.reject(new AppError('ERR_ABORTED', 'the client closed the connection'));
    return new Promise<Job>((resolve, reject) => {
      const waiters = this.finishWaiters.get(id) ?? new Set<FinishWaiter>();
      this.finishWaiters.set(id, waiters);
      const onAbort = () => {
        forget();
        reject(new AppError('ERR_ABORTED', 'the client closed the connection'));
      };
      const forget = () => {
        signal?.removeEventListener('abort', onAbort);
        waiters.delete(waiter);
        if (waiters.size === 0 && this.finishWaiters.get(id) === waiters) this.finishWaiters.delete(id);
      };
      const waiter: FinishWaiter = {
        resolve: (done) => {
          forget();
          resolve(done);
        },
        reject: (err) => {
          forget();
          reject(err);
        },
      };
      waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Settles the `whenFinished` promises of a job that finished (`job`) or was removed (undefined). */
  private settleWaiters(id: string, job: Job | undefined): void {
    const waiters = this.finishWaiters.get(id);
    if (!waiters) return;
    for (const waiter of [...waiters]) {
      if (job) waiter.resolve(job);
      else waiter.reject(new AppError('ERR_JOB_NOT_FOUND', `The job ID '${id}' was deleted before it finished`));
    }
  }

  /**
   * The segments of a job that streams them (`Job.streamed`) as its transcription produces
   * them, from the first, as the stored transcript will have them (profanity included);
   * ends when the job finishes, goes back to waiting or is deleted, or `signal` aborts. The
   * finished transcript's segments begin with these: a reader that came late (the job
   * finished first) reads the rest from it. Nothing for other jobs.
   */
  segments(id: string, signal?: AbortSignal): AsyncGenerator<StoredSegment, void, undefined> {
    const job = this.o.store.get(id);
    if (!job?.streamed || isFinished(job)) return new SegmentFeed().read(AbortSignal.abort());
    return this.feed(id).read(signal);
  }

  private feed(id: string): SegmentFeed {
    let feed = this.feeds.get(id);
    if (!feed) {
      feed = new SegmentFeed();
      this.feeds.set(id, feed);
    }
    return feed;
  }

  /** A segment the engine produced for a running job that streams them (the scheduler's). */
  publishSegment(job: Job, segment: Segment): void {
    const { tokens: _tokens, ...stored } = segment;
    const censored = censorSegment(stored, job.output.profanity ?? 'none');
    if (censored) this.feed(job.id).push(censored);
  }

  private endFeed(id: string): void {
    this.feeds.get(id)?.end();
    this.feeds.delete(id);
  }

  /** Feeds kept (running streamed jobs and their readers), for tests. */
  get feedCount(): number {
    return this.feeds.size;
  }

  progressOf(id: string): number | undefined {
    return this.progress.get(id);
  }

  setProgress(id: string, percent: number): void {
    this.progress.set(id, percent);
  }

  /** Deletes a job that is not being processed, with its results and audio (in a fleet: any device's). */
  async delete(id: string): Promise<void> {
    if (this.fleet && !this.o.store.get(id)) {
      await this.fleet.delete(id);
      return;
    }
    // Checked where the removal is written: the scheduler may start the job meanwhile.
    await this.transaction(() => {
      const job = this.get(id);
      if (job.status === 'processing') {
        throw new AppError('ERR_JOB_BUSY', `Job '${id}' is currently being processed and cannot be deleted`);
      }
      // A moment later it is the fleet's, and deleted there.
      if (job.handingOver) throw new AppError('ERR_JOB_BUSY', `Job '${id}' is being handed to the fleet's queue; try again in a moment`);
      this.o.store.remove(id);
      for (const n of this.notifiers) n.notify(job, 'deleted', undefined);
    });
    this.o.onNotified();
    this.endFeed(id);
    this.settleWaiters(id, undefined);
    await this.o.spool.removeFiles(id);
    // Its copy in the fleet, if it was shared.
    await this.fleet?.forget(id);
  }

  /**
   * Gets rid of a job whose answer nobody will read (a synchronous request whose client
   * left, or one that was answered): at once while it waits or once finished; a job being
   * processed cannot be stopped through the service, so it finishes (the engine is busy
   * with it anyway) and is deleted then. Never throws: the sweep removes whatever is left
   * when the job's time to live is over.
   */
  async discard(id: string): Promise<void> {
    try {
      await this.delete(id);
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'ERR_JOB_BUSY')) return;
      await this.whenFinished(id)
        .then(() => this.delete(id))
        .catch(() => {});
    }
  }

  /**
   * waiting → processing; counts the attempt (crash recovery relies on it). Undefined
   * when the job is not waiting any more where the change is written (deleted since it
   * was picked): nothing is written then.
   */
  async start(job: Job): Promise<Job | undefined> {
    const next: Job = { ...job, status: 'processing', attempts: job.attempts + 1, updated: this.now() };
    if (!(await this.commit(next, 'started', undefined, 'waiting'))) return undefined;
    this.progress.set(job.id, 0);
    return next;
  }

  /** processing → completed, with the transcript as the client asked for it (profanity). */
  async complete(job: Job, transcript: Transcript, timings: JobTimings): Promise<Job> {
    const { job: next, result } = completion(job, transcript, timings, this.now());
    await this.commit(next, 'completed', result);
    await this.finish(job.id);
    return next;
  }

  async fail(job: Job, error: JobError): Promise<Job> {
    const now = this.now();
    const next: Job = { ...job, status: 'failed', updated: now, expiresAt: now + job.resultsTtlMs, error };
    await this.commit(next, 'failed');
    await this.finish(job.id);
    return next;
  }

  /** processing → waiting: the service is stopping, or it restarted mid-job. */
  async requeue(job: Job, options: { countAttempt: boolean }): Promise<Job> {
    const next: Job = {
      ...job,
      status: 'waiting',
      updated: this.now(),
      attempts: options.countAttempt ? job.attempts : Math.max(0, job.attempts - 1),
    };
    await this.transaction(() => this.o.store.put(next));
    this.progress.delete(job.id);
    // Its next attempt produces the segments again: a reader has the ones it read, and the rest comes with the transcript.
    this.endFeed(job.id);
    return next;
  }

  /** Removes finished jobs whose results expired; returns how many. */
  async sweep(limit = 100): Promise<number> {
    const candidates = this.o.store.expired(this.now(), limit).filter(isFinished);
    if (!candidates.length) return 0;
    // Only those still there where the removal is written (a client may delete one meanwhile).
    const expired = await this.transaction(() =>
      candidates.filter((job) => {
        if (!this.o.store.get(job.id)) return false;
        this.o.store.remove(job.id);
        for (const n of this.notifiers) n.notify(job, 'deleted', undefined);
        return true;
      }),
    );
    this.o.onNotified();
    for (const job of expired) this.settleWaiters(job.id, undefined);
    for (const job of expired) await this.o.spool.removeFiles(job.id);
    return expired.length;
  }

  private async finish(id: string): Promise<void> {
    this.progress.delete(id);
    // The audio is not needed any more; results live in LMDB until they expire.
    await this.o.spool.removeFiles(id);
  }

  /**
   * Writes `job` with its result and notifications; with `from`, only if the stored job
   * is still in that status where the change is written. Resolves whether it was written.
   */
  private async commit(job: Job, change: JobChange, result?: StoredTranscript, from?: Job['status']): Promise<boolean> {
    const written = await this.transaction(() => {
      // A job being handed to the fleet is not started here: the fleet runs it.
      const stored = this.o.store.get(job.id);
      if (from && (stored?.status !== from || stored.handingOver)) return false;
      this.o.store.put(job);
      if (result) this.o.store.putResult(job.id, result);
      for (const n of this.notifiers) n.notify(job, change, result);
      return true;
    });
    if (!written) return false;
    this.o.onNotified();
    // In a fleet, any device's GET finds it, running or finished (in the background: the
    // broker may be slow or away). Not a synchronous job: nobody asks anyone for it.
    const shared = this.fleet && !job.synchronous ? this.fleet : undefined;
    if (change === 'started') void shared?.hold(job);
    if (isFinished(job)) {
      this.endFeed(job.id);
      this.settleWaiters(job.id, job);
      void shared?.share(job, result);
    }
    return true;
  }

  private async transaction<T>(fn: () => T): Promise<T> {
    try {
      return await this.o.db.durably(fn);
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError('ERR_STORE', `Could not store the job: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** A job with the audio downloaded from its source recorded (its size, type, format and warnings). */
export function withFetchedAudio(job: Job, audio: FetchedAudio, now: number): Job {
  return {
    ...job,
    contentType: audio.contentType,
    format: audio.format,
    audioBytes: audio.bytes,
    warnings: [...job.warnings, ...(audio.warnings ?? []).filter((w) => !job.warnings.includes(w))],
    updated: now,
  };
}

/**
 * A job completed at `now` with `transcript`, and the result to store with it (as stored:
 * profanity masked as the job asked). One definition for a device's own jobs and a fleet's.
 */
export function completion(job: Job, transcript: Transcript, timings: JobTimings, now: number): { job: Job; result: StoredTranscript } {
  return {
    job: { ...job, status: 'completed', updated: now, expiresAt: now + job.resultsTtlMs, audioDurationMs: transcript.durationMs, timings },
    result: censorTranscript(storedTranscript(transcript), job.output.profanity ?? 'none'),
  };
}
