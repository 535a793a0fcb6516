/**
 * Every failure earshot reports carries one of these string codes. The HTTP status lives
 * here, next to the code, so route handlers never choose one; each API dialect renders
 * its own error body from `code`, `status` and `message`.
 */
interface ErrorEntry {
  status: number;
  /** The default message. */
  title: string;
  /** A longer meaning for the README's error table, where the title is not enough. */
  doc?: string;
  /** Reported only when the service cannot start (no HTTP answer carries it). */
  startup?: true;
}

export const errorRegistry = {
  ERR_INVALID_ARGUMENT: { status: 400, title: 'invalid argument', doc: 'a parameter is wrong; the message says which and what was expected' },
  ERR_CONFIG: { status: 500, title: 'invalid configuration', startup: true, doc: 'the configuration is invalid: one line per problem' },

  ERR_UNAUTHORIZED: { status: 401, title: 'unauthorized', doc: 'no or wrong API key (or an expired content URL)' },
  // RFC 9110 15.5.20: the server will not produce an authoritative response for the target
  // URI. A 403 would read as "your credentials lack a permission"; there are none here.
  ERR_MISDIRECTED: {
    status: 421,
    title: 'misdirected request',
    doc: "with `EARSHOT_AUTH=none`, a Host header naming none of the device's names or addresses (DNS-rebinding defence; `EARSHOT_ALLOWED_HOSTS` adds names)",
  },
  ERR_CROSS_ORIGIN: {
    status: 403,
    title: 'cross-origin request refused',
    doc: "a page of another site made the browser send a request that changes something (its `Origin` is not the device's): only the device's own page may (a CSRF defence; API clients send no Origin)",
  },
  ERR_NOT_FOUND: { status: 404, title: 'not found', doc: 'no such resource' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, title: 'method not allowed' },
  ERR_NOT_ACCEPTABLE: { status: 406, title: 'not acceptable', doc: 'the client does not accept JSON' },
  ERR_PAYLOAD_TOO_LARGE: {
    status: 413,
    title: 'request body too large',
    doc: "upload over the limit (Content-Length or running count), or declaring more than the device's disk can ever hold",
  },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'unsupported request content type' },
  ERR_QUEUE_FULL: { status: 503, title: 'the queue is full', doc: 'too many jobs waiting: try again later (Retry-After)' },
  ERR_INSUFFICIENT_STORAGE: {
    status: 507,
    title: 'not enough free space',
    doc: 'the upload would leave less than `EARSHOT_MIN_FREE_BYTES` free on the state directory, or the disk filled while it arrived: try again later (Retry-After)',
  },
  ERR_NOT_READY: { status: 503, title: 'the service is not ready', doc: 'starting or loading the model: try again shortly (Retry-After)' },
  ERR_SHUTTING_DOWN: { status: 503, title: 'the service is shutting down' },
  ERR_STORE: { status: 500, title: 'storage failed', doc: 'the state could not be stored (logged)' },
  ERR_FLEET_UNAVAILABLE: {
    status: 503,
    title: "the fleet's broker is unavailable",
    doc: 'a fleet device (`EARSHOT_FLEET_URL`) could not reach its NATS broker or store a job state there (docs/fleet.md)',
  },
  ERR_INTERNAL: { status: 500, title: 'internal error', doc: 'a bug (logged)' },
  ERR_INTERRUPTED: {
    status: 500,
    title: 'processing was interrupted too often',
    doc: 'the job was interrupted three times by crashes; not retried again (job error)',
  },
  ERR_JOB_NOT_FOUND: { status: 404, title: 'job not found' },
  ERR_RESULT_NOT_READY: {
    status: 409,
    title: 'the job has no results yet',
    doc: 'subtitles or text asked for of a job that has not completed (it is waiting, processing, or failed)',
  },
  ERR_JOB_BUSY: { status: 400, title: 'job is being processed', doc: 'a job being processed cannot be deleted' },
  ERR_CALLBACK_NOT_REGISTERED: {
    status: 400,
    title: 'callback URL is not registered',
    doc: 'allow-list the callback URL with POST /v1/register_callback first',
  },
  ERR_LIMIT_REACHED: {
    status: 400,
    title: 'limit reached',
    doc: 'as many callback URLs or web hooks as `EARSHOT_MAX_HOOKS` allows are stored: remove one first',
  },
  ERR_CALLBACK_REGISTRATION: {
    status: 400,
    title: 'callback URL could not be registered',
    doc: 'the challenge of register_callback failed; the message says how',
  },

  // Delivery targets (callback / webhook URLs). 400: the URL came from the client, and a
  // failed register_callback challenge is a 400 in IBM's contract.
  ERR_TARGET_FORBIDDEN: {
    status: 400,
    title: 'callback target is not in the allowed address ranges',
    doc: 'a callback or web hook target outside `EARSHOT_CALLBACK_CIDRS`, or one its dialect refuses (a dead letter "not sent: ...")',
  },
  ERR_TARGET_DNS: { status: 400, title: 'callback target host name could not be resolved' },
  ERR_TARGET_UNREACHABLE: { status: 400, title: 'callback target could not be reached' },
  ERR_TARGET_TIMEOUT: { status: 400, title: 'callback target did not respond in time' },

  // Audio fetched from a URL the client gave (Azure's contentUrls). Job errors: 4xx because
  // the URL, its host or its content is the client's to fix, never the service's fault.
  ERR_CONTENT_NOT_FOUND: {
    status: 400,
    title: 'the audio URL answered 404 or 410',
    doc: 'the host of an audio URL has no such file (404/410): check the URL, and that the file was not deleted before the job ran (job error)',
  },
  ERR_CONTENT_REFUSED: {
    status: 400,
    title: 'the audio URL is not allowed',
    doc: 'an audio URL that is not http(s), carries credentials (user:password@), or whose address is outside `EARSHOT_CALLBACK_CIDRS` or is this service itself (job error, or 400 when the job is created)',
  },
  ERR_CONTENT_REDIRECT: {
    status: 400,
    title: 'the audio URL answered with a redirect',
    doc: 'the host of an audio URL answered 3xx; redirects are not followed (the target would escape the address check): give the final URL (job error)',
  },
  ERR_CONTENT_TOO_LARGE: {
    status: 413,
    title: 'the audio at the URL is larger than allowed',
    doc: "the file at an audio URL is larger than `EARSHOT_MAX_UPLOAD_BYTES` (declared or as it arrived), or declares more than the device's disk can ever hold (job error)",
  },
  ERR_CONTENT_UNREACHABLE: {
    status: 400,
    title: 'the audio URL could not be read',
    doc: 'the host of an audio URL could not be resolved or reached, closed the connection early, or answered another error status; the message says which (job error)',
  },
  ERR_CONTENT_TIMEOUT: {
    status: 400,
    title: 'the audio URL did not send in time',
    doc: 'the host of an audio URL sent nothing for too long, or the whole download took too long (job error)',
  },

  ERR_ADDON_LOAD: {
    status: 500,
    title: 'native addon could not be loaded',
    startup: true,
    doc: 'the addon or uWebSockets.js does not load: the message lists possible solutions',
  },
  ERR_SYSTEMD: { status: 500, title: 'a systemd notification could not be sent', doc: 'sd_notify failed (logged once; the service runs on)' },
  ERR_MODEL_NOT_FOUND: { status: 500, title: 'model file not found', startup: true, doc: 'no model file: the message says how to install one' },
  ERR_MODEL_INVALID: {
    status: 500,
    title: 'model file is not a valid whisper ggml model',
    startup: true,
    doc: 'a damaged or foreign model file, refused before whisper.cpp reads it',
  },
  ERR_MODEL_LOAD: { status: 500, title: 'model could not be loaded', startup: true },
  ERR_MODEL_BUSY: { status: 503, title: 'model is busy' },
  ERR_MODEL_FREED: { status: 500, title: 'model has been freed' },
  ERR_INFERENCE: { status: 500, title: 'transcription failed', doc: 'whisper.cpp failed (job error)' },
  ERR_ABORTED: {
    status: 499,
    title: 'transcription aborted',
    doc: 'the client closed the connection, or the transcription was cancelled; answered as 400 where a client is still there',
  },

  ERR_AUDIO_UNSUPPORTED: { status: 415, title: 'unsupported audio format', doc: 'not a format earshot decodes' },
  ERR_AUDIO_CORRUPT: { status: 400, title: 'audio is corrupt or truncated', doc: 'the audio is damaged or truncated (job error)' },
  ERR_AUDIO_EMPTY: { status: 400, title: 'audio contains no samples', doc: 'the audio has no samples (job error)' },
  ERR_AUDIO_TOO_LONG: { status: 413, title: 'audio is longer than allowed', doc: 'longer than `EARSHOT_MAX_AUDIO_SECONDS` (job error)' },
  ERR_AUDIO_LIMIT: {
    status: 422,
    title: 'audio decoding exceeded its resource limits',
    doc: "decoding exceeded the decoder's memory or CPU limits (job error)",
  },
  ERR_DECODER: { status: 500, title: 'audio decoder failed', doc: 'the audio decoder failed for another reason (job error)' },
  ERR_DECODER_UNSANDBOXED: {
    status: 500,
    title: 'audio decoder cannot sandbox itself here',
    doc: 'the decoder could not install its seccomp filter and `EARSHOT_DECODER_SANDBOX` is `required` (job error)',
  },
} as const satisfies Record<string, ErrorEntry>;

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
  return new AppError('ERR_INVALID_ARGUMENT', `Expected ${expected} for ${name} but received ${shown} of type ${typeof actual}`);
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
