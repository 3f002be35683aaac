/**
 * Chunks a file that changed, given its previous block list: the same chunks `chunkFile` would
 * find, at a fraction of the cost when most of the file is as it was (an edit inside a disk
 * image, a database, a mailbox).
 *
 * Why this gives the same chunks: the boundary finder starts afresh at every cut (its rolling
 * hash is 0 at the first hashed byte of a chunk), so where a chunk ends depends only on the
 * bytes from its start. When a chunk starts at an old cut and its old bytes are all still there,
 * with the same hash, it ends where it ended before. So at an old cut the old blocks are only
 * checked by their SHA-256, spread over two cores, and the boundary finder runs only from the
 * first block that differs until one of its cuts lands on an old cut again. The old last block
 * ended at the end of the file, not at a cut, so it is only trusted if the file still ends there.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { BlockRef } from '../core/file-record.js';
import type { Chunk } from './chunk-file.js';
import { ChunkBoundaryFinder, type ChunkParams } from './fastcdc.js';
import { hashRangesInWorker } from './hash-worker.js';

/** Read window: at least 2 * maxSize, so a chunk starting anywhere in its first half fits. */
const WINDOW_SIZE = 8 * 1024 * 1024;

/** `params` must be those the previous blocks were cut with (the record's chunk average). */
export async function* rechunkFile(path: string, previous: readonly BlockRef[], params: ChunkParams): AsyncGenerator<Chunk> {
  const oldAt = new Map<number, BlockRef>();
  let oldEnd = 0;
  for (const b of previous) {
    oldAt.set(oldEnd, b);
    oldEnd += b.size;
  }
  const lastOldStart = oldEnd - (previous[previous.length - 1]?.size ?? 0);
  const file = await open(path, 'r');
  try {
    let size = (await file.stat()).size;
    const window = Buffer.from(new SharedArrayBuffer(Math.max(WINDOW_SIZE, 2 * params.maxSize)));
    let base = 0; // file offset of window[0]
    let filled = 0;
    /** Makes the window hold [pos, pos + want) or up to the end of the file. */
    const ensure = async (pos: number, want: number) => {
      if (pos + want <= base + filled || base + filled >= size) return;
      window.copy(window, 0, pos - base, filled);
      filled -= pos - base;
      base = pos;
      while (filled < window.length && base + filled < size) {
        const { bytesRead } = await file.read(window, filled, window.length - filled, base + filled);
        if (bytesRead === 0) {
          // The file shrank since its stat: chunk what is there (the caller's stat check after
          // hashing sees the change). Looking for the old end would never find it.
          size = base + filled;
          break;
        }
        filled += bytesRead;
      }
    };
    const trusted = (start: number, b: BlockRef) => start !== lastOldStart || start + b.size === size;

    let pos = 0;
    let mismatchAt = -1; // an old block found changed: not hashed a second time
    while (pos < size) {
      await ensure(pos, params.maxSize);
      const end = base + filled;
      // 1. Old blocks from here, as many as the window holds: kept if their bytes still hash the same.
      const candidates: { start: number; block: BlockRef }[] = [];
      for (let at = pos, b = oldAt.get(at); b && at !== mismatchAt && at + b.size <= end && trusted(at, b); at += b.size, b = oldAt.get(at)) {
        candidates.push({ start: at, block: b });
      }
      if (candidates.length > 0) {
        const hashes = await hashOnTwoCores(window, candidates.map((c) => [c.start - base, c.start - base + c.block.size]));
        let kept = 0;
        while (kept < candidates.length && hashes[kept]!.equals(candidates[kept]!.block.hash)) kept++;
        for (const { start, block } of candidates.slice(0, kept)) yield { offset: start, size: block.size, hash: block.hash };
        if (kept < candidates.length) mismatchAt = candidates[kept]!.start;
        if (kept > 0) {
          pos = candidates[kept - 1]!.start + candidates[kept - 1]!.block.size;
          continue;
        }
      }
      // 2. New content: find boundaries from here until a cut lands on an old cut (or the window ends).
      const finder = new ChunkBoundaryFinder(params);
      const cuts = finder.push(window.subarray(pos - base, filled)).map((c) => c + pos);
      if (base + filled >= size) cuts.push(...finder.finish().map((c) => c + pos));
      const found: [number, number][] = [];
      for (const cut of cuts) {
        found.push([pos - base, cut - base]);
        pos = cut;
        if (oldAt.has(cut)) break;
      }
      const hashes = await hashOnTwoCores(window, found);
      for (let k = 0; k < found.length; k++) {
        const [s, e] = found[k]!;
        yield { offset: base + s, size: e - s, hash: hashes[k]! };
      }
    }
  } finally {
    await file.close();
  }
}

/** SHA-256 of each [start, end) of the window: the second half of the bytes in the worker. */
async function hashOnTwoCores(window: Buffer, ranges: readonly (readonly [number, number])[]): Promise<Buffer[]> {
  const total = ranges.reduce((n, [s, e]) => n + e - s, 0);
  let split = 0;
  for (let bytes = 0; split < ranges.length && bytes < total / 2; split++) bytes += ranges[split]![1] - ranges[split]![0];
  const theirs = split < ranges.length ? hashRangesInWorker(window, ranges.slice(split).flat()) : Promise.resolve([]);
  theirs.catch(() => {});
  const mine: Buffer[] = ranges.slice(0, split).map(([s, e]) => createHash('sha256').update(window.subarray(s, e)).digest());
  return mine.concat(await theirs);
}
