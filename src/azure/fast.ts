/**
 * Azure's fast transcription: `POST /speechtotext/transcriptions:transcribe` (api-version
 * 2024-11-15 or 2025-10-15), synchronous. A `multipart/form-data` body with an `audio`
 * part and a `definition` part (JSON `TranscribeDefinition`), in either order; the audio
 * is streamed to the spool as it arrives (busboy over the request body), the job goes
 * through `JobService.submit` like every upload, and the answer is the transcript as a
 * `TranscribeResult` once the job finished.
 */
import { open, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';

import busboy from 'busboy';

import type { ModelAbilities } from '../dialect.js';
import { declaresAudio, parseAudioMediaType, type AudioFormat } from '../engine/media-type.js';
import { AppError, isErrorCode } from '../errors.js';
import { json, type Request, type Route } from '../http/server.js';
import type { Job } from '../jobs/job.js';
import type { JobRequest, JobService, ReceivedAudio } from '../jobs/job-service.js';
import type { StoredTranscript } from '../jobs/job-store.js';
import type { ProfanityMode } from '../jobs/profanity.js';
import { AzureError, invalid } from './errors.js';
import { spokenPhrases } from './files.js';
import { localeLanguage, servesLanguage } from './locales.js';
import { apiForm, requireVersion } from './versions.js';

export interface FastTranscriptionOptions {
  service: JobService;
  /** What the loaded whisper model can transcribe (throws ERR_NOT_READY while loading). */
  model: () => ModelAbilities;
  /** The service's upload limit (EARSHOT_MAX_UPLOAD_BYTES), for the whole form. */
  maxUploadBytes: number;
}

/** A `definition` part larger than this is refused: it is JSON of a few fields, kept in memory. */
export const maxDefinitionBytes = 64 * 1024;

/**
 * A fast transcription's result is not kept for later (Azure keeps none): the job is
 * deleted once answered. This is the backstop when the answer never happens (a crash
 * mid-request): the sweep removes it then.
 */
const resultsTtlMs = 10 * 60_000;

/** What a `definition` asks for, checked. */
export interface FastDefinition {
  /** As given (Azure's phrases carry the locale); empty: detect the language. */
  locales: string[];
  /** whisper's language code, or `auto`. */
  language: string;
  profanity: ProfanityMode;
  /** The channel index phrases are labelled with, when `channels` was given. */
  channel: number | undefined;
  /** `phraseList.phrases`, given to whisper as its initial prompt. */
  prompt: string | undefined;
}

const profanityModes: Record<string, ProfanityMode> = { None: 'none', Masked: 'masked', Removed: 'removed', Tags: 'tags' };

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The whisper language of an Azure locale (`en-US` → `en`), or undefined when the model does not know it. */
function servedLanguage(locale: string, served: ModelAbilities): string | undefined {
  const language = localeLanguage(locale);
  return language && servesLanguage(served, language) ? language : undefined;
}

/**
 * Checks a `definition` (`TranscribeDefinition` of 2024-11-15 and 2025-10-15). Unknown
 * properties are ignored, as Azure's deserializer does; what earshot cannot do (speaker
 * diarization, separate channels, custom or enhanced models, fetching `audioUrl`) is
 * refused with a 400 that says so rather than silently left out.
 */
export function parseDefinition(text: string | undefined, served: ModelAbilities): FastDefinition {
  let value: unknown = {};
  if (text !== undefined && text.trim() !== '') {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw invalid('InvalidRequestBodyFormat', `The definition part is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (!isObject(value)) throw invalid('InvalidRequestBodyFormat', 'The definition part must be a JSON object (TranscribeDefinition)');

  const rawLocales = value.locales ?? [];
  if (!Array.isArray(rawLocales) || rawLocales.some((l) => typeof l !== 'string' || l === '')) {
    throw invalid('InvalidParameterValue', `Expected an array of locale names for locales but received ${JSON.stringify(rawLocales)}`);
  }
  const locales = rawLocales as string[];
  const languages = new Set<string>();
  for (const locale of locales) {
    const language = servedLanguage(locale, served);
    if (!language) {
      throw invalid(
        'InvalidLocale',
        served.multilingual
          ? `The locale '${locale}' is not supported: the whisper model on this device does not know its language`
          : `The locale '${locale}' is not supported: this device runs an English-only whisper model`,
      );
    }
    languages.add(language);
  }
  // Several candidate locales of different languages: whisper identifies the language.
  const language = languages.size === 1 ? [...languages][0]! : 'auto';

  const mode = value.profanityFilterMode ?? 'Masked';
  const profanity = typeof mode === 'string' ? profanityModes[mode] : undefined;
  if (!profanity) {
    throw invalid('InvalidParameterValue', `Invalid profanityFilterMode ${JSON.stringify(mode)}. Valid values are None, Masked, Removed, Tags`);
  }

  let channel: number | undefined;
  if (value.channels !== undefined) {
    const channels = value.channels;
    if (!Array.isArray(channels) || channels.length !== 1 || channels[0] !== 0) {
      throw invalid(
        'InvalidChannels',
        `Expected [0] for channels but received ${JSON.stringify(channels)}: earshot mixes all channels into one and cannot transcribe them separately`,
      );
    }
    channel = 0;
  }

  if (isObject(value.diarization) && value.diarization.enabled === true) {
    throw invalid('InvalidParameterValue', 'Speaker diarization is not available on this device: leave diarization out or set enabled to false');
  }
  if (isObject(value.models) && Object.keys(value.models).length > 0) {
    throw invalid('InvalidModel', "Custom models are not available on this device: leave models out (the device's whisper model transcribes)");
  }
  if (isObject(value.enhancedMode) && value.enhancedMode.enabled === true) {
    throw invalid('InvalidParameterValue', 'Enhanced mode is not available on this device: leave enhancedMode out');
  }
  if (value.audioUrl !== undefined) {
    throw invalid('InvalidParameterValue', 'audioUrl is not supported by earshot: send the audio itself in the audio part');
  }

  let prompt: string | undefined;
  if (value.phraseList !== undefined) {
    const phrases = isObject(value.phraseList) ? (value.phraseList.phrases ?? []) : undefined;
    if (!Array.isArray(phrases) || phrases.some((p) => typeof p !== 'string')) {
      throw invalid('InvalidParameterValue', `Expected {"phrases": [strings]} for phraseList but received ${JSON.stringify(value.phraseList)}`);
    }
    // whisper has no phrase biasing; its initial prompt is the closest: words it has "seen".
    if (phrases.length) prompt = (phrases as string[]).join(', ');
  }
  return { locales, language, profanity, channel, prompt };
}

/** The job a fast transcription asks for: words always (Azure's phrases carry them), no callbacks. */
function jobRequest(definition: FastDefinition, format: AudioFormat, contentType: string): JobRequest {
  return {
    contentType,
    format,
    model: definition.locales[0] ?? 'auto',
    options: { language: definition.language, words: true, ...(definition.prompt ? { initialPrompt: definition.prompt } : {}) },
    output: { timestamps: true, wordConfidence: false, profanity: definition.profanity },
    resultsTtlMs,
    synchronous: true,
    interactive: true,
  };
}

/** What the form carried: the audio (in the spool file) and the definition, checked. */
interface ReceivedForm {
  audio: ReceivedAudio & { contentType: string; format: AudioFormat };
  definition: FastDefinition;
}

/** Reads a file part that is not audio (a `definition` sent with a filename) into memory, within `maxBytes`. */
async function smallPart(stream: Readable, maxBytes: number): Promise<string | undefined> {
  const parts: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > maxBytes) {
      stream.resume();
      return undefined;
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Streams the audio part into a new spool file (mode 0600) and fsyncs it; removes the file on any failure. */
async function audioToFile(stream: Readable, path: string): Promise<number> {
  const handle = await open(path, 'wx', 0o600);
  try {
    let bytes = 0;
    // One write at a time: the part's stream (and through busboy, the socket) waits for the disk.
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      await handle.write(chunk);
      bytes += chunk.length;
    }
    await handle.sync();
    return bytes;
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  } finally {
    await handle.close().catch(() => {});
  }
}

/**
 * Parses the form as it arrives: the `audio` part goes to `path`, the `definition` part
 * (a field, or a file part of at most `maxDefinitionBytes`) is checked by `parse` as soon
 * as it is complete (a bad one sent first refuses the upload before the audio is read;
 * none at all is `parse(undefined)`: the reference makes it optional). Any other part, a
 * repeated one, or a missing `audio` refuses the request; nothing of the audio is left then.
 */
async function receiveForm(req: Request, path: string, maxBytes: number, parse: (text: string | undefined) => FastDefinition): Promise<ReceivedForm> {
  const contentType = req.headers['content-type'] ?? '';
  let parser: busboy.Busboy;
  try {
    if (!/^multipart\/form-data\s*(;|$)/i.test(contentType)) throw new Error('not multipart/form-data');
    parser = busboy({ headers: { 'content-type': contentType }, limits: { fieldSize: maxDefinitionBytes, fields: 8, files: 8 } });
  } catch (err) {
    throw new AzureError(
      'ERR_UNSUPPORTED_MEDIA_TYPE',
      `Unsupported Content-Type '${contentType}': expected multipart/form-data with a boundary (${(err as Error).message})`,
      'InvalidRequestBodyFormat',
    );
  }

  let failure: Error | undefined;
  let failed!: (err: Error) => void;
  const failedPromise = new Promise<never>((_, reject) => (failed = reject));
  failedPromise.catch(() => {});
  const fail = (err: Error) => {
    if (failure) return;
    failure = err;
    failed(err);
  };
  let definition: FastDefinition | undefined;
  let definitionSeen = false;
  let audio: { stream: Readable; contentType: string; format: AudioFormat; written: Promise<number> } | undefined;
  const pending: Promise<unknown>[] = [];

  const takeDefinition = (text: string | undefined) => {
    if (definitionSeen) return fail(invalid('InvalidRequestBodyFormat', 'The form has more than one definition part'));
    definitionSeen = true;
    if (text === undefined) return fail(invalid('InvalidPayload', `The definition part exceeds the maximum of ${maxDefinitionBytes} bytes`));
    try {
      definition = parse(text);
    } catch (err) {
      fail(err as Error);
    }
  };

  parser.on('file', (name, stream, info) => {
    if (failure) return void stream.resume();
    if (name === 'definition') {
      pending.push(smallPart(stream, maxDefinitionBytes).then(takeDefinition, fail));
      return;
    }
    if (name !== 'audio') {
      stream.resume();
      return fail(invalid('InvalidRequestBodyFormat', `Unexpected form part '${name}': the form has the parts 'audio' and 'definition'`));
    }
    if (audio) {
      stream.resume();
      return fail(invalid('InvalidRequestBodyFormat', 'The form has more than one audio part'));
    }
    const partType = info.mimeType || 'application/octet-stream';
    let format: AudioFormat;
    try {
      // A part type that is no audio type (a browser's guess, text/plain) leaves the decoder to find out.
      format = declaresAudio(partType) ? parseAudioMediaType(partType) : { kind: 'auto', mediaType: 'application/octet-stream' };
    } catch (err) {
      stream.resume();
      return fail(err as Error);
    }
    const written = audioToFile(stream, path);
    written.catch(fail);
    audio = { stream, contentType: partType, format, written };
  });
  parser.on('field', (name, value, info) => {
    if (failure) return;
    if (name === 'definition') return takeDefinition(info.valueTruncated ? undefined : value);
    if (name === 'audio')
      return fail(invalid('InvalidRequestBodyFormat', "The audio part must be a file part (with a filename), as a form's file upload sends it"));
    fail(invalid('InvalidRequestBodyFormat', `Unexpected form part '${name}': the form has the parts 'audio' and 'definition'`));
  });
  for (const limit of ['partsLimit', 'filesLimit', 'fieldsLimit'] as const) {
    parser.on(limit, () => fail(invalid('InvalidRequestBodyFormat', "The form has too many parts: it has the parts 'audio' and 'definition'")));
  }
  parser.on('error', (err: Error) => fail(invalid('InvalidRequestBodyFormat', `The multipart/form-data body is malformed: ${err.message}`)));
  const parsed = new Promise<void>((resolve) => parser.on('close', resolve));

  try {
    for await (const chunk of req.body.stream(maxBytes)) {
      if (failure) break;
      // busboy's own backpressure: a slow disk under the audio part holds the socket.
      if (!parser.write(chunk)) await Promise.race([new Promise((r) => parser.once('drain', r)), failedPromise]);
    }
    if (!failure) {
      parser.end();
      await Promise.race([parsed, failedPromise]);
    }
    await Promise.race([Promise.all(pending), failedPromise]);
    if (!audio) throw invalid('InvalidRequestBodyFormat', "The form has no audio part: send the audio file as the part named 'audio'");
    const bytes = await Promise.race([audio.written, failedPromise]);
    return { audio: { bytes, contentType: audio.contentType, format: audio.format }, definition: definition ?? parse(undefined) };
  } catch (err) {
    fail(err as Error);
    // The writer must have settled (and removed its file) before submit cleans up: one
    // still opening the spool file would create it after the cleanup.
    audio?.stream.destroy();
    parser.destroy();
    await audio?.written.catch(() => {});
    throw failure;
  }
}

/** An Azure locale for phrases: the one asked for, else the whisper language whisper found. */
const phraseLocale = (definition: FastDefinition, transcript: StoredTranscript) =>
  definition.locales.length === 1 ? definition.locales[0]! : (transcript.language ?? definition.locales[0] ?? 'und');

const ms = (x: number) => Math.max(0, Math.round(x));

/**
 * A `TranscribeResult` of a finished transcript: one phrase per non-empty segment, with
 * its words (whisper's word timings), offsets and durations in whole milliseconds;
 * `combinedPhrases` the whole text. `channel` only when the definition named channels.
 * Profanity was applied when the job completed (`output.profanity`).
 */
export function fastTranscriptionResult(transcript: StoredTranscript, definition: FastDefinition) {
  const channel = definition.channel === undefined ? {} : { channel: definition.channel };
  const locale = phraseLocale(definition, transcript);
  const phrases = spokenPhrases(transcript).map(({ start, end, display, words, confidence }) => ({
    ...channel,
    offsetMilliseconds: ms(start),
    durationMilliseconds: ms(end - start),
    text: display,
    words: words.map((w) => ({ text: w.text.trim(), offsetMilliseconds: ms(w.start), durationMilliseconds: ms(w.end - w.start) })),
    locale,
    confidence: Number(confidence.toFixed(7)),
  }));
  return {
    durationMilliseconds: ms(transcript.durationMs),
    combinedPhrases: [{ ...channel, text: phrases.map((p) => p.text).join(' ') }],
    phrases,
  };
}

/** A failed job as the error of the request that waited for it (its own code: a corrupt file is the client's 400). */
function jobFailure(job: Job): AppError {
  const code = job.error && isErrorCode(job.error.code) ? job.error.code : 'ERR_INTERNAL';
  return new AppError(code, job.error?.message ?? 'The transcription failed');
}

/** The `transcriptions:transcribe` route (one `Route`, for the `/speechtotext` group). */
export function fastTranscriptionRoute(o: FastTranscriptionOptions): Route {
  return {
    method: 'post',
    // uWS matches the colon inside a segment literally (a parameter is a whole segment that starts with one).
    pattern: '/transcriptions:transcribe',
    shown: '/transcriptions:transcribe?api-version=…',
    shownUnder: '/speechtotext',
    name: 'azure.transcriptions.transcribe',
    doc: "fast transcription (`api-version` 2024-11-15 or 2025-10-15): multipart/form-data with `audio` and `definition` (`locales`, `profanityFilterMode` (default Masked), `channels` [0], `phraseList` as whisper's prompt), either order; 200 with `durationMilliseconds`, `combinedPhrases`, `phrases` once transcribed; the job is deleted then",
    handler: async (req) => {
      requireVersion(apiForm(req), 'dated', req);
      const served = o.model();
      if (req.body.declaredLength !== undefined && req.body.declaredLength > o.maxUploadBytes) {
        throw new AppError('ERR_PAYLOAD_TOO_LARGE', `The request body exceeds the maximum of ${o.maxUploadBytes} bytes`);
      }
      let form: ReceivedForm | undefined;
      const job = await o.service.submit(
        // Called once the whole form is in: the definition may have come after the audio.
        () => jobRequest(form!.definition, form!.audio.format, form!.audio.contentType),
        async (path) => {
          form = await receiveForm(req, path, o.maxUploadBytes, (text) => parseDefinition(text, served));
          return { bytes: form.audio.bytes };
        },
        req.body.declaredLength,
      );
      let finished: Job;
      try {
        finished = await o.service.whenFinished(job.id, req.signal);
      } catch (err) {
        // The client left: its answer will not be read (see JobService.discard).
        void o.service.discard(job.id);
        throw err;
      }
      const transcript = o.service.result(finished.id);
      await o.service.discard(finished.id);
      if (finished.status !== 'completed' || !transcript) throw jobFailure(finished);
      return json(200, fastTranscriptionResult(transcript, form!.definition));
    },
  };
}
