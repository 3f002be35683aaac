/**
 * Turns the folder's files into records. A scan stats every entry and hashes only files whose
 * stat differs from what the index remembers, or that were modified so close to the last look
 * that a same-size edit within the timestamp granularity could hide (git's "racy" rule).
 * A scan can cover the whole folder or only some paths (from the watcher).
 */
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { chunkFile, chunkSmallFile } from '../chunker/chunk-file.js';
import { chunkParamsFor } from '../chunker/fastcdc.js';
import { rechunkFile } from '../chunker/rechunk-file.js';
import { errorMessage } from '../core/errors.js';
import { sameContent, type FileRecord, type FileType } from '../core/file-record.js';
import { checkRelativePath, MAX_NAME_BYTES, MAX_PATH_BYTES, parentPath } from '../core/paths.js';
import { bumpVersion } from '../core/version-vector.js';
import { ScanView } from '../index-store/scan-view.js';
import type { LocalEntry, ScanEntry, StatKey } from '../index-store/sqlite-index-store.js';
import type { FolderContext } from './folder-context.js';
import { listedStat, statTree, type EntryStat, type ListedDir } from './tree-stats.js';

/** Files modified less than this before they were scanned are hashed again next time. */
const RACY_WINDOW_MS = 2000;
const COMMIT_BATCH = 1000;
/** Files up to this size are read whole and hashed synchronously. */
const SMALL_FILE_BYTES = 1024 * 1024;
/**
 * A full scan of a folder with this many indexed entries has the tree stated on two threads
 * first (changed by tests). Below it the gain (~50 ms for 10,000) is not worth starting the
 * worker's ~22 MB V8 instance for.
 */
export const twoThreadStat = { minEntries: 20_000 };

/** A record a scan committed: what callers act on, without its blocks (a first scan has many). */
export type ChangedRecord = Pick<FileRecord, 'path' | 'deleted' | 'sequence'>;

export interface ScanResult {
  readonly changed: ChangedRecord[];
  readonly errors: { path: string; message: string }[];
  /** Download temporary files (`.ferry.tmp.<16 hex>`) the walk passed, folder-relative. */
  readonly downloadTemps: string[];
  /** Entries found on disk (files, directories, symlinks) and files read to hash them. */
  readonly entries: number;
  readonly hashed: number;
}

/** What `ferry folder rescan` reports of one folder's scan. */
export interface ScanSummary {
  readonly entries: number;
  readonly hashed: number;
  readonly changed: number;
  readonly errors: number;
  readonly ms: number;
}

/** How far the hashing of a scan has come: what `ferry status` shows of a long scan. */
export interface ScanProgress {
  readonly filesToHash: number;
  readonly bytesToHash: number;
  readonly hashedFiles: number;
  readonly hashedBytes: number;
}

/** The puller's temporary files; other `.ferry.tmp.*` names (uploads) are not the scanner's. */
const DOWNLOAD_TEMP = /^\.ferry\.tmp\.[0-9a-f]{16}$/;

export class Scanner {
  private hashing?: { -readonly [K in keyof ScanProgress]: ScanProgress[K] };

  constructor(private readonly ctx: FolderContext) {}

  /** The progress of the files the running scan hashes; undefined when it hashes none. */
  get progress(): ScanProgress | undefined {
    return this.hashing && { ...this.hashing };
  }

  /** Scans the whole folder. */
  async scanAll(): Promise<ScanResult> {
    const startedAt = Date.now(); // before any stat is taken: the racy rule needs it no later
    const known = this.ctx.store.scanEntries(this.ctx.folderId);
    let listed: Map<string, ListedDir> | undefined;
    if (known.size >= twoThreadStat.minEntries) {
      // Without it (the worker failed) the walk states everything itself.
      listed = await statTree(this.ctx.root, (path) => this.ctx.ignore.ignores(path, true)).catch(() => undefined);
    }
    return this.run(new Walk(this.ctx, known, startedAt, listed), [''], true);
  }

