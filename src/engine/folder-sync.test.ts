import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { blockOffsets } from '../core/file-record.js';
import { FolderSync } from './folder-sync.js';
import { makeTestFolder, seededBytes, soloFolderSync, type TestFolder } from './test-support.js';
import { FolderWatcher } from './watcher.js';

let t: TestFolder;
let folder: FolderSync;

beforeEach(async () => {
  t = makeTestFolder('f1', 'LOCAL01');
  folder = soloFolderSync(t.ctx, { watch: false });
  await folder.start();
});

afterEach(async () => {
  await folder.stop();
  t.cleanup();
});

describe('serving blocks to peers', () => {
  it('serves the current version, and refuses blocks of a version that was replaced (never other bytes)', async () => {
    const v1 = seededBytes(400 * 1024, 1);
    writeFileSync(join(t.root, 'a.bin'), v1);
    await folder.scanNow();
    const old = t.store.getLocal('f1', 'a.bin')!.record;
    const v2 = seededBytes(400 * 1024, 2); // same size, other bytes
    writeFileSync(join(t.root, 'a.bin'), v2);
    await folder.scanNow();
    const current = t.store.getLocal('f1', 'a.bin')!.record;

    const range = (blocks: typeof old.blocks, offset: number) => ({
      type: 'range' as const,
      folder: 'f1',
      path: 'a.bin',
      offset,
      blocks: blocks.map((b) => ({ size: b.size, hash: b.hash.toString('hex') })),
    });
    const offsets = blockOffsets(current.blocks);
    const data = await folder.serveRange(range(current.blocks.slice(1, 3), offsets[1]!));
    const want = v2.subarray(offsets[1]!, offsets[3] ?? v2.length);
    expect(data.equals(want)).toBe(true);

    await expect(folder.serveRange(range(old.blocks.slice(0, 1), 0))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('serves a large range read in the thread pool, and nothing once the file changed on disk', async () => {
    const data = seededBytes(2 * 1024 * 1024 + 5, 3);
    writeFileSync(join(t.root, 'big.bin'), data);
    await folder.scanNow();
    const rec = t.store.getLocal('f1', 'big.bin')!.record;
    const req = { type: 'range' as const, folder: 'f1', path: 'big.bin', offset: 0, blocks: rec.blocks.map((b) => ({ size: b.size, hash: b.hash.toString('hex') })) };
    expect((await folder.serveRange(req)).equals(data)).toBe(true);
    writeFileSync(join(t.root, 'big.bin'), seededBytes(data.length, 4)); // not rescanned
    await expect(folder.serveRange(req)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('starting', () => {
  it('an edit made while the folder starts is seen: the watcher is subscribed before the first scan', async () => {
    const t2 = makeTestFolder('f2', 'LOCAL02');
    writeFileSync(join(t2.root, 'doc.txt'), 'first');
    const original = FolderWatcher.start.bind(FolderWatcher);
    // The edit lands just before the watcher subscribes: only a scan that runs after it sees it.
    const spy = vi.spyOn(FolderWatcher, 'start').mockImplementation(async (...args) => {
      writeFileSync(join(t2.root, 'doc.txt'), 'second, longer');
      return original(...args);
    });
    const watched = soloFolderSync(t2.ctx, { watch: true });
    try {
      await watched.start();
      await watched.settle();
      expect(spy).toHaveBeenCalledTimes(1);
      expect(t2.store.getLocal('f2', 'doc.txt')?.record.size).toBe('second, longer'.length);
    } finally {
      spy.mockRestore();
      await watched.stop();
      t2.cleanup();
    }
  });
});
