import { randomUUID } from 'node:crypto';

import type { ModelAbilities } from '../dialect.js';
import { AppError } from '../errors.js';
import type { Job } from '../jobs/job.js';
import type { StoredTranscript } from '../jobs/job-store.js';
import type { JobService, SourcedJobRequest } from '../jobs/job-service.js';
import type { ProfanityMode } from '../jobs/profanity.js';
import type { TranscriptionInput } from './transcription-input.js';
import { type BatchPatch, type BatchRecord, type BatchStore, batchEntity, jobEntity, type TranscriptionEntity } from './transcriptions.js';
import type { AzureVersion } from './versions.js';

/**
 * Whether a job is a transcription of its own: not one recording of a batch (part of the
 * batch's transcription) nor a fast transcription (answered on its request, never listed).
 */
const isOwnTranscription = (job: Job) => !job.group && !job.synchronous;

const profanity: Record<string, ProfanityMode> = { None: 'none', Masked: 'masked', Removed: 'removed', Tags: 'tags' };

/** What a fleet device does with the batch records it writes: they are replicated to every device. */
export interface AzureTranscriptionsFleet {
  /** The batch record was written or removed here: to the fleet's bucket (src/fleet/hooks.ts). */
  changed(id: string): void;
  /** Resolves once the changes so far are in the bucket. */
  replicated(): Promise<void>;
}

/** A fleet batch none of whose jobs exists any more is removed this long after its last action (its jobs' events are long handled). */
const staleBatchMs = 10 * 60_000;
/**
 * ...and once it has been seen without jobs for this long: a device that took a batch while
 * the broker was away copies its record to the fleet on its return before it has handed
 * its jobs over (docs/fleet.md, "A device's backlog": one after another, the oldest first,
 * each with its audio), and meanwhile the record is jobless to every other device.
 */
const joblessGraceMs = 10 * 60_000;

/**
 * Azure's transcriptions over the jobs domain: a batch created through Azure's API is a
 * record and one job per content URL; a job of another dialect is a transcription of its
 * own. Routes call this; it calls JobService for everything durable about jobs. In a fleet
 * (docs/fleet.md, "Azure batch transcriptions"), the records are replicated to every device
 * and the jobs are the fleet's: each read looks for a job here, else in the fleet.
 */
export class AzureTranscriptions {
  constructor(
    private readonly service: JobService,
    private readonly batches: BatchStore,
    private readonly model: () => ModelAbilities,
    private readonly fleet?: AzureTranscriptionsFleet,
    private readonly now: () => number = Date.now,
  ) {}

  /** When each batch record was first seen without a job anywhere (fleet only). */
  private readonly joblessSince = new Map<string, number>();

  /** @throws AppError ERR_NOT_FOUND, ERR_FLEET_UNAVAILABLE */
  async entity(id: string): Promise<TranscriptionEntity> {
    const batch = this.batches.get(id);
    if (batch) {
      const entity = await this.batchEntity(batch);
      if (entity) return entity;
      throw new AppError('ERR_NOT_FOUND', `The transcription '${id}' was not found`);
    }
    const job = await this.service.findAnywhere(id);
    if (!job || !isOwnTranscription(job)) throw new AppError('ERR_NOT_FOUND', `The transcription '${id}' was not found`);
    return jobEntity(job);
  }

  /**
   * A batch as an entity, its jobs found wherever they are. In a fleet, a batch none of
   * whose jobs exists (deleted, expired, or not yet stored by the device creating it) is
   * none (undefined), and its record goes once it is stale.
   */
  private async batchEntity(batch: BatchRecord): Promise<TranscriptionEntity | undefined> {
    if (!this.service.inFleet) return batchEntity(batch, (jobId) => this.service.find(jobId));
    const jobs = new Map<string, Job>();
    for (const jobId of batch.jobIds) {
      const job = await this.service.findAnywhere(jobId);
      if (job) jobs.set(jobId, job);
    }
    if (!jobs.size) {
      const now = this.now();
      const since = this.joblessSince.get(batch.id) ?? now;
      this.joblessSince.set(batch.id, since);
      if (batch.lastActionAt < now - staleBatchMs && since <= now - joblessGraceMs) await this.forget(batch.id);
      return undefined;
    }
    this.joblessSince.delete(batch.id);
    return batchEntity(batch, (jobId) => jobs.get(jobId));
  }

  /** Removes a batch record here and (replicated) everywhere. */
  private async forget(id: string): Promise<void> {
    this.joblessSince.delete(id);
    await this.batches.removeDurably(id);
    this.fleet?.changed(id);
  }

