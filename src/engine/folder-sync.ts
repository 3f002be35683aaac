/**
 * One folder's sync loop: scans local changes (watcher plus periodic rescan), keeps the set of
 * paths that need pulling from what peers announced, pulls them in a safe order (directories
 * first, then files, then deletions deepest first) and serves blocks to peers. Scans and
 * pulls of one folder run one at a time, so they never race each other on the same path.
 */
import { closeSync, fstatSync, openSync, rmdirSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { systemClock, type Clock } from '../core/clock.js';
import { errorMessage, FerryError, isFerryError } from '../core/errors.js';
import { sameOnDisk, type FileRecord } from '../core/file-record.js';
import { pathDepth } from '../core/paths.js';
import { bumpVersion, compareVersions, hasSeen, mergeVersions } from '../core/version-vector.js';
import type { FolderMode } from '../index-store/config-types.js';
import type { LocalEntry, StatKey } from '../index-store/sqlite-index-store.js';
import type { BlockRequest, RangeRequest } from '../protocol/messages.js';
import { allocPayload } from '../protocol/payload.js';
import { isConflictCopy } from './conflict-name.js';
import { decide, newestOf, type Decision } from './decide.js';
import type { FolderContext } from './folder-context.js';
import { IGNORE_FILE, IgnoreRules } from './ignore-rules.js';
import { hashMatches, Puller, readAtSync, tempName, type BlockFetcher } from './puller.js';
import { deletedRecord, Scanner, sameStat, statKey, type ChangedRecord, type ScanProgress, type ScanSummary } from './scanner.js';
import { OwnWrites } from './own-writes.js';
import { FolderWatcher } from './watcher.js';
import { folderUnavailable } from './folder-marker.js';

export type FolderState = 'scanning' | 'syncing' | 'idle' | 'error';

/** Ranges this large are read in the thread pool; small ones cost less read in place. */
const POOL_READ_BYTES = 256 * 1024;

export interface FolderStatus {
  readonly state: FolderState;
  readonly needFiles: number;
  readonly needBytes: number;
  readonly completion: number;
  readonly localFiles: number;
  readonly localBytes: number;
  readonly errors: { path: string; message: string }[];
  readonly conflicts: string[];
  /** While a scan hashes files: how far it has come. */
  readonly scan?: ScanProgress;
  readonly mode: FolderMode;
  /** Send-only: paths that peers changed and this device does not take (`ferry folder override`). */
  readonly notApplied: number;
  /** Receive-only: paths changed here that are not sent to peers (`ferry folder revert`). */
  readonly notSent: number;
}

export interface FolderSyncOptions {
  /** Devices the folder is shared with (reads the live configuration). */
  readonly devices: () => readonly string[];
  /** Fetches a verified block from a connected peer. */
  readonly fetchBlock: BlockFetcher;
  /** Called after local records changed (new sequence numbers to announce). */
  readonly onLocalChange: () => void;
  readonly rescanSeconds: number;
  readonly watch: boolean;
  /** Time for the rescan and retry timers (default: the system clock). */
  readonly clock?: Clock;
  /** Default send-receive. */
  readonly mode?: FolderMode;
}

/** Paths that failed are pulled again after this long, twice as long each time they fail again, up to the maximum. */
const RETRY_MS = 5000;
const RETRY_MAX_MS = 60_000;
/** How often a folder that is not there (see folder-marker.ts) is looked at again. */
const AVAILABILITY_CHECK_MS = 10_000;
/** A burst of at least this many changed paths is followed by a full rescan (see noteBurst). */
const BURST_RESCAN_PATHS = 1000;
const BURST_QUIET_MS = 2000;
const FILE_CONCURRENCY = 48;
/** Pulled entries are committed to the index in batches of this many (one transaction). */
const COMMIT_BATCH = 256;
/**
 * A local change right after a pull (a file deleted 50 ms after Ferry wrote it) can reach the
 * watcher in the same batch as Ferry's own write, which it folds into no event at all: the
 * pulled paths are scanned again (stat only) this long after a pull, up to this many paths.
 */
const RECHECK_AFTER_MS = 1000;
const RECHECK_MAX_PATHS = 2000;

export class FolderSync {
  private readonly scanner: Scanner;
  private readonly puller: Puller;
  private readonly need = new Map<string, Decision>();
  /** Whether `need` has been computed from the index since start (temp files are kept until then). */
  private needComputed = false;
  /** Paths written by the last pull, looked at again once the watcher's window has passed. */
  private recentlyPulled: string[] = [];
  /** What pulls wrote, so that the watcher's echo of it is not scanned again; per pull round. */
  private readonly ownWrites: OwnWrites;
  private pullRound = 0;
  /** Entries pulled to disk but not yet committed to the index (see flushCommits). */
  private readonly pendingCommits = new Map<string, LocalEntry>();
  /** Why a path could not be pulled: the message `status` shows, and its kind (see handlePullError). */
  private readonly errors = new Map<string, { message: string; kind: string }>();
  private readonly scanErrors = new Map<string, string>();
  /** Send-only: paths whose peers' version is not applied here. */
  private readonly notApplied = new Set<string>();
  /** Receive-only: paths whose version made here is held back from peers. */
  private readonly notSent = new Set<string>();
  private state: FolderState = 'scanning';
  private queue: Promise<unknown> = Promise.resolve();
  private pullScheduled = false;
  private watcher?: FolderWatcher;
  private timers: NodeJS.Timeout[] = [];
  private retryTimer?: NodeJS.Timeout;
  private retryDelayMs = RETRY_MS;
  /** The last commit of pulled entries failed: pulling more would only add to what waits. */
  private indexFull = false;
  /** Why the folder cannot be synced now (see folder-marker.ts), or undefined. */
  private unavailable?: string;
  private availabilityTimer?: NodeJS.Timeout;
  /** Paths reported in the current burst of watcher events (see noteBurst). */
  private burstPaths = 0;
  private burstTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    readonly ctx: FolderContext,
    private readonly options: FolderSyncOptions,
  ) {
    this.scanner = new Scanner(ctx);
    this.puller = new Puller(ctx, options.fetchBlock);
    this.ownWrites = new OwnWrites(ctx.root);
  }

  get id(): string {
    return this.ctx.folderId;
  }

  get mode(): FolderMode {
    return this.options.mode ?? 'send-receive';
  }

  /** Whether peers are told of this record: a receive-only folder keeps what was made here to itself. */
  announces(record: FileRecord): boolean {
    return this.mode !== 'receive-only' || record.modifiedBy !== this.ctx.shortId;
  }

  async start(): Promise<void> {
    // Watching first: an edit made while the first scan runs (or just after it looked at that
    // file) is reported, and its scan queues behind the first one. The other order would miss
    // it until the next full rescan.
    if (this.available()) await this.watch();
    await this.exclusive(() => this.fullScan());
    this.recomputeNeed();
    this.schedulePull();
    const clock = this.options.clock ?? systemClock;
    this.timers.push(clock.setInterval(() => void this.exclusive(() => this.fullScan()), this.options.rescanSeconds * 1000));
    this.timers.push(clock.setInterval(() => this.ctx.versioner.prune(), 3600_000));
    this.ctx.versioner.prune();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.retryTimer);
    clearTimeout(this.availabilityTimer);
    clearTimeout(this.burstTimer);
    await this.watcher?.stop();
    await this.queue.catch(() => undefined);
  }

  /** Scans the whole folder now (`ferry folder rescan`); resolves when the scan is done. */
  rescan(): Promise<ScanSummary> {
    return this.exclusive(() => this.fullScan());
  }

  /** Scans the whole folder now and waits for it and any pull it triggers (tests, simulations). */
  async scanNow(): Promise<void> {
    await this.exclusive(() => this.fullScan());
    await this.settle();
  }

  /** Waits until no scan or pull is queued or running. */
  async settle(): Promise<void> {
    for (let q = this.queue; ; q = this.queue) {
      await q.catch(() => undefined);
      if (q === this.queue) return;
    }
  }

  /** True when nothing is left to pull and no job is pending (errors aside). */
  get quiet(): boolean {
    return this.need.size === 0 && !this.pullScheduled && this.state === 'idle';
  }

  /** What the watcher reported (public so that a test can play the watcher). */
  watcherReported(paths: string[]): void {
    this.noteBurst(this.ownWrites.notWritten(paths));
    this.localChanged(paths);
  }

  /** Paths that may have changed on disk (reported by the watcher, or written by an upload). */
  localChanged(reported: string[]): void {
    const paths = this.ownWrites.changed(reported);
    if (paths.length === 0) return;
    if (paths.includes(IGNORE_FILE)) {
      this.ctx.ignore = IgnoreRules.load(this.ctx.root);
      void this.exclusive(() => this.fullScan()).then(() => this.recomputeNeed());
      return;
    }
    void this.exclusive(() => this.scan(paths));
  }

  /**
   * A peer announced these records. One that only says the peer now has the very version
   * held here (the usual answer to a change made here, so it carries this device's counter;
   * others are not looked up) cannot change what this node needs.
   */
  remoteChanged(records: Iterable<Pick<FileRecord, 'path' | 'version'>>): void {
    for (const r of records) {
      const echo = r.version[this.ctx.shortId] !== undefined;
      if (echo && !this.need.has(r.path) && !this.errors.has(r.path) && !this.pendingCommits.has(r.path)) {
        const held = this.ctx.store.localVersion(this.id, r.path);
        if (held && compareVersions(held, r.version) === 'equal') continue;
      }
      this.evaluate(r.path);
    }
    this.schedulePull();
  }

  /**
   * A peer said hello: pulls that failed (the peer was gone, or served bad blocks) may work
   * now, so they are tried at once, and backed off from the start again if they fail.
   */
  peerConnected(): void {
    if (this.errors.size === 0 || this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryDelayMs = RETRY_MS;
    this.schedulePull();
  }

  /** Re-evaluates everything, e.g. after the folder's device list changed. */
  recomputeNeed(): void {
    this.needComputed = true;
    this.need.clear();
    const paths = new Set(this.ctx.store.remotePaths(this.id));
    if (this.mode === 'receive-only') for (const p of this.ctx.store.localPathsModifiedBy(this.id, this.ctx.shortId)) paths.add(p);
    for (const p of paths) this.evaluate(p);
    this.schedulePull();
  }

  status(): FolderStatus {
    let needBytes = 0;
    for (const d of this.need.values()) if (d.kind === 'apply' && d.record.type === 'file' && !d.record.deleted) needBytes += d.record.size;
    const local = this.ctx.store.localCounts(this.id);
    const total = local.bytes + needBytes;
    const errors = [
      ...[...this.scanErrors].map(([path, message]) => ({ path, message })),
      ...[...this.errors].map(([path, e]) => ({ path, message: e.message })),
    ];
    if (this.unavailable) errors.unshift({ path: '.', message: this.unavailable });
    const scan = this.scanner.progress;
    return {
      state: this.unavailable ? 'error' : scan ? 'scanning' : this.state === 'idle' && this.need.size > 0 ? 'syncing' : this.state,
      needFiles: this.need.size,
      needBytes,
      completion: total === 0 ? 100 : Math.floor((1000 * (total - needBytes)) / total) / 10,
      localFiles: local.files,
      localBytes: local.bytes,
      errors,
      conflicts: this.conflicts(),
      ...(scan ? { scan } : {}),
      mode: this.mode,
      notApplied: this.notApplied.size,
      notSent: this.notSent.size,
    };
  }

  /**
   * Send-only: makes this device's state of every path that peers changed the newest (its
   * version counts past all of theirs), so the peers take it; a path this device does not have
   * becomes a deletion. Returns the paths.
   */
  override(): Promise<string[]> {
    return this.exclusive(async () => {
      if (this.mode !== 'send-only') throw new FerryError('INVALID_CONFIG', `folder ${this.id} is ${this.mode}: only a send-only folder overrides its peers' changes`);
      const paths = [...this.notApplied].sort();
      const entries = paths.map((path): LocalEntry => {
        const local = this.localEntry(path);
        const remotes = this.remoteRecords(path);
        const version = bumpVersion(remotes.reduce((v, r) => mergeVersions(v, r.version), local?.record.version ?? {}), this.ctx.shortId);
        if (local) return { ...local, record: { ...local.record, version, modifiedBy: this.ctx.shortId, sequence: 0 } };
        return { record: { ...deletedRecord(newestOf(remotes), this.ctx.shortId), mtimeMs: Date.now(), version }, scannedAtMs: 0, chunkAvg: 0 };
      });
      if (entries.length > 0) this.ctx.store.commitLocal(this.id, entries);
      for (const p of paths) this.evaluate(p);
      if (entries.length > 0) this.options.onLocalChange();
      this.ctx.logger.info({ paths: paths.length }, "overrode the peers' changes");
      return paths;
    });
  }

  /**
   * Receive-only: throws away what was changed here. A path the peers have gets their
   * version back (this device's version is made older than every other, and the pull moves
   * the file it replaces to the version area); a file or link only made here goes to the
   * version area, an empty directory only made here is removed. Returns the paths.
   */
  revert(): Promise<string[]> {
    return this.exclusive(async () => {
      if (this.mode !== 'receive-only') throw new FerryError('INVALID_CONFIG', `folder ${this.id} is ${this.mode}: only a receive-only folder reverts its own changes`);
      const reverted: string[] = [];
      const entries: LocalEntry[] = [];
      // Deepest first: a directory made here is empty once what was made in it is gone.
      for (const path of [...this.notSent].sort((a, b) => pathDepth(b) - pathDepth(a) || (a < b ? -1 : 1))) {
        const local = this.localEntry(path)!;
        // Held back with no peer record means made here (a deletion of what no peer has is not held back).
        const theirs = this.remoteRecords(path).length > 0;
        if (!theirs && !this.removeLocalAddition(path, local.record)) continue;
        const record = theirs ? local.record : { ...local.record, deleted: true, size: 0, blocks: [] };
        entries.push({ ...local, ...(theirs ? {} : { stat: undefined }), record: { ...record, version: {}, sequence: 0 } });
        reverted.push(path);
      }
      if (entries.length > 0) this.ctx.store.commitLocal(this.id, entries);
      for (const p of reverted) this.evaluate(p);
      this.schedulePull();
      this.ctx.logger.info({ paths: reverted.length }, 'reverted the changes made here');
      return reverted.sort();
    });
  }

  /** Moves a file or link made here to the version area, or removes an empty directory; false when it stays. */
  private removeLocalAddition(path: string, record: FileRecord): boolean {
    const abs = this.ctx.paths.resolve(path);
    try {
      if (record.type === 'dir') rmdirSync(abs);
      else this.ctx.versioner.archive(abs, path);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      this.ctx.logger.warn({ path, err: errorMessage(err) }, 'cannot revert a change made here; left as it is');
      return false;
    }
  }

  /** The records of `path` from the devices the folder is shared with. */
  private remoteRecords(path: string): FileRecord[] {
    const devices = new Set(this.options.devices());
    return this.ctx.store
      .remoteFor(this.id, path)
      .filter((r) => devices.has(r.device))
      .map((r) => r.record);
  }

  /**
   * Reads a block for a peer. From the requested file when it is unchanged since it was indexed
   * (the requester verifies the hash anyway); otherwise from any indexed copy, verified here.
   */
  serveBlock(req: BlockRequest): Buffer {
    const hash = Buffer.from(req.hash, 'hex');
    const meta = this.ctx.store.getLocalMeta(this.id, req.path);
    if (meta && !meta.deleted && meta.type === 'file' && meta.stat && this.ctx.store.hasBlockAt(this.id, req.path, req.offset, hash)) {
      const data = this.readBlock(req.path, req.offset, req.size, meta.stat);
      if (data) return data;
    }
    for (const loc of this.ctx.store.findBlock(hash)) {
      if (loc.folder !== this.id || loc.size !== req.size) continue;
      const data = this.readBlock(loc.path, loc.offset, req.size);
      if (data && hashMatches(data, hash)) return data;
    }
    throw new FerryError('NOT_FOUND', `block ${req.hash.slice(0, 12)} of ${req.path} is not available here`);
  }

  /**
   * Reads consecutive blocks for a peer: in one read when the file is unchanged since it was
   * indexed, else block by block from wherever the index has them.
   */
  async serveRange(req: RangeRequest): Promise<Buffer> {
    const total = req.blocks.reduce((n, b) => n + b.size, 0);
    const meta = this.ctx.store.getLocalMeta(this.id, req.path);
    if (meta && !meta.deleted && meta.type === 'file' && meta.stat && this.indexedAt(req)) {
      const data = total >= POOL_READ_BYTES ? await this.readRange(req.path, req.offset, total, meta.stat) : this.readBlock(req.path, req.offset, total, meta.stat);
      if (data) return data;
    }
    let offset = req.offset;
    return Buffer.concat(
      req.blocks.map((b) => {
        const data = this.serveBlock({ type: 'block', folder: req.folder, path: req.path, offset, size: b.size, hash: b.hash });
        offset += b.size;
        return data;
      }),
    );
  }

  /** Whether the current version of the file has exactly the requested blocks at that offset. */
  private indexedAt(req: RangeRequest): boolean {
    const end = req.blocks.reduce((n, b) => n + b.size, req.offset);
    const indexed = this.ctx.store.blocksBetween(this.id, req.path, req.offset, end);
    if (indexed.length !== req.blocks.length) return false;
    let offset = req.offset;
    return req.blocks.every((b, i) => {
      const ok = indexed[i]!.offset === offset && indexed[i]!.hash.toString('hex') === b.hash;
      offset += b.size;
      return ok;
    });
  }

  /** `readBlock` with the read itself in the thread pool: the sender's main thread has TLS to do. */
  private async readRange(path: string, offset: number, size: number, expected: StatKey): Promise<Buffer | undefined> {
    let file: FileHandle | undefined;
    try {
      file = await open(this.ctx.paths.resolve(path), 'r');
      if (!sameStat(expected, statKey(await file.stat()))) return undefined;
      const data = allocPayload(size);
      let done = 0;
      while (done < size) {
        const { bytesRead } = await file.read(data, done, size - done, offset + done);
        if (bytesRead === 0) return undefined;
        done += bytesRead;
      }
      return data;
    } catch {
      return undefined;
    } finally {
      await file?.close();
    }
  }

  /** Reads `size` bytes at `offset`; with `expected`, only if the file's stat still matches. */
  private readBlock(path: string, offset: number, size: number, expected?: StatKey): Buffer | undefined {
    let fd: number | undefined;
    try {
      fd = openSync(this.ctx.paths.resolve(path), 'r');
      if (expected && !sameStat(expected, statKey(fstatSync(fd)))) return undefined;
      const data = readAtSync(fd, offset, size);
      return data.length === size ? data : undefined;
    } catch {
      return undefined;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  private conflicts(): string[] {
    return this.ctx.store.conflictPaths(this.id).filter(isConflictCopy);
  }

  /** Runs jobs of this folder one at a time. */
  private exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => (this.stopped ? (undefined as T) : job()));
    this.queue = run.catch((err) => this.ctx.logger.error({ err: errorMessage(err) }, 'folder job failed'));
    return run;
  }

  /**
   * Counts the paths of a burst of watcher reports (not those a pull wrote: their echo is no
   * sign of a busy folder); a burst of BURST_RESCAN_PATHS or more is
   * followed by a full rescan once it has been quiet for BURST_QUIET_MS. Under load the
   * watcher does not report everything: inotify drops what overflows its queue without a word
   * (94 of 100,000 files made by two `xargs touch` at once on the 2-core dev VM with both cores
   * busy). Without the rescan they would wait for the next periodic one.
   */
  private noteBurst(reported: number): void {
    const clock = this.options.clock ?? systemClock;
    this.burstPaths += reported;
    clearTimeout(this.burstTimer);
    this.burstTimer = clock.setTimeout(() => {
      const paths = this.burstPaths;
      this.burstPaths = 0;
      this.burstTimer = undefined;
      if (paths < BURST_RESCAN_PATHS) return;
      this.ctx.logger.info({ paths }, 'a burst of changes: full rescan for any the watcher missed');
      void this.exclusive(() => this.fullScan());
    }, BURST_QUIET_MS);
  }

  private async watch(): Promise<void> {
    if (!this.options.watch || this.watcher) return;
    try {
      this.watcher = await FolderWatcher.start(this.ctx.root, (paths) => this.watcherReported(paths), this.ctx.logger);
    } catch (err) {
      this.ctx.logger.warn({ err: errorMessage(err) }, 'cannot watch folder; relying on periodic rescans');
    }
  }

  /**
   * Whether the folder is there to be synced (its marker present). While it is not, it is
   * looked at again every few seconds. When it is back, the watcher is started afresh (an
   * unmount ends its watches) and a full scan and a pull follow.
   */
  private available(): boolean {
    const problem = folderUnavailable(this.ctx.root, () => this.ctx.store.hasLiveEntries(this.id));
    const was = this.unavailable;
    this.unavailable = problem;
    if (problem) {
      if (problem !== was) this.ctx.logger.error({ problem }, 'folder unavailable; not scanning or pulling it');
      if (!this.availabilityTimer && !this.stopped) {
        this.availabilityTimer = (this.options.clock ?? systemClock).setTimeout(() => {
          this.availabilityTimer = undefined;
          void this.exclusive(async () => void this.available());
        }, AVAILABILITY_CHECK_MS);
      }
      return false;
    }
    if (was) {
      this.ctx.logger.info('folder available again');
      void this.exclusive(async () => {
        await this.watcher?.stop();
        this.watcher = undefined;
        await this.fullScan();
      }).then(() => {
        this.recomputeNeed();
        this.schedulePull();
      });
    }
    return true;
  }

  private async fullScan(): Promise<ScanSummary> {
    if (!this.available() || !this.indexTakesPulls()) return { entries: 0, hashed: 0, changed: 0, errors: 1, ms: 0 };
    await this.watch(); // it could not start while the folder was missing
    const before = this.state;
    this.state = 'scanning';
    const startedAt = performance.now();
    try {
      const result = await this.scanner.scanAll();
      this.scanErrors.clear();
      for (const e of result.errors) this.scanErrors.set(e.path, e.message);
      this.afterScan(result.changed);
      // Only once the need is known: at start-up the first scan runs before it is computed.
      if (this.needComputed) this.removeStaleTemps(result.downloadTemps);
      return { entries: result.entries, hashed: result.hashed, changed: result.changed.length, errors: result.errors.length, ms: performance.now() - startedAt };
    } finally {
      this.state = before === 'scanning' ? 'idle' : before;
    }
  }

  /**
   * Temporary files of downloads that nothing needs any more (the path was deleted or won
   * locally, or its directory was renamed meanwhile) would otherwise stay forever. The ones
   * of paths still to be pulled are kept: they are how a download resumes.
   */
  private removeStaleTemps(temps: string[]): void {
    if (temps.length === 0) return;
    const wanted = new Set<string>();
    for (const path of this.need.keys()) {
      const slash = path.lastIndexOf('/');
      wanted.add(`${path.slice(0, slash + 1)}${tempName(path)}`);
    }
    for (const temp of temps) {
      if (wanted.has(temp)) continue;
      rmSync(join(this.ctx.root, temp), { force: true });
      this.ctx.logger.debug({ temp }, 'removed the temporary file of a download no longer needed');
    }
  }

  private async scan(reported: string[]): Promise<void> {
    if (!this.available() || !this.indexTakesPulls()) return;
    // Checked again now that the pull they arrived during is over: a directory it made was
    // still filling then, and a file's echo can come before its write is recorded.
    const paths = this.ownWrites.changed(reported);
    for (const p of reported) this.scanErrors.delete(p);
    if (paths.length === 0) return;
    const result = await this.scanner.scanPaths(paths);
    for (const e of result.errors) this.scanErrors.set(e.path, e.message);
    this.afterScan(result.changed);
  }

  /**
   * A scan compares the disk with the index: files pulled but not yet recorded there would look
   * like local edits. So pending entries are written first; while they cannot be, scans wait
   * (the retry writes them, then scans the whole folder for what the watcher reported meanwhile).
   */
  private indexTakesPulls(): boolean {
    if (this.flushCommits()) return true;
    this.scheduleRetry();
    return false;
  }

  private afterScan(changed: readonly ChangedRecord[]): void {
    if (changed.length === 0) return;
    this.ctx.logger.debug({ changed: changed.length }, 'local changes');
    // Announced first: the peers can start pulling while this node decides what the changes
    // mean for itself (for 10,000 new files, ~0.2 s of lookups).
    this.options.onLocalChange();
    for (const r of changed) this.evaluate(r.path);
    this.schedulePull();
  }

  /** Decides what `path` needs and updates `need`; returns the local entry it decided on. */
  private evaluate(path: string): LocalEntry | undefined {
    const local = this.localEntry(path);
    const remotes = this.remoteRecords(path);
    const type = remotes[0]?.type ?? local?.record.type;
    this.notApplied.delete(path);
    this.notSent.delete(path);
    if (this.ctx.ignore.ignores(path, type === 'dir')) {
      this.need.delete(path);
      this.errors.delete(path);
      return local;
    }
    let d = decide(local?.record, remotes);
    if (this.mode === 'send-only' && d.kind === 'apply') {
      this.notApplied.add(path);
      d = { kind: 'none' };
    }
    if (this.mode === 'receive-only' && local && this.heldBack(local.record, remotes)) this.notSent.add(path);
    if (d.kind === 'none') {
      // Nothing left to pull here: an error from an earlier attempt no longer applies, and
      // neither does the temporary file of a download that did not finish.
      const before = this.need.get(path);
      this.need.delete(path);
      this.errors.delete(path);
      if (before?.kind === 'apply') this.puller.discardTemp(path);
    } else this.need.set(path, d);
    return local;
  }

  /**
   * Receive-only: whether this device's record is a change made here that the peers lack (none
   * of them has its content or a version as new); a deletion of what no peer has is none.
   */
  private heldBack(local: FileRecord, remotes: readonly FileRecord[]): boolean {
    if (local.modifiedBy !== this.ctx.shortId) return false;
    if (local.deleted && remotes.every((r) => r.deleted)) return false;
    return !remotes.some((r) => sameOnDisk(r, local) || hasSeen(r.version, local.version));
  }

  private schedulePull(): void {
    if (this.pullScheduled || this.stopped) return;
    this.pullScheduled = true;
    void this.exclusive(async () => {
      this.pullScheduled = false;
      await this.pullAll();
    });
  }

  private async pullAll(): Promise<void> {
    // Entries pulled in an earlier round that the index could not take yet go first.
    if (!this.flushCommits()) return this.scheduleRetry();
    if (this.need.size === 0 || !this.available()) return;
    this.pullRound++;
    this.state = 'syncing';
    let committed = false;
    try {
      const items = [...this.need.entries()];
      const order = (d: Decision) => (d.kind !== 'apply' ? 0 : d.record.deleted ? 3 : d.record.type === 'dir' ? 1 : 2);
      const byPhase = (phase: number) => items.filter(([, d]) => order(d) === phase);
      for (const [path] of byPhase(0)) committed = this.pullOne(path) || committed;
      const dirs = byPhase(1).sort(([a], [b]) => pathDepth(a) - pathDepth(b));
      for (const [path] of dirs) committed = (await this.pullOneAsync(path)) || committed;
      const files = byPhase(2);
      let next = 0;
      const worker = async () => {
        while (next < files.length && !this.stopped && !this.indexFull) committed = (await this.pullOneAsync(files[next++]![0])) || committed;
      };
      this.puller.lookAhead(files.flatMap(([, d]) => (d.kind === 'apply' ? [d.record] : [])));
      try {
        await Promise.all(Array.from({ length: FILE_CONCURRENCY }, worker));
      } finally {
        this.puller.lookAhead(undefined);
      }
      if (this.flushCommits()) {
        const deletes = byPhase(3).sort(([a], [b]) => pathDepth(b) - pathDepth(a) || (b < a ? -1 : 1));
        for (const [path] of deletes) committed = (await this.pullOneAsync(path)) || committed;
      }
    } finally {
      this.flushCommits();
      this.state = 'idle';
      this.ctx.paths.forget();
      this.scheduleRecheck();
      if (committed) this.options.onLocalChange();
    }
    this.scheduleRetry();
  }

  /** After a round with failures, another in a while: 5 s, then twice as long each time up to a minute. */
  private scheduleRetry(): void {
    if (this.errors.size === 0) this.retryDelayMs = RETRY_MS;
    else if (!this.retryTimer && !this.stopped) {
      this.retryTimer = (this.options.clock ?? systemClock).setTimeout(() => {
        this.retryTimer = undefined;
        // A failure that persists (a full disk, a peer without the data) is retried less and
        // less often; any change in the folder or from a peer retries it at once anyway.
        this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_MAX_MS);
        this.recomputeNeed();
      }, this.retryDelayMs);
    }
  }

  /** Adopt decisions: index only. Returns whether something was committed. */
  private pullOne(path: string): boolean {
    this.evaluate(path);
    const d = this.need.get(path);
    if (d?.kind !== 'adopt') return false;
    const local = this.localEntry(path);
    this.ctx.store.commitLocal(this.id, [{ record: d.record, stat: local?.stat, scannedAtMs: local?.scannedAtMs ?? 0, chunkAvg: local?.chunkAvg ?? 0 }]);
    this.need.delete(path);
    this.errors.delete(path);
    return true;
  }

  private async pullOneAsync(path: string): Promise<boolean> {
    // `need` is kept current: every change to this path's local or remote state re-decides it.
    const local = this.localEntry(path);
    const d = this.need.get(path);
    if (!d) return false;
    if (d.kind === 'adopt') return this.pullOne(path);
    if (d.kind !== 'apply') return false;
    try {
      const { entry, extraScan } = await this.puller.apply(d.record, local, d.conflictCopy);
      this.errors.delete(path);
      this.queueCommit(entry);
      // A newer record may have arrived during the download: decided against the local entry
      // this download replaced, it is decided again for the next pass.
      if (this.need.get(path) === d) this.need.delete(path);
      else this.evaluate(path);
      if (d.conflictCopy) this.ctx.logger.warn({ path, copy: extraScan[0] }, 'conflict: kept our version as a conflict copy');
      if (extraScan.length) this.afterScan((await this.scanner.scanPaths(extraScan)).changed);
      return true;
    } catch (err) {
      return this.handlePullError(path, d.record, local, err);
    }
  }

  private scheduleRecheck(): void {
    const paths = this.recentlyPulled;
    const round = this.pullRound;
    this.recentlyPulled = [];
    if (!this.options.watch || paths.length === 0 || this.stopped) return;
    const timer = (this.options.clock ?? systemClock).setTimeout(() => {
      this.timers = this.timers.filter((t) => t !== timer);
      if (this.stopped) return;
      this.localChanged(paths);
      // A later round's writes may be in this round's directories: they are forgotten together.
      if (this.pullRound === round) this.ownWrites.forget(round);
    }, RECHECK_AFTER_MS);
    this.timers.push(timer);
  }

  private queueCommit(entry: LocalEntry): void {
    if (this.recentlyPulled.length < RECHECK_MAX_PATHS) this.recentlyPulled.push(entry.record.path);
    if (this.options.watch) this.ownWrites.record(entry, this.pullRound);
    this.pendingCommits.set(entry.record.path, entry);
    if (this.pendingCommits.size >= COMMIT_BATCH) this.flushCommits();
  }

  /**
   * Commits pulled entries in one transaction; they then get sequence numbers and are announced.
   * When the index cannot take them (its disk is full), the files are in place already: the
   * entries stay pending (decisions see them, so nothing is fetched again), the round stops
   * pulling, and they are written at the next try. Returns whether nothing is left pending.
   */
  private flushCommits(): boolean {
    if (this.pendingCommits.size === 0) return true;
    const entries = [...this.pendingCommits.values()];
    try {
      this.ctx.store.commitLocal(this.id, entries);
    } catch (err) {
      const message = `pulled, but cannot be recorded in the index: ${errorMessage(err)}`;
      if (!this.indexFull) this.ctx.logger.warn({ files: entries.length, err: errorMessage(err) }, 'cannot record pulled files in the index; will retry');
      this.indexFull = true;
      for (const e of entries) this.errors.set(e.record.path, { message, kind: 'INDEX_WRITE' });
      return false;
    }
    if (this.indexFull) {
      this.ctx.logger.info({ files: entries.length }, 'pulled files recorded in the index');
      void this.exclusive(() => this.fullScan());
    }
    this.indexFull = false;
    this.pendingCommits.clear();
    for (const e of entries) if (this.errors.get(e.record.path)?.kind === 'INDEX_WRITE') this.errors.delete(e.record.path);
    this.options.onLocalChange();
    return true;
  }

  /** This node's entry for a path, including one pulled but not yet committed. */
  private localEntry(path: string): LocalEntry | undefined {
    return this.pendingCommits.get(path) ?? this.ctx.store.getLocal(this.id, path);
  }

  private async handlePullError(path: string, target: FileRecord, local: LocalEntry | undefined, err: unknown): Promise<boolean> {
    if (isFerryError(err, 'CHANGED_LOCALLY')) {
      // A deletion, or a file or symlink, would replace a directory that holds files here: keep it.
      if (err.data.notEmpty && (target.deleted || target.type !== 'dir')) return this.keepDirectory(path, target, local);
      // A local edit raced the pull: index it; the next evaluation sees the conflict.
      this.afterScan((await this.scanner.scanPaths([path])).changed);
      this.evaluate(path);
      return false;
    }
    const message = pullErrorMessage(err, this.ctx.root);
    // The same kind of failure as last time (its numbers may differ: free space) is not news.
    const kind = err instanceof FerryError ? err.code : message;
    const again = this.errors.get(path)?.kind === kind;
    this.errors.set(path, { message, kind });
    // Said once: a failure that persists is retried quietly (and stays in `status`).
    if (again) this.ctx.logger.debug({ path, err: message }, 'still cannot sync file; will retry');
    else this.ctx.logger.warn({ path, err: message }, 'cannot sync file; will retry');
    return false;
  }

  /**
   * A directory deleted (or replaced by a file or symlink) elsewhere still holds files here
   * that the other side never saw: keep the directory (edit beats delete) with a version newer
   * than the other side's, and index whatever is in it, so the other side gets them back (its
   * file goes to its version area when the directory replaces it).
   */
  private async keepDirectory(path: string, target: FileRecord, local: LocalEntry | undefined): Promise<boolean> {
    const result = await this.scanner.scanPaths([path]);
    const current = this.ctx.store.getLocal(this.id, path) ?? local;
    if (current && !current.record.deleted) {
      const version = bumpVersion(mergeVersions(current.record.version, target.version), this.ctx.shortId);
      this.ctx.store.commitLocal(this.id, [{ ...current, record: { ...current.record, version, modifiedBy: this.ctx.shortId } }]);
    }
    this.afterScan(result.changed);
    this.evaluate(path);
    return true;
  }
}

/**
 * What `status` and the log say of a failed pull. The system's own words for the usual local
 * causes name the temporary file Ferry was creating; the user needs the directory and what to do.
 */
export function pullErrorMessage(err: unknown, root: string): string {
  const { code, path } = (err ?? {}) as NodeJS.ErrnoException;
  const where = typeof path === 'string' && path.startsWith(`${root}/`) ? dirname(path.slice(root.length + 1)) : undefined;
  const dir = where === undefined ? 'the folder' : where === '.' ? "the folder's top directory" : where;
  if (code === 'EACCES' || code === 'EPERM') return `no permission to write in ${dir} (${code}): check its owner, mode and attributes (chattr)`;
  if (code === 'EROFS') return `the folder's disk is read-only (${code})`;
  return errorMessage(err);
}
