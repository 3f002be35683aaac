import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyFileSafely } from './copy-file.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-copy-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('copyFileSafely', () => {
  it('copies bytes and mode, never over an existing file, and says ENOENT for a missing one', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 5);
    writeFileSync(join(dir, 'src'), data);
    chmodSync(join(dir, 'src'), 0o640);
    await copyFileSafely(join(dir, 'src'), join(dir, 'a'));
    expect(readFileSync(join(dir, 'a')).equals(data)).toBe(true);
    expect(statSync(join(dir, 'a')).mode & 0o777).toBe(0o640);
    writeFileSync(join(dir, 'taken'), 'mine');
    await expect(copyFileSafely(join(dir, 'src'), join(dir, 'taken'))).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(join(dir, 'taken'), 'utf8')).toBe('mine');
    await expect(copyFileSafely(join(dir, 'missing'), join(dir, 'c'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('ends when the source shrinks during the copy (Node’s copyFile spins for ever in that case)', async () => {
    const size = 256 * 1024 * 1024;
    for (let round = 0; round < 3; round++) {
      const src = join(dir, `big-${round}`);
      writeFileSync(src, Buffer.alloc(size, round + 1));
      const copying = copyFileSafely(src, join(dir, `copy-${round}`));
      await new Promise((r) => setTimeout(r, 5 + round * 10));
      truncateSync(src, 1024 * 1024);
      await copying; // a hang here is the bug
      const copied = readFileSync(join(dir, `copy-${round}`));
      expect(copied.length).toBeLessThanOrEqual(size);
      expect(copied.every((b) => b === round + 1)).toBe(true);
    }
  }, 30_000);
});
