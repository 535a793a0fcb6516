import { closeSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';

import type { Config } from '../config.js';
import { AppError, invalidArgument, toAppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Engine, EngineAudio, ModelInfo, Segment, TranscribeControl, TranscribeOptions, Transcript } from './engine.js';
import { removeNonSpeech } from './non-speech.js';
import { ModelCheckCache, stillSame } from './model-check-cache.js';
import {
  loadAddon,
  type NativeAddon,
  type NativeModel,
  type NativeModelCheck,
  type NativeModelInfo,
  type NativeSegment,
  type NativeTranscribeOptions,
} from './native.js';

/**
 * The addon's segments as the transcript has them: without non-speech markers (a segment
 * with nothing else is dropped), text trimmed, a confidence added. Per segment, so that
 * streamed segments and the final ones are the same.
 */
export function finishSegments(native: NativeSegment[]): Segment[] {
  return removeNonSpeech(native).map((s) => {
    const plogs = s.tokens.map((t) => t.plog);
    const confidence = plogs.length ? Math.exp(plogs.reduce((a, b) => a + b, 0) / plogs.length) : 0;
    return { ...s, text: s.text.trim(), confidence };
  });
}

export interface WhisperEngineConfig {
  /** Path of a ggml whisper model file. */
  modelPath: string;
  /** Inference threads; defaults for every transcription. */
  threads: number;
  /** nice increment of the inference threads relative to the service (0..19). */
  nice: number;
  flashAttn: boolean;
  /** Silero VAD model (ggml) for `vad: true`; undefined when none is installed. */
  vadModelPath?: string;
  /** Where models that passed the model check are remembered (ModelCheckCache); none: every load checks. */
  modelCheckCache?: string;
  windowSeconds: number;
  /** Defaults of every transcription, below what a request asks for. */
  defaults?: TranscribeOptions;
}

/** The engine's settings from the service's. */
export function engineConfig(config: Config): WhisperEngineConfig {
  return {
    modelPath: config.modelPath,
    modelCheckCache: path.join(config.stateDir, 'model-check.json'),
    threads: config.threads,
    nice: config.inferenceNice,
    flashAttn: config.flashAttn,
    windowSeconds: config.windowSeconds,
    ...(config.vadModelPath ? { vadModelPath: config.vadModelPath } : {}),
    defaults: {
      ...(config.temperatureFallback ? {} : { temperatureIncrement: 0 }),
      ...(config.vadModelPath ? { vad: true } : {}),
      ...(config.trimEncoder ? { trimEncoder: true } : {}),
    },
  };
}

const booleanOptions = [
  'translate',
  'conditionOnPreviousText',
  'tokenTimestamps',
  'words',
  'splitOnWord',
  'suppressBlank',
  'suppressNonSpeech',
  'vad',
  'trimEncoder',
] as const;

function checkNumber(options: TranscribeOptions, name: keyof TranscribeOptions, min: number, max: number, integer: boolean): void {
  const value = options[name];
  if (value === undefined) return;
  const ok = typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max;
  if (!ok || (integer && !Number.isInteger(value))) {
    throw invalidArgument(name, `${integer ? 'an integer' : 'a number'} between ${min} and ${max}`, value);
  }
}

/**
 * The Engine over earshot's native addon: one whisper.cpp model, loaded once, one
 * transcription at a time (the addon refuses a second one with ERR_MODEL_BUSY).
 */
export class WhisperEngine implements Engine {
  private native: NativeModel | null = null;
  private info: ModelInfo | null = null;
  private languageCodes: Set<string> | null = null;
  private loadedAddon: NativeAddon | null = null;

  /** Does no work: the addon is loaded (dlopen) by load(), inside the service's start. */
  constructor(
    private readonly config: WhisperEngineConfig,
    private readonly log: Logger,
    private readonly loadNative: () => NativeAddon = loadAddon,
  ) {}

  private get addon(): NativeAddon {
    this.loadedAddon ??= this.loadNative();
    return this.loadedAddon;
  }

  get ready(): boolean {
    return this.info !== null;
  }

  get model(): ModelInfo | null {
    return this.info;
  }

  async load(): Promise<ModelInfo> {
    if (this.config.vadModelPath) await checkVadModel(this.config.vadModelPath);
    const whisperLog = this.log.child('whisper');
    // whisper.cpp's info lines are a load report; they belong at debug level here.
    this.addon.setLogger(
      (level, message) =>
        // whisper reports our own aborts (shutdown, cancellation) as errors.
        level === 'info' || / - aborting$/.test(message) ? whisperLog.debug(message) : whisperLog[level](message),
      this.log.enabled('debug') ? 'debug' : 'warn',
    );
    const languages = this.addon.languages();
    this.languageCodes = new Set(languages);
    const { model, native } = await this.loadChecked();
    this.native = model;
    this.info = {
      path: native.path,
      type: native.type,
      multilingual: native.multilingual,
      weightType: native.weightType,
      fileBytes: native.fileBytes,
      flashAttn: native.flashAttn,
      loadMs: native.loadMs,
      checked: native.checked,
      languages,
    };
    this.log.info('model loaded', {
      path: native.path,
      type: native.type,
      weights: native.weightType,
      ms: Math.round(native.loadMs),
      check: native.checked ? `${native.checkMs.toFixed(1)} ms` : 'remembered',
      threads: this.config.threads,
      flashAttn: native.flashAttn,
    });
    this.warnIfGenerated();
    return this.info;
  }

  /**
   * Loads the model, skipping the model check when the same, unchanged file passed it
   * before (`modelCheckCache`); remembers a file that passes it. A file that changed while
   * it loaded unchecked is loaded again, checked.
   */
  private async loadChecked(): Promise<{ model: NativeModel; native: NativeModelInfo }> {
    const { modelPath, flashAttn } = this.config;
    const cache = this.config.modelCheckCache ? new ModelCheckCache(this.config.modelCheckCache) : undefined;
    const known = await cache?.lookup(modelPath).catch((err) => {
      // An unreadable model file: the check (below) says why, in its words.
      this.log.debug('model check cache: no identity', { error: (err as Error).message });
      return undefined;
    });
    const load = async (verified: NativeModelCheck | undefined) => {
      const model = new this.addon.Model();
      const native = await model.load(modelPath, { flashAttn, ...(verified ? { verified } : {}) }).catch((err) => {
        throw toAppError(err, 'ERR_MODEL_LOAD');
      });
      return { model, native };
    };
    if (known?.summary) {
      const loaded = await load(known.summary);
      if (await stillSame(modelPath, known.identity).catch(() => false)) return loaded;
      this.log.warn('the model file changed while it loaded; loading it again, checked', { path: modelPath });
      loaded.model.free();
    }
    const loaded = await load(undefined);
    if (cache && known) {
      const summary: NativeModelCheck = {
        multilingual: loaded.native.multilingual,
        weightType: loaded.native.weightType,
        ftype: loaded.native.ftype,
        mels: loaded.native.mels,
        vocab: loaded.native.vocab,
        audioState: loaded.native.audioState,
        audioLayers: loaded.native.audioLayers,
        textState: loaded.native.textState,
        textLayers: loaded.native.textLayers,
        tensors: loaded.native.tensors,
        tensorBytes: loaded.native.tensorBytes,
        fileBytes: loaded.native.fileBytes,
      };
      // The identity taken before the check: a file changed since has another one, and is checked next time.
      await cache.remember(known.identity, summary).catch((err) => {
        this.log.warn('could not remember the model check', { error: (err as Error).message });
      });
    }
    return loaded;
  }

  /** scripts/make-test-model leaves a sidecar naming itself: say so, loudly, once. */
  private warnIfGenerated(): void {
    try {
      const sidecar = JSON.parse(readFileSync(`${this.config.modelPath}.json`, 'utf8')) as { generator?: string };
      if (sidecar.generator?.includes('make-test-model')) {
        this.log.warn('the model is a generated random-weight test model: transcripts will be meaningless', { model: this.config.modelPath });
      }
    } catch {
      // no sidecar: a real model
    }
  }

  /** Checks options the way a user wrote them; throws ERR_INVALID_ARGUMENT with one clear message. */
  validate(requested: TranscribeOptions): NativeTranscribeOptions {
    const options = { ...this.config.defaults, ...requested };
    for (const name of booleanOptions) {
      const value = options[name];
      if (value !== undefined && typeof value !== 'boolean') throw invalidArgument(name, 'a boolean', value);
    }
    checkNumber(options, 'threads', 1, 64, true);
    checkNumber(options, 'nice', 0, 19, true);
    checkNumber(options, 'bestOf', 1, 16, true);
    checkNumber(options, 'beamSize', 1, 16, true);
    checkNumber(options, 'temperature', 0, 1, false);
    checkNumber(options, 'temperatureIncrement', 0, 1, false);
    checkNumber(options, 'entropyThreshold', 0, 100, false);
    checkNumber(options, 'logprobThreshold', -100, 0, false);
    checkNumber(options, 'noSpeechThreshold', 0, 1, false);
    checkNumber(options, 'maxSegmentLength', 0, 10000, true);
    checkNumber(options, 'audioCtx', 0, 1500, true);
    checkNumber(options, 'windowSeconds', 30, 3600, false);
    if (options.strategy !== undefined && options.strategy !== 'greedy' && options.strategy !== 'beam') {
      throw invalidArgument('strategy', '"greedy" or "beam"', options.strategy);
    }
    if (options.initialPrompt !== undefined && typeof options.initialPrompt !== 'string') {
      throw invalidArgument('initialPrompt', 'a string', options.initialPrompt);
    }
    const language = options.language ?? 'en';
    if (typeof language !== 'string' || (language !== 'auto' && !this.languageCodes?.has(language))) {
      throw invalidArgument('language', '"auto" or a whisper language code such as "en"', language);
    }
    if (this.info && !this.info.multilingual && language !== 'en' && language !== 'auto') {
      throw new AppError('ERR_INVALID_ARGUMENT', `The model ${this.info.type} is English-only; it cannot transcribe language "${language}"`);
    }
    if (options.translate && this.info && !this.info.multilingual) {
      throw new AppError('ERR_INVALID_ARGUMENT', 'An English-only model cannot translate');
    }
    if (options.vad && !this.config.vadModelPath) {
      throw new AppError('ERR_INVALID_ARGUMENT', 'VAD was requested but no VAD model is installed');
    }
    const { vad, ...rest } = options;
    return {
      ...rest,
      language,
      threads: options.threads ?? this.config.threads,
      nice: options.nice ?? this.config.nice,
      windowSeconds: options.windowSeconds ?? this.config.windowSeconds,
      ...(vad ? { vadModel: this.config.vadModelPath } : {}),
    };
  }

  async transcribe(audio: EngineAudio, options: TranscribeOptions, control: TranscribeControl = {}): Promise<Transcript> {
    let native: NativeTranscribeOptions;
    try {
      if (!this.native) throw new AppError('ERR_MODEL_FREED', 'The model is not loaded');
      native = this.validate(options);
      if (control.signal?.aborted) throw new AppError('ERR_ABORTED', 'Transcription aborted before it started');
    } catch (err) {
      // A stream is ours to close from the call on; the addon closes it once it has it.
      if ('fd' in audio) closeSync(audio.fd);
      throw err;
    }
    if (!this.native) throw new AppError('ERR_MODEL_FREED', 'The model is not loaded');
    // The JS stack of the caller, for errors that come back from the worker thread.
    const stack = new Error().stack;
    const { onSegment } = control;
    const task = this.native.transcribe(
      audio,
      control.interactive ? { ...native, interactive: true } : native,
      control.onProgress,
      onSegment &&
        ((segment) => {
          // Called from the addon's queue: an exception would not reach the caller.
          try {
            for (const finished of finishSegments([segment])) onSegment(finished);
          } catch (err) {
            this.log.error('a segment listener failed', { error: err as Error });
          }
        }),
    );
    const onAbort = () => task.abort();
    control.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await task.promise;
      const segments = finishSegments(result.segments);
      return {
        text: segments
          .map((s) => s.text)
          .filter(Boolean)
          .join(' '),
        segments,
        language: result.language,
        durationMs: result.durationMs,
        windows: result.windows,
        timings: result.timings,
      };
    } catch (err) {
      const appError = toAppError(err, 'ERR_INFERENCE');
      if (stack) appError.stack = `${appError.name}: ${appError.message}\n${stack.split('\n').slice(1).join('\n')}`;
      throw appError;
    } finally {
      control.signal?.removeEventListener('abort', onAbort);
    }
  }

  close(): void {
    this.native?.free();
    this.native = null;
    this.info = null;
    this.loadedAddon?.setLogger(null);
  }
}

/**
 * whisper.cpp asserts (aborting the process) on a VAD file of the wrong kind, and only
 * reports a missing one as a failed transcription: check both up front.
 */
async function checkVadModel(file: string): Promise<void> {
  let head: Buffer;
  try {
    const handle = await open(file, 'r');
    try {
      head = Buffer.alloc(32);
      await handle.read(head, 0, 32, 0);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new AppError('ERR_MODEL_NOT_FOUND', `VAD model ${file} cannot be read: ${(err as Error).message}`);
  }
  const length = head.readInt32LE(4);
  const type = length > 0 && length <= 24 ? head.toString('latin1', 8, 8 + length) : '';
  if (head.readUInt32LE(0) !== 0x67676d6c || !type.startsWith('silero')) {
    throw new AppError('ERR_MODEL_INVALID', `${file} is not a ggml Silero VAD model (whisper.cpp's ggml-silero-*.bin)`);
  }
}
