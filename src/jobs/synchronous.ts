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
 * Waits for a synchronous job, then deletes it and resolves with its transcript; rejects
 * with the job's own error when it failed, or ERR_ABORTED when the client left (`signal`).
 */
export async function transcriptOnce(service: JobService, id: string, signal: AbortSignal): Promise<StoredTranscript> {
  let finished: Job;
  try {
    finished = await service.whenFinished(id, signal);
  } catch (err) {
    // The client left: its answer will not be read (see JobService.discard).
    void service.discard(id);
    throw err;
  }
  const transcript = service.result(finished.id);
  await service.discard(finished.id);
  if (finished.status !== 'completed' || !transcript) throw jobFailure(finished);
  return transcript;
}
