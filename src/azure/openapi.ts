import { type GroupApi, jsonBody, type OperationDoc, ref, type Schema } from '../http/openapi.js';
import { datedVersions } from './versions.js';

const str = { type: 'string' };
const time = { type: 'string', format: 'date-time' };
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({ type: 'object', properties, ...(required.length ? { required } : {}) });
const paged = (item: string): Schema => obj({ values: { type: 'array', items: ref(item) }, '@nextLink': str }, ['values']);
const status = { type: 'string', enum: ['NotStarted', 'Running', 'Succeeded', 'Failed'] };
const azureError = obj({ code: str, message: str }, ['code', 'message']);

/** Azure's schemas, as src/azure/views.ts and fast.ts write them (the fields clients read; extra fields may appear). */
const schemas: Record<string, Schema> = {
  AzureTranscription: obj(
    {
      id: str,
      self: str,
      displayName: str,
      description: str,
      locale: str,
      links: obj({ files: str }),
      properties: { type: 'object', properties: { duration: str, error: azureError } },
      customProperties: { type: 'object', additionalProperties: str },
      status,
      createdDateTime: time,
      lastActionDateTime: time,
    },
    ['self', 'status', 'createdDateTime', 'lastActionDateTime'],
  ),
  AzureTranscriptionDefinition: obj(
    {
      contentUrls: { type: 'array', items: str },
      contentContainerUrl: str,
      locale: str,
      displayName: str,
      description: str,
      properties: { type: 'object' },
      customProperties: { type: 'object', additionalProperties: str },
    },
    ['locale'],
  ),
  AzureTranscriptionUpdate: obj({ displayName: str, description: str, customProperties: { type: 'object', additionalProperties: str } }),
  AzureFile: obj({ kind: str, name: str, self: str, links: obj({ contentUrl: str }), properties: obj({ size: { type: 'integer' } }), createdDateTime: time }, [
    'kind',
    'name',
  ]),
  AzureWebHook: obj(
    {
      self: str,
      links: obj({ ping: str, test: str }),
      properties: { type: 'object', properties: { apiVersion: str, error: azureError } },
      webUrl: str,
      displayName: str,
      description: str,
      events: { type: 'object', additionalProperties: { type: 'boolean' } },
      createdDateTime: time,
      lastActionDateTime: time,
      status,
      customProperties: { type: 'object', additionalProperties: str },
    },
    ['self', 'webUrl', 'events', 'status'],
  ),
  AzureWebHookDefinition: obj(
    {
      webUrl: str,
      events: { type: 'object', additionalProperties: { type: 'boolean' } },
      properties: obj({ secret: str }),
      displayName: str,
      description: str,
      customProperties: { type: 'object', additionalProperties: str },
    },
    ['webUrl', 'events'],
  ),
  AzureDelivery: obj(
    { id: str, event: str, state: { type: 'string', enum: ['pending', 'dead', 'delivered'] }, createdDateTime: time, attempts: { type: 'integer' } },
    ['id', 'event', 'state'],
  ),
  AzureV21Hook: obj(
    {
      id: str,
      configuration: obj({ url: str }),
      events: { type: 'array', items: str },
      active: { type: 'boolean' },
      name: str,
      description: str,
      properties: { type: 'object' },
      createdDateTime: time,
      lastActionDateTime: time,
      status,
      statusMessage: str,
    },
    ['id', 'configuration', 'events'],
  ),
  AzureV21HookDefinition: obj(
    {
      configuration: obj({ url: str, secret: str }),
      events: { type: 'array', items: str },
      active: { type: 'boolean' },
      name: str,
      description: str,
      properties: { type: 'object' },
    },
    ['configuration'],
  ),
  AzureV2Transcription: obj(
    {
      id: str,
      recordingsUrl: str,
      recordingsUrls: { type: 'array', items: str },
      resultsUrls: { type: 'object', additionalProperties: str },
      statusMessage: str,
      createdDateTime: time,
      lastActionDateTime: time,
      status,
      locale: str,
      name: str,
      description: str,
      properties: { type: 'object' },
    },
    ['id', 'status'],
  ),
  AzureV2TranscriptionDefinition: obj(
    { recordingsUrl: str, recordingsUrls: { type: 'array', items: str }, locale: str, name: str, description: str, properties: { type: 'object' } },
    ['locale'],
  ),
  AzureFastTranscription: obj(
    {
      durationMilliseconds: { type: 'integer' },
      combinedPhrases: { type: 'array', items: obj({ channel: { type: 'integer' }, text: str }) },
      phrases: {
        type: 'array',
        items: obj({
          channel: { type: 'integer' },
          offsetMilliseconds: { type: 'integer' },
          durationMilliseconds: { type: 'integer' },
          text: str,
          words: { type: 'array', items: obj({ text: str, offsetMilliseconds: { type: 'integer' }, durationMilliseconds: { type: 'integer' } }) },
          locale: str,
          confidence: { type: 'number' },
        }),
      },
    },
    ['combinedPhrases', 'phrases'],
  ),
};

