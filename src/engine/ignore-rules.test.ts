import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IgnoreRules } from './ignore-rules.js';

describe('IgnoreRules', () => {
  const roots: string[] = [];
  const folder = (ignoreFile?: string) => {
    const root = mkdtempSync(join(tmpdir(), 'ferry-ignore-'));
    roots.push(root);
    if (ignoreFile !== undefined) writeFileSync(join(root, '.ferryignore'), ignoreFile);
    return IgnoreRules.load(root);
  };
  afterEach(() => {
    for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
  });

  it('ignores built-in scratch names and Ferry names at any depth, and everything below them', () => {
    const rules = folder();
    for (const p of ['.DS_Store', 'a/b/Thumbs.db', 'desktop.ini', 'x/.notes.txt.swp', 'f.swx', '.~lock.report.odt#', '~$budget.xlsx',
      '.ferry-versions/a.txt', 'd/.ferry.tmp.0123456789abcdef', '.ferryignore', 'a/.DS_Store/inner', 'a/b.swp/c']) {
      expect(rules.ignores(p), p).toBe(true);
    }
    for (const p of ['notes.txt', 'a/b/c.txt', 'swp', 'x.swpx', 'ferry.txt', 'a.ferry', 'my.DS_Store', 'Thumbs.db.bak', '~budget', '.~lock.x']) {
      expect(rules.ignores(p), p).toBe(false);
    }
  });

  it('applies the .ferryignore in gitignore syntax, directories included', () => {
    const rules = folder('build/\n*.log\n/top-only.txt\n!keep.log\n');
    expect(rules.ignores('build', true)).toBe(true);
    expect(rules.ignores('src/build', true)).toBe(true);
    expect(rules.ignores('build', false)).toBe(false);
    expect(rules.ignores('a/b/debug.log')).toBe(true);
    expect(rules.ignores('keep.log')).toBe(false);
    expect(rules.ignores('top-only.txt')).toBe(true);
    expect(rules.ignores('sub/top-only.txt')).toBe(false);
    expect(rules.ignores('x.DS_Store.txt')).toBe(false);
    expect(rules.ignores('.DS_Store')).toBe(true);
  });
});
