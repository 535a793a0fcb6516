import { closeSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { Socket } from 'node:net';
import { resolve } from 'node:path';

import { AppError, type ErrorCode, errorRegistry, invalidArgument } from '../errors.js';
import { nativeTool } from '../paths.js';
import type { AudioFormat } from './media-type.js';
import { loadAddon } from './native.js';
import { type NativeChild, spawnNative } from './native-spawn.js';

/**
 * Runs `earshot-decode` (native/decoder/), the out-of-process decoder that turns an upload
 * into 16 kHz mono float32 PCM under memory, CPU-time, output-length and seccomp limits, and
 * maps every way it can end to an AppError code.
 *
 * The service never writes that PCM to the card (docs/pcm-streaming.md): decodeAudio()
 * without an `outputPath` checks an upload, counting the samples that come through a pipe;
 * streamDecodedAudio() decodes it again into a pipe the engine reads window by window.
 */

/** Sample rate of the decoder's output. */
export const DECODED_SAMPLE_RATE = 16000;

/** Bytes per output sample (float32 little-endian). */
export const DECODED_BYTES_PER_SAMPLE = 4;

/**
 * The longest audio whose check pass keeps its samples in memory (decodeAudio's
 * `keepSamples`) so that the engine transcribes them without a second decoder process:
 * 60 s, 3.84 MB of float32 (docs/pcm-streaming.md, "Short audio").
 */
export const IN_MEMORY_MAX_SAMPLES = 60 * DECODED_SAMPLE_RATE;

/** Default address-space limit of the decoder process. */
export const DEFAULT_DECODER_MEMORY_MB = 256;

/**
 * Whether the decoder may run without its seccomp filter when the kernel offers none (as
 * under qemu-user): `required` refuses such a decode with ERR_DECODER_UNSANDBOXED,
 * `optional` decodes anyway (the result then says `sandboxed: false`).
 */
export type DecoderSandbox = 'required' | 'optional';

/** Limits for one decode. Only `maxSeconds` is required; the rest scale from it. */
export interface DecodeLimits {
  /** Longest audio accepted, in seconds; longer fails with ERR_AUDIO_TOO_LONG. */
  maxSeconds: number;
  /** Address-space limit of the decoder in MiB (default 256). */
  maxMemoryMb?: number;
  /** CPU-time limit in whole seconds (default 10 + maxSeconds / 4). */
  maxCpuSeconds?: number;
  /** Wall-clock limit in ms, after which the decoder is killed (default 3 × CPU limit + 10 s). */
  timeoutMs?: number;
}

export interface DecodeAudioOptions {
  /** The upload as spooled to disk. */
  inputPath: string;
  /**
   * Where the PCM goes; created (mode 0600) or truncated, and removed if decoding fails.
   * Without it, the PCM goes through a pipe to this process, which counts it and drops it:
   * the upload is checked (every error code, the exact length) and nothing is written.
   */
  outputPath?: string;
  /** From parseAudioMediaType(). */
  format: AudioFormat;
  limits: DecodeLimits;
  /** Aborting kills the decoder and rejects with ERR_ABORTED. */
  signal?: AbortSignal;
  /** The earshot-decode binary; default: EARSHOT_DECODER, else native/build/bin/earshot-decode. */
  decoderPath?: string;
  /** Default `required`: a decoder that cannot install its seccomp filter refuses to decode. */
  sandbox?: DecoderSandbox;
  /**
   * Called while the decoder runs, whenever its output has grown since the last look, with
   * the samples written so far (looked at every `progressIntervalMs`).
   */
  onProgress?: (samples: number) => void;
  /** How often the output's size is looked at for `onProgress` (default 1000 ms). */
  progressIntervalMs?: number;
  /**
   * Without `outputPath` only: keep the decoded samples, when there are at most this many,
   * and return them as `pcm` (memory bounded by this, whatever the audio's length: longer
   * audio is counted and dropped as without it). Default 0: nothing is kept.
   */
  keepSamples?: number;
}

/** What the decoder produced: `samples` float32 values at 16 kHz (in `outputPath` when one was given). */
export interface DecodedAudio {
  /** Where the PCM is; absent when it was only counted (no `outputPath` option). */
  outputPath?: string;
  sampleRate: typeof DECODED_SAMPLE_RATE;
  samples: number;
  durationMs: number;
  /** Sample rate, channels and frame count of the upload before resampling and downmixing. */
  inputRate: number;
  inputChannels: number;
  inputFrames: number;
  /** `wav`, `rf64`, `aiff`, `au`, `flac`, `ogg`, `mp3` or `raw`. */
  container: string;
  /** e.g. `pcm_s16`, `flac`, `vorbis`, `opus`, `mp3`, `mulaw`. */
  codec: string;
  /** Whether the seccomp filter was in force (false only with `sandbox: 'optional'` where seccomp is unavailable). */
  sandboxed: boolean;
  /** The samples themselves, when `keepSamples` allowed keeping them (see transcribeDecoded()). */
  pcm?: Float32Array;
}

/**
 * The decoder binary: `explicit`, else `$EARSHOT_DECODER`, else the CMake build output
 * `native/build/bin/earshot-decode` of this package.
 */
export function resolveDecoderPath(explicit?: string): string {
  if (explicit !== undefined && explicit !== '') return resolve(explicit);
  const fromEnv = process.env.EARSHOT_DECODER;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  return nativeTool('earshot-decode');
}

type ResolvedLimits = Required<DecodeLimits>;

function resolveLimits(limits: DecodeLimits): ResolvedLimits {
  const { maxSeconds } = limits;
  if (typeof maxSeconds !== 'number' || !Number.isFinite(maxSeconds) || maxSeconds <= 0 || maxSeconds > 604800) {
    throw invalidArgument('limits.maxSeconds', 'a number of seconds above 0 and at most 604800', maxSeconds);
  }
  const maxMemoryMb = limits.maxMemoryMb ?? DEFAULT_DECODER_MEMORY_MB;
  if (!Number.isInteger(maxMemoryMb) || maxMemoryMb < 1) {
    throw invalidArgument('limits.maxMemoryMb', 'a positive integer', maxMemoryMb);
  }
  const maxCpuSeconds = limits.maxCpuSeconds ?? Math.ceil(10 + maxSeconds / 4);
  if (!Number.isInteger(maxCpuSeconds) || maxCpuSeconds < 1) {
    throw invalidArgument('limits.maxCpuSeconds', 'a positive integer', maxCpuSeconds);
  }
  // Longer than the CPU limit, so that a busy decoder is stopped by the clearer CPU limit
  // and the wall clock only catches one that is stuck (or starved by inference threads).
  const timeoutMs = limits.timeoutMs ?? (maxCpuSeconds * 3 + 10) * 1000;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw invalidArgument('limits.timeoutMs', 'a positive number of milliseconds', timeoutMs);
  }
  return { maxSeconds, maxMemoryMb, maxCpuSeconds, timeoutMs };
}

