/**
 * The index: configuration, this node's file records, what peers announced, and the block
 * map, in one SQLite database (WAL mode, so `ferry status` and config commands read and write
 * while the node runs). Methods are synchronous: better-sqlite3 is faster that way, and each
 * call is short; batches go through `transaction`.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../core/errors.js';
import type { FileRecord, FileType } from '../core/file-record.js';
import { blockOffsets } from '../core/file-record.js';
import { isInsideDir } from '../core/paths.js';
import { hasSeen, type VersionVector } from '../core/version-vector.js';
import { packBlocks, unpackBlocks } from './block-codec.js';
import { openDatabase } from './open-database.js';
import { ScanView } from './scan-view.js';
import { FOLDER_MODES, type FolderConfig, type FolderMode, type PeerConfig } from './config-types.js';

/** Hashes asked about in one query by blocksPresent (SQLite allows 32,766 parameters). */
const PRESENCE_BATCH = 500;

/** The stat of a file when Ferry last looked at it or wrote it. */
export interface StatKey {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
}

export interface LocalEntry {
  readonly record: FileRecord;
  readonly stat?: StatKey;
  /** When the stat was taken (ms); files modified close to it are re-hashed next time. */
  readonly scannedAtMs: number;
  /** Average chunk size used for the file, kept so a growing file is not re-chunked. */
  readonly chunkAvg: number;
}

/** What a scan needs of each indexed entry: no version, no block list. */
export interface ScanEntry {
  readonly record: Pick<FileRecord, 'path' | 'type' | 'deleted' | 'mode' | 'symlinkTarget'>;
  readonly stat?: StatKey;
  readonly scannedAtMs: number;
  readonly chunkAvg: number;
}

export interface BlockLocation {
  readonly folder: string;
  readonly path: string;
  readonly offset: number;
  readonly size: number;
}

type Row = Record<string, any>;

const SQL_DIR = fileURLToPath(new URL('./sql/', import.meta.url));
/** Folders one peer can have waiting for acceptance (see notePendingFolder). */
const MAX_PENDING_FOLDERS = 64;

/** What `status` asks of a folder's index, filled in as it is asked for. */
interface FolderSummary {
  counts?: { files: number; bytes: number };
  conflicts?: string[];
}

const SEND_RATE_KEY = 'maxSendRate';
const RECEIVE_RATE_KEY = 'maxReceiveRate';
const LIMIT_LAN_KEY = 'limitLan';

export class SqliteIndexStore {
  private readonly db: Database.Database;
  private readonly sequences = new Map<string, number>();
  private readonly stmts: Record<string, Database.Statement>;
  /**
   * Full-scan views kept between scans and updated by this connection's own writes, so a
   * rescan of an unchanged folder reads nothing from the database. A write by another
   * connection (seen through `data_version`) or a failed transaction drops them all.
   */
  private readonly scanViews = new Map<string, ScanView>();
  /**
   * Per folder, the live-file counts and conflict copies, which `status` asks for every second
   * (each a walk of the whole folder's rows: ~30 ms for 100,000 files). Dropped on every local
   * write, and with the scan views when another connection commits.
   */
  private readonly summaries = new Map<string, FolderSummary>();
  private cachesDataVersion = -1;

  private constructor(db: Database.Database) {
    this.db = db;
    this.stmts = this.prepareStatements();
  }

  static open(file: string): SqliteIndexStore {
    const db = openDatabase(file);
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return new SqliteIndexStore(db);
  }

