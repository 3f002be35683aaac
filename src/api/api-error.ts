/**
 * Errors of the REST API: a stable string code, an HTTP status and a human message, sent as
 * `{"error":{"code","message"}}`. This is the one place where errors become HTTP statuses
 * (FerryError codes from lower layers are translated by `toApiError`). Every code is listed in
 * API_ERROR_CODES and documented in docs/remote-access.md.
 */
import { errorMessage, FerryError, isNotFound } from '../core/errors.js';

export const API_ERROR_CODES = {
  INVALID_REQUEST: 400,
  INVALID_PATH: 400,
  HASH_MISMATCH: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  UNKNOWN_FOLDER: 404,
  METHOD_NOT_ALLOWED: 405,
  ALREADY_EXISTS: 409,
  CONFLICT: 409,
  TOO_LARGE: 413,
  RANGE_NOT_SATISFIABLE: 416,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  INSUFFICIENT_STORAGE: 507,
} as const;

export type ApiErrorCode = keyof typeof API_ERROR_CODES;

export class ApiError extends Error {
  readonly status: number;
  /** Extra response headers (Retry-After, WWW-Authenticate, Content-Range). */
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ApiErrorCode,
    message: string,
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiError';
    this.status = API_ERROR_CODES[code];
    this.headers = options.headers ?? {};
  }
}

/** Maps any error to an ApiError; unknown errors become INTERNAL (their message is not sent). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof FerryError) {
    switch (err.code) {
      case 'INVALID_PATH':
        return new ApiError('INVALID_PATH', err.message, { cause: err });
      case 'HASH_MISMATCH':
        return new ApiError('HASH_MISMATCH', err.message, { cause: err });
      case 'NOT_FOUND':
        return new ApiError('NOT_FOUND', err.message, { cause: err });
      case 'UNKNOWN_FOLDER':
        return new ApiError('UNKNOWN_FOLDER', err.message, { cause: err });
      case 'ALREADY_EXISTS':
        return new ApiError('ALREADY_EXISTS', err.message, { cause: err });
      case 'INVALID_CONFIG':
      case 'INVALID_MESSAGE':
        return new ApiError('INVALID_REQUEST', err.message, { cause: err });
      case 'MESSAGE_TOO_LARGE':
        return new ApiError('TOO_LARGE', err.message, { cause: err });
      default:
        break;
    }
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (isNotFound(err)) return new ApiError('NOT_FOUND', 'no such file or directory', { cause: err });
  if (code === 'ENOSPC' || code === 'EDQUOT') return new ApiError('INSUFFICIENT_STORAGE', 'the node is out of disk space', { cause: err });
  if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') return new ApiError('CONFLICT', errorMessage(err), { cause: err });
  if (code === 'ENAMETOOLONG') return new ApiError('INVALID_PATH', 'a name is too long for the node\'s filesystem', { cause: err });
  return new ApiError('INTERNAL', 'internal error', { cause: err });
}
