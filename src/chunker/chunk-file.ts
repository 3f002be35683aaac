/**
 * Splits a file (or a buffer) into content-defined chunks named by SHA-256: the blocks of a file
 * record. chunkFile streams the file through a fixed window, so memory stays the same for a 4 KiB
 * file and a 100 GiB one, and hands each chunk's bytes to `onData` while they are still in memory
 * so a new file can be sent to peers while it is being hashed. chunkBuffer gives the same chunks for
 * bytes already in memory.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { ChunkBoundaryFinder, chunkParamsFor, chunkParamsWithAvg, type ChunkParams } from './fastcdc.js';
import { chunksFrom } from './chunks-from.js';
import { chunkTailInWorker, hashRangesInWorker } from './hash-worker.js';

export interface Chunk {
  /** Absolute offset of the chunk in the file. */
  offset: number;
  size: number;
  /** SHA-256 of the chunk's bytes, 32 bytes. */
  hash: Buffer;
}

export interface ChunkFileOptions {
  /** Average chunk size (min avg/4, max avg*4); default chunkParamsFor(file size). */
  avgSize?: number;
  /** Checked between reads and chunks; an abort rejects with signal.reason. */
  signal?: AbortSignal;
  /**
   * Called with each chunk and its bytes, in file order, just before the chunk is yielded. `data`
   * is a view of chunkFile's window and is overwritten by later reads: copy it to keep it.
   */
  onData?: (chunk: Chunk, data: Buffer) => void;
}

/** Read window; at least 2 * maxSize so that an unfinished chunk never fills it. */
const WINDOW_SIZE = 4 * 1024 * 1024;
/** Smallest window for small files, so a tiny file does not cost a 16 MiB allocation. */
const MIN_WINDOW_SIZE = 64 * 1024;
/** Files from this size are chunked in two halves at once (see chunkInHalves; changed by tests). */
export const inHalves = { fromSize: 64 * 1024 * 1024 };

export function chunkBuffer(data: Uint8Array, params: ChunkParams): Chunk[] {
  const finder = new ChunkBoundaryFinder(params);
  const cuts = finder.push(data).concat(finder.finish());
  const chunks: Chunk[] = [];
  let start = 0;
  for (const end of cuts) {
    const hash = createHash('sha256').update(data.subarray(start, end)).digest();
    chunks.push({ offset: start, size: end - start, hash });
    start = end;
  }
  return chunks;
}

/** Chunks found in one window whose hashes may still be on their way. */
interface Batch {
  window: Buffer;
  /** Absolute file offset of window[0]. */
  base: number;
  /** start0, end0, start1, end1, … relative to window[0]. */
  ranges: number[];
  hashes: Promise<Buffer[]>;
}

/**
 * Why a worker: hashing on the main thread after each window (the simple way) measured 690 MiB/s
 * on a 1 GiB file on the 2-core dev VM (gear loop ~0.72 s + SHA-256 ~0.63 s + reads ~0.15 s, in
 * series). crypto.subtle.digest runs in libuv's pool but copies every chunk first and measured
 * 570-820 MiB/s. A worker hashing one SharedArrayBuffer window while the main thread finds the
 * boundaries of the other measured ~1000 MiB/s. Below one window there is nothing to overlap, and
 * the main thread is faster than a round trip to the worker.
 */
