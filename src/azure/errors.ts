import { AppError, type ErrorCode } from '../errors.js';

/**
 * Azure's detailed error codes (the `innerError.code` of its error body) that earshot
 * uses; the names are Azure's `DetailedErrorCode` enum (Speech to Text v3.1 swagger).
 */
export type AzureInnerCode =
  | 'InvalidPayload'
  | 'InvalidRequestBodyFormat'
  | 'InvalidParameterValue'
  | 'InvalidParameter'
  | 'InvalidWebHookEventKind'
  | 'InvalidCallbackUri'
  | 'InvalidPrerequisite'
  | 'UnsupportedFilter'
  | 'UnsupportedPagination'
  | 'DeleteNotAllowed'
  | 'EmptyRequest'
  | 'InvalidLocale'
  | 'InvalidRecordingsUri'
  | 'ExceededNumberOfRecordingsUris'
  | 'OnlyOneOfUrlsOrContainerOrDataset'
  | 'InvalidChannels'
  | 'InvalidTimeToLive'
  | 'InvalidModel'
  | 'InvalidSasValidityDuration'
  // Not in Azure's enum: its answer to a missing or unknown api-version is not documented.
  | 'MissingApiVersion'
  | 'UnsupportedApiVersion'
  | 'UnexpectedError';

/** An AppError that also says which of Azure's detailed codes describes it. */
export class AzureError extends AppError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly innerCode: AzureInnerCode,
  ) {
    super(code, message);
  }
}

/** A 400 with Azure's detailed code. */
export const invalid = (innerCode: AzureInnerCode, message: string) => new AzureError('ERR_INVALID_ARGUMENT', message, innerCode);

/** Azure's top-level `ErrorCode` for an HTTP status. */
const outerCodes: Record<number, string> = {
  400: 'InvalidRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'NotAllowed',
  406: 'InvalidRequest',
  409: 'Conflict',
  413: 'InvalidRequest',
  415: 'UnsupportedMediaType',
  422: 'UnprocessableEntity',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  503: 'ServiceUnavailable',
};

const innerCodes: Partial<Record<ErrorCode, AzureInnerCode>> = {
  ERR_INVALID_ARGUMENT: 'InvalidParameterValue',
  ERR_PAYLOAD_TOO_LARGE: 'InvalidPayload',
  ERR_TARGET_FORBIDDEN: 'InvalidCallbackUri',
  ERR_TARGET_DNS: 'InvalidCallbackUri',
  ERR_TARGET_UNREACHABLE: 'InvalidCallbackUri',
  ERR_TARGET_TIMEOUT: 'InvalidCallbackUri',
  ERR_JOB_BUSY: 'DeleteNotAllowed',
};

/** The HTTP status and body of Azure's `Error` for an AppError. */
export interface AzureErrorBody {
  code: string;
  message: string;
  innerError?: { code: string; message: string };
}

/**
 * Azure's error shape, `{code, message, innerError: {code, message}}`. `innerError` is
 * there whenever one of Azure's detailed codes describes the failure (every 400, 415,
 * 5xx); 401 and 404 carry none, as in the bodies Azure's reference shows for them.
 */
export function azureErrorBody(error: AppError): { status: number; body: AzureErrorBody } {
  const status = error.status === 499 ? 400 : error.status;
  const code = outerCodes[status] ?? (status >= 500 ? 'InternalServerError' : 'InvalidRequest');
  const inner =
    error instanceof AzureError
      ? error.innerCode
      : (innerCodes[error.code] ??
        (status === 415
          ? 'InvalidRequestBodyFormat'
          : status >= 500 && status !== 503
            ? 'UnexpectedError'
            : status === 400
              ? 'InvalidParameterValue'
              : undefined));
  return { status, body: { code, message: error.message, ...(inner ? { innerError: { code: inner, message: error.message } } : {}) } };
}
