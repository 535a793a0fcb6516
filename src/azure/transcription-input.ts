/**
 * What clients send to create or change an Azure batch transcription, checked the way
 * Azure's references define it for the client's version, with Azure's detailed error codes.
 */
import type { ModelAbilities } from '../dialect.js';
import { AzureError, invalid } from './errors.js';
import { localeLanguage, servesLanguage } from './locales.js';
import type { BatchPatch, BatchProperties } from './transcriptions.js';
import { type AzureVersion, isDated } from './versions.js';
import { customProperties, isObject, requireObject, shown, text } from './webhook-input.js';

/** A checked creation request. */
export interface TranscriptionInput {
  displayName: string;
  description?: string;
  customProperties?: Record<string, string>;
  locale: string;
  /** whisper's language for the locale, or `auto` with language identification. */
  language: string;
  contentUrls: string[];
  properties: BatchProperties;
}

/** Azure's most content URLs in one transcription. */
const maxContentUrls = 1000;
const maxUrlLength = 2048;
const hour = 3_600_000;
/** Azure's longest time to live (31 days), also what a v3.x transcription without one gets (Azure's "never" would fill the card). */
export const maxTimeToLiveMs = 31 * 24 * hour;
/** The dated versions' recommended default (`timeToLiveHours`: 48). */
const defaultTimeToLiveHours = 48;

const punctuationModes = ['None', 'Dictated', 'Automatic', 'DictatedAndAutomatic'] as const;
const profanityFilterModes = ['None', 'Removed', 'Tags', 'Masked'] as const;

function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid('InvalidParameterValue', `Expected one of ${allowed.join(', ')} for ${name} but received ${shown(value)}`);
  }
  return value as T;
}

function flag(value: unknown, name: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw invalid('InvalidParameterValue', `Expected true or false for ${name} but received ${shown(value)}`);
  return value;
}

