/**
 * Helpers shared by the engine's unit tests: hand-made records and block lists, a silent
 * logger, and a throw-away folder (temp directory + index database) wired into a
 * FolderContext. Not used by production code.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import type { BlockRef, FileRecord } from '../core/file-record.js';
import { SqliteIndexStore } from '../index-store/sqlite-index-store.js';
import type { FolderContext, Logger } from './folder-context.js';
import { FolderSync } from './folder-sync.js';
import { FolderPaths } from './folder-paths.js';
import { IgnoreRules } from './ignore-rules.js';
import { Versioner } from './versioner.js';

export const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();

/** Seeded pseudo-random bytes, so a failure reproduces. */
export function seededBytes(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let s = seed >>> 0;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Cuts `data` into blocks of the given sizes (the last takes the rest when sizes run out). */
export function blocksOf(data: Buffer, sizes: readonly number[]): BlockRef[] {
  const out: BlockRef[] = [];
  let at = 0;
  for (const size of sizes) {
    if (at >= data.length) break;
    const piece = data.subarray(at, Math.min(data.length, at + size));
    out.push({ hash: sha256(piece), size: piece.length });
    at += piece.length;
  }
  if (at < data.length) {
    const piece = data.subarray(at);
    out.push({ hash: sha256(piece), size: piece.length });
  }
  return out;
}

/** A live file record with sensible defaults. */
export function fileRecord(path: string, overrides: Partial<FileRecord> = {}): FileRecord {
  return {
    path,
    type: 'file',
    size: 0,
    mtimeMs: 1_700_000_000_000,
    mode: 0o644,
    deleted: false,
    version: { AAAAAAA: 1 },
    modifiedBy: 'AAAAAAA',
    sequence: 1,
    blocks: [],
    ...overrides,
  };
}

/** A file record whose blocks describe `data`. */
export function recordFor(path: string, data: Buffer, sizes: readonly number[], overrides: Partial<FileRecord> = {}): FileRecord {
  const blocks = blocksOf(data, sizes);
  return fileRecord(path, { size: data.length, blocks, ...overrides });
}

export class RecordingLogger implements Logger {
  readonly lines: { level: string; obj: object | string; msg?: string }[] = [];
  debug(obj: object | string, msg?: string): void {
    this.lines.push({ level: 'debug', obj, msg });
  }
  info(obj: object | string, msg?: string): void {
    this.lines.push({ level: 'info', obj, msg });
  }
  warn(obj: object | string, msg?: string): void {
    this.lines.push({ level: 'warn', obj, msg });
  }
  error(obj: object | string, msg?: string): void {
    this.lines.push({ level: 'error', obj, msg });
  }
}

export interface TestFolder {
  /** The temp directory holding the folder root, the database and an "outside" directory. */
  readonly base: string;
  readonly root: string;
  readonly outside: string;
  readonly dbFile: string;
  readonly store: SqliteIndexStore;
  readonly ctx: FolderContext;
  readonly logger: RecordingLogger;
  /** Reloads .ferryignore into the context. */
  reloadIgnore(): void;
  cleanup(): void;
}

export function makeTestFolder(folderId = 'f1', shortId = 'LOCAL01'): TestFolder {
  const base = realpathSync(mkdtempSync(join(tmpdir(), 'ferry-test-')));
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  const dbFile = join(base, 'index.db');
  const store = SqliteIndexStore.open(dbFile);
  store.addFolder(folderId, root);
  const logger = new RecordingLogger();
  const ctx: FolderContext = {
    folderId,
    root,
    store,
    shortId,
    paths: new FolderPaths(root),
    versioner: new Versioner(root, 30),
    logger,
    ignore: IgnoreRules.load(root),
  };
  return {
    base,
    root,
    outside,
    dbFile,
    store,
    ctx,
    logger,
    reloadIgnore: () => {
      ctx.ignore = IgnoreRules.load(root);
    },
    cleanup: () => {
      try {
        store.close();
      } catch {
        // already closed
      }
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** A folder that shares with nobody (no peer ever fetches from it or for it), for scan and watcher tests. */
export function soloFolderSync(ctx: FolderContext, options: { watch: boolean; clock?: Clock }): FolderSync {
  return new FolderSync(ctx, {
    ...(options.clock ? { clock: options.clock } : {}),
    devices: () => [],
    fetchBlock: () => ({ fetch: async () => ({ data: Buffer.alloc(0), from: '' }) }),
    onLocalChange: () => undefined,
    rescanSeconds: 3600,
    watch: options.watch,
  });
}
