import type { Method, Route, RouteGroup } from './server.js';

/** A JSON Schema (OpenAPI 3.1 uses JSON Schema 2020-12). */
export type Schema = Record<string, unknown>;

/** A query or header parameter of an operation. */
export interface ParameterDoc {
  name: string;
  in?: 'query' | 'header';
  schema: Schema;
  required?: boolean;
  description?: string;
}

/** A response: its description and, when it has a body, the body's schema per media type. */
export interface ResponseDoc {
  description: string;
  content?: Record<string, Schema>;
  headers?: Record<string, string>;
}

/** What a route takes and answers, beyond what its pattern and `doc` say. */
export interface OperationDoc {
  parameters?: ParameterDoc[];
  /** The request body's schema per media type. */
  body?: Record<string, Schema>;
  /** Whether a body must be sent (default: true when `body` is given). */
  bodyRequired?: boolean;
  /** The answers other than errors, by status. */
  responses: Record<string, ResponseDoc>;
  /**
   * The paths (under each mount) the route stands for, when its uWS pattern is not how a
   * client writes them: Azure's `/webhooks/{id}:ping` and `:test` share `/webhooks/:id`.
   * `(mount) => paths` when they differ by mount; an empty list leaves the mount out.
   */
  paths?: string[] | ((mount: string) => string[]);
}

/**
 * A route group's part of the OpenAPI document, kept in the dialect's folder beside the
 * routes it describes: its error shape, the schemas its operations refer to, and one
 * OperationDoc per route name (a route without one fails the document's build).
 */
export interface GroupApi {
  /** The OpenAPI tag of the group's operations (a dialect's name). */
  tag: string;
  /** The name (under components) and schema of the group's error body. */
  error: { name: string; schema: Schema };
  /** Named schemas the operations refer to as `{ $ref: '#/components/schemas/NAME' }`. */
  schemas?: Record<string, Schema>;
  operations: Record<string, OperationDoc>;
  /** Parameters every operation has under a mount (Azure's `api-version` under `/speechtotext`). */
  mountParameters?: (mount: string) => ParameterDoc[];
}

export interface OpenApiOptions {
  groups: readonly RouteGroup[];
  version: string;
  /** Whether the service asks for credentials (EARSHOT_AUTH=key). */
  auth: boolean;
}

export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

/** A JSON response body. */
export const jsonBody = (description: string, schema: Schema): ResponseDoc => ({ description, content: { 'application/json': schema } });

const httpMethod = (m: Method) => (m === 'del' ? 'delete' : m);

/** `/instances/:instance` → `/instances/{instance}`. */
const templated = (pattern: string) => pattern.replace(/:([A-Za-z]\w*)/g, '{$1}');

const pathParameters = (path: string) =>
  [...path.matchAll(/\{([^}]+)\}/g)].map(([, name]) => ({ name: name!, in: 'path', required: true, schema: { type: 'string' } }));

/** The paths one route is documented at under one mount. */
function documentedPaths(route: Route, mount: string, op: OperationDoc): string[] {
  const paths = typeof op.paths === 'function' ? op.paths(mount) : (op.paths ?? [templated(route.pattern)]);
  return paths.map((p) => `${templated(mount)}${p}`);
}

/** The operation a route group documents for `route`, or an error naming what is missing. */
function operationOf(group: RouteGroup, route: Route): OperationDoc {
  const op = group.api?.operations[route.name];
  if (!op) throw new Error(`OpenAPI: route ${route.name} (${route.pattern}) has no OperationDoc in its group's api`);
  return op;
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '');

/**
 * The OpenAPI 3.1 document of the routes the server serves, generated from the same route
 * groups (so it cannot drift from them): every route under every mount, with the dialect's
 * request and response schemas and its error shape on every 4xx and 5xx.
 */
export function openApiDocument({ groups, version, auth }: OpenApiOptions): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const schemas: Record<string, Schema> = {};
  const responses: Record<string, unknown> = {};
  const tags = new Map<string, string>();
  const ids = new Set<string>();
  for (const group of groups) {
    if (!group.api) throw new Error(`OpenAPI: the route group of ${group.routes[0]?.name ?? group.prefix} has no api`);
    const api = group.api;
    tags.set(api.tag, api.tag);
    Object.assign(schemas, api.schemas, { [api.error.name]: api.error.schema });
    responses[api.error.name] = { description: `An error, in ${api.tag}'s shape`, content: { 'application/json': { schema: ref(api.error.name) } } };
    for (const mount of group.mounts ?? ['']) {
      for (const route of group.routes) {
        const op = operationOf(group, route);
        for (const path of documentedPaths(route, mount, op)) {
          const method = httpMethod(route.method);
          let id = slug(`${route.name}${mount ? `_${mount}` : ''}${op.paths ? `_${path.split('/').at(-1)}` : ''}`);
          while (ids.has(id)) id += '_';
          ids.add(id);
          const parameters = [
            ...pathParameters(path),
            ...(api.mountParameters?.(mount) ?? []).map((p) => ({ in: 'query', ...p })),
            ...(op.parameters ?? []).map((p) => ({ in: 'query', ...p })),
          ];
          paths[path] ??= {};
          paths[path][method] = {
            operationId: id,
            tags: [api.tag],
            summary: route.name,
            description: route.doc,
            ...(parameters.length ? { parameters } : {}),
            ...(op.body
              ? {
                  requestBody: {
                    required: op.bodyRequired ?? true,
                    content: Object.fromEntries(Object.entries(op.body).map(([type, schema]) => [type, { schema }])),
                  },
                }
              : {}),
            responses: {
              ...Object.fromEntries(
                Object.entries(op.responses).map(([status, r]) => [
                  status,
                  {
                    description: r.description,
                    ...(r.headers
                      ? { headers: Object.fromEntries(Object.entries(r.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }])) }
                      : {}),
                    ...(r.content ? { content: Object.fromEntries(Object.entries(r.content).map(([type, schema]) => [type, { schema }])) } : {}),
                  },
                ]),
              ),
              '4XX': { $ref: `#/components/responses/${api.error.name}` },
              '5XX': { $ref: `#/components/responses/${api.error.name}` },
            },
            ...(auth && route.auth !== false ? {} : { security: [] }),
          };
        }
      }
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'earshot',
      version,
      description:
        "An on-device speech-to-text appliance: IBM Watson Speech to Text's asynchronous API, Azure Speech batch and fast transcription with web hooks, OpenAI's audio API, and the service's own operations. Paths of Azure's groups are matched case-insensitively.",
      license: { name: 'MIT', identifier: 'MIT' },
    },
    tags: [...tags.keys()].map((name) => ({ name })),
    paths,
    components: {
      schemas,
      responses,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer KEY' },
        basic: { type: 'http', scheme: 'basic', description: "user `apikey`, password KEY (IBM's SDKs)" },
        subscriptionKey: { type: 'apiKey', in: 'header', name: 'Ocp-Apim-Subscription-Key', description: "Azure's header" },
      },
    },
    ...(auth ? { security: [{ bearer: [] }, { basic: [] }, { subscriptionKey: [] }] } : {}),
  };
}
