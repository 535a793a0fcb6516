import { ibmApi } from './openapi.js';
import type { ModelListing } from '../dialect.js';
import { SNIFF_BYTES } from '../engine/audio-sniff.js';
import { declaresAudio, detectAudioFormat, parseAudioMediaType, type AudioFormat } from '../engine/media-type.js';
import { AppError, invalidArgument } from '../errors.js';
import { baseUrl, json, requiredParam, type Request, type RouteGroup } from '../http/server.js';
import type { JobService, ReceivedAudio } from '../jobs/job-service.js';
import { isTextFormat, renderText, type TextFormat } from '../jobs/subtitles.js';
import type { CallbackRegistry } from './callbacks.js';
import { ibmError } from './errors.js';
import { availableIbmModels, type ServedLanguages } from './models.js';
import { parseRecognitionQuery } from './params.js';
import { jobDetail, jobSummary } from './views.js';

export interface IbmRoutesOptions {
  service: JobService;
  registry: CallbackRegistry;
  /** What the loaded whisper model can do (for `model`/`language` checks). */
  model: () => ServedLanguages;
  /** IBM's limits: at least 100 bytes, at most 1 GB. */
  minAudioBytes: number;
  maxAudioBytes: number;
  /** The other dialects' views of the models, served by the same two routes. */
  modelListings: () => ModelListing[];
}

/** IBM answers JSON only; a client that accepts nothing of it gets 406. */
function checkAccept(req: Request): void {
  const accept = req.headers.accept;
  if (!accept) return;
  const ok = accept.split(',').some((part) => /^\s*(application\/json|application\/\*|\*\/\*)\s*(;|$)/i.test(part));
  if (!ok) {
    throw new AppError('ERR_NOT_ACCEPTABLE', `Unsupported Accept header '${accept}': only application/json is supported.`);
  }
}

/** The media types a recognition's results can be asked for by, besides JSON (an earshot extension). */
const textFormatsByType: Record<string, TextFormat> = {
  'text/vtt': 'vtt',
  'application/x-subrip': 'srt',
  'text/srt': 'srt',
  'text/plain': 'txt',
};

/**
 * How `GET /v1/recognitions/{id}` answers: `format=json|srt|vtt|txt` if given, else the
 * first type in Accept that earshot has (JSON for `application/json`, `*` types or no
 * Accept: what IBM's SDKs get is unchanged); 406 when Accept names none.
 */
function recognitionFormat(req: Request): TextFormat | 'json' {
  const asked = req.query.get('format');
  if (asked !== null) {
    if (asked === 'json' || isTextFormat(asked)) return asked;
    throw invalidArgument('format', 'json, srt, vtt or txt', asked);
  }
  const accept = req.headers.accept;
  if (!accept) return 'json';
  for (const part of accept.split(',')) {
    const type = part.split(';')[0]!.trim().toLowerCase();
    if (type === 'application/json' || type === 'application/*' || type === '*/*') return 'json';
    const format = textFormatsByType[type];
    if (format) return format;
  }
  throw new AppError(
    'ERR_NOT_ACCEPTABLE',
    `Unsupported Accept header '${accept}': results are application/json, or text/vtt, application/x-subrip or text/plain (earshot)`,
  );
}

/**
 * Spools the upload. `detectFrom`: the Content-Type when it is not an audio type; the
 * format then comes from the first bytes, and the job gets a warning that says so.
 */
async function receiveAudio(req: Request, path: string, created: () => void, o: IbmRoutesOptions, detectFrom: string | undefined): Promise<ReceivedAudio> {
  const limits = { maxBytes: o.maxAudioBytes, minBytes: o.minAudioBytes, created };
  if (detectFrom === undefined) return req.body.toFile(path, limits);
  let detected: { format: AudioFormat; warning: string } | undefined;
  const check = (head: Buffer) => {
    detected = detectAudioFormat(detectFrom, head);
  };
  const { bytes } = await req.body.toFile(path, { ...limits, inspect: { bytes: SNIFF_BYTES, check } });
  return { bytes, format: detected!.format, warnings: [detected!.warning] };
}