/** The decoder's command line for one decode (exported for logs and tests). */
export function decoderArguments(
  inputPath: string,
  output: string | { fd: number },
  format: AudioFormat,
  limits: Required<DecodeLimits>,
  sandbox: DecoderSandbox = 'required',
): string[] {
  // Absolute paths can never be mistaken for options.
  const args = ['--input', resolve(inputPath), ...(typeof output === 'string' ? ['--output', resolve(output)] : ['--output-fd', String(output.fd)])];
  switch (format.kind) {
    case 'auto':
      args.push('--format', 'auto');
      if (format.container !== undefined) args.push('--container', format.container);
      if (format.codec !== undefined) args.push('--codec', format.codec);
      break;
    case 'basic':
      args.push('--format', 'basic');
      break;
    case 'l16':
      args.push('--format', 'l16', '--rate', String(format.rate), '--channels', String(format.channels));
      args.push('--endian', format.endianness);
      break;
    case 'mulaw':
    case 'alaw':
      args.push('--format', format.kind, '--rate', String(format.rate), '--channels', String(format.channels));
      break;
  }
  args.push('--max-seconds', String(limits.maxSeconds), '--max-memory-mb', String(limits.maxMemoryMb), '--max-cpu-seconds', String(limits.maxCpuSeconds));
  if (sandbox === 'optional') args.push('--allow-unsandboxed');
  return args;
}

