import { type GroupApi, jsonBody } from '../http/openapi.js';

const str = { type: 'string' };
/** On a fleet device only (EARSHOT_FLEET_URL). */
const fleet = {
  enum: ['connecting', 'connected', 'unreachable'],
  description: "a fleet device's link to its broker; unreachable: the device works alone on its own queue",
};

/** The service's own routes: probes, metrics, this document and the device's state. */
export const opsApi: GroupApi = {
  tag: 'ops',
  error: { name: 'OpsError', schema: { type: 'object', properties: { code: str, message: str }, required: ['code', 'message'] } },
  operations: {
    healthz: { responses: { '200': jsonBody('up', { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] }) } },
    readyz: {
      responses: {
        '200': jsonBody('ready', { type: 'object', properties: { status: { const: 'ready' }, fleet }, required: ['status'] }),
        '503': jsonBody('not ready, and why', {
          type: 'object',
          properties: { status: { const: 'not ready' }, reason: str, fleet },
          required: ['status', 'reason'],
        }),
      },
    },
    metrics: { responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': str } } } },
    openapi: { responses: { '200': jsonBody('this document (OpenAPI 3.1)', { type: 'object', required: ['openapi', 'paths'] }) } },
    device: {
      responses: {
        '200': jsonBody('the device, for its page', {
          type: 'object',
          properties: {
            version: str,
            model: str,
            modelLoaded: { type: 'boolean' },
            multilingual: { type: 'boolean' },
            languages: { type: 'array', items: str },
            modelType: str,
            weightType: str,
            board: str,
            arch: str,
            cpus: { type: 'integer' },
            cpuTemperature: { type: 'number', description: '°C, where the board has a thermal zone' },
            throttling: {
              type: 'object',
              properties: { raw: str, now: { type: 'array', items: str }, sinceBoot: { type: 'array', items: str } },
              description: 'vcgencmd get_throttled, where present',
            },
            uptime: { type: 'object', properties: { system: { type: 'number' }, service: { type: 'number' } } },
            memory: { type: 'object', properties: { totalBytes: { type: 'integer' }, freeBytes: { type: 'integer' } } },
            disk: { type: 'object', properties: { freeBytes: { type: 'integer' }, floorBytes: { type: 'integer' } } },
            jobs: { type: 'object', additionalProperties: { type: 'integer' } },
            auth: { enum: ['key', 'none'] },
          },
          required: ['version', 'model', 'modelLoaded', 'board', 'arch', 'cpus', 'uptime', 'memory', 'disk', 'jobs', 'auth'],
        }),
      },
    },
  },
};
