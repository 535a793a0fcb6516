import path from 'node:path';

import type { Dialect, DialectContext } from '../dialect.js';
import { packageVersion } from '../paths.js';
import { WyomingServer } from './server.js';
import { servedLanguages } from './session.js';

/** The Wyoming dialect: the composition root's view of it, plus the port it listens on. */
export interface WyomingDialect extends Dialect {
  /** The bound port once started (EARSHOT_WYOMING_PORT=0 binds any free one); undefined when off or not started. */
  readonly port: number | undefined;
}

const whisperCpp = { name: 'whisper.cpp', url: 'https://github.com/ggml-org/whisper.cpp' };

/** A model as its name reads: `ggml-tiny.en-q5_1.bin` or a path to it is `tiny.en-q5_1`. */
export const modelName = (model: string): string =>
  path
    .basename(model)
    .replace(/^ggml-/, '')
    .replace(/\.bin$/, '');

/**
 * Wyoming (Home Assistant's protocol for voice services) on its own TCP port
 * (`EARSHOT_WYOMING_PORT`, default 10300, `off`): speech to text with the device's model,
 * through the same queue as every other dialect's jobs. No HTTP routes.
 */
export function wyomingDialect(ctx: DialectContext): WyomingDialect {
  const { config } = ctx;
  const log = ctx.log.child('wyoming');
  const version = packageVersion();
  const model = modelName(config.model);
  let server: WyomingServer | undefined;

  const info = (): Record<string, unknown> => {
    const served = ctx.model();
    return {
      asr: [
        {
          name: 'earshot',
          attribution: whisperCpp,
          installed: true,
          description: 'On-device speech to text (whisper.cpp), sharing the queue of the IBM and Azure APIs',
          version,
          models: [
            {
              name: model,
              attribution: whisperCpp,
              installed: true,
              description: served.multilingual ? `whisper ${model} (multilingual)` : `whisper ${model} (English only)`,
              version: null,
              languages: [...servedLanguages(served)],
            },
          ],
          // A `transcript-chunk` per segment as whisper produces it (see session.ts).
          supports_transcript_streaming: true,
        },
      ],
      tts: [],
      handle: [],
      intent: [],
      wake: [],
    };
  };

  return {
    name: 'wyoming',
    title: 'Wyoming (Home Assistant), TCP port 10300',
    routes: [],
    get port() {
      return server?.port;
    },
    async start() {
      if (config.wyomingPort === undefined) return;
      server = new WyomingServer({
        host: config.host,
        port: config.wyomingPort,
        cidrs: config.wyomingCidrs,
        log,
        session: {
          jobs: ctx.jobs,
          model: ctx.model,
          info,
          maxAudioBytes: config.maxUploadBytes,
          maxAudioSeconds: config.maxAudioSeconds,
          log,
        },
      });
      const port = await server.listen();
      log.info('wyoming listening', { host: config.host, port, peers: config.wyomingCidrs.join(',') });
    },
    async stop() {
      await server?.close();
    },
  };
}