const v30 = '/speechtotext/v3.0';
const dated = '/speechtotext';
const accepted = (description: string, content?: Record<string, Schema>) => ({
  description,
  headers: { 'Retry-After': 'seconds' },
  ...(content ? { content } : {}),
});
const json = (name: string): Record<string, Schema> => ({ 'application/json': ref(name) });
const paging = [
  { name: 'skip', schema: { type: 'integer', minimum: 0 } },
  { name: 'top', schema: { type: 'integer', minimum: 1, maximum: 100 } },
];
const noContent = { '204': { description: 'done (also when it did not exist)' } };

const operations: Record<string, OperationDoc> = {
  'azure.webhooks.create': {
    body: json('AzureWebHookDefinition'),
    responses: { '201': jsonBody('created; the challenge decides its status', ref('AzureWebHook')) },
  },
  'azure.webhooks.list': { parameters: paging, responses: { '200': jsonBody('web hooks', paged('AzureWebHook')) } },
  'azure.webhooks.get': { responses: { '200': jsonBody('the web hook', ref('AzureWebHook')) } },
  'azure.webhooks.update': {
    body: { 'application/json': { type: 'object' }, 'application/merge-patch+json': { type: 'object' } },
    responses: { '200': jsonBody('updated', ref('AzureWebHook')) },
  },
  'azure.webhooks.delete': { responses: noContent },
  'azure.webhooks.action': {
    // v3.0 writes its actions as sub-paths (azure.webhooks.subaction).
    paths: (mount) => (mount === v30 ? [] : ['/webhooks/{id}:ping', '/webhooks/{id}:test']),
    bodyRequired: false,
    responses: { '202': accepted('queued'), '204': { description: 'no transcription to send (`:test`)' } },
  },
  'azure.webhooks.deliveries.list': {
    parameters: [{ name: 'state', schema: { type: 'string', enum: ['dead', 'pending', 'delivered'], default: 'dead' } }, ...paging],
    responses: { '200': jsonBody("the hook's deliveries", paged('AzureDelivery')) },
  },
  'azure.webhooks.subaction': {
    paths: (mount) => [...(mount === v30 ? ['/webhooks/{id}/ping', '/webhooks/{id}/test'] : []), '/webhooks/{id}/deliveries:redeliver'],
    responses: {
      '202': accepted('queued', { 'application/json': obj({ redelivered: { type: 'integer' } }) }),
      '204': { description: 'no transcription to send (`test`)' },
    },
  },
  'azure.webhooks.deliveries.redeliver': {
    paths: ['/webhooks/{id}/deliveries/{deliveryId}:redeliver'],
    responses: { '202': accepted('queued again', json('AzureDelivery')) },
  },
  'azure.transcriptions.create': {
    paths: (mount) => (mount === dated ? [] : ['/transcriptions']),
    body: json('AzureTranscriptionDefinition'),
    responses: { '201': jsonBody('created', ref('AzureTranscription')) },
  },
  'azure.transcriptions.submit': {
    paths: (mount) => (mount === dated ? ['/transcriptions:submit'] : []),
    body: json('AzureTranscriptionDefinition'),
    responses: { '201': jsonBody('created', ref('AzureTranscription')) },
  },
  'azure.transcriptions.locales': {
    responses: {
      '200': jsonBody('locales', {
        oneOf: [{ type: 'array', items: str }, obj({ Submit: { type: 'array', items: str }, Transcribe: { type: 'array', items: str } })],
      }),
    },
  },
  'azure.transcriptions.list': { parameters: paging, responses: { '200': jsonBody('transcriptions, newest first', paged('AzureTranscription')) } },
  'azure.transcriptions.get': { responses: { '200': jsonBody('the transcription', ref('AzureTranscription')) } },
  'azure.transcriptions.update': { body: json('AzureTranscriptionUpdate'), responses: { '200': jsonBody('updated', ref('AzureTranscription')) } },
  'azure.transcriptions.delete': { responses: noContent },
  'azure.transcriptions.files.list': {
    parameters: [{ name: 'sasValidityInSeconds', schema: { type: 'integer' } }, ...paging],
    responses: { '200': jsonBody('result files', paged('AzureFile')) },
  },
  'azure.transcriptions.files.get': { responses: { '200': jsonBody('the file', ref('AzureFile')) } },
  'azure.transcriptions.files.content': {
    parameters: [
      { name: 'sig', schema: str, description: 'the signature from `links.contentUrl` (the credential)' },
      { name: 'format', schema: { type: 'string', enum: ['json', 'srt', 'vtt', 'txt'] }, description: "earshot's own" },
    ],
    responses: {
      '200': {
        description: "the file's content",
        content: { 'application/json': { type: 'object' }, 'application/x-subrip': str, 'text/vtt': str, 'text/plain': str },
      },
    },
  },
  'azure.transcriptions.transcribe': {
    paths: (mount) => (mount === dated ? ['/transcriptions:transcribe'] : []),
    body: {
      'multipart/form-data': obj(
        { audio: { type: 'string', contentMediaType: 'application/octet-stream' }, definition: { type: 'string', contentMediaType: 'application/json' } },
        ['audio'],
      ),
    },
    responses: { '200': jsonBody('the transcript', ref('AzureFastTranscription')) },
  },
  'azure.v21.hooks.create': {
    body: json('AzureV21HookDefinition'),
    responses: { '201': { description: 'created', headers: { Location: 'the hook' }, content: json('AzureV21Hook') } },
  },
  'azure.v21.hooks.list': { responses: { '200': jsonBody('hooks', { type: 'array', items: ref('AzureV21Hook') }) } },
  'azure.v21.hooks.get': { responses: { '200': jsonBody('the hook', ref('AzureV21Hook')) } },
  'azure.v21.hooks.update': { body: json('AzureV21HookDefinition'), responses: { '200': jsonBody('updated', ref('AzureV21Hook')) } },
  'azure.v21.hooks.delete': { responses: noContent },
  'azure.v21.hooks.ping': { bodyRequired: false, responses: { '202': accepted('queued') } },
  'azure.v21.hooks.test': { bodyRequired: false, responses: { '200': { description: 'queued' }, '204': { description: 'no job to send' } } },
  'azure.v2.transcriptions.create': {
    body: json('AzureV2TranscriptionDefinition'),
    responses: { '202': { description: 'created', headers: { Location: 'the transcription' } } },
  },
  'azure.v2.transcriptions.list': { responses: { '200': jsonBody('the newest 100', { type: 'array', items: ref('AzureV2Transcription') }) } },
  'azure.v2.transcriptions.get': { responses: { '200': jsonBody('the transcription', ref('AzureV2Transcription')) } },
  'azure.v2.transcriptions.delete': { responses: noContent },
};

/** Azure Speech to Text: batch and fast transcription, web hooks, under every version's prefix. */
export const azureApi: GroupApi = {
  tag: 'azure',
  error: {
    name: 'AzureError',
    schema: obj({ code: str, message: str, innerError: obj({ code: str, message: str }, ['code']) }, ['code', 'message']),
  },
  schemas,
  operations,
  mountParameters: (mount) =>
    mount === dated
      ? [{ name: 'api-version', required: true, schema: { type: 'string', enum: [...datedVersions] }, description: "the version of Azure's API" }]
      : [],
};