  /**
   * Scans the given paths (and everything under those that are directories), plus indexed
   * siblings that vanished: a file watcher can fold a create and a delete of one path into no
   * event at all (an editor's save followed at once by a rename), so the directories of the
   * reported paths are listed too, and indexed names missing from them are scanned as gone.
   */
  async scanPaths(paths: readonly string[]): Promise<ScanResult> {
    if (paths.includes('')) return this.scanAll();
    const known = new ScanView();
    const roots: string[] = [];
    for (const p of minimalRoots([...paths, ...this.vanishedSiblings(paths)].map((p) => this.realRoot(p)))) {
      roots.push(p);
      const e = this.ctx.store.getLocal(this.ctx.folderId, p);
      if (e) known.set(p, e);
      for (const u of this.ctx.store.localUnder(this.ctx.folderId, p)) known.set(u.record.path, u);
    }
    return this.run(new Walk(this.ctx, known, Date.now()), roots, false);
  }

  /** Indexed entries of the reported paths' directories that are no longer on disk. */
  private vanishedSiblings(paths: readonly string[]): string[] {
    const out: string[] = [];
    for (const dir of new Set(paths.map((p) => parentPath(p) ?? ''))) {
      let names: Set<string>;
      try {
        names = new Set(readdirSync(dir ? join(this.ctx.root, dir) : this.ctx.root));
      } catch {
        continue; // the directory itself is gone: scanning the reported path covers it
      }
      for (const name of this.ctx.store.liveChildNames(this.ctx.folderId, dir)) {
        if (!names.has(name)) out.push(dir ? `${dir}/${name}` : name);
      }
    }
    return out;
  }

  /**
   * The path itself, or its highest ancestor that is no longer a real directory (gone, or
   * replaced by a file or a symlink): scanning that instead never reads through a symlink.
   */
  private realRoot(path: string): string {
    const parts = path.split('/');
    let dir = '';
    for (const part of parts.slice(0, -1)) {
      dir = dir ? `${dir}/${part}` : part;
      if (!isRealDirectory(join(this.ctx.root, dir))) return dir;
    }
    return path;
  }

  /** The full index entry (version, blocks) of a path the scan found changed. */
  private full(path: string): LocalEntry | undefined {
    return this.ctx.store.getLocal(this.ctx.folderId, path);
  }

  private async run(walk: Walk, roots: string[], full: boolean): Promise<ScanResult> {
    const known = walk.knownEntries;
    for (const root of roots) {
      if (root === '') {
        walk.dir('');
        continue;
      }
      // A new file in a new directory: the directory needs its record too.
      for (let p = parentPath(root); p !== undefined; p = parentPath(p)) {
        const e = this.ctx.store.getLocal(this.ctx.folderId, p);
        if (e && !e.record.deleted) break;
        if (e) walk.addKnown(p, e);
        walk.entry(p, false);
      }
      walk.entry(root);
    }
    const pending: LocalEntry[] = [];
    const changed: ChangedRecord[] = [];
    const flush = () => {
      if (!pending.length) return;
      for (const r of this.ctx.store.commitLocal(this.ctx.folderId, pending.splice(0))) changed.push({ path: r.path, deleted: r.deleted, sequence: r.sequence });
    };
    // Directories and links first: they get the lower sequence numbers, so a peer gets a new
    // directory's record before the files in it (and does not make it on the way, unindexed).
    pending.push(...walk.changes);
    const progress = { filesToHash: walk.toHash.length, bytesToHash: walk.toHash.reduce((n, i) => n + i.stat.size, 0), hashedFiles: 0, hashedBytes: 0 };
    if (progress.filesToHash > 0) this.hashing = progress;
    try {
      for (const item of walk.toHash) {
        const hashedBefore = progress.hashedBytes;
        const entry = await this.hashFile(item.path, item.stat, item.mode, walk.known(item.path) ? this.full(item.path) : undefined, progress);
        progress.hashedFiles++;
        progress.hashedBytes = hashedBefore + item.stat.size;
        if (entry === 'unchanged') continue;
        if (entry === 'vanished') {
          walk.seen.delete(item.path);
          continue;
        }
        if ('error' in entry) {
          walk.errors.push({ path: item.path, message: entry.error });
          continue;
        }
        pending.push(entry);
        if (pending.length >= COMMIT_BATCH) flush();
      }
    } finally {
      this.hashing = undefined;
    }
    const now = Date.now();
    // Whatever the index has as present but the walk did not see (within the scanned roots) is gone.
    for (const path of known.keys()) {
      if (walk.seen.has(path) || walk.skipped.has(path) || known.isDeleted(path)) continue;
      if (!full && !roots.some((r) => path === r || path.startsWith(r + '/'))) continue;
      if (walk.skippedUnder(path)) continue;
      pending.push({ record: deletedRecord(this.full(path)!.record, this.ctx.shortId), scannedAtMs: now, chunkAvg: 0 });
    }
    flush();
    for (const [path, stat] of walk.statOnly) this.ctx.store.updateStat(this.ctx.folderId, path, stat, now);
    return { changed, errors: walk.errors, downloadTemps: walk.downloadTemps, entries: walk.seen.size, hashed: walk.toHash.length };
  }

