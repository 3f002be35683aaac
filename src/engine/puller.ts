/**
 * Makes the disk match a record that won. Files are assembled in a temporary file beside the
 * target (`.ferry.tmp.*`) from blocks found locally (any file the block map knows) or fetched
 * from peers, every block verified against its hash; then fsync, a last check that the target
 * did not change since it was scanned (else it is a conflict, not an overwrite), the old file
 * moved to the version area (or kept as a conflict copy), and an atomic rename. A temporary
 * file left by a crash is reused: blocks already in it are verified and not fetched again.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync, closeSync, constants, fchmodSync, fdatasync, fstatSync, fsync, ftruncateSync, futimesSync, lstatSync, mkdirSync, openSync, read,
  readdirSync, readSync, renameSync, rmdirSync, rmSync, symlinkSync, unlinkSync, write, writeSync,
} from 'node:fs';
import type { Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { likelyChunkAvg } from '../chunker/fastcdc.js';
import { diskSpace, isDiskFull, KEEP_FREE_RATIO, pendingWrites, reserveWrites } from '../core/disk-space.js';
import { copyFileSafely } from '../core/copy-file.js';
import { FerryError } from '../core/errors.js';
import { blockOffsets, sameContent, type BlockRef, type FileRecord } from '../core/file-record.js';
import { formatBytes } from '../core/format-bytes.js';
import type { LocalEntry } from '../index-store/sqlite-index-store.js';
import { conflictCopyPath } from './conflict-name.js';
import type { FolderContext } from './folder-context.js';
import { sameStat, statKey } from './scanner.js';

/**
 * Where a file's blocks come from: `sourceFor(record)` is called once per file (so the choice
 * of peers is made once), then `fetch` once per missing block. `attempt` counts retries of the
 * same block, so a source can move on to another peer after a bad or failed answer. The bytes
 * need not be trusted: the puller verifies every block against its hash.
 */
export type BlockFetcher = (record: FileRecord) => {
  /** The bytes of consecutive `blocks` of the file, starting at `offset`, and who sent them. */
  fetch(blocks: readonly BlockRef[], offset: number, attempt: number): Promise<{ data: Buffer; from?: string }>;
};

/** Consecutive missing blocks are asked for together, up to this many bytes a request. */
const RANGE_BYTES = 1024 * 1024;
const RANGE_BLOCKS = 16;

const FETCH_ATTEMPTS = 3;

/** A pull round with more blocks than this looks each one up on its own (see lookAhead). */
const LOOK_AHEAD_MAX_BLOCKS = 50_000;

export interface PullStats {
  blocksFromTemp: number;
  blocksLocal: number;
  blocksFetched: number;
  bytesFetched: number;
}

const FETCH_CONCURRENCY = 8;

export class Puller {
  readonly stats: PullStats = { blocksFromTemp: 0, blocksLocal: 0, blocksFetched: 0, bytesFetched: 0 };

  /** Hashes (hex) of the blocks local files hold, for the current pull round (see lookAhead). */
  private present?: Set<string>;

  /** The device number of the folder's disk (see reserveSpace), once known. */
  private disk?: number;

  constructor(
    private readonly ctx: FolderContext,
    private readonly fetchBlock: BlockFetcher,
  ) {}

  /**
   * Finds out at once which blocks of `targets` local files hold, so that the files of a pull
   * round look up only those: one index query per few hundred blocks instead of one per block
   * (10,000 new files of one block each: 0.37 s of the main thread). Without targets, the
   * round is over and every block is looked up again.
   */
  lookAhead(targets: readonly FileRecord[] | undefined): void {
    if (!targets) {
      this.present = undefined;
      return;
    }
    const hashes = targets.flatMap((t) => (t.deleted || t.type !== 'file' ? [] : t.blocks.map((b) => b.hash)));
    // Beyond this the set (with the blocks the round adds) would cost more memory than it saves time.
    this.present = hashes.length <= LOOK_AHEAD_MAX_BLOCKS ? this.ctx.store.blocksPresent(this.ctx.folderId, hashes) : undefined;
  }

