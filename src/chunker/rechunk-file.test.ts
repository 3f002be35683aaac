import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chunkFile, type Chunk } from './chunk-file.js';
import { chunkParamsWithAvg } from './fastcdc.js';
import { rechunkFile } from './rechunk-file.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-rechunk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;
const params = chunkParamsWithAvg(16 * 1024);

async function collect(chunks: AsyncIterable<Chunk>): Promise<Chunk[]> {
  const out: Chunk[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

/** Writes `data`, and checks that re-chunking it from `before`'s blocks gives chunkFile's chunks. */
async function expectSameAsFullChunking(before: Buffer, after: Buffer): Promise<Chunk[]> {
  const file = join(dir, 'f.bin');
  writeFileSync(file, before);
  const previous = await collect(chunkFile(file, { avgSize: params.avgSize }));
  writeFileSync(file, after);
  const full = await collect(chunkFile(file, { avgSize: params.avgSize }));
  const re = await collect(rechunkFile(file, previous, params));
  expect(re.map((c) => [c.offset, c.size, c.hash.toString('hex')])).toEqual(full.map((c) => [c.offset, c.size, c.hash.toString('hex')]));
  return re;
}

describe('rechunkFile', () => {
  // Larger than the 8 MiB read window, so chunks straddle windows and the window slides.
  const original = randomBytes(20 * MiB + 12345);
  const at = (n: number) => Math.floor(original.length * n);

  it('gives exactly the chunks of a full chunking, whatever the edit', async () => {
    const overwrite = Buffer.from(original);
    randomBytes(MiB).copy(overwrite, at(0.5));
    const edits: [string, Buffer][] = [
      ['unchanged', original],
      ['1 MiB overwritten in the middle', overwrite],
      ['bytes inserted', Buffer.concat([original.subarray(0, at(0.3)), randomBytes(1000), original.subarray(at(0.3))])],
      ['a range deleted', Buffer.concat([original.subarray(0, at(0.6)), original.subarray(at(0.6) + 70_000)])],
      ['appended', Buffer.concat([original, randomBytes(3 * MiB)])],
      ['truncated', original.subarray(0, at(0.45))],
      ['prepended', Buffer.concat([randomBytes(17), original])],
      ['one byte flipped at the very end', Buffer.concat([original.subarray(0, -1), Buffer.from([original[original.length - 1]! ^ 1])])],
      ['all new', randomBytes(9 * MiB)],
      ['empty', Buffer.alloc(0)],
      ['edits in several places', Buffer.concat([randomBytes(5), original.subarray(100, at(0.2)), randomBytes(40_000), original.subarray(at(0.25), at(0.9)), randomBytes(3)])],
    ];
    for (const [name, after] of edits) {
      try {
        await expectSameAsFullChunking(original, after);
      } catch (err) {
        throw new Error(`${name}: ${(err as Error).message}`);
      }
    }
  }, 60_000);

  it('ends at the end of a file that shrank while it was read (regression: it read on forever)', async () => {
    const file = join(dir, 'shrinking.bin');
    writeFileSync(file, original);
    const previous = await collect(chunkFile(file, { avgSize: params.avgSize }));
    const chunks = rechunkFile(file, previous, params);
    const first = await chunks.next(); // the first 8 MiB window is read
    truncateSync(file, 10 * MiB);
    const rest = await collect({ [Symbol.asyncIterator]: () => chunks });
    const all = [first.value as Chunk, ...rest];
    expect(all.reduce((n, c) => n + c.size, 0)).toBe(10 * MiB);
    expect(all.map((c) => c.offset)).toEqual(all.map((_, i) => all.slice(0, i).reduce((n, c) => n + c.size, 0)));
  });

  it('keeps the unchanged blocks of a file that grew from its old last block on', async () => {
    const small = original.subarray(0, 3 * MiB);
    const re = await expectSameAsFullChunking(small, Buffer.concat([small, randomBytes(MiB)]));
    expect(re.reduce((n, c) => n + c.size, 0)).toBe(4 * MiB);
  });
});
