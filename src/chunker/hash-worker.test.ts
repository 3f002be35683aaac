import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { hashRangesInWorker, hashWorkerIdle, hashWorkerRunning } from './hash-worker.js';

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

  it('refuses a window that is not shared memory', () => {
    expect(() => hashRangesInWorker(new Uint8Array(16), [0, 16])).toThrow(/SharedArrayBuffer/);
  });
});
