/**
 * Errors of the remote CLI: the node's error code passed through as it is (UNAUTHORIZED,
 * FORBIDDEN, INVALID_PATH …, see docs/remote-access.md) or a client-side one
 * (NOT_LOGGED_IN, CERTIFICATE_CHANGED, CONNECTION_FAILED, HASH_MISMATCH, MISMATCH).
 */
export class RemoteError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly options: { status?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RemoteError';
  }
}
