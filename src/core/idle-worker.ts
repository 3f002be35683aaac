/**
 * A worker thread that is started on first use, keeps the process alive only while it has work,
 * and is stopped after a few idle seconds: its V8 instance holds ~10 MB that an idle node does
 * not need, and starting one again takes ~30 ms. A worker that dies fails its callers; the next
 * call starts a fresh one.
 *
 * The body is evaluated from a string so that it runs the same from src/ under vitest (where
 * there is no compiled .js file to point a Worker at) and from dist/. It is CommonJS, as eval
 * workers are. It answers each `{ id, ...message }` with `{ id, out }`.
 */
import { Worker, type Transferable } from 'node:worker_threads';
import { FerryError } from './errors.js';

interface Request<Out> {
  resolve(out: Out): void;
  reject(err: unknown): void;
}

export class IdleWorker<Out> {
  /** How long an idle worker is kept for the next job (changed by tests). */
  stopAfterMs = 5000;
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Request<Out>>();
  private nextId = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: string,
    private readonly name: string,
  ) {}

  /** Whether a worker is running (for tests). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  call(message: object, transfer: Transferable[] = []): Promise<Out> {
    const w = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) w.ref();
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, ...message }, transfer);
    });
  }

  private start(): Worker {
    const w = new Worker(this.source, { eval: true, name: this.name });
    w.unref();
    w.on('message', ({ id, out }: { id: number; out: Out }) => {
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
      this.worker = undefined;
      const err = new FerryError('IO_ERROR', `${this.name} worker failed`, { cause });
      for (const request of this.pending.values()) request.reject(err);
      this.pending.clear();
      void w.terminate();
    };
    w.on('error', died);
    w.on('exit', (code) => died(new Error(`exit code ${code}`)));
    this.worker = w;
    return w;
  }

  private stopWhenIdle(w: Worker): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.worker !== w || this.pending.size > 0) return;
      this.worker = undefined;
      void w.terminate();
    }, this.stopAfterMs);
    this.idleTimer.unref();
  }
}