  private async hashFile(
    path: string,
    stat: StatKey,
    mode: number,
    existing: LocalEntry | undefined,
    progress: { hashedBytes: number },
  ): Promise<LocalEntry | 'unchanged' | 'vanished' | { error: string }> {
    const abs = join(this.ctx.root, path);
    const startedAt = Date.now();
    const params = chunkParamsFor(stat.size, existing?.chunkAvg || undefined);
    const avg = params.avgSize;
    const blocks = [];
    try {
      if (stat.size <= SMALL_FILE_BYTES) {
        // One read and one hash on this thread: far cheaper than a stream for small files.
        for (const c of chunkSmallFile(abs, params)) blocks.push({ hash: c.hash, size: c.size });
      } else {
        // An edited large file: only what changed goes through the boundary finder.
        const previous = existing && !existing.record.deleted && existing.record.type === 'file' && existing.chunkAvg === avg ? existing.record.blocks : [];
        const chunks = previous.length > 0 ? rechunkFile(abs, previous, params) : chunkFile(abs, { avgSize: avg });
        for await (const c of chunks) {
          blocks.push({ hash: c.hash, size: c.size });
          progress.hashedBytes += c.size;
        }
      }
    } catch (err) {
      if (isGone(err)) return 'vanished';
      return { error: `cannot read: ${errorMessage(err)}` };
    }
    let after: EntryStat | undefined;
    try {
      after = lstatSync(abs, { throwIfNoEntry: false });
    } catch (err) {
      if (isGone(err)) return 'vanished';
      return { error: `cannot stat: ${errorMessage(err)}` };
    }
    if (!after) return 'vanished';
    if (!sameStat(stat, after)) return { error: 'file changed while it was being hashed; will retry' };
    const size = blocks.reduce((n, b) => n + b.size, 0);
    const candidate: FileRecord = {
      path,
      type: 'file',
      size,
      mtimeMs: stat.mtimeMs,
      mode,
      deleted: false,
      version: existing?.record.version ?? {},
      modifiedBy: this.ctx.shortId,
      sequence: 0,
      blocks,
    };
    if (existing && !existing.record.deleted && sameContent(existing.record, candidate) && existing.record.mode === candidate.mode) {
      this.ctx.store.updateStat(this.ctx.folderId, path, stat, startedAt);
      return 'unchanged';
    }
    return {
      record: { ...candidate, version: bumpVersion(candidate.version, this.ctx.shortId) },
      stat,
      scannedAtMs: startedAt,
      chunkAvg: avg,
    };
  }
}

/** The directory walk: collects new/changed dirs and symlinks, and the files to hash. */
class Walk {
  readonly seen: SeenPaths;
  /** Paths present but not synced this time (invalid names, unreadable). Never deleted. */
  readonly skipped = new Set<string>();
  readonly changes: LocalEntry[] = [];
  /** Compact (a stat key, not the Stats object): a first scan lists every file here. */
  readonly toHash: { path: string; stat: StatKey; mode: number }[] = [];
  readonly statOnly = new Map<string, StatKey>();
  readonly errors: { path: string; message: string }[] = [];
  readonly downloadTemps: string[] = [];
  /** Entries looked up during the walk that the scan's map does not hold (parents of roots). */
  private readonly extraKnown = new Map<string, ScanEntry>();

  /**
   * `now` is when the scan started (no stat is older); `listed` is the tree stated beforehand
   * (a full scan of a large folder), used as the walk passes each directory.
   */
  constructor(
    private readonly ctx: FolderContext,
    readonly knownEntries: ScanView,
    private readonly now: number,
    private readonly listed?: Map<string, ListedDir>,
  ) {
    this.seen = new SeenPaths(knownEntries);
  }

  known(path: string): ScanEntry | undefined {
    return this.knownEntries.get(path) ?? this.extraKnown.get(path);
  }

