/**
 * The listing of a whole folder tree with the `lstat` of every entry, for a full rescan of a
 * large folder: the files of every other directory are stated on the hash worker's thread
 * while this thread states the rest. Nearly all of a no-change rescan is these calls; on the
 * 2-core dev VM, 100,000 of them (with the listing) took ~390 ms on one thread and ~190–330 ms
 * split over two.
 *
 * It is a snapshot taken just before the walk uses it, as good as the walk's own calls: an
 * entry that changes meanwhile is reported by the watcher, or found by the next scan.
 */
import { constants, readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { lstatInWorker } from '../chunker/hash-worker.js';

/** What the walk needs of an entry's stat (a `Stats` is one). */
export interface EntryStat {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly mode: number;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** One listed directory: its entry names, and five stat numbers per name (NaN: not stated). */
export interface ListedDir {
  readonly names: string[];
  readonly numbers: Float64Array;
}

/** Names handed to the worker in one message. */
const WORKER_BATCH = 2000;

class NumberStat implements EntryStat {
  constructor(
    readonly size: number,
    readonly mtimeMs: number,
    readonly ctimeMs: number,
    readonly ino: number,
    readonly mode: number,
  ) {}

  isFile(): boolean {
    return (this.mode & constants.S_IFMT) === constants.S_IFREG;
  }

  isDirectory(): boolean {
    return (this.mode & constants.S_IFMT) === constants.S_IFDIR;
  }

  isSymbolicLink(): boolean {
    return (this.mode & constants.S_IFMT) === constants.S_IFLNK;
  }
}

/** The stat of the i-th name of a listed directory; undefined if it could not be taken. */
export function listedStat(dir: ListedDir, i: number): EntryStat | undefined {
  const k = i * 5;
  const x = dir.numbers;
  return Number.isNaN(x[k]) ? undefined : new NumberStat(x[k]!, x[k + 1]!, x[k + 2]!, x[k + 3]!, x[k + 4]!);
}

/**
 * Lists the tree under `root` (not descending into directories `skipDir` names) and states
 * every entry, by folder-relative directory path ('' for the root). A directory that cannot
 * be listed is left out: the walk lists it itself and reports the error.
 */
export async function statTree(root: string, skipDir: (path: string) => boolean): Promise<Map<string, ListedDir>> {
  const listed = new Map<string, ListedDir>();
  const mine: string[] = [];
  const batches: Promise<void>[] = [];
  let batch: [string, string[]][] = [];
  let batchDirs: string[] = [];
  let batchNames = 0;
  const sendBatch = () => {
    const dirs = batchDirs;
    batches.push(lstatInWorker(batch).then((numbers) => {
      let k = 0;
      for (const dir of dirs) {
        const entry = listed.get(dir)!;
        entry.numbers.set(numbers.subarray(k, k + entry.names.length * 5));
        k += entry.names.length * 5;
      }
    }));
    batch = [];
    batchDirs = [];
    batchNames = 0;
  };

  const pending = [''];
  for (let n = 0; n < pending.length; n++) {
    const dir = pending[n]!;
    const abs = dir ? join(root, dir) : root;
    let entries;
    try {
      entries = readdirSync(abs, { withFileTypes: true });
    } catch {
      continue;
    }
    const names = entries.map((e) => e.name);
    listed.set(dir, { names, numbers: new Float64Array(names.length * 5).fill(NaN) });
    for (const e of entries) {
      const path = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory() && !skipDir(path)) pending.push(path);
    }
    if (n % 2 === 1) {
      batch.push([abs, names]);
      batchDirs.push(dir);
      batchNames += names.length;
      if (batchNames >= WORKER_BATCH) sendBatch();
    } else {
      mine.push(dir);
    }
  }
  if (batch.length) sendBatch();

  for (const dir of mine) {
    const entry = listed.get(dir)!;
    const abs = dir ? join(root, dir) : root;
    for (const [i, name] of entry.names.entries()) {
      try {
        const s = lstatSync(`${abs}/${name}`, { throwIfNoEntry: false });
        if (!s) continue;
        const x = entry.numbers;
        const k = i * 5;
        x[k] = s.size;
        x[k + 1] = s.mtimeMs;
        x[k + 2] = s.ctimeMs;
        x[k + 3] = s.ino;
        x[k + 4] = s.mode;
      } catch {
        // left unstated: the walk takes it again and reports what fails
      }
    }
  }
  await Promise.all(batches);
  return listed;
}
