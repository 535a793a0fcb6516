/**
 * Azure Speech entities as clients see them: web hooks (v3.1 `WebHook`, v2.1 hook) and
 * transcriptions (v3.1 `Transcription`, v2.1 transcription) for jobs of either dialect.
 */
import type { DeliveryRecord } from '../delivery/outbox.js';
import type { Job } from '../jobs/job.js';
import type { BatchProperties, TranscriptionEntity } from './transcriptions.js';
import { type ApiForm, apiLink, isDated } from './versions.js';
import type { Webhook } from './webhooks.js';

/** Azure's date-time: UTC to the second, `2022-09-10T18:39:07Z`. */
export const azureDateTime = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** 100-ns ticks, Azure's unit for offsets and durations in result files. */
export const ticks = (ms: number): number => Math.round(ms * 10_000);

/**
 * An ISO 8601 duration as .NET writes a TimeSpan (Azure's JSON): `PT11.04S`, `PT1M2.5S`,
 * `PT2H`, `P7D`, `PT0S`; to the millisecond.
 */
export function isoDuration(ms: number): string {
  let rest = Math.max(0, Math.round(ms));
  const days = Math.floor(rest / 86_400_000);
  rest -= days * 86_400_000;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = rest / 1000;
  let time = '';
  if (hours) time += `${hours}H`;
  if (minutes) time += `${minutes}M`;
  if (seconds) time += `${seconds}S`;
  if (!days && !time) return 'PT0S';
  return `P${days ? `${days}D` : ''}${time ? `T${time}` : ''}`;
}

/** v2's `Duration` property: `hh:mm:ss` (whole seconds). */
export function v2Duration(ms: number): string {
  const total = Math.floor(Math.max(0, ms) / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(total / 3600))}:${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
}

/** The form a hook's deliveries take: the version it was created in, links to where its creator reached the device. */
export const hookForm = (hook: Webhook): ApiForm => ({ origin: hook.baseUrl, version: hook.apiVersion === 'v2.1' ? 'v3.1' : hook.apiVersion });

/** A `WebHook` in the client's form (v3.0's actions are `/ping`, later ones `:ping`); `properties.secret` is never returned. */
export function webHookView(hook: Webhook, form: ApiForm) {
  const path = `/webhooks/${hook.id}`;
  const action = form.version === 'v3.0' ? '/' : ':';
  return {
    self: apiLink(form, path),
    links: { ping: apiLink(form, `${path}${action}ping`), test: apiLink(form, `${path}${action}test`) },
    properties: { apiVersion: hook.apiVersion, ...(hook.error ? { error: hook.error } : {}) },
    webUrl: hook.webUrl,
    displayName: hook.displayName,
    ...(hook.description !== undefined ? { description: hook.description } : {}),
    events: Object.fromEntries(hook.events.map((key) => [key, true])),
    createdDateTime: azureDateTime(hook.createdAt),
    lastActionDateTime: azureDateTime(hook.lastActionAt),
    status: hook.status,
    ...(hook.customProperties ? { customProperties: hook.customProperties } : {}),
  };
}

/** A v2.1 hook: `configuration.url` (never the secret), `events[]`, `active`, `name`. */
export function v21HookView(hook: Webhook) {
  return {
    id: hook.id,
    configuration: { url: hook.webUrl },
    events: hook.v21Events ?? hook.events.map((key) => key[0]!.toUpperCase() + key.slice(1)),
    active: hook.active,
    name: hook.displayName,
    ...(hook.description !== undefined ? { description: hook.description } : {}),
    properties: hook.properties ?? {},
    createdDateTime: azureDateTime(hook.createdAt),
    lastActionDateTime: azureDateTime(hook.lastActionAt),
    status: hook.status,
    ...(hook.error ? { statusMessage: hook.error.message } : {}),
  };
}

/** The Azure locale of a job: its IBM model's (`en-US_BroadbandModel` → `en-US`), else the whisper language. */
export function jobLocale(job: Job): string {
  const prefix = job.model.split('_')[0]!;
  const language = job.options.language;
  if (/^[a-z]{2,3}-[A-Z]{2}$/.test(prefix) && (!language || language === 'auto' || prefix.startsWith(`${language}-`))) return prefix;
  return language && language !== 'auto' ? language : prefix;
}

