import type { Dialect, DialectContext } from '../dialect.js';
import { CallbackRegistry, callbackTarget, IbmNotifier } from './callbacks.js';
import { ibmDeliveryRoutes } from './delivery-routes.js';
import { ibmRoutes } from './routes.js';

/**
 * IBM Watson Speech to Text's asynchronous interface (`/v1`): recognitions, callback
 * registration with its challenge, signed callbacks, and earshot's dead letters of them.
 */
export function ibmDialect(ctx: DialectContext): Dialect {
  const registry = new CallbackRegistry(
    ctx.db,
    async (url, headers, timeoutMs) => {
      const r = await ctx.request({ method: 'GET', url, headers, timeoutMs });
      return { status: r.status, body: r.body };
    },
    ctx.config.ibmSignature,
    ctx.config.maxHooks,
  );
  registry.onChange = (url) => ctx.registrationChanged?.('ibm-callbacks', url);
  return {
    name: 'ibm',
    title: "IBM Watson Speech to Text, asynchronous interface (`/v1`; IBM's SDKs work against it)",
    notifier: new IbmNotifier(registry, ctx.outbox),
    targets: [callbackTarget(registry, ctx.config.ibmSignature)],
    async start() {
      const upgraded = await registry.upgrade();
      if (upgraded) ctx.log.info('callback registrations re-keyed by their normalized URL', { count: upgraded });
    },
    routes: [
      ibmRoutes({
        service: ctx.jobs,
        registry,
        model: ctx.model,
        minAudioBytes: 100,
        maxAudioBytes: ctx.config.maxUploadBytes,
        modelListings: ctx.modelListings,
      }),
      ibmDeliveryRoutes({ outbox: ctx.outbox, registry, wake: ctx.wakeDeliveries }),
    ].map((group) => ({ ...group, mounts: ['', instanceMount], mountsDoc: 'as in a service URL copied from the cloud' })),
  };
}

/**
 * A service URL copied from IBM Cloud ends in `/instances/{guid}`, and the SDKs append
 * `/v1/...` to it: every IBM route answers under that prefix too, whatever the guid.
 */
export const instanceMount = '/instances/:instance';
