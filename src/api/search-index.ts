/**
 * Search over file names and the contents of text files, for `ferry find`: an SQLite FTS5
 * index (trigram tokenizer: case-insensitive substring search, queries of 3 characters or
 * more) kept up to date from the node's index, not by scanning per query. `update` follows
 * each folder's records by sequence number, as a peer does, and re-reads only files whose
 * record changed. Text means at most MAX_TEXT_BYTES, no NUL byte and valid UTF-8; other
 * files are found by name only.
 *
 * The search index lives in its own database (`search.db` beside `index.db`): it is derived
 * data that can be large (it stores the text, to show matching lines), and deleting it only
 * costs a rebuild. Its schema is versioned by `user_version`; another version is dropped and
 * rebuilt rather than migrated.
 */
import Database from 'better-sqlite3';
import { open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { isInternalPath } from '../core/paths.js';
import { FolderPaths } from '../engine/folder-paths.js';
import type { FolderConfig } from '../index-store/config-types.js';
import { openDatabase } from '../index-store/open-database.js';
import type { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import { ApiError } from './api-error.js';

export const MAX_TEXT_BYTES = 1024 * 1024;
const SCHEMA_VERSION = 1;
const BATCH = 500;
const MAX_LINES_PER_FILE = 20;
const MAX_LINE_CHARS = 240;

const SCHEMA = `
CREATE TABLE docs (
  id     INTEGER PRIMARY KEY,
  folder TEXT NOT NULL,
  path   TEXT NOT NULL,
  type   TEXT NOT NULL,
  UNIQUE (folder, path)
);
CREATE VIRTUAL TABLE search_text USING fts5(path, body, tokenize = 'trigram');
CREATE TABLE state (
  folder   TEXT PRIMARY KEY,
  index_id TEXT NOT NULL,
  sequence INTEGER NOT NULL
);
`;

export interface SearchHit {
  readonly folder: string;
  readonly path: string;
  readonly type: string;
  /** The text is in the file's name (or the path of its directory). */
  readonly nameMatch: boolean;
  /** Matching lines of a text file (1-based), at most MAX_LINES_PER_FILE. */
  readonly lines: { line: number; text: string }[];
}

export interface SearchQuery {
  readonly text: string;
  /** Folders the user may read. */
  readonly folders: readonly string[];
  /** Only under this folder/path. */
  readonly under?: { folder: string; path: string };
  readonly matchName?: (name: string) => boolean;
  readonly limit?: number;
}

type Row = Record<string, any>;

export class SearchIndex {
  private updating: Promise<void> | undefined;

  private constructor(private readonly db: Database.Database) {}

  static open(file: string): SearchIndex {
    const db = openDatabase(file);
    db.pragma('synchronous = NORMAL');
    if (db.pragma('user_version', { simple: true }) !== SCHEMA_VERSION) {
      db.transaction(() => {
        for (const t of ['search_text', 'docs', 'state']) db.exec(`DROP TABLE IF EXISTS ${t}`);
        db.exec(SCHEMA);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      })();
    }
    return new SearchIndex(db);
  }

  close(): void {
    this.db.close();
  }

  /** Brings every folder up to date (one run at a time; a call during a run waits for it). */
  async updateAll(index: SqliteIndexStore): Promise<void> {
    while (this.updating) await this.updating;
    this.updating = (async () => {
      const folders = index.listFolders();
      for (const f of folders) await this.updateFolder(index, f);
      const known = new Set(folders.map((f) => f.id));
      for (const r of this.db.prepare('SELECT folder FROM state').all() as Row[]) if (!known.has(r.folder)) this.dropFolder(r.folder);
    })();
    try {
      await this.updating;
    } finally {
      this.updating = undefined;
    }
  }

  private async updateFolder(index: SqliteIndexStore, folder: FolderConfig): Promise<void> {
    const state = this.db.prepare('SELECT index_id, sequence FROM state WHERE folder = ?').get(folder.id) as Row | undefined;
    let seq = 0;
    if (state && state.index_id === folder.indexId) seq = state.sequence;
    else this.dropFolder(folder.id);
    const paths = new FolderPaths(folder.path);
    for (;;) {
      const records = index.localSince(folder.id, seq, BATCH);
      if (records.length === 0) break;
      const docs: { path: string; type: string; live: boolean; body: string }[] = [];
      for (const r of records) {
        const live = !r.deleted && !isInternalPath(r.path);
        const body = live && r.type === 'file' && r.size <= MAX_TEXT_BYTES ? await readText(paths, r.path) : '';
        docs.push({ path: r.path, type: r.type, live, body });
        seq = Math.max(seq, r.sequence);
      }
      this.db.transaction(() => {
        for (const d of docs) {
          this.remove(folder.id, d.path);
          if (!d.live) continue;
          const id = this.db.prepare('INSERT INTO docs (folder, path, type) VALUES (?, ?, ?)').run(folder.id, d.path, d.type).lastInsertRowid;
          this.db.prepare('INSERT INTO search_text (rowid, path, body) VALUES (?, ?, ?)').run(id, d.path, d.body);
        }
        this.db.prepare('INSERT OR REPLACE INTO state (folder, index_id, sequence) VALUES (?, ?, ?)').run(folder.id, folder.indexId, seq);
      })();
    }
    if (!state) this.db.prepare('INSERT OR IGNORE INTO state (folder, index_id, sequence) VALUES (?, ?, ?)').run(folder.id, folder.indexId, seq);
  }

  search(q: SearchQuery): SearchHit[] {
    const text = q.text.trim();
    if ([...text].length < 3) throw new ApiError('INVALID_REQUEST', 'search for at least 3 characters');
    if (text.length > 200) throw new ApiError('INVALID_REQUEST', 'search for at most 200 characters');
    const folders = q.under ? q.folders.filter((f) => f === q.under!.folder) : [...q.folders];
    if (folders.length === 0) return [];
    const args: unknown[] = [`"${text.replace(/"/g, '""')}"`, ...folders];
    let where = `search_text MATCH ? AND d.folder IN (${folders.map(() => '?').join(',')})`;
    if (q.under && q.under.path !== '') {
      where += " AND (d.path = ? OR substr(d.path, 1, ?) = ? || '/')";
      args.push(q.under.path, q.under.path.length + 1, q.under.path);
    }
    const rows = this.db
      .prepare(`SELECT d.folder, d.path, d.type, t.body FROM search_text t JOIN docs d ON d.id = t.rowid WHERE ${where} ORDER BY d.folder, d.path`)
      .iterate(...args) as Iterable<Row>;
    const needle = text.toLowerCase();
    const limit = q.limit ?? 200;
    const hits: SearchHit[] = [];
    for (const r of rows) {
      const name = r.path.slice(r.path.lastIndexOf('/') + 1);
      if (q.matchName && (r.type === 'dir' || !q.matchName(name))) continue;
      hits.push({ folder: r.folder, path: r.path, type: r.type, nameMatch: r.path.toLowerCase().includes(needle), lines: matchingLines(r.body, needle) });
      if (hits.length >= limit) break;
    }
    return hits;
  }

  private remove(folder: string, path: string): void {
    const row = this.db.prepare('SELECT id FROM docs WHERE folder = ? AND path = ?').get(folder, path) as Row | undefined;
    if (!row) return;
    this.db.prepare('DELETE FROM search_text WHERE rowid = ?').run(row.id);
    this.db.prepare('DELETE FROM docs WHERE id = ?').run(row.id);
  }

  private dropFolder(folder: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM search_text WHERE rowid IN (SELECT id FROM docs WHERE folder = ?)').run(folder);
      this.db.prepare('DELETE FROM docs WHERE folder = ?').run(folder);
      this.db.prepare('DELETE FROM state WHERE folder = ?').run(folder);
    })();
  }
}

/** The file's text, or '' when it is missing, too large, binary or not UTF-8. */
async function readText(paths: FolderPaths, path: string): Promise<string> {
  try {
    const fh = await open(paths.resolve(path), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size > MAX_TEXT_BYTES) return '';
      const data = await fh.readFile();
      if (data.length > MAX_TEXT_BYTES || data.includes(0)) return '';
      return new TextDecoder('utf-8', { fatal: true }).decode(data);
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

function matchingLines(body: string, needle: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  if (!body) return out;
  const lines = body.split('\n');
  for (let i = 0; i < lines.length && out.length < MAX_LINES_PER_FILE; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    const at = line.toLowerCase().indexOf(needle);
    if (at < 0) continue;
    // Keep the match visible in long lines.
    const start = Math.max(0, Math.min(at - 60, line.length - MAX_LINE_CHARS));
    const text = (start > 0 ? '…' : '') + line.slice(start, start + MAX_LINE_CHARS) + (line.length > start + MAX_LINE_CHARS ? '…' : '');
    out.push({ line: i + 1, text });
  }
  return out;
}
