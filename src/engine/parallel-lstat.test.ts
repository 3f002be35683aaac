import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lstatMany } from './parallel-lstat.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-lstat-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('lstatMany', () => {
  for (const count of [10, 5001]) {
    it(`gives each path's lstat in order, undefined for a missing one (${count} paths${count > 4000 ? ', on worker threads' : ''})`, async () => {
      const base = join(dir, String(count));
      mkdirSync(base);
      const paths: string[] = [];
      for (let i = 0; i < count; i++) {
        const p = join(base, `f${i}`);
        if (i % 7 === 3) paths.push(`${p}-missing`);
        else if (i % 11 === 5) {
          symlinkSync('does-not-exist', p);
          paths.push(p);
        } else {
          writeFileSync(p, 'x'.repeat(i % 50));
          paths.push(p);
        }
      }
      paths.push(join(base, 'f0', 'under-a-file')); // ENOTDIR: an error, not "missing"
      const table = await lstatMany(paths);
      paths.forEach((p, i) => {
        const got = table.at(i);
        if (i === paths.length - 1) {
          expect(got).toBeInstanceOf(Error);
          expect((got as Error).message).toContain('ENOTDIR');
          return;
        }
        const want = lstatSync(p, { throwIfNoEntry: false });
        if (!want) return expect(got, p).toBeUndefined();
        expect(got, p).toEqual({ mode: want.mode, size: want.size, mtimeMs: want.mtimeMs, ctimeMs: want.ctimeMs, ino: want.ino });
      });
    });
  }
});
