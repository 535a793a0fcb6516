import { AppError } from '../errors.js';
import { type Request, originUrl } from '../http/server.js';
import { AzureError } from './errors.js';

/**
 * The Azure Speech to Text versions a client may be written against: v3.0–v3.2 name the
 * version in the path (`/speechtotext/v3.1/…`), the dated ones in the query
 * (`/speechtotext/…?api-version=2024-11-15`). v2.1's hooks have their own routes.
 */
export const pathVersions = ['v3.0', 'v3.1', 'v3.2'] as const;
export const datedVersions = ['2024-11-15', '2025-10-15'] as const;
export type PathVersion = (typeof pathVersions)[number];
export type DatedVersion = (typeof datedVersions)[number];
export type AzureVersion = PathVersion | DatedVersion;

export const isDated = (version: AzureVersion): version is DatedVersion => (datedVersions as readonly string[]).includes(version);

/** The prefixes Azure's routes answer under: each path version, then the dated form's bare prefix. */
export const versionMounts = ['/speechtotext/v3.1', '/speechtotext/v3.0', '/speechtotext/v3.2', '/speechtotext'] as const;

/** How a client addressed the API: where the device is and which version it speaks. Links are rendered in it. */
export interface ApiForm {
  /** `http://pi.local:8080` */
  origin: string;
  version: AzureVersion;
}

/**
 * The form of a request: the version from its mount, or from `api-version` on the bare
 * `/speechtotext` prefix (where it is required, as on Azure).
 */
export function apiForm(req: Request): ApiForm {
  const origin = originUrl(req);
  const inPath = /^\/speechtotext\/(v3\.[0-2])$/i.exec(req.mount)?.[1]?.toLowerCase();
  if (inPath) return { origin, version: inPath as PathVersion };
  const asked = req.query.get('api-version');
  if (!asked) {
    throw new AzureError(
      'ERR_INVALID_ARGUMENT',
      `The api-version query parameter is required: one of ${datedVersions.join(', ')} (or a version in the path: /speechtotext/v3.2/...)`,
      'MissingApiVersion',
    );
  }
  if (!(datedVersions as readonly string[]).includes(asked)) {
    throw new AzureError(
      'ERR_INVALID_ARGUMENT',
      `The api-version '${asked}' is not supported. Supported versions: ${datedVersions.join(', ')}; or v3.0, v3.1, v3.2 in the path`,
      'UnsupportedApiVersion',
    );
  }
  return { origin, version: asked as DatedVersion };
}

/** The version's root: `…/speechtotext/v3.1` or `…/speechtotext`. */
export const apiRoot = (form: ApiForm): string => `${form.origin}/speechtotext${isDated(form.version) ? '' : `/${form.version}`}`;

/**
 * A link in the client's form: `path` (with any `:action`) under the version's root, and
 * the dated form's `api-version` plus `query` as the query.
 */
export function apiLink(form: ApiForm, path: string, query: Record<string, string> = {}): string {
  const params = new URLSearchParams(isDated(form.version) ? { 'api-version': form.version, ...query } : query);
  const search = params.toString();
  return `${apiRoot(form)}${path}${search ? `?${search}` : ''}`;
}

/** Refuses an operation the client's version does not have (as Azure would: there is no such path). */
export function requireVersion(form: ApiForm, which: 'path' | 'dated', req: Request): void {
  if (isDated(form.version) !== (which === 'dated')) {
    throw new AppError('ERR_NOT_FOUND', `No such resource in API version ${form.version}: ${req.method.toUpperCase()} ${req.path}`);
  }
}
