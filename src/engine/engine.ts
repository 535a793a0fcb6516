/** The speech-to-text engine as the rest of earshot sees it (jobs/ depends on this only). */

/**
 * 16 kHz mono float PCM in memory, a window of a spool file of float32le samples, or the
 * read end of a pipe carrying exactly `length` float32le samples (from the decoder: see
 * streamDecodedAudio), which the engine reads window by window and closes however it ends.
 */
export type EngineAudio = Float32Array | { path: string; offset?: number; length?: number } | { fd: number; length: number };

/** Decoding settings of one transcription; whisper's defaults where unset. */
export interface TranscribeOptions {
  /** A whisper language code ("en", "de", ...) or "auto" to detect it from the audio. */
  language?: string;
  /** Translate into English instead of transcribing. */
  translate?: boolean;
  strategy?: 'greedy' | 'beam';
  /** Candidates sampled per fallback step with greedy decoding. */
  bestOf?: number;
  beamSize?: number;
  temperature?: number;
  /** Step of the temperature fallback; 0 turns the fallback off. */
  temperatureIncrement?: number;
  entropyThreshold?: number;
  logprobThreshold?: number;
  noSpeechThreshold?: number;
  initialPrompt?: string;
  conditionOnPreviousText?: boolean;
  tokenTimestamps?: boolean;
  /** Word timings and confidences (implies token timestamps). */
  words?: boolean;
  /** Maximum segment length in characters; 0 = whisper's own segmentation. */
  maxSegmentLength?: number;
  splitOnWord?: boolean;
  suppressBlank?: boolean;
  /** whisper.cpp's suppression of non-speech tokens ("[", "(", "♪", …); on unless false. Markers that get through are removed anyway. */
  suppressNonSpeech?: boolean;
  /** Encoder context override (0 = full 30 s); smaller is faster and less accurate. */
  audioCtx?: number;
  /**
   * Audio shorter than 30 s: the encoder context sized to the clip plus a margin instead
   * of whisper's padded 30 s (an explicit `audioCtx` wins).
   */
  trimEncoder?: boolean;
  /** Skip non-speech with the Silero VAD model configured for the engine. */
  vad?: boolean;
  /** Length of the windows the audio is read and transcribed in. */
  windowSeconds?: number;
  threads?: number;
  /** How much lower than the service the inference threads run (nice increment 0..19). */
  nice?: number;
}

export interface Word {
  text: string;
  /** ms from the start of the audio */
  start: number;
  end: number;
  confidence: number;
}

export interface Token {
  id: number;
  text: string;
  p: number;
  plog: number;
  start: number;
  end: number;
}

export interface Segment {
  start: number;
  end: number;
  text: string;
  /** exp(mean log p) of the segment's text tokens */
  confidence: number;
  noSpeechProb: number;
  speakerTurnNext: boolean;
  tokens: Token[];
  words: Word[];
}

/** whisper's own timings; on the interactive lane only `totalMs` (whisper.cpp keeps the others for the context's own state). */
export interface Timings {
  melMs: number;
  sampleMs: number;
  encodeMs: number;
  decodeMs: number;
  batchdMs: number;
  promptMs: number;
  totalMs: number;
  encodeRuns: number;
  decodeRuns: number;
  fallbacks: number;
}

export interface Transcript {
  text: string;
  segments: Segment[];
  language: string;
  durationMs: number;
  windows: number;
  timings: Timings;
}

export interface Progress {
  percent: number;
  processedMs: number;
}

export interface TranscribeControl {
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
  /**
   * Each segment of the transcript as soon as whisper produced it and the window overlap
   * cannot replace it: in order, equal to the transcript's `segments` (the same filters
   * applied), all of them before `transcribe` resolves. Costs a little (the segments are
   * marshalled twice): only when given.
   */
  onSegment?: (segment: Segment) => void;
  /**
   * Someone is waiting for this one: it may run while a batch transcription does, which
   * pauses (losing nothing) until it ends. One interactive and one batch transcription at a
   * time; a second of either kind is refused with ERR_MODEL_BUSY.
   */
  interactive?: boolean;
}

export interface ModelInfo {
  path: string;
  type: string;
  multilingual: boolean;
  weightType: string;
  fileBytes: number;
  flashAttn: boolean;
  loadMs: number;
  /**
   * Whether this load ran the model check; false when the check of the same, unchanged
   * file was remembered (docs/model-check-cache.md).
   */
  checked?: boolean;
  /** The language codes whisper.cpp knows (an English-only model transcribes `en` only). */
  languages: readonly string[];
}

export interface Engine {
  /** Loads the model; called once at start. */
  load(): Promise<ModelInfo>;
  /** Rejects with an AppError: ERR_ABORTED, ERR_MODEL_BUSY, ERR_INFERENCE, ... */
  transcribe(audio: EngineAudio, options: TranscribeOptions, control?: TranscribeControl): Promise<Transcript>;
  readonly ready: boolean;
  readonly model: ModelInfo | null;
  close(): void;
}
