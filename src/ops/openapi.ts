import { type GroupApi, jsonBody } from '../http/openapi.js';

const str = { type: 'string' };

/** The service's own routes: probes, metrics and this document. */
export const opsApi: GroupApi = {
  tag: 'ops',
  error: { name: 'OpsError', schema: { type: 'object', properties: { code: str, message: str }, required: ['code', 'message'] } },
  operations: {
    healthz: { responses: { '200': jsonBody('up', { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] }) } },
    readyz: {
      responses: {
        '200': jsonBody('ready', { type: 'object', properties: { status: { const: 'ready' } }, required: ['status'] }),
        '503': jsonBody('not ready, and why', { type: 'object', properties: { status: { const: 'not ready' }, reason: str }, required: ['status', 'reason'] }),
      },
    },
    metrics: { responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': str } } } },
    openapi: { responses: { '200': jsonBody('this document (OpenAPI 3.1)', { type: 'object', required: ['openapi', 'paths'] }) } },
  },
};
