/**
 * A transcription's files, Azure-style: the result (`kind: Transcription`, Azure's result
 * JSON made from the stored transcript) and the report (`kind: TranscriptionReport`), each
 * with a `contentUrl` that works without the API key until it expires, like Azure's SAS
 * URLs.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

import { AppError } from '../errors.js';
import type { Job } from '../jobs/job.js';
import type { StoredTranscript } from '../jobs/job-store.js';
import { azureDateTime, isoDuration, ticks, transcriptionSelf } from './views.js';

export type FileKind = 'Transcription' | 'TranscriptionReport';

const fileNames: Record<FileKind, string> = { Transcription: 'contenturl_0.json', TranscriptionReport: 'report.json' };

/** A stable, UUID-shaped id for one of a job's files. */
export function fileId(jobId: string, kind: FileKind): string {
  const h = createHash('sha256').update(`${jobId}/${kind}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Signs content URLs: `?se=<expiry, Unix seconds>&sig=<HMAC-SHA256(key, job/file/se)>`.
 * The key is set at start (derived from the API key, so URLs survive restarts and stop
 * working when the key changes).
 */
export class ContentUrls {
  private key: Buffer | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  setKey(key: Buffer): void {
    this.key = key;
  }

  private sign(jobId: string, fileId: string, expires: number): string {
    if (!this.key) throw new AppError('ERR_NOT_READY', 'content URLs cannot be signed before start');
    return createHmac('sha256', this.key).update(`${jobId}/${fileId}/${expires}`).digest('base64url');
  }

  /** The content URL of a file, valid until `expiresAt` (ms). */
  url(base: string, jobId: string, fileId: string, expiresAt: number): string {
    const se = Math.floor(expiresAt / 1000);
    return `${transcriptionSelf(base, jobId)}/files/${fileId}/content?se=${se}&sig=${this.sign(jobId, fileId, se)}`;
  }

  /** @throws AppError ERR_UNAUTHORIZED when the signature is missing, wrong or expired */
  verify(jobId: string, fileId: string, query: URLSearchParams): void {
    const se = query.get('se') ?? '';
    const sig = query.get('sig') ?? '';
    if (!/^\d{1,12}$/.test(se) || !sig) throw new AppError('ERR_UNAUTHORIZED', 'This content URL is not signed: get a fresh one from the files list');
    const expected = Buffer.from(this.sign(jobId, fileId, Number(se)));
    const given = Buffer.from(sig);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      throw new AppError('ERR_UNAUTHORIZED', 'The signature of this content URL is not valid: get a fresh one from the files list');
    }
    if (Number(se) * 1000 < this.now()) throw new AppError('ERR_UNAUTHORIZED', 'This content URL has expired: get a fresh one from the files list');
  }
}

/** Azure's lexical form: lower case, no punctuation (apostrophes and inner hyphens kept). */
export function lexical(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}'\s-]/gu, ' ')
    .replace(/(^|\s)-+|-+(?=\s|$)/g, '$1')
    .replace(/\s+/g, ' ')
    .trim();
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));

/**
 * Azure's transcription result file for a finished transcript: one recognized phrase per
 * non-empty segment (channel 0, one nBest entry, `words` with word-level timestamps when
 * the job asked for timestamps), offsets and durations in ISO 8601 and 100-ns ticks.
 */
export function transcriptionResult(job: Job, transcript: StoredTranscript, source: string) {
  const recognizedPhrases = transcript.segments
    .filter((s) => s.text.trim() !== '')
    .map((s) => {
      const display = s.text.trim();
      const form = lexical(display);
      const words = s.words.filter((w) => w.text.trim() !== '');
      return {
        recognitionStatus: 'Success',
        channel: 0,
        offset: isoDuration(s.start),
        duration: isoDuration(s.end - s.start),
        offsetInTicks: ticks(s.start),
        durationInTicks: ticks(s.end - s.start),
        nBest: [
          {
            confidence: round(s.confidence, 7),
            lexical: form,
            itn: form,
            maskedITN: form,
            display,
            ...(job.output.timestamps
              ? {
                  words: words.map((w) => ({
                    word: lexical(w.text) || w.text.trim(),
                    offset: isoDuration(w.start),
                    duration: isoDuration(w.end - w.start),
                    offsetInTicks: ticks(w.start),
                    durationInTicks: ticks(w.end - w.start),
                    confidence: round(w.confidence, 7),
                  })),
                }
              : {}),
          },
        ],
      };
    });
  const joined = (pick: (p: (typeof recognizedPhrases)[number]['nBest'][number]) => string) => recognizedPhrases.map((p) => pick(p.nBest[0]!)).join(' ');
  return {
    source,
    timestamp: azureDateTime(job.updated),
    durationInTicks: ticks(transcript.durationMs),
    duration: isoDuration(transcript.durationMs),
    combinedRecognizedPhrases: [
      { channel: 0, lexical: joined((n) => n.lexical), itn: joined((n) => n.itn), maskedITN: joined((n) => n.maskedITN), display: joined((n) => n.display) },
    ],
    recognizedPhrases,
  };
}

/** Azure's report file: counts and one detail line per source. */
export function transcriptionReport(job: Job, source: string) {
  const ok = job.status === 'completed';
  return {
    successfulTranscriptionsCount: ok ? 1 : 0,
    failedTranscriptionsCount: ok ? 0 : 1,
    details: [
      {
        source,
        status: ok ? 'Succeeded' : 'Failed',
        ...(!ok && job.error ? { errorKind: job.error.code, errorMessage: job.error.message } : {}),
      },
    ],
  };
}

/** What a job has to show as files: nothing until it finished. */
export function fileContents(job: Job, transcript: StoredTranscript | undefined, base: string): Array<{ kind: FileKind; content: unknown }> {
  if (job.status !== 'completed' && job.status !== 'failed') return [];
  const source = transcriptionSelf(base, job.id);
  const files: Array<{ kind: FileKind; content: unknown }> = [];
  if (job.status === 'completed' && transcript) files.push({ kind: 'Transcription', content: transcriptionResult(job, transcript, source) });
  files.push({ kind: 'TranscriptionReport', content: transcriptionReport(job, source) });
  return files;
}

/** A v3.1 `File` entity. */
export function fileView(job: Job, kind: FileKind, content: unknown, base: string, contentUrl: string) {
  const id = fileId(job.id, kind);
  return {
    self: `${transcriptionSelf(base, job.id)}/files/${id}`,
    name: fileNames[kind],
    kind,
    properties: { size: Buffer.byteLength(JSON.stringify(content)) },
    createdDateTime: azureDateTime(job.updated),
    links: { contentUrl },
  };
}