  /**
   * Applies `target` to disk and returns the local entry to commit. When `conflictCopy`, the
   * current local version is renamed to its conflict-copy name instead of being versioned;
   * the returned `extraScan` lists paths the caller should scan (the conflict copy).
   */
  async apply(target: FileRecord, local: LocalEntry | undefined, conflictCopy: boolean): Promise<{ entry: LocalEntry; extraScan: string[] }> {
    const abs = this.ctx.paths.resolve(target.path, { createParents: true });
    const current = lstatSync(abs, { throwIfNoEntry: false });
    this.checkUnchanged(target.path, current, local);
    const extraScan: string[] = [];
    const displace = () => {
      if (!current) return;
      if (current.isDirectory()) {
        this.removeDir(abs, target.path);
      } else if (conflictCopy && local && this.alreadyCopied(local)) {
        // Another node resolved the same conflict first and its copy (same name, same content)
        // arrived here: a second copy would only duplicate it.
        if (current.isFile()) this.ctx.versioner.archive(abs, target.path);
        else unlinkSync(abs);
      } else if (conflictCopy && local) {
        const copy = this.freeName(conflictCopyPath(local.record));
        renameSync(abs, join(this.ctx.root, copy));
        extraScan.push(copy);
      } else if (current.isFile()) {
        this.ctx.versioner.archive(abs, target.path);
      } else {
        unlinkSync(abs);
      }
    };

    if (target.deleted || target.type !== 'file') this.discardTemp(target.path);
    if (target.deleted) {
      if (current?.isDirectory() && target.type === 'dir') this.removeDir(abs, target.path);
      else displace();
      return { entry: { record: target, scannedAtMs: Date.now(), chunkAvg: 0 }, extraScan };
    }
    if (target.type === 'dir') {
      if (current && !current.isDirectory()) displace();
      if (!current || !current.isDirectory()) mkdirSync(abs);
      chmodSync(abs, target.mode);
      return { entry: this.entryFor(target, abs), extraScan };
    }
    if (target.type === 'symlink') {
      displace();
      symlinkSync(target.symlinkTarget ?? '', abs);
      return { entry: this.entryFor(target, abs), extraScan };
    }
    const { temp, written } = await this.assemble(target, abs, local, current);
    // The download took time: check again, just before replacing.
    const now = lstatSync(abs, { throwIfNoEntry: false });
    if (!sameOptionalStat(current, now)) {
      throw new FerryError('CHANGED_LOCALLY', `${target.path} changed locally during the download; will rescan`);
    }
    displace();
    renameSync(temp, abs);
    this.nowLocal(target);
    return { entry: recordedEntry(target, written, lstatSync(abs, { throwIfNoEntry: false })), extraScan };
  }

  /**
   * Builds the file in its temporary file, with its mode and mtime, and makes it durable
   * (fsync) before anything can rename it into place. A leftover temporary file (an
   * interrupted download) is reused block by block after verification. Otherwise, when the
   * current file is unchanged since it was indexed and shares most blocks with the target, it
   * is first copied by the kernel (a reflink where the filesystem can), so blocks at the same
   * offset need no work at all. Returns the temporary path and its stat as written.
   */
  private async assemble(target: FileRecord, abs: string, local: LocalEntry | undefined, current: Stats | undefined): Promise<{ temp: string; written: Stats }> {
    const temp = join(dirname(abs), tempName(target.path));
    const release = this.reserveSpace(target, temp);
    try {
      return { temp, written: await this.build(temp, target, abs, local, current) };
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      // Something else filled the disk meanwhile: the partial download gives its space back
      // (the user's own writes come first) and the file is fetched again once it fits.
      rmSync(temp, { force: true });
      throw new FerryError('NO_SPACE', `the disk filled up while ${target.path} was being written; its partial download was removed to free the space`, { cause: err });
    } finally {
      release();
    }
  }

