import type { Metrics } from '../metrics.js';
import { json, type RouteGroup } from '../http/server.js';
import { opsApi } from './openapi.js';
import type { DeviceInfo } from './device.js';

export interface OpsRoutesOptions {
  /** Why the service is not ready, or undefined when it is (model loaded, store open). */
  notReadyReason: () => string | undefined;
  metrics: Metrics;
  /** Whether /metrics needs credentials (EARSHOT_METRICS_AUTH=key). */
  metricsNeedKey: boolean;
  /** The OpenAPI document of every route the server serves (built from the route table on first request). */
  openapi: () => unknown;
  /** The link to the fleet's broker, on a fleet device (EARSHOT_FLEET_URL); undefined on a single device. */
  fleet?: () => string | undefined;
  /** The device's state for its page. */
  device: () => Promise<DeviceInfo>;
}

/** Probes, metrics and the OpenAPI document: no credentials (metrics optionally with); the device's state with; plain JSON errors. */
export function opsRoutes(o: OpsRoutesOptions): RouteGroup {
  return {
    prefix: '/',
    api: opsApi,
    renderError: (error) => json(error.status === 499 ? 400 : error.status, { code: error.code, message: error.message }),
    routes: [
      {
        method: 'get',
        pattern: '/healthz',
        name: 'healthz',
        doc: 'the process is up (no credentials)',
        auth: false,
        handler: () => json(200, { status: 'ok' }),
      },
      {
        method: 'get',
        pattern: '/readyz',
        name: 'readyz',
        doc: "the model is loaded and the store open; 503 with the reason while starting (no credentials); on a fleet device, `fleet` is the broker link's state (an unreachable broker leaves the device ready: it works alone)",
        auth: false,
        handler: () => {
          const reason = o.notReadyReason();
          const fleet = o.fleet?.();
          const link = fleet ? { fleet } : {};
          return reason ? json(503, { status: 'not ready', reason, ...link }) : json(200, { status: 'ready', ...link });
        },
      },
      {
        method: 'get',
        pattern: '/metrics',
        name: 'metrics',
        doc: 'Prometheus text format (no credentials unless `EARSHOT_METRICS_AUTH=key`); gauges are kept as things change, so a scrape costs no scan',
        auth: o.metricsNeedKey,
        handler: () => ({
          status: 200,
          headers: { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' },
          body: o.metrics.render(),
        }),
      },
      {
        method: 'get',
        pattern: '/openapi.json',
        name: 'openapi',
        // The API's shape is no secret (the README publishes it) and tools fetch it before they hold a key.
        doc: 'this API as an OpenAPI 3.1 document, generated from the route table (no credentials)',
        auth: false,
        handler: () => json(200, o.openapi()),
      },
      {
        method: 'get',
        pattern: '/device',
        name: 'device',
        doc: "earshot's own: the device for its page: version, model and languages, board, CPU temperature and throttling (where the board tells), uptime, memory, free space, jobs by status, and on a fleet device the broker link",
        handler: async () => json(200, await o.device(), { 'Cache-Control': 'no-store' }),
      },
    ],
  };
}