/** A name for a job that has none of Azure's: its IBM user_token, else its id. */
export const jobDisplayName = (job: Job): string => job.userToken || job.id;

/**
 * Azure's error code for a failed recording, the same in a transcription's
 * `properties.error` and in its report file: Azure's documented codes where one fits
 * (`InvalidAudioFormat`, `EmptyAudioFile`, `AudioLengthLimitExceeded`, `InvalidRecordingsUri`,
 * `InaccessibleCustomerStorage`), `InvalidData` for audio that could not be decoded, else
 * `InternalError` (earshot's side).
 */
export function azureJobErrorCode(code: string): string {
  return jobErrorCodes[code] ?? (code.startsWith('ERR_AUDIO') ? 'InvalidData' : 'InternalError');
}

const jobErrorCodes: Record<string, string> = {
  ERR_AUDIO_UNSUPPORTED: 'InvalidAudioFormat',
  ERR_AUDIO_EMPTY: 'EmptyAudioFile',
  ERR_AUDIO_TOO_LONG: 'AudioLengthLimitExceeded',
  ERR_AUDIO_CORRUPT: 'InvalidData',
  ERR_DECODER: 'InvalidData',
  ERR_CONTENT_REFUSED: 'InvalidRecordingsUri',
  ERR_CONTENT_NOT_FOUND: 'InaccessibleCustomerStorage',
  ERR_CONTENT_REDIRECT: 'InaccessibleCustomerStorage',
  ERR_CONTENT_UNREACHABLE: 'InaccessibleCustomerStorage',
  ERR_CONTENT_TIMEOUT: 'InaccessibleCustomerStorage',
  ERR_CONTENT_TOO_LARGE: 'InvalidPayload',
};

const profanityModes = { masked: 'Masked', removed: 'Removed', tags: 'Tags', none: 'None' } as const;

/** Azure's `profanityFilterMode` of what was applied to a job's results (an IBM job's `profanity_filter=true` is Masked). */
const profanityFilterMode = (job: Job) => profanityModes[job.output.profanity ?? 'none'];

/** What a transcription was asked for: a batch's own properties, or what a job of another dialect was given. */
export function requestedProperties(entity: TranscriptionEntity): BatchProperties {
  if (entity.batch) return entity.batch.properties;
  const job = entity.items[0]!.job;
  return {
    wordLevelTimestampsEnabled: job.output.timestamps,
    displayFormWordLevelTimestampsEnabled: false,
    punctuationMode: 'Automatic',
    profanityFilterMode: profanityFilterMode(job),
    timeToLiveMs: job.resultsTtlMs,
  };
}

/** The audio duration of a transcription once every recording of it that succeeded is done. */
function entityDurationMs(entity: TranscriptionEntity): number | undefined {
  const known = entity.items.map((i) => i.job.audioDurationMs).filter((d): d is number => d !== undefined);
  return known.length ? known.reduce((a, b) => a + b, 0) : undefined;
}

/**
 * A `Transcription` in the client's form: v3.x with `timeToLive` and `duration` as ISO 8601
 * durations (and v3.x's `diarizationEnabled`), the dated versions with `timeToLiveHours`
 * and `durationMilliseconds`, as their references define them. `id` is earshot's addition
 * (Azure leaves it in `self`).
 */
