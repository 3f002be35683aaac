import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chunkParamsWithAvg } from './fastcdc.js';
import { chunkTailInWorker, hashRangesInWorker, hashWorkerIdle, hashWorkerRunning, lstatInWorker } from './hash-worker.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

function sharedWindow(size: number): Uint8Array {
  const w = new Uint8Array(new SharedArrayBuffer(size));
  for (let i = 0; i < size; i++) w[i] = (i * 31 + 7) & 0xff;
  return w;
}

describe('hash worker', () => {
  const defaultIdle = hashWorkerIdle.stopAfterMs;
  afterEach(() => { hashWorkerIdle.stopAfterMs = defaultIdle; });

  it('hashes each range of a shared window', async () => {
    const w = sharedWindow(10_000);
    const hashes = await hashRangesInWorker(w, [0, 100, 100, 4096, 5000, 10_000]);
    expect(hashes).toEqual([sha256(w.subarray(0, 100)), sha256(w.subarray(100, 4096)), sha256(w.subarray(5000, 10_000))]);
  });

  it('stops when idle and starts again for the next caller', async () => {
    hashWorkerIdle.stopAfterMs = 50;
    const w = sharedWindow(4096);
    expect(await hashRangesInWorker(w, [0, 4096])).toEqual([sha256(w)]);
    expect(hashWorkerRunning()).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(hashWorkerRunning()).toBe(false);
    expect(await hashRangesInWorker(w, [10, 4096])).toEqual([sha256(w.subarray(10))]);
  });

  it('a worker stopped while the next call is under way fails nobody', async () => {
    hashWorkerIdle.stopAfterMs = 0;
    const w = sharedWindow(1 << 20);
    for (let round = 0; round < 5; round++) {
      await hashRangesInWorker(w, [0, 10]);
      await new Promise((r) => setTimeout(r, 0)); // the idle stop has run; the old worker has not exited yet
      expect(hashWorkerRunning()).toBe(false);
      const again = await Promise.all([hashRangesInWorker(w, [0, 1 << 20]), hashRangesInWorker(w, [10, 4096])]);
      expect(again).toEqual([[sha256(w)], [sha256(w.subarray(10, 4096))]]);
    }
  });

  it("answers other callers while it chunks a file's second half, and stops that when told", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-tail-'));
    try {
      const file = join(dir, 'big');
      writeFileSync(file, randomBytes(96 * 1024 * 1024));
      const order: string[] = [];
      const params = chunkParamsWithAvg(128 * 1024);
      const tail = chunkTailInWorker(file, 1000, params, new Int32Array(new SharedArrayBuffer(4))).then((chunks) => {
        order.push('tail');
        return chunks;
      });
      const stat = lstatInWorker([[dir, ['big']]]).then((out) => order.push(`lstat ${out[0]}`));
      await Promise.all([tail, stat]);
      expect(order).toEqual([`lstat ${96 * 1024 * 1024}`, 'tail']);
      expect((await tail).reduce((n, c) => n + c.size, 0)).toBe(96 * 1024 * 1024 - 1000);

      const abort = new Int32Array(new SharedArrayBuffer(4));
      const stopped = chunkTailInWorker(file, 0, params, abort);
      Atomics.store(abort, 0, 1);
      expect((await stopped).reduce((n, c) => n + c.size, 0)).toBeLessThan(96 * 1024 * 1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a window that is not shared memory', () => {
    expect(() => hashRangesInWorker(new Uint8Array(16), [0, 16])).toThrow(/SharedArrayBuffer/);
  });
});
