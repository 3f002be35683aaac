import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isFerryError } from '../core/errors.js';
import type { BlockRef, FileRecord } from '../core/file-record.js';
import { SqliteIndexStore, type LocalEntry } from './sqlite-index-store.js';

const sha = (s: string) => createHash('sha256').update(s).digest();
const blk = (s: string, size: number): BlockRef => ({ hash: sha(s), size });

function rec(path: string, overrides: Partial<FileRecord> = {}): FileRecord {
  return {
    path,
    type: 'file',
    size: 0,
    mtimeMs: 1_700_000_000_123.25,
    mode: 0o644,
    deleted: false,
    version: { AAAAAAA: 1 },
    modifiedBy: 'AAAAAAA',
    sequence: 0,
    blocks: [],
    ...overrides,
  };
}

function fileWith(path: string, blocks: BlockRef[], overrides: Partial<FileRecord> = {}): FileRecord {
  return rec(path, { blocks, size: blocks.reduce((n, b) => n + b.size, 0), ...overrides });
}

const entry = (record: FileRecord, extra: Partial<LocalEntry> = {}): LocalEntry => ({
  record,
  stat: { size: record.size, mtimeMs: record.mtimeMs, ctimeMs: 1_700_000_001_000.5, ino: 1234 },
  scannedAtMs: 1_700_000_002_000,
  chunkAvg: 131072,
  ...extra,
});

function expectFerry(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    expect(isFerryError(err), String(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    return;
  }
  throw new Error('did not throw');
}

let dir: string;
let file: string;
let store: SqliteIndexStore;
const others: SqliteIndexStore[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-store-'));
  file = join(dir, 'index.db');
  store = SqliteIndexStore.open(file);
});

afterEach(() => {
  for (const s of others.splice(0)) {
    try {
      s.close();
    } catch {
      // closed by the test
    }
  }
  try {
    store.close();
  } catch {
    // closed by the test
  }
  rmSync(dir, { recursive: true, force: true });
});

function openAnother(): SqliteIndexStore {
  const s = SqliteIndexStore.open(file);
  others.push(s);
  return s;
}

describe('schema', () => {
  it('migrations create every table and set user_version', () => {
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(7);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
      expect(tables).toEqual(
        [
          'block_map', 'files', 'folder_devices', 'folders', 'meta', 'peers', 'pending_devices', 'remote_files', 'remote_index', 'runtime_status',
          // 002-remote-access.sql
          'users', 'user_folders', 'api_tokens', 'audit_log', 'file_sha256',
          // 004-pending-folders.sql
          'pending_folders',
        ].sort(),
      );
      const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").all() as { name: string }[]).map((r) => r.name);
      expect(indexes).toEqual(expect.arrayContaining(['files_by_sequence', 'block_map_by_hash', 'block_map_by_file']));
    } finally {
      db.close();
    }
  });

  it('reopening runs no migration twice and keeps data', () => {
    store.addFolder('f', '/data/f');
    store.setMeta('k', 'v');
    store.commitLocal('f', [entry(fileWith('a', [blk('x', 10)]))]);
    store.close();
    store = SqliteIndexStore.open(file);
    expect(store.getMeta('k')).toBe('v');
    expect(store.listFolders().map((f) => f.id)).toEqual(['f']);
    expect(store.getLocal('f', 'a')?.record.sequence).toBe(1);
    expect(store.maxSequence('f')).toBe(1);
    expect(store.commitLocal('f', [entry(rec('b'))])[0]!.sequence).toBe(2);
  });
});

describe('meta and runtime status', () => {
  it('set, get and overwrite', () => {
    expect(store.getMeta('missing')).toBeUndefined();
    store.setMeta('a', '1');
    store.setMeta('a', '2');
    expect(store.getMeta('a')).toBe('2');
    expect(store.getStatus('s')).toBeUndefined();
    const before = Date.now();
    store.setStatus('s', { up: true, n: [1, 2] });
    const st = store.getStatus<{ up: boolean; n: number[] }>('s')!;
    expect(st.value).toEqual({ up: true, n: [1, 2] });
    expect(st.updatedAt).toBeGreaterThanOrEqual(before);
  });
});

