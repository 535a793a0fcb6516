import type { Segment, Transcript } from '../engine/engine.js';
import { type StateDatabase, storableKey } from '../store/database.js';
import type { Job } from './job.js';

/** A transcript as kept with a finished job: tokens dropped (the words carry what clients get). */
export type StoredTranscript = Omit<Transcript, 'segments'> & { segments: Array<Omit<Segment, 'tokens'>> };

export function storedTranscript(t: Transcript): StoredTranscript {
  return { ...t, segments: t.segments.map(({ tokens: _tokens, ...rest }) => rest) };
}

type IndexKey = [number, string];

const statuses: ReadonlyArray<Job['status']> = ['waiting', 'processing', 'completed', 'failed'];
/** Present once the counters are kept (stores of earlier releases get them in `upgrade()`). */
const countsKept = 'kept';
const noJobs: ReadonlySet<string> = new Set();

/**
 * Jobs in LMDB. Reads are synchronous snapshots; writes (`put`, `remove`, `putResult`)
 * must run inside `StateDatabase.durably()` so that a job, its indexes and the
 * notifications of its state change commit together.
 *
 * Indexes: by creation time (listing), waiting jobs by creation time (the queue: FIFO),
 * finished jobs by expiry time (the sweeper). Counters of jobs by status change in the
 * same transactions, so /metrics reads four numbers instead of decoding every job.
 */
export class JobStore {
  constructor(private readonly db: StateDatabase) {}

  // Looked up at each use (a map lookup): the environment opens in App.start(), after
  // construction, and a handle kept across a close and reopen would be stale.
  private get jobs() {
    return this.db.db<Job, string>('jobs');
  }
  private get results() {
    return this.db.db<StoredTranscript, string>('results');
  }
  private get byCreated() {
    return this.db.db<null, IndexKey>('jobs-by-created');
  }
  private get waiting() {
    return this.db.db<null, IndexKey>('jobs-waiting');
  }
  /** The interactive ones among the waiting (also in `waiting`): they run first. */
  private get waitingInteractive() {
    return this.db.db<null, IndexKey>('jobs-waiting-interactive');
  }
  private get byExpiry() {
    return this.db.db<null, IndexKey>('jobs-by-expiry');
  }
  private get counts() {
    return this.db.db<number, string>('jobs-counts');
  }

  private count(status: Job['status'], delta: number): void {
    this.counts.putSync(status, (this.counts.get(status) ?? 0) + delta);
  }

  /**
   * Counts the jobs of a store that has no counters yet (an earlier release's), once;
   * run at start. Resolves to whether it had to.
   */
  upgrade(): Promise<boolean> {
    if (this.counts.get(countsKept) !== undefined) return Promise.resolve(false);
    return this.db.durably(() => {
      const counts = this.scanCounts();
      for (const status of statuses) this.counts.putSync(status, counts[status]);
      this.counts.putSync(countsKept, 1);
      return true;
    });
  }

  get(id: string): Job | undefined {
    return storableKey(id) ? this.jobs.get(id) : undefined;
  }

  /**
   * Writes the job and keeps the indexes in step with its status (inside durably()). A
   * job's creation time is the stored one: a copy held across a clock rebase (the running
   * job) has the time before the move.
   */
  put(job: Job): void {
    const previous = this.jobs.get(job.id);
    if (previous) {
      this.unindex(previous);
      this.count(previous.status, -1);
    }
    this.count(job.status, +1);
    const record = previous ? { ...job, created: previous.created } : job;
    this.jobs.putSync(record.id, record);
    this.index(record);
  }

  private index(job: Job): void {
    this.byCreated.putSync([job.created, job.id], null);
    if (job.status === 'waiting') {
      this.waiting.putSync([job.created, job.id], null);
      if (job.interactive) this.waitingInteractive.putSync([job.created, job.id], null);
    }
    if (job.expiresAt !== undefined) this.byExpiry.putSync([job.expiresAt, job.id], null);
  }

