/**
 * What clients send to create or change an Azure web hook, checked and turned into
 * earshot's one representation (v3.1 event keys), for both API versions:
 * v3.1 `WebHook` / `WebHookUpdate` bodies and v2.1's `{configuration, events[], active, name}`.
 */
import { invalid } from './errors.js';
import type { AzureVersion } from './versions.js';

/** Azure's `WebHookEvents` properties (v3.1 swagger), in its order. */
export const webHookEventKeys = [
  'datasetCreation',
  'datasetProcessing',
  'datasetCompletion',
  'datasetDeletion',
  'modelCreation',
  'modelProcessing',
  'modelCompletion',
  'modelDeletion',
  'evaluationCreation',
  'evaluationProcessing',
  'evaluationCompletion',
  'evaluationDeletion',
  'transcriptionCreation',
  'transcriptionProcessing',
  'transcriptionCompletion',
  'transcriptionDeletion',
  'endpointCreation',
  'endpointProcessing',
  'endpointCompletion',
  'endpointDeletion',
  'ping',
  'challenge',
] as const;
export type WebHookEventKey = (typeof webHookEventKeys)[number];

/** The events earshot fires (the value of X-MicrosoftSpeechServices-Event). */
export const transcriptionEventKinds = ['TranscriptionCreation', 'TranscriptionProcessing', 'TranscriptionCompletion', 'TranscriptionDeletion'] as const;
export type TranscriptionEventKind = (typeof transcriptionEventKinds)[number];

/** `TranscriptionCompletion` → `transcriptionCompletion`. */
export const eventKey = (kind: TranscriptionEventKind): WebHookEventKey => (kind[0]!.toLowerCase() + kind.slice(1)) as WebHookEventKey;

/**
 * v2.1 event names (the seed's list, plus the other transcription events of the same
 * service) and the v3.1 key each one is. `EndpointDataCollectionCompletion` has no v3.1
 * counterpart: it is kept as given and never fires.
 */
const v21Events: Record<string, WebHookEventKey | null> = {
  DataImportCompletion: 'datasetCompletion',
  ModelAdaptationCompletion: 'modelCompletion',
  AccuracyTestCompletion: 'evaluationCompletion',
  TranscriptionCompletion: 'transcriptionCompletion',
  EndpointDeploymentCompletion: 'endpointCompletion',
  EndpointDataCollectionCompletion: null,
  TranscriptionCreation: 'transcriptionCreation',
  TranscriptionProcessing: 'transcriptionProcessing',
  TranscriptionDeletion: 'transcriptionDeletion',
};

/** A web hook as a client describes it (create). */
export interface WebhookInput {
  apiVersion: AzureVersion | 'v2.1';
  webUrl: string;
  displayName: string;
  description?: string;
  events: WebHookEventKey[];
  /** v2.1 only: the event names as the client spelled them (echoed back by v2.1 views). */
  v21Events?: string[];
  secret?: string;
  customProperties?: Record<string, string>;
  /** v2.1's free-form `properties` (string map). */
  properties?: Record<string, string>;
  active: boolean;
}

/** A v3.1 PATCH: absent fields stay; `null` removes an optional one. */
export interface WebhookPatch {
  webUrl?: string;
  displayName?: string;
  description?: string | null;
  /** Merged into the current events: true adds, false or null removes. */
  events?: Partial<Record<WebHookEventKey, boolean | null>>;
  /** undefined: unchanged; null: no secret any more (Azure: omitted or empty in `properties`). */
  secret?: string | null;
  /** Merged key by key; null removes a key, or all of them when given for the whole map. */
  customProperties?: Record<string, string | null> | null;
  /** v2.1: the whole list of events, replacing the current one. */
  eventList?: { events: WebHookEventKey[]; v21Events: string[] };
  /** v2.1: whether events are sent. */
  active?: boolean;
  /** v2.1: the free-form `properties`, replacing the current ones (null: none). */
  properties?: Record<string, string> | null;
}

const maxUrlLength = 2048;
const maxTextLength = 1024;
const maxSecretLength = 1024;

type Json = Record<string, unknown>;

export const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
export const shown = (value: unknown) =>
  typeof value === 'string' ? JSON.stringify(value) : Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value;

export function requireObject(body: unknown, what: string): Json {
  if (body === undefined) throw invalid('EmptyRequest', `The request body is empty: expected a JSON ${what} object`);
  if (!isObject(body)) throw invalid('InvalidPayload', `The request body must be a JSON ${what} object but is ${shown(body)}`);
  return body;
}

/** An absolute http(s) URL, not too long; where it may point is checked when connecting. */
export function checkWebUrl(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '')
    throw invalid('InvalidCallbackUri', `Expected an absolute http or https URL for ${name} but received ${shown(value)}`);
  if (value.length > maxUrlLength) throw invalid('InvalidCallbackUri', `${name} is longer than ${maxUrlLength} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid('InvalidCallbackUri', `${name} ${JSON.stringify(value)} is not a valid absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('InvalidCallbackUri', `${name} must be an http or https URL, not ${url.protocol}`);
  if (url.username || url.password)
    throw invalid('InvalidCallbackUri', `${name} must not contain credentials (user:password@): hooks are authenticated by their secret`);
  return value;
}

