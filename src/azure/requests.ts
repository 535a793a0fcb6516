/** How Azure's routes read requests and write the answers they share: JSON bodies, paging, actions, 202s, errors. */
import { AppError } from '../errors.js';
import { json, originUrl, type Reply, type Request } from '../http/server.js';
import { AzureError, azureErrorBody, invalid } from './errors.js';
import { page } from './views.js';

/** Azure's error body: {"code": "InvalidRequest", "message": "...", "innerError": {"code": "...", "message": "..."}}. */
export function azureError(error: AppError): Reply {
  const { status, body } = azureErrorBody(error);
  return json(status, body);
}

const maxBodyBytes = 64 * 1024;

/** Azure's operations answer 202 with Retry-After (seconds). */
export const accepted = (body?: unknown): Reply =>
  body === undefined ? { status: 202, headers: { 'Retry-After': '1' } } : json(202, body, { 'Retry-After': '1' });

/** A JSON request body of one of `types` (any when there is no Content-Type). */
export async function readJson(req: Request, types: readonly string[]): Promise<unknown> {
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
export function paging(req: Request): { skip: number; top: number } {
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

/** One page of `all` and, when there is more, the link to the next (the same path and query, as the client wrote them). */
export function paged<T, V>(req: Request, all: T[], view: (item: T) => V) {
  const { skip, top } = paging(req);
  const query = new URLSearchParams(req.query);
  query.set('skip', String(skip + top));
  query.set('top', String(top));
  return page(all.slice(skip, skip + top).map(view), all.length > skip + top, `${originUrl(req)}${req.path}?${query}`);
}

/** `{id}:{action}` (Azure's custom actions, e.g. `…/webhooks/{id}:ping`). */
export function splitAction(value: string): { id: string; action: string | undefined } {
  const colon = value.lastIndexOf(':');
  return colon < 0 ? { id: value, action: undefined } : { id: value.slice(0, colon), action: value.slice(colon + 1) };
}

export function unknownAction(req: Request): never {
  throw new AppError('ERR_NOT_FOUND', `No such resource: ${req.method.toUpperCase()} ${req.path}`);
}
