/**
 * SHA-256 of chunks on a second core (and half of a large folder's full-rescan `lstat` calls,
 * engine/tree-stats.ts). The gear loop that finds boundaries must run in order on one thread,
 * but hashing the chunks it finds can run beside it: chunkFile hands this module ranges of a
 * SharedArrayBuffer window (no copy) and keeps finding boundaries in the other window meanwhile.
 * One worker is shared by every caller (see core/idle-worker.ts).
 */
import { IdleWorker } from '../core/idle-worker.js';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { lstatSync } = require('node:fs');
parentPort.on('message', ({ id, buffer, byteOffset, ranges, dirs }) => {
  if (dirs) {
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
    parentPort.postMessage({ id, out }, [out.buffer]);
    return;
  }
  const out = new Uint8Array((ranges.length / 2) * 32);
  for (let k = 0; k < ranges.length; k += 2) {
    const bytes = new Uint8Array(buffer, byteOffset + ranges[k], ranges[k + 1] - ranges[k]);
    out.set(createHash('sha256').update(bytes).digest(), k * 16);
  }
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

/** The one worker every caller shares. */
export const hashWorker = new IdleWorker<Uint8Array | Float64Array>(WORKER_SOURCE, 'ferry-chunk-hasher');

/**
 * SHA-256 of each [start, end) range of `window` (flattened as start0, end0, start1, …), which must
 * be a view of a SharedArrayBuffer. The caller must not write to those bytes until the promise settles.
 */
export function hashRangesInWorker(window: Uint8Array, ranges: number[]): Promise<Buffer[]> {
  if (!(window.buffer instanceof SharedArrayBuffer)) {
    throw new TypeError('hashRangesInWorker: window must be backed by a SharedArrayBuffer');
  }
  return inWorker({ buffer: window.buffer, byteOffset: window.byteOffset, ranges }).then((out) => {
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
export async function lstatInWorker(dirs: [string, string[]][]): Promise<Float64Array> {
  return (await inWorker({ dirs })) as Float64Array;
}

function inWorker(message: object): Promise<Uint8Array | Float64Array> {
  return hashWorker.call(message);
}
