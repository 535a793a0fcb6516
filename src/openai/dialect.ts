import type { Dialect, DialectContext } from '../dialect.js';
import { openAiModelListing } from './models.js';
import { openAiRoutes } from './routes.js';

/**
 * OpenAI's audio API (`/v1/audio/transcriptions`, `/v1/audio/translations`) for the
 * OpenAI SDKs, Open WebUI and every tool that speaks it; its models appear in the model
 * list IBM's `GET /v1/models` serves (one body for both SDKs).
 */
export function openAiDialect(ctx: DialectContext): Dialect {
  return {
    name: 'openai',
    title: "OpenAI's audio API (`/v1/audio`; the openai SDKs and Open WebUI work against it)",
    modelListing: openAiModelListing(ctx.config.modelPath),
    routes: [openAiRoutes({ service: ctx.jobs, model: ctx.model, maxUploadBytes: ctx.config.maxUploadBytes })],
  };
}
