import { ibmApi } from './openapi.js';
import { deliveryListLimit, deliveryListState, invalidListState, type DeliveryListState, type DeliveryRecord, type Outbox } from '../delivery/outbox.js';
import { AppError } from '../errors.js';
import { json, requiredParam, type Request, type RouteGroup } from '../http/server.js';
import { callbackTargetKind, normalizeCallbackUrl, type CallbackRegistry } from './callbacks.js';
import { ibmError } from './errors.js';

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The job a delivery is about, read from its body (IBM `id`), when it has one. */
function subjectOf(record: DeliveryRecord): string | undefined {
  try {
    const body = JSON.parse(record.body) as { id?: unknown };
    return typeof body.id === 'string' ? body.id : undefined;
  } catch {
    return undefined;
  }
}

/** A callback delivery as these endpoints show it: state, attempts and the last outcome. */
function ibmDeliveryView(record: DeliveryRecord) {
  const subject = subjectOf(record);
  return {
    id: record.id,
    callback_url: record.target.url,
    event: record.event,
    ...(subject ? { recognition_id: subject } : {}),
    state: record.state,
    created: iso(record.createdAt),
    attempts: record.attempts,
    ...(record.lastAttemptAt !== undefined ? { last_attempt: iso(record.lastAttemptAt) } : {}),
    ...(record.lastStatus !== undefined ? { last_status_code: record.lastStatus } : {}),
    ...(record.lastError !== undefined ? { last_error: record.lastError } : {}),
    ...(record.state === 'pending' ? { next_attempt: iso(record.nextAttemptAt) } : {}),
    ...(record.deadAt !== undefined ? { dead_since: iso(record.deadAt) } : {}),
    ...(record.deliveredAt !== undefined ? { delivered: iso(record.deliveredAt) } : {}),
  };
}

export interface IbmDeliveryRoutesOptions {
  outbox: Outbox;
  registry: CallbackRegistry;
  /** Wakes the dispatcher after a redelivery. */
  wake: () => void;
}

function requireRegistered(o: IbmDeliveryRoutesOptions, url: string): void {
  if (!o.registry.get(url)) {
    throw new AppError(
      'ERR_CALLBACK_NOT_REGISTERED',
      `callback_url '${url}' is not registered; register it again with POST /v1/register_callback before redelivering`,
    );
  }
}

function stateParam(req: Request): DeliveryListState {
  const state = deliveryListState(req.query.get('state'));
  if (!state) throw new AppError('ERR_INVALID_ARGUMENT', invalidListState(req.query.get('state')));
  return state;
}

/**
 * earshot's delivery endpoints for IBM callbacks (IBM has none): list failed, pending or
 * recently delivered notifications per callback URL, redeliver one or all.
 */
export function ibmDeliveryRoutes(o: IbmDeliveryRoutesOptions): RouteGroup {
  return {
    prefix: '/v1/callback_deliveries',
    api: ibmApi,
    renderError: (error) => ibmError(error),
    routes: [
      {
        method: 'get',
        pattern: '/v1/callback_deliveries',
        name: 'ibm.deliveries.list',
        doc: "earshot's own: callbacks that are `dead` (default), `pending` or `delivered` (newest first), per `callback_url` or all",
        handler: (req) => {
          const given = req.query.get('callback_url');
          const url = given ? normalizeCallbackUrl(given) : undefined;
          const records = o.outbox.list(stateParam(req), { kind: callbackTargetKind, ...(url ? { key: url } : {}) }, deliveryListLimit);
          return json(200, { deliveries: records.map(ibmDeliveryView) });
        },
      },
      {
        method: 'post',
        pattern: '/v1/callback_deliveries/redeliver',
        name: 'ibm.deliveries.redeliverAll',
        doc: 'send every dead letter of `callback_url` again (same ids)',
        handler: async (req) => {
          const url = normalizeCallbackUrl(requiredParam(req, 'callback_url'));
          requireRegistered(o, url);
          const count = await o.outbox.redeliverAll({ kind: callbackTargetKind, key: url });
          if (count) o.wake();
          return json(200, { redelivered: count });
        },
      },
      {
        method: 'post',
        pattern: '/v1/callback_deliveries/:id/redeliver',
        name: 'ibm.deliveries.redeliver',
        doc: 'send one dead letter again',
        handler: async (req) => {
          const record = o.outbox.get(req.params.id!);
          if (record?.target.kind !== callbackTargetKind) throw new AppError('ERR_NOT_FOUND', `The delivery '${req.params.id}' was not found`);
          if (record.state !== 'dead') {
            throw new AppError('ERR_INVALID_ARGUMENT', `The delivery '${record.id}' is ${record.state}, not dead: only dead letters can be redelivered`);
          }
          requireRegistered(o, record.target.key);
          const revived = await o.outbox.redeliver(record.id);
          o.wake();
          return json(200, ibmDeliveryView(revived ?? record));
        },
      },
    ],
  };
}
