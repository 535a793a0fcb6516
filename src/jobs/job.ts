import type { AudioFormat } from '../engine/media-type.js';
import type { TranscribeOptions } from '../engine/engine.js';
import type { ProfanityMode } from './profanity.js';

/** IBM's job states; Azure's NotStarted/Running/Succeeded/Failed map onto them. */
export type JobStatus = 'waiting' | 'processing' | 'completed' | 'failed';

/** How results are rendered for the client (IBM's recognition parameters). */
export interface OutputOptions {
  timestamps: boolean;
  wordConfidence: boolean;
  /** Applied when the job completes; absent (jobs of earlier releases, which ignored it): none. */
  profanity?: ProfanityMode;
}

export interface JobTimings {
  /** From submission to the start of processing. */
  queueMs: number;
  /** Downloading the audio from the job's source (jobs with a `source` only). */
  fetchMs?: number;
  /**
   * The out-of-process decoder checking the whole upload (16 kHz PCM, counted, not kept)
   * before transcription starts. The second decode, into the engine, runs alongside
   * inference and is part of `transcribeMs` (docs/pcm-streaming.md).
   */
  decodeMs: number;
  /** The engine's transcription, as the engine measured it (reading the decoder's stream included). */
  transcribeMs: number;
}

export interface JobError {
  code: string;
  message: string;
}

/** One transcription job, as stored (LMDB, msgpack). Times are ms since the epoch. */
export interface Job {
  id: string;
  created: number;
  updated: number;
  status: JobStatus;
  contentType: string;
  format: AudioFormat;
  audioBytes: number;
  /**
   * Where the audio comes from when the client gave a URL instead of uploading it (Azure's
   * `contentUrls`): the job is created without audio (audioBytes 0, format "detect") and
   * the scheduler downloads it when the job runs, then records its size and format.
   */
  source?: { url: string };
  /** The model the client asked for (an IBM model name), as given. */
  model: string;
  options: TranscribeOptions;
  output: OutputOptions;
  /** A callback URL to notify of the named events (the submitting dialect's names). */
  callback?: { url: string; events: string[] };
  /** The client's own label of the job (IBM's user_token). */
  userToken?: string;
  /** Asked for by someone waiting (Wyoming, OpenAI, Azure fast transcription): runs before queued batch jobs. */
  interactive?: boolean;
  /** The id of the request that created this job with others (an Azure transcription of several content URLs). */
  group?: string;
  resultsTtlMs: number;
  /** Set when the job finishes: now + resultsTtlMs. */
  expiresAt?: number;
  /** How many times processing started (crash recovery gives up after the third). */
  attempts: number;
  audioDurationMs?: number;
  /** Where the time went, once finished (ms). */
  timings?: JobTimings;
  error?: JobError;
  warnings: string[];
  /**
   * Answered on the request that submitted it (Azure's fast transcription, OpenAI, Wyoming) and deleted
   * then: not a batch transcription, so not listed as one nor announced to web hooks.
   */
  synchronous?: boolean;
  /**
   * Its request streams the transcript (OpenAI's `stream=true`, Wyoming): each segment is
   * published as the engine produces it (JobService.segments).
   */
  streamed?: boolean;
  /**
   * Being handed to the fleet's queue (JobService.handOver): not run here, removed here
   * once the fleet has it, back to this device's queue if the fleet cannot take it.
   */
  handingOver?: boolean;
  /**
   * In the fleet's bucket only: the device (its fleet id) whose own running job this is a
   * copy of (it is in no queue of the fleet's), so that any device's GET finds it; replaced
   * by its finished state.
   */
  heldBy?: string;
}

export const isFinished = (job: Job): boolean => job.status === 'completed' || job.status === 'failed';