  /**
   * A fleet device's upkeep: the records of batches whose jobs are all gone (deleted, or
   * expired by the fleet's sweep) are removed once stale. How many were.
   */
  async sweep(): Promise<number> {
    if (!this.service.inFleet) return 0;
    let removed = 0;
    for (const batch of this.batches.all()) {
      if (batch.lastActionAt >= this.now() - staleBatchMs) continue;
      if (!(await this.batchEntity(batch)) && !this.batches.get(batch.id)) removed++;
    }
    return removed;
  }

  /** The results of a transcription's completed recordings (from here, or the fleet), to look up by job id. */
  async results(entity: TranscriptionEntity): Promise<(jobId: string) => StoredTranscript | undefined> {
    const results = new Map<string, StoredTranscript>();
    for (const { job } of entity.items) {
      if (job.status !== 'completed') continue;
      const result = await this.service.fetchResult(job.id);
      if (result) results.set(job.id, result);
    }
    return (jobId) => results.get(jobId);
  }

  /** The newest `limit` transcriptions, newest first: batches and the jobs of other dialects. */
  async newest(limit: number): Promise<TranscriptionEntity[]> {
    const jobs = this.service.inFleet ? await this.service.newestEverywhere(limit, isOwnTranscription) : this.service.newest(limit, isOwnTranscription);
    const batches: TranscriptionEntity[] = [];
    for (const batch of this.batches.all()) {
      const entity = await this.batchEntity(batch);
      if (entity) batches.push(entity);
    }
    const entities = [...batches, ...jobs.map(jobEntity)];
    return entities.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1)).slice(0, limit);
  }

  /**
   * Creates a batch: its record and one waiting job per content URL in one transaction
   * (durable before the answer); the device fetches each URL when the job's turn comes.
   * In a fleet whose broker is connected: the record first (here, then in the fleet's
   * bucket), then each job in the fleet's queue (any device fetches and runs it).
   */
  async create(input: TranscriptionInput, version: AzureVersion): Promise<TranscriptionEntity> {
    this.model(); // not before the model is loaded: the locale was checked against it
    const id = randomUUID();
    const words = input.properties.wordLevelTimestampsEnabled || input.properties.displayFormWordLevelTimestampsEnabled;
    const requests: SourcedJobRequest[] = input.contentUrls.map((url) => ({
      model: input.locale,
      options: { language: input.language, words },
      output: { timestamps: words, wordConfidence: words, profanity: profanity[input.properties.profanityFilterMode] ?? 'masked' },
      resultsTtlMs: input.properties.timeToLiveMs,
      source: { url },
      group: id,
    }));
    let record: BatchRecord | undefined;
    await this.service.accept(
      requests,
      (jobs) => {
        const now = jobs[0]!.created;
        record = {
          id,
          displayName: input.displayName,
          ...(input.description !== undefined ? { description: input.description } : {}),
          ...(input.customProperties ? { customProperties: input.customProperties } : {}),
          locale: input.locale,
          contentUrls: input.contentUrls,
          jobIds: jobs.map((j) => j.id),
          properties: input.properties,
          apiVersion: version,
          createdAt: now,
          lastActionAt: now,
        };
        this.batches.put(record);
      },
      {
        shareable: this.fleet !== undefined,
        // Every device that handles one of its jobs' events finds the record (or reads it from the bucket).
        shared: async () => {
          this.fleet?.changed(id);
          await this.fleet?.replicated();
        },
      },
    );
    // Without a fleet (or when its jobs stayed here): the record to the bucket now (a no-op on a single device).
    this.fleet?.changed(id);
    return this.entity(record!.id);
  }

  /** PATCH: the names of a batch (a job of another dialect has Azure names of its own to change). */
  async update(id: string, patch: BatchPatch): Promise<TranscriptionEntity> {
    if (!this.batches.get(id)) {
      await this.entity(id); // 404 when it does not exist at all
      throw new AppError('ERR_INVALID_ARGUMENT', `The transcription '${id}' was not created through this API: its names cannot be changed`);
    }
    await this.entity(id); // 404 when its jobs are gone
    await this.batches.update(id, patch);
    this.fleet?.changed(id);
    return this.entity(id);
  }

  /**
   * Deletes a transcription with its results: every job of a batch, none while one is
   * being transcribed. Resolves false when there was none. (In a fleet, the batch's record
   * goes with the fleet's upkeep, once its jobs' events are handled: `sweep`.)
   */
  async delete(id: string): Promise<boolean> {
    let entity: TranscriptionEntity;
    try {
      entity = await this.entity(id);
    } catch (err) {
      if (err instanceof AppError && err.code === 'ERR_NOT_FOUND') return false;
      throw err;
    }
    const busy = entity.items.find(({ job }) => job.status === 'processing');
    if (busy) throw new AppError('ERR_JOB_BUSY', `The transcription '${id}' is being transcribed and cannot be deleted until it finished`);
    for (const { job } of entity.items) await this.service.delete(job.id);
    return true;
  }
}
