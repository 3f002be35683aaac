import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FOLDER_MARKER, folderUnavailable } from './folder-marker.js';

let base: string;
let root: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'ferry-marker-'));
  root = join(base, 'root');
  mkdirSync(root);
});

afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('folder marker', () => {
  it('is created in a folder with nothing indexed yet, which is then available', () => {
    expect(folderUnavailable(root, () => false)).toBeUndefined();
    expect(readFileSync(join(root, FOLDER_MARKER), 'utf8')).toMatch(/Ferry syncs/);
    expect(folderUnavailable(root, () => true)).toBeUndefined(); // present now: synced or not
  });

  it('missing from a folder synced before makes it unavailable, and is not created', () => {
    const problem = folderUnavailable(root, () => true);
    expect(problem).toMatch(/\.ferry-folder is missing.*mount.*touch/);
    expect(existsSync(join(root, FOLDER_MARKER))).toBe(false);
  });

  it('a folder path that is gone or not a directory is unavailable, and nothing is created', () => {
    rmSync(root, { recursive: true });
    expect(folderUnavailable(root, () => false)).toMatch(/not reachable.*ENOENT/);
    expect(existsSync(root)).toBe(false);
    writeFileSync(root, 'a file');
    expect(folderUnavailable(root, () => false)).toMatch(/not a directory/);
  });

  it('a folder path that is a symlink to a directory is followed', () => {
    const link = join(base, 'link');
    symlinkSync(root, link);
    expect(folderUnavailable(link, () => false)).toBeUndefined();
    expect(existsSync(join(root, FOLDER_MARKER))).toBe(true);
  });
});
