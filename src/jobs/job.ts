import type { AudioFormat } from '../engine/media-type.js';
import type { TranscribeOptions } from '../engine/engine.js';

/** IBM's job states; Azure's NotStarted/Running/Succeeded/Failed map onto them. */
export type JobStatus = 'waiting' | 'processing' | 'completed' | 'failed';

export const ibmEvents = [
  'recognitions.started',
  'recognitions.completed',
  'recognitions.completed_with_results',
  'recognitions.failed',
] as const;
export type IbmEvent = (typeof ibmEvents)[number];

/** How results are rendered for the client (IBM's recognition parameters). */
export interface OutputOptions {
  timestamps: boolean;
  wordConfidence: boolean;
}

export interface JobTimings {
  /** From submission to the start of processing. */
  queueMs: number;
  /** The out-of-process decoder, to 16 kHz PCM. */
  decodeMs: number;
  /** The engine's transcription, as the engine measured it. */
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
  /** The API the job was submitted through. */
  dialect: 'ibm' | 'azure';
  contentType: string;
  format: AudioFormat;
  audioBytes: number;
  /** The model the client asked for (an IBM model name), as given. */
  model: string;
  options: TranscribeOptions;
  output: OutputOptions;
  callback?: { url: string; events: IbmEvent[]; userToken?: string };
  /** Returned by GET /v1/recognitions only when the job has a callback (IBM). */
  userToken?: string;
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
}

export const isFinished = (job: Job): boolean => job.status === 'completed' || job.status === 'failed';
