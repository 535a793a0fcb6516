import { AppError, type ErrorCode } from '../errors.js';
import { json, type Reply } from '../http/server.js';

/** An AppError that names the request parameter it concerns (OpenAI's `param`). */
export class OpenAiError extends AppError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly param: string | null,
  ) {
    super(code, message);
  }
}

/** A 400 about one parameter. */
export const invalidParam = (param: string | null, message: string) => new OpenAiError('ERR_INVALID_ARGUMENT', message, param);

/** OpenAI's `code` where its API has one for the failure; null otherwise, as OpenAI sends. */
const codes: Partial<Record<ErrorCode, string>> = {
  ERR_UNAUTHORIZED: 'invalid_api_key',
  ERR_QUEUE_FULL: 'rate_limit_exceeded',
};

/**
 * OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}`: `type` is
 * `invalid_request_error` for the client's mistakes, `server_error` for the device's.
 */
export function openAiError(error: AppError): Reply {
  const status = error.status === 499 ? 400 : error.status;
  const type = status >= 500 ? 'server_error' : 'invalid_request_error';
  const param = error instanceof OpenAiError ? error.param : null;
  const code = error.code === 'ERR_NOT_FOUND' && param === 'model' ? 'model_not_found' : (codes[error.code] ?? null);
  return json(status, { error: { message: error.message, type, param, code } });
}