/** Where the device fetches a recording: an absolute http(s) URL without credentials (where it may point is checked when connecting). */
function contentUrl(value: unknown, i: number): string {
  const name = `contentUrls[${i}]`;
  if (typeof value !== 'string') throw invalid('InvalidRecordingsUri', `Expected an http or https URL for ${name} but received ${shown(value)}`);
  if (value.length > maxUrlLength) throw invalid('InvalidRecordingsUri', `${name} is longer than ${maxUrlLength} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid('InvalidRecordingsUri', `${name} ${JSON.stringify(value)} is not a valid absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('InvalidRecordingsUri', `${name} must be an http or https URL, not ${url.protocol}`);
  if (url.username || url.password) throw invalid('InvalidRecordingsUri', `${name} must not contain credentials (user:password@)`);
  return value;
}

/** An ISO 8601 duration (`P2D`, `PT12H`, `P1DT6H30M`, `P1W`) in ms, or undefined when it is not one. */
export function parseIsoDuration(value: string): number | undefined {
  const m = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(value);
  if (!m || value === 'P' || value.endsWith('T')) return undefined;
  const [, w = '0', d = '0', h = '0', min = '0', sec = '0'] = m;
  return ((Number(w) * 7 + Number(d)) * 24 + Number(h)) * hour + Number(min) * 60_000 + Number(sec) * 1000;
}

/** v3.x `timeToLive` (ISO 8601; unset or zero: Azure keeps it forever, the device the longest Azure allows) or the dated `timeToLiveHours` (6–744). */
function timeToLive(props: Record<string, unknown>, version: AzureVersion): number {
  if (isDated(version)) {
    const hours = props.timeToLiveHours;
    if (hours === undefined || hours === null) return defaultTimeToLiveHours * hour;
    if (typeof hours !== 'number' || !Number.isInteger(hours) || hours < 6 || hours > 744) {
      throw invalid('InvalidTimeToLive', `Expected a whole number of hours from 6 to 744 for properties.timeToLiveHours but received ${shown(hours)}`);
    }
    return hours * hour;
  }
  const given = props.timeToLive;
  if (given === undefined || given === null) return maxTimeToLiveMs;
  const ms = typeof given === 'string' ? parseIsoDuration(given) : undefined;
  if (ms === undefined)
    throw invalid('InvalidTimeToLive', `Expected an ISO 8601 duration such as "P2D" for properties.timeToLive but received ${shown(given)}`);
  if (ms > maxTimeToLiveMs) throw invalid('InvalidTimeToLive', 'properties.timeToLive is longer than 31 days, the longest supported');
  return ms === 0 ? maxTimeToLiveMs : ms;
}

const unsupported = (what: string, instead: string) =>
  new AzureError('ERR_INVALID_ARGUMENT', `${what} is not supported on the device: ${instead}`, 'InvalidParameterValue');

/**
 * Checks a creation request (`POST …/transcriptions`, `…/transcriptions:submit`). Storage
 * containers and destination containers are Azure Blob Storage, which the device has not;
 * diarization is not something whisper does. Every channel is mixed into one (channel 0).
 * Properties Azure defines that earshot does not need (`model`, `email`, …) are ignored.
 */
export function parseTranscriptionCreate(body: unknown, version: AzureVersion, model: ModelAbilities): TranscriptionInput {
  const input = requireObject(body, 'Transcription');
  const displayName = text(input.displayName, 'displayName', { required: true })!;
  const description = text(input.description, 'description', { required: false });
  const custom = customProperties(input.customProperties, 'customProperties', false) as Record<string, string> | undefined;

  if (input.contentContainerUrl !== undefined && input.contentContainerUrl !== null) {
    if (input.contentUrls !== undefined) throw invalid('OnlyOneOfUrlsOrContainerOrDataset', 'Give either contentUrls or contentContainerUrl, not both');
    throw unsupported('contentContainerUrl', 'list the recordings in contentUrls (http or https URLs the device can reach)');
  }
  if (input.dataset !== undefined && input.dataset !== null) throw unsupported('dataset', 'list the recordings in contentUrls');
  const urls = input.contentUrls;
  if (!Array.isArray(urls) || urls.length === 0)
    throw invalid('InvalidRecordingsUri', 'contentUrls is required: a list of one or more http or https URLs of recordings');
  if (urls.length > maxContentUrls)
    throw invalid('ExceededNumberOfRecordingsUris', `contentUrls has ${urls.length} entries; at most ${maxContentUrls} are allowed`);
  const contentUrls = urls.map(contentUrl);

  const locale = text(input.locale, 'locale', { required: true })!;
  const localeLang = localeLanguage(locale);
  if (!localeLang || !servesLanguage(model, localeLang)) {
    throw invalid('InvalidLocale', `The locale '${locale}' is not supported by the device's model; GET transcriptions/locales lists those that are`);
  }

  const props = input.properties === undefined || input.properties === null ? {} : input.properties;
  if (!isObject(props)) throw invalid('InvalidPayload', `Expected an object for properties but received ${shown(props)}`);
  const diarization = props.diarization;
  if (props.diarizationEnabled === true || (isObject(diarization) && diarization.enabled === true)) {
    throw unsupported('Diarization', 'whisper does not tell speakers apart; leave it disabled');
  }
  if (props.destinationContainerUrl !== undefined && props.destinationContainerUrl !== null) {
    throw unsupported('destinationContainerUrl', 'read the results from the transcription files');
  }
  if (props.channels !== undefined && props.channels !== null) {
    const channels = props.channels;
    if (!Array.isArray(channels) || !channels.length || !channels.every((c) => c === 0 || c === 1)) {
      throw invalid('InvalidChannels', `Expected a list of channels 0 and/or 1 for properties.channels but received ${shown(channels)}`);
    }
  }
  // Language identification is whisper's own: the candidates only say it is wanted.
  const identify = isObject(props.languageIdentification) && model.multilingual;

  return {
    displayName,
    ...(description !== undefined ? { description } : {}),
    ...(custom ? { customProperties: custom } : {}),
    locale,
    language: identify ? 'auto' : localeLang,
    contentUrls,
    properties: {
      wordLevelTimestampsEnabled: flag(props.wordLevelTimestampsEnabled, 'properties.wordLevelTimestampsEnabled'),
      displayFormWordLevelTimestampsEnabled: flag(props.displayFormWordLevelTimestampsEnabled, 'properties.displayFormWordLevelTimestampsEnabled'),
      punctuationMode: oneOf(props.punctuationMode, 'properties.punctuationMode', punctuationModes, 'DictatedAndAutomatic'),
      profanityFilterMode: oneOf(props.profanityFilterMode, 'properties.profanityFilterMode', profanityFilterModes, 'Masked'),
      timeToLiveMs: timeToLive(props, version),
    },
  };
}

/** A PATCH of a transcription: `displayName`, `description`, `customProperties` (null removes the latter two). */
export function parseTranscriptionPatch(body: unknown): BatchPatch {
  const input = requireObject(body, 'TranscriptionUpdate');
  const patch: BatchPatch = {};
  const displayName = text(input.displayName, 'displayName', { required: false });
  if (displayName !== undefined) {
    if (displayName.trim() === '') throw invalid('InvalidPayload', 'displayName must not be empty');
    patch.displayName = displayName;
  }
  if (input.description === null) patch.description = null;
  else if (input.description !== undefined) patch.description = text(input.description, 'description', { required: false })!;
  if (input.customProperties === null) patch.customProperties = null;
  else if (input.customProperties !== undefined) {
    patch.customProperties = customProperties(input.customProperties, 'customProperties', false) as Record<string, string>;
  }
  return patch;
}

/** v2's `"True"`/`"False"` property strings. */
function v2Flag(value: unknown, name: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'string' || !/^(true|false)$/i.test(value))
    throw invalid('InvalidParameterValue', `Expected "True" or "False" for ${name} but received ${shown(value)}`);
  return value.toLowerCase() === 'true';
}

