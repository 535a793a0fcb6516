import { AppError } from '../errors.js';
import { baseUrl, json, originUrl, type Reply, type Request, type Route } from '../http/server.js';
import type { ModelAbilities } from '../dialect.js';
import { invalid } from './errors.js';
import { type ContentUrls, fileView, transcriptionFiles, v2ResultFiles, v21ResultUrls } from './files.js';
import { servedLocales } from './locales.js';
import { paged, paging, readJson } from './requests.js';
import { parseTranscriptionCreate, parseTranscriptionCreateV2, parseTranscriptionPatch } from './transcription-input.js';
import type { AzureTranscriptions } from './transcription-service.js';
import type { TranscriptionEntity } from './transcriptions.js';
import { type ApiForm, apiForm, isDated, requireVersion } from './versions.js';
import { requestedProperties, transcriptionView, v21TranscriptionView } from './views.js';
import type { JobService } from '../jobs/job-service.js';
import { isTextFormat, renderText } from '../jobs/subtitles.js';

export interface TranscriptionRoutesOptions {
  transcriptions: AzureTranscriptions;
  service: JobService;
  contentUrls: ContentUrls;
  model: () => ModelAbilities;
  now: () => number;
}

/** The longest life of a content URL (a longer validity asked for is capped to it). */
export const maxSasSeconds = 7 * 24 * 3600;
const defaultSasSeconds = 12 * 3600;

/**
 * How long the content URLs of a files list live: v3.x's `sasValidityInSeconds`, the dated
 * versions' `sasLifetimeMinutes`; 12 h by default, never more than a week (a signed URL is a
 * credential that cannot be revoked).
 */
function sasSeconds(req: Request, form: ApiForm): number {
  const name = isDated(form.version) ? 'sasLifetimeMinutes' : 'sasValidityInSeconds';
  const value = req.query.get(name);
  if (value === null || value === '') return defaultSasSeconds;
  if (!/^\d{1,9}$/.test(value)) throw invalid('InvalidSasValidityDuration', `Expected a whole number for ${name} but received "${value}"`);
  return Math.min(Number(value) * (name === 'sasLifetimeMinutes' ? 60 : 1), maxSasSeconds);
}

const created = (view: { self: string }): Reply => json(201, view, { Location: view.self });

