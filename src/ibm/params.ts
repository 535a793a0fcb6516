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

/** Recognition parameters that change nothing with whisper: accepted silently or with a warning. */
const ignoredQuietly = new Set([
  'inactivity_timeout',
  'smart_formatting',
  'smart_formatting_version',
  'profanity_filter',
  'end_of_phrase_silence_time',
  'split_transcript_at_phrase_end',
  'speech_detector_sensitivity',
  'background_audio_suppression',
  'low_latency',
  'character_insertion_bias',
  'base_model_version',
]);
const unsupported = new Set([
  'speaker_labels',
  'keywords',
  'keywords_threshold',
  'word_alternatives_threshold',
  'language_customization_id',
  'customization_id',
  'acoustic_customization_id',
  'customization_weight',
  'grammar_name',
  'redaction',
  'processing_metrics',
  'processing_metrics_interval',
  'audio_metrics',
]);
const known = new Set([
  'model',
  'language',
  'callback_url',
  'events',
  'user_token',
  'results_ttl',
  'timestamps',
  'word_confidence',
  'max_alternatives',
  ...ignoredQuietly,
  ...unsupported,
]);

function bad(message: string): AppError {
  return new AppError('ERR_INVALID_ARGUMENT', message);
}

function booleanParam(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  if (value === null || value === '') return false;
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
  const unknown = [...new Set(query.keys())].filter((k) => !known.has(k));
  if (unknown.length) warnings.push(`Unknown arguments: ${unknown.join(', ')}.`);
  const ignored = [...query.keys()].filter((k) => unsupported.has(k));
  for (const name of new Set(ignored)) warnings.push(`The parameter ${name} is not supported by this service and was ignored.`);

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
    output: { timestamps, wordConfidence },
    ...(callbackUrl ? { callbackUrl } : {}),
    events,
    ...(callbackUrl && userToken !== undefined ? { userToken } : {}),
    resultsTtlMs: ttlMinutes * 60_000,
    warnings,
  };
}
