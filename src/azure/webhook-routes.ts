import { deliveryListLimit, deliveryListState, invalidListState, type DeliveryRecord, type Outbox } from '../delivery/outbox.js';
import { AppError } from '../errors.js';
import { baseUrl, json, originUrl, type Reply, type Request, type Route } from '../http/server.js';
import { invalid } from './errors.js';
import type { AzureNotifier } from './notifier.js';
import { accepted, paged, readJson, splitAction, unknownAction } from './requests.js';
import type { AzureTranscriptions } from './transcription-service.js';
import { apiForm } from './versions.js';
import { deliveryView, v21HookView, webHookView } from './views.js';
import { parseCreateV21, parseCreateV31, parsePatchV21, parsePatchV31 } from './webhook-input.js';
import { webhookTargetKind, type WebhookRegistry } from './webhooks.js';

export interface WebhookRoutesOptions {
  transcriptions: AzureTranscriptions;
  registry: WebhookRegistry;
  notifier: AzureNotifier;
  outbox: Outbox;
  /** Wakes the dispatcher after something was queued outside a job's state change. */
  wake: () => void;
}

/** v2's hooks, under the v2 mounts (`/api/speechtotext/v2.1`). */
const v21Base = '/transcriptions/hooks';

/**
 * Azure's web hooks: the version-neutral routes (served under every version's prefix),
 * earshot's dead-letter endpoints per hook among them, and v2.1's hooks under
 * `/api/speechtotext/v2.1/transcriptions/hooks`.
 */
