/**
 * The chunks of a file from `start` on, cut as if a chunk began there, read window by window:
 * what both halves of chunkInHalves run, one on each thread (chunk-file.ts, hash-thread.ts).
 */
import { createHash } from 'node:crypto';
import type { Chunk } from './chunk-file.js';
import { ChunkBoundaryFinder, type ChunkParams } from './fastcdc.js';

/** Read window: at least 2 * maxSize, so that an unfinished chunk never fills it. */
const WINDOW_SIZE = 4 * 1024 * 1024;

/** Reads into `window` at `offset` up to `length` bytes of the file at `position`; 0 at its end. */
export type ReadAt = (window: Buffer, offset: number, length: number, position: number) => number | Promise<number>;

/** `afterWindow` runs between windows (the worker lets other requests through there). */
export async function* chunksFrom(read: ReadAt, start: number, params: ChunkParams, afterWindow?: () => Promise<void>): AsyncGenerator<Chunk> {
  const finder = new ChunkBoundaryFinder(params);
  const window = Buffer.allocUnsafe(Math.max(WINDOW_SIZE, 2 * params.maxSize));
  let base = start; // file offset of window[0]
  let filled = 0;
  let chunkStart = start;
  for (;;) {
    const bytesRead = await read(window, filled, window.length - filled, base + filled);
    const cuts = bytesRead > 0 ? finder.push(window.subarray(filled, filled + bytesRead)) : finder.finish();
    filled += bytesRead;
    for (const cut of cuts) {
      const end = start + cut;
      yield { offset: chunkStart, size: end - chunkStart, hash: createHash('sha256').update(window.subarray(chunkStart - base, end - base)).digest() };
      chunkStart = end;
    }
    if (bytesRead === 0) return;
    window.copy(window, 0, chunkStart - base, filled);
    filled -= chunkStart - base;
    base = chunkStart;
    await afterWindow?.();
  }
}