export function transcriptionView(entity: TranscriptionEntity, form: ApiForm) {
  const path = `/transcriptions/${entity.id}`;
  const asked = requestedProperties(entity);
  const dated = isDated(form.version);
  const durationMs = entityDurationMs(entity);
  const job = entity.items[0]?.job;
  const batch = entity.batch;
  return {
    id: entity.id,
    self: apiLink(form, path),
    displayName: batch ? batch.displayName : job ? jobDisplayName(job) : entity.id,
    ...(batch?.description !== undefined ? { description: batch.description } : {}),
    ...(batch?.customProperties ? { customProperties: batch.customProperties } : {}),
    locale: batch ? batch.locale : job ? jobLocale(job) : 'en-US',
    links: { files: apiLink(form, `${path}/files`) },
    properties: {
      ...(dated ? {} : { diarizationEnabled: false }),
      wordLevelTimestampsEnabled: asked.wordLevelTimestampsEnabled,
      ...(form.version === 'v3.0' ? {} : { displayFormWordLevelTimestampsEnabled: asked.displayFormWordLevelTimestampsEnabled }),
      // Every channel is mixed into one before transcription: the results are channel 0's.
      channels: [0],
      punctuationMode: asked.punctuationMode,
      profanityFilterMode: asked.profanityFilterMode,
      ...(dated ? { timeToLiveHours: Math.round(asked.timeToLiveMs / 3_600_000) } : { timeToLive: isoDuration(asked.timeToLiveMs) }),
      ...(durationMs !== undefined ? (dated ? { durationMilliseconds: Math.round(durationMs) } : { duration: isoDuration(durationMs) }) : {}),
      ...(entity.error ? { error: { code: azureJobErrorCode(entity.error.code), message: entity.error.message } } : {}),
    },
    lastActionDateTime: azureDateTime(entity.lastActionAt),
    status: entity.status,
    createdDateTime: azureDateTime(entity.createdAt),
  };
}

/**
 * A v2.1 transcription: `statusMessage`, PascalCase string `properties` with `Duration` as
 * hh:mm:ss, and once done `resultsUrls.channel_0` (v2's result format, what v2 clients
 * parse) and `results[].resultUrls` (the v3 result files), one per recording that succeeded.
 */
export function v21TranscriptionView(entity: TranscriptionEntity, resultUrls: string[], v2ResultUrls: string[] = []) {
  const asked = requestedProperties(entity);
  const job = entity.items[0]?.job;
  const durationMs = entityDurationMs(entity);
  return {
    recordingsUrl: entity.batch?.contentUrls[0] ?? '',
    resultsUrls: v2ResultUrls.length ? { channel_0: v2ResultUrls[0] } : {},
    results: resultUrls.map((resultUrl, i) => ({ recordingsUrl: '', resultUrls: [{ fileName: `transcription_${i}`, resultUrl }] })),
    recordingsUrls: entity.batch?.contentUrls ?? [],
    models: [],
    statusMessage: entity.error ? entity.error.message : 'None.',
    id: entity.id,
    createdDateTime: azureDateTime(entity.createdAt),
    lastActionDateTime: azureDateTime(entity.lastActionAt),
    status: entity.status,
    locale: entity.batch ? entity.batch.locale : job ? jobLocale(job) : 'en-US',
    name: entity.batch ? entity.batch.displayName : job ? jobDisplayName(job) : entity.id,
    description: entity.batch?.description ?? '',
    properties: {
      PunctuationMode: asked.punctuationMode,
      ProfanityFilterMode: asked.profanityFilterMode,
      AddWordLevelTimestamps: asked.wordLevelTimestampsEnabled ? 'True' : 'False',
      ...(durationMs !== undefined ? { Duration: v2Duration(durationMs) } : {}),
    },
  };
}

/** A page of Azure's `Paginated*`: `values` and, when there are more, `@nextLink`. */
export function page<T>(values: T[], more: boolean, nextLink: string) {
  return { values, ...(more ? { '@nextLink': nextLink } : {}) };
}

const isoOrUndefined = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/**
 * A web hook delivery as earshot's dead-letter endpoints show it: state, attempts and
 * the last outcome. Never the headers the outbox keeps with it.
 */
export function deliveryView(record: DeliveryRecord) {
  return {
    id: record.id,
    event: record.event,
    state: record.state,
    createdDateTime: isoOrUndefined(record.createdAt),
    attempts: record.attempts,
    ...(record.lastAttemptAt !== undefined ? { lastAttemptDateTime: isoOrUndefined(record.lastAttemptAt) } : {}),
    ...(record.lastStatus !== undefined ? { lastStatusCode: record.lastStatus } : {}),
    ...(record.lastError !== undefined ? { lastError: record.lastError } : {}),
    ...(record.state === 'pending' ? { nextAttemptDateTime: isoOrUndefined(record.nextAttemptAt) } : {}),
    ...(record.deadAt !== undefined ? { deadDateTime: isoOrUndefined(record.deadAt) } : {}),
    ...(record.deliveredAt !== undefined ? { deliveredDateTime: isoOrUndefined(record.deliveredAt) } : {}),
  };
}
