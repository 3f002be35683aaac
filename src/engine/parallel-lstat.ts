/**
 * lstat of many paths on two cores. A rescan of a large unchanged folder is mostly lstat calls
 * (~2.5 µs each: 0.25 s for 100,000 files), and they cannot be batched; libuv's pool costs more
 * per call than the call itself. So two worker threads each stat half of the list, and answer
 * in one typed array: no `Stats` object (with its four `Date`s) is made on the scanning thread,
 * whose garbage collector was then the next largest cost. Short lists are done in place.
 */
import { lstatSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { errorMessage, FerryError } from '../core/errors.js';

/** What a scan needs of a stat. `Stats` fits it. */
export interface EntryStat {
  readonly mode: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
}

/** The stats of a list of paths, in order. */
export interface StatTable {
  /** The stat of path i, undefined when it does not exist, or the error. */
  at(i: number): EntryStat | undefined | Error;
}

const MIN_PARALLEL = 4000;
const WORKERS = 2;
const FIELDS = 5;

// Evaluated from a string so it runs the same from src/ (tests) and dist/. A path that does not
// exist gets mode -1, any other error mode -2 (this thread stats it again for the message).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { lstatSync } = require('node:fs');
parentPort.on('message', ({ id, paths }) => {
  const out = new Float64Array(paths.length * ${FIELDS});
  for (let i = 0; i < paths.length; i++) {
    const o = i * ${FIELDS};
    try {
      const s = lstatSync(paths[i], { throwIfNoEntry: false });
      if (!s) { out[o] = -1; continue; }
      out[o] = s.mode; out[o + 1] = s.size; out[o + 2] = s.mtimeMs; out[o + 3] = s.ctimeMs; out[o + 4] = s.ino;
    } catch { out[o] = -2; }
  }
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

/** One worker thread, started on first use; it keeps the process alive only while it has work. */
class LstatWorker {
  private worker: Worker | undefined;
  private readonly requests = new Map<number, { resolve(out: Float64Array): void; reject(err: unknown): void }>();
  private nextId = 0;

  stat(paths: readonly string[]): Promise<Float64Array> {
    const w = (this.worker ??= this.start());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.requests.size === 0) w.ref();
      this.requests.set(id, { resolve, reject });
      w.postMessage({ id, paths });
    });
  }

  private start(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true, name: 'ferry-lstat' });
    w.unref();
    w.on('message', ({ id, out }: { id: number; out: Float64Array }) => {
      const request = this.requests.get(id);
      this.requests.delete(id);
      if (this.requests.size === 0) w.unref();
      request?.resolve(out);
    });
    // A dead worker fails its callers; the next call starts a fresh one.
    const fail = (cause: unknown) => {
      if (this.worker === w) this.worker = undefined;
      for (const request of this.requests.values()) request.reject(new FerryError('IO_ERROR', 'scan: lstat worker failed', { cause }));
      this.requests.clear();
      void w.terminate();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    return w;
  }
}

const workers = Array.from({ length: WORKERS }, () => new LstatWorker());

function statHere(paths: readonly string[]): Float64Array {
  const out = new Float64Array(paths.length * FIELDS);
  paths.forEach((path, i) => {
    const o = i * FIELDS;
    try {
      const s = lstatSync(path, { throwIfNoEntry: false });
      if (!s) out[o] = -1;
      else out.set([s.mode, s.size, s.mtimeMs, s.ctimeMs, s.ino], o);
    } catch {
      out[o] = -2;
    }
  });
  return out;
}

export async function lstatMany(paths: readonly string[]): Promise<StatTable> {
  let stats: Float64Array;
  if (paths.length < MIN_PARALLEL) stats = statHere(paths);
  else {
    const per = Math.ceil(paths.length / WORKERS);
    const parts = await Promise.all(workers.map((w, k) => w.stat(paths.slice(k * per, (k + 1) * per))));
    stats = new Float64Array(paths.length * FIELDS);
    parts.forEach((part, k) => stats.set(part, k * per * FIELDS));
  }
  return {
    at(i) {
      const o = i * FIELDS;
      const mode = stats[o]!;
      if (mode === -1) return undefined;
      if (mode === -2) return errorOf(paths[i]!);
      return { mode, size: stats[o + 1]!, mtimeMs: stats[o + 2]!, ctimeMs: stats[o + 3]!, ino: stats[o + 4]! };
    },
  };
}

/** The error of a path whose stat failed with something other than "no such file". */
function errorOf(path: string): Error | undefined {
  try {
    lstatSync(path, { throwIfNoEntry: false });
    return undefined; // it works now; the next scan will see it
  } catch (err) {
    return new Error(errorMessage(err));
  }
}