export function webhookRoutes(o: WebhookRoutesOptions): { versioned: Route[]; v21: Route[] } {
  const deleteHook = async (req: Request): Promise<Reply> => {
    if (!(await o.registry.delete(req.params.id!))) throw new AppError('ERR_NOT_FOUND', `The web hook '${req.params.id}' was not found`);
    return { status: 204 };
  };

  const ping = async (id: string): Promise<Reply> => {
    await o.notifier.ping(id);
    o.wake();
    return accepted();
  };

  /** `:test` (v3.0: `/test`): 202 when deliveries were queued, 204 when no transcription fits. */
  const test = async (id: string, answer: Reply): Promise<Reply> => {
    const sent = await o.notifier.test(id, await o.transcriptions.newest(100));
    if (!sent.length) return { status: 204 };
    o.wake();
    return answer;
  };

  const deliveryRoutes: Route[] = [
    {
      method: 'get',
      pattern: '/webhooks/:id/deliveries',
      name: 'azure.webhooks.deliveries.list',
      doc: "earshot's own: the hook's deliveries that are `dead` (default), `pending` or `delivered` (newest first), paged",
      handler: (req) => {
        apiForm(req);
        const hookId = req.params.id!;
        o.registry.require(hookId);
        const state = deliveryListState(req.query.get('state'));
        if (!state) throw invalid('InvalidParameterValue', invalidListState(req.query.get('state')));
        // Pages reach every dead letter and pending delivery; delivered ones are kept for days, so the newest only.
        const limit = state === 'delivered' ? deliveryListLimit : Number.POSITIVE_INFINITY;
        const records = o.outbox.list(state, { kind: webhookTargetKind, key: hookId }, limit);
        return json(200, paged(req, records, deliveryView));
      },
    },
    {
      method: 'post',
      pattern: '/webhooks/:id/:action',
      name: 'azure.webhooks.subaction',
      doc: "`{action}`: v3.0's `ping` and `test`; earshot's own `deliveries:redeliver`, which sends every dead letter of the hook again (202)",
      shown: '/webhooks/{id}/{action}',
      handler: async (req) => {
        apiForm(req);
        const hookId = req.params.id!;
        const action = req.params.action!.toLowerCase();
        if (action === 'ping') return ping(hookId);
        if (action === 'test') return test(hookId, accepted());
        if (action !== 'deliveries:redeliver') return unknownAction(req);
        o.registry.requireEnabled(hookId);
        const count = await o.outbox.redeliverAll({ kind: webhookTargetKind, key: hookId });
        if (count) o.wake();
        return accepted({ redelivered: count });
      },
    },
    {
      method: 'post',
      pattern: '/webhooks/:id/deliveries/:action',
      name: 'azure.webhooks.deliveries.redeliver',
      doc: "earshot's own: send one dead letter again (202)",
      shown: '/webhooks/{id}/deliveries/{deliveryId}:redeliver',
      handler: async (req) => {
        apiForm(req);
        const { id, action } = splitAction(req.params.action!);
        if (action !== 'redeliver') return unknownAction(req);
        const hookId = req.params.id!;
        o.registry.require(hookId);
        const record: DeliveryRecord | undefined = o.outbox.get(id);
        if (record?.target.kind !== webhookTargetKind || record.target.key !== hookId)
          throw new AppError('ERR_NOT_FOUND', `The delivery '${id}' of web hook '${hookId}' was not found`);
        if (record.state !== 'dead')
          throw invalid('InvalidPrerequisite', `The delivery '${id}' is ${record.state}, not dead: only dead letters can be redelivered`);
        o.registry.requireEnabled(hookId);
        const revived = await o.outbox.redeliver(id);
        o.wake();
        return accepted(deliveryView(revived ?? record));
      },
    },
  ];

  const hookRoutes: Route[] = [
    {
      method: 'post',
      pattern: '/webhooks',
      name: 'azure.webhooks.create',
      doc: 'a web hook (`webUrl`, `events`, `properties.secret`, `displayName`, `description`, `customProperties`): 201, then the validation challenge decides its status; its deliveries take the shape of the version it was created in',
      handler: async (req) => {
        const form = apiForm(req);
        const input = { ...parseCreateV31(await readJson(req, ['application/json'])), apiVersion: form.version };
        const view = webHookView(await o.registry.create(input, form.origin), form);
        return json(201, view, { Location: view.self });
      },
    },
    {
      method: 'get',
      pattern: '/webhooks',
      name: 'azure.webhooks.list',
      doc: 'all web hooks, paged (`skip`, `top`, `@nextLink`)',
      handler: (req) => {
        const form = apiForm(req);
        return json(
          200,
          paged(req, o.registry.all(), (hook) => webHookView(hook, form)),
        );
      },
    },
    {
      method: 'get',
      pattern: '/webhooks/:id',
      name: 'azure.webhooks.get',
      doc: 'one web hook (the secret is never returned)',
      handler: (req) => json(200, webHookView(o.registry.require(req.params.id!), apiForm(req))),
    },
    {
      method: 'patch',
      pattern: '/webhooks/:id',
      name: 'azure.webhooks.update',
      doc: 'PATCH a web hook; a new URL, or any PATCH of a Failed hook, runs the challenge again (after the answer: NotStarted meanwhile)',
      handler: async (req) => {
        const form = apiForm(req);
        const patch = parsePatchV31(await readJson(req, ['application/json', 'application/merge-patch+json']));
        return json(200, webHookView(await o.registry.update(req.params.id!, patch, form.origin), form));
      },
    },
    {
      method: 'del',
      pattern: '/webhooks/:id',
      name: 'azure.webhooks.delete',
      doc: '204; its pending deliveries are dropped',
      handler: (req) => {
        apiForm(req);
        return deleteHook(req);
      },
    },
    {
      method: 'post',
      pattern: '/webhooks/:id',
      name: 'azure.webhooks.action',
      doc: '`:ping` (202 with Retry-After; event `Ping`), `:test` (one delivery per subscribed event, each of the newest transcription that fired it; 204 when there is none)',
      shown: '/webhooks/{id}:ping, :test',
      handler: async (req) => {
        apiForm(req);
        const { id, action } = splitAction(req.params.id!);
        if (action?.toLowerCase() === 'ping') return ping(id);
        if (action?.toLowerCase() === 'test') return test(id, accepted());
        return unknownAction(req);
      },
    },
    ...deliveryRoutes,
  ];

  const v21Routes: Route[] = [
    {
      method: 'post',
      pattern: v21Base,
      name: 'azure.v21.hooks.create',
      doc: 'a v2.1 hook (`configuration.url`, `configuration.secret`, `events`, `active`)',
      handler: async (req) => {
        // The hook keeps the origin: its deliveries link to v3.1's files (v2 had no versioned links of its own).
        const hook = await o.registry.create(parseCreateV21(await readJson(req, ['application/json'])), originUrl(req));
        return json(201, v21HookView(hook), { Location: `${baseUrl(req)}${v21Base}/${hook.id}` });
      },
    },
    {
      method: 'get',
      pattern: v21Base,
      name: 'azure.v21.hooks.list',
      doc: "all hooks, in v2.1's shape",
      handler: () => json(200, o.registry.all().map(v21HookView)),
    },
    {
      method: 'get',
      pattern: `${v21Base}/:id`,
      name: 'azure.v21.hooks.get',
      doc: 'one hook',
      handler: (req) => json(200, v21HookView(o.registry.require(req.params.id!))),
    },
    {
      method: 'patch',
      pattern: `${v21Base}/:id`,
      name: 'azure.v21.hooks.update',
      doc: 'update a hook: any of `name`, `description`, `events` (the whole list), `configuration.url`, `configuration.secret`, `active`, `properties`; re-enables a Failed one',
      handler: async (req) => {
        const patch = parsePatchV21(await readJson(req, ['application/json', 'application/merge-patch+json']));
        return json(200, v21HookView(await o.registry.update(req.params.id!, patch, originUrl(req))));
      },
    },
    {
      method: 'del',
      pattern: `${v21Base}/:id`,
      name: 'azure.v21.hooks.delete',
      doc: '204',
      handler: deleteHook,
    },
    {
      method: 'post',
      pattern: `${v21Base}/:id/ping`,
      name: 'azure.v21.hooks.ping',
      doc: '202; event `Ping`',
      handler: (req) => ping(req.params.id!),
    },
    {
      method: 'post',
      pattern: `${v21Base}/:id/test`,
      name: 'azure.v21.hooks.test',
      doc: '200 when test deliveries were queued (one per subscribed event, the newest fitting job), 204 when there is no job to send',
      // v2.1: 200 when a test request could be made, 204 when there is no entity.
      handler: (req) => test(req.params.id!, { status: 200 }),
    },
  ];

  return { versioned: hookRoutes, v21: v21Routes };
}
