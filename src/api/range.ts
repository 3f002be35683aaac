/**
 * HTTP Range requests (RFC 9110 §14) for downloads: one `bytes=` range, which is all a
 * resuming client needs. Multiple ranges are answered with the whole file, as the RFC allows.
 */
import { ApiError } from './api-error.js';

export interface ByteRange {
  readonly start: number;
  /** Inclusive. */
  readonly end: number;
}

/**
 * The range to send of a file of `size` bytes: undefined for the whole file (no header, a
 * multi-range or a unit we do not know), or throws RANGE_NOT_SATISFIABLE.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined;
  const [, first, last] = m;
  let start: number;
  let end: number;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    // Suffix range: the last N bytes.
    const n = Number(last);
    if (n === 0) throw unsatisfiable(size);
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(first);
    end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
    if (last !== '' && Number(last) < start) return undefined;
  }
  if (!Number.isSafeInteger(start) || start >= size) throw unsatisfiable(size);
  return { start, end };
}

function unsatisfiable(size: number): ApiError {
  return new ApiError('RANGE_NOT_SATISFIABLE', `the requested range is not within the file's ${size} bytes`, {
    headers: { 'content-range': `bytes */${size}` },
  });
}
