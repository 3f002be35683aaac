/**
 * The search index against a real index database and folder on disk: it follows the index's
 * records by sequence (new, changed, deleted files), reads only text files, and answers
 * name and content queries with line numbers, limited to the folders and paths asked for.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileRecord } from '../core/file-record.js';
import { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import { SearchIndex } from './search-index.js';
import { typeMatcher } from './listing.js';

let dir: string;
let root: string;
let index: SqliteIndexStore;
let search: SearchIndex;

/** Writes a file and commits a record for it, as a scan would. */
function put(path: string, content: string | Buffer): void {
  const abs = join(root, path);
  mkdirSync(join(abs, '..'), { recursive: true });
  writeFileSync(abs, content);
  commit(path, { deleted: false, size: Buffer.byteLength(content) });
}

function commit(path: string, r: { deleted: boolean; size: number; type?: FileRecord['type'] }): void {
  const record: FileRecord = { path, type: r.type ?? 'file', size: r.size, mtimeMs: Date.now(), mode: 0o644, deleted: r.deleted, version: { A: 1 }, modifiedBy: 'A', sequence: 0, blocks: [] };
  index.commitLocal('docs', [{ record, scannedAtMs: 0, chunkAvg: 0 }]);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-search-'));
  root = join(dir, 'docs');
  mkdirSync(root);
  index = SqliteIndexStore.open(join(dir, 'index.db'));
  index.addFolder('docs', root);
  index.addFolder('other', join(dir, 'other'));
  search = SearchIndex.open(join(dir, 'search.db'));
});

afterEach(() => {
  search.close();
  index.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('SearchIndex', () => {
  it('finds names and text, case-insensitively, with line numbers', async () => {
    put('notes/Meeting.md', '# Agenda\nbudget for Q3\nnothing else\nBUDGET again\n');
    put('budget.xlsx', Buffer.from([0x50, 0x4b, 0, 1, 2, 3]));
    put('readme.txt', 'no match here\n');
    await search.updateAll(index);
    const hits = search.search({ text: 'budget', folders: ['docs'] });
    expect(hits.map((h) => [h.path, h.nameMatch, h.lines.map((l) => l.line)])).toEqual([
      ['budget.xlsx', true, []],
      ['notes/Meeting.md', false, [2, 4]],
    ]);
    expect(hits[1]!.lines[0]!.text).toBe('budget for Q3');
    expect(search.search({ text: 'meeting', folders: ['docs'] }).map((h) => h.path)).toEqual(['notes/Meeting.md']);
  });

  it('follows edits and deletions incrementally', async () => {
    put('a.txt', 'the old words\n');
    await search.updateAll(index);
    expect(search.search({ text: 'old words', folders: ['docs'] })).toHaveLength(1);
    put('a.txt', 'the new words\n');
    await search.updateAll(index);
    expect(search.search({ text: 'old words', folders: ['docs'] })).toEqual([]);
    expect(search.search({ text: 'new words', folders: ['docs'] }).map((h) => h.path)).toEqual(['a.txt']);
    commit('a.txt', { deleted: true, size: 0 });
    await search.updateAll(index);
    expect(search.search({ text: 'new words', folders: ['docs'] })).toEqual([]);
  });

  it('limits results to the folders, path and type asked for; refuses short queries', async () => {
    put('x/one.md', 'shared phrase\n');
    put('y/two.txt', 'shared phrase\n');
    await search.updateAll(index);
    expect(search.search({ text: 'shared', folders: ['other'] })).toEqual([]);
    expect(search.search({ text: 'shared', folders: ['docs'], under: { folder: 'docs', path: 'x' } }).map((h) => h.path)).toEqual(['x/one.md']);
    expect(search.search({ text: 'shared', folders: ['docs'], matchName: typeMatcher('txt') }).map((h) => h.path)).toEqual(['y/two.txt']);
    expect(search.search({ text: 'shared', folders: ['docs'], limit: 1 })).toHaveLength(1);
    expect(() => search.search({ text: 'ab', folders: ['docs'] })).toThrow(/at least 3/);
    expect(search.search({ text: 'say "hi"', folders: ['docs'] })).toEqual([]);
  });

  it('skips files over the size limit and files that are not UTF-8', async () => {
    put('big.txt', 'needle ' + 'x'.repeat(1024 * 1024));
    put('latin1.txt', Buffer.from('needle caf\xe9', 'latin1'));
    await search.updateAll(index);
    expect(search.search({ text: 'needle', folders: ['docs'] })).toEqual([]);
  });
});