  close(): void {
    this.db.close();
  }

  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      // Writes of the rolled-back transaction may already be in a view or a summary.
      this.scanViews.clear();
      this.summaries.clear();
      throw err;
    }
  }

  /** Changes when another connection (the CLI, another process) commits. */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  // ---- meta ----------------------------------------------------------------------------

  getMeta(key: string): string | undefined {
    return (this.stmts.getMeta!.get(key) as Row | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmts.setMeta!.run(key, value);
  }

  /** The node's rate limits as `ferry limits` stored them, bytes a second; absent: unlimited. */
  /** The stored rate limits; `lan`: whether they apply to peers on the LAN too (default not). */
  getRateLimits(): { send?: number; receive?: number; lan: boolean } {
    const read = (key: string) => {
      const n = Number(this.getMeta(key) ?? '');
      return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
    };
    return { send: read(SEND_RATE_KEY), receive: read(RECEIVE_RATE_KEY), lan: this.getMeta(LIMIT_LAN_KEY) === '1' };
  }

  setLimitLan(lan: boolean): void {
    this.setMeta(LIMIT_LAN_KEY, lan ? '1' : '');
  }

  setRateLimit(direction: 'send' | 'receive', bytesPerSecond: number | undefined): void {
    this.setMeta(direction === 'send' ? SEND_RATE_KEY : RECEIVE_RATE_KEY, bytesPerSecond ? String(bytesPerSecond) : '');
  }

  // ---- configuration --------------------------------------------------------------------

  listFolders(): FolderConfig[] {
    const devices = new Map<string, string[]>();
    for (const r of this.db.prepare('SELECT folder_id, device_id FROM folder_devices ORDER BY device_id').all() as Row[]) {
      (devices.get(r.folder_id) ?? devices.set(r.folder_id, []).get(r.folder_id)!).push(r.device_id);
    }
    return (this.db.prepare('SELECT * FROM folders ORDER BY id').all() as Row[]).map((r) => ({
      id: r.id,
      path: r.path,
      indexId: r.index_id,
      versionsKeepDays: r.versions_keep_days,
      rescanSeconds: r.rescan_seconds,
      paused: r.paused === 1,
      mode: r.mode,
      devices: devices.get(r.id) ?? [],
    }));
  }

  getFolder(id: string): FolderConfig | undefined {
    return this.listFolders().find((f) => f.id === id);
  }

  addFolder(id: string, path: string, options: { versionsKeepDays?: number; rescanSeconds?: number; mode?: FolderMode } = {}): FolderConfig {
    if (this.getFolder(id)) throw new FerryError('ALREADY_EXISTS', `folder ${id} already exists`);
    const other = this.listFolders().find((f) => f.path === path);
    if (other) throw new FerryError('ALREADY_EXISTS', `${path} is already shared as folder ${other.id}`);
    // A folder inside another would sync its files twice, each copy with its own versions.
    const nested = this.listFolders().find((f) => isInsideDir(path, f.path) || isInsideDir(f.path, path));
    if (nested) {
      throw new FerryError('INVALID_PATH', `${path} and folder ${nested.id} (${nested.path}) overlap: one folder cannot hold another`);
    }
    this.db
      .prepare('INSERT INTO folders (id, path, index_id, created_at, versions_keep_days, rescan_seconds, mode) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, path, randomBytes(8).toString('hex'), new Date().toISOString(), options.versionsKeepDays ?? 30, options.rescanSeconds ?? 600, checkMode(options.mode ?? 'send-receive'));
    return this.getFolder(id)!;
  }

  /** Changes a folder's settings; the ones not given stay as they are. */
  updateFolder(id: string, settings: { versionsKeepDays?: number; rescanSeconds?: number; paused?: boolean; mode?: FolderMode }): FolderConfig {
    const f = this.getFolder(id);
    if (!f) throw new FerryError('UNKNOWN_FOLDER', `no folder ${id}`);
    this.db
      .prepare('UPDATE folders SET versions_keep_days = ?, rescan_seconds = ?, paused = ?, mode = ? WHERE id = ?')
      .run(settings.versionsKeepDays ?? f.versionsKeepDays, settings.rescanSeconds ?? f.rescanSeconds, (settings.paused ?? f.paused) ? 1 : 0, checkMode(settings.mode ?? f.mode), id);
    return this.getFolder(id)!;
  }

  removeFolder(id: string): void {
    this.scanViews.delete(id);
    this.summaries.delete(id);
    this.transaction(() => {
      const changes = this.db.prepare('DELETE FROM folders WHERE id = ?').run(id).changes;
      if (changes === 0) throw new FerryError('UNKNOWN_FOLDER', `no folder ${id}`);
      for (const table of ['files', 'remote_files', 'remote_index', 'block_map']) {
        this.db.prepare(`DELETE FROM ${table} WHERE folder = ?`).run(id);
      }
    });
  }

  listPeers(): PeerConfig[] {
    return (this.db.prepare('SELECT * FROM peers ORDER BY device_id').all() as Row[]).map((r) => ({
      deviceId: r.device_id,
      name: r.name,
      addresses: JSON.parse(r.addresses) as string[],
      paused: r.paused === 1,
    }));
  }

  /** Pauses or resumes a peer (`ferry peer pause` / `resume`). */
  setPeerPaused(deviceId: string, paused: boolean): PeerConfig {
    const changes = this.db.prepare('UPDATE peers SET paused = ? WHERE device_id = ?').run(paused ? 1 : 0, deviceId).changes;
    if (changes === 0) throw new FerryError('UNKNOWN_DEVICE', `no peer ${deviceId}`);
    return this.listPeers().find((p) => p.deviceId === deviceId)!;
  }

  /** Adds a peer or merges new addresses/name into an existing one. */
  upsertPeer(deviceId: string, addresses: readonly string[], name?: string): PeerConfig {
    const existing = this.listPeers().find((p) => p.deviceId === deviceId);
    const merged = [...new Set([...(existing?.addresses ?? []), ...addresses])];
    this.db
      .prepare(
        `INSERT INTO peers (device_id, name, addresses) VALUES (?, ?, ?)
         ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, addresses = excluded.addresses`,
      )
      .run(deviceId, name ?? existing?.name ?? '', JSON.stringify(merged));
    this.db.prepare('DELETE FROM pending_devices WHERE device_id = ?').run(deviceId);
    return this.listPeers().find((p) => p.deviceId === deviceId)!;
  }

  removePeer(deviceId: string): void {
    const changes = this.db.prepare('DELETE FROM peers WHERE device_id = ?').run(deviceId).changes;
    if (changes === 0) throw new FerryError('UNKNOWN_DEVICE', `no peer ${deviceId}`);
    this.db.prepare('DELETE FROM pending_folders WHERE device_id = ?').run(deviceId);
  }

  shareFolder(folderId: string, deviceId: string): void {
    if (!this.getFolder(folderId)) throw new FerryError('UNKNOWN_FOLDER', `no folder ${folderId}`);
    this.db.prepare('INSERT OR IGNORE INTO folder_devices (folder_id, device_id) VALUES (?, ?)').run(folderId, deviceId);
    this.db.prepare('DELETE FROM pending_folders WHERE folder_id = ? AND device_id = ?').run(folderId, deviceId);
  }

  /**
   * A peer offers a folder that is not shared with it here. At most MAX_PENDING_FOLDERS are
   * kept per peer, so a peer cannot fill the database; the first ones offered stay.
   */
  notePendingFolder(folderId: string, deviceId: string): void {
    const lastSeen = new Date().toISOString();
    const updated = this.db.prepare('UPDATE pending_folders SET last_seen = ? WHERE folder_id = ? AND device_id = ?').run(lastSeen, folderId, deviceId).changes;
    if (updated > 0) return;
    const held = (this.db.prepare('SELECT count(*) AS n FROM pending_folders WHERE device_id = ?').get(deviceId) as Row).n as number;
    if (held >= MAX_PENDING_FOLDERS) return;
    this.db.prepare('INSERT INTO pending_folders (folder_id, device_id, last_seen) VALUES (?, ?, ?)').run(folderId, deviceId, lastSeen);
  }

  /** Offers waiting for the user; with `declined`, the declined ones too. */
  listPendingFolders(opts: { declined?: boolean } = {}): { folderId: string; deviceId: string; lastSeen: string }[] {
    const where = opts.declined ? '' : 'WHERE declined = 0';
    return (this.db.prepare(`SELECT * FROM pending_folders ${where} ORDER BY folder_id, device_id`).all() as Row[]).map((r) => ({
      folderId: r.folder_id,
      deviceId: r.device_id,
      lastSeen: r.last_seen,
    }));
  }

  /** Marks every offer of a folder declined; returns how many there were. */
  declinePendingFolder(folderId: string): number {
    return this.db.prepare('UPDATE pending_folders SET declined = 1 WHERE folder_id = ?').run(folderId).changes;
  }

  notePendingDevice(deviceId: string, address: string): void {
    this.db
      .prepare('INSERT OR REPLACE INTO pending_devices (device_id, address, last_seen) VALUES (?, ?, ?)')
      .run(deviceId, address, new Date().toISOString());
  }

  listPendingDevices(): { deviceId: string; address: string; lastSeen: string }[] {
    return (this.db.prepare('SELECT * FROM pending_devices ORDER BY device_id').all() as Row[]).map((r) => ({
      deviceId: r.device_id,
      address: r.address,
      lastSeen: r.last_seen,
    }));
  }

  // ---- local records --------------------------------------------------------------------

  getLocal(folder: string, path: string): LocalEntry | undefined {
    const row = this.stmts.getLocal!.get(folder, path) as Row | undefined;
    return row && toLocalEntry(row);
  }

  /** The version of a local entry alone (cheap: no record to build). */
  localVersion(folder: string, path: string): VersionVector | undefined {
    const r = this.stmts.localVersion!.get(folder, path) as Row | undefined;
    return r && (JSON.parse(r.version) as VersionVector);
  }

  /** Type, deletion and stat of a local entry, without its block list (cheap, for serving). */
  getLocalMeta(folder: string, path: string): { type: FileType; deleted: boolean; stat?: StatKey } | undefined {
    const r = this.stmts.getLocalMeta!.get(folder, path) as Row | undefined;
    if (!r) return undefined;
    const stat = r.st_size < 0 ? undefined : { size: r.st_size, mtimeMs: r.st_mtime_ms, ctimeMs: r.st_ctime_ms, ino: r.st_ino };
    return { type: r.type as FileType, deleted: r.deleted === 1, stat };
  }

  /** Every local entry of a folder (deleted ones too), for a scan to compare against. */
  allLocal(folder: string): Map<string, LocalEntry> {
    const out = new Map<string, LocalEntry>();
    for (const row of this.stmts.allLocal!.iterate(folder) as Iterable<Row>) out.set(row.path, toLocalEntry(row));
    return out;
  }

  /**
   * Every local entry of a folder in the light form a full rescan compares against. The map
   * is kept and kept current by this store (see `scanViews`): callers must not change it.
   */
  scanEntries(folder: string): ScanView {
    this.dropStaleCaches();
    let view = this.scanViews.get(folder);
    if (!view) {
      view = new ScanView();
      for (const r of this.stmts.scanEntries!.iterate(folder) as Iterable<Row>) {
        view.set(r.path, {
          record: { path: r.path, type: r.type, deleted: r.deleted === 1, mode: r.mode, ...(r.symlink_target == null ? {} : { symlinkTarget: r.symlink_target }) },
          stat: r.st_size < 0 ? undefined : { size: r.st_size, mtimeMs: r.st_mtime_ms, ctimeMs: r.st_ctime_ms, ino: r.st_ino },
          scannedAtMs: r.scanned_at_ms,
          chunkAvg: r.chunk_avg,
        });
      }
      this.scanViews.set(folder, view);
    }
    return view;
  }

  /** Names of the live entries directly inside a directory ('' for the folder root). */
  liveChildNames(folder: string, dir: string): string[] {
    const prefix = dir ? dir + '/' : '';
    const rows = (dir ? this.stmts.liveChildren!.all(prefix.length + 1, folder, prefix, dir + '0') : this.stmts.liveRootChildren!.all(folder)) as Row[];
    return rows.map((r) => (r.path as string).slice(prefix.length));
  }

  /** Local entries under a directory (exclusive), for scoped scans. */
  localUnder(folder: string, dir: string): LocalEntry[] {
    const lo = dir + '/';
    const hi = dir + '0'; // '0' sorts right after '/'
    return (this.stmts.localUnder!.all(folder, lo, hi) as Row[]).map(toLocalEntry);
  }

  maxSequence(folder: string): number {
    let seq = this.sequences.get(folder);
    if (seq === undefined) {
      seq = ((this.stmts.maxSeq!.get(folder) as Row).seq as number | null) ?? 0;
      this.sequences.set(folder, seq);
    }
    return seq;
  }

  /**
   * Stores new versions of local records, giving each the next sequence number; returns the
   * records as stored. Also refreshes the block map for each path.
   */
  commitLocal(folder: string, entries: readonly LocalEntry[]): FileRecord[] {
    return this.transaction(() => {
      let seq = this.maxSequence(folder);
      const out: FileRecord[] = [];
      for (const e of entries) {
        const record = { ...e.record, sequence: ++seq };
        this.writeLocalRow(folder, record, e);
        this.stmts.deleteBlocks!.run(folder, record.path);
        if (!record.deleted && record.type === 'file') {
          const offsets = blockOffsets(record.blocks);
          record.blocks.forEach((b, i) => this.stmts.insertBlock!.run(b.hash, folder, record.path, offsets[i], b.size));
        }
        out.push(record);
      }
      this.sequences.set(folder, seq);
      return out;
    });
  }

  /** Updates only the stat cache of an entry (content unchanged; no new sequence). */
  updateStat(folder: string, path: string, stat: StatKey, scannedAtMs: number): void {
    this.stmts.updateStat!.run(stat.size, stat.mtimeMs, stat.ctimeMs, stat.ino, scannedAtMs, folder, path);
    this.scanViews.get(folder)?.setStat(path, stat, scannedAtMs);
  }

  localSince(folder: string, sequence: number, limit: number): FileRecord[] {
    return (this.stmts.localSince!.all(folder, sequence, limit) as Row[]).map(toRecord);
  }

  /** Paths whose local record this device made (receive-only folders hold these back from peers). */
  localPathsModifiedBy(folder: string, shortId: string): string[] {
    return (this.db.prepare('SELECT path FROM files WHERE folder = ? AND modified_by = ?').all(folder, shortId) as Row[]).map((r) => r.path);
  }

  /** Paths of live conflict copies in a folder. */
  conflictPaths(folder: string): string[] {
    const summary = this.summary(folder);
    summary.conflicts ??= (this.stmts.conflictPaths!.all(folder) as Row[]).map((r) => r.path);
    return [...summary.conflicts];
  }

  /** Whether the folder has anything indexed as present (a file, a directory or a link). */
  hasLiveEntries(folder: string): boolean {
    return this.stmts.anyLive!.get(folder) !== undefined;
  }

  localCounts(folder: string): { files: number; bytes: number } {
    const summary = this.summary(folder);
    if (!summary.counts) {
      const r = this.stmts.localCounts!.get(folder) as Row;
      summary.counts = { files: r.files ?? 0, bytes: r.bytes ?? 0 };
    }
    return { ...summary.counts };
  }

  private summary(folder: string): FolderSummary {
    this.dropStaleCaches();
    let summary = this.summaries.get(folder);
    if (!summary) {
      summary = {};
      this.summaries.set(folder, summary);
    }
    return summary;
  }

  /** Scan views and summaries are dropped when another connection (the CLI) has committed. */
  private dropStaleCaches(): void {
    const dataVersion = this.dataVersion();
    if (dataVersion === this.cachesDataVersion) return;
    this.scanViews.clear();
    this.summaries.clear();
    this.cachesDataVersion = dataVersion;
  }

  // ---- remote records -------------------------------------------------------------------

  remoteIndex(folder: string, device: string): { indexId: string; maxSequence: number } | undefined {
    const r = this.stmts.remoteIndex!.get(folder, device) as Row | undefined;
    return r && { indexId: r.index_id, maxSequence: r.max_sequence };
  }

  /**
   * How much of this node's state of `folder` the peer `device` does not have yet, by the index
   * it announced: live records of which it has no version as new (or a concurrent one), and
   * deletions of what it still has. Records `skipModifiedBy` made are left out (a receive-only
   * folder does not send them). Undefined when the peer never sent an index of the folder.
   */
  peerLacks(folder: string, device: string, skipModifiedBy?: string): { files: number; bytes: number } | undefined {
    if (!this.remoteIndex(folder, device)) return undefined;
    const rows = this.db
      .prepare(
        `SELECT l.size, l.deleted, l.version, l.modified_by, r.version AS r_version, r.deleted AS r_deleted
         FROM files l LEFT JOIN remote_files r ON r.folder = l.folder AND r.path = l.path AND r.device = ?
         WHERE l.folder = ?`,
      )
      .iterate(device, folder) as Iterable<Row>;
    let files = 0;
    let bytes = 0;
    for (const r of rows) {
      if (r.modified_by === skipModifiedBy) continue;
      if (r.r_version === null ? r.deleted === 1 : r.r_version === r.version) continue; // the usual case: the very same version
      if (r.deleted === 1 && r.r_deleted === 1) continue;
      if (r.r_version !== null && hasSeen(JSON.parse(r.r_version), JSON.parse(r.version))) continue;
      files++;
      if (r.deleted === 0) bytes += r.size;
    }
    return { files, bytes };
  }

  /** Forgets what a peer announced for a folder (its index was recreated). */
  resetRemote(folder: string, device: string, indexId: string): void {
    this.transaction(() => {
      this.db.prepare('DELETE FROM remote_files WHERE folder = ? AND device = ?').run(folder, device);
      this.db
        .prepare('INSERT OR REPLACE INTO remote_index (folder, device, index_id, max_sequence) VALUES (?, ?, ?, 0)')
        .run(folder, device, indexId);
    });
  }

  putRemote(folder: string, device: string, records: readonly FileRecord[]): void {
    this.transaction(() => {
      let max = this.remoteIndex(folder, device)?.maxSequence ?? 0;
      for (const r of records) {
        this.stmts.putRemote!.run(
          folder, device, r.path, r.type, r.size, r.mtimeMs, r.mode, r.deleted ? 1 : 0,
          JSON.stringify(r.version), r.modifiedBy, r.sequence, packBlocks(r.blocks), r.symlinkTarget ?? null,
        );
        max = Math.max(max, r.sequence);
      }
      this.db.prepare('UPDATE remote_index SET max_sequence = ? WHERE folder = ? AND device = ?').run(max, folder, device);
    });
  }

  /** What every peer announced for one path. */
  remoteFor(folder: string, path: string): { device: string; record: FileRecord }[] {
    return (this.stmts.remoteFor!.all(folder, path) as Row[]).map((r) => ({ device: r.device, record: toRecord(r) }));
  }

  /** Every path any peer announced in a folder. */
  remotePaths(folder: string): string[] {
    return (this.stmts.remotePaths!.all(folder) as Row[]).map((r) => r.path);
  }

  // ---- blocks -------------------------------------------------------------------------

  /** Whether the index has block `hash` at `offset` of the current version of `path`. */
  hasBlockAt(folder: string, path: string, offset: number, hash: Buffer): boolean {
    return this.stmts.hasBlockAt!.get(hash, folder, path, offset) !== undefined;
  }

  /**
   * The blocks of the current version of `path` that start in [from, to), by offset. Serving
   * a range asks this once instead of once per block.
   */
  blocksBetween(folder: string, path: string, from: number, to: number): { offset: number; hash: Buffer }[] {
    return this.stmts.blocksBetween!.all(folder, path, from, to) as { offset: number; hash: Buffer }[];
  }

  /**
   * Which of `hashes` some file of `folder` holds, as hex: one query per few hundred hashes
   * instead of one each. A pull of many new files asks this first and looks up only those.
   */
  blocksPresent(folder: string, hashes: readonly Buffer[]): Set<string> {
    const present = new Set<string>();
    for (let i = 0; i < hashes.length; i += PRESENCE_BATCH) {
      const chunk = hashes.slice(i, i + PRESENCE_BATCH);
      const stmt = chunk.length === PRESENCE_BATCH ? (this.stmts.blocksPresent ??= this.presenceQuery(PRESENCE_BATCH)) : this.presenceQuery(chunk.length);
      for (const hash of stmt.pluck().all(folder, ...chunk) as Buffer[]) present.add(hash.toString('hex'));
    }
    return present;
  }

  private presenceQuery(n: number): Database.Statement {
    return this.db.prepare(`SELECT DISTINCT hash FROM block_map WHERE folder = ? AND hash IN (${'?,'.repeat(n - 1)}?)`);
  }

  findBlock(hash: Buffer, limit = 4): BlockLocation[] {
    return (this.stmts.findBlock!.all(hash, limit) as Row[]).map((r) => ({
      folder: r.folder,
      path: r.path,
      offset: r.offset,
      size: r.size,
    }));
  }

  // ---- runtime status -------------------------------------------------------------------

  setStatus(key: string, value: unknown): void {
    this.stmts.setStatus!.run(key, JSON.stringify(value), Date.now());
  }

  getStatus<T>(key: string): { value: T; updatedAt: number } | undefined {
    const r = this.stmts.getStatus!.get(key) as Row | undefined;
    return r && { value: JSON.parse(r.value) as T, updatedAt: r.updated_at };
  }

  private writeLocalRow(folder: string, r: FileRecord, e: LocalEntry): void {
    const s = e.stat;
    this.summaries.delete(folder);
    this.scanViews.get(folder)?.set(r.path, {
      record: { path: r.path, type: r.type, deleted: r.deleted, mode: r.mode, ...(r.symlinkTarget === undefined ? {} : { symlinkTarget: r.symlinkTarget }) },
      stat: s,
      scannedAtMs: e.scannedAtMs,
      chunkAvg: e.chunkAvg,
    });
    this.stmts.putLocal!.run(
      folder, r.path, r.type, r.size, r.mtimeMs, r.mode, r.deleted ? 1 : 0, JSON.stringify(r.version),
      r.modifiedBy, r.sequence, packBlocks(r.blocks), r.symlinkTarget ?? null, e.chunkAvg,
      s?.size ?? -1, s?.mtimeMs ?? 0, s?.ctimeMs ?? 0, s?.ino ?? 0, e.scannedAtMs,
    );
  }

  private prepareStatements(): Record<string, Database.Statement> {
    const p = (sql: string) => this.db.prepare(sql);
    return {
      getMeta: p('SELECT value FROM meta WHERE key = ?'),
      setMeta: p('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      getLocal: p('SELECT * FROM files WHERE folder = ? AND path = ?'),
      localVersion: p('SELECT version FROM files WHERE folder = ? AND path = ?'),
      getLocalMeta: p('SELECT type, deleted, st_size, st_mtime_ms, st_ctime_ms, st_ino FROM files WHERE folder = ? AND path = ?'),
      allLocal: p('SELECT * FROM files WHERE folder = ?'),
      scanEntries: p(
        `SELECT path, type, deleted, mode, symlink_target, chunk_avg, st_size, st_mtime_ms, st_ctime_ms, st_ino, scanned_at_ms
         FROM files WHERE folder = ?`,
      ),
      liveChildren: p(
        "SELECT path FROM files WHERE instr(substr(path, ?), '/') = 0 AND folder = ? AND path >= ? AND path < ? AND deleted = 0",
      ),
      liveRootChildren: p("SELECT path FROM files WHERE folder = ? AND deleted = 0 AND instr(path, '/') = 0"),
      localUnder: p('SELECT * FROM files WHERE folder = ? AND path >= ? AND path < ?'),
      maxSeq: p('SELECT max(sequence) AS seq FROM files WHERE folder = ?'),
      putLocal: p(
        `INSERT OR REPLACE INTO files (folder, path, type, size, mtime_ms, mode, deleted, version, modified_by,
           sequence, blocks, symlink_target, chunk_avg, st_size, st_mtime_ms, st_ctime_ms, st_ino, scanned_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateStat: p(
        'UPDATE files SET st_size = ?, st_mtime_ms = ?, st_ctime_ms = ?, st_ino = ?, scanned_at_ms = ? WHERE folder = ? AND path = ?',
      ),
      localSince: p('SELECT * FROM files WHERE folder = ? AND sequence > ? ORDER BY sequence LIMIT ?'),
      conflictPaths: p("SELECT path FROM files WHERE folder = ? AND deleted = 0 AND path LIKE '%.sync-conflict-%' ORDER BY path"),
      anyLive: p('SELECT 1 FROM files WHERE folder = ? AND deleted = 0 LIMIT 1'),
      localCounts: p(
        "SELECT count(*) AS files, sum(size) AS bytes FROM files WHERE folder = ? AND deleted = 0 AND type = 'file'",
      ),
      deleteBlocks: p('DELETE FROM block_map WHERE folder = ? AND path = ?'),
      insertBlock: p('INSERT INTO block_map (hash, folder, path, offset, size) VALUES (?, ?, ?, ?, ?)'),
      hasBlockAt: p('SELECT 1 FROM block_map WHERE hash = ? AND folder = ? AND path = ? AND offset = ? LIMIT 1'),
      blocksBetween: p('SELECT offset, hash FROM block_map WHERE folder = ? AND path = ? AND offset >= ? AND offset < ? ORDER BY offset'),
      findBlock: p('SELECT folder, path, offset, size FROM block_map WHERE hash = ? LIMIT ?'),
      remoteIndex: p('SELECT index_id, max_sequence FROM remote_index WHERE folder = ? AND device = ?'),
      putRemote: p(
        `INSERT OR REPLACE INTO remote_files (folder, device, path, type, size, mtime_ms, mode, deleted, version,
           modified_by, sequence, blocks, symlink_target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      remoteFor: p('SELECT * FROM remote_files WHERE folder = ? AND path = ?'),
      remotePaths: p('SELECT DISTINCT path FROM remote_files WHERE folder = ?'),
      setStatus: p('INSERT OR REPLACE INTO runtime_status (key, value, updated_at) VALUES (?, ?, ?)'),
      getStatus: p('SELECT value, updated_at FROM runtime_status WHERE key = ?'),
    };
  }
}

function toRecord(r: Row): FileRecord {
  const record = {
    path: r.path,
    type: r.type as FileType,
    size: r.size,
    mtimeMs: r.mtime_ms,
    mode: r.mode,
    deleted: r.deleted === 1,
    version: JSON.parse(r.version) as VersionVector,
    modifiedBy: r.modified_by,
    sequence: r.sequence,
  } as FileRecord & { symlinkTarget?: string };
  // Block lists are unpacked on first use: a rescan of 100,000 unchanged files reads every
  // record but needs none of their blocks.
  const packed: Buffer = r.blocks;
  let blocks: FileRecord['blocks'] | undefined;
  Object.defineProperty(record, 'blocks', {
    enumerable: true,
    get: () => (blocks ??= unpackBlocks(packed)),
  });
  if (r.symlink_target != null) record.symlinkTarget = r.symlink_target;
  return record;
}

function toLocalEntry(r: Row): LocalEntry {
  return {
    record: toRecord(r),
    stat: r.st_size < 0 ? undefined : { size: r.st_size, mtimeMs: r.st_mtime_ms, ctimeMs: r.st_ctime_ms, ino: r.st_ino },
    scannedAtMs: r.scanned_at_ms,
    chunkAvg: r.chunk_avg,
  };
}

/** Applies the numbered .sql files newer than the database's schema version. */
function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  const files = readdirSync(SQL_DIR)
    .filter((f) => /^\d{3}-.*\.sql$/.test(f))
    .sort();
  for (const file of files) {
    const version = Number(file.slice(0, 3));
    if (version <= current) continue;
    db.transaction(() => {
      db.exec(readFileSync(SQL_DIR + file, 'utf8'));
      db.pragma(`user_version = ${version}`);
    })();
  }
}

/** A folder mode, or INVALID_CONFIG naming the ones there are. */
export function checkMode(mode: string): FolderMode {
  if ((FOLDER_MODES as readonly string[]).includes(mode)) return mode as FolderMode;
  throw new FerryError('INVALID_CONFIG', `no folder mode ${JSON.stringify(mode)}: it is one of ${FOLDER_MODES.join(', ')}`);
}
