import { decodeAudio, IN_MEMORY_MAX_SAMPLES, transcribeDecoded } from '../engine/audio-decoder.js';
import type { Engine } from '../engine/engine.js';
import type { FleetTranscribe } from './worker.js';

export interface FleetTranscribeOptions {
  engine: Engine;
  /** EARSHOT_MAX_AUDIO_SECONDS. */
  maxAudioSeconds: number;
  /** EARSHOT_DECODER_SANDBOX. */
  sandbox: 'required' | 'optional';
}

/**
 * The local scheduler's steps for a pulled fleet job: the out-of-process decoder checks
 * the whole file (every audio error, the exact length; short audio is kept in memory),
 * then the engine transcribes what was kept or a second decode as it reads
 * (docs/pcm-streaming.md).
 */
export function fleetTranscribe(o: FleetTranscribeOptions): FleetTranscribe {
  const limits = { maxSeconds: o.maxAudioSeconds };
  return async (job, inputPath, signal, onProgress) => {
    const started = performance.now();
    const decoded = await decodeAudio({
      inputPath,
      format: job.format,
      limits,
      signal,
      sandbox: o.sandbox,
      onProgress: () => onProgress(),
      keepSamples: IN_MEMORY_MAX_SAMPLES,
    });
    const decodeMs = performance.now() - started;
    const transcript = await transcribeDecoded({ inputPath, format: job.format, limits, signal, sandbox: o.sandbox }, decoded, (audio, signal) =>
      o.engine.transcribe(audio, job.options, {
        signal,
        ...(job.interactive ? { interactive: true } : {}),
        onProgress: (p) => onProgress(p.percent),
      }),
    );
    return { transcript, decodeMs };
  };
}
