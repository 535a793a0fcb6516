import { type GroupApi, jsonBody, type ParameterDoc, ref, type Schema } from '../http/openapi.js';
import { ibmParameters } from './params.js';

const str = { type: 'string' };
const time = { type: 'string', format: 'date-time' };
const status = { type: 'string', enum: ['waiting', 'processing', 'completed', 'failed'] };
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({ type: 'object', properties, ...(required.length ? { required } : {}) });

/** IBM's schemas, as src/ibm/views.ts, models.ts and delivery-routes.ts write them. */
const schemas: Record<string, Schema> = {
  IbmRecognitionCreated: obj({ created: time, id: str, url: str, status, warnings: { type: 'array', items: str } }, ['created', 'id', 'url', 'status']),
  IbmRecognitionSummary: obj({ id: str, created: time, updated: time, status, user_token: str }, ['id', 'created', 'updated', 'status']),
  IbmRecognitions: obj({ recognitions: { type: 'array', items: ref('IbmRecognitionSummary') } }, ['recognitions']),
  IbmSpeechRecognitionResults: obj(
    {
      result_index: { type: 'integer' },
      results: {
        type: 'array',
        items: obj({
          final: { type: 'boolean' },
          alternatives: {
            type: 'array',
            items: obj(
              {
                transcript: str,
                confidence: { type: 'number' },
                timestamps: { type: 'array', items: { type: 'array', prefixItems: [str, { type: 'number' }, { type: 'number' }] } },
                word_confidence: { type: 'array', items: { type: 'array', prefixItems: [str, { type: 'number' }] } },
              },
              ['transcript'],
            ),
          },
        }),
      },
      warnings: { type: 'array', items: str },
    },
    ['result_index', 'results'],
  ),
  IbmRecognition: {
    allOf: [ref('IbmRecognitionSummary')],
    properties: {
      results: { type: 'array', items: ref('IbmSpeechRecognitionResults') },
      progress: { type: 'integer', minimum: 0, maximum: 100, description: "earshot's own: percent done while processing" },
      error: str,
      error_code: str,
      processing_times: obj({
        audio_seconds: { type: 'number' },
        queue_ms: { type: 'number' },
        decode_ms: { type: 'number' },
        transcribe_ms: { type: 'number' },
      }),
    },
  },
  IbmModel: obj({ name: str, language: str, rate: { type: 'integer' }, url: str, supported_features: { type: 'object' }, description: str }, [
    'name',
    'language',
  ]),
  IbmModels: {
    type: 'object',
    properties: { models: { type: 'array', items: ref('IbmModel') }, object: str, data: { type: 'array' } },
    required: ['models'],
    description: "IBM's `models` beside OpenAI's `object` and `data`: one body answers both SDKs",
  },
  IbmRegistration: obj({ status: { type: 'string', enum: ['created', 'already created'] }, url: str }, ['status', 'url']),
  IbmDelivery: obj(
    {
      id: str,
      callback_url: str,
      event: str,
      recognition_id: str,
      state: { type: 'string', enum: ['pending', 'dead', 'delivered'] },
      created: time,
      attempts: { type: 'integer' },
      last_attempt: time,
      last_status_code: { type: 'integer' },
      last_error: str,
      next_attempt: time,
      dead_since: time,
      delivered: time,
    },
    ['id', 'callback_url', 'event', 'state', 'created', 'attempts'],
  ),
};

const audioTypes = ['audio/wav', 'audio/flac', 'audio/ogg', 'audio/mp3', 'audio/mpeg', 'audio/l16', 'audio/basic', 'application/octet-stream'];
const binary: Schema = { type: 'string', contentMediaType: 'application/octet-stream' };
const q = (name: string, description?: string, required = false): ParameterDoc => ({ name, schema: str, required, ...(description ? { description } : {}) });

/** IBM Watson Speech to Text's asynchronous interface and earshot's callback deliveries. */
export const ibmApi: GroupApi = {
  tag: 'ibm',
  error: {
    name: 'IbmError',
    schema: obj({ code: { type: 'integer' }, code_description: str, error: str }, ['code', 'code_description', 'error']),
  },
  schemas,
  operations: {
    'ibm.recognitions.create': {
      parameters: ibmParameters.map((p) => q(p.name, `${p.handling === 'honoured' ? '' : 'accepted with a warning: '}${p.doc}`)),
      body: Object.fromEntries(audioTypes.map((t) => [t, binary])),
      responses: { '201': jsonBody('the job is durable and waiting', ref('IbmRecognitionCreated')) },
    },
    'ibm.recognitions.list': { responses: { '200': jsonBody('the newest 100 jobs', ref('IbmRecognitions')) } },
    'ibm.recognitions.get': {
      parameters: [
        { name: 'format', schema: { type: 'string', enum: ['json', 'srt', 'vtt', 'txt'] }, description: "earshot's own: subtitles or text of a completed job" },
      ],
      responses: {
        '200': {
          description: 'the job; subtitles or text when asked',
          content: { 'application/json': ref('IbmRecognition'), 'application/x-subrip': str, 'text/vtt': str, 'text/plain': str },
        },
      },
    },
    'ibm.recognitions.delete': { responses: { '204': { description: 'deleted' } } },
    'ibm.callbacks.register': {
      parameters: [q('callback_url', 'answers the challenge GET with its challenge_string', true), q('user_secret', 'signs challenges and notifications')],
      responses: {
        '200': jsonBody('already allow-listed', ref('IbmRegistration')),
        '201': jsonBody('allow-listed', ref('IbmRegistration')),
      },
    },
    'ibm.callbacks.unregister': { parameters: [q('callback_url', undefined, true)], responses: { '200': { description: 'removed' } } },
    'ibm.models.list': { responses: { '200': jsonBody('the models the device serves', ref('IbmModels')) } },
    'ibm.models.get': { responses: { '200': jsonBody("IBM's model, or OpenAI's by its name", { oneOf: [ref('IbmModel'), { type: 'object' }] }) } },
    'ibm.deliveries.list': {
      parameters: [{ name: 'state', schema: { type: 'string', enum: ['dead', 'pending', 'delivered'], default: 'dead' } }, q('callback_url')],
      responses: {
        '200': jsonBody(
          'deliveries: pending and dead ones oldest first, delivered ones newest first (at most 1000)',
          obj({ deliveries: { type: 'array', items: ref('IbmDelivery') } }, ['deliveries']),
        ),
      },
    },
    'ibm.deliveries.redeliverAll': {
      parameters: [q('callback_url', undefined, true)],
      responses: { '200': jsonBody('how many were queued again', obj({ redelivered: { type: 'integer' } }, ['redelivered'])) },
    },
    'ibm.deliveries.redeliver': { responses: { '200': jsonBody('the delivery, pending again', ref('IbmDelivery')) } },
  },
};
