/**
 * A second core for the chunker (hash-thread.ts does the work): SHA-256 of chunks that chunkFile
 * finds, handed over as ranges of a SharedArrayBuffer window (no copy) while it finds the
 * boundaries of the next window; the second half of a large new file, chunked and hashed whole
 * (chunkInHalves); and half of a large folder's full-rescan `lstat` calls (engine/tree-stats.ts).
 * One worker is shared by every caller and only keeps the process alive while it has work. It is
 * stopped after a few idle seconds: its V8 instance holds ~22 MB that a node between large files
 * does not need, and starting one again takes ~30 ms.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FerryError } from '../core/errors.js';
import type { Chunk } from './chunk-file.js';
import type { ChunkParams } from './fastcdc.js';
import type { ThreadReply } from './hash-thread.js';

interface Request {
  resolve(reply: Extract<ThreadReply, { out: unknown }>): void;
  reject(err: unknown): void;
}

/** How long an idle worker is kept for the next file (changed by tests). */
export const hashWorkerIdle = { stopAfterMs: 5000 };

let worker: Worker | undefined;
const pending = new Map<number, Request>();
let nextId = 0;
let idleTimer: NodeJS.Timeout | undefined;

function stopWhenIdle(w: Worker): void {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (worker !== w || pending.size > 0) return;
    worker = undefined;
    void w.terminate();
  }, hashWorkerIdle.stopAfterMs);
  idleTimer.unref();
}

function failAll(dead: Worker, cause: unknown): void {
  const err = new FerryError('IO_ERROR', 'chunker: hash worker failed', { cause });
  for (const request of pending.values()) request.reject(err);
  pending.clear();
  void dead.terminate();
}

/**
 * The compiled hash-thread.js; from the sources (the tests run them), hash-thread.ts through tsx,
 * which a worker only takes by `require` (Node 20 does not apply `--import` hooks to a worker's
 * entry module).
 */
function startThread(): Worker {
  const self = fileURLToPath(import.meta.url);
  if (!self.endsWith('.ts')) return new Worker(new URL('./hash-thread.js', import.meta.url), { name: 'ferry-chunk-hasher' });
  const source = join(dirname(self), 'hash-thread.ts');
  return new Worker(`require('tsx/cjs'); require(${JSON.stringify(source)});`, { eval: true, name: 'ferry-chunk-hasher' });
}

/** Whether a worker is running (for tests). */
export function hashWorkerRunning(): boolean {
  return worker !== undefined;
}

function getWorker(): Worker {
  if (worker) return worker;
  const w = startThread();
  w.unref();
  w.on('message', (reply: ThreadReply) => {
    const request = pending.get(reply.id);
    if (!request) return;
    pending.delete(reply.id);
    if (pending.size === 0) {
      w.unref();
      stopWhenIdle(w);
    }
    if ('error' in reply) request.reject(Object.assign(new Error(reply.error.message), reply.error.code ? { code: reply.error.code } : {}));
    else request.resolve(reply);
  });
  // A dead worker fails its callers; the next call starts a fresh one.
  // A worker stopped for idleness had nothing pending: its exit concerns nobody.
  const died = (cause: unknown) => {
    if (worker !== w) return;
    worker = undefined;
    failAll(w, cause);
  };
  w.on('error', died);
  w.on('exit', (code) => died(new Error(`exit code ${code}`)));
  worker = w;
  return w;
}

/**
 * SHA-256 of each [start, end) range of `window` (flattened as start0, end0, start1, …), which must
 * be a view of a SharedArrayBuffer. The caller must not write to those bytes until the promise settles.
 */
export function hashRangesInWorker(window: Uint8Array, ranges: number[]): Promise<Buffer[]> {
  if (!(window.buffer instanceof SharedArrayBuffer)) {
    throw new TypeError('hashRangesInWorker: window must be backed by a SharedArrayBuffer');
  }
  return inWorker({ buffer: window.buffer, byteOffset: window.byteOffset, ranges }).then(({ out }) => {
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
  return (await inWorker({ dirs })).out as Float64Array;
}

/**
 * The chunks of `path` from `start` to its end, found on the worker's thread as if a chunk
 * began at `start` (see chunkFile). Setting `abort[0]` makes it stop early.
 */
export async function chunkTailInWorker(path: string, start: number, params: ChunkParams, abort: Int32Array): Promise<Chunk[]> {
  const { out, hashes } = await inWorker({ tail: { path, start, params, abort } });
  const chunks: Chunk[] = [];
  for (let k = 0; k < out.length; k += 2) {
    chunks.push({ offset: out[k]!, size: out[k + 1]!, hash: Buffer.from(hashes!.buffer, hashes!.byteOffset + k * 16, 32) });
  }
  return chunks;
}

function inWorker(message: object): Promise<Extract<ThreadReply, { out: unknown }>> {
  const w = getWorker();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    if (pending.size === 0) w.ref();
    pending.set(id, { resolve, reject });
    w.postMessage({ id, ...message });
  });
}