/** Azure's batch transcriptions, in every version's form (the routes are served under each version's mount). */
export function transcriptionRoutes(o: TranscriptionRoutesOptions): Route[] {
  // A transcription's results may be on another device of a fleet: read before the files are made.
  const files = async (entity: TranscriptionEntity, form: ApiForm) =>
    transcriptionFiles(entity, requestedProperties(entity), await o.transcriptions.results(entity), form);

  const create = async (req: Request, form: ApiForm): Promise<Reply> => {
    const input = parseTranscriptionCreate(await readJson(req, ['application/json']), form.version, o.model());
    return created(transcriptionView(await o.transcriptions.create(input, form.version), form));
  };

  return [
    {
      method: 'post',
      pattern: '/transcriptions',
      name: 'azure.transcriptions.create',
      doc: 'v3.x: a batch transcription of `contentUrls` (one job each, fetched by the device under the callback allow-list): 201, then `NotStarted` → `Running` → `Succeeded`/`Failed`',
      handler: (req) => {
        const form = apiForm(req);
        requireVersion(form, 'path', req);
        return create(req, form);
      },
    },
    {
      method: 'post',
      pattern: '/transcriptions:submit',
      name: 'azure.transcriptions.submit',
      doc: "2024-11-15 / 2025-10-15: the same as v3.x's create",
      shown: '/transcriptions:submit?api-version=…',
      shownUnder: '/speechtotext',
      handler: (req) => {
        const form = apiForm(req);
        requireVersion(form, 'dated', req);
        return create(req, form);
      },
    },
    {
      method: 'get',
      pattern: '/transcriptions/locales',
      name: 'azure.transcriptions.locales',
      doc: "the locales the device's model serves (v3.x: a list; dated versions: `{Submit, Transcribe}`)",
      handler: (req) => {
        const form = apiForm(req);
        const locales = servedLocales(o.model());
        return json(200, isDated(form.version) ? { Submit: locales, Transcribe: locales } : locales);
      },
    },
    {
      method: 'get',
      pattern: '/transcriptions',
      name: 'azure.transcriptions.list',
      doc: 'batch transcriptions and the jobs of other dialects, newest first, paged (`skip`, `top`, `@nextLink`)',
      handler: async (req) => {
        const form = apiForm(req);
        const { skip, top } = paging(req);
        // One more than the page: whether there is a next one.
        return json(
          200,
          paged(req, await o.transcriptions.newest(skip + top + 1), (entity) => transcriptionView(entity, form)),
        );
      },
    },
    {
      method: 'get',
      pattern: '/transcriptions/:id',
      name: 'azure.transcriptions.get',
      doc: 'one transcription (`NotStarted`, `Running`, `Succeeded`, `Failed` with `properties.error`)',
      handler: async (req) => {
        const form = apiForm(req);
        return json(200, transcriptionView(await o.transcriptions.entity(req.params.id!), form));
      },
    },
    {
      method: 'patch',
      pattern: '/transcriptions/:id',
      name: 'azure.transcriptions.update',
      doc: '`displayName`, `description`, `customProperties` of a batch transcription',
      handler: async (req) => {
        const form = apiForm(req);
        const patch = parseTranscriptionPatch(await readJson(req, ['application/json', 'application/merge-patch+json']));
        return json(200, transcriptionView(await o.transcriptions.update(req.params.id!, patch), form));
      },
    },
    {
      method: 'del',
      pattern: '/transcriptions/:id',
      name: 'azure.transcriptions.delete',
      doc: '204, also when it did not exist; refused while one of its recordings is being transcribed',
      handler: async (req) => {
        apiForm(req);
        await o.transcriptions.delete(req.params.id!);
        return { status: 204 };
      },
    },
    {
      method: 'get',
      pattern: '/transcriptions/:id/files',
      name: 'azure.transcriptions.files.list',
      doc: 'once finished: one result (`Transcription`, `contenturl_<i>.json`) per recording that succeeded and the `TranscriptionReport`, with signed `contentUrl`s (12 h unless `sasValidityInSeconds` / `sasLifetimeMinutes` says otherwise, at most 7 days)',
      handler: async (req) => {
        const form = apiForm(req);
        const entity = await o.transcriptions.entity(req.params.id!);
        const until = o.now() + sasSeconds(req, form) * 1000;
        return json(
          200,
          paged(req, await files(entity, form), (file) => fileView(entity.id, file, form, o.contentUrls.url(form, entity.id, file.id, until))),
        );
      },
    },
    {
      method: 'get',
      pattern: '/transcriptions/:id/files/:fileId',
      name: 'azure.transcriptions.files.get',
      doc: 'one file',
      handler: async (req) => {
        const form = apiForm(req);
        const entity = await o.transcriptions.entity(req.params.id!);
        const file = (await files(entity, form)).find((f) => f.id === req.params.fileId);
        if (!file) throw new AppError('ERR_NOT_FOUND', `The file '${req.params.fileId}' of transcription '${entity.id}' was not found`);
        return json(200, fileView(entity.id, file, form, o.contentUrls.url(form, entity.id, file.id, o.now() + sasSeconds(req, form) * 1000)));
      },
    },
    {
      method: 'get',
      pattern: '/transcriptions/:id/files/:fileId/content',
      name: 'azure.transcriptions.files.content',
      doc: "the file's JSON; the signed URL is the credential (no key). earshot extension: `&format=srt`, `vtt` or `txt` on a transcription result's URL gives the recording's subtitles (SubRip, WebVTT) or plain text instead",
      // Like Azure's SAS URLs: the signature in the URL is the credential.
      auth: false,
      handler: async (req) => {
        o.contentUrls.verify(req.params.id!, req.params.fileId!, req.query);
        // The form only shapes the content (the dated versions' fields); no api-version is needed to read it.
        const form = contentForm(req);
        const entity = await o.transcriptions.entity(req.params.id!);
        const results = await o.transcriptions.results(entity);
        const file =
          transcriptionFiles(entity, requestedProperties(entity), results, form).find((f) => f.id === req.params.fileId) ??
          v2ResultFiles(entity, requestedProperties(entity), results).find((f) => f.id === req.params.fileId);
        if (!file) throw new AppError('ERR_NOT_FOUND', `The file '${req.params.fileId}' of transcription '${req.params.id}' was not found`);
        // Not covered by the signature: it chooses a rendering of the same file, not another file.
        const format = req.query.get('format') ?? 'json';
        if (format === 'json') return { status: 200, headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: JSON.stringify(file.content) };
        if (!isTextFormat(format)) throw invalid('InvalidParameterValue', `Expected json, srt, vtt or txt for format but received ${JSON.stringify(format)}`);
        if (!file.transcript) throw invalid('InvalidParameterValue', `format=${format} is for a transcription result: the file '${file.id}' has no transcript`);
        const text = renderText(file.transcript, format);
        return { status: 200, headers: { 'Content-Type': text.contentType }, body: text.body };
      },
    },
  ];
}

