/**
 * Ferry's one error type. Every error a caller may act on has a stable string `code`
 * (listed in docs/cli.md and docs/remote-access.md), a human message, an optional `cause` and data.
 * Translate to wire codes or HTTP statuses only at the edges.
 */
export type ErrorCode =
  | 'INVALID_PATH'
  | 'INVALID_CONFIG'
  | 'INVALID_MESSAGE'
  | 'MESSAGE_TOO_LARGE'
  | 'HASH_MISMATCH'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'UNKNOWN_DEVICE'
  | 'UNKNOWN_FOLDER'
  | 'NOT_SHARED'
  | 'PEER_UNAVAILABLE'
  | 'CHANGED_LOCALLY'
  | 'NOT_INITIALIZED'
  | 'NOT_RUNNING'
  | 'ALREADY_RUNNING'
  | 'NO_SPACE'
  | 'IO_ERROR'
  | 'CLOSED';

export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly data: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; data?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.data = options.data ?? {};
  }
}

export function isFerryError(err: unknown, code?: ErrorCode): err is FerryError {
  return err instanceof FerryError && (code === undefined || err.code === code);
}

/** True for a missing file or directory, from Ferry or from node:fs. */
export function isNotFound(err: unknown): boolean {
  if (isFerryError(err, 'NOT_FOUND')) return true;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
