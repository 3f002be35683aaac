/**
 * What a full rescan compares the disk against, for every local entry of a folder: type,
 * deletion, mode, symlink target and the stat Ferry last saw. Kept in memory between scans, so
 * it is stored in columns (typed arrays indexed through one map of paths): about 60 bytes an
 * entry plus its path, where one object per entry took about 250. A scan of a few paths uses a
 * small one of its own, holding only the entries under them.
 */
import type { FileType } from '../core/file-record.js';
import type { ScanEntry, StatKey } from './sqlite-index-store.js';

const TYPES: readonly FileType[] = ['file', 'dir', 'symlink'];
const DELETED = 4;
const HAS_STAT = 8;
/** The flags of a present file (type index 0) with a stat. */
const FILE_WITH_STAT = HAS_STAT;

export class ScanView {
  private readonly slots = new Map<string, number>();
  private readonly symlinkTargets = new Map<number, string>();
  private flags = new Uint8Array(0);
  private modes = new Uint16Array(0);
  private chunkAvgs = new Int32Array(0);
  /** size, mtimeMs, ctimeMs, ino, scannedAtMs per slot. */
  private numbers = new Float64Array(0);

  get size(): number {
    return this.slots.size;
  }

  get(path: string): ScanEntry | undefined {
    const slot = this.slots.get(path);
    return slot === undefined ? undefined : this.entryAt(path, slot);
  }

  keys(): IterableIterator<string> {
    return this.slots.keys();
  }

  /** The entry's fixed position (entries are only ever added), for callers that mark entries. */
  slotOf(path: string): number | undefined {
    return this.slots.get(path);
  }

  /**
   * When `path` is indexed as a present file with exactly this stat, the time it was scanned;
   * else undefined. A rescan asks this of every file, so it builds no objects.
   */
  sameFileScannedAt(path: string, stat: StatKey): number | undefined {
    const slot = this.slots.get(path);
    if (slot === undefined || this.flags[slot] !== FILE_WITH_STAT) return undefined;
    const n = slot * 5;
    const x = this.numbers;
    return x[n] === stat.size && x[n + 1] === stat.mtimeMs && x[n + 2] === stat.ctimeMs && x[n + 3] === stat.ino ? x[n + 4] : undefined;
  }

  /** Whether `path` is indexed as deleted. */
  isDeleted(path: string): boolean {
    const slot = this.slots.get(path);
    return slot !== undefined && (this.flags[slot]! & DELETED) !== 0;
  }

  set(path: string, e: ScanEntry): void {
    let slot = this.slots.get(path);
    if (slot === undefined) {
      slot = this.slots.size;
      this.grow(slot + 1);
      this.slots.set(path, slot);
    }
    const s = e.stat;
    this.flags[slot] = TYPES.indexOf(e.record.type) | (e.record.deleted ? DELETED : 0) | (s ? HAS_STAT : 0);
    this.modes[slot] = e.record.mode;
    this.chunkAvgs[slot] = e.chunkAvg;
    const n = slot * 5;
    this.numbers[n] = s?.size ?? 0;
    this.numbers[n + 1] = s?.mtimeMs ?? 0;
    this.numbers[n + 2] = s?.ctimeMs ?? 0;
    this.numbers[n + 3] = s?.ino ?? 0;
    this.numbers[n + 4] = e.scannedAtMs;
    if (e.record.symlinkTarget === undefined) this.symlinkTargets.delete(slot);
    else this.symlinkTargets.set(slot, e.record.symlinkTarget);
  }

  /** Changes only the stat of an entry that is present. */
  setStat(path: string, stat: StatKey, scannedAtMs: number): void {
    const e = this.get(path);
    if (e) this.set(path, { ...e, stat, scannedAtMs });
  }

  private entryAt(path: string, slot: number): ScanEntry {
    const f = this.flags[slot]!;
    const n = slot * 5;
    const target = this.symlinkTargets.get(slot);
    const stat: StatKey | undefined = f & HAS_STAT
      ? { size: this.numbers[n]!, mtimeMs: this.numbers[n + 1]!, ctimeMs: this.numbers[n + 2]!, ino: this.numbers[n + 3]! }
      : undefined;
    return {
      record: { path, type: TYPES[f & 3]!, deleted: (f & DELETED) !== 0, mode: this.modes[slot]!, ...(target === undefined ? {} : { symlinkTarget: target }) },
      stat,
      scannedAtMs: this.numbers[n + 4]!,
      chunkAvg: this.chunkAvgs[slot]!,
    };
  }

  private grow(slots: number): void {
    if (slots <= this.flags.length) return;
    const capacity = Math.max(1024, this.flags.length * 2, slots);
    const more = <T extends Uint8Array | Uint16Array | Int32Array | Float64Array>(old: T, make: (n: number) => T, width = 1): T => {
      const next = make(capacity * width);
      next.set(old);
      return next;
    };
    this.flags = more(this.flags, (n) => new Uint8Array(n));
    this.modes = more(this.modes, (n) => new Uint16Array(n));
    this.chunkAvgs = more(this.chunkAvgs, (n) => new Int32Array(n));
    this.numbers = more(this.numbers, (n) => new Float64Array(n), 5);
  }
}
