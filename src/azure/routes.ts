import { deliveryListState, type DeliveryRecord, type Outbox } from '../delivery/outbox.js';
import { AppError } from '../errors.js';
import { baseUrl, json, type Reply, type Request, type Route, type RouteGroup } from '../http/server.js';
import type { JobService } from '../jobs/job-service.js';
import { AzureError, azureErrorBody, invalid } from './errors.js';
import { fastTranscriptionRoute, type FastTranscriptionOptions } from './fast.js';
import { fileContents, fileId, fileView, type ContentUrls } from './files.js';
import type { AzureNotifier } from './notifier.js';
import { deliveryView, page, transcriptionView, v21HookView, webHookView } from './views.js';
import { parseCreateV21, parseCreateV31, parsePatchV21, parsePatchV31 } from './webhook-input.js';
import { webhookTargetKind, type WebhookRegistry } from './webhooks.js';

export interface AzureRoutesOptions extends FastTranscriptionOptions {
  service: JobService;
  registry: WebhookRegistry;
  notifier: AzureNotifier;
  outbox: Outbox;
  contentUrls: ContentUrls;
  /** Wakes the dispatcher after something was queued outside a job's state change. */
  wake: () => void;
  now?: () => number;
}

/** Azure's error body: {"code": "InvalidRequest", "message": "...", "innerError": {"code": "...", "message": "..."}}. */
export function azureError(error: AppError): Reply {
  const { status, body } = azureErrorBody(error);
  return json(status, body);
}

const maxBodyBytes = 64 * 1024;
/** The longest life of a content URL (sasValidityInSeconds is capped to it). */
export const maxSasSeconds = 7 * 24 * 3600;
/** Azure's operations answer 202 with Retry-After (seconds). */
const accepted = (body?: unknown): Reply => (body === undefined ? { status: 202, headers: { 'Retry-After': '1' } } : json(202, body, { 'Retry-After': '1' }));
const v21Base = '/api/speechtotext/v2.1/transcriptions/hooks';

/** A JSON request body of one of `types` (any when there is no Content-Type). */
async function readJson(req: Request, types: readonly string[]): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type) {
    const mediaType = type.split(';')[0]!.trim().toLowerCase();
    if (!types.includes(mediaType)) {
      throw new AzureError('ERR_UNSUPPORTED_MEDIA_TYPE', `Unsupported Content-Type '${type}': expected ${types.join(' or ')}`, 'InvalidRequestBodyFormat');
    }
  }
  try {
    return await req.body.json(maxBodyBytes);
  } catch (err) {
    if (err instanceof AppError && err.code === 'ERR_INVALID_ARGUMENT') throw invalid('InvalidRequestBodyFormat', err.message);
    throw err;
  }
}

/** Azure's paging: `skip` (default 0) and `top` (default 100, at most 100). `filter` is not supported. */
function paging(req: Request): { skip: number; top: number } {
  if (req.query.get('filter')) throw invalid('UnsupportedFilter', 'The filter parameter is not supported by earshot: list without it and filter the values');
  const int = (name: string, fallback: number, min: number) => {
    const value = req.query.get(name);
    if (value === null || value === '') return fallback;
    if (!/^\d{1,9}$/.test(value) || Number(value) < min) {
      throw invalid('InvalidParameterValue', `Expected an integer of at least ${min} for ${name} but received "${value}"`);
    }
    return Number(value);
  };
  return { skip: int('skip', 0, 0), top: Math.min(int('top', 100, 1), 100) };
}

/** One page of `all` and, when there is more, the link to the next (same path and query). */
function paged<T, V>(req: Request, all: T[], view: (item: T) => V) {
  const { skip, top } = paging(req);
  const query = new URLSearchParams(req.query);
  query.set('skip', String(skip + top));
  query.set('top', String(top));
  return page(all.slice(skip, skip + top).map(view), all.length > skip + top, `${baseUrl(req)}${req.path}?${query}`);
}