/**
 * Checks a v2.0/v2.1 creation request: `name`, `description`, `locale`, `recordingsUrl` (or
 * v2.1's `recordingsUrls`), `models` (ignored: the device has one) and PascalCase string
 * `properties` (`AddWordLevelTimestamps`, `PunctuationMode`, `ProfanityFilterMode`;
 * `AddDiarization` refused, `AddSentiment` ignored). v2 had no time to live: 31 days.
 */
export function parseTranscriptionCreateV2(body: unknown, model: ModelAbilities): TranscriptionInput {
  const input = requireObject(body, 'TranscriptionDefinition');
  const props = input.properties === undefined || input.properties === null ? {} : input.properties;
  if (!isObject(props)) throw invalid('InvalidPayload', `Expected an object for properties but received ${shown(props)}`);
  if (v2Flag(props.AddDiarization, 'properties.AddDiarization')) throw unsupported('Diarization', 'whisper does not tell speakers apart; leave it disabled');
  const urls = input.recordingsUrls ?? (input.recordingsUrl === undefined || input.recordingsUrl === null ? undefined : [input.recordingsUrl]);
  const words = v2Flag(props.AddWordLevelTimestamps, 'properties.AddWordLevelTimestamps');
  const v3 = parseTranscriptionCreate(
    {
      displayName: input.name,
      description: input.description,
      locale: input.locale,
      contentUrls: urls,
      properties: {
        wordLevelTimestampsEnabled: words,
        punctuationMode: props.PunctuationMode,
        profanityFilterMode: props.ProfanityFilterMode,
      },
    },
    'v3.1',
    model,
  );
  return { ...v3, properties: { ...v3.properties, timeToLiveMs: maxTimeToLiveMs } };
}
