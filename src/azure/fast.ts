/**
 * Azure's fast transcription: `POST /speechtotext/transcriptions:transcribe` (api-version
 * 2024-11-15 or 2025-10-15), synchronous. A `multipart/form-data` body with an `audio`
 * part and a `definition` part (JSON `TranscribeDefinition`), in either order; the audio
 * is streamed to the spool as it arrives (busboy over the request body), the job goes
 * through `JobService.submit` like every upload, and the answer is the transcript as a
 * `TranscribeResult` once the job finished.
 */
import type { ModelAbilities } from '../dialect.js';
import { declaresAudio, parseAudioMediaType, type AudioFormat } from '../engine/media-type.js';
import { AppError } from '../errors.js';
import { type MultipartProblem, receiveMultipart } from '../http/multipart.js';
import { json, type Request, type Route } from '../http/server.js';
import type { JobRequest, JobService, ReceivedAudio } from '../jobs/job-service.js';
import type { StoredTranscript } from '../jobs/job-store.js';
import type { ProfanityMode } from '../jobs/profanity.js';
import { transcriptOnce } from '../jobs/synchronous.js';
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

/** Azure's detailed code for each problem with the form. */
function formProblem(kind: MultipartProblem, message: string): Error {
  if (kind === 'not-multipart') return new AzureError('ERR_UNSUPPORTED_MEDIA_TYPE', message, 'InvalidRequestBodyFormat');
  return invalid(kind === 'part-too-large' ? 'InvalidPayload' : 'InvalidRequestBodyFormat', message);
}

/**
 * Receives the form: the `audio` part to `path`, the `definition` part (a field, or a
 * file part of at most `maxDefinitionBytes`) checked by `parse` as soon as it is complete
 * (a bad one sent first refuses the upload before the audio is read; none at all is
 * `parse(undefined)`: the reference makes it optional). Any other part, a repeated one,
 * or a missing `audio` refuses the request; nothing of the audio is left then.
 */
async function receiveForm(
  req: Request,
  path: string,
  created: () => void,
  maxBytes: number,
  parse: (text: string | undefined) => FastDefinition,
): Promise<ReceivedForm> {
  let format: AudioFormat | undefined;
  let definition: FastDefinition | undefined;
  const form = await receiveMultipart(req, path, {
    created,
    fileField: 'audio',
    fields: ['definition'],
    unknownParts: 'refuse',
    maxBytes,
    maxFieldBytes: maxDefinitionBytes,
    maxParts: 8,
    // A part type that is no audio type (a browser's guess, text/plain) leaves the decoder to find out.
    checkFile: ({ mimeType }) => {
      format = declaresAudio(mimeType) ? parseAudioMediaType(mimeType) : { kind: 'auto', mediaType: 'application/octet-stream' };
    },
    onField: (_name, text) => {
      definition = parse(text);
    },
    problem: formProblem,
  });
  return {
    audio: { bytes: form.file.bytes, contentType: form.file.mimeType, format: format! },
    definition: definition ?? parse(undefined),
  };
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
        async (path, created) => {
          form = await receiveForm(req, path, created, o.maxUploadBytes, (text) => parseDefinition(text, served));
          return { bytes: form.audio.bytes };
        },
        req.body.declaredLength,
      );
      const transcript = await transcriptOnce(o.service, job.id, req.signal);
      return json(200, fastTranscriptionResult(transcript, form!.definition));
    },
  };
}