// Codes the decoder may report itself; anything else from it is a decoder bug.
const DECODER_CODES = new Set<ErrorCode>([
  'ERR_AUDIO_UNSUPPORTED',
  'ERR_AUDIO_CORRUPT',
  'ERR_AUDIO_TOO_LONG',
  'ERR_AUDIO_EMPTY',
  'ERR_AUDIO_LIMIT',
  'ERR_DECODER',
  'ERR_DECODER_UNSANDBOXED',
]);

// The decoder's exit codes, for when it died before printing its JSON line.
const EXIT_CODES: Record<number, ErrorCode> = {
  10: 'ERR_AUDIO_UNSUPPORTED',
  11: 'ERR_AUDIO_CORRUPT',
  12: 'ERR_AUDIO_TOO_LONG',
  13: 'ERR_AUDIO_EMPTY',
  14: 'ERR_AUDIO_LIMIT',
  15: 'ERR_DECODER_UNSANDBOXED',
};

const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT', 'SIGTRAP']);

const MAX_STDOUT = 64 * 1024;
const MAX_STDERR = 4 * 1024;

/**
 * Decodes `inputPath` into 16 kHz mono float32 PCM at `outputPath` (or, without one, only
 * counts it: see DecodeAudioOptions.outputPath) in a sandboxed child process. The child
 * gets an empty environment (no API keys near hostile data).
 * @throws AppError ERR_AUDIO_UNSUPPORTED, ERR_AUDIO_CORRUPT, ERR_AUDIO_EMPTY,
 *   ERR_AUDIO_TOO_LONG (per the decoder); ERR_AUDIO_LIMIT (memory, CPU time or wall clock
 *   exceeded); ERR_ABORTED (the signal fired); ERR_DECODER (missing binary, crash, sandbox
 *   violation, nonsense output); ERR_DECODER_UNSANDBOXED (no seccomp here, and `sandbox` is
 *   `required`); ERR_INVALID_ARGUMENT (bad options). On every failure the output file is
 *   removed.
 */
export async function decodeAudio(options: DecodeAudioOptions): Promise<DecodedAudio> {
  const { inputPath, outputPath, format, signal, sandbox = 'required' } = options;
  if (typeof inputPath !== 'string' || inputPath === '') throw invalidArgument('inputPath', 'a file path', inputPath);
  if (outputPath !== undefined && (typeof outputPath !== 'string' || outputPath === '')) throw invalidArgument('outputPath', 'a file path', outputPath);
  if (outputPath !== undefined && resolve(inputPath) === resolve(outputPath)) {
    throw invalidArgument('outputPath', 'a path other than inputPath', outputPath);
  }
  if (sandbox !== 'required' && sandbox !== 'optional') throw invalidArgument('sandbox', "'required' or 'optional'", sandbox);
  const limits = resolveLimits(options.limits ?? ({} as DecodeLimits));
  const binary = resolveDecoderPath(options.decoderPath);
  const args = decoderArguments(inputPath, outputPath ?? { fd: 3 }, format, limits, sandbox);

  const { onProgress, progressIntervalMs = 1000 } = options;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw invalidArgument('onProgress', 'a function', onProgress);
  if (typeof progressIntervalMs !== 'number' || !Number.isFinite(progressIntervalMs) || progressIntervalMs <= 0) {
    throw invalidArgument('progressIntervalMs', 'a positive number of milliseconds', progressIntervalMs);
  }
  const progress = onProgress && { onProgress, intervalMs: progressIntervalMs, outputPath };
  const { keepSamples = 0 } = options;
  if (!Number.isSafeInteger(keepSamples) || keepSamples < 0) throw invalidArgument('keepSamples', 'a number of samples, 0 or more', keepSamples);

  if (outputPath === undefined) {
    if (signal?.aborted) throw new AppError('ERR_ABORTED', 'audio decoding was aborted before it started');
    const run = await runDecoder(binary, args, limits, signal, progress, { count: true, keepBytes: keepSamples * DECODED_BYTES_PER_SAMPLE });
    const result = interpret(run, limits, binary);
    if (run.outputBytes !== result.samples * DECODED_BYTES_PER_SAMPLE) {
      throw new AppError('ERR_DECODER', `the decoder reported ${result.samples} samples but wrote ${run.outputBytes} bytes`);
    }
    if (run.kept) return { ...result, pcm: new Float32Array(run.kept.buffer, 0, result.samples) };
    return result;
  }
  // The output starts afresh, so that its size counts what this decoder wrote, not what an
  // interrupted run left (what cannot be removed, the decoder refuses to open).
  await rm(outputPath, { force: true }).catch(() => undefined);
  if (signal?.aborted) throw new AppError('ERR_ABORTED', 'audio decoding was aborted before it started');
  const run = await runDecoder(binary, args, limits, signal, progress);
  let result: DecodedAudio;
  try {
    result = interpret(run, limits, binary);
    await checkOutput(outputPath, result);
  } catch (error) {
    await rm(outputPath, { force: true });
    throw error;
  }
  return { ...result, outputPath };
}

