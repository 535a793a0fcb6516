/**
 * Jobs answered on the request that submitted them (Azure's fast transcription, OpenAI's
 * audio API): the request waits for the job, takes its transcript and deletes it, since
 * nobody will ask for it again.
 */
import { AppError, isErrorCode } from '../errors.js';
import type { Job } from './job.js';
import type { JobService } from './job-service.js';
import type { StoredTranscript } from './job-store.js';

/** A failed job as the error of the request that waited for it (its own code: a corrupt file is the client's 400). */
export function jobFailure(job: Job): AppError {
  const code = job.error && isErrorCode(job.error.code) ? job.error.code : 'ERR_INTERNAL';
  return new AppError(code, job.error?.message ?? 'The transcription failed');
}

/**
 * Gets rid of a synchronous job when nobody will read it: at once while it waits; a job
 * being processed cannot be stopped through the service, so it finishes (the engine is
 * busy with it anyway) and is deleted then. Never throws: the sweep removes whatever is
 * left when its short time to live is over.
 */
export async function discardJob(service: JobService, id: string): Promise<void> {
  try {
    await service.delete(id);
  } catch (err) {
    if (!(err instanceof AppError && err.code === 'ERR_JOB_BUSY')) return;
    await service
      .whenFinished(id)
      .then(() => service.delete(id))
      .catch(() => {});
  }
}

/**
 * Waits for a synchronous job, then deletes it and resolves with its transcript; rejects
 * with the job's own error when it failed, or ERR_ABORTED when the client left (`signal`).
 */
export async function transcriptOnce(service: JobService, id: string, signal: AbortSignal): Promise<StoredTranscript> {
  let finished: Job;
  try {
    finished = await service.whenFinished(id, signal);
  } catch (err) {
    // The client left: its answer will not be read. See discardJob for the choice.
    void discardJob(service, id);
    throw err;
  }
  const transcript = service.result(finished.id);
  await discardJob(service, finished.id);
  if (finished.status !== 'completed' || !transcript) throw jobFailure(finished);
  return transcript;
}
