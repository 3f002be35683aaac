/**
 * SHA-256 of chunks on a second core (and half of a large folder's full-rescan `lstat` calls,
 * engine/tree-stats.ts). The gear loop that finds boundaries must run in order on one thread,
 * but hashing the chunks it finds can run beside it: chunkFile hands this module ranges of a
 * SharedArrayBuffer window (no copy) and keeps finding boundaries in the other window meanwhile.
 * One worker is shared by every caller and only keeps the process alive while it has work. It is
 * stopped after a few idle seconds: its V8 instance holds ~22 MB that a node between large files
 * does not need, and starting one again takes ~30 ms.
 */
import { Worker } from 'node:worker_threads';
import { FerryError } from '../core/errors.js';

// The worker body is evaluated from a string so that it runs the same from src/ under vitest (where
// there is no compiled .js file to point a Worker at) and from dist/. It is CommonJS, as eval workers are.
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

interface Request {
  resolve(out: Uint8Array | Float64Array): void;
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

/** Whether a worker is running (for tests). */
export function hashWorkerRunning(): boolean {
  return worker !== undefined;
}

function getWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(WORKER_SOURCE, { eval: true, name: 'ferry-chunk-hasher' });
  w.unref();
  w.on('message', ({ id, out }: { id: number; out: Uint8Array | Float64Array }) => {
    const request = pending.get(id);
    if (!request) return;
    pending.delete(id);
    if (pending.size === 0) {
      w.unref();
      stopWhenIdle(w);
    }
    request.resolve(out);
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
  const w = getWorker();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    if (pending.size === 0) w.ref();
    pending.set(id, { resolve, reject });
    w.postMessage({ id, ...message });
  });
}
