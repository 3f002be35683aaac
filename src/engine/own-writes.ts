/**
 * What this node itself just wrote into the folder while pulling. The watcher reports those
 * writes like anyone else's, and scanning them again costs a pull of many small files a
 * second time: a reported path that still looks exactly as the pull left it needs no scan.
 *
 * "Exactly" means: a file or symlink with the stat recorded after the rename (and timestamps
 * old enough for an equal stat to prove equal content, the scanner's racy rule); a deletion
 * still absent; a directory the pull created, with its mode, holding nothing but what the
 * pull wrote into it and Ferry's own temporary files. Anything else is scanned as before.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalEntry, StatKey } from '../index-store/sqlite-index-store.js';
import { isRacy, sameStat, statKey } from './scanner.js';

/** Ferry's own files (temporary files, markers), not the user's `.ferryignore`. */
function isFerryTemp(name: string): boolean {
  return name.startsWith('.ferry') && name !== '.ferryignore';
}

/** Beyond this many remembered writes, further ones are simply scanned when reported. */
const MAX_ENTRIES = 20_000;

/** What a pull left at a path: only what the check needs (the pull's records can be large). */
interface Written {
  readonly kind: 'file' | 'dir' | 'symlink' | 'deleted';
  readonly mode: number;
  readonly stat?: StatKey;
  readonly seenAtMs: number;
  readonly round: number;
}

export class OwnWrites {
  private readonly written = new Map<string, Written>();

  constructor(private readonly root: string) {}

  /** Remembers an entry a pull (round `round`) wrote to disk. */
  record(entry: LocalEntry, round: number): void {
    const { record } = entry;
    if (this.written.size >= MAX_ENTRIES && !this.written.has(record.path)) return;
    const kind = record.deleted ? 'deleted' : record.type;
    this.written.set(record.path, { kind, mode: record.mode, stat: entry.stat, seenAtMs: entry.scannedAtMs, round });
  }

  /** Forgets the writes of pull rounds up to `round`: their echo has had time to arrive. */
  forget(round: number): void {
    for (const [path, w] of this.written) if (w.round <= round) this.written.delete(path);
  }

  /** The reported paths that may hold a change: all but the echoes of this node's own writes. */
  changed(paths: readonly string[]): string[] {
    if (this.written.size === 0) return [...paths];
    return paths.filter((p) => !this.isEcho(p));
  }

  /** How many of the reported paths no remembered pull wrote. */
  notWritten(paths: readonly string[]): number {
    let n = 0;
    for (const p of paths) if (!this.written.has(p)) n++;
    return n;
  }

  private isEcho(path: string): boolean {
    const w = this.written.get(path);
    if (!w) return false;
    const abs = join(this.root, path);
    const now = lstatSync(abs, { throwIfNoEntry: false });
    if (w.kind === 'deleted') return now === undefined;
    if (!now) return false;
    if (w.kind === 'dir') {
      if (!now.isDirectory() || (now.mode & 0o7777) !== w.mode) return false;
      try {
        return readdirSync(abs).every((name) => isFerryTemp(name) || this.written.has(`${path}/${name}`));
      } catch {
        return false;
      }
    }
    return w.stat !== undefined && sameStat(w.stat, statKey(now)) && !isRacy(w.seenAtMs, w.stat);
  }
}
