import { createRequire } from 'node:module';
import path from 'node:path';

import { AppError } from '../errors.js';
import type { EngineAudio, Progress, Segment, Timings, TranscribeOptions } from './engine.js';
import { nativeBuildDir } from '../paths.js';

/**
 * Options of one transcription as the addon reads them (validated in whisper-engine.ts):
 * the engine's options, with VAD as the model file to use instead of a switch.
 */
export type NativeTranscribeOptions = Omit<TranscribeOptions, 'vad'> & {
  vadModel?: string;
  vadThreshold?: number;
  vadMinSpeechMs?: number;
  vadMinSilenceMs?: number;
  vadSpeechPadMs?: number;
  /** With `trimEncoder`: the audio the encoder context covers past the clip's end (default 2000; the benchmark compares margins). */
  trimMarginMs?: number;
  /** The interactive lane: a second whisper state; the batch transcription pauses while it runs. */
  interactive?: boolean;
};

/** 16 kHz mono float PCM in memory, a window of a spool file of float32le samples, or a pipe of them. */
export type NativeAudio = EngineAudio;

/** A segment as the addon returns it; the engine adds the confidence and trims the text. */
export type NativeSegment = Omit<Segment, 'confidence'>;

export interface NativeResult {
  segments: NativeSegment[];
  language: string;
  durationMs: number;
  windows: number;
  /** Encoder positions the last window ran with: the model's full context (1500, 30 s) unless trimmed or `audioCtx` set. */
  audioCtx: number;
  timings: Timings;
}

export interface NativeTask {
  promise: Promise<NativeResult>;
  abort(): void;
}

export interface NativeModelInfo extends NativeModelCheck {
  path: string;
  type: string;
  flashAttn: boolean;
  loadMs: number;
  /** Whether the load ran the model check (false: `verified` was given). */
  checked: boolean;
  /** How long the check took (0 when it did not run). */
  checkMs: number;
}

export interface NativeModel {
  /**
   * Checks the file (unless `verified`: the summary of an earlier check of this same,
   * unchanged file, reported as the check's), then lets whisper.cpp load it.
   */
  load(path: string, options?: { flashAttn?: boolean; verified?: NativeModelCheck }): Promise<NativeModelInfo>;
  /**
   * `onSegment` (when given) gets each segment as soon as it is final, in order, as the
   * result's `segments` will have it: all of them before the promise resolves.
   */
  transcribe(
    audio: NativeAudio,
    options: NativeTranscribeOptions,
    onProgress?: (p: Progress) => void,
    onSegment?: (segment: NativeSegment) => void,
  ): NativeTask;
  free(): void;
  readonly info: NativeModelInfo | null;
  readonly loaded: boolean;
}

export interface NativeModelCheck {
  multilingual: boolean;
  weightType: string;
  ftype: number;
  mels: number;
  vocab: number;
  audioState: number;
  audioLayers: number;
  textState: number;
  textLayers: number;
  tensors: number;
  tensorBytes: number;
  fileBytes: number;
}

export type NativeLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The raw binding built from native/ (see native/src/addon.cc). */
export interface NativeAddon {
  Model: new () => NativeModel;
  systemInfo(): string;
  version(): string;
  languages(): string[];
  checkModel(path: string): NativeModelCheck;
  setLogger(fn: ((level: NativeLogLevel, message: string) => void) | null, minLevel?: NativeLogLevel): void;
  /** sd_notify: false when not under systemd; throws (code ERR_SYSTEMD) when sending fails. */
  notify(state: string): boolean;
  /** A pipe (both ends close-on-exec) for the decoder to write PCM into and a transcription to read it from as `{fd: read, length}`. */
  openPipe(): { read: number; write: number };
  /**
   * posix_spawn() of `file` with argv [file, ...args], environment `env` ("NAME=value") and
   * child fd i = a copy of `childFds[i]` (-1: /dev/null), nothing else; the pid. `onExit` gets
   * (code, 0) or (null, signal number) on the JS thread once it ended (src/engine/native-spawn.ts).
   * Throws an Error with an errno `code` (ENOENT, EACCES) when it cannot be started.
   */
  spawnProcess(file: string, args: string[], env: string[], childFds: number[], onExit: (code: number | null, signal: number | null) => void): number;
  /**
   * Creates `path` (it must not exist) with `mode`, writes `buffers`, fsyncs and closes it
   * in one task on libuv's pool; a file it created is removed when a later step fails.
   * Rejects with an Error as Node's fs gives them (`code` ENOSPC, EEXIST, ...).
   */
  writeNewFile(path: string, buffers: Buffer[], mode: number): Promise<void>;
}

let cached: NativeAddon | undefined;

/**
 * Loads the addon once. On failure, one error lists every path tried and what to do.
 */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  // ggml's threads meet at a barrier after every graph node. libgomp's default is to
  // spin there, which collapses when any other thread wants a core (the event loop, the
  // audio decoder, another process): on 2 cores a decode step of the test model went
  // from 1.8 ms to 60 ms. Passive waiting sleeps instead. libgomp reads this once, when
  // it is loaded with the addon; an explicit setting wins.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  const require = createRequire(import.meta.url);
  // An explicit EARSHOT_ADDON (a cross build, a test) is the only candidate: falling back
  // to another build would hide that the one asked for does not load.
  const candidates = [process.env.EARSHOT_ADDON || path.join(nativeBuildDir, 'Release', 'earshot.node')];
  const failures: string[] = [];
  for (const candidate of candidates) {
    try {
      cached = require(candidate) as NativeAddon;
      return cached;
    } catch (err) {
      failures.push(`- ${candidate}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new AppError(
    'ERR_ADDON_LOAD',
    [
      `Could not load earshot's native addon for ${process.platform}-${process.arch} (Node ${process.versions.node}):`,
      ...failures,
      'Possible solutions:',
      '- Build it: npm run build:native (needs cmake, g++ and the packages of scripts/install-deps)',
      '- A build made for another CPU preset or Node version: rm -rf native/build && npm run build:native',
      `- Check the architecture: node -p process.arch (this is ${process.arch})`,
    ].join('\n'),
  );
}