describe('folders, peers and sharing', () => {
  it('addFolder stores defaults and a random 16-hex index ID', () => {
    const f = store.addFolder('photos', '/home/u/Photos');
    expect(f).toEqual({ id: 'photos', path: '/home/u/Photos', indexId: expect.stringMatching(/^[0-9a-f]{16}$/), versionsKeepDays: 30, rescanSeconds: 600, paused: false, mode: 'send-receive', devices: [] });
    const g = store.addFolder('docs', '/home/u/Docs');
    expect(g.indexId).not.toBe(f.indexId);
    expect(store.listFolders().map((x) => x.id)).toEqual(['docs', 'photos']);
    expect(store.getFolder('photos')).toEqual(f);
    expect(store.getFolder('nope')).toBeUndefined();
  });

  it('refuses a duplicate folder ID or path', () => {
    store.addFolder('photos', '/p');
    expectFerry(() => store.addFolder('photos', '/other'), 'ALREADY_EXISTS');
    expectFerry(() => store.addFolder('pics', '/p'), 'ALREADY_EXISTS');
    expect(store.listFolders()).toHaveLength(1);
  });

  it('refuses a folder inside another folder, or holding one', () => {
    store.addFolder('photos', '/home/u/Photos');
    expectFerry(() => store.addFolder('trip', '/home/u/Photos/2026/trip'), 'INVALID_PATH');
    expectFerry(() => store.addFolder('home', '/home/u'), 'INVALID_PATH');
    expectFerry(() => store.addFolder('root', '/'), 'INVALID_PATH');
    expect(store.addFolder('photos2', '/home/u/Photos2').path).toBe('/home/u/Photos2'); // a shared prefix is not nesting
    expect(store.listFolders().map((f) => f.id)).toEqual(['photos', 'photos2']);
  });

  it('updateFolder changes only the settings given; unknown is an error', () => {
    store.addFolder('docs', '/d', { versionsKeepDays: 30, rescanSeconds: 600 });
    expect(store.updateFolder('docs', { versionsKeepDays: 7 })).toMatchObject({ id: 'docs', path: '/d', versionsKeepDays: 7, rescanSeconds: 600 });
    expect(store.updateFolder('docs', { rescanSeconds: 60 })).toMatchObject({ versionsKeepDays: 7, rescanSeconds: 60 });
    expect(store.getFolder('docs')).toMatchObject({ versionsKeepDays: 7, rescanSeconds: 60, paused: false });
    expect(store.updateFolder('docs', { paused: true })).toMatchObject({ versionsKeepDays: 7, rescanSeconds: 60, paused: true });
    expect(store.updateFolder('docs', { rescanSeconds: 90 })).toMatchObject({ rescanSeconds: 90, paused: true });
    expect(store.updateFolder('docs', { paused: false }).paused).toBe(false);
    expect(store.updateFolder('docs', { mode: 'receive-only' })).toMatchObject({ mode: 'receive-only', rescanSeconds: 90, paused: false });
    expect(store.updateFolder('docs', { rescanSeconds: 60 }).mode).toBe('receive-only');
    expectFerry(() => store.updateFolder('docs', { mode: 'mirror' as never }), 'INVALID_CONFIG');
    expect(store.getFolder('docs')!.mode).toBe('receive-only');
    expect(store.addFolder('out', '/o', { mode: 'send-only' }).mode).toBe('send-only');
    expectFerry(() => store.addFolder('bad', '/b', { mode: 'both' as never }), 'INVALID_CONFIG');
    expect(store.getFolder('bad')).toBeUndefined();
    expectFerry(() => store.updateFolder('nope', { rescanSeconds: 5 }), 'UNKNOWN_FOLDER');
  });

  it('removeFolder removes the folder with its records, remote records and block map; unknown is an error', () => {
    store.addFolder('a', '/a');
    store.addFolder('b', '/b');
    store.commitLocal('a', [entry(fileWith('x', [blk('shared', 5)]))]);
    store.commitLocal('b', [entry(fileWith('y', [blk('shared', 5)]))]);
    store.resetRemote('a', 'PEER', 'idx');
    store.putRemote('a', 'PEER', [rec('r', { sequence: 3 })]);
    store.removeFolder('a');
    expect(store.getFolder('a')).toBeUndefined();
    expect(store.allLocal('a').size).toBe(0);
    expect(store.remoteFor('a', 'r')).toEqual([]);
    expect(store.remoteIndex('a', 'PEER')).toBeUndefined();
    expect(store.findBlock(sha('shared'))).toEqual([{ folder: 'b', path: 'y', offset: 0, size: 5 }]);
    expect(store.getLocal('b', 'y')).toBeDefined();
    expectFerry(() => store.removeFolder('a'), 'UNKNOWN_FOLDER');
  });

  it('upsertPeer adds, merges addresses without duplicates, keeps or updates the name, and clears pending', () => {
    store.notePendingDevice('DEV1', '10.0.0.1:22000');
    store.notePendingDevice('DEV2', '10.0.0.2:22000');
    expect(store.listPendingDevices().map((p) => p.deviceId)).toEqual(['DEV1', 'DEV2']);
    expect(store.upsertPeer('DEV1', ['h1:1'], 'laptop')).toEqual({ deviceId: 'DEV1', name: 'laptop', addresses: ['h1:1'], paused: false });
    expect(store.upsertPeer('DEV1', ['h2:2', 'h1:1'])).toEqual({ deviceId: 'DEV1', name: 'laptop', addresses: ['h1:1', 'h2:2'], paused: false });
    expect(store.upsertPeer('DEV1', [], 'work')).toEqual({ deviceId: 'DEV1', name: 'work', addresses: ['h1:1', 'h2:2'], paused: false });
    expect(store.listPendingDevices().map((p) => p.deviceId)).toEqual(['DEV2']);
    expect(store.listPeers()).toHaveLength(1);
  });

  it('setPeerPaused pauses and resumes a peer, which stays paused when its addresses change; unknown is an error', () => {
    store.upsertPeer('DEV1', ['h1:1'], 'laptop');
    expect(store.setPeerPaused('DEV1', true)).toMatchObject({ deviceId: 'DEV1', paused: true });
    expect(store.upsertPeer('DEV1', ['h2:2']).paused).toBe(true);
    expect(store.setPeerPaused('DEV1', false).paused).toBe(false);
    expectFerry(() => store.setPeerPaused('NOPE', true), 'UNKNOWN_DEVICE');
  });

  it('notePendingDevice replaces the address of a device already pending', () => {
    store.notePendingDevice('DEV', 'a:1');
    store.notePendingDevice('DEV', 'b:2');
    const pending = store.listPendingDevices();
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ deviceId: 'DEV', address: 'b:2' });
  });

  it('folders offered by peers are kept until shared or the peer is removed, at most 64 a peer; declined ones are not listed', () => {
    store.upsertPeer('DEV1', []);
    store.upsertPeer('DEV2', []);
    store.notePendingFolder('photos', 'DEV1');
    store.notePendingFolder('photos', 'DEV2');
    store.notePendingFolder('photos', 'DEV1'); // seen again: one entry
    expect(store.listPendingFolders().map((p) => [p.folderId, p.deviceId])).toEqual([['photos', 'DEV1'], ['photos', 'DEV2']]);
    // Declined: no longer listed, not even when offered again, but still there to accept.
    expect(store.declinePendingFolder('photos')).toBe(2);
    store.notePendingFolder('photos', 'DEV1');
    expect(store.listPendingFolders()).toEqual([]);
    expect(store.listPendingFolders({ declined: true })).toHaveLength(2);
    expect(store.declinePendingFolder('nothing')).toBe(0);
    store.addFolder('photos', '/data/photos');
    store.shareFolder('photos', 'DEV1');
    expect(store.listPendingFolders({ declined: true }).map((p) => p.deviceId)).toEqual(['DEV2']);
    store.removePeer('DEV2');
    expect(store.listPendingFolders({ declined: true })).toEqual([]);
    for (let i = 0; i < 70; i++) store.notePendingFolder(`f${String(i).padStart(2, '0')}`, 'DEV1');
    const held = store.listPendingFolders();
    expect(held).toHaveLength(64);
    expect(held.at(-1)!.folderId).toBe('f63'); // the first ones offered stay
  });

  it('removePeer of an unknown device is UNKNOWN_DEVICE', () => {
    expectFerry(() => store.removePeer('NOPE'), 'UNKNOWN_DEVICE');
  });

  it('shareFolder links a folder and a peer once; removing the peer unshares it', () => {
    store.addFolder('f', '/f');
    store.upsertPeer('DEV2', []);
    store.upsertPeer('DEV1', []);
    store.shareFolder('f', 'DEV2');
    store.shareFolder('f', 'DEV1');
    store.shareFolder('f', 'DEV1');
    expect(store.getFolder('f')!.devices).toEqual(['DEV1', 'DEV2']);
    store.removePeer('DEV1');
    expect(store.getFolder('f')!.devices).toEqual(['DEV2']);
  });

  it('shareFolder with an unknown folder is UNKNOWN_FOLDER; with an unknown device it throws and changes nothing', () => {
    store.upsertPeer('DEV1', []);
    expectFerry(() => store.shareFolder('nope', 'DEV1'), 'UNKNOWN_FOLDER');
    store.addFolder('f', '/f');
    expect(() => store.shareFolder('f', 'UNKNOWN')).toThrow();
    expect(store.getFolder('f')!.devices).toEqual([]);
  });
});