/** 16 kHz mono float32le samples coming through a pipe, as WhisperEngine.transcribe takes them. */
export interface StreamedAudio {
  /** The read end of the pipe; whoever it is handed to closes it (the engine does, however it ends). */
  fd: number;
  /** Samples the stream carries (what decodeAudio counted). */
  length: number;
}

export interface StreamAudioOptions {
  inputPath: string;
  format: AudioFormat;
  /** The samples decodeAudio() counted for this upload: the stream must carry exactly these. */
  samples: number;
  /** Limits as for decodeAudio(), but no wall-clock limit: the decoder waits on its reader. */
  limits: DecodeLimits;
  signal?: AbortSignal;
  decoderPath?: string;
  sandbox?: DecoderSandbox;
}

/**
 * Decodes an upload (checked by decodeAudio() before) once more, into a pipe that `consume`
 * reads (the engine, window by window: the decoder blocks while the pipe is full, so at
 * most a pipe's and a window's worth of audio is in memory, and none of it on disk).
 *
 * `consume` gets the pipe's read end, which it must close (the engine does), and a signal
 * that fires when the decoder fails or `signal` does. Resolves to what `consume` resolved to
 * once the decoder has succeeded too, with exactly `samples` samples.
 * @throws AppError ERR_ABORTED (the signal fired); the decoder's error when it failed first
 *   (as decodeAudio() maps it); `consume`'s error when that failed first (the decoder is
 *   then killed); ERR_DECODER when the decoder's second result differs from the first.
 */
