import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFerryError } from '../core/errors.js';
import { chunkBuffer, chunkFile, inHalves, type Chunk, type ChunkFileOptions } from './chunk-file.js';
import { chunkTail } from './hash-thread.js';
import { ChunkBoundaryFinder, chunkParamsFor, chunkParamsWithAvg, likelyChunkAvg, type ChunkParams } from './fastcdc.js';
import { GEAR, GEAR_SEED } from './gear-table.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const SMALL: ChunkParams = { minSize: 256, avgSize: 1024, maxSize: 4096 };

/** Seeded bytes (splitmix32), so a failure reproduces. */
function randomBytes(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let s = seed >>> 0;
  for (let i = 0; i < size; i += 4) {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    for (let k = 0; k < 4 && i + k < size; k++) out[i + k] = (z >>> (8 * k)) & 0xff;
  }
  return out;
}

const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();
const hex = (chunks: Chunk[]): string[] => chunks.map((c) => c.hash.toString('hex'));

/** FastCDC as the spec reads, one byte at a time over the whole buffer: the oracle for the fast code. */
function referenceCuts(data: Uint8Array, { minSize, avgSize, maxSize }: ChunkParams): number[] {
  const bits = Math.round(Math.log2(avgSize));
  const maskS = (~0 << (32 - (bits + 2))) | 0;
  const maskL = (~0 << (32 - (bits - 2))) | 0;
  const cuts: number[] = [];
  for (let start = 0; start < data.length; start = cuts[cuts.length - 1]!) {
    const end = Math.min(data.length, start + maxSize);
    let cut = end;
    let h = 0;
    for (let i = start + minSize; i < end; i++) {
      h = ((h << 1) + GEAR[data[i]!]!) | 0;
      if ((h & (i - start < avgSize ? maskS : maskL)) === 0) {
        cut = i + 1;
        break;
      }
    }
    cuts.push(cut);
  }
  return cuts;
}

async function collect(path: string, options?: ChunkFileOptions): Promise<Chunk[]> {
  const chunks: Chunk[] = [];
  for await (const chunk of chunkFile(path, options)) chunks.push(chunk);
  return chunks;
}

describe('gear table', () => {
  it('is derived from SHA-256 of the documented seed', () => {
    expect(GEAR.length).toBe(256);
    for (const i of [0, 7, 8, 100, 255]) {
      const digest = sha256(Buffer.from(`${GEAR_SEED}:${Math.floor(i / 8)}`));
      expect(GEAR[i]).toBe(digest.readInt32BE((i % 8) * 4));
    }
    expect(new Set(GEAR).size).toBe(256);
  });
});

