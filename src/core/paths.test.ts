import { describe, expect, it } from 'vitest';
import { isFerryError } from './errors.js';
import {
  baseName,
  checkRelativePath,
  isInternalPath,
  isValidRelativePath,
  MAX_NAME_BYTES,
  MAX_PATH_BYTES,
  parentPath,
  pathDepth,
} from './paths.js';

function invalidReason(path: unknown): string {
  try {
    checkRelativePath(path);
  } catch (err) {
    expect(isFerryError(err, 'INVALID_PATH')).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(path)}`);
}

describe('checkRelativePath', () => {
  it('accepts normal, nested, dotted and Unicode paths unchanged', () => {
    for (const p of ['a', 'a.txt', 'dir/sub/file.txt', '.hidden', 'a/.b/c', '...', 'a/..b/c..', 'name with spaces', 'Ünïcödé/日本語/файл.txt', '😀/x']) {
      expect(checkRelativePath(p)).toBe(p);
      expect(isValidRelativePath(p)).toBe(true);
    }
  });

  it('returns the NFC form of an NFD path', () => {
    const nfd = 'cafe\u0301/re\u0301sume\u0301.txt';
    const nfc = 'caf\u00e9/r\u00e9sum\u00e9.txt';
    expect(nfd).not.toBe(nfc);
    expect(checkRelativePath(nfd)).toBe(nfc);
    expect(checkRelativePath(nfc)).toBe(nfc);
  });

  it('rejects empty, dot and dot-dot components', () => {
    expect(invalidReason('')).toMatch(/empty/);
    expect(invalidReason('..')).toMatch(/'\.\.'/);
    expect(invalidReason('.')).toMatch(/'\.'/);
    expect(invalidReason('a/../b')).toMatch(/'\.\.'/);
    expect(invalidReason('a/..')).toMatch(/'\.\.'/);
    expect(invalidReason('../a')).toMatch(/'\.\.'/);
    expect(invalidReason('a/./b')).toMatch(/'\.'/);
    expect(invalidReason('a//b')).toMatch(/empty component/);
    expect(invalidReason('a/')).toMatch(/empty component/);
  });

  it('rejects absolute and drive-letter paths', () => {
    expect(invalidReason('/abs')).toMatch(/absolute/);
    expect(invalidReason('/')).toMatch(/absolute/);
    expect(invalidReason('C:x')).toMatch(/absolute/);
    expect(invalidReason('c:/x')).toMatch(/absolute/);
  });

  it('rejects NUL and backslashes', () => {
    expect(invalidReason('a\0b')).toMatch(/NUL/);
    expect(invalidReason('a\\b')).toMatch(/backslash/);
    expect(invalidReason('..\\..\\etc')).toMatch(/backslash/);
  });

  it('rejects non-strings', () => {
    for (const v of [undefined, null, 1, ['a'], { path: 'a' }]) {
      expect(invalidReason(v)).toMatch(/not a string/);
      expect(isValidRelativePath(v)).toBe(false);
    }
  });

  it('limits names to 255 bytes (UTF-8) and paths to 4096 bytes', () => {
    expect(checkRelativePath('n'.repeat(MAX_NAME_BYTES))).toHaveLength(255);
    expect(invalidReason('n'.repeat(MAX_NAME_BYTES + 1))).toMatch(/255/);
    // 128 two-byte characters = 256 bytes although only 128 UTF-16 units
    expect(invalidReason('é'.repeat(128))).toMatch(/255/);
    expect(checkRelativePath('é'.repeat(127))).toHaveLength(127);

    const name = 'd'.repeat(99);
    const parts = Array.from({ length: 40 }, () => name); // 40*99 + 39 = 3999 bytes
    const ok = parts.join('/') + '/' + 'f'.repeat(MAX_PATH_BYTES - 4000);
    expect(Buffer.byteLength(ok)).toBe(MAX_PATH_BYTES);
    expect(checkRelativePath(ok)).toBe(ok);
    expect(invalidReason(ok + 'x')).toMatch(/4096/);
  });

  it('error carries the path in its data', () => {
    try {
      checkRelativePath('a/../b');
      expect.unreachable();
    } catch (err) {
      expect(isFerryError(err, 'INVALID_PATH')).toBe(true);
      expect((err as { data: { path: string } }).data.path).toBe('a/../b');
    }
  });
});

describe('isInternalPath', () => {
  it('is true when any component starts with .ferry', () => {
    for (const p of ['.ferry', '.ferry-versions/a.txt', 'a/.ferry.tmp.0123', '.ferryignore', 'x/y/.ferrything/z']) {
      expect(isInternalPath(p)).toBe(true);
    }
  });

  it('is false for ordinary names, including ones merely containing "ferry"', () => {
    for (const p of ['ferry', 'a/ferry.txt', 'a.ferry', 'x/.fer', 'my.ferry-notes']) {
      expect(isInternalPath(p)).toBe(false);
    }
  });
});

describe('path helpers', () => {
  it('parentPath, baseName and pathDepth', () => {
    expect(parentPath('a')).toBeUndefined();
    expect(parentPath('a/b/c')).toBe('a/b');
    expect(baseName('a/b/c.txt')).toBe('c.txt');
    expect(baseName('c.txt')).toBe('c.txt');
    expect(pathDepth('a')).toBe(1);
    expect(pathDepth('a/b/c')).toBe(3);
  });
});
