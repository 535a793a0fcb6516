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
import type { BatchProperties, TranscriptionEntity } from './transcriptions.js';
import { type ApiForm, apiLink, isDated } from './versions.js';
import { azureDateTime, azureJobErrorCode, isoDuration, requestedProperties, ticks } from './views.js';

export type FileKind = 'Transcription' | 'TranscriptionReport';

/** v2's result file: not among a transcription's files, only behind a v2.1 subscriber's `resultsUrls.channel_0`. */
type HiddenKind = 'TranscriptionV2';

/**
 * A stable, UUID-shaped id for one of a transcription's files (`index`: which content URL's
 * result; the first keeps the id of releases that had one file per transcription).
 */
export function fileId(entityId: string, kind: FileKind | HiddenKind, index = 0): string {
  const h = createHash('sha256')
    .update(`${entityId}/${kind}${index ? `/${index}` : ''}`)
    .digest('hex');
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

  /** The content URL of a file in the client's form, valid until `expiresAt` (ms). */
  url(form: ApiForm, entityId: string, fileId: string, expiresAt: number): string {
    const se = String(Math.floor(expiresAt / 1000));
    return apiLink(form, `/transcriptions/${entityId}/files/${fileId}/content`, { se, sig: this.sign(entityId, fileId, Number(se)) });
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

/** The segments that say something, as Azure's result files render them: display text, its lexical form, the words that are not blank. */
export function spokenPhrases(transcript: StoredTranscript) {
  return transcript.segments
    .filter((s) => s.text.trim() !== '')
    .map((s) => {
      const display = s.text.trim();
      return { start: s.start, end: s.end, confidence: s.confidence, display, lexical: lexical(display), words: s.words.filter((w) => w.text.trim() !== '') };
    });
}

/**
 * Azure's transcription result file for a finished transcript: one recognized phrase per
 * non-empty segment (channel 0, one nBest entry; `words` when word-level timestamps were
 * asked for, `displayWords` for display-form ones from v3.1 on), offsets and durations in
 * ISO 8601 and 100-ns ticks; the dated versions add the total `durationMilliseconds`.
 */
export function transcriptionResult(job: Job, transcript: StoredTranscript, source: string, form: ApiForm, asked: BatchProperties) {
  const timing = (start: number, end: number) => ({
    offset: isoDuration(start),
    duration: isoDuration(end - start),
    offsetInTicks: ticks(start),
    durationInTicks: ticks(end - start),
  });
  const displayWords = asked.displayFormWordLevelTimestampsEnabled && form.version !== 'v3.0';
  const recognizedPhrases = spokenPhrases(transcript).map(({ start, end, confidence, display, lexical: form, words }) => {
    return {
      recognitionStatus: 'Success',
      channel: 0,
      ...timing(start, end),
      nBest: [
        {
          confidence: round(confidence, 7),
          lexical: form,
          itn: form,
          maskedITN: form,
          display,
          ...(asked.wordLevelTimestampsEnabled
            ? { words: words.map((w) => ({ word: lexical(w.text) || w.text.trim(), ...timing(w.start, w.end), confidence: round(w.confidence, 7) })) }
            : {}),
          ...(displayWords ? { displayWords: words.map((w) => ({ displayText: w.text.trim(), ...timing(w.start, w.end) })) } : {}),
        },
      ],
    };
  });
  const joined = (pick: (p: (typeof recognizedPhrases)[number]['nBest'][number]) => string) => recognizedPhrases.map((p) => pick(p.nBest[0]!)).join(' ');
  return {
    source,
    timestamp: azureDateTime(job.updated),
    durationInTicks: ticks(transcript.durationMs),
    ...(isDated(form.version) ? { durationMilliseconds: Math.round(transcript.durationMs) } : {}),
    duration: isoDuration(transcript.durationMs),
    combinedRecognizedPhrases: [
      { channel: 0, lexical: joined((n) => n.lexical), itn: joined((n) => n.itn), maskedITN: joined((n) => n.maskedITN), display: joined((n) => n.display) },
    ],
    recognizedPhrases,
  };
}

/** Where a recording came from, as result and report files name it: its content URL, else the transcription itself. */
const sourceOf = (entity: TranscriptionEntity, item: TranscriptionEntity['items'][number], form: ApiForm) =>
  item.source ?? apiLink(form, `/transcriptions/${entity.id}`);

/**
 * Azure's report file: counts and one line per recording that finished, a failed one with
 * the same error code as the transcription's `properties.error`.
 */
export function transcriptionReport(entity: TranscriptionEntity, form: ApiForm) {
  const done = entity.items.filter(({ job }) => job.status === 'completed' || job.status === 'failed');
  const ok = done.filter(({ job }) => job.status === 'completed').length;
  return {
    successfulTranscriptionsCount: ok,
    failedTranscriptionsCount: done.length - ok,
    details: done.map((item) => ({
      source: sourceOf(entity, item, form),
      status: item.job.status === 'completed' ? 'Succeeded' : 'Failed',
      ...(item.job.status === 'failed' && item.job.error ? { errorKind: azureJobErrorCode(item.job.error.code), errorMessage: item.job.error.message } : {}),
    })),
  };
}

/** One file of a transcription, with what it holds. */
export interface TranscriptionFile {
  id: string;
  kind: FileKind;
  name: string;
  createdAt: number;
  content: unknown;
  /** A recording's transcript (Transcription files), for its subtitles and text (`?format=` on the content URL). */
  transcript?: StoredTranscript;
}

/**
 * What a transcription has to show as files once it finished: one result per recording
 * that succeeded (`contenturl_<i>.json`), then the report.
 */
export function transcriptionFiles(
  entity: TranscriptionEntity,
  asked: BatchProperties,
  result: (jobId: string) => StoredTranscript | undefined,
  form: ApiForm,
): TranscriptionFile[] {
  if (entity.status !== 'Succeeded' && entity.status !== 'Failed') return [];
  const files: TranscriptionFile[] = [];
  for (const item of entity.items) {
    const transcript = item.job.status === 'completed' ? result(item.job.id) : undefined;
    if (!transcript) continue;
    files.push({
      id: fileId(entity.id, 'Transcription', item.index),
      kind: 'Transcription',
      name: `contenturl_${item.index}.json`,
      createdAt: item.job.updated,
      content: transcriptionResult(item.job, transcript, sourceOf(entity, item, form), form, asked),
      transcript,
    });
  }
  files.push({
    id: fileId(entity.id, 'TranscriptionReport'),
    kind: 'TranscriptionReport',
    name: 'report.json',
    createdAt: entity.lastActionAt,
    content: transcriptionReport(entity, form),
  });
  return files;
}

/**
 * v2's result file (the format v2.1 subscribers parse): `AudioFileResults[]` with PascalCase
 * `CombinedResults` and `SegmentResults` (offsets in ticks and seconds, `NBest` with
 * `Words` when word-level timestamps were asked for).
 */
export function v2TranscriptionResult(transcript: StoredTranscript, asked: BatchProperties) {
  const seconds = (ms: number) => round(ms / 1000, 3);
  const timing = (start: number, end: number) => ({
    Offset: ticks(start),
    Duration: ticks(end - start),
    OffsetInSeconds: seconds(start),
    DurationInSeconds: seconds(end - start),
  });
  const segments = spokenPhrases(transcript).map(({ start, end, confidence, display, lexical: form, words }) => {
    return {
      RecognitionStatus: 'Success',
      ChannelNumber: '0',
      SpeakerId: null,
      ...timing(start, end),
      NBest: [
        {
          Confidence: round(confidence, 7),
          Lexical: form,
          ITN: form,
          MaskedITN: form,
          Display: display,
          Sentiment: null,
          ...(asked.wordLevelTimestampsEnabled
            ? { Words: words.map((w) => ({ Word: lexical(w.text) || w.text.trim(), ...timing(w.start, w.end), Confidence: round(w.confidence, 7) })) }
            : {}),
        },
      ],
    };
  });
  const joined = (pick: (n: (typeof segments)[number]['NBest'][number]) => string) => segments.map((s) => pick(s.NBest[0]!)).join(' ');
  return {
    AudioFileResults: [
      {
        AudioFileName: 'Channel.0.wav',
        AudioFileUrl: null,
        AudioLengthInSeconds: seconds(transcript.durationMs),
        CombinedResults: [
          {
            ChannelNumber: '0',
            Lexical: joined((n) => n.Lexical),
            ITN: joined((n) => n.ITN),
            MaskedITN: joined((n) => n.MaskedITN),
            Display: joined((n) => n.Display),
          },
        ],
        SegmentResults: segments,
      },
    ],
  };
}

/** The v2 result files of a finished transcription (one per recording that succeeded), for v2.1 subscribers. */
export function v2ResultFiles(
  entity: TranscriptionEntity,
  asked: BatchProperties,
  result: (jobId: string) => StoredTranscript | undefined,
): Array<{ id: string; index: number; content: unknown; transcript: StoredTranscript }> {
  return entity.items.flatMap((item) => {
    const transcript = item.job.status === 'completed' ? result(item.job.id) : undefined;
    return transcript
      ? [{ id: fileId(entity.id, 'TranscriptionV2', item.index), index: item.index, content: v2TranscriptionResult(transcript, asked), transcript }]
      : [];
  });
}

/**
 * The signed result URLs of a v2.1 transcription (`results[]`: the v3 result files;
 * `resultsUrls.channel_0`: v2's), valid as long as each result is kept. v2 had no
 * versioned links of its own: they take v3.1's form.
 */
export function v21ResultUrls(
  entity: TranscriptionEntity,
  urls: ContentUrls,
  origin: string,
  result: (jobId: string) => StoredTranscript | undefined,
  now: number,
): { v3: string[]; v2: string[] } {
  const form: ApiForm = { origin, version: 'v3.1' };
  const until = (index: number) => {
    const job = entity.items.find((i) => i.index === index)!.job;
    return job.expiresAt ?? now + job.resultsTtlMs;
  };
  const url = (id: string, index: number) => urls.url(form, entity.id, id, until(index));
  return {
    v3: entity.items.filter(({ job }) => job.status === 'completed').map(({ index }) => url(fileId(entity.id, 'Transcription', index), index)),
    v2: v2ResultFiles(entity, requestedProperties(entity), result).map(({ id, index }) => url(id, index)),
  };
}

/** A `File` entity in the client's form. */
export function fileView(entityId: string, file: TranscriptionFile, form: ApiForm, contentUrl: string) {
  return {
    self: apiLink(form, `/transcriptions/${entityId}/files/${file.id}`),
    name: file.name,
    kind: file.kind,
    properties: { size: Buffer.byteLength(JSON.stringify(file.content)) },
    createdDateTime: azureDateTime(file.createdAt),
    links: { contentUrl },
  };
}