export async function streamDecodedAudio<T>(options: StreamAudioOptions, consume: (audio: StreamedAudio, signal: AbortSignal) => Promise<T>): Promise<T> {
  const { inputPath, format, samples, signal, sandbox = 'required' } = options;
  if (typeof inputPath !== 'string' || inputPath === '') throw invalidArgument('inputPath', 'a file path', inputPath);
  if (!Number.isSafeInteger(samples) || samples <= 0) throw invalidArgument('samples', 'a positive integer', samples);
  if (sandbox !== 'required' && sandbox !== 'optional') throw invalidArgument('sandbox', "'required' or 'optional'", sandbox);
  const limits = { ...resolveLimits(options.limits ?? ({} as DecodeLimits)), timeoutMs: Number.POSITIVE_INFINITY };
  const binary = resolveDecoderPath(options.decoderPath);
  if (signal?.aborted) throw new AppError('ERR_ABORTED', 'audio decoding was aborted before it started');

  // Stops the decoder (our kill: its end says nothing) and tells `consume` to stop.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const pipe = loadAddon().openPipe();
  let decoding: Promise<DecoderRun>;
  try {
    decoding = runDecoder(binary, decoderArguments(inputPath, { fd: 3 }, format, limits, sandbox), limits, stop.signal, undefined, { fd: pipe.write });
  } catch (error) {
    closeSync(pipe.read);
    throw error;
  } finally {
    // The decoder has its own copy (the spawn returns once it runs): the reader sees the
    // end of the stream when the decoder exits.
    closeSync(pipe.write);
  }
  let decoderFailed: AppError | undefined;
  const decoderDone = (async () => {
    try {
      const second = interpret(await decoding, limits, binary);
      if (second.samples !== samples) {
        throw new AppError('ERR_DECODER', `the decoder wrote ${second.samples} samples this time, ${samples} when the upload was checked`);
      }
    } catch (error) {
      decoderFailed = toDecoderError(error);
      stop.abort(); // `consume` stops: its stream ended early or would
    }
  })();
  let consumed: { value: T } | { error: unknown };
  let grace: NodeJS.Timeout | undefined;
  try {
    consumed = { value: await consume({ fd: pipe.read, length: samples }, stop.signal) };
  } catch (error) {
    consumed = { error };
    if (!streamEndedEarly(error)) {
      stop.abort(); // the decoder must not wait on a reader that is gone
    } else if (!stop.signal.aborted) {
      // The stream ended: the decoder closed its output and is about to report why (its
      // report, not our kill, must decide). Stopped only if it hangs on.
      grace = setTimeout(() => stop.abort(), 5000);
    }
  }
  await decoderDone;
  clearTimeout(grace);
  signal?.removeEventListener('abort', onAbort);
  if (signal?.aborted) throw new AppError('ERR_ABORTED', 'audio decoding was aborted');
  // A decoder that failed on its own ends the stream early: what `consume` then says
  // (stopped, or the stream ended early) follows from the decoder's error, which is the one
  // to report. Any other failure of `consume` came first (the decoder was killed for it).
  if (decoderFailed !== undefined && (!('error' in consumed) || streamEndedEarly(consumed.error))) throw decoderFailed;
  if ('error' in consumed) throw consumed.error;
  return consumed.value;
}

/**
 * Hands a checked upload's audio to `consume` (the engine): the samples decodeAudio() kept
 * (`decoded.pcm`, short audio), with no second decoder process; otherwise a second decode
 * streamed through a pipe, as streamDecodedAudio() does. Either way `consume` gets the same
 * samples, so the transcript is the same. `consume` must use the signal it is given.
 * @throws AppError ERR_ABORTED (the signal fired); otherwise as streamDecodedAudio(), or
 *   `consume`'s error.
 */