  /**
   * Checks that `target` fits on the disk beside the downloads already under way (of every
   * folder on that disk: the disk is the folder root's, a disk mounted inside a folder is not
   * told apart), leaving the reserve free, after removing the oldest versions if that makes it
   * fit (NO_SPACE otherwise: nothing is written, nothing is fetched), and counts it as under
   * way until the returned function is called.
   */
  private reserveSpace(target: FileRecord, temp: string): () => void {
    if (target.size === 0) return () => {};
    this.disk ??= lstatSync(this.ctx.root).dev;
    const disk = this.disk;
    const { available, keep } = diskSpace(dirname(temp));
    let free = Math.max(0, available - pendingWrites(disk));
    let needed = target.size;
    if (needed > free - keep) {
      // What a leftover temporary file (a download to resume) holds is already written.
      const leftover = lstatSync(temp, { throwIfNoEntry: false });
      needed = Math.max(0, target.size - (leftover?.isFile() ? leftover.blocks * 512 : 0));
    }
    if (needed > free - keep) free = this.makeRoom(target.path, needed - (free - keep), dirname(temp), disk);
    if (needed > free - keep) {
      throw new FerryError(
        'NO_SPACE',
        `not enough free space for ${target.path}: it needs ${formatBytes(needed)}, the disk has ${formatBytes(free)} free and Ferry leaves ${formatBytes(keep)} (${KEEP_FREE_RATIO * 100} % of it) free`,
      );
    }
    return reserveWrites(disk, needed);
  }

  /**
   * Removes the oldest versions of the folder's version area to free `shortfall` bytes for a
   * download; returns the free space after that (less the downloads under way).
   */
  private makeRoom(path: string, shortfall: number, dir: string, disk: number): number {
    const { removed, freed } = this.ctx.versioner.makeRoom(shortfall);
    if (removed > 0) this.ctx.logger.info({ path, removed, freed }, 'removed the oldest versions of the version area to make room for a download');
    return Math.max(0, diskSpace(dir).available - pendingWrites(disk));
  }

  /** The body of `assemble`: returns the stat of the finished temporary file. */
  private async build(temp: string, target: FileRecord, abs: string, local: LocalEntry | undefined, current: Stats | undefined): Promise<Stats> {
    const offsets = blockOffsets(target.blocks);
    const { file, resumed, present } = await this.openTemp(temp, target, offsets, abs, local, current);
    try {
      // Sized up front (a leftover cut to size); a single block sets the size by itself.
      if (resumed || present.size > 0 || target.blocks.length > 1) file.truncate(target.size);
      const missing: number[] = [];
      for (let i = 0; i < target.blocks.length; i++) {
        if (present.has(i)) continue;
        const block = target.blocks[i]!;
        if (resumed && hashMatches(await file.read(offsets[i]!, block.size), block.hash)) {
          this.stats.blocksFromTemp++;
          continue;
        }
        const data = this.readLocalBlock(block);
        if (data) {
          await file.write(data, offsets[i]!);
          this.stats.blocksLocal++;
          continue;
        }
        missing.push(i);
      }
      await this.fetchMissing(target, file, missing, offsets);
      try {
        return await file.finish(target.mtimeMs, target.mode);
      } catch (err) {
        // A failed fsync leaves pages the kernel may call clean without their data on disk: a
        // later attempt must not trust (resume from) this file.
        rmSync(temp, { force: true });
        throw err;
      }
    } finally {
      await file.close();
    }
  }

