import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseVersionName, Versioner, VERSIONS_DIR } from './versioner.js';

let base: string;
let root: string;
let versioner: Versioner;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'ferry-versions-'));
  root = join(base, 'root');
  mkdirSync(root);
  versioner = new Versioner(root, 30);
});

afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

function put(rel: string, text: string): string {
  const abs = join(root, rel);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, text);
  return abs;
}

const at = (iso: string) => new Date(iso);

describe('version names', () => {
  it('give back the file name, the time and the tie-breaker; other names are not versions', () => {
    expect(parseVersionName('b~20261121-143005.txt')).toEqual({ name: 'b.txt', atMs: Date.UTC(2026, 10, 21, 14, 30, 5), n: 0 });
    expect(parseVersionName('archive.tar~20261121-143005-2.gz')).toMatchObject({ name: 'archive.tar.gz', n: 2 });
    expect(parseVersionName('Makefile~20261121-143005')).toMatchObject({ name: 'Makefile' });
    expect(parseVersionName('.bashrc~20261121-143005')).toMatchObject({ name: '.bashrc' });
    expect(parseVersionName('x~1~20261121-143005.md')).toMatchObject({ name: 'x~1.md' });
    for (const other of ['notes.txt', '~20261121-143005.txt', 'b~2026112-143005.txt', 'b~20261321-143005.txt']) expect(parseVersionName(other)).toBeUndefined();
  });
});

describe('listing', () => {
  it('lists every version by path, newest first, with sizes; of a file, or of everything under a directory', () => {
    const t1 = at('2026-12-01T10:00:00Z');
    const t2 = at('2026-12-02T11:30:00Z');
    versioner.archive(put('a.txt', 'one'), 'a.txt', t1);
    versioner.archive(put('a.txt', 'two!'), 'a.txt', t2);
    versioner.archive(put('a.txt', 'three'), 'a.txt', t2); // same second: a tie-breaker
    versioner.archive(put('docs/deep/r.tar.gz', 'report'), 'docs/deep/r.tar.gz', t1);
    versioner.archive(put('docs.txt', 'not under docs/'), 'docs.txt', t1);
    writeFileSync(join(root, VERSIONS_DIR, 'stray.txt'), 'not a version');

    const all = versioner.list();
    expect(all.map((v) => [v.path, new Date(v.replacedAtMs).toISOString(), v.size])).toEqual([
      ['a.txt', '2026-12-02T11:30:00.000Z', 5],
      ['a.txt', '2026-12-02T11:30:00.000Z', 4],
      ['a.txt', '2026-12-01T10:00:00.000Z', 3],
      ['docs.txt', '2026-12-01T10:00:00.000Z', 15],
      ['docs/deep/r.tar.gz', '2026-12-01T10:00:00.000Z', 6],
    ]);
    expect(readFileSync(join(root, all[0]!.stored), 'utf8')).toBe('three');
    expect(versioner.list('docs').map((v) => v.path)).toEqual(['docs/deep/r.tar.gz']);
    expect(versioner.list('docs/deep/r.tar.gz').map((v) => v.stored)).toEqual([`${VERSIONS_DIR}/docs/deep/r.tar~20261201-100000.gz`]);
    expect(versioner.list('nothing/here')).toEqual([]);
    expect(() => versioner.list('../outside')).toThrow(/\.\./);
  });
});

describe('restoring', () => {
  it('puts a copy back as a new edit; what was there is kept as a version; the version stays', async () => {
    versioner.archive(put('a.txt', 'the old text'), 'a.txt', at('2026-12-01T10:00:00Z'));
    const current = put('a.txt', 'what replaced it');
    const inodeBefore = statSync(current).ino;
    const [old] = versioner.list('a.txt');
    const now = at('2026-12-07T18:00:00Z');
    const { kept } = await versioner.restore(old!, now);

    expect(readFileSync(join(root, 'a.txt'), 'utf8')).toBe('the old text');
    expect(statSync(join(root, 'a.txt')).mtimeMs).toBe(now.getTime());
    expect(kept).toBe(`${VERSIONS_DIR}/a~20261207-180000.txt`);
    expect(readFileSync(join(root, kept!), 'utf8')).toBe('what replaced it');
    expect(statSync(join(root, kept!)).ino).toBe(inodeBefore); // the very file, linked: never a moment without a.txt
    expect(readFileSync(join(root, old!.stored), 'utf8')).toBe('the old text');
    expect(readdirSync(root).filter((n) => n.startsWith('.ferry.tmp'))).toEqual([]);
  });

  it('brings back a deleted file with its directories', async () => {
    versioner.archive(put('gone/with/it.txt', 'deleted by a peer'), 'gone/with/it.txt', at('2026-12-01T10:00:00Z'));
    rmSync(join(root, 'gone'), { recursive: true });
    const { kept } = await versioner.restore(versioner.list('gone')[0]!);
    expect(kept).toBeUndefined();
    expect(readFileSync(join(root, 'gone/with/it.txt'), 'utf8')).toBe('deleted by a peer');
  });

  it('refuses when a directory is in the way, or a parent is a link out of the folder, and changes nothing', async () => {
    versioner.archive(put('d/x.txt', 'x'), 'd/x.txt', at('2026-12-01T10:00:00Z'));
    const [x] = versioner.list('d/x.txt');
    mkdirSync(join(root, 'd/x.txt'));
    await expect(versioner.restore(x!)).rejects.toThrow(/is a directory now/);
    rmSync(join(root, 'd'), { recursive: true });
    mkdirSync(join(base, 'outside'));
    symlinkSync(join(base, 'outside'), join(root, 'd'));
    await expect(versioner.restore(x!)).rejects.toThrow(/symlink/);
    expect(readdirSync(join(base, 'outside'))).toEqual([]);
    expect(lstatSync(join(root, 'd')).isSymbolicLink()).toBe(true);
    expect(existsSync(join(root, x!.stored))).toBe(true);
  });
});
