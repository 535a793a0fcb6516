/**
 * Every failure earshot reports carries one of these string codes. The HTTP status lives
 * here, next to the code, so route handlers never choose one; each API dialect renders
 * its own error body from `code`, `status` and `message`.
 */
export const errorRegistry = {
  ERR_INVALID_ARGUMENT: { status: 400, title: 'invalid argument' },
  ERR_CONFIG: { status: 500, title: 'invalid configuration' },

  ERR_ADDON_LOAD: { status: 500, title: 'native addon could not be loaded' },
  ERR_MODEL_NOT_FOUND: { status: 500, title: 'model file not found' },
  ERR_MODEL_INVALID: { status: 500, title: 'model file is not a valid whisper ggml model' },
  ERR_MODEL_LOAD: { status: 500, title: 'model could not be loaded' },
  ERR_MODEL_BUSY: { status: 503, title: 'model is busy' },
  ERR_MODEL_FREED: { status: 500, title: 'model has been freed' },
  ERR_INFERENCE: { status: 500, title: 'transcription failed' },
  ERR_ABORTED: { status: 499, title: 'transcription aborted' },

  ERR_AUDIO_UNSUPPORTED: { status: 415, title: 'unsupported audio format' },
  ERR_AUDIO_CORRUPT: { status: 400, title: 'audio is corrupt or truncated' },
  ERR_AUDIO_EMPTY: { status: 400, title: 'audio contains no samples' },
  ERR_AUDIO_TOO_LONG: { status: 413, title: 'audio is longer than allowed' },
  ERR_AUDIO_LIMIT: { status: 422, title: 'audio decoding exceeded its resource limits' },
  ERR_DECODER: { status: 500, title: 'audio decoder failed' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorRegistry;

/** The one error class of earshot: a code from the registry, its status, a message for humans. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? errorRegistry[code].title, options);
    this.name = 'AppError';
    this.code = code;
    this.status = errorRegistry[code].status;
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(errorRegistry, code);
}

/**
 * Argument errors share one wording (sharp's): "Expected X for Y but received Z".
 * @example throw invalidArgument('threads', 'an integer between 1 and 64', 0)
 */
export function invalidArgument(name: string, expected: string, actual: unknown): AppError {
  const shown = typeof actual === 'string' ? JSON.stringify(actual) : String(actual);
  return new AppError(
    'ERR_INVALID_ARGUMENT',
    `Expected ${expected} for ${name} but received ${shown} of type ${typeof actual}`,
  );
}