  /**
   * Opens the temporary file. A new download creates it exclusively (owner-writable until the
   * end, whatever the target's mode, so an interrupted one can be resumed); an existing one is
   * a download to resume, opened without following a link planted in its place. When nothing
   * is there yet and the current file holds enough of the target's blocks at their offsets, it
   * is copied first (`present`: the blocks the copy holds).
   */
  private async openTemp(
    temp: string, target: FileRecord, offsets: number[], abs: string, local: LocalEntry | undefined, current: Stats | undefined,
  ): Promise<{ file: TempFile; resumed: boolean; present: Set<number> }> {
    const reusable = this.reusableInPlace(target, offsets, local, current);
    if (reusable && !lstatSync(temp, { throwIfNoEntry: false })) {
      const present = await this.cloneCurrent(abs, temp, local!, reusable);
      if (present.size > 0) return { file: TempFile.reopen(temp), resumed: false, present };
    }
    const created = TempFile.create(temp, (target.mode & 0o777) | 0o600);
    return created ? { file: created, resumed: false, present: new Set() } : { file: TempFile.reopen(temp), resumed: true, present: new Set() };
  }

  /**
   * The indexes of target blocks that the current file holds at the same offset, when it is
   * indexed, unchanged-looking and holds enough of them to be worth copying first; else undefined.
   */
  private reusableInPlace(target: FileRecord, offsets: number[], local: LocalEntry | undefined, current: Stats | undefined): Set<number> | undefined {
    const old = local?.record;
    if (!old || old.deleted || old.type !== 'file' || !current?.isFile() || !local?.stat || old.blocks.length === 0) return undefined;
    const oldAt = blockKeysByOffset(old);
    const reusable = new Set<number>();
    target.blocks.forEach((b, i) => {
      if (oldAt.get(offsets[i]!) === blockKey(b)) reusable.add(i);
    });
    return reusable.size * 4 >= target.blocks.length ? reusable : undefined; // mostly different: not worth a full copy
  }

  /**
   * Copies the current file to `temp` (the index vouches for its content); returns the blocks
   * the copy holds, or none when the file changed while it was copied. The copy runs in the
   * thread pool: without reflinks a large file takes seconds, and the node keeps answering its
   * peers meanwhile. It never writes through an entry that appeared at the temporary name.
   */
  private async cloneCurrent(abs: string, temp: string, local: LocalEntry, reusable: Set<number>): Promise<Set<number>> {
    await copyFileSafely(abs, temp);
    const after = lstatSync(abs, { throwIfNoEntry: false });
    if (!after || !sameStat(local.stat!, statKey(after))) {
      rmSync(temp, { force: true }); // changed while copying: trust nothing of it
      return new Set();
    }
    this.stats.blocksLocal += reusable.size;
    return reusable;
  }

  private async fetchMissing(target: FileRecord, file: TempFile, missing: number[], offsets: number[]): Promise<void> {
    if (missing.length === 0) return;
    const source = this.fetchBlock(target);
    const runs = consecutiveRuns(missing, target.blocks);
    let next = 0;
    const fetchVerified = async (run: number[]): Promise<Buffer> => {
      const blocks = run.map((i) => target.blocks[i]!);
      const offset = offsets[run[0]!]!;
      for (let attempt = 0; ; attempt++) {
        const { data, from } = await source.fetch(blocks, offset, attempt);
        const bad = firstBadBlock(data, blocks);
        if (bad < 0) return data;
        this.ctx.logger.warn({ path: target.path, offset: offsets[run[bad]!], attempt, peer: from }, 'received a block that fails its hash; discarded');
        if (attempt + 1 >= FETCH_ATTEMPTS) {
          throw new FerryError('HASH_MISMATCH', `block at ${offsets[run[bad]!]} of ${target.path} failed its hash ${FETCH_ATTEMPTS} times`);
        }
      }
    };
    // After a failure the caller closes the file: a write still under way would land in whatever
    // file reuses its descriptor number. So the download ends once the writes under way are
    // done; ranges still arriving are dropped unwritten (they are not waited for: on a stalled
    // link that would take the request timeout).
    let failure: { err: unknown } | undefined;
    let failed!: () => void;
    const failedSignal = new Promise<void>((resolve) => (failed = resolve));
    const writes = new Set<Promise<void>>();
    const worker = async () => {
      while (next < runs.length && !failure) {
        const run = runs[next++]!;
        try {
          const data = await fetchVerified(run);
          if (failure) return;
          const write = file.write(data, offsets[run[0]!]!);
          writes.add(write);
          await write.finally(() => writes.delete(write));
          this.stats.blocksFetched += run.length;
          this.stats.bytesFetched += data.length;
        } catch (err) {
          if (!failure) {
            failure = { err };
            failed();
          }
        }
      }
    };
    await Promise.race([Promise.all(Array.from({ length: Math.min(FETCH_CONCURRENCY, runs.length) }, worker)), failedSignal]);
    if (failure) {
      await Promise.allSettled([...writes]);
      throw failure.err;
    }
  }