describe('ChunkBoundaryFinder', () => {
  it('matches the byte-at-a-time reference, however the input is split', () => {
    const data = randomBytes(1 * MiB, 1);
    const expected = referenceCuts(data, SMALL);
    const whole = new ChunkBoundaryFinder(SMALL);
    expect(whole.push(data).concat(whole.finish())).toEqual(expected);

    const split = new ChunkBoundaryFinder(SMALL);
    const cuts: number[] = [];
    const sizes = randomBytes(4096, 2);
    for (let offset = 0, k = 0; offset < data.length; k++) {
      const piece = k % 10 === 0 ? 1 : 1 + sizes.readUInt16LE((k * 2) % 4094) % 5000;
      cuts.push(...split.push(data.subarray(offset, offset + piece)));
      offset += piece;
    }
    cuts.push(...split.finish());
    expect(cuts).toEqual(expected);
  });

  it('keeps every chunk but the last within (minSize, maxSize]', () => {
    for (const params of [SMALL, chunkParamsWithAvg(128 * KiB)]) {
      const data = randomBytes(6 * MiB, 3);
      const chunks = chunkBuffer(data, params);
      expect(chunks.reduce((sum, c) => sum + c.size, 0)).toBe(data.length);
      chunks.slice(0, -1).forEach((c) => {
        expect(c.size).toBeGreaterThan(params.minSize);
        expect(c.size).toBeLessThanOrEqual(params.maxSize);
      });
      expect(chunks.at(-1)!.size).toBeLessThanOrEqual(params.maxSize);
      // Normalized chunking keeps the mean near the target.
      const mean = data.length / chunks.length;
      expect(mean).toBeGreaterThan(params.avgSize * 0.8);
      expect(mean).toBeLessThan(params.avgSize * 1.5);
    }
  });

  it('cuts long runs of one byte at maxSize', () => {
    const chunks = chunkBuffer(Buffer.alloc(10 * SMALL.maxSize + 5), SMALL);
    expect(chunks.map((c) => c.size)).toEqual([...Array(10).fill(SMALL.maxSize), 5]);
  });

  it('rejects nonsense params', () => {
    for (const params of [
      { minSize: 0, avgSize: 0, maxSize: 0 },
      { minSize: 4096, avgSize: 1024, maxSize: 8192 },
      { minSize: 256, avgSize: 1024, maxSize: 512 },
      { minSize: 1.5, avgSize: 1024, maxSize: 4096 },
    ]) {
      expect(() => new ChunkBoundaryFinder(params)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    }
    try {
      new ChunkBoundaryFinder({ minSize: -1, avgSize: 1024, maxSize: 4096 });
    } catch (err) {
      expect(isFerryError(err, 'INVALID_CONFIG')).toBe(true);
    }
  });
});

describe('chunkBuffer', () => {
  it('is deterministic and names each chunk by the SHA-256 of its bytes', () => {
    const data = randomBytes(3 * MiB, 4);
    const params = chunkParamsFor(data.length);
    const chunks = chunkBuffer(data, params);
    expect(chunkBuffer(Buffer.from(data), params)).toEqual(chunks);
    let offset = 0;
    for (const chunk of chunks) {
      expect(chunk.offset).toBe(offset);
      expect(chunk.hash.length).toBe(32);
      expect(chunk.hash).toEqual(sha256(data.subarray(chunk.offset, chunk.offset + chunk.size)));
      offset += chunk.size;
    }
    expect(offset).toBe(data.length);
  });

  it('changes only the chunks near a 100-byte insertion in 8 MiB', () => {
    const data = randomBytes(8 * MiB, 5);
    const edited = Buffer.concat([data.subarray(0, 4 * MiB), randomBytes(100, 6), data.subarray(4 * MiB)]);
    const params = chunkParamsFor(data.length);
    const before = new Set(hex(chunkBuffer(data, params)));
    const after = hex(chunkBuffer(edited, params));
    expect(after.length).toBeGreaterThan(30);
    expect(after.filter((h) => !before.has(h)).length).toBeLessThanOrEqual(3);
  });

  it('re-sends about the overwritten region only when 1 MiB of 16 MiB changes', () => {
    const data = randomBytes(16 * MiB, 7);
    const edited = Buffer.from(data);
    randomBytes(1 * MiB, 8).copy(edited, 8 * MiB);
    const params = chunkParamsFor(data.length);
    const before = new Set(hex(chunkBuffer(data, params)));
    const changed = chunkBuffer(edited, params).filter((c) => !before.has(c.hash.toString('hex')));
    const changedBytes = changed.reduce((sum, c) => sum + c.size, 0);
    expect(changedBytes).toBeGreaterThanOrEqual(1 * MiB);
    expect(changedBytes).toBeLessThanOrEqual(1 * MiB + 2 * params.maxSize);
  });
});

describe('chunkFile (real disk)', () => {
  let dir: string;
  const files: Record<string, Buffer> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-chunker-'));
    files.empty = Buffer.alloc(0);
    files.tiny = randomBytes(1000, 9); // below any minSize: one chunk
    files.medium = randomBytes(5 * MiB + 123, 10);
    // Bigger than the 16 MiB window: exercises the two-window path with the hashing worker.
    files.large = randomBytes(40 * MiB + 7, 11);
    for (const [name, data] of Object.entries(files)) await writeFile(join(dir, name), data);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['empty', undefined],
    ['tiny', undefined],
    ['medium', undefined],
    ['medium', 8 * KiB],
    ['large', undefined],
    ['large', 4 * MiB],
    ['large', 16 * KiB],
  ])('gives the same chunks as chunkBuffer: %s, avgSize %s', async (name, avgSize) => {
    const data = files[name]!;
    const params = avgSize === undefined ? chunkParamsFor(data.length) : chunkParamsWithAvg(avgSize);
    const chunks = await collect(join(dir, name), { avgSize });
    expect(chunks).toEqual(chunkBuffer(data, params));
    if (name === 'empty') expect(chunks).toEqual([]);
    if (name === 'tiny') expect(chunks).toEqual([{ offset: 0, size: 1000, hash: sha256(data) }]);
  });

  it('never overwrites a window the worker is still hashing (a last read that finds no cut)', async () => {
    // The tail of the file is shorter than minSize, so the last read cuts nothing and its bytes
    // are carried into the window whose batch may still be in the worker. A race: repeated.
    for (let i = 0; i < 40; i++) {
      const data = randomBytes(8 * MiB + 1000 + i * 37, 100 + i);
      const file = join(dir, `race-${i}`);
      await writeFile(file, data);
      expect(await collect(file, {})).toEqual(chunkBuffer(data, chunkParamsFor(data.length)));
      await rm(file);
    }
  }, 60_000);

  it('hands onData each chunk with its bytes, in order', async () => {
    const data = files.large!;
    const seen: Buffer[] = [];
    let next = 0;
    const chunks = await collect(join(dir, 'large'), {
      onData: (chunk, bytes) => {
        expect(chunk.offset).toBe(next);
        expect(bytes.length).toBe(chunk.size);
        expect(sha256(bytes)).toEqual(chunk.hash);
        seen.push(Buffer.from(bytes));
        next += chunk.size;
      },
    });
    expect(seen.length).toBe(chunks.length);
    expect(Buffer.concat(seen).equals(data)).toBe(true);
  });

  it('chunks what it reads when the file grows while it is read', async () => {
    // 100 KiB gets a window of 100 KiB + 1. Seeds chosen so that the first window has a cut at 92241
    // and the next chunk is 164522 bytes: after the append, the window fills with no cut and must grow.
    const path = join(dir, 'growing');
    const start = randomBytes(100 * KiB, 17);
    const extra = randomBytes(3 * MiB, 13);
    await writeFile(path, start);
    let appended = false;
    const chunks = await collect(path, {
      onData: () => {
        if (!appended) appendFileSync(path, extra);
        appended = true;
      },
    });
    expect(chunks).toEqual(chunkBuffer(Buffer.concat([start, extra]), chunkParamsFor(0)));
    expect(chunks.slice(0, 2).map((c) => c.size)).toEqual([92241, 164522]);
  });

  it('stops with the abort reason when the signal fires', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    let count = 0;
    await expect(async () => {
      for await (const _ of chunkFile(join(dir, 'large'), { signal: controller.signal })) {
        if (++count === 3) controller.abort(reason);
      }
    }).rejects.toBe(reason);
    await expect(collect(join(dir, 'tiny'), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it('can be abandoned part way', async () => {
    for await (const chunk of chunkFile(join(dir, 'large'))) {
      expect(chunk.offset).toBe(0);
      break;
    }
    // Still works afterwards (the shared worker is not left in a bad state).
    expect(await collect(join(dir, 'large'))).toEqual(chunkBuffer(files.large!, chunkParamsFor(files.large!.length)));
  });

  it('fails with ENOENT for a missing file', async () => {
    await expect(collect(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('chunkFile in two halves (a large file: the worker takes the second)', () => {
  let dir: string;
  const fromSize = inHalves.fromSize;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-halves-'));
    inHalves.fromSize = 1 * MiB;
  });
  afterAll(async () => {
    inHalves.fromSize = fromSize;
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['random', undefined, () => randomBytes(24 * MiB + 5, 21)],
    ['random', 16 * KiB, () => randomBytes(24 * MiB + 5, 22)],
    ['random, one or two chunks (the middle inside the first)', 4 * MiB, () => randomBytes(3 * MiB, 23)],
    // Runs of one byte are cut at the maximum size from wherever a chunk starts: the halves never line up.
    ['zeros', 16 * KiB, () => Buffer.alloc(9 * MiB + 3)],
    ['zeros then random', 16 * KiB, () => Buffer.concat([Buffer.alloc(6 * MiB), randomBytes(6 * MiB, 24)])],
  ])('gives the chunks of one pass: %s, avgSize %s', async (name, avgSize, make) => {
    const data = make();
    const file = join(dir, name.replace(/\W+/g, '-'));
    await writeFile(file, data);
    const params = avgSize === undefined ? chunkParamsFor(data.length) : chunkParamsWithAvg(avgSize);
    expect(await collect(file, { avgSize })).toEqual(chunkBuffer(data, params));
  });

  it("the worker's half: chunks from where it starts, as if a chunk began there; nothing once told to stop", async () => {
    const data = randomBytes(2 * MiB + 77, 25);
    const file = join(dir, 'tail');
    await writeFile(file, data);
    const params = chunkParamsWithAvg(8 * KiB);
    const start = 700_001;
    const { out, hashes } = await chunkTail(file, start, params, new Int32Array(1));
    const expected = chunkBuffer(data.subarray(start), params);
    expect(Array.from(out)).toEqual(expected.flatMap((c) => [c.offset + start, c.size]));
    expect(Buffer.from(hashes).equals(Buffer.concat(expected.map((c) => c.hash)))).toBe(true);
    const stopped = await chunkTail(file, start, params, new Int32Array([1]));
    expect([stopped.out.length, stopped.hashes.length]).toEqual([0, 0]);
  });

  it('can be abandoned part way, and fails with ENOENT for a missing file', async () => {
    const data = randomBytes(8 * MiB, 26);
    const file = join(dir, 'abandoned');
    await writeFile(file, data);
    for await (const chunk of chunkFile(file)) {
      expect(chunk.offset).toBe(0);
      break;
    }
    expect(await collect(file)).toEqual(chunkBuffer(data, chunkParamsFor(data.length)));
    await expect(collect(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('chunkParamsFor', () => {
  it('aims at 8192 chunks per file, clamped to [128 KiB, 4 MiB], min avg/4, max avg*4', () => {
    expect(chunkParamsFor(0)).toEqual({ minSize: 32 * KiB, avgSize: 128 * KiB, maxSize: 512 * KiB });
    expect(chunkParamsFor(4 * KiB).avgSize).toBe(128 * KiB);
    expect(chunkParamsFor(1 * GiB).avgSize).toBe(128 * KiB);
    expect(chunkParamsFor(1.4 * GiB).avgSize).toBe(128 * KiB); // 179 KiB ideal: log-nearest is 128
    expect(chunkParamsFor(1.5 * GiB).avgSize).toBe(256 * KiB); // 192 KiB ideal: log-nearest is 256
    expect(chunkParamsFor(8 * GiB)).toEqual({ minSize: 256 * KiB, avgSize: 1 * MiB, maxSize: 4 * MiB });
    expect(chunkParamsFor(32 * GiB).avgSize).toBe(4 * MiB);
    expect(chunkParamsFor(1024 * GiB)).toEqual({ minSize: 1 * MiB, avgSize: 4 * MiB, maxSize: 16 * MiB });
  });

  it('keeps the previous average while it is within a factor 4 of the new choice', () => {
    expect(chunkParamsFor(2 * GiB, 128 * KiB).avgSize).toBe(128 * KiB); // new 256 KiB
    expect(chunkParamsFor(4 * GiB, 128 * KiB).avgSize).toBe(128 * KiB); // new 512 KiB: factor 4 exactly
    expect(chunkParamsFor(8 * GiB, 128 * KiB).avgSize).toBe(1 * MiB); // factor 8: switch
    expect(chunkParamsFor(1 * GiB, 512 * KiB).avgSize).toBe(512 * KiB); // shrank, within 4
    expect(chunkParamsFor(1 * GiB, 1 * MiB).avgSize).toBe(128 * KiB); // shrank 8x
    expect(chunkParamsFor(1024 * GiB, 1 * MiB)).toEqual(chunkParamsWithAvg(1 * MiB));
    // An unusable previous average is ignored.
    expect(chunkParamsFor(1 * GiB, 64 * KiB).avgSize).toBe(128 * KiB);
    expect(chunkParamsFor(1 * GiB, 8 * MiB).avgSize).toBe(128 * KiB);
    expect(chunkParamsFor(1 * GiB, 200 * KiB).avgSize).toBe(128 * KiB);
  });
});

describe('likelyChunkAvg', () => {
  const data = randomBytes(24 * MiB, 11);
  const sizesWith = (avg: number) => chunkBuffer(data, chunkParamsWithAvg(avg)).map((c) => c.size);

  it('finds the average a block list was cut with, the usual one for its size or another', () => {
    expect(chunkParamsFor(data.length).avgSize).toBe(128 * KiB);
    for (const avg of [128 * KiB, 256 * KiB, 512 * KiB, 1 * MiB]) expect(likelyChunkAvg(sizesWith(avg), data.length)).toBe(avg);
    // A file that grew on the sender kept its smaller average.
    expect(likelyChunkAvg(sizesWith(128 * KiB), 3 * GiB)).toBe(128 * KiB);
  });

  it('takes the usual average for a one-block file, and gives 0 for blocks no average cut', () => {
    expect(likelyChunkAvg([4096], 4096)).toBe(128 * KiB);
    expect(likelyChunkAvg([], 0)).toBe(128 * KiB);
    expect(likelyChunkAvg([100, 200, 50], 350)).toBe(0);
    expect(likelyChunkAvg([600 * KiB, 20 * KiB, 300 * KiB], 920 * KiB)).toBe(0); // 20 KiB is below every min
  });
});
