/**
 * OpenAI's audio API: `POST /v1/audio/transcriptions` and `/v1/audio/translations`,
 * synchronous. The `file` part is streamed to the spool as it arrives; the job goes
 * through `JobService.submit` like every upload, runs before queued batch jobs
 * (interactive), is answered in the asked-for format once finished, and deleted then.
 */
import { openAiApi } from './openapi.js';
import type { ModelAbilities } from '../dialect.js';
import { declaresAudio, parseAudioMediaType, type AudioFormat } from '../engine/media-type.js';
import { type AppError, toAppError } from '../errors.js';
import { type MultipartProblem, receiveMultipart } from '../http/multipart.js';
import type { Reply, Route, RouteGroup } from '../http/server.js';
import type { JobRequest, JobService } from '../jobs/job-service.js';
import { transcriptOnce } from '../jobs/synchronous.js';
import { invalidParam, OpenAiError, openAiError } from './errors.js';
import { type AudioRequest, audioRequest, checkField, type Task, taskFields } from './params.js';
import { transcriptEvents, transcriptReply } from './views.js';

export interface OpenAiRoutesOptions {
  service: JobService;
  /** What the loaded whisper model can do (throws ERR_NOT_READY while loading). */
  model: () => ModelAbilities;
  /** The service's upload limit (EARSHOT_MAX_UPLOAD_BYTES), for the whole form. */
  maxUploadBytes: number;
}

/** Fields are short (a prompt is at most a few hundred tokens); larger ones are refused, not kept in memory. */
const maxFieldBytes = 64 * 1024;

/** The backstop when the answer never happens (a crash mid-request): the sweep removes the job then. */
const resultsTtlMs = 10 * 60_000;

function formProblem(kind: MultipartProblem, message: string, part?: string): Error {
  if (kind === 'not-multipart') return new OpenAiError('ERR_UNSUPPORTED_MEDIA_TYPE', message, null);
  return invalidParam(part ?? null, message);
}

/**
 * The job a request asks for. Word timings whenever they shape the answer (words, cues);
 * a translation is whisper's translate task, but an English-only model has nothing to
 * translate from (and whisper.cpp refuses the task): its speech is English already, so it
 * transcribes.
 */
function jobRequest(request: AudioRequest, format: AudioFormat, contentType: string, served: ModelAbilities): JobRequest {
  const words = request.words || request.responseFormat === 'srt' || request.responseFormat === 'vtt';
  return {
    contentType,
    format,
    model: request.model,
    options: {
      language: request.language ?? 'auto',
      ...(request.task === 'translate' && served.multilingual ? { translate: true } : {}),
      ...(request.prompt ? { initialPrompt: request.prompt } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      words,
    },
    output: { timestamps: true, wordConfidence: false, profanity: 'none' },
    resultsTtlMs,
    synchronous: true,
    interactive: true,
    ...(request.stream ? { streamed: true } : {}),
  };
}

function audioRoute(task: Task, o: OpenAiRoutesOptions): Route {
  const transcribe = task === 'transcribe';
  return {
    method: 'post',
    pattern: transcribe ? '/v1/audio/transcriptions' : '/v1/audio/translations',
    name: transcribe ? 'openai.audio.transcriptions' : 'openai.audio.translations',
    doc: transcribe
      ? 'multipart/form-data: `file`, `model` (any name: the loaded model), `language`, `prompt`, `temperature`, `response_format` json | text | srt | vtt | verbose_json, `timestamp_granularities[]` word | segment, `stream` (server-sent `transcript.text.delta` per segment as whisper produces it, then `transcript.text.done`); 200 once transcribed (streamed: once the first segment is), the job deleted then'
      : 'the same form without `language` and `stream`: the speech in English (whisper translates; an English-only model transcribes English speech)',
    handler: async (req): Promise<Reply> => {
      const served = o.model();
      if (req.body.declaredLength !== undefined && req.body.declaredLength > o.maxUploadBytes) {
        throw new OpenAiError('ERR_PAYLOAD_TOO_LARGE', `The request body exceeds the maximum of ${o.maxUploadBytes} bytes`, 'file');
      }
      let request: AudioRequest | undefined;
      let format: AudioFormat = { kind: 'auto', mediaType: 'application/octet-stream' };
      let contentType = 'application/octet-stream';
      const job = await o.service.submit(
        () => jobRequest(request!, format, contentType, served),
        async (path, created) => {
          const form = await receiveMultipart(req, path, {
            created,
            fileField: 'file',
            fields: taskFields[task],
            repeatable: ['timestamp_granularities[]'],
            unknownParts: 'ignore',
            maxBytes: o.maxUploadBytes,
            maxFieldBytes,
            maxParts: 32,
            // The SDKs send the file's guessed type (or none): the decoder finds out what it is when it is no audio type.
            checkFile: ({ mimeType }) => {
              contentType = mimeType;
              if (declaresAudio(mimeType)) format = parseAudioMediaType(mimeType);
            },
            onField: (name, value) => checkField(name, value, served),
            problem: formProblem,
          });
          request = audioRequest(task, form.fields);
          return { bytes: form.file.bytes };
        },
        req.body.declaredLength,
      );
      if (request!.stream) {
        return {
          status: 200,
          headers: { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' },
          body: transcriptEvents(
            o.service.segments(job.id, req.signal),
            () => transcriptOnce(o.service, job.id, req.signal),
            (err) => JSON.parse(openAiError(toAppError(err)).body as string),
          ),
        };
      }
      const transcript = await transcriptOnce(o.service, job.id, req.signal);
      const reply = transcriptReply(transcript, request!);
      return { status: 200, headers: { 'Content-Type': reply.contentType }, body: reply.body };
    },
  };
}

/** OpenAI's audio routes; everything under `/v1/audio` answers in OpenAI's error shape. */
export function openAiRoutes(o: OpenAiRoutesOptions): RouteGroup {
  return {
    prefix: '/v1/audio',
    api: openAiApi,
    renderError: (error: AppError) => openAiError(error),
    routes: [audioRoute('transcribe', o), audioRoute('translate', o)],
  };
}