/** IBM Watson Speech to Text's asynchronous HTTP interface under /v1. */
export function ibmRoutes(o: IbmRoutesOptions): RouteGroup {
  return {
    prefix: '/v1',
    api: ibmApi,
    renderError: (error) => ibmError(error),
    routes: [
      {
        method: 'post',
        pattern: '/v1/recognitions',
        name: 'ibm.recognitions.create',
        doc: "body = audio (`Content-Encoding: gzip` decompressed as it arrives; under a Content-Type that is not audio, e.g. the SDK's `application/json`, the format is detected from the data, with a warning); 201 once the audio is fsynced and the job committed. Query: `callback_url`, `events`, `user_token`, `results_ttl`, `model`, `language` (a whisper code or `auto`), `timestamps`, `word_confidence`, `max_alternatives`, `profanity_filter` (the other IBM parameters: see below)",
        handler: async (req) => {
          checkAccept(req);
          const request = parseRecognitionQuery(req.query, o.model());
          if (request.callbackUrl && !o.registry.get(request.callbackUrl)) {
            throw new AppError(
              'ERR_CALLBACK_NOT_REGISTERED',
              `callback_url '${request.callbackUrl}' is not registered; allow-list it with POST /v1/register_callback first`,
            );
          }
          const contentType = req.headers['content-type'];
          // Not an audio type at all (IBM's SDK sends application/json when its caller names
          // none): the first bytes decide, before anything is written.
          const detect = !declaresAudio(contentType);
          const format: AudioFormat = detect ? { kind: 'auto', mediaType: 'application/octet-stream' } : parseAudioMediaType(contentType);
          if (req.body.declaredLength !== undefined && req.body.declaredLength > o.maxAudioBytes) {
            throw new AppError('ERR_PAYLOAD_TOO_LARGE', `Audio exceeds the maximum of ${o.maxAudioBytes} bytes`);
          }
          const job = await o.service.submit(
            {
              contentType: contentType ?? 'application/octet-stream',
              format,
              model: request.model,
              options: request.options,
              output: request.output,
              ...(request.callbackUrl ? { callback: { url: request.callbackUrl, events: request.events } } : {}),
              ...(request.userToken !== undefined ? { userToken: request.userToken } : {}),
              resultsTtlMs: request.resultsTtlMs,
              warnings: request.warnings,
            },
            (path, created) => receiveAudio(req, path, created, o, detect ? contentType! : undefined),
            req.body.declaredLength,
            // Nobody waits on this device for it: in a fleet, any device may run it.
            { shareable: true },
          );
          const url = `${baseUrl(req)}/v1/recognitions/${job.id}`;
          return json(
            201,
            {
              created: new Date(job.created).toISOString(),
              id: job.id,
              url,
              status: job.status,
              ...(job.warnings.length ? { warnings: job.warnings } : {}),
            },
            { Location: url },
          );
        },
      },
      {
        method: 'get',
        pattern: '/v1/recognitions',
        name: 'ibm.recognitions.list',
        doc: 'the newest 100 jobs',
        handler: async (req) => {
          checkAccept(req);
          return json(200, { recognitions: (await o.service.newestEverywhere(100)).map(jobSummary) });
        },
      },
      {
        method: 'get',
        pattern: '/v1/recognitions/:id',
        name: 'ibm.recognitions.get',
        doc: "status; `results` once completed; `progress` while processing; `processing_times`. earshot extension: a completed job's subtitles or text with `Accept: text/vtt`, `application/x-subrip` or `text/plain`, or `?format=vtt|srt|txt` (409 before it completed)",
        handler: async (req) => {
          const format = recognitionFormat(req);
          const job = await o.service.lookup(req.params.id!);
          const result = await o.service.fetchResult(job.id);
          if (format === 'json') return json(200, jobDetail(job, result, o.service.progressOf(job.id)));
          if (job.status !== 'completed' || !result) {
            throw new AppError('ERR_RESULT_NOT_READY', `The job '${job.id}' is ${job.status}: its ${format} can be downloaded once it completed`);
          }
          const text = renderText(result, format);
          return { status: 200, headers: { 'Content-Type': text.contentType }, body: text.body };
        },
      },
      {
        method: 'del',
        pattern: '/v1/recognitions/:id',
        name: 'ibm.recognitions.delete',
        doc: '204; a job being processed cannot be deleted (400)',
        handler: async (req) => {
          await o.service.delete(req.params.id!);
          return { status: 204 };
        },
      },
      {
        method: 'post',
        pattern: '/v1/register_callback',
        name: 'ibm.callbacks.register',
        doc: 'allow-list a callback URL (kept in its normalized form, which the answer shows) after a challenge GET (201 created, 200 already created, 400 with the reason)',
        handler: async (req) => {
          const secret = req.query.get('user_secret') || undefined;
          const { created, url } = await o.registry.register(requiredParam(req, 'callback_url'), secret);
          return json(created ? 201 : 200, { status: created ? 'created' : 'already created', url });
        },
      },
      {
        method: 'post',
        pattern: '/v1/unregister_callback',
        name: 'ibm.callbacks.unregister',
        doc: 'remove it: pending callbacks to it become dead letters, no new ones are queued',
        handler: async (req) => {
          const url = requiredParam(req, 'callback_url');
          if (!(await o.registry.unregister(url))) {
            throw new AppError('ERR_NOT_FOUND', `The callback URL '${url}' is not registered`);
          }
          return { status: 200 };
        },
      },
      {
        method: 'get',
        pattern: '/v1/models',
        name: 'ibm.models.list',
        doc: 'the IBM model names this device serves (`models`); in the same body OpenAI\'s list of the models its routes accept (`object: "list"`, `data`)',
        handler: (req) => {
          const others = o.modelListings().map((listing) => listing.listMembers());
          return json(200, { ...Object.assign({}, ...others), models: availableIbmModels(o.model(), baseUrl(req)) });
        },
      },
      {
        method: 'get',
        pattern: '/v1/models/:model',
        name: 'ibm.models.get',
        doc: "one of them: IBM's model by an IBM name, OpenAI's model object by a name OpenAI's routes list (`whisper-1`, the loaded model's)",
        handler: (req) => {
          const name = req.params.model!;
          const found = availableIbmModels(o.model(), baseUrl(req)).find((x) => x.name === name);
          if (found) return json(200, found);
          for (const listing of o.modelListings()) {
            const other = listing.model(name);
            if (other !== undefined) return json(200, other);
          }
          throw new AppError('ERR_NOT_FOUND', `Model ${name} not found`);
        },
      },
    ],
  };
}