export function text(value: unknown, name: string, options: { required: boolean }): string | undefined {
  if (value === undefined || value === null) {
    if (options.required) throw invalid('InvalidPayload', `The property ${name} is required`);
    return undefined;
  }
  if (typeof value !== 'string') throw invalid('InvalidPayload', `Expected a string for ${name} but received ${shown(value)}`);
  if (options.required && value.trim() === '') throw invalid('InvalidPayload', `The property ${name} must not be empty`);
  if (value.length > maxTextLength) throw invalid('InvalidPayload', `${name} is longer than ${maxTextLength} characters`);
  return value;
}

function secretOf(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw invalid('InvalidPayload', `Expected a string for ${name} but received ${shown(value)}`);
  if (value.length > maxSecretLength) throw invalid('InvalidPayload', `${name} is longer than ${maxSecretLength} characters`);
  return value;
}

/** Azure's limits: at most 10 entries, keys up to 64 characters, values up to 256. */
export function customProperties(value: unknown, name: string, allowNull: boolean): Record<string, string | null> | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw invalid('InvalidPayload', `Expected an object of strings for ${name} but received ${shown(value)}`);
  const entries = Object.entries(value);
  if (entries.length > 10) throw invalid('InvalidPayload', `${name} has ${entries.length} entries; at most 10 are allowed`);
  for (const [key, v] of entries) {
    if (key.length === 0 || key.length > 64) throw invalid('InvalidPayload', `The keys of ${name} must be 1 to 64 characters long`);
    if (v === null && allowNull) continue;
    if (typeof v !== 'string') throw invalid('InvalidPayload', `Expected a string for ${name}.${key} but received ${shown(v)}`);
    if (v.length > 256) throw invalid('InvalidPayload', `${name}.${key} is longer than 256 characters`);
  }
  return value as Record<string, string | null>;
}

function eventFlags(value: unknown, allowNull: boolean): Partial<Record<WebHookEventKey, boolean | null>> {
  if (!isObject(value))
    throw invalid(
      'InvalidWebHookEventKind',
      `Expected an object of booleans such as {"transcriptionCompletion": true} for events but received ${shown(value)}`,
    );
  const flags: Partial<Record<WebHookEventKey, boolean | null>> = {};
  for (const [key, flag] of Object.entries(value)) {
    if (!(webHookEventKeys as readonly string[]).includes(key)) {
      throw invalid('InvalidWebHookEventKind', `Unknown web hook event '${key}'. Valid events are ${webHookEventKeys.join(', ')}`);
    }
    if (typeof flag !== 'boolean' && !(allowNull && flag === null))
      throw invalid('InvalidWebHookEventKind', `Expected a boolean for events.${key} but received ${shown(flag)}`);
    flags[key as WebHookEventKey] = flag as boolean | null;
  }
  return flags;
}

function enabledEvents(flags: Partial<Record<WebHookEventKey, boolean | null>>): WebHookEventKey[] {
  const events = webHookEventKeys.filter((key) => flags[key] === true);
  if (events.length === 0) throw invalid('InvalidWebHookEventKind', 'At least one event must be true, e.g. {"transcriptionCompletion": true}');
  return events;
}

/** A v3.1 `WebHook` create body. */
export function parseCreateV31(body: unknown): WebhookInput {
  const o = requireObject(body, 'WebHook');
  const properties = o.properties === undefined || o.properties === null ? {} : o.properties;
  if (!isObject(properties)) throw invalid('InvalidPayload', `Expected an object for properties but received ${shown(properties)}`);
  if (o.events === undefined) throw invalid('InvalidPayload', 'The property events is required, e.g. {"transcriptionCompletion": true}');
  const description = text(o.description, 'description', { required: false });
  const secret = secretOf(properties.secret, 'properties.secret');
  const custom = customProperties(o.customProperties, 'customProperties', false) as Record<string, string> | undefined;
  return {
    apiVersion: 'v3.1',
    webUrl: checkWebUrl(o.webUrl, 'webUrl'),
    displayName: text(o.displayName, 'displayName', { required: true })!,
    ...(description !== undefined ? { description } : {}),
    events: enabledEvents(eventFlags(o.events, false)),
    ...(secret !== undefined ? { secret } : {}),
    ...(custom ? { customProperties: custom } : {}),
    active: true,
  };
}

/**
 * A v3.1 `WebHookUpdate` (JSON or JSON merge patch). Secrets follow Azure's rule: when
 * `properties` is given and its `secret` is omitted or empty, callbacks are no longer
 * signed; without `properties` the secret stays as it was.
 */
