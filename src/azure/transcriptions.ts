import type { Database } from 'lmdb';

import { AppError } from '../errors.js';
import { isFinished, type Job } from '../jobs/job.js';
import { type StateDatabase, storableKey } from '../store/database.js';
import type { AzureVersion } from './versions.js';
import type { AzureStatus } from './webhooks.js';

/** The transcription properties a client asked for at creation (Azure's names). */
export interface BatchProperties {
  wordLevelTimestampsEnabled: boolean;
  displayFormWordLevelTimestampsEnabled: boolean;
  punctuationMode: string;
  profanityFilterMode: string;
  timeToLiveMs: number;
}

/**
 * An Azure batch transcription as stored (LMDB `azure-transcriptions`): its names and
 * properties, and one job per content URL (`jobIds[i]` transcribes `contentUrls[i]`).
 * Its status is never stored: it is derived from its jobs, so it cannot disagree with them.
 */
export interface BatchRecord {
  id: string;
  displayName: string;
  description?: string;
  customProperties?: Record<string, string>;
  locale: string;
  contentUrls: string[];
  jobIds: string[];
  properties: BatchProperties;
  apiVersion: AzureVersion;
  createdAt: number;
  lastActionAt: number;
}

/** One recording of a transcription: its job and what Azure's files name as its `source`. */
export interface TranscriptionItem {
  job: Job;
  /** The content URL (batch), or the transcription's own URL (a job of another dialect). */
  source?: string;
  /** Its position among the content URLs (the `_<i>` of `contenturl_<i>.json`). */
  index: number;
}

/**
 * What Azure shows as a transcription: a batch created through Azure's API, or one job of
 * another dialect (IBM's uploads, fast transcriptions), which is a transcription of one file.
 */
export interface TranscriptionEntity {
  id: string;
  batch?: BatchRecord;
  items: TranscriptionItem[];
  status: AzureStatus;
  createdAt: number;
  lastActionAt: number;
  /** The first failure, when every recording failed. */
  error?: JobError;
}

type JobError = NonNullable<Job['error']>;

/**
 * All waiting: NotStarted. All finished: Succeeded when any succeeded, else Failed (Azure
 * reports the failures of a partly successful batch in its report file). Otherwise Running.
 */
export function batchStatus(jobs: readonly Job[]): AzureStatus {
  if (!jobs.length || jobs.every((j) => j.status === 'waiting')) return 'NotStarted';
  if (!jobs.every(isFinished)) return 'Running';
  return jobs.some((j) => j.status === 'completed') ? 'Succeeded' : 'Failed';
}

/** A batch as an entity, from the jobs of it that still exist. */
export function batchEntity(batch: BatchRecord, find: (id: string) => Job | undefined): TranscriptionEntity {
  const items = batch.jobIds.flatMap((id, index) => {
    const job = find(id);
    return job ? [{ job, source: batch.contentUrls[index], index }] : [];
  });
  const jobs = items.map((i) => i.job);
  const status = batchStatus(jobs);
  const failed = status === 'Failed' ? jobs.find((j) => j.error)?.error : undefined;
  return {
    id: batch.id,
    batch,
    items,
    status,
    createdAt: batch.createdAt,
    lastActionAt: Math.max(batch.lastActionAt, ...jobs.map((j) => j.updated)),
    ...(failed ? { error: failed } : {}),
  };
}

/** A job of another dialect as a transcription of one file. */
export function jobEntity(job: Job): TranscriptionEntity {
  const status = batchStatus([job]);
  return {
    id: job.id,
    items: [{ job, index: 0 }],
    status,
    createdAt: job.created,
    lastActionAt: job.updated,
    ...(status === 'Failed' && job.error ? { error: job.error } : {}),
  };
}

/** What PATCH may change (Azure: displayName, description, customProperties). */
export interface BatchPatch {
  displayName?: string;
  description?: string | null;
  customProperties?: Record<string, string> | null;
}

/** The store of Azure batch transcriptions. */
export class BatchStore {
  constructor(
    private readonly db: StateDatabase,
    private readonly now: () => number = Date.now,
  ) {}

  // Looked up on each use: the environment opens in App.start(), after construction.
  private get records(): Database<BatchRecord, string> {
    return this.db.db<BatchRecord, string>('azure-transcriptions');
  }

  get(id: string): BatchRecord | undefined {
    return storableKey(id) ? this.records.get(id) : undefined;
  }

  /** Inside a transaction (the one that creates its jobs). */
  put(record: BatchRecord): void {
    this.records.putSync(record.id, record);
  }

  /** Inside a transaction (the one that removes its last job). */
  remove(id: string): void {
    this.records.removeSync(id);
  }

  /** Removes a record in a transaction of its own (a fleet's batch whose jobs are gone). */
  async removeDurably(id: string): Promise<void> {
    await this.db.durably(() => this.records.removeSync(id));
  }

  /** Every batch, newest first. */
  all(): BatchRecord[] {
    return [...this.records.getRange()].map((e) => e.value).sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  }

  async update(id: string, patch: BatchPatch): Promise<BatchRecord> {
    const current = this.get(id);
    if (!current) throw new AppError('ERR_NOT_FOUND', `The transcription '${id}' was not found`);
    const next: BatchRecord = { ...current, lastActionAt: this.now() };
    if (patch.displayName !== undefined) next.displayName = patch.displayName;
    if (patch.description === null) delete next.description;
    else if (patch.description !== undefined) next.description = patch.description;
    if (patch.customProperties === null) delete next.customProperties;
    else if (patch.customProperties !== undefined) next.customProperties = patch.customProperties;
    await this.db.durably(() => {
      if (!this.get(id)) throw new AppError('ERR_NOT_FOUND', `The transcription '${id}' was deleted meanwhile`);
      this.put(next);
    });
    return next;
  }
}
