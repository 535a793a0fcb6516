import { randomUUID } from 'node:crypto';

import type { ModelAbilities } from '../dialect.js';
import { AppError } from '../errors.js';
import type { Job } from '../jobs/job.js';
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

/**
 * Azure's transcriptions over the jobs domain: a batch created through Azure's API is a
 * record and one job per content URL; a job of another dialect is a transcription of its
 * own. Routes call this; it calls JobService for everything durable about jobs.
 */
export class AzureTranscriptions {
  constructor(
    private readonly service: JobService,
    private readonly batches: BatchStore,
    private readonly model: () => ModelAbilities,
  ) {}

  /** @throws AppError ERR_NOT_FOUND */
  entity(id: string): TranscriptionEntity {
    const batch = this.batches.get(id);
    if (batch) return batchEntity(batch, (jobId) => this.service.find(jobId));
    const job = this.service.find(id);
    if (!job || !isOwnTranscription(job)) throw new AppError('ERR_NOT_FOUND', `The transcription '${id}' was not found`);
    return jobEntity(job);
  }

  /** The newest `limit` transcriptions, newest first: batches and the jobs of other dialects. */
  newest(limit: number): TranscriptionEntity[] {
    const jobs = this.service.newest(limit, isOwnTranscription);
    const entities = [...this.batches.all().map((b) => batchEntity(b, (jobId) => this.service.find(jobId))), ...jobs.map(jobEntity)];
    return entities.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1)).slice(0, limit);
  }

  /**
   * Creates a batch: its record and one waiting job per content URL in one transaction
   * (durable before the answer); the device fetches each URL when the job's turn comes.
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
    await this.service.accept(requests, (jobs) => {
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
    });
    return this.entity(record!.id);
  }

  /** PATCH: the names of a batch (a job of another dialect has Azure names of its own to change). */
  async update(id: string, patch: BatchPatch): Promise<TranscriptionEntity> {
    if (!this.batches.get(id)) {
      this.entity(id); // 404 when it does not exist at all
      throw new AppError('ERR_INVALID_ARGUMENT', `The transcription '${id}' was not created through this API: its names cannot be changed`);
    }
    await this.batches.update(id, patch);
    return this.entity(id);
  }

  /**
   * Deletes a transcription with its results: every job of a batch, none while one is
   * being transcribed. Resolves false when there was none.
   */
  async delete(id: string): Promise<boolean> {
    let entity: TranscriptionEntity;
    try {
      entity = this.entity(id);
    } catch {
      return false;
    }
    const busy = entity.items.find(({ job }) => job.status === 'processing');
    if (busy) throw new AppError('ERR_JOB_BUSY', `The transcription '${id}' is being transcribed and cannot be deleted until it finished`);
    for (const { job } of entity.items) await this.service.delete(job.id);
    return true;
  }
}
