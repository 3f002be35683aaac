import { describe, expect, it } from 'vitest';
import { checkRelativePath, parentPath } from '../core/paths.js';
import { conflictCopyPath, isConflictCopy } from './conflict-name.js';
import { fileRecord } from './test-support.js';

// 2026-11-21T14:30:05.789Z
const MTIME = Date.UTC(2026, 10, 21, 14, 30, 5, 789);
const loser = (path: string, modifiedBy = 'ABCDEF1', mtimeMs = MTIME) => fileRecord(path, { modifiedBy, mtimeMs });

describe('conflictCopyPath', () => {
  it('inserts the marker, UTC stamp of the loser mtime and its device before the extension', () => {
    expect(conflictCopyPath(loser('report.txt'))).toBe('report.sync-conflict-20261121-143005-ABCDEF1.txt');
  });

  it('names without an extension get the marker at the end', () => {
    expect(conflictCopyPath(loser('Makefile'))).toBe('Makefile.sync-conflict-20261121-143005-ABCDEF1');
  });

  it('dotfiles keep their leading dot as part of the name, not an extension', () => {
    expect(conflictCopyPath(loser('.bashrc'))).toBe('.bashrc.sync-conflict-20261121-143005-ABCDEF1');
    expect(conflictCopyPath(loser('.config.json'))).toBe('.config.sync-conflict-20261121-143005-ABCDEF1.json');
  });

  it('multi-dot names: only the last extension is kept after the marker', () => {
    expect(conflictCopyPath(loser('archive.tar.gz'))).toBe('archive.tar.sync-conflict-20261121-143005-ABCDEF1.gz');
  });

  it('a trailing dot is not an extension', () => {
    expect(conflictCopyPath(loser('odd.'))).toBe('odd..sync-conflict-20261121-143005-ABCDEF1');
  });

  it('stays in the same directory, and a dot in a directory name is not an extension', () => {
    const copy = conflictCopyPath(loser('a/b.d/notes'));
    expect(copy).toBe('a/b.d/notes.sync-conflict-20261121-143005-ABCDEF1');
    expect(parentPath(copy)).toBe('a/b.d');
    expect(conflictCopyPath(loser('x/y/z/photo.jpeg'))).toBe('x/y/z/photo.sync-conflict-20261121-143005-ABCDEF1.jpeg');
  });

  it('the same loser always gets the same name; another device or time gets another', () => {
    const a = conflictCopyPath(loser('dir/file.txt'));
    expect(conflictCopyPath(loser('dir/file.txt'))).toBe(a);
    expect(conflictCopyPath({ ...loser('dir/file.txt'), sequence: 99, version: { Z: 9 } })).toBe(a);
    expect(conflictCopyPath(loser('dir/file.txt', 'ZZZZZZZ'))).not.toBe(a);
    expect(conflictCopyPath(loser('dir/file.txt', 'ABCDEF1', MTIME + 1000))).not.toBe(a);
  });

  it('uses UTC whatever the sub-second part', () => {
    expect(conflictCopyPath(loser('f', 'ABCDEF1', Date.UTC(2001, 0, 2, 3, 4, 5, 999.9)))).toBe('f.sync-conflict-20010102-030405-ABCDEF1');
  });

  it('results are valid relative paths recognised as conflict copies', () => {
    for (const p of ['report.txt', 'Makefile', '.bashrc', 'archive.tar.gz', 'a/b.d/notes', 'Ünï/cödé.txt']) {
      const copy = conflictCopyPath(loser(p));
      expect(checkRelativePath(copy)).toBe(copy);
      expect(isConflictCopy(copy)).toBe(true);
      expect(isConflictCopy(p)).toBe(false);
    }
  });

  // BUG (path escape): modifiedBy comes from peers (messages.ts only checks it is a string of
  // at most 64 characters without NUL, and records applied from a peer keep it), and
  // conflictCopyPath pastes it into the name unchecked. Puller.apply then does
  // renameSync(abs, join(root, copy)), and join() resolves the '..' components: a peer can
  // make a node move its local file outside the folder.
  it('a modifiedBy containing "/" or ".." cannot move the copy out of its directory', () => {
    const copy = conflictCopyPath(loser('dir/report.txt', 'x/../../../../../tmp/pwned'));
    expect(parentPath(copy)).toBe('dir');
    expect(checkRelativePath(copy)).toBe(copy);
  });

  // BUG: the marker adds 31+ bytes, so a 230..255-byte name produces a copy name over the
  // 255-byte limit: renameSync fails with ENAMETOOLONG and the conflict can never be resolved.
  it('a long (but valid) name still gives a valid conflict-copy name', () => {
    const name = 'n'.repeat(250) + '.txt';
    expect(checkRelativePath(name)).toBe(name);
    const copy = conflictCopyPath(loser(`d/${name}`));
    expect(checkRelativePath(copy)).toBe(copy);
    expect(isConflictCopy(copy)).toBe(true);
  });
});