  addKnown(path: string, entry: ScanEntry): void {
    this.extraKnown.set(path, entry);
  }

  skippedUnder(path: string): boolean {
    for (let p = parentPath(path); p !== undefined; p = parentPath(p)) if (this.skipped.has(p)) return true;
    return false;
  }

  dir(rel: string): void {
    const listed = this.listed?.get(rel);
    this.listed?.delete(rel);
    let names: string[];
    try {
      names = listed?.names ?? readdirSync(rel ? join(this.ctx.root, rel) : this.ctx.root);
    } catch (err) {
      if (rel) this.skipped.add(rel);
      this.errors.push({ path: rel || '.', message: `cannot list directory: ${errorMessage(err)}` });
      return;
    }
    for (const [i, name] of names.entries()) {
      const path = rel ? `${rel}/${name}` : name;
      if (DOWNLOAD_TEMP.test(name)) {
        this.downloadTemps.push(path);
        continue;
      }
      // The directory's own path is valid already: checking the name is enough.
      const problem = nameProblem(name, path);
      if (problem) this.skip(path, problem);
      else this.checkedEntry(path, true, listed && listedStat(listed, i));
    }
  }

  /** Scans one path given by the caller (a watcher event or a root), checking all of it. */
  entry(rel: string, recurse = true): void {
    let path: string;
    try {
      path = checkRelativePath(rel);
    } catch (err) {
      this.skip(rel, errorMessage(err));
      return;
    }
    if (path !== rel) this.skip(rel, NOT_NFC);
    else this.checkedEntry(path, recurse);
  }

  private skip(path: string, message: string): void {
    this.skipped.add(path);
    this.errors.push({ path, message });
  }

  private checkedEntry(path: string, recurse: boolean, prestat?: EntryStat): void {
    let stat: EntryStat | undefined;
    try {
      stat = prestat ?? lstatSync(`${this.ctx.root}/${path}`, { throwIfNoEntry: false });
    } catch (err) {
      // One entry that cannot be stated (its absolute path too long, no permission) must not
      // fail the whole scan.
      if (!isGone(err)) this.skip(path, `cannot stat: ${errorMessage(err)}`);
      return;
    }
    if (!stat) {
      // readdir gives a name that is not valid UTF-8 with U+FFFD for its bad bytes, and no
      // entry has that name: without this it would be skipped without a word.
      if (path.includes('\uFFFD')) this.skip(path, NOT_UTF8);
      return;
    }
    const type: FileType | undefined = stat.isFile() ? 'file' : stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? 'symlink' : undefined;
    if (!type) return; // sockets, FIFOs, devices: not synced
    if (this.ctx.ignore.ignores(path, type === 'dir')) {
      this.skipped.add(path);
      return;
    }
    this.seen.add(path);
    if (type === 'file') {
      // Unchanged (indexed files are all in the view), checked without building the entry.
      const scannedAt = this.knownEntries.sameFileScannedAt(path, stat);
      if (scannedAt !== undefined && !isRacy(scannedAt, stat)) return;
      this.toHash.push({ path, stat: statKey(stat), mode: stat.mode & 0o7777 });
      return;
    }
    const existing = this.known(path);
    const live = existing && !existing.record.deleted ? existing : undefined;
    if (type === 'dir') {
      if (live?.record.type !== 'dir' || live.record.mode !== (stat.mode & 0o7777)) {
        this.changes.push(this.newEntry(path, 'dir', stat, existing));
      } else if (!live.stat || !sameStat(live.stat, stat)) {
        this.statOnly.set(path, statKey(stat));
      }
      if (recurse) this.dir(path);
      return;
    }
    let target: string;
    try {
      target = readlinkSync(join(this.ctx.root, path));
    } catch (err) {
      this.errors.push({ path, message: `cannot read link: ${errorMessage(err)}` });
      return;
    }
    if (live?.record.type !== 'symlink' || live.record.symlinkTarget !== target) {
      this.changes.push(this.newEntry(path, 'symlink', stat, existing, target));
    }
  }