/** `{id}:{action}` (Azure's custom actions, e.g. `…/webhooks/{id}:ping`). */
function splitAction(value: string): { id: string; action: string | undefined } {
  const colon = value.lastIndexOf(':');
  return colon < 0 ? { id: value, action: undefined } : { id: value.slice(0, colon), action: value.slice(colon + 1) };
}

function unknownAction(req: Request): never {
  throw new AppError('ERR_NOT_FOUND', `No such resource: ${req.method.toUpperCase()} ${req.path}`);
}

/**
 * Azure Speech to Text under `/speechtotext/v3.1` (web hooks, transcriptions of either
 * dialect, their files, earshot's dead-letter endpoints per hook) and the v2.1 hooks
 * under `/api/speechtotext/v2.1/transcriptions/hooks`; errors in Azure's shape.
 */
export function azureRoutes(o: AzureRoutesOptions): RouteGroup[] {
  const now = o.now ?? Date.now;
  const renderError = (error: AppError) => azureError(error);

  const deleteHook = async (req: Request): Promise<Reply> => {
    if (!(await o.registry.delete(req.params.id!))) throw new AppError('ERR_NOT_FOUND', `The web hook '${req.params.id}' was not found`);
    return { status: 204 };
  };

  /** A job's file by its id (404 when the job has no such file). */
  const findFile = (jobId: string, id: string, base: string) => {
    const job = o.service.get(jobId);
    const file = fileContents(job, o.service.result(job.id), base).find((f) => fileId(job.id, f.kind) === id);
    if (!file) throw new AppError('ERR_NOT_FOUND', `The file '${id}' of transcription '${job.id}' was not found`);
    return { job, file };
  };

  const webhookAction = async (req: Request): Promise<Reply> => {
    const { id, action } = splitAction(req.params.id!);
    if (action === 'ping') {
      await o.notifier.ping(id);
      o.wake();
      return accepted();
    }
    if (action === 'test') {
      const sent = await o.notifier.test(id, o.service.newest(100));
      if (!sent.length) return { status: 204 };
      o.wake();
      return accepted();
    }
    return unknownAction(req);
  };

  const deliveryRoutes: Route[] = [
    {
      method: 'get',
      pattern: '/speechtotext/v3.1/webhooks/:id/deliveries',
      name: 'azure.webhooks.deliveries.list',
      doc: "earshot's own: the hook's deliveries that are `dead` (default) or `pending`, paged",
      handler: (req) => {
        const hookId = req.params.id!;
        o.registry.require(hookId);
        const state = deliveryListState(req.query.get('state'));
        if (!state) throw invalid('InvalidParameterValue', `Invalid state '${req.query.get('state')}'. Valid states are dead, pending`);
        const records = o.outbox.list(state, { kind: webhookTargetKind, key: hookId });
        return json(200, paged(req, records, deliveryView));
      },
    },
    {
      method: 'post',
      pattern: '/speechtotext/v3.1/webhooks/:id/:action',
      name: 'azure.webhooks.deliveries.redeliverAll',
      doc: "earshot's own: send every dead letter of the hook again (202)",
      shown: '/speechtotext/v3.1/webhooks/{id}/deliveries:redeliver',
      handler: async (req) => {
        if (req.params.action !== 'deliveries:redeliver') return unknownAction(req);
        const hookId = req.params.id!;
        o.registry.requireEnabled(hookId);
        const count = await o.outbox.redeliverAll({ kind: webhookTargetKind, key: hookId });
        if (count) o.wake();
        return accepted({ redelivered: count });
      },
    },
    {
      method: 'post',
      pattern: '/speechtotext/v3.1/webhooks/:id/deliveries/:action',
      name: 'azure.webhooks.deliveries.redeliver',
      doc: "earshot's own: send one dead letter again (202)",
      shown: '/speechtotext/v3.1/webhooks/{id}/deliveries/{deliveryId}:redeliver',
      handler: async (req) => {
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

  const webhookRoutes: Route[] = [
    {
      method: 'post',
      pattern: '/speechtotext/v3.1/webhooks',
      name: 'azure.webhooks.create',
      doc: 'a web hook (`webUrl`, `events`, `properties.secret`, `displayName`, `description`, `customProperties`): 201, then the validation challenge decides its status',
      handler: async (req) => {
        const input = parseCreateV31(await readJson(req, ['application/json']));
        const hook = await o.registry.create(input, baseUrl(req));
        const view = webHookView(hook, baseUrl(req));
        return json(201, view, { Location: view.self });
      },
    },
    {
      method: 'get',
      pattern: '/speechtotext/v3.1/webhooks',
      name: 'azure.webhooks.list',
      doc: 'all web hooks, paged (`skip`, `top`, `@nextLink`)',
      handler: (req) =>
        json(
          200,
          paged(req, o.registry.all(), (hook) => webHookView(hook, baseUrl(req))),
        ),
    },
    {
      method: 'get',
      pattern: '/speechtotext/v3.1/webhooks/:id',
      name: 'azure.webhooks.get',
      doc: 'one web hook (the secret is never returned)',
      handler: (req) => json(200, webHookView(o.registry.require(req.params.id!), baseUrl(req))),
    },
    {
      method: 'patch',
      pattern: '/speechtotext/v3.1/webhooks/:id',
      name: 'azure.webhooks.update',
      doc: 'PATCH a web hook; a new URL, or any PATCH of a Failed hook, runs the challenge again (after the answer: NotStarted meanwhile)',
      handler: async (req) => {
        const patch = parsePatchV31(await readJson(req, ['application/json', 'application/merge-patch+json']));
        const hook = await o.registry.update(req.params.id!, patch, baseUrl(req));
        return json(200, webHookView(hook, baseUrl(req)));
      },
    },
    {
      method: 'del',
      pattern: '/speechtotext/v3.1/webhooks/:id',
      name: 'azure.webhooks.delete',
      doc: '204; its pending deliveries are dropped',
      handler: deleteHook,
    },
    {
      method: 'post',
      pattern: '/speechtotext/v3.1/webhooks/:id',
      name: 'azure.webhooks.action',
      doc: '`:ping` (202 with Retry-After; event `Ping`), `:test` (one delivery per subscribed event, each of the newest job that fired it; 204 when there is none)',
      shown: '/speechtotext/v3.1/webhooks/{id}:ping, :test',
      handler: webhookAction,
    },
    ...deliveryRoutes,
  ];

  const transcriptionRoutes: Route[] = [
    {
      method: 'get',
      pattern: '/speechtotext/v3.1/transcriptions',
      name: 'azure.transcriptions.list',
      doc: 'every job, of either dialect, as a v3.1 transcription, paged',
      handler: (req) => {
        const { skip, top } = paging(req);
        // One more than the page: whether there is a next one.
        const jobs = o.service.newest(skip + top + 1, (job) => !job.synchronous);
        return json(
          200,
          paged(req, jobs, (job) => transcriptionView(job, baseUrl(req))),
        );
      },
    },
    {
      method: 'get',
      pattern: '/speechtotext/v3.1/transcriptions/:id',
      name: 'azure.transcriptions.get',
      doc: 'one job as a transcription (`NotStarted`, `Running`, `Succeeded`, `Failed`)',
      handler: (req) => json(200, transcriptionView(o.service.get(req.params.id!), baseUrl(req))),
    },
    {
      method: 'del',
      pattern: '/speechtotext/v3.1/transcriptions/:id',
      name: 'azure.transcriptions.delete',
      doc: '204, also when it did not exist',
      handler: async (req) => {
        try {
          await o.service.delete(req.params.id!);
        } catch (err) {
          // Azure: "successfully deleted or did not exist".
          if (!(err instanceof AppError && err.code === 'ERR_JOB_NOT_FOUND')) throw err;
        }
        return { status: 204 };
      },
    },
    {
      method: 'get',
      pattern: '/speechtotext/v3.1/transcriptions/:id/files',
      name: 'azure.transcriptions.files.list',
      doc: 'the result (`Transcription`) and report files with signed `contentUrl`s (`sasValidityInSeconds`: 12 h by default, at most 7 days)',
      handler: (req) => {
        const base = baseUrl(req);
        const job = o.service.get(req.params.id!);
        const validity = req.query.get('sasValidityInSeconds');
        if (validity !== null && !/^\d{1,9}$/.test(validity)) {
          throw invalid('InvalidParameterValue', `Expected a whole number of seconds for sasValidityInSeconds but received "${validity}"`);
        }
        // A signed URL is a credential that cannot be revoked: it lives 12 h unless asked
        // otherwise, and never longer than a week, whatever is asked.
        const until = now() + Math.min(validity === null ? 12 * 3600 : Number(validity), maxSasSeconds) * 1000;
        const files = fileContents(job, o.service.result(job.id), base).map(({ kind, content }) =>
          fileView(job, kind, content, base, o.contentUrls.url(base, job.id, fileId(job.id, kind), until)),
        );
        return json(
          200,
          paged(req, files, (f) => f),
        );
      },
    },
    {
      method: 'get',
      pattern: '/speechtotext/v3.1/transcriptions/:id/files/:fileId',
      name: 'azure.transcriptions.files.get',
      doc: 'one file',
      handler: (req) => {
        const base = baseUrl(req);
        const { job, file } = findFile(req.params.id!, req.params.fileId!, base);
        const contentUrl = o.contentUrls.url(base, job.id, req.params.fileId!, now() + 12 * 3600 * 1000);
        return json(200, fileView(job, file.kind, file.content, base, contentUrl));
      },
    },
    {
      method: 'get',
      pattern: '/speechtotext/v3.1/transcriptions/:id/files/:fileId/content',
      name: 'azure.transcriptions.files.content',
      doc: "the file's JSON; the signed URL is the credential (no key)",
      // Like Azure's SAS URLs: the signature in the URL is the credential.
      auth: false,
      handler: (req) => {
        o.contentUrls.verify(req.params.id!, req.params.fileId!, req.query);
        const { file } = findFile(req.params.id!, req.params.fileId!, baseUrl(req));
        return { status: 200, headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: JSON.stringify(file.content) };
      },
    },
  ];

  const v21Routes: Route[] = [
    {
      method: 'post',
      pattern: v21Base,
      name: 'azure.v21.hooks.create',
      doc: 'a v2.1 hook (`configuration.url`, `configuration.secret`, `events`, `active`)',
      handler: async (req) => {
        const hook = await o.registry.create(parseCreateV21(await readJson(req, ['application/json'])), baseUrl(req));
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
        return json(200, v21HookView(await o.registry.update(req.params.id!, patch, baseUrl(req))));
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
      handler: async (req) => {
        await o.notifier.ping(req.params.id!);
        o.wake();
        return accepted();
      },
    },
    {
      method: 'post',
      pattern: `${v21Base}/:id/test`,
      name: 'azure.v21.hooks.test',
      doc: '200 when test deliveries were queued (one per subscribed event, the newest fitting job), 204 when there is no job to send',
      handler: async (req) => {
        // v2.1: 200 when a test request could be made, 204 when there is no entity.
        const sent = await o.notifier.test(req.params.id!, o.service.newest(100));
        if (!sent.length) return { status: 204 };
        o.wake();
        return { status: 200 };
      },
    },
  ];

  return [
    { prefix: '/speechtotext', renderError, routes: [...webhookRoutes, ...transcriptionRoutes, fastTranscriptionRoute(o)] },
    { prefix: '/api/speechtotext', renderError, routes: v21Routes },
  ];
}
