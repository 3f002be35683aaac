/**
 * The process's one helper thread, for work that can run beside the main thread: hashing chunks
 * (chunker/hash-worker.ts), stating a large tree (engine/tree-stats.ts) and writing small
 * downloaded files (engine/file-writer.ts). One thread for all of them, because each worker
 * thread costs ~22 MB of RSS (its V8 instance; measured with the node's memory settings) and
 * the node's budget is 150 MB. It is started on first use, keeps the process alive only while
 * it has work, and is stopped after a few idle seconds; starting one again takes ~30 ms. A
 * worker that dies fails its callers; the next call starts a fresh one.
 *
 * Modules define their kinds of job with `defineHelperJob`: the source of a CommonJS function
 * `(message, reply) => …` that calls `reply(out, transferList)` once. A worker is sent a kind's
 * source with its first job of that kind. Code is sent as strings so that it runs the same
 * from src/ under vitest (where there is no compiled .js file to point a Worker at) and from
 * dist/.
 */
import { Worker, type Transferable } from 'node:worker_threads';
import { FerryError } from './errors.js';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const jobs = {};
parentPort.on('message', ({ id, kind, source, message }) => {
  if (source) jobs[kind] = eval(source);
  jobs[kind](message, (out, transfer) => parentPort.postMessage({ id, out }, transfer || []));
});
`;

const jobSources = new Map<string, string>();

/** Adds a kind of job that `runOnHelper` can run. */
export function defineHelperJob(kind: string, handlerSource: string): void {
  jobSources.set(kind, handlerSource);
}

/** Runs a job of `kind` on the helper thread; resolves with what its handler replied. */
export function runOnHelper<Out>(kind: string, message: object, transfer: Transferable[] = []): Promise<Out> {
  return helperThread.call(kind, message, transfer) as Promise<Out>;
}

interface Request {
  resolve(out: unknown): void;
  reject(err: unknown): void;
}

class HelperThread {
  /** How long an idle worker is kept for the next job (changed by tests). */
  stopAfterMs = 5000;
  private worker: Worker | undefined;
  /** The kinds of job the running worker has been sent the source of. */
  private known = new Set<string>();
  private readonly pending = new Map<number, Request>();
  private nextId = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  /** Whether a worker is running (for tests). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  call(kind: string, message: object, transfer: Transferable[]): Promise<unknown> {
    const source = jobSources.get(kind);
    if (source === undefined) return Promise.reject(new Error(`no helper job ${kind}`));
    const w = this.worker ?? this.start();
    const id = this.nextId++;
    const first = !this.known.has(kind);
    this.known.add(kind);
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) w.ref();
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, kind, message, ...(first ? { source } : {}) }, transfer);
    });
  }

  private start(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true, name: 'ferry-helper' });
    w.unref();
    w.on('message', ({ id, out }: { id: number; out: unknown }) => {
      const request = this.pending.get(id);
      if (!request) return;
      this.pending.delete(id);
      if (this.pending.size === 0) {
        w.unref();
        this.stopWhenIdle(w);
      }
      request.resolve(out);
    });
    // A worker stopped for idleness had nothing pending: its exit concerns nobody.
    const died = (cause: unknown) => {
      if (this.worker !== w) return;
      this.forget();
      const err = new FerryError('IO_ERROR', 'the helper thread failed', { cause });
      for (const request of this.pending.values()) request.reject(err);
      this.pending.clear();
      void w.terminate();
    };
    w.on('error', died);
    w.on('exit', (code) => died(new Error(`exit code ${code}`)));
    this.worker = w;
    return w;
  }

  private forget(): void {
    this.worker = undefined;
    this.known = new Set();
  }

  private stopWhenIdle(w: Worker): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.worker !== w || this.pending.size > 0) return;
      this.forget();
      void w.terminate();
    }, this.stopAfterMs);
    this.idleTimer.unref();
  }
}

/** The one helper thread (public for tests: whether it runs, and how soon it stops). */
export const helperThread = new HelperThread();