  private newEntry(path: string, type: FileType, stat: EntryStat, existing: ScanEntry | undefined, target?: string): LocalEntry {
    const record: FileRecord = {
      path,
      type,
      size: 0,
      mtimeMs: stat.mtimeMs,
      mode: type === 'symlink' ? 0 : stat.mode & 0o7777,
      deleted: false,
      version: bumpVersion((existing && this.ctx.store.getLocal(this.ctx.folderId, path)?.record.version) ?? {}, this.ctx.shortId),
      modifiedBy: this.ctx.shortId,
      sequence: 0,
      blocks: [],
      ...(target === undefined ? {} : { symlinkTarget: target }),
    };
    return { record, stat: statKey(stat), scannedAtMs: this.now, chunkAvg: 0 };
  }
}

export function deletedRecord(r: FileRecord, shortId: string): FileRecord {
  return {
    ...r,
    deleted: true,
    size: 0,
    blocks: [],
    version: bumpVersion(r.version, shortId),
    modifiedBy: shortId,
    sequence: 0,
  };
}

/**
 * The paths a walk found: an indexed path is marked by its slot in the view, so a rescan of
 * 100,000 files keeps no set of 100,000 names alive; a path new to the view is kept by name.
 */
class SeenPaths {
  private readonly marks: Uint8Array;
  private readonly added = new Set<string>();
  size = 0;

  constructor(private readonly view: ScanView) {
    this.marks = new Uint8Array(view.size);
  }

  add(path: string): void {
    const slot = this.slot(path);
    if (slot === undefined ? this.added.has(path) : this.marks[slot] === 1) return;
    if (slot === undefined) this.added.add(path);
    else this.marks[slot] = 1;
    this.size++;
  }

  has(path: string): boolean {
    const slot = this.slot(path);
    return slot === undefined ? this.added.has(path) : this.marks[slot] === 1;
  }

  delete(path: string): void {
    const slot = this.slot(path);
    if (slot === undefined ? !this.added.delete(path) : this.marks[slot] !== 1) return;
    if (slot !== undefined) this.marks[slot] = 0;
    this.size--;
  }

  /** Entries the view gained during the walk (its own commits) are beyond the marks: kept by name. */
  private slot(path: string): number | undefined {
    const slot = this.view.slotOf(path);
    return slot !== undefined && slot < this.marks.length ? slot : undefined;
  }
}

/**
 * Whether a file's timestamps are too close to when it was looked at for an equal stat to
 * prove equal content: an edit within the timestamp granularity keeps the stat (git's rule).
 */
export function isRacy(seenAtMs: number, stat: StatKey): boolean {
  return seenAtMs - stat.mtimeMs < RACY_WINDOW_MS;
}

export function statKey(s: EntryStat): StatKey {
  return { size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino };
}

/** Also takes a fresh `Stats` as it is, without building its key (the rescan's hot path). */
export function sameStat(a: StatKey, b: StatKey): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}

const NOT_NFC = 'name is not in Unicode NFC form; not synced';
const NOT_UTF8 = 'name is not valid UTF-8 (shown with \uFFFD for the bytes that are not); not synced: rename it';
const PLAIN_NAME = /^[\x20-\x2e\x30-\x5b\x5d-\x7e]+$/;

/**
 * Why a name read from a directory cannot be synced, or undefined. The same rules as
 * `checkRelativePath` for one component; plain ASCII names (nearly all) take a fast path.
 */
function nameProblem(name: string, path: string): string | undefined {
  // A UTF-16 unit is at most 3 UTF-8 bytes, so short paths need no byte count.
  if (PLAIN_NAME.test(name) && name.length <= MAX_NAME_BYTES && path.length * 3 <= MAX_PATH_BYTES) {
    return name === '.' || name === '..' ? `contains '${name}'` : undefined;
  }
  try {
    return checkRelativePath(name) === name ? (checkRelativePath(path), undefined) : NOT_NFC;
  } catch (err) {
    return errorMessage(err);
  }
}

/** ENOENT, or ENOTDIR: a parent directory became a file meanwhile, so the entry is gone too. */
function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Whether `abs` is a directory (not a symlink to one); false also when it cannot be stated. */
function isRealDirectory(abs: string): boolean {
  try {
    return lstatSync(abs, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false; // scanning it as the root reports why
  }
}

/** Drops paths that lie under another path of the list. */
function minimalRoots(paths: readonly string[]): string[] {
  const sorted = [...new Set(paths)].sort();
  const out: string[] = [];
  for (const p of sorted) {
    if (p === '' ) return [''];
    if (!out.some((r) => p.startsWith(r + '/'))) out.push(p);
  }
  return out;
}
