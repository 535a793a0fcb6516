import type { Config } from './config.js';
import type { Engine } from './engine/engine.js';
import { loadAddon } from './engine/native.js';
import { WhisperEngine } from './engine/whisper-engine.js';
import type { Logger } from './log.js';

/**
 * The composition root: builds every part from the config, starts them in order and
 * stops them in reverse. Constructors do nothing; start() does the work.
 */
export class App {
  readonly engine: Engine;
  private readonly notify: (state: string) => boolean;

  constructor(
    readonly config: Config,
    private readonly log: Logger,
  ) {
    const addon = loadAddon();
    this.notify = (state) => addon.notify(state);
    this.engine = new WhisperEngine(
      {
        modelPath: config.modelPath,
        threads: config.threads,
        nice: config.inferenceNice,
        flashAttn: config.flashAttn,
        windowSeconds: config.windowSeconds,
      },
      log.child('engine'),
      addon,
    );
  }

  async start(): Promise<void> {
    await this.engine.load();
    this.notify('READY=1');
    this.log.info('ready', { model: this.config.model });
  }

  async stop(): Promise<void> {
    this.notify('STOPPING=1');
    this.engine.close();
    this.log.info('stopped');
  }
}
