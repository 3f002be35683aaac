/**
 * SHA-256 of chunks on a second core. The gear loop that finds boundaries must run in order on one
 * thread, but hashing the chunks it finds can run beside it: chunkFile hands this module ranges of a
 * SharedArrayBuffer window (no copy) and keeps finding boundaries in the other window meanwhile.
 * One worker is shared by every caller and only keeps the process alive while it has work.
 */
import { Worker } from 'node:worker_threads';
import { FerryError } from '../core/errors.js';

// The worker body is evaluated from a string so that it runs the same from src/ under vitest (where
// there is no compiled .js file to point a Worker at) and from dist/. It is CommonJS, as eval workers are.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', ({ id, buffer, byteOffset, ranges }) => {
  const out = new Uint8Array((ranges.length / 2) * 32);
  for (let k = 0; k < ranges.length; k += 2) {
    const bytes = new Uint8Array(buffer, byteOffset + ranges[k], ranges[k + 1] - ranges[k]);
    out.set(createHash('sha256').update(bytes).digest(), k * 16);
  }
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

interface Request {
  resolve(hashes: Buffer[]): void;
  reject(err: unknown): void;
}

let worker: Worker | undefined;
const pending = new Map<number, Request>();
let nextId = 0;

function failAll(dead: Worker, cause: unknown): void {
  const err = new FerryError('IO_ERROR', 'chunker: hash worker failed', { cause });
  for (const request of pending.values()) request.reject(err);
  pending.clear();
  void dead.terminate();
}

function getWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(WORKER_SOURCE, { eval: true, name: 'ferry-chunk-hasher' });
  w.unref();
  w.on('message', ({ id, out }: { id: number; out: Uint8Array }) => {
    const request = pending.get(id);
    if (!request) return;
    pending.delete(id);
    if (pending.size === 0) w.unref();
    const hashes: Buffer[] = [];
    for (let k = 0; k < out.length; k += 32) hashes.push(Buffer.from(out.buffer, out.byteOffset + k, 32));
    request.resolve(hashes);
  });
  // A dead worker fails its callers; the next call starts a fresh one.
  w.on('error', (err) => { if (worker === w) worker = undefined; failAll(w, err); });
  w.on('exit', (code) => { if (worker === w) worker = undefined; failAll(w, new Error(`exit code ${code}`)); });
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
  const message = { buffer: window.buffer, byteOffset: window.byteOffset, ranges };
  const w = getWorker();
  const id = nextId++;
  return new Promise<Buffer[]>((resolve, reject) => {
    if (pending.size === 0) w.ref();
    pending.set(id, { resolve, reject });
    w.postMessage({ id, ...message });
  });
}