  /** The blocks of a file just put in place are local from now on (once it is committed). */
  private nowLocal(target: FileRecord): void {
    if (this.present) for (const b of target.blocks) this.present.add(b.hash.toString('hex'));
  }

  /** A block from any local file that has it, verified; undefined when none does. */
  private readLocalBlock(block: BlockRef): Buffer | undefined {
    if (this.present && !this.present.has(block.hash.toString('hex'))) return undefined;
    for (const loc of this.ctx.store.findBlock(block.hash)) {
      if (loc.folder !== this.ctx.folderId || loc.size !== block.size) continue;
      let fd: number | undefined;
      try {
        fd = openSync(this.ctx.paths.resolve(loc.path), 'r');
        const data = readAtSync(fd, loc.offset, loc.size);
        if (hashMatches(data, block.hash)) return data;
      } catch {
        // moved or changed since it was indexed: try the next location
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
    }
    return undefined;
  }

  /** The disk must still hold what the index says we have; otherwise it is a local edit. */
  private checkUnchanged(path: string, current: Stats | undefined, local: LocalEntry | undefined): void {
    const live = local && !local.record.deleted ? local : undefined;
    if (!current) return; // nothing to overwrite
    if (!live) throw new FerryError('CHANGED_LOCALLY', `${path} exists locally but is not indexed yet; will rescan`);
    if (current.isDirectory()) return; // directories: their contents are checked path by path
    if (!live.stat || !sameStat(live.stat, statKey(current))) {
      throw new FerryError('CHANGED_LOCALLY', `${path} changed locally since it was scanned; will rescan`);
    }
  }

  /** Removes the temporary file of an unfinished download of `path`, if there is one. */
  discardTemp(path: string): void {
    try {
      rmSync(join(dirname(this.ctx.paths.resolve(path)), tempName(path)), { force: true });
    } catch {
      // the parent directory is gone or not a directory: no temporary file either
    }
  }

  /**
   * Whether the conflict copy of `loser` was made already, holding the same content: by a peer
   * that announced it (it is on its way here, maybe half pulled), or here (indexed so, and
   * unchanged on disk since). Every node that resolves a conflict picks the same name.
   */
  private alreadyCopied(loser: LocalEntry): boolean {
    const path = conflictCopyPath(loser.record);
    const same = (r: FileRecord) => !r.deleted && r.type === loser.record.type && sameContent(r, loser.record);
    if (this.ctx.store.remoteFor(this.ctx.folderId, path).some((r) => same(r.record))) return true;
    const copy = this.ctx.store.getLocal(this.ctx.folderId, path);
    if (!copy || !same(copy.record) || !copy.stat) return false;
    const onDisk = lstatSync(this.ctx.paths.resolve(copy.record.path), { throwIfNoEntry: false });
    return onDisk !== undefined && sameStat(copy.stat, statKey(onDisk));
  }

  /** `rel`, or `rel` with a counter before its extension when that name is taken. */
  private freeName(rel: string): string {
    const dot = rel.lastIndexOf('.');
    const cut = dot > rel.lastIndexOf('/') + 1 ? dot : rel.length;
    for (let n = 0; ; n++) {
      const candidate = n === 0 ? rel : `${rel.slice(0, cut)}-${n}${rel.slice(cut)}`;
      if (!lstatSync(this.ctx.paths.resolve(candidate), { throwIfNoEntry: false })) return candidate;
    }
  }

  private removeDir(abs: string, path: string): void {
    try {
      rmdirSync(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST') {
        this.removeInternalLeftovers(abs);
        try {
          rmdirSync(abs);
          return;
        } catch {
          throw new FerryError('CHANGED_LOCALLY', `directory ${path} is not empty`, { data: { path, notEmpty: true } });
        }
      }
      throw err;
    }
    this.ctx.paths.forget();
  }

  /** Ferry's own temporary files do not keep a deleted directory alive. */
  private removeInternalLeftovers(abs: string): void {
    for (const name of readdirSync(abs)) {
      if (name.startsWith('.ferry.tmp.')) rmSync(join(abs, name), { force: true });
    }
  }

  /** The entry to commit after creating a directory or symlink at `abs`. */
  private entryFor(record: FileRecord, abs: string): LocalEntry {
    return { record, stat: statKey(lstatSync(abs)), scannedAtMs: Date.now(), chunkAvg: 0 };
  }
}

/**
 * The entry to commit after renaming a written file into place. Its stat is what the next
 * scan compares against, so when the file no longer looks like what was written (a local edit
 * right after the rename), no stat is recorded and the next scan hashes the file instead of
 * trusting it. The stat is taken after the rename, which changes the ctime.
 */
function recordedEntry(record: FileRecord, written: Stats, now: Stats | undefined): LocalEntry {
  const asWritten = now !== undefined && now.ino === written.ino && now.size === written.size && now.mtimeMs === written.mtimeMs;
  const chunkAvg = likelyChunkAvg(record.blocks.map((b) => b.size), record.size);
  return { record, stat: asWritten ? statKey(now) : undefined, scannedAtMs: Date.now(), chunkAvg };
}

function blockKey(b: BlockRef): string {
  return `${b.size}:${b.hash.toString('hex')}`;
}

function blockKeysByOffset(record: FileRecord): Map<number, string> {
  const byOffset = new Map<number, string>();
  blockOffsets(record.blocks).forEach((o, i) => byOffset.set(o, blockKey(record.blocks[i]!)));
  return byOffset;
}

const fsyncFd = promisify(fsync);
const fdatasyncFd = promisify(fdatasync);
const writeFd = promisify(write);
const readFd = promisify(read);

/** Writes up to this size are made on the spot; larger ones in the thread pool. */
const SYNC_WRITE_BYTES = 64 * 1024;
/** A large download's data is flushed to disk every this many bytes while the rest arrives. */
const WRITEBACK_BYTES = 32 * 1024 * 1024;

/**
 * The file a download is built in, by descriptor. Metadata calls and small writes are made on
 * the spot: measured on ext4 with 10,000 small files in flight, that takes half the CPU time
 * of sending each call through the thread pool, where many threads creating files in one
 * directory also spin on its lock and starve the event loop. Large writes and every fsync go
 * to the thread pool (they wait on the disk). A large file's data is flushed in the background
 * every WRITEBACK_BYTES, so the final fsync only has the tail left to write.
 */
class TempFile {
  private closed = false;
  private unflushed = 0;
  private flushing?: Promise<void>;
  private flushError?: unknown;
  private lastLargeWrite: Promise<unknown> = Promise.resolve();