export async function transcribeDecoded<T>(
  options: Omit<StreamAudioOptions, 'samples'>,
  decoded: DecodedAudio,
  consume: (audio: Float32Array | StreamedAudio, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const { pcm } = decoded;
  if (pcm === undefined) return streamDecodedAudio({ ...options, samples: decoded.samples }, consume);
  if (pcm.length !== decoded.samples) throw invalidArgument('decoded.pcm', `${decoded.samples} samples`, pcm.length);
  const { signal } = options;
  if (signal?.aborted) throw new AppError('ERR_ABORTED', 'audio decoding was aborted before it started');
  return consume(pcm, signal ?? new AbortController().signal);
}

/** What the engine says when its stream ends before its length: stopped, or cut short (ERR_AUDIO_CORRUPT from its read). */
function streamEndedEarly(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ERR_ABORTED' || code === 'ERR_AUDIO_CORRUPT';
}

function toDecoderError(error: unknown): AppError {
  return error instanceof AppError ? error : new AppError('ERR_DECODER', `the decoder failed: ${(error as Error).message}`);
}

interface DecoderRun {
  /** Bytes that came through the output pipe (when counted). */
  outputBytes: number;
  /** Those bytes, from offset 0 (its buffer is its own), when they were kept: at most `keepBytes` of them. */
  kept?: Uint8Array;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  aborted: boolean;
  spawnError?: NodeJS.ErrnoException;
}

interface ProgressWatch {
  onProgress: (samples: number) => void;
  intervalMs: number;
  /** The output file, or undefined when the output is counted as it comes through the pipe. */
  outputPath: string | undefined;
}

/**
 * Where the decoder's PCM goes: its `--output` file, a pipe this process counts (keeping
 * what came through while it is at most `keepBytes`), or a descriptor given to it as fd 3.
 */
type DecoderOutput = { count: true; keepBytes?: number } | { fd: number } | undefined;

/**
 * Progress of a running decoder, told by the size of its output (or the bytes counted from
 * its pipe): the decoder's contract (one JSON line on stdout) and its seccomp allow-list
 * stay as they are, and what counts is exactly what inference will read. The decoder writes
 * in blocks of a second of audio and decodes hundreds of seconds per second: a working
 * decoder grows it between any two looks.
 */
function watchOutput(watch: ProgressWatch, counted: () => number): () => void {
  let written = 0;
  let looking = false;
  let stopped = false;
  const timer = setInterval(() => {
    if (watch.outputPath === undefined) {
      const bytes = counted();
      if (bytes > written) {
        written = bytes;
        watch.onProgress(Math.floor(bytes / DECODED_BYTES_PER_SAMPLE));
      }
      return;
    }
    if (looking) return;
    looking = true;
    stat(watch.outputPath).then(
      (s) => {
        looking = false;
        if (stopped || s.size <= written) return;
        written = s.size;
        watch.onProgress(Math.floor(s.size / DECODED_BYTES_PER_SAMPLE));
      },
      () => {
        looking = false; // not created yet
      },
    );
  }, watch.intervalMs);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/**
 * Starts the decoder (synchronously: it runs when this returns) and resolves once it ended
 * and its pipes did. Started with posix_spawn() from the addon, not child_process.spawn():
 * a fork of the service on the event loop (src/engine/native-spawn.ts).
 */
function runDecoder(
  binary: string,
  args: string[],
  limits: ResolvedLimits,
  signal: AbortSignal | undefined,
  progress: ProgressWatch | undefined,
  output?: DecoderOutput,
): Promise<DecoderRun> {
  return new Promise((resolvePromise) => {
    const run: DecoderRun = { outputBytes: 0, code: null, signal: null, stdout: '', stderr: '', timedOut: false, aborted: false };
    // stdout, stderr and (when counted) fd 3: pipes whose write ends only the child keeps.
    const pipes: Array<{ read: number; write: number }> = [];
    let child: NativeChild;
    try {
      const addon = loadAddon();
      const count = output !== undefined && 'count' in output;
      for (let i = count ? 3 : 2; i > 0; i--) pipes.push(addon.openPipe());
      const fd3 = output === undefined ? [] : 'fd' in output ? [output.fd] : [pipes[2]!.write];
      child = spawnNative(binary, args, { childFds: [null, pipes[0]!.write, pipes[1]!.write, ...fd3] });
    } catch (error) {
      // Not started (no such binary, not executable, no descriptors left): nothing to wait for.
      for (const pipe of pipes) closeSync(pipe.read);
      run.spawnError = error as NodeJS.ErrnoException;
      resolvePromise(run);
      return;
    } finally {
      for (const pipe of pipes) closeSync(pipe.write);
    }
    const [stdout, stderr, pcm] = pipes.map((pipe) => new Socket({ fd: pipe.read, readable: true, writable: false }));
    // The samples the decoder writes to a counted pipe are counted, and kept only while
    // they fit in `keepBytes` (copied into one buffer that grows by doubling up to it):
    // beyond it, what was kept is dropped, and memory stays bounded for any length.
    const keepBytes = output !== undefined && 'count' in output ? (output.keepBytes ?? 0) : 0;
    let kept: Uint8Array | undefined = keepBytes > 0 ? new Uint8Array(Math.min(keepBytes, 1 << 20)) : undefined;
    pcm?.on('data', (chunk: Buffer) => {
      const end = run.outputBytes + chunk.length;
      if (kept !== undefined) {
        if (end > keepBytes) {
          kept = undefined;
        } else {
          if (end > kept.length) {
            const grown = new Uint8Array(Math.min(keepBytes, Math.max(end, kept.length * 2)));
            grown.set(kept.subarray(0, run.outputBytes));
            kept = grown;
          }
          kept.set(chunk, run.outputBytes);
        }
      }
      run.outputBytes = end;
    });

    const stopWatching = progress ? watchOutput(progress, () => run.outputBytes) : () => {};
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      stopWatching();
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolvePromise(run);
    };
    const kill = (): void => {
      child.kill('SIGKILL'); // not sent once it has ended
    };
    const onAbort = (): void => {
      // One that has already exited ended on its own: its report stands.
      if (child.exit !== null) return;
      run.aborted = true;
      kill();
    };
    const timer = Number.isFinite(limits.timeoutMs)
      ? setTimeout(() => {
          run.timedOut = true;
          kill();
        }, limits.timeoutMs)
      : undefined;
    signal?.addEventListener('abort', onAbort, { once: true });

    stdout!.setEncoding('utf8');
    stdout!.on('data', (chunk: string) => {
      if (run.stdout.length < MAX_STDOUT) run.stdout += chunk;
    });
    stderr!.setEncoding('utf8');
    stderr!.on('data', (chunk: string) => {
      run.stderr = (run.stderr + chunk).slice(-MAX_STDERR);
    });
    // Done once the decoder has exited and every pipe has closed (as child_process's
    // 'close'): everything it wrote has been counted (and kept).
    let pending = 1 + (pcm === undefined ? 2 : 3);
    const done = (): void => {
      if (--pending > 0) return;
      run.kept = kept;
      run.code = child.exit!.code;
      run.signal = child.exit!.signal;
      finish();
    };
    for (const socket of [stdout!, stderr!, pcm]) {
      if (socket === undefined) continue;
      socket.on('error', () => {}); // the decoder's end: its exit reports how it ended
      socket.on('close', done);
    }
    void child.exited.then(done);
  });
}

interface DecoderReport {
  ok: boolean;
  code?: unknown;
  message?: unknown;
  samples?: unknown;
  durationMs?: unknown;
  inputRate?: unknown;
  inputChannels?: unknown;
  inputFrames?: unknown;
  container?: unknown;
  codec?: unknown;
  seccomp?: unknown;
}

function lastJsonLine(stdout: string): DecoderReport | undefined {
  const line = stdout.trim().split('\n').pop();
  if (line === undefined || line === '') return undefined;
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === 'object' && value !== null && typeof (value as DecoderReport).ok === 'boolean') {
      return value as DecoderReport;
    }
  } catch {
    // Not JSON: treated like no report at all.
  }
  return undefined;
}

