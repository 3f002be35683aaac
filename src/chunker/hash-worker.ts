/**
 * SHA-256 of chunks on a second core (and half of a large folder's full-rescan `lstat` calls,
 * engine/tree-stats.ts). The gear loop that finds boundaries must run in order on one thread,
 * but hashing the chunks it finds can run beside it: chunkFile hands this module ranges of a
 * SharedArrayBuffer window (no copy) and keeps finding boundaries in the other window meanwhile.
 * They run on the process's helper thread (core/helper-thread.ts).
 */
import { defineHelperJob, runOnHelper } from '../core/helper-thread.js';

defineHelperJob('hash', `(({ buffer, byteOffset, ranges }, reply) => {
  const { createHash } = require('node:crypto');
  const out = new Uint8Array((ranges.length / 2) * 32);
  for (let k = 0; k < ranges.length; k += 2) {
    const bytes = new Uint8Array(buffer, byteOffset + ranges[k], ranges[k + 1] - ranges[k]);
    out.set(createHash('sha256').update(bytes).digest(), k * 16);
  }
  reply(out, [out.buffer]);
})`);

defineHelperJob('lstat', `(({ dirs }, reply) => {
  const { lstatSync } = require('node:fs');
  let count = 0;
  for (const [, names] of dirs) count += names.length;
  const out = new Float64Array(count * 5).fill(NaN);
  let k = 0;
  for (const [dir, names] of dirs) {
    for (const name of names) {
      try {
        const s = lstatSync(dir + '/' + name, { throwIfNoEntry: false });
        if (s) out.set([s.size, s.mtimeMs, s.ctimeMs, s.ino, s.mode], k);
      } catch {}
      k += 5;
    }
  }
  reply(out, [out.buffer]);
})`);

/**
 * SHA-256 of each [start, end) range of `window` (flattened as start0, end0, start1, …), which must
 * be a view of a SharedArrayBuffer. The caller must not write to those bytes until the promise settles.
 */
export function hashRangesInWorker(window: Uint8Array, ranges: number[]): Promise<Buffer[]> {
  if (!(window.buffer instanceof SharedArrayBuffer)) {
    throw new TypeError('hashRangesInWorker: window must be backed by a SharedArrayBuffer');
  }
  return runOnHelper<Uint8Array>('hash', { buffer: window.buffer, byteOffset: window.byteOffset, ranges }).then((out) => {
    const hashes: Buffer[] = [];
    for (let k = 0; k < out.length; k += 32) hashes.push(Buffer.from(out.buffer, out.byteOffset + k, 32));
    return hashes;
  });
}

/**
 * `lstat` of each name in each [directory, names] pair, on the worker's thread: five numbers
 * per name in order (size, mtimeMs, ctimeMs, ino, mode), all NaN for a name that could not be
 * stated.
 */
export function lstatInWorker(dirs: [string, string[]][]): Promise<Float64Array> {
  return runOnHelper<Float64Array>('lstat', { dirs });
}