  private constructor(private readonly descriptor: number) {}

  /** The descriptor; after close its number may belong to another file, so any use then is a bug. */
  private get fd(): number {
    if (this.closed) throw new Error('temporary file used after close');
    return this.descriptor;
  }

  /** Creates `path`, or returns undefined when it already exists. */
  static create(path: string, mode: number): TempFile | undefined {
    try {
      return new TempFile(openSync(path, 'wx', mode));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
      throw err;
    }
  }

  static reopen(path: string): TempFile {
    return new TempFile(openSync(path, constants.O_RDWR | constants.O_NOFOLLOW));
  }

  truncate(size: number): void {
    ftruncateSync(this.fd, size);
  }

  async read(offset: number, size: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await readFd(this.fd, buf, done, size - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === size ? buf : buf.subarray(0, done);
  }

  private async writeInPool(data: Buffer, offset: number): Promise<void> {
    let done = 0;
    while (done < data.length) done += (await writeFd(this.fd, data, done, data.length - done, offset + done)).bytesWritten;
  }

  /**
   * Writes `data` at `offset`. Large writes to one file go one at a time: each holds the
   * file's inode lock, and pool threads waiting for it spin (measured writing 1 GiB in 1 MiB
   * pieces on ext4: ~90 ms more CPU with 8 in flight, at times ~700 ms, for no gain in speed).
   */
  async write(data: Buffer, offset: number): Promise<void> {
    if (data.length <= SYNC_WRITE_BYTES) {
      let done = 0;
      while (done < data.length) done += writeSync(this.fd, data, done, data.length - done, offset + done);
    } else {
      const turn = this.lastLargeWrite.then(() => this.writeInPool(data, offset));
      this.lastLargeWrite = turn.catch(() => undefined);
      await turn;
    }
    this.unflushed += data.length;
    if (this.unflushed >= WRITEBACK_BYTES && !this.flushing) {
      this.unflushed = 0;
      this.flushing = fdatasyncFd(this.fd).then(
        () => (this.flushing = undefined),
        (err: unknown) => {
          this.flushError ??= err;
          this.flushing = undefined;
        },
      );
    }
  }

  /**
   * Sets the mtime and mode, then fsync: all before the file can be renamed into place, so a
   * rename can only ever show it complete. Returns its stat as written.
   */
  async finish(mtimeMs: number, mode: number): Promise<Stats> {
    futimesSync(this.fd, mtimeMs / 1000, mtimeMs / 1000);
    const written = fstatSync(this.fd);
    if ((written.mode & 0o7777) !== mode) fchmodSync(this.fd, mode);
    await this.flushing;
    if (this.flushError !== undefined) throw this.flushError;
    await fsyncFd(this.fd);
    return written;
  }

  /** Closes the descriptor once no background flush uses it any more. */
  async close(): Promise<void> {
    await this.flushing;
    closeSync(this.fd);
    this.closed = true;
  }
}

/** Groups block indexes into runs of consecutive blocks, each small enough for one request. */
function consecutiveRuns(indexes: number[], blocks: readonly BlockRef[]): number[][] {
  const runs: number[][] = [];
  let bytes = 0;
  for (const i of indexes) {
    const run = runs[runs.length - 1];
    const size = blocks[i]!.size;
    if (run && run[run.length - 1] === i - 1 && run.length < RANGE_BLOCKS && bytes + size <= RANGE_BYTES) {
      run.push(i);
      bytes += size;
    } else {
      runs.push([i]);
      bytes = size;
    }
  }
  return runs;
}

/** Index of the first block whose bytes in `data` fail their hash (or are missing); -1 if all pass. */
function firstBadBlock(data: Buffer, blocks: readonly BlockRef[]): number {
  let at = 0;
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i]!;
    if (at + b.size > data.length || !hashMatches(data.subarray(at, at + b.size), b.hash)) return i;
    at += b.size;
  }
  return at === data.length ? -1 : blocks.length - 1;
}

export function tempName(path: string): string {
  return `.ferry.tmp.${createHash('sha256').update(path).digest('hex').slice(0, 16)}`;
}


function sameOptionalStat(a: Stats | undefined, b: Stats | undefined): boolean {
  if (!a || !b) return !a && !b;
  return sameStat(statKey(a), statKey(b));
}

/** Reads up to `size` bytes at `offset`; shorter only at the end of the file. */
export function readAtSync(fd: number, offset: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let done = 0;
  while (done < size) {
    const n = readSync(fd, buf, done, size - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return done === size ? buf : buf.subarray(0, done);
}


export function hashMatches(data: Buffer, hash: Buffer): boolean {
  return createHash('sha256').update(data).digest().equals(hash);
}
