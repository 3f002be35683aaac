import { describe, expect, it } from 'vitest';
import { ApiError } from './api-error.js';
import { parseRange } from './range.js';

describe('parseRange', () => {
  it('reads open, closed and suffix ranges, clamped to the file', () => {
    expect(parseRange('bytes=100-', 1000)).toEqual({ start: 100, end: 999 });
    expect(parseRange('bytes=0-99', 1000)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=900-5000', 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRange('bytes=-10', 1000)).toEqual({ start: 990, end: 999 });
    expect(parseRange('bytes=-5000', 1000)).toEqual({ start: 0, end: 999 });
  });

  it('answers the whole file for no header, other units, multiple ranges and reversed ranges', () => {
    expect(parseRange(undefined, 1000)).toBeUndefined();
    expect(parseRange('items=1-2', 1000)).toBeUndefined();
    expect(parseRange('bytes=0-1,5-6', 1000)).toBeUndefined();
    expect(parseRange('bytes=50-10', 1000)).toBeUndefined();
  });

  it('refuses a start beyond the end with 416 and the size', () => {
    for (const h of ['bytes=1000-', 'bytes=-0']) {
      try {
        parseRange(h, 1000);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(ApiError);
        expect((err as ApiError).status).toBe(416);
        expect((err as ApiError).headers['content-range']).toBe('bytes */1000');
      }
    }
  });
});
