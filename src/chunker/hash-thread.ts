/**
 * The body of the hash worker (hash-worker.ts starts it): SHA-256 of ranges of a shared window,
 * `lstat` batches for a full rescan, and the boundaries and hashes of a file's second half.
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { chunksFrom } from './chunks-from.js';
import type { ChunkParams } from './fastcdc.js';

export type ThreadRequest =
  | { id: number; buffer: SharedArrayBuffer; byteOffset: number; ranges: number[] }
  | { id: number; dirs: [string, string[]][] }
  | { id: number; tail: { path: string; start: number; params: ChunkParams; abort: Int32Array } };

export type ThreadReply =
  | { id: number; out: Uint8Array | Float64Array; hashes?: Uint8Array }
  | { id: number; error: { message: string; code?: string } };

function hashRanges(buffer: SharedArrayBuffer, byteOffset: number, ranges: number[]): Uint8Array {
  const out = new Uint8Array((ranges.length / 2) * 32);
  for (let k = 0; k < ranges.length; k += 2) {
    out.set(createHash('sha256').update(new Uint8Array(buffer, byteOffset + ranges[k]!, ranges[k + 1]! - ranges[k]!)).digest(), k * 16);
  }
  return out;
}

function lstatAll(dirs: [string, string[]][]): Float64Array {
  let count = 0;
  for (const [, names] of dirs) count += names.length;
  const out = new Float64Array(count * 5).fill(NaN);
  let k = 0;
  for (const [dir, names] of dirs) {
    for (const name of names) {
      try {
        const s = lstatSync(dir + '/' + name, { throwIfNoEntry: false });
        if (s) out.set([s.size, s.mtimeMs, s.ctimeMs, s.ino, s.mode], k);
      } catch {
        // stays NaN: the caller states it again itself
      }
      k += 5;
    }
  }
  return out;
}

/**
 * The chunks of `path` from `start` to its end, cut as if a chunk began at `start`: offsets and
 * sizes (pairs), and their hashes. Stops early (returns what it has) once `abort[0]` is set.
 * Between windows it lets other requests through (a rescan's `lstat` batches, another file's
 * hashes), so a tail of many GiB holds nobody up for more than a window's worth (~4 ms).
 */
export async function chunkTail(path: string, start: number, params: ChunkParams, abort: Int32Array): Promise<{ out: Float64Array; hashes: Uint8Array }> {
  const fd = openSync(path, 'r');
  try {
    const cuts: number[] = [];
    const hashes: Buffer[] = [];
    const letOthersThrough = () => new Promise<void>((resolve) => setImmediate(resolve));
    for await (const chunk of chunksFrom((w, at, length, position) => readSync(fd, w, at, length, position), start, params, letOthersThrough)) {
      if (Atomics.load(abort, 0) !== 0) break;
      cuts.push(chunk.offset, chunk.size);
      hashes.push(chunk.hash);
    }
    const all = new Uint8Array(hashes.length * 32);
    hashes.forEach((h, i) => all.set(h, i * 32));
    return { out: Float64Array.from(cuts), hashes: all };
  } finally {
    closeSync(fd);
  }
}

parentPort?.on('message', async (request: ThreadRequest) => {
  const { id } = request;
  try {
    if ('dirs' in request) {
      const out = lstatAll(request.dirs);
      parentPort!.postMessage({ id, out } satisfies ThreadReply, [out.buffer as ArrayBuffer]);
    } else if ('tail' in request) {
      const { path, start, params, abort } = request.tail;
      const { out, hashes } = await chunkTail(path, start, params, abort);
      parentPort!.postMessage({ id, out, hashes } satisfies ThreadReply, [out.buffer as ArrayBuffer, hashes.buffer as ArrayBuffer]);
    } else {
      const out = hashRanges(request.buffer, request.byteOffset, request.ranges);
      parentPort!.postMessage({ id, out } satisfies ThreadReply, [out.buffer as ArrayBuffer]);
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    parentPort!.postMessage({ id, error: { message: e.message, ...(e.code ? { code: e.code } : {}) } } satisfies ThreadReply);
  }
});