  /** Removes the job, its result and its index entries (inside durably()). */
  remove(id: string): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.unindex(job);
    this.count(job.status, -1);
    this.jobs.removeSync(id);
    this.results.removeSync(id);
  }

  private unindex(job: Job): void {
    this.byCreated.removeSync([job.created, job.id]);
    this.waiting.removeSync([job.created, job.id]);
    if (job.interactive) this.waitingInteractive.removeSync([job.created, job.id]);
    if (job.expiresAt !== undefined) this.byExpiry.removeSync([job.expiresAt, job.id]);
  }

  putResult(id: string, transcript: StoredTranscript): void {
    this.results.putSync(id, transcript);
  }

  getResult(id: string): StoredTranscript | undefined {
    return storableKey(id) ? this.results.get(id) : undefined;
  }

  /** The newest jobs first, `limit` of those `keep` accepts (all by default). */
  newest(limit: number, keep: (job: Job) => boolean = () => true): Job[] {
    const out: Job[] = [];
    if (limit <= 0) return out;
    for (const key of this.byCreated.getKeys({ reverse: true })) {
      const job = this.jobs.get(key[1]);
      if (job && keep(job)) out.push(job);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * The next job to run: the oldest interactive one (someone is waiting for it), else the
   * oldest waiting; none of `except` (jobs a scheduler lane has claimed but not started yet)
   * nor of those being handed to the fleet.
   */
  nextWaiting(except: ReadonlySet<string> = noJobs): Job | undefined {
    return this.nextInteractive(except) ?? this.firstNotIn(this.waiting.getKeys(), except);
  }

  /** The oldest waiting interactive job, none of `except`. */
  nextInteractive(except: ReadonlySet<string> = noJobs): Job | undefined {
    return this.firstNotIn(this.waitingInteractive.getKeys(), except);
  }

  private firstNotIn(keys: Iterable<IndexKey>, except: ReadonlySet<string>): Job | undefined {
    for (const [, id] of keys) {
      if (except.has(id)) continue;
      const job = this.jobs.get(id);
      if (job && !job.handingOver) return job;
    }
    return undefined;
  }

  /** The waiting jobs, oldest first (the queue's index, not a scan of every job). */
  waitingJobs(): Job[] {
    const out: Job[] = [];
    for (const [, id] of this.waiting.getKeys()) {
      const job = this.jobs.get(id);
      if (job) out.push(job);
    }
    return out;
  }

  /** From the counters (every submission asks: counting the index's keys grew with the queue). */
  waitingCount(): number {
    if (this.counts.get(countsKept) === undefined) return this.waiting.getKeysCount();
    return this.counts.get('waiting') ?? 0;
  }

  /** Jobs in a state, scanning all jobs: for start-up recovery and metrics, not hot paths. */
  withStatus(status: Job['status']): Job[] {
    const out: Job[] = [];
    for (const { value } of this.jobs.getRange()) if (value.status === status) out.push(value);
    return out;
  }

  /** How many jobs are in each status: the counters (a scan only before `upgrade()` ran). */
  countByStatus(): Record<Job['status'], number> {
    if (this.counts.get(countsKept) === undefined) return this.scanCounts();
    return Object.fromEntries(statuses.map((status) => [status, this.counts.get(status) ?? 0])) as Record<Job['status'], number>;
  }

  private scanCounts(): Record<Job['status'], number> {
    const counts = { waiting: 0, processing: 0, completed: 0, failed: 0 };
    for (const { value } of this.jobs.getRange()) counts[value.status]++;
    return counts;
  }

  /**
   * Moves every job's times by `deltaMs` (inside durably()): the wall clock stepped, and
   * expiry, queue order and ages must stay what they were (see ServiceClock).
   */
  shiftTimes(deltaMs: number): number {
    let count = 0;
    for (const { value: job } of [...this.jobs.getRange()]) {
      this.unindex(job);
      const moved: Job = { ...job, created: job.created + deltaMs, updated: job.updated + deltaMs };
      if (job.expiresAt !== undefined) moved.expiresAt = job.expiresAt + deltaMs;
      this.jobs.putSync(job.id, moved);
      this.index(moved);
      count++;
    }
    return count;
  }

  /** The newest creation time of a job (0 when there is none): a floor for the clock. */
  newestCreated(): number {
    for (const key of this.byCreated.getKeys({ reverse: true, limit: 1 })) return key[0];
    return 0;
  }

  /** Finished jobs whose results expired at or before `now`. */
  expired(now: number, limit: number): Job[] {
    const out: Job[] = [];
    for (const key of this.byExpiry.getKeys({ end: [now, '\uffff'], limit })) {
      const job = this.jobs.get(key[1]);
      if (job) out.push(job);
    }
    return out;
  }
}
