import { STATUS_CODES } from 'node:http';

import type { AppError } from '../errors.js';
import { json, type Reply } from '../http/server.js';

/** IBM's error body: {"code": 400, "code_description": "Bad Request", "error": "..."}. */
export function ibmError(error: AppError): Reply {
  const status = error.status === 499 ? 400 : error.status;
  return json(status, { code: status, code_description: STATUS_CODES[status] ?? 'Error', error: error.message });
}
