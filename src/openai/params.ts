/**
 * The form fields of OpenAI's `POST /v1/audio/transcriptions` and `/translations`, checked
 * one by one as they arrive (a bad option sent before the file refuses the upload before
 * the file is read), then as a whole.
 */
import type { ModelAbilities } from '../dialect.js';
import { invalidParam } from './errors.js';

export type Task = 'transcribe' | 'translate';

export const responseFormats = ['json', 'text', 'srt', 'vtt', 'verbose_json'] as const;
export type ResponseFormat = (typeof responseFormats)[number];

const granularities = ['word', 'segment'] as const;

/** The fields each route takes besides `file`; others (OpenAI's newer options) are ignored. */
export const taskFields: Record<Task, readonly string[]> = {
  transcribe: ['model', 'language', 'prompt', 'temperature', 'response_format', 'timestamp_granularities[]', 'stream'],
  translate: ['model', 'prompt', 'temperature', 'response_format'],
};

/** What one request asks for, checked. */
export interface AudioRequest {
  task: Task;
  /** As given: any name maps to the loaded model. */
  model: string;
  /** A whisper language code; undefined: detect it. */
  language: string | undefined;
  /** whisper's initial prompt. */
  prompt: string | undefined;
  temperature: number | undefined;
  responseFormat: ResponseFormat;
  /** `timestamp_granularities[]` has `word` (verbose_json gets `words`). */
  words: boolean;
  /** Server-sent events instead of one body. */
  stream: boolean;
}

/** Checks one field; throws a 400 naming it. */
export function checkField(name: string, value: string, served: ModelAbilities): void {
  switch (name) {
    case 'language':
      if (!/^[a-z]{2,3}$/.test(value))
        throw invalidParam(name, `Expected an ISO-639-1 language code (like "en") for language but received ${JSON.stringify(value)}`);
      if (!served.languages.includes(value) || (!served.multilingual && value !== 'en')) {
        throw invalidParam(
          name,
          served.multilingual
            ? `The language ${JSON.stringify(value)} is not one the whisper model on this device knows`
            : `The language ${JSON.stringify(value)} is not available: this device runs an English-only whisper model`,
        );
      }
      return;
    case 'temperature': {
      const t = Number(value);
      if (value.trim() === '' || !Number.isFinite(t) || t < 0 || t > 1) {
        throw invalidParam(name, `Expected a number between 0 and 1 for temperature but received ${JSON.stringify(value)}`);
      }
      return;
    }
    case 'response_format':
      if (!(responseFormats as readonly string[]).includes(value)) {
        throw invalidParam(name, `Expected one of ${responseFormats.join(', ')} for response_format but received ${JSON.stringify(value)}`);
      }
      return;
    case 'timestamp_granularities[]':
      if (!(granularities as readonly string[]).includes(value)) {
        throw invalidParam(name, `Expected word or segment for timestamp_granularities[] but received ${JSON.stringify(value)}`);
      }
      return;
    case 'stream':
      if (value !== 'true' && value !== 'false') throw invalidParam(name, `Expected true or false for stream but received ${JSON.stringify(value)}`);
      return;
  }
}

/** The request the whole form makes (every field already passed `checkField`). */
export function audioRequest(task: Task, fields: ReadonlyMap<string, readonly string[]>): AudioRequest {
  const one = (name: string) => fields.get(name)?.[0];
  const model = one('model')?.trim();
  if (!model) throw invalidParam('model', "The form has no model: send a model name (any name, like 'whisper-1', selects the model on this device)");
  const language = one('language') || undefined;
  const temperature = one('temperature');
  return {
    task,
    model,
    language,
    prompt: one('prompt') || undefined,
    temperature: temperature === undefined ? undefined : Number(temperature),
    responseFormat: (one('response_format') as ResponseFormat | undefined) ?? 'json',
    words: (fields.get('timestamp_granularities[]') ?? []).includes('word'),
    stream: one('stream') === 'true',
  };
}