export async function* chunkFile(path: string, options: ChunkFileOptions = {}): AsyncGenerator<Chunk> {
  const { signal } = options;
  signal?.throwIfAborted();
  const file = await open(path, 'r');
  try {
    const size = (await file.stat()).size;
    const params = options.avgSize === undefined ? chunkParamsFor(size) : chunkParamsWithAvg(options.avgSize);
    if (size >= inHalves.fromSize && !options.onData) {
      yield* chunkInHalves(path, file, size, params, signal);
      return;
    }
    const finder = new ChunkBoundaryFinder(params);
    const fullWindow = Math.max(WINDOW_SIZE, 2 * params.maxSize);
    const overlap = size > fullWindow;
    // Two windows when hashing overlaps (the worker reads one while we fill the other), else one
    // sized to the file, with a byte to spare so the read that finds the end has room.
    const windows = overlap
      ? [Buffer.from(new SharedArrayBuffer(fullWindow)), Buffer.from(new SharedArrayBuffer(fullWindow))]
      : [Buffer.allocUnsafe(Math.min(fullWindow, Math.max(MIN_WINDOW_SIZE, size + 1)))];
    const inFlight: Batch[] = [];
    let current = 0;
    let base = 0; // absolute offset of windows[current][0]
    let filled = 0; // bytes of windows[current] holding data (the carried tail, then what was read)

    for (;;) {
      signal?.throwIfAborted();
      const window = windows[current]!;
      const { bytesRead } = await file.read(window, filled, window.length - filled, base + filled);
      const cuts = bytesRead > 0 ? finder.push(window.subarray(filled, filled + bytesRead)) : finder.finish();
      filled += bytesRead;

      let start = 0;
      const ranges: number[] = [];
      for (const cut of cuts) {
        ranges.push(start, cut - base);
        start = cut - base;
      }
      if (ranges.length > 0) {
        const hashes = overlap ? hashRangesInWorker(window, ranges) : Promise.resolve(hashRanges(window, ranges));
        // If the consumer stops early, a batch may never be awaited; do not let it turn into an unhandled rejection.
        hashes.catch(() => {});
        inFlight.push({ window, base, ranges, hashes });
      }
      // Keep at most one batch in flight per other window: the next window must be free to write.
      while (inFlight.length > windows.length - 1) yield* emit(inFlight.shift()!, options);
      if (bytesRead === 0) break;

      // Carry the unfinished chunk to the front of the next window (the same one when there is one).
      const next = (current + 1) % windows.length;
      // A window that found no cut queued no batch, so the one still in flight may be hashing
      // the very window the tail goes into: finish it first.
      while (inFlight.length > 0 && inFlight[0]!.window === windows[next]) yield* emit(inFlight.shift()!, options);
      window.copy(windows[next]!, 0, start, filled);
      base += start;
      filled -= start;
      current = next;
      // Only a file that grew after stat can fill a small window (a full-size one never fills, as
      // the carried tail is under maxSize); grow it, as a zero-length read would look like the end.
      if (filled === windows[current]!.length) {
        const bigger = Buffer.allocUnsafe(Math.min(fullWindow, filled * 2));
        windows[current]!.copy(bigger, 0, 0, filled);
        windows[current] = bigger;
      }
    }
    while (inFlight.length > 0) yield* emit(inFlight.shift()!, options);
  } finally {
    await file.close();
  }
}

/**
 * Two cores on one file. The boundary finder must run in order, but where a chunk ends depends
 * only on the bytes from its start (the rolling hash starts afresh at every cut). So the worker
 * chunks the second half as if a chunk began in its middle, while this thread chunks the first
 * half and goes on past the middle until one of its cuts is one of the worker's: from there on,
 * the worker's chunks are the ones this thread would have found, and they are taken as they
 * are. That usually takes a chunk or two; content that never lines up (long runs of one
 * byte cut at the maximum size from different starts) is chunked here to its end, with the
 * same result. Measured on a 1 GiB random file: 1.1–1.4 s against 1.5–1.65 s with the worker only
 * hashing (the boundary finder alone takes ~1.1 s on one core).
 */
async function* chunkInHalves(path: string, file: FileHandle, size: number, params: ChunkParams, signal?: AbortSignal): AsyncGenerator<Chunk> {
  const middle = Math.floor(size / 2);
  const abort = new Int32Array(new SharedArrayBuffer(4));
  const tail = chunkTailInWorker(path, middle, params, abort);
  tail.catch(() => {}); // awaited only if this half gets that far
  try {
    let tailAt: Map<number, number> | undefined; // worker chunk offset -> its index
    let tailChunks: Chunk[] = [];
    for await (const chunk of chunksFrom(async (w, at, length, position) => (await file.read(w, at, length, position)).bytesRead, 0, params)) {
      signal?.throwIfAborted();
      yield chunk;
      const cut = chunk.offset + chunk.size;
      if (cut < middle) continue;
      if (!tailAt) {
        tailChunks = await tail;
        tailAt = new Map(tailChunks.map((c, i) => [c.offset, i]));
      }
      const at = tailAt.get(cut);
      if (at !== undefined) {
        for (let i = at; i < tailChunks.length; i++) {
          signal?.throwIfAborted();
          yield tailChunks[i]!;
        }
        return;
      }
    }
  } finally {
    Atomics.store(abort, 0, 1); // the worker stops if it is still at it
  }
}

function hashRanges(window: Buffer, ranges: number[]): Buffer[] {
  const hashes: Buffer[] = [];
  for (let k = 0; k < ranges.length; k += 2) {
    hashes.push(createHash('sha256').update(window.subarray(ranges[k], ranges[k + 1])).digest());
  }
  return hashes;
}

async function* emit(batch: Batch, { signal, onData }: ChunkFileOptions): AsyncGenerator<Chunk> {
  const hashes = await batch.hashes;
  const { window, base, ranges } = batch;
  for (let k = 0; k < ranges.length; k += 2) {
    const start = ranges[k]!;
    const end = ranges[k + 1]!;
    const chunk: Chunk = { offset: base + start, size: end - start, hash: hashes[k / 2]! };
    signal?.throwIfAborted();
    onData?.(chunk, window.subarray(start, end));
    yield chunk;
  }
}

/** Chunks a small file read whole in one call: far cheaper than a stream for a few KiB. */
export function chunkSmallFile(path: string, params: ChunkParams): Chunk[] {
  return chunkBuffer(readFileSync(path), params);
}
