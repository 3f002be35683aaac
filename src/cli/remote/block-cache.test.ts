import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, utimesSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlockCache, DEFAULT_CACHE_LIMIT } from './block-cache.js';
import { readCacheLimit, saveCacheLimit } from './cache-limit.js';
import { contiguousRuns } from './transfer.js';

let home: string;
const block = (n: number, size = 1000) => {
  const data = Buffer.alloc(size, n);
  return { data, hash: createHash('sha256').update(data).digest('hex') };
};

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'ferry-cache-'));
});

afterEach(() => rmSync(home, { recursive: true, force: true }));

describe('BlockCache', () => {
  it('returns what was stored, and drops a damaged block instead of returning it', async () => {
    const cache = new BlockCache(home, 10_000);
    const a = block(1);
    expect(cache.get(a.hash)).toBeUndefined();
    await cache.put(a.hash, a.data);
    expect(cache.get(a.hash)).toEqual(a.data);
    const file = join(home, 'cache', 'blocks', a.hash.slice(0, 2), a.hash);
    writeFileSync(file, Buffer.alloc(1000, 9));
    expect(cache.get(a.hash)).toBeUndefined();
    expect(cache.stats().blocks).toBe(0);
  });

  it('evicts the least recently used blocks beyond its limit', async () => {
    const cache = new BlockCache(home, 3500);
    const blocks = [1, 2, 3].map((n) => block(n));
    for (const [i, b] of blocks.entries()) {
      await cache.put(b.hash, b.data);
      const t = new Date(Date.now() - (10 - i) * 1000);
      utimesSync(join(home, 'cache', 'blocks', b.hash.slice(0, 2), b.hash), t, t);
    }
    // Using block 1 makes block 2 the least recently used.
    expect(cache.get(blocks[0]!.hash)).toBeDefined();
    const d = block(4);
    await cache.put(d.hash, d.data);
    expect(cache.stats().bytes).toBeLessThanOrEqual(3500 * 0.9);
    expect(cache.get(blocks[1]!.hash)).toBeUndefined();
    expect(cache.get(blocks[0]!.hash)).toBeDefined();
    expect(cache.get(d.hash)).toBeDefined();
    cache.clear();
    expect(cache.stats()).toMatchObject({ blocks: 0, bytes: 0 });
    expect(() => readdirSync(join(home, 'cache', 'blocks'))).toThrow();
    // Its directories are made again after a clear.
    await cache.put(d.hash, d.data);
    expect(cache.get(d.hash)).toEqual(d.data);
  });
});

describe('cache limit', () => {
  it('is remembered in the home, and a lower limit trims the cache to it', async () => {
    expect(readCacheLimit(home)).toEqual({ bytes: DEFAULT_CACHE_LIMIT, source: 'default' });
    const cache = new BlockCache(home, 10_000);
    for (const n of [1, 2, 3, 4, 5]) {
      const b = block(n);
      await cache.put(b.hash, b.data);
    }
    expect(cache.stats().bytes).toBe(5000);
    saveCacheLimit(home, 2500);
    expect(readCacheLimit(home)).toEqual({ bytes: 2500, source: 'set' });
    new BlockCache(home, readCacheLimit(home).bytes).trim();
    expect(cache.stats().bytes).toBeLessThanOrEqual(2500);
    expect(cache.stats().bytes).toBeGreaterThan(0);
    writeFileSync(join(home, 'cache', 'settings.json'), '{"limit":"lots"}');
    expect(() => readCacheLimit(home)).toThrow(/no valid limit/);
  });
});

describe('contiguousRuns', () => {
  it('groups touching blocks up to a byte limit', () => {
    const b = (offset: number, size: number) => ({ offset, size });
    expect(contiguousRuns([b(0, 10), b(10, 10), b(30, 10), b(40, 10), b(50, 100)], 25)).toEqual([[b(0, 10), b(10, 10)], [b(30, 10), b(40, 10)], [b(50, 100)]]);
    expect(contiguousRuns([], 10)).toEqual([]);
  });
});
