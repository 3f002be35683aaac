import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listedStat, statTree } from './tree-stats.js';

let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-tree-'));
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('statTree', () => {
  it('lists every directory it descends into and states each entry as lstat does, on both threads', async () => {
    const dirs = ['', 'a', 'a/b', 'c', 'skip', 'skip/inner'];
    for (const d of dirs.slice(1)) mkdirSync(join(root, d));
    for (const d of dirs) for (let i = 0; i < 700; i++) writeFileSync(join(root, d, `f${i}`), 'x'.repeat(i));
    symlinkSync('a/f1', join(root, 'link'));

    const listed = await statTree(root, (path) => path === 'skip');
    expect([...listed.keys()].sort()).toEqual(['', 'a', 'a/b', 'c']);
    for (const [dir, entry] of listed) {
      expect(entry.names.length).toBe(700 + (dir === '' ? 4 : dir === 'a' ? 1 : 0));
      for (const [i, name] of entry.names.entries()) {
        const want = lstatSync(join(root, dir, name));
        const got = listedStat(entry, i)!;
        expect({ size: got.size, mtimeMs: got.mtimeMs, ctimeMs: got.ctimeMs, ino: got.ino, mode: got.mode }).toEqual({
          size: want.size, mtimeMs: want.mtimeMs, ctimeMs: want.ctimeMs, ino: want.ino, mode: want.mode,
        });
        expect([got.isFile(), got.isDirectory(), got.isSymbolicLink()]).toEqual([want.isFile(), want.isDirectory(), want.isSymbolicLink()]);
      }
    }
  });

  it('leaves out a directory it cannot list and an entry it cannot state', async () => {
    writeFileSync(join(root, 'file'), 'x');
    const listed = await statTree(join(root, 'missing'), () => false);
    expect(listed.size).toBe(0);
    const entry = (await statTree(root, () => false)).get('')!;
    expect(entry.names).toEqual(['file']);
    rmSync(join(root, 'file'));
    expect(listedStat({ names: ['file'], numbers: new Float64Array(5).fill(NaN) }, 0)).toBeUndefined();
  });
});
