/**
 * Small helpers for answering plain node:http requests: JSON bodies in and out, errors in the
 * API's JSON shape, and a bounded read of small request bodies.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from './api-error.js';

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

export function sendError(res: ServerResponse, err: ApiError, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  sendJson(res, err.status, { error: { code: err.code, message: err.message } }, { ...err.headers, ...headers });
}

/** Reads a JSON object body of at most `limit` bytes. */
export async function readJsonBody(req: IncomingMessage, limit = 64 * 1024): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new ApiError('TOO_LARGE', `request body larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new ApiError('TOO_LARGE', `request body larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiError('INVALID_REQUEST', 'the request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError('INVALID_REQUEST', 'the request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/** How much of a refused request's body is read and dropped before the connection is closed instead. */
export const DISCARD_LIMIT = 4 * 1024 * 1024;

/**
 * Drops the rest of a request body after a refusal, so a keep-alive connection stays usable and
 * the client reads the answer instead of a reset. A client that keeps sending after `limit`
 * bytes (one that did not ask `Expect: 100-continue` and ignores the answer) has its
 * connection closed once the answer is out: a refused 1 TiB upload is not read to its end.
 */
export function discardBody(req: IncomingMessage, res: ServerResponse, limit = DISCARD_LIMIT): void {
  if (req.readableEnded) return;
  let dropped = 0;
  let closing = false;
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped <= limit || closing) return;
    closing = true;
    if (res.writableFinished) req.socket.destroy();
    else res.once('finish', () => req.socket.destroy());
  });
  req.resume();
}