describe('local records', () => {
  beforeEach(() => {
    store.addFolder('f', '/f');
    store.addFolder('g', '/g');
  });

  it('commitLocal assigns increasing sequences per folder and returns the stored records', () => {
    const out = store.commitLocal('f', [entry(rec('a')), entry(rec('b')), entry(rec('c'))]);
    expect(out.map((r) => [r.path, r.sequence])).toEqual([['a', 1], ['b', 2], ['c', 3]]);
    expect(store.commitLocal('g', [entry(rec('a'))])[0]!.sequence).toBe(1);
    expect(store.commitLocal('f', [entry(rec('a', { version: { AAAAAAA: 2 } }))])[0]!.sequence).toBe(4);
    expect(store.maxSequence('f')).toBe(4);
    expect(store.maxSequence('g')).toBe(1);
    expect(store.maxSequence('empty')).toBe(0);
    // the re-committed path keeps one row, with its new sequence
    expect(store.getLocal('f', 'a')!.record.sequence).toBe(4);
    expect(store.allLocal('f').size).toBe(3);
  });

  it('scanEntries keeps its view current with this store\'s writes and rereads after another connection wrote', () => {
    store.commitLocal('f', [entry(fileWith('a', [blk('x', 10)])), entry(rec('d', { type: 'dir' }))]);
    const light = (path: string) => {
      const e = store.scanEntries('f').get(path);
      return e && { type: e.record.type, deleted: e.record.deleted, size: e.stat?.size, scannedAtMs: e.scannedAtMs };
    };
    expect(light('a')).toEqual({ type: 'file', deleted: false, size: 10, scannedAtMs: 1_700_000_002_000 });
    store.updateStat('f', 'a', { size: 11, mtimeMs: 5, ctimeMs: 6, ino: 7 }, 42);
    expect(light('a')).toEqual({ type: 'file', deleted: false, size: 11, scannedAtMs: 42 });
    store.commitLocal('f', [entry(rec('a', { deleted: true, version: { AAAAAAA: 2 } }), { stat: undefined }), entry(rec('new'))]);
    expect(light('a')).toEqual({ type: 'file', deleted: true, size: undefined, scannedAtMs: 1_700_000_002_000 });
    expect(store.scanEntries('f').size).toBe(3);
    expect(store.scanEntries('g').size).toBe(0);
    // A failed transaction drops the view: the rolled-back write must not stay in it.
    expect(() => store.transaction(() => {
      store.commitLocal('f', [entry(rec('ghost'))]);
      throw new Error('roll back');
    })).toThrow('roll back');
    expect(store.scanEntries('f').get('ghost')).toBeUndefined();
    // Another connection's write is seen.
    openAnother().commitLocal('f', [entry(rec('from-cli'))]);
    expect(store.scanEntries('f').get('from-cli')).toBeDefined();
    expect(store.scanEntries('f').size).toBe(4);
  });

  it('stores every field faithfully (fractional mtime, version, blocks, symlink target, stat, chunkAvg)', () => {
    const file = fileWith('dir/f.bin', [blk('1', 100), blk('2', 7)], { mode: 0o755, version: { AAAAAAA: 3, BBBBBBB: 1_700_000_000 } });
    const link = rec('dir/l', { type: 'symlink', mode: 0, symlinkTarget: '../t' });
    const gone = rec('gone', { deleted: true });
    store.commitLocal('f', [entry(file), entry(link), entry(gone, { stat: undefined, scannedAtMs: 5, chunkAvg: 0 })]);
    const e = store.getLocal('f', 'dir/f.bin')!;
    expect(e.record).toEqual({ ...file, sequence: 1 });
    expect(e.stat).toEqual({ size: 107, mtimeMs: file.mtimeMs, ctimeMs: 1_700_000_001_000.5, ino: 1234 });
    expect(e.scannedAtMs).toBe(1_700_000_002_000);
    expect(e.chunkAvg).toBe(131072);
    expect(store.getLocal('f', 'dir/l')!.record).toEqual({ ...link, sequence: 2 });
    const g = store.getLocal('f', 'gone')!;
    expect(g.record.deleted).toBe(true);
    expect(g.stat).toBeUndefined();
    expect(g.scannedAtMs).toBe(5);
    expect(store.getLocal('f', 'missing')).toBeUndefined();
    expect(store.getLocal('g', 'dir/f.bin')).toBeUndefined();
  });

  it('a failing batch commits nothing and does not consume sequence numbers', () => {
    store.commitLocal('f', [entry(rec('a'))]);
    const bad = entry(rec('b', { version: undefined as unknown as FileRecord['version'], modifiedBy: null as unknown as string }));
    expect(() => store.commitLocal('f', [entry(rec('c')), bad])).toThrow();
    expect(store.getLocal('f', 'c')).toBeUndefined();
    expect(store.commitLocal('f', [entry(rec('d'))])[0]!.sequence).toBe(2);
  });

  it('localSince pages in sequence order, only records newer than the given sequence', () => {
    const paths = Array.from({ length: 25 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    store.commitLocal('f', paths.map((p) => entry(rec(p))));
    store.commitLocal('g', [entry(rec('other'))]);
    const seen: string[] = [];
    let from = 0;
    for (;;) {
      const page = store.localSince('f', from, 10);
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(10);
      for (const r of page) expect(r.sequence).toBeGreaterThan(from);
      seen.push(...page.map((r) => r.path));
      from = page[page.length - 1]!.sequence;
    }
    expect(seen).toEqual(paths);
    expect(store.localSince('f', 25, 10)).toEqual([]);
    // a re-committed path moves to the end and is not repeated at its old place
    store.commitLocal('f', [entry(rec('p03', { version: { AAAAAAA: 2 } }))]);
    expect(store.localSince('f', 0, 100).map((r) => r.path)).toEqual([...paths.filter((p) => p !== 'p03'), 'p03']);
    expect(store.localSince('f', 25, 10).map((r) => [r.path, r.sequence])).toEqual([['p03', 26]]);
  });

  it('localUnder returns the entries strictly under a directory only', () => {
    store.commitLocal('f', ['d', 'd/a', 'd/b/c', 'd2', 'd2/x', 'd.txt', 'd-x/y', 'e'].map((p) => entry(rec(p))));
    expect(store.localUnder('f', 'd').map((e) => e.record.path).sort()).toEqual(['d/a', 'd/b/c']);
    expect(store.localUnder('f', 'd/b').map((e) => e.record.path)).toEqual(['d/b/c']);
    expect(store.localUnder('f', 'e')).toEqual([]);
  });

  it('localCounts counts live files and their bytes only', () => {
    store.commitLocal('f', [
      entry(fileWith('a', [blk('a', 10)])),
      entry(fileWith('b', [blk('b', 32)])),
      entry(rec('d', { type: 'dir', size: 4096 })),
      entry(rec('x', { deleted: true, size: 0 })),
    ]);
    expect(store.localCounts('f')).toEqual({ files: 2, bytes: 42 });
    expect(store.localCounts('g')).toEqual({ files: 0, bytes: 0 });
  });

  it('localCounts and conflictPaths (kept between calls) follow this store\'s writes, a rollback and another connection\'s writes', () => {
    const conflict = 'a.sync-conflict-20261122-010203-AAAAAAA.txt';
    store.commitLocal('f', [entry(fileWith('a', [blk('a', 10)]))]);
    expect(store.localCounts('f')).toEqual({ files: 1, bytes: 10 });
    expect(store.conflictPaths('f')).toEqual([]);
    store.commitLocal('f', [entry(fileWith(conflict, [blk('c', 5)]))]);
    expect(store.localCounts('f')).toEqual({ files: 2, bytes: 15 });
    expect(store.conflictPaths('f')).toEqual([conflict]);
    // What a caller does with the answer does not change the next one.
    store.conflictPaths('f').pop();
    store.localCounts('f').files = 99;
    expect(store.conflictPaths('f')).toEqual([conflict]);
    expect(store.localCounts('f')).toEqual({ files: 2, bytes: 15 });
    expect(() => store.transaction(() => {
      store.commitLocal('f', [entry(fileWith('ghost', [blk('g', 7)]))]);
      expect(store.localCounts('f')).toEqual({ files: 3, bytes: 22 });
      throw new Error('roll back');
    })).toThrow('roll back');
    expect(store.localCounts('f')).toEqual({ files: 2, bytes: 15 });
    openAnother().commitLocal('f', [entry(rec(conflict, { deleted: true, version: { AAAAAAA: 2 } }), { stat: undefined })]);
    expect(store.conflictPaths('f')).toEqual([]);
    expect(store.localCounts('f')).toEqual({ files: 1, bytes: 10 });
  });

  it('updateStat changes only the stat cache, not the record or its sequence', () => {
    const [r] = store.commitLocal('f', [entry(fileWith('a', [blk('a', 10)]))]);
    store.updateStat('f', 'a', { size: 10, mtimeMs: 99.5, ctimeMs: 100.25, ino: 77 }, 12345);
    const e = store.getLocal('f', 'a')!;
    expect(e.stat).toEqual({ size: 10, mtimeMs: 99.5, ctimeMs: 100.25, ino: 77 });
    expect(e.scannedAtMs).toBe(12345);
    expect(e.record).toEqual(r);
    expect(store.maxSequence('f')).toBe(1);
    expect(store.localSince('f', 1, 10)).toEqual([]);
  });
});

describe('block map', () => {
  beforeEach(() => {
    store.addFolder('f', '/f');
    store.addFolder('g', '/g');
  });

  it('finds each block of a committed file at its offset', () => {
    store.commitLocal('f', [entry(fileWith('a', [blk('1', 100), blk('2', 50), blk('3', 7)]))]);
    expect(store.findBlock(sha('1'))).toEqual([{ folder: 'f', path: 'a', offset: 0, size: 100 }]);
    expect(store.findBlock(sha('2'))).toEqual([{ folder: 'f', path: 'a', offset: 100, size: 50 }]);
    expect(store.findBlock(sha('3'))).toEqual([{ folder: 'f', path: 'a', offset: 150, size: 7 }]);
    expect(store.findBlock(sha('nothing'))).toEqual([]);
  });

  it("tells which of many blocks a folder's files hold, in batches, without other folders' blocks", () => {
    const held = Array.from({ length: 1200 }, (_, i) => blk(`held${i}`, 10));
    store.commitLocal('f', [entry(fileWith('a', held.slice(0, 700))), entry(fileWith('b', held.slice(700)))]);
    store.commitLocal('g', [entry(fileWith('c', [blk('elsewhere', 10)]))]);
    const asked = [...held.filter((_, i) => i % 3 === 0).map((b) => b.hash), sha('missing'), sha('elsewhere'), held[0]!.hash];
    const present = store.blocksPresent('f', asked);
    expect([...present].sort()).toEqual(held.filter((_, i) => i % 3 === 0).map((b) => b.hash.toString('hex')).sort());
    expect(store.blocksPresent('f', [])).toEqual(new Set());
  });

  it('lists the blocks of a byte range of one file, by offset, with one index lookup', () => {
    store.commitLocal('f', [entry(fileWith('a', [blk('1', 100), blk('2', 50), blk('3', 7)])), entry(fileWith('b', [blk('2', 50)]))]);
    expect(store.blocksBetween('f', 'a', 100, 157)).toEqual([
      { offset: 100, hash: sha('2') },
      { offset: 150, hash: sha('3') },
    ]);
    expect(store.blocksBetween('f', 'a', 1, 100)).toEqual([]);
    expect(store.blocksBetween('g', 'a', 0, 157)).toEqual([]);
    const db = new Database(file, { readonly: true });
    try {
      const plan = db.prepare('EXPLAIN QUERY PLAN SELECT offset, hash FROM block_map WHERE folder = ? AND path = ? AND offset >= ? AND offset < ?').all('f', 'a', 0, 1) as { detail: string }[];
      expect(plan.map((r) => r.detail).join()).toContain('block_map_by_file (folder=? AND path=? AND offset>? AND offset<?)');
    } finally {
      db.close();
    }
  });

  it('lists every location (across files and folders) up to the limit', () => {
    store.commitLocal('f', [entry(fileWith('a', [blk('s', 10)])), entry(fileWith('b', [blk('x', 5), blk('s', 10)]))]);
    store.commitLocal('g', [entry(fileWith('c', [blk('s', 10)]))]);
    const all = store.findBlock(sha('s'), 10);
    expect(all).toHaveLength(3);
    expect(all).toEqual(
      expect.arrayContaining([
        { folder: 'f', path: 'a', offset: 0, size: 10 },
        { folder: 'f', path: 'b', offset: 5, size: 10 },
        { folder: 'g', path: 'c', offset: 0, size: 10 },
      ]),
    );
    expect(store.findBlock(sha('s'), 2)).toHaveLength(2);
  });

  it('is cleared when the file is deleted, and replaced when the file changes', () => {
    store.commitLocal('f', [entry(fileWith('a', [blk('old1', 10), blk('keep', 10)]))]);
    store.commitLocal('f', [entry(fileWith('a', [blk('new1', 12), blk('keep', 10)], { version: { AAAAAAA: 2 } }))]);
    expect(store.findBlock(sha('old1'))).toEqual([]);
    expect(store.findBlock(sha('new1'))).toEqual([{ folder: 'f', path: 'a', offset: 0, size: 12 }]);
    expect(store.findBlock(sha('keep'))).toEqual([{ folder: 'f', path: 'a', offset: 12, size: 10 }]);
    store.commitLocal('f', [entry(rec('a', { deleted: true, version: { AAAAAAA: 3 } }))]);
    expect(store.findBlock(sha('new1'))).toEqual([]);
    expect(store.findBlock(sha('keep'))).toEqual([]);
  });

  it('a path that becomes a directory or symlink has no blocks', () => {
    store.commitLocal('f', [entry(fileWith('a', [blk('q', 10)]))]);
    store.commitLocal('f', [entry(rec('a', { type: 'dir', version: { AAAAAAA: 2 } }))]);
    expect(store.findBlock(sha('q'))).toEqual([]);
  });
});

describe('remote records', () => {
  beforeEach(() => {
    store.addFolder('f', '/f');
  });

  it('resetRemote starts an index at sequence 0; putRemote stores records and advances maxSequence', () => {
    expect(store.remoteIndex('f', 'P1')).toBeUndefined();
    store.resetRemote('f', 'P1', 'idx1');
    expect(store.remoteIndex('f', 'P1')).toEqual({ indexId: 'idx1', maxSequence: 0 });
    const r1 = fileWith('a', [blk('a', 3)], { sequence: 5, modifiedBy: 'PPPPPP1', version: { PPPPPP1: 1 } });
    const r2 = rec('dir', { type: 'dir', sequence: 9, mode: 0o700 });
    const r3 = rec('ln', { type: 'symlink', sequence: 7, mode: 0, symlinkTarget: 'a' });
    store.putRemote('f', 'P1', [r1, r2, r3]);
    expect(store.remoteIndex('f', 'P1')).toEqual({ indexId: 'idx1', maxSequence: 9 });
    expect(store.remoteFor('f', 'a')).toEqual([{ device: 'P1', record: r1 }]);
    expect(store.remoteFor('f', 'dir')).toEqual([{ device: 'P1', record: r2 }]);
    expect(store.remoteFor('f', 'ln')).toEqual([{ device: 'P1', record: r3 }]);
    // maxSequence never goes back
    store.putRemote('f', 'P1', [rec('b', { sequence: 2 })]);
    expect(store.remoteIndex('f', 'P1')!.maxSequence).toBe(9);
  });

  it('a newer announcement replaces the old one for the same device and path', () => {
    store.resetRemote('f', 'P1', 'i');
    store.putRemote('f', 'P1', [rec('a', { sequence: 1 })]);
    const newer = fileWith('a', [blk('z', 4)], { sequence: 2, version: { PPPPPP1: 2 } });
    store.putRemote('f', 'P1', [newer]);
    expect(store.remoteFor('f', 'a')).toEqual([{ device: 'P1', record: newer }]);
  });

  it('remoteFor lists what each device announced; remotePaths lists each path once', () => {
    store.resetRemote('f', 'P1', 'i1');
    store.resetRemote('f', 'P2', 'i2');
    store.putRemote('f', 'P1', [rec('a', { sequence: 1 }), rec('b', { sequence: 2 })]);
    store.putRemote('f', 'P2', [rec('a', { sequence: 1, version: { X: 1 } }), rec('c', { sequence: 2, deleted: true })]);
    const forA = store.remoteFor('f', 'a');
    expect(forA.map((r) => r.device).sort()).toEqual(['P1', 'P2']);
    expect(forA.find((r) => r.device === 'P2')!.record.version).toEqual({ X: 1 });
    expect(store.remoteFor('f', 'c')[0]!.record.deleted).toBe(true);
    expect(store.remotePaths('f').sort()).toEqual(['a', 'b', 'c']);
    expect(store.remotePaths('other')).toEqual([]);
  });

  it('resetRemote forgets one device and records its new index ID', () => {
    store.resetRemote('f', 'P1', 'i1');
    store.resetRemote('f', 'P2', 'i2');
    store.putRemote('f', 'P1', [rec('a', { sequence: 4 })]);
    store.putRemote('f', 'P2', [rec('b', { sequence: 8 })]);
    store.resetRemote('f', 'P1', 'i1-new');
    expect(store.remoteIndex('f', 'P1')).toEqual({ indexId: 'i1-new', maxSequence: 0 });
    expect(store.remoteFor('f', 'a')).toEqual([]);
    expect(store.remoteFor('f', 'b')).toHaveLength(1);
    expect(store.remotePaths('f')).toEqual(['b']);
    expect(store.remoteIndex('f', 'P2')).toEqual({ indexId: 'i2', maxSequence: 8 });
  });
});

describe('multiple connections', () => {
  it('dataVersion changes when another connection commits, not on our own commits', () => {
    store.addFolder('f', '/f');
    const other = openAnother();
    const v0 = store.dataVersion();
    store.setMeta('mine', '1');
    expect(store.dataVersion()).toBe(v0);
    other.setMeta('theirs', '1');
    const v1 = store.dataVersion();
    expect(v1).not.toBe(v0);
    expect(store.dataVersion()).toBe(v1);
    other.upsertPeer('DEV', ['h:1']);
    expect(store.dataVersion()).not.toBe(v1);
    expect(store.listPeers().map((p) => p.deviceId)).toEqual(['DEV']);
    expect(store.getMeta('theirs')).toBe('1');
  });

  it('a second connection sees committed records', () => {
    store.addFolder('f', '/f');
    store.commitLocal('f', [entry(fileWith('a', [blk('a', 1)]))]);
    const other = openAnother();
    expect(other.getLocal('f', 'a')!.record.sequence).toBe(1);
    expect(other.findBlock(sha('a'))).toHaveLength(1);
  });
});
