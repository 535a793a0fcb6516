/**
 * Every failure earshot reports carries one of these string codes. The HTTP status lives
 * here, next to the code, so route handlers never choose one; each API dialect renders
 * its own error body from `code`, `status` and `message`.
 */
export const errorRegistry = {
  ERR_INVALID_ARGUMENT: { status: 400, title: 'invalid argument' },
  ERR_CONFIG: { status: 500, title: 'invalid configuration' },

  ERR_UNAUTHORIZED: { status: 401, title: 'unauthorized' },
  ERR_NOT_FOUND: { status: 404, title: 'not found' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, title: 'method not allowed' },
  ERR_NOT_ACCEPTABLE: { status: 406, title: 'not acceptable' },
  ERR_PAYLOAD_TOO_LARGE: { status: 413, title: 'request body too large' },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'unsupported request content type' },
  ERR_QUEUE_FULL: { status: 503, title: 'the queue is full' },
  ERR_NOT_READY: { status: 503, title: 'the service is not ready' },
  ERR_SHUTTING_DOWN: { status: 503, title: 'the service is shutting down' },
  ERR_STORE: { status: 500, title: 'storage failed' },
  ERR_INTERNAL: { status: 500, title: 'internal error' },
  ERR_INTERRUPTED: { status: 500, title: 'processing was interrupted too often' },
  ERR_JOB_NOT_FOUND: { status: 404, title: 'job not found' },
  ERR_JOB_BUSY: { status: 400, title: 'job is being processed' },
  ERR_CALLBACK_NOT_REGISTERED: { status: 400, title: 'callback URL is not registered' },
  ERR_CALLBACK_REGISTRATION: { status: 400, title: 'callback URL could not be registered' },

  // Delivery targets (callback / webhook URLs). 400: the URL came from the client, and a
  // failed register_callback challenge is a 400 in IBM's contract.
  ERR_TARGET_FORBIDDEN: { status: 400, title: 'callback target is not in the allowed address ranges' },
  ERR_TARGET_DNS: { status: 400, title: 'callback target host name could not be resolved' },
  ERR_TARGET_UNREACHABLE: { status: 400, title: 'callback target could not be reached' },
  ERR_TARGET_TIMEOUT: { status: 400, title: 'callback target did not respond in time' },

  ERR_ADDON_LOAD: { status: 500, title: 'native addon could not be loaded' },
  ERR_SYSTEMD: { status: 500, title: 'a systemd notification could not be sent' },
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
  ERR_DECODER_UNSANDBOXED: { status: 500, title: 'audio decoder cannot sandbox itself here' },
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

/**
 * Any thrown value as an AppError: AppErrors as they are, errors with a known string
 * `code` (the addon's) with that code, anything else with `fallback`.
 */
export function toAppError(err: unknown, fallback: ErrorCode = 'ERR_INTERNAL'): AppError {
  if (err instanceof AppError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return new AppError(isErrorCode(code) ? code : fallback, message, { cause: err });
}