export function parsePatchV31(body: unknown): WebhookPatch {
  const o = requireObject(body, 'WebHookUpdate');
  const patch: WebhookPatch = {};
  if (o.webUrl !== undefined) patch.webUrl = checkWebUrl(o.webUrl, 'webUrl');
  if (o.displayName !== undefined) patch.displayName = text(o.displayName, 'displayName', { required: true })!;
  if (o.description !== undefined) patch.description = o.description === null ? null : text(o.description, 'description', { required: false })!;
  if (o.events !== undefined) patch.events = eventFlags(o.events, true);
  if (o.properties !== undefined) {
    if (o.properties === null) patch.secret = null;
    else if (!isObject(o.properties)) throw invalid('InvalidPayload', `Expected an object for properties but received ${shown(o.properties)}`);
    else patch.secret = secretOf(o.properties.secret, 'properties.secret') ?? null;
  }
  if (o.customProperties !== undefined)
    patch.customProperties = o.customProperties === null ? null : customProperties(o.customProperties, 'customProperties', true)!;
  return patch;
}

/** A v2.1 hook create body (the seed's `configuration`, `events[]`, `active`, `name`). */
export function parseCreateV21(body: unknown): WebhookInput {
  const o = requireObject(body, 'web hook');
  if (!isObject(o.configuration))
    throw invalid('InvalidPayload', `Expected an object with url (and secret) for configuration but received ${shown(o.configuration)}`);
  const { events, v21Events: given } = parseV21Events(o.events);
  if (o.active !== undefined && typeof o.active !== 'boolean') throw invalid('InvalidPayload', `Expected a boolean for active but received ${shown(o.active)}`);
  const description = text(o.description, 'description', { required: false });
  const secret = secretOf(o.configuration.secret, 'configuration.secret');
  const properties = customProperties(o.properties, 'properties', false) as Record<string, string> | undefined;
  return {
    apiVersion: 'v2.1',
    webUrl: checkWebUrl(o.configuration.url, 'configuration.url'),
    displayName: text(o.name, 'name', { required: true })!,
    ...(description !== undefined ? { description } : {}),
    events,
    v21Events: given,
    ...(secret !== undefined ? { secret } : {}),
    ...(properties ? { properties } : {}),
    active: o.active ?? true,
  };
}

/** v2.1's `events`: a non-empty list of event names (any case), as v3.1 keys and as given. */
function parseV21Events(value: unknown): { events: WebHookEventKey[]; v21Events: string[] } {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalid('InvalidWebHookEventKind', `Expected a non-empty array such as ["TranscriptionCompletion"] for events but received ${shown(value)}`);
  }
  const given: string[] = [];
  const events = new Set<WebHookEventKey>();
  for (const name of value) {
    const known = typeof name === 'string' ? Object.keys(v21Events).find((k) => k.toLowerCase() === name.toLowerCase()) : undefined;
    if (!known) {
      const why = typeof name === 'string' && name.toLowerCase() === 'ping' ? ' (Ping cannot be subscribed to; use the ping operation)' : '';
      throw invalid('InvalidWebHookEventKind', `Unknown web hook event ${shown(name)}${why}. Valid events are ${Object.keys(v21Events).join(', ')}`);
    }
    if (!given.includes(known)) given.push(known);
    const key = v21Events[known];
    if (key) events.add(key);
  }
  return { events: webHookEventKeys.filter((k) => events.has(k)), v21Events: given };
}

/**
 * A v2.1 update: the fields of a v2.1 hook, each optional (`name`, `description`,
 * `events` — the whole list —, `configuration.url`, `configuration.secret`, `active`,
 * `properties`); absent fields stay, `null` removes an optional one.
 */
export function parsePatchV21(body: unknown): WebhookPatch {
  const o = requireObject(body, 'web hook update');
  const patch: WebhookPatch = {};
  if (o.name !== undefined) patch.displayName = text(o.name, 'name', { required: true })!;
  if (o.description === null) patch.description = null;
  else if (o.description !== undefined) patch.description = text(o.description, 'description', { required: false })!;
  if (o.events !== undefined) patch.eventList = parseV21Events(o.events);
  if (o.active !== undefined) {
    if (typeof o.active !== 'boolean') throw invalid('InvalidPayload', `Expected a boolean for active but received ${shown(o.active)}`);
    patch.active = o.active;
  }
  if (o.configuration !== undefined) {
    if (!isObject(o.configuration))
      throw invalid('InvalidPayload', `Expected an object with url or secret for configuration but received ${shown(o.configuration)}`);
    if (o.configuration.url !== undefined) patch.webUrl = checkWebUrl(o.configuration.url, 'configuration.url');
    if (o.configuration.secret === null || o.configuration.secret === '') patch.secret = null;
    else if (o.configuration.secret !== undefined) patch.secret = secretOf(o.configuration.secret, 'configuration.secret')!;
  }
  if (o.properties === null) patch.properties = null;
  else if (o.properties !== undefined) patch.properties = (customProperties(o.properties, 'properties', false) as Record<string, string> | undefined) ?? null;
  return patch;
}

/** The current events with a PATCH's flags merged in; at least one must stay. */
export function mergeEvents(current: readonly WebHookEventKey[], flags: Partial<Record<WebHookEventKey, boolean | null>>): WebHookEventKey[] {
  const merged: Partial<Record<WebHookEventKey, boolean | null>> = Object.fromEntries(current.map((k) => [k, true]));
  Object.assign(merged, flags);
  return enabledEvents(merged);
}