/** The form of a content URL: its own, or v3.1's for a link on the bare prefix without `api-version`. */
function contentForm(req: Request): ApiForm {
  if (req.query.has('api-version') || req.mount.toLowerCase() !== '/speechtotext') return apiForm(req);
  return { origin: originUrl(req), version: 'v3.1' };
}

/**
 * v2.0/v2.1 batch transcription (Microsoft's v2 batch samples): create with `recordingsUrl`
 * (202 with `Location`), list (an array), get (v2.1's entity, `resultsUrls.channel_0` in v2's
 * result format once done), delete. Served under the v2 mounts.
 */
export function v2TranscriptionRoutes(o: TranscriptionRoutesOptions): Route[] {
  const view = async (req: Request, entity: TranscriptionEntity) => {
    const { v3, v2 } = v21ResultUrls(entity, o.contentUrls, originUrl(req), await o.transcriptions.results(entity), o.now());
    return v21TranscriptionView(entity, v3, v2);
  };
  return [
    {
      method: 'post',
      pattern: '/transcriptions',
      name: 'azure.v2.transcriptions.create',
      doc: 'a batch transcription of `recordingsUrl` (or `recordingsUrls`), `locale`, `name`, PascalCase `properties`: 202 with `Location`',
      handler: async (req) => {
        const input = parseTranscriptionCreateV2(await readJson(req, ['application/json']), o.model());
        const entity = await o.transcriptions.create(input, 'v3.1');
        const location = `${baseUrl(req)}/transcriptions/${entity.id}`;
        return { status: 202, headers: { Location: location, 'Operation-Location': location } };
      },
    },
    {
      method: 'get',
      pattern: '/transcriptions',
      name: 'azure.v2.transcriptions.list',
      doc: "the newest 100 transcriptions, in v2.1's shape",
      handler: async (req) => {
        const views = [];
        for (const entity of await o.transcriptions.newest(100)) views.push(await view(req, entity));
        return json(200, views);
      },
    },
    {
      method: 'get',
      pattern: '/transcriptions/:id',
      name: 'azure.v2.transcriptions.get',
      doc: "one transcription; once done, `resultsUrls.channel_0` serves v2's result format (`AudioFileResults`)",
      handler: async (req) => json(200, await view(req, await o.transcriptions.entity(req.params.id!))),
    },
    {
      method: 'del',
      pattern: '/transcriptions/:id',
      name: 'azure.v2.transcriptions.delete',
      doc: '204',
      handler: async (req) => {
        await o.transcriptions.delete(req.params.id!);
        return { status: 204 };
      },
    },
  ];
}
