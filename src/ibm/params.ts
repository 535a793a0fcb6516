import type { TranscribeOptions } from '../engine/engine.js';
import { AppError } from '../errors.js';
import type { OutputOptions } from '../jobs/job.js';
import { ibmEvents, normalizeCallbackUrl, type IbmEvent } from './callbacks.js';
import { defaultIbmModel, requireIbmModel, type ServedLanguages } from './models.js';

/** POST /v1/recognitions, as understood from its query string. */
export interface RecognitionRequest {
  model: string;
  options: TranscribeOptions;
  output: OutputOptions;
  /** Normalized (`normalizeCallbackUrl`). */
  callbackUrl?: string;
  events: IbmEvent[];
  userToken?: string;
  resultsTtlMs: number;
  /** IBM answers misuse of optional parameters with warnings, not errors. */
  warnings: string[];
}

const week = 7 * 24 * 60;
const maxUserTokenLength = 1024;

/** How earshot treats one of IBM's parameters of POST /v1/recognitions (the README's table comes from these). */
export interface IbmParameter {
  name: string;
  /** honoured: it does what IBM documents (as far as `doc` says); warned: ignored with IBM's kind of warning. */
  handling: 'honoured' | 'warned';
  doc: string;
  /** For a warned parameter: values that ask for nothing beyond what earshot does (IBM's defaults); no warning then. */
  quietFor?: readonly string[];
}

/** Every recognition parameter of IBM's asynchronous interface (ibm-watson 12's createJob), and earshot's `language`. */
export const ibmParameters: readonly IbmParameter[] = [
  { name: 'model', handling: 'honoured', doc: "its language (`en-US_BroadbandModel` → English); the device's one whisper model transcribes" },
  { name: 'language', handling: 'honoured', doc: "earshot's own: a whisper language code or `auto`, over the model's language" },
  { name: 'callback_url', handling: 'honoured', doc: 'must be allow-listed with POST /v1/register_callback' },
  { name: 'events', handling: 'honoured', doc: 'default `recognitions.started,recognitions.completed,recognitions.failed`' },
  { name: 'user_token', handling: 'honoured', doc: 'with `callback_url`, up to 1024 characters' },
  { name: 'results_ttl', handling: 'honoured', doc: 'minutes; default one week' },
  { name: 'timestamps', handling: 'honoured', doc: 'word timings from whisper' },
  { name: 'word_confidence', handling: 'honoured', doc: "whisper's token probabilities, averaged per word" },
  { name: 'max_alternatives', handling: 'honoured', doc: 'one alternative per result; above 1 with a warning' },
  {
    name: 'profanity_filter',
    handling: 'honoured',
    doc: "default `true`: each letter of a profane word becomes `*` (obscenity's English list), in transcripts, timestamps and word confidences",
  },
  { name: 'speaker_labels', handling: 'warned', doc: 'no speaker diarization', quietFor: ['false'] },
  { name: 'keywords', handling: 'warned', doc: 'no keyword spotting' },
  { name: 'keywords_threshold', handling: 'warned', doc: 'no keyword spotting' },
  { name: 'word_alternatives_threshold', handling: 'warned', doc: 'no word alternatives' },
  { name: 'smart_formatting', handling: 'warned', doc: "no smart formatting (whisper's own punctuation and numbers stay)", quietFor: ['false'] },
  { name: 'smart_formatting_version', handling: 'warned', doc: 'no smart formatting' },
  { name: 'enrichments', handling: 'warned', doc: 'whisper punctuates and capitalizes always', quietFor: ['punctuation'] },
  { name: 'redaction', handling: 'warned', doc: 'no redaction of numbers', quietFor: ['false'] },
  { name: 'language_customization_id', handling: 'warned', doc: 'no custom models' },
  { name: 'customization_id', handling: 'warned', doc: 'no custom models' },
  { name: 'acoustic_customization_id', handling: 'warned', doc: 'no custom models' },
  { name: 'customization_weight', handling: 'warned', doc: 'no custom models' },
  { name: 'base_model_version', handling: 'warned', doc: 'one model version' },
  { name: 'grammar_name', handling: 'warned', doc: 'no grammars' },
  { name: 'processing_metrics', handling: 'warned', doc: "no processing metrics (earshot's `processing_times` instead)", quietFor: ['false'] },
  { name: 'processing_metrics_interval', handling: 'warned', doc: 'no processing metrics' },
  { name: 'audio_metrics', handling: 'warned', doc: 'no audio metrics', quietFor: ['false'] },
  { name: 'speech_begin_event', handling: 'warned', doc: 'no speech activity events', quietFor: ['false'] },
  { name: 'inactivity_timeout', handling: 'warned', doc: 'silence never ends a job (as with `-1`)', quietFor: ['-1'] },
  { name: 'end_of_phrase_silence_time', handling: 'warned', doc: "results follow whisper's segments", quietFor: ['0.8'] },
  { name: 'split_transcript_at_phrase_end', handling: 'warned', doc: "results follow whisper's segments", quietFor: ['false'] },
  { name: 'speech_detector_sensitivity', handling: 'warned', doc: "whisper's own detection (and the VAD model when installed)", quietFor: ['0.5'] },
  { name: 'sad_module', handling: 'warned', doc: "whisper's own detection (and the VAD model when installed)" },
  { name: 'background_audio_suppression', handling: 'warned', doc: 'no background suppression', quietFor: ['0'] },
  { name: 'low_latency', handling: 'warned', doc: 'one decoding speed', quietFor: ['false'] },
  { name: 'character_insertion_bias', handling: 'warned', doc: 'no insertion bias', quietFor: ['0'] },
];