function stderrNote(run: DecoderRun): string {
  const text = run.stderr.trim();
  return text === '' ? '' : ` (decoder stderr: ${text.slice(-500)})`;
}

function interpret(run: DecoderRun, limits: ResolvedLimits, binary: string): DecodedAudio {
  if (run.spawnError !== undefined) {
    const { code, message } = run.spawnError;
    throw new AppError(
      'ERR_DECODER',
      `The audio decoder could not be started: ${message}.` +
        (code === 'ENOENT' || code === 'EACCES'
          ? `\nPossible solutions:\n- Build it: npm run build:native (it lands in native/build/bin/earshot-decode)` +
            `\n- Point EARSHOT_DECODER at an earshot-decode binary (looked for ${binary})`
          : ''),
      { cause: run.spawnError },
    );
  }
  // Our own kills first: their signal says nothing about the audio.
  if (run.aborted) throw new AppError('ERR_ABORTED', 'audio decoding was aborted');
  if (run.timedOut) {
    throw new AppError('ERR_AUDIO_LIMIT', `audio decoding took longer than ${limits.timeoutMs} ms and was stopped`);
  }
  if (run.signal !== null) throw signalError(run, limits);

  const report = lastJsonLine(run.stdout);
  if (report !== undefined && !report.ok) {
    const code = report.code;
    const message = typeof report.message === 'string' ? report.message : 'audio decoding failed';
    if (code === 'ERR_DECODER_UNSANDBOXED') throw unsandboxedError(message);
    if (typeof code === 'string' && DECODER_CODES.has(code as ErrorCode)) {
      throw new AppError(code as ErrorCode, code === 'ERR_DECODER' ? message + stderrNote(run) : message);
    }
    throw new AppError('ERR_DECODER', `the decoder reported an unknown failure ${JSON.stringify(code)}: ${message}`);
  }
  if (report !== undefined && run.code === 0) return decoded(report);

  const code = run.code === null ? undefined : EXIT_CODES[run.code];
  if (code !== undefined) {
    throw new AppError(code, `${errorRegistry[code].title} (the decoder exited with code ${run.code} without a report)`);
  }
  throw new AppError(
    'ERR_DECODER',
    `the decoder exited with code ${run.code} and ${report === undefined ? 'no valid report' : 'an inconsistent report'}${stderrNote(run)}`,
  );
}

