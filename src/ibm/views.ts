import type { Job, OutputOptions } from '../jobs/job.js';
import type { StoredTranscript } from '../jobs/job-store.js';

const round = (x: number, digits: number) => Number(x.toFixed(digits));

/** IBM's SpeechRecognitionResults for a finished transcript: one final result per segment. */
export function speechRecognitionResults(transcript: StoredTranscript, output: OutputOptions, warnings: string[]) {
  const results = transcript.segments
    .filter((s) => s.text !== '')
    .map((s) => {
      const words = s.words.filter((w) => w.text !== '');
      return {
        final: true,
        alternatives: [
          {
            // IBM's transcripts end with a space.
            transcript: `${s.text} `,
            confidence: round(s.confidence, 2),
            ...(output.timestamps ? { timestamps: words.map((w) => [w.text, round(w.start / 1000, 2), round(w.end / 1000, 2)]) } : {}),
            ...(output.wordConfidence ? { word_confidence: words.map((w) => [w.text, round(w.confidence, 2)]) } : {}),
          },
        ],
      };
    });
  return { result_index: 0, results, ...(warnings.length ? { warnings } : {}) };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A job in GET /v1/recognitions (the list). */
export function jobSummary(job: Job) {
  return {
    id: job.id,
    created: iso(job.created),
    updated: iso(job.updated),
    status: job.status,
    ...(job.userToken !== undefined ? { user_token: job.userToken } : {}),
  };
}

/**
 * A job in GET /v1/recognitions/{id}: IBM's fields, `results` once completed, plus
 * earshot's `progress` (percent) while processing and the reason of a failure.
 */
export function jobDetail(job: Job, transcript: StoredTranscript | undefined, progress: number | undefined) {
  return {
    ...jobSummary(job),
    ...(job.status === 'completed' && transcript ? { results: [speechRecognitionResults(transcript, job.output, job.warnings)] } : {}),
    // Whole percents, as clients expect; the service keeps fractions (a percent of a long file is minutes).
    ...(job.status === 'processing' && progress !== undefined ? { progress: Math.floor(progress) } : {}),
    ...(job.status === 'failed' && job.error ? { error: job.error.message, error_code: job.error.code } : {}),
    // earshot's own: where the time went (IBM clients ignore fields they do not know).
    ...(job.timings
      ? {
          processing_times: {
            audio_seconds: (job.audioDurationMs ?? 0) / 1000,
            queue_ms: job.timings.queueMs,
            decode_ms: job.timings.decodeMs,
            transcribe_ms: job.timings.transcribeMs,
          },
        }
      : {}),
  };
}