const byName = new Map(ibmParameters.map((p) => [p.name, p]));

// "0.50" asks for what "0.5" does.
const sameValue = (a: string, b: string) => a === b || (a.trim() !== '' && Number(a) === Number(b));

/** IBM's warning for each warned parameter the request gives a value that earshot cannot honour. */
function unhonouredWarnings(query: URLSearchParams): string[] {
  const warnings: string[] = [];
  for (const name of new Set(query.keys())) {
    const parameter = byName.get(name);
    if (parameter?.handling !== 'warned') continue;
    const value = query.get(name)!;
    if (value === '' || parameter.quietFor?.some((quiet) => sameValue(value, quiet))) continue;
    warnings.push(`The parameter ${name} is not supported by this service and was ignored.`);
  }
  return warnings;
}

function bad(message: string): AppError {
  return new AppError('ERR_INVALID_ARGUMENT', message);
}

function booleanParam(query: URLSearchParams, name: string, fallback = false): boolean {
  const value = query.get(name);
  if (value === null || value === '') return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw bad(`The value '${value}' of parameter ${name} is not a boolean (true or false)`);
}

function integerParam(query: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const value = query.get(name);
  if (value === null || value === '') return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || n < min || n > max) {
    throw bad(`The value '${value}' of parameter ${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * Reads IBM's query parameters the way IBM does: errors for wrong values, warnings
 * for parameters that are ignored. `languages` are whisper's codes; `multilingual`
 * says whether the loaded model knows more than English.
 */
export function parseRecognitionQuery(query: URLSearchParams, model: ServedLanguages): RecognitionRequest {
  const warnings: string[] = [];
  const unknown = [...new Set(query.keys())].filter((k) => !byName.has(k));
  if (unknown.length) warnings.push(`Unknown arguments: ${unknown.join(', ')}.`);
  warnings.push(...unhonouredWarnings(query));

  const modelName = query.get('model') || defaultIbmModel;
  let language = requireIbmModel(modelName, model);
  const explicitLanguage = query.get('language');
  if (explicitLanguage) {
    if (explicitLanguage !== 'auto' && !model.languages.includes(explicitLanguage)) {
      throw bad(`The value '${explicitLanguage}' of parameter language is not a whisper language code or "auto"`);
    }
    if (!model.multilingual && explicitLanguage !== 'en') {
      throw bad(`The language ${explicitLanguage} is not available: this device runs an English-only whisper model`);
    }
    language = explicitLanguage;
  }

  const timestamps = booleanParam(query, 'timestamps');
  const wordConfidence = booleanParam(query, 'word_confidence');
  const profanityFilter = booleanParam(query, 'profanity_filter', true);
  const maxAlternatives = integerParam(query, 'max_alternatives', 0, 100) ?? 1;
  if (maxAlternatives > 1) warnings.push('max_alternatives: this service returns one alternative per result.');

  const rawCallbackUrl = query.get('callback_url');
  const callbackUrl = rawCallbackUrl ? normalizeCallbackUrl(rawCallbackUrl) : undefined;
  const eventsParam = query.get('events');
  let events: IbmEvent[] = [];
  if (eventsParam) {
    const names = eventsParam
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean);
    for (const name of names) {
      if (!(ibmEvents as readonly string[]).includes(name)) {
        throw bad(`Invalid event '${name}'. Valid events are ${ibmEvents.join(', ')}`);
      }
    }
    events = [...new Set(names)] as IbmEvent[];
    if (events.includes('recognitions.completed') && events.includes('recognitions.completed_with_results')) {
      throw bad('The events recognitions.completed and recognitions.completed_with_results are incompatible; specify only one of the two');
    }
  }
  const userToken = query.get('user_token') ?? undefined;
  if (userToken !== undefined && userToken.length > maxUserTokenLength) {
    throw bad(`The parameter user_token is longer than ${maxUserTokenLength} characters`);
  }
  if (!callbackUrl) {
    if (eventsParam) warnings.push("unexpected query parameter 'events', query parameter 'callback_url' was not specified");
    if (userToken !== undefined) {
      warnings.push("unexpected query parameter 'user_token', query parameter 'callback_url' was not specified");
    }
    events = [];
  } else if (!events.length) {
    events = ['recognitions.started', 'recognitions.completed', 'recognitions.failed'];
  }
  const ttlMinutes = integerParam(query, 'results_ttl', 1, 366 * 24 * 60) ?? week;

  return {
    model: modelName,
    options: { language, words: timestamps || wordConfidence },
    output: { timestamps, wordConfidence, profanity: profanityFilter ? 'masked' : 'none' },
    ...(callbackUrl ? { callbackUrl } : {}),
    events,
    ...(callbackUrl && userToken !== undefined ? { userToken } : {}),
    resultsTtlMs: ttlMinutes * 60_000,
    warnings,
  };
}