function unsandboxedError(message: string): AppError {
  return new AppError(
    'ERR_DECODER_UNSANDBOXED',
    message +
      '\nPossible solutions:' +
      '\n- Run earshot on a kernel with seccomp filters (Linux 4.14 or later with CONFIG_SECCOMP_FILTER; not under qemu-user)' +
      "\n- Under systemd or in a container, let the service call seccomp(2) (systemd/earshot.service's SystemCallFilter= does)" +
      '\n- Accept decoding hostile uploads without the seccomp filter: EARSHOT_DECODER_SANDBOX=optional',
  );
}

function signalError(run: DecoderRun, limits: ResolvedLimits): AppError {
  const name = run.signal as string;
  if (name === 'SIGXCPU') {
    return new AppError('ERR_AUDIO_LIMIT', `audio decoding used more than its CPU-time limit of ${limits.maxCpuSeconds} s`);
  }
  if (name === 'SIGKILL') {
    // Not ours (those were handled above): the kernel's hard CPU limit or its OOM killer.
    return new AppError(
      'ERR_AUDIO_LIMIT',
      `the decoder was killed (SIGKILL): it exceeded its CPU-time hard limit of ${limits.maxCpuSeconds + 1} s or the system ran out of memory`,
    );
  }
  if (name === 'SIGXFSZ') {
    return new AppError('ERR_AUDIO_TOO_LONG', `the decoded audio exceeded the output size for ${limits.maxSeconds} s`);
  }
  if (name === 'SIGSYS') {
    return new AppError(
      'ERR_DECODER',
      'the decoder was stopped by its sandbox: it attempted a forbidden system call while decoding this input ' +
        '(a hostile or malformed file, or a gap in the seccomp allow-list)' +
        stderrNote(run),
    );
  }
  if (CRASH_SIGNALS.has(name)) {
    return new AppError('ERR_DECODER', `the decoder crashed (${name}) while decoding this input; the audio is probably malformed${stderrNote(run)}`);
  }
  return new AppError('ERR_DECODER', `the decoder was terminated by ${name}${stderrNote(run)}`);
}

function decoded(report: DecoderReport): DecodedAudio {
  const count = (value: unknown): number | undefined => (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined);
  const samples = count(report.samples);
  const durationMs = count(report.durationMs);
  const inputRate = count(report.inputRate);
  const inputChannels = count(report.inputChannels);
  const inputFrames = count(report.inputFrames);
  const { container, codec } = report;
  if (
    samples === undefined ||
    samples === 0 ||
    durationMs === undefined ||
    inputRate === undefined ||
    inputChannels === undefined ||
    inputFrames === undefined ||
    typeof container !== 'string' ||
    typeof codec !== 'string'
  ) {
    throw new AppError('ERR_DECODER', `the decoder reported success with an invalid result: ${JSON.stringify(report)}`);
  }
  return {
    sampleRate: DECODED_SAMPLE_RATE,
    samples,
    durationMs,
    inputRate,
    inputChannels,
    inputFrames,
    container,
    codec,
    sandboxed: report.seccomp === true,
  };
}

// The inference side trusts the output's length; make sure it is what the decoder reported.
async function checkOutput(outputPath: string, result: DecodedAudio): Promise<void> {
  const size = await stat(outputPath).then(
    (s) => s.size,
    () => -1,
  );
  if (size !== result.samples * DECODED_BYTES_PER_SAMPLE) {
    throw new AppError('ERR_DECODER', `the decoder reported ${result.samples} samples but its output has ${size < 0 ? 'no file' : `${size} bytes`}`);
  }
}
