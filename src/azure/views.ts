/**
 * Azure Speech entities as clients see them: web hooks (v3.1 `WebHook`, v2.1 hook) and
 * transcriptions (v3.1 `Transcription`, v2.1 transcription) for jobs of either dialect.
 */
import type { DeliveryRecord } from '../delivery/outbox.js';
import type { Job, JobStatus } from '../jobs/job.js';
import type { AzureStatus, Webhook } from './webhooks.js';

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

const statuses: Record<JobStatus, AzureStatus> = { waiting: 'NotStarted', processing: 'Running', completed: 'Succeeded', failed: 'Failed' };

/** waiting → NotStarted, processing → Running, completed → Succeeded, failed → Failed. */
export const azureStatus = (status: JobStatus): AzureStatus => statuses[status];

/** `{base}/speechtotext/v3.1` */
export const v31 = (base: string) => `${base}/speechtotext/v3.1`;
export const hookSelf = (base: string, id: string) => `${v31(base)}/webhooks/${id}`;
export const transcriptionSelf = (base: string, id: string) => `${v31(base)}/transcriptions/${id}`;

/** A v3.1 `WebHook`; `properties.secret` is never returned. */
export function webHookView(hook: Webhook, base: string) {
  const self = hookSelf(base, hook.id);
  return {
    self,
    links: { ping: `${self}:ping`, test: `${self}:test` },
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
  if (/^[a-z]{2}-[A-Z]{2}$/.test(prefix) && (!language || language === 'auto' || prefix.startsWith(`${language}-`))) return prefix;
  return language && language !== 'auto' ? language : prefix;
}

/** A name for a job that has none of Azure's: its IBM user_token, else its id. */
export const jobDisplayName = (job: Job): string => job.userToken || job.id;

/**
 * Azure's `EntityError` code for a failed job: audio the decoder refused is Azure's
 * `InvalidData` (its "The recordings URI contains invalid data."); anything else is an
 * earshot-side failure.
 */
export function jobErrorCode(code: string): string {
  return code.startsWith('ERR_AUDIO') || code === 'ERR_DECODER' ? 'InvalidData' : 'InternalError';
}

const profanityModes = { masked: 'Masked', removed: 'Removed', tags: 'Tags', none: 'None' } as const;

/** Azure's `profanityFilterMode` of what was applied to the job's results (an IBM job's `profanity_filter=true` is Masked). */
const profanityFilterMode = (job: Job) => profanityModes[job.output.profanity ?? 'none'];

/** A v3.1 `Transcription` for a job of either dialect (plus `id`, which Azure leaves in `self`). */
export function transcriptionView(job: Job, base: string) {
  const self = transcriptionSelf(base, job.id);
  return {
    id: job.id,
    self,
    links: { files: `${self}/files` },
    properties: {
      diarizationEnabled: false,
      wordLevelTimestampsEnabled: job.output.timestamps,
      displayFormWordLevelTimestampsEnabled: false,
      channels: [0],
      punctuationMode: 'Automatic',
      profanityFilterMode: profanityFilterMode(job),
      ...(job.audioDurationMs !== undefined ? { duration: isoDuration(job.audioDurationMs) } : {}),
      timeToLive: isoDuration(job.resultsTtlMs),
      ...(job.status === 'failed' && job.error ? { error: { code: jobErrorCode(job.error.code), message: job.error.message } } : {}),
    },
    lastActionDateTime: azureDateTime(job.updated),
    status: azureStatus(job.status),
    createdDateTime: azureDateTime(job.created),
    locale: jobLocale(job),
    displayName: jobDisplayName(job),
  };
}

/**
 * A v2.1 transcription (the payload the v2.1 seed shows): `statusMessage`, PascalCase
 * string `properties` with `Duration` as hh:mm:ss, and `results[].resultUrls` once done.
 */
export function v21TranscriptionView(job: Job, resultUrl: string | undefined) {
  return {
    results: resultUrl ? [{ recordingsUrl: '', resultUrls: [{ fileName: 'transcription_0', resultUrl }] }] : [],
    recordingsUrls: [],
    models: [],
    statusMessage: job.status === 'failed' && job.error ? job.error.message : 'None.',
    id: job.id,
    createdDateTime: azureDateTime(job.created),
    lastActionDateTime: azureDateTime(job.updated),
    status: azureStatus(job.status),
    locale: jobLocale(job),
    name: jobDisplayName(job),
    description: '',
    properties: {
      PunctuationMode: 'Automatic',
      ProfanityFilterMode: profanityFilterMode(job),
      AddWordLevelTimestamps: job.output.timestamps ? 'True' : 'False',
      ...(job.audioDurationMs !== undefined ? { Duration: v2Duration(job.audioDurationMs) } : {}),
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
